internal import GRPCCore
internal import StrataEtcdAPI
internal import StrataObservability
internal import SwiftProtobuf

/// etcd's JSON gateway (grpc-gateway in etcd): `POST /v3/...` with a JSON request, answered with the RPC's response as
/// JSON. Field names are the proto names (`create_revision`, `dbSize`), 64-bit integers are strings, bytes base64,
/// enums names; zero values are left out. Streaming calls (`/v3/watch`, `/v3/lease/keepalive`,
/// `/v3/maintenance/snapshot`) read a sequence of JSON objects and answer one `{"result": ...}` line per message.
enum EtcdGateway {
    /// One gateway path: the gRPC method it calls and how to translate its messages.
    struct Route: Sendable {
        let descriptor: MethodDescriptor
        /// Whether the call reads a sequence of request objects (bidirectional streams).
        let streamsRequests: Bool
        /// Whether the call answers with a sequence of `{"result": ...}` lines.
        let streamsResponses: Bool
        /// JSON request → protobuf bytes.
        let decodeRequest: @Sendable ([UInt8]) throws -> [UInt8]
        /// Protobuf response bytes → JSON.
        let encodeResponse: @Sendable ([UInt8]) throws -> [UInt8]
    }

    static func route<Input: SwiftProtobuf.Message, Output: SwiftProtobuf.Message>(
        _ descriptor: MethodDescriptor,
        _: Input.Type,
        _: Output.Type,
        streamsRequests: Bool = false,
        streamsResponses: Bool = false
    ) -> Route {
        Route(
            descriptor: descriptor,
            streamsRequests: streamsRequests,
            streamsResponses: streamsResponses,
            decodeRequest: { json in
                // An empty body is an empty request. Unknown fields are ignored (grpc-gateway's decoder does), but
                // not unknown enum names, which SwiftProtobuf's lenient mode would also let through.
                guard !json.allSatisfy(isJSONWhitespace) else { return try Input().serializedBytes() }
                let message: Input
                do {
                    message = try Input(jsonUTF8Bytes: json)
                } catch JSONDecodingError.unknownField {
                    message = try Input(jsonUTF8Bytes: json, options: lenientDecoding)
                }
                return try message.serializedBytes()
            },
            encodeResponse: { bytes in
                try Output(serializedBytes: bytes).jsonUTF8Bytes(options: encodingOptions)
            }
        )
    }

    /// What a request that does not decode is told (gRPC code InvalidArgument, as etcd's gateway answers).
    static func describe(_ error: any Error) -> String {
        guard let error = error as? JSONDecodingError else { return "invalid request: \(error)" }
        switch error {
        case .truncated: return "unexpected EOF"
        case .unrecognizedEnumValue: return "unknown enum value"
        case .malformedNumber, .numberRange, .leadingZero: return "invalid number"
        case .malformedString, .invalidUTF8: return "invalid string"
        case .malformedBool: return "invalid boolean"
        case .trailingGarbage: return "invalid character after top-level value"
        case .messageDepthLimit: return "request nested too deeply"
        case .conflictingOneOf: return "more than one field of a oneof given"
        default: return "malformed JSON value"
        }
    }

    static let lenientDecoding: JSONDecodingOptions = {
        var options = JSONDecodingOptions()
        options.ignoreUnknownFields = true
        return options
    }()

    static let encodingOptions: JSONEncodingOptions = {
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        return options
    }()

    static func isJSONWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }

    /// Every path etcd's gateway serves (the `google.api.http` options of etcd's rpc.proto), by path.
    static let routes: [String: Route] = {
        typealias KV = Etcdserverpb_KV.Method
        typealias Watch = Etcdserverpb_Watch.Method
        typealias Lease = Etcdserverpb_Lease.Method
        typealias Cluster = Etcdserverpb_Cluster.Method
        typealias Maintenance = Etcdserverpb_Maintenance.Method
        typealias Auth = Etcdserverpb_Auth.Method
        var table: [String: Route] = [:]
        func add<I, O>(_ path: String, _ descriptor: MethodDescriptor, _ i: I.Type, _ o: O.Type, streams: Bool = false)
        where I: SwiftProtobuf.Message, O: SwiftProtobuf.Message {
            table[path] = route(descriptor, i, o, streamsRequests: streams, streamsResponses: streams)
        }
        add("/v3/kv/range", KV.Range.descriptor, KV.Range.Input.self, KV.Range.Output.self)
        add("/v3/kv/put", KV.Put.descriptor, KV.Put.Input.self, KV.Put.Output.self)
        add("/v3/kv/deleterange", KV.DeleteRange.descriptor, KV.DeleteRange.Input.self, KV.DeleteRange.Output.self)
        add("/v3/kv/txn", KV.Txn.descriptor, KV.Txn.Input.self, KV.Txn.Output.self)
        add("/v3/kv/compaction", KV.Compact.descriptor, KV.Compact.Input.self, KV.Compact.Output.self)
        add("/v3/watch", Watch.Watch.descriptor, Watch.Watch.Input.self, Watch.Watch.Output.self, streams: true)
        add("/v3/lease/grant", Lease.LeaseGrant.descriptor, Lease.LeaseGrant.Input.self, Lease.LeaseGrant.Output.self)
        for path in ["/v3/lease/revoke", "/v3/kv/lease/revoke"] {
            add(path, Lease.LeaseRevoke.descriptor, Lease.LeaseRevoke.Input.self, Lease.LeaseRevoke.Output.self)
        }
        add(
            "/v3/lease/keepalive",
            Lease.LeaseKeepAlive.descriptor,
            Lease.LeaseKeepAlive.Input.self,
            Lease.LeaseKeepAlive.Output.self,
            streams: true
        )
        for path in ["/v3/lease/timetolive", "/v3/kv/lease/timetolive"] {
            add(
                path,
                Lease.LeaseTimeToLive.descriptor,
                Lease.LeaseTimeToLive.Input.self,
                Lease.LeaseTimeToLive.Output.self
            )
        }
        for path in ["/v3/lease/leases", "/v3/kv/lease/leases"] {
            add(path, Lease.LeaseLeases.descriptor, Lease.LeaseLeases.Input.self, Lease.LeaseLeases.Output.self)
        }
        add(
            "/v3/cluster/member/add",
            Cluster.MemberAdd.descriptor,
            Cluster.MemberAdd.Input.self,
            Cluster.MemberAdd.Output.self
        )
        add(
            "/v3/cluster/member/remove",
            Cluster.MemberRemove.descriptor,
            Cluster.MemberRemove.Input.self,
            Cluster.MemberRemove.Output.self
        )
        add(
            "/v3/cluster/member/update",
            Cluster.MemberUpdate.descriptor,
            Cluster.MemberUpdate.Input.self,
            Cluster.MemberUpdate.Output.self
        )
        add(
            "/v3/cluster/member/list",
            Cluster.MemberList.descriptor,
            Cluster.MemberList.Input.self,
            Cluster.MemberList.Output.self
        )
        add(
            "/v3/cluster/member/promote",
            Cluster.MemberPromote.descriptor,
            Cluster.MemberPromote.Input.self,
            Cluster.MemberPromote.Output.self
        )
        add(
            "/v3/maintenance/alarm",
            Maintenance.Alarm.descriptor,
            Maintenance.Alarm.Input.self,
            Maintenance.Alarm.Output.self
        )
        add(
            "/v3/maintenance/status",
            Maintenance.Status.descriptor,
            Maintenance.Status.Input.self,
            Maintenance.Status.Output.self
        )
        add(
            "/v3/maintenance/defragment",
            Maintenance.Defragment.descriptor,
            Maintenance.Defragment.Input.self,
            Maintenance.Defragment.Output.self
        )
        add(
            "/v3/maintenance/hash",
            Maintenance.Hash.descriptor,
            Maintenance.Hash.Input.self,
            Maintenance.Hash.Output.self
        )
        add(
            "/v3/maintenance/hashkv",
            Maintenance.HashKV.descriptor,
            Maintenance.HashKV.Input.self,
            Maintenance.HashKV.Output.self
        )
        table["/v3/maintenance/snapshot"] = route(
            Maintenance.Snapshot.descriptor,
            Maintenance.Snapshot.Input.self,
            Maintenance.Snapshot.Output.self,
            streamsResponses: true
        )
        add(
            "/v3/maintenance/transfer-leadership",
            Maintenance.MoveLeader.descriptor,
            Maintenance.MoveLeader.Input.self,
            Maintenance.MoveLeader.Output.self
        )
        add(
            "/v3/maintenance/downgrade",
            Maintenance.Downgrade.descriptor,
            Maintenance.Downgrade.Input.self,
            Maintenance.Downgrade.Output.self
        )
        add("/v3/auth/enable", Auth.AuthEnable.descriptor, Auth.AuthEnable.Input.self, Auth.AuthEnable.Output.self)
        add("/v3/auth/disable", Auth.AuthDisable.descriptor, Auth.AuthDisable.Input.self, Auth.AuthDisable.Output.self)
        add("/v3/auth/status", Auth.AuthStatus.descriptor, Auth.AuthStatus.Input.self, Auth.AuthStatus.Output.self)
        add(
            "/v3/auth/authenticate",
            Auth.Authenticate.descriptor,
            Auth.Authenticate.Input.self,
            Auth.Authenticate.Output.self
        )
        add("/v3/auth/user/add", Auth.UserAdd.descriptor, Auth.UserAdd.Input.self, Auth.UserAdd.Output.self)
        add("/v3/auth/user/get", Auth.UserGet.descriptor, Auth.UserGet.Input.self, Auth.UserGet.Output.self)
        add("/v3/auth/user/list", Auth.UserList.descriptor, Auth.UserList.Input.self, Auth.UserList.Output.self)
        add("/v3/auth/user/delete", Auth.UserDelete.descriptor, Auth.UserDelete.Input.self, Auth.UserDelete.Output.self)
        add(
            "/v3/auth/user/changepw",
            Auth.UserChangePassword.descriptor,
            Auth.UserChangePassword.Input.self,
            Auth.UserChangePassword.Output.self
        )
        add(
            "/v3/auth/user/grant",
            Auth.UserGrantRole.descriptor,
            Auth.UserGrantRole.Input.self,
            Auth.UserGrantRole.Output.self
        )
        add(
            "/v3/auth/user/revoke",
            Auth.UserRevokeRole.descriptor,
            Auth.UserRevokeRole.Input.self,
            Auth.UserRevokeRole.Output.self
        )
        add("/v3/auth/role/add", Auth.RoleAdd.descriptor, Auth.RoleAdd.Input.self, Auth.RoleAdd.Output.self)
        add("/v3/auth/role/get", Auth.RoleGet.descriptor, Auth.RoleGet.Input.self, Auth.RoleGet.Output.self)
        add("/v3/auth/role/list", Auth.RoleList.descriptor, Auth.RoleList.Input.self, Auth.RoleList.Output.self)
        add("/v3/auth/role/delete", Auth.RoleDelete.descriptor, Auth.RoleDelete.Input.self, Auth.RoleDelete.Output.self)
        add(
            "/v3/auth/role/grant",
            Auth.RoleGrantPermission.descriptor,
            Auth.RoleGrantPermission.Input.self,
            Auth.RoleGrantPermission.Output.self
        )
        add(
            "/v3/auth/role/revoke",
            Auth.RoleRevokePermission.descriptor,
            Auth.RoleRevokePermission.Input.self,
            Auth.RoleRevokePermission.Output.self
        )
        return table
    }()

    /// grpc-gateway's HTTP status for a gRPC status code (the version etcd 3.4 builds with).
    static func httpStatus(for code: Status.Code) -> Int {
        switch code {
        case .ok: 200
        case .cancelled: 408
        case .unknown: 500
        case .invalidArgument: 400
        case .deadlineExceeded: 504
        case .notFound: 404
        case .alreadyExists: 409
        case .permissionDenied: 403
        case .unauthenticated: 401
        case .resourceExhausted: 429
        case .failedPrecondition: 412
        case .aborted: 409
        case .outOfRange: 400
        case .unimplemented: 501
        case .internalError: 500
        case .unavailable: 503
        case .dataLoss: 500
        default: 500
        }
    }

    /// The body of a failed unary call (or of a stream that failed before its first message).
    static func errorBody(code: Status.Code, message: String) -> String {
        let quoted = JSONText.quoted(message)
        return #"{"error":\#(quoted),"message":\#(quoted),"code":\#(code.rawValue)}"#
    }

    /// The line a stream that already answered ends with when it fails (grpc-gateway's stream error chunk).
    static func streamErrorLine(code: Status.Code, message: String) -> String {
        let http = httpStatus(for: code)
        return #"{"error":{"grpc_code":\#(code.rawValue),"http_code":\#(http),"message":\#(JSONText.quoted(message)),"#
            + #""http_status":\#(JSONText.quoted(reasonPhrase(http)))}}"# + "\n"
    }

    static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 412: "Precondition Failed"
        case 413: "Request Entity Too Large"
        case 429: "Too Many Requests"
        case 501: "Not Implemented"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        default: "Internal Server Error"
        }
    }
}

/// Splits a byte stream into top-level JSON values (objects or scalars) separated by whitespace, as grpc-gateway's
/// streaming decoder reads a request body. Bounded: a value longer than `maxValueBytes` is an error.
struct JSONValueSplitter {
    enum SplitError: Error, Equatable {
        case tooLarge(Int)
        case unexpected(UInt8)
    }

    let maxValueBytes: Int
    private var buffer: [UInt8] = []
    private var depth = 0
    private var inString = false
    private var escaped = false
    private var started = false
    /// A scalar (number, true/false/null) runs until whitespace or the next value.
    private var inScalar = false

    init(maxValueBytes: Int) { self.maxValueBytes = maxValueBytes }

    /// Appends bytes and returns every value they complete.
    mutating func append(_ bytes: some Sequence<UInt8>) throws(SplitError) -> [[UInt8]] {
        var values: [[UInt8]] = []
        for byte in bytes {
            if !started {
                if EtcdGateway.isJSONWhitespace(byte) { continue }
                started = true
                switch byte {
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth = 1
                case UInt8(ascii: "\""): inString = true
                case UInt8(ascii: "}"), UInt8(ascii: "]"), UInt8(ascii: ","), UInt8(ascii: ":"):
                    throw .unexpected(byte)
                default: inScalar = true
                }
                buffer.append(byte)
                continue
            }
            if inScalar {
                if EtcdGateway.isJSONWhitespace(byte) || byte == UInt8(ascii: "{") || byte == UInt8(ascii: "\"") {
                    values.append(take())
                    if !EtcdGateway.isJSONWhitespace(byte) { values.append(contentsOf: try append([byte])) }
                    continue
                }
                buffer.append(byte)
            } else {
                buffer.append(byte)
                if inString {
                    if escaped {
                        escaped = false
                    } else if byte == UInt8(ascii: "\\") {
                        escaped = true
                    } else if byte == UInt8(ascii: "\"") {
                        inString = false
                        if depth == 0 { values.append(take()) }
                    }
                } else {
                    switch byte {
                    case UInt8(ascii: "\""): inString = true
                    case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                    case UInt8(ascii: "}"), UInt8(ascii: "]"):
                        depth -= 1
                        if depth == 0 { values.append(take()) }
                    default: break
                    }
                }
            }
            if buffer.count > maxValueBytes { throw .tooLarge(maxValueBytes) }
        }
        return values
    }

    /// At the end of the body: the value still open (an unterminated one, which the decoder then rejects).
    mutating func finish() -> [UInt8]? {
        guard started else { return nil }
        return take()
    }

    private mutating func take() -> [UInt8] {
        defer {
            buffer = []
            depth = 0
            inString = false
            escaped = false
            started = false
            inScalar = false
        }
        return buffer
    }
}
