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
        let streaming: Streaming
        /// Whether the call reads a sequence of request objects (bidirectional streams).
        var streamsRequests: Bool { streaming == .both }
        /// Whether the call answers with a sequence of `{"result": ...}` lines.
        var streamsResponses: Bool { streaming != .none }
        /// JSON request → protobuf bytes.
        let decodeRequest: @Sendable ([UInt8]) throws -> [UInt8]
        /// Protobuf response bytes → JSON.
        let encodeResponse: @Sendable ([UInt8]) throws -> [UInt8]
    }

    /// How a gateway path streams: not at all, its responses (Snapshot), or both ways (Watch, LeaseKeepAlive).
    enum Streaming {
        case none, responses, both
    }

    static func route<Input: SwiftProtobuf.Message, Output: SwiftProtobuf.Message>(
        _ descriptor: MethodDescriptor,
        _: Input.Type,
        _: Output.Type,
        streaming: Streaming
    ) -> Route {
        Route(
            descriptor: descriptor,
            streaming: streaming,
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

    /// Every path etcd's gateway serves (the `google.api.http` options of etcd's rpc.proto): path, service, method,
    /// request and response types, streaming.
    static let routes: [String: Route] = {
        typealias M = SwiftProtobuf.Message
        let table: [(String, String, String, any M.Type, any M.Type, Streaming)] = [
            ("/v3/kv/range", "KV", "Range", Etcdserverpb_RangeRequest.self, Etcdserverpb_RangeResponse.self, .none),
            ("/v3/kv/put", "KV", "Put", Etcdserverpb_PutRequest.self, Etcdserverpb_PutResponse.self, .none),
            (
                "/v3/kv/deleterange", "KV", "DeleteRange", Etcdserverpb_DeleteRangeRequest.self,
                Etcdserverpb_DeleteRangeResponse.self, .none
            ),
            ("/v3/kv/txn", "KV", "Txn", Etcdserverpb_TxnRequest.self, Etcdserverpb_TxnResponse.self, .none),
            (
                "/v3/kv/compaction", "KV", "Compact", Etcdserverpb_CompactionRequest.self,
                Etcdserverpb_CompactionResponse.self, .none
            ),
            ("/v3/watch", "Watch", "Watch", Etcdserverpb_WatchRequest.self, Etcdserverpb_WatchResponse.self, .both),
            (
                "/v3/lease/grant", "Lease", "LeaseGrant", Etcdserverpb_LeaseGrantRequest.self,
                Etcdserverpb_LeaseGrantResponse.self, .none
            ),
            (
                "/v3/lease/revoke", "Lease", "LeaseRevoke", Etcdserverpb_LeaseRevokeRequest.self,
                Etcdserverpb_LeaseRevokeResponse.self, .none
            ),
            (
                "/v3/lease/keepalive", "Lease", "LeaseKeepAlive", Etcdserverpb_LeaseKeepAliveRequest.self,
                Etcdserverpb_LeaseKeepAliveResponse.self, .both
            ),
            (
                "/v3/lease/timetolive", "Lease", "LeaseTimeToLive", Etcdserverpb_LeaseTimeToLiveRequest.self,
                Etcdserverpb_LeaseTimeToLiveResponse.self, .none
            ),
            (
                "/v3/lease/leases", "Lease", "LeaseLeases", Etcdserverpb_LeaseLeasesRequest.self,
                Etcdserverpb_LeaseLeasesResponse.self, .none
            ),
            (
                "/v3/cluster/member/add", "Cluster", "MemberAdd", Etcdserverpb_MemberAddRequest.self,
                Etcdserverpb_MemberAddResponse.self, .none
            ),
            (
                "/v3/cluster/member/remove", "Cluster", "MemberRemove", Etcdserverpb_MemberRemoveRequest.self,
                Etcdserverpb_MemberRemoveResponse.self, .none
            ),
            (
                "/v3/cluster/member/update", "Cluster", "MemberUpdate", Etcdserverpb_MemberUpdateRequest.self,
                Etcdserverpb_MemberUpdateResponse.self, .none
            ),
            (
                "/v3/cluster/member/list", "Cluster", "MemberList", Etcdserverpb_MemberListRequest.self,
                Etcdserverpb_MemberListResponse.self, .none
            ),
            (
                "/v3/cluster/member/promote", "Cluster", "MemberPromote", Etcdserverpb_MemberPromoteRequest.self,
                Etcdserverpb_MemberPromoteResponse.self, .none
            ),
            (
                "/v3/maintenance/alarm", "Maintenance", "Alarm", Etcdserverpb_AlarmRequest.self,
                Etcdserverpb_AlarmResponse.self, .none
            ),
            (
                "/v3/maintenance/status", "Maintenance", "Status", Etcdserverpb_StatusRequest.self,
                Etcdserverpb_StatusResponse.self, .none
            ),
            (
                "/v3/maintenance/defragment", "Maintenance", "Defragment", Etcdserverpb_DefragmentRequest.self,
                Etcdserverpb_DefragmentResponse.self, .none
            ),
            (
                "/v3/maintenance/hash", "Maintenance", "Hash", Etcdserverpb_HashRequest.self,
                Etcdserverpb_HashResponse.self, .none
            ),
            (
                "/v3/maintenance/hashkv", "Maintenance", "HashKV", Etcdserverpb_HashKVRequest.self,
                Etcdserverpb_HashKVResponse.self, .none
            ),
            (
                "/v3/maintenance/snapshot", "Maintenance", "Snapshot", Etcdserverpb_SnapshotRequest.self,
                Etcdserverpb_SnapshotResponse.self, .responses
            ),
            (
                "/v3/maintenance/transfer-leadership", "Maintenance", "MoveLeader",
                Etcdserverpb_MoveLeaderRequest.self, Etcdserverpb_MoveLeaderResponse.self, .none
            ),
            (
                "/v3/maintenance/downgrade", "Maintenance", "Downgrade", Etcdserverpb_DowngradeRequest.self,
                Etcdserverpb_DowngradeResponse.self, .none
            ),
            (
                "/v3/auth/enable", "Auth", "AuthEnable", Etcdserverpb_AuthEnableRequest.self,
                Etcdserverpb_AuthEnableResponse.self, .none
            ),
            (
                "/v3/auth/disable", "Auth", "AuthDisable", Etcdserverpb_AuthDisableRequest.self,
                Etcdserverpb_AuthDisableResponse.self, .none
            ),
            (
                "/v3/auth/status", "Auth", "AuthStatus", Etcdserverpb_AuthStatusRequest.self,
                Etcdserverpb_AuthStatusResponse.self, .none
            ),
            (
                "/v3/auth/authenticate", "Auth", "Authenticate", Etcdserverpb_AuthenticateRequest.self,
                Etcdserverpb_AuthenticateResponse.self, .none
            ),
            (
                "/v3/auth/user/add", "Auth", "UserAdd", Etcdserverpb_AuthUserAddRequest.self,
                Etcdserverpb_AuthUserAddResponse.self, .none
            ),
            (
                "/v3/auth/user/get", "Auth", "UserGet", Etcdserverpb_AuthUserGetRequest.self,
                Etcdserverpb_AuthUserGetResponse.self, .none
            ),
            (
                "/v3/auth/user/list", "Auth", "UserList", Etcdserverpb_AuthUserListRequest.self,
                Etcdserverpb_AuthUserListResponse.self, .none
            ),
            (
                "/v3/auth/user/delete", "Auth", "UserDelete", Etcdserverpb_AuthUserDeleteRequest.self,
                Etcdserverpb_AuthUserDeleteResponse.self, .none
            ),
            (
                "/v3/auth/user/changepw", "Auth", "UserChangePassword",
                Etcdserverpb_AuthUserChangePasswordRequest.self, Etcdserverpb_AuthUserChangePasswordResponse.self,
                .none
            ),
            (
                "/v3/auth/user/grant", "Auth", "UserGrantRole", Etcdserverpb_AuthUserGrantRoleRequest.self,
                Etcdserverpb_AuthUserGrantRoleResponse.self, .none
            ),
            (
                "/v3/auth/user/revoke", "Auth", "UserRevokeRole", Etcdserverpb_AuthUserRevokeRoleRequest.self,
                Etcdserverpb_AuthUserRevokeRoleResponse.self, .none
            ),
            (
                "/v3/auth/role/add", "Auth", "RoleAdd", Etcdserverpb_AuthRoleAddRequest.self,
                Etcdserverpb_AuthRoleAddResponse.self, .none
            ),
            (
                "/v3/auth/role/get", "Auth", "RoleGet", Etcdserverpb_AuthRoleGetRequest.self,
                Etcdserverpb_AuthRoleGetResponse.self, .none
            ),
            (
                "/v3/auth/role/list", "Auth", "RoleList", Etcdserverpb_AuthRoleListRequest.self,
                Etcdserverpb_AuthRoleListResponse.self, .none
            ),
            (
                "/v3/auth/role/delete", "Auth", "RoleDelete", Etcdserverpb_AuthRoleDeleteRequest.self,
                Etcdserverpb_AuthRoleDeleteResponse.self, .none
            ),
            (
                "/v3/auth/role/grant", "Auth", "RoleGrantPermission",
                Etcdserverpb_AuthRoleGrantPermissionRequest.self, Etcdserverpb_AuthRoleGrantPermissionResponse.self,
                .none
            ),
            (
                "/v3/auth/role/revoke", "Auth", "RoleRevokePermission",
                Etcdserverpb_AuthRoleRevokePermissionRequest.self,
                Etcdserverpb_AuthRoleRevokePermissionResponse.self, .none
            ),
        ]
        // etcd 3.4's older paths for three lease calls.
        let aliases = [
            "/v3/kv/lease/revoke": "/v3/lease/revoke", "/v3/kv/lease/timetolive": "/v3/lease/timetolive",
            "/v3/kv/lease/leases": "/v3/lease/leases",
        ]
        var routes: [String: Route] = [:]
        for (path, service, method, input, output, streaming) in table {
            let descriptor = MethodDescriptor(fullyQualifiedService: "etcdserverpb.\(service)", method: method)
            routes[path] = route(descriptor, input, output, streaming: streaming)
        }
        for (alias, path) in aliases { routes[alias] = routes[path] }
        return routes
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
