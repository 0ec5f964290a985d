import Foundation
import GRPCCore
import StrataEtcdAPI
import StrataTestSupport
import Testing

@testable import StrataEtcd

/// A JSON gateway answer with what legitimately differs between two servers removed: cluster and member IDs and the
/// Raft term in every `header`, and the text of errors the JSON decoder itself produces (Go's and SwiftProtobuf's
/// wording differ; the gRPC code and HTTP status must not).
struct GatewayAnswer: Equatable, CustomStringConvertible {
    var status: Int
    var json: NSObject?
    var text: String

    /// `replacing`: the server's member ID, wherever it appears in the body (alarm members), becomes "MEMBER".
    init(_ response: TestNetwork.HTTPResponse?, decoderError: Bool = false, replacing memberID: String? = nil) {
        status = response?.status ?? -1
        text = response?.body ?? "<no answer>"
        var body = response?.body
        if let memberID { body = body?.replacingOccurrences(of: memberID, with: "MEMBER") }
        guard let data = body?.data(using: .utf8),
            let parsed = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        else { return }
        var normalized = Self.normalize(parsed)
        if decoderError, var object = normalized as? [String: Any] {
            object["error"] = "<decoder>"
            object["message"] = "<decoder>"
            normalized = object
        }
        json = normalized as? NSObject
        text = ""
    }

    static func normalize(_ value: Any) -> Any {
        switch value {
        case let object as [String: Any]:
            var out: [String: Any] = [:]
            for (key, child) in object {
                if key == "header", var header = child as? [String: Any] {
                    header["cluster_id"] = nil
                    header["member_id"] = nil
                    header["raft_term"] = nil
                    out[key] = header
                } else {
                    out[key] = normalize(child)
                }
            }
            return out
        case let array as [Any]: return array.map(normalize)
        default: return value
        }
    }

    mutating func dropHeader() {
        guard var object = json as? [String: Any] else { return }
        object["header"] = nil
        json = object as NSDictionary
    }

    var description: String { "\(status) \(json.map { "\($0)" } ?? text)" }
}

@Suite("etcd JSON gateway and HTTP endpoints on the client port, against etcd 3.4")
struct GatewayDifferentialTests {
    /// One request to both servers.
    struct Step {
        var method = "POST"
        var path: String
        var body: String?
        /// The answer's error text comes from the JSON decoder: compare code and status only.
        var decoderError = false
        var ignoresHeader = false
    }

    static func b64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    @Test func sameAnswersAsEtcd() async throws {
        let a = Self.b64("a")
        let b = Self.b64("b")
        let foo = Self.b64("foo")
        let z = Self.b64("z")
        let steps: [Step] = [
            // A store never compacted accepts one compaction at revision 0 (etcd's starts at -1), then refuses it.
            Step(path: "/v3/kv/compaction", body: #"{"revision":0}"#),
            Step(path: "/v3/kv/compaction", body: #"{"revision":0}"#),
            Step(path: "/v3/kv/put", body: #"{"key":"\#(foo)","value":"\#(Self.b64("bar"))"}"#),
            Step(path: "/v3/kv/put", body: #"{"key":"\#(a)","value":"\#(Self.b64("1"))","prev_kv":true}"#),
            Step(path: "/v3/kv/put", body: #"{"key":"\#(a)","value":"\#(Self.b64("2"))","prev_kv":true}"#),
            Step(path: "/v3/kv/put", body: #"{"key":"\#(b)","value":"\#(Self.b64("3"))"}"#),
            Step(path: "/v3/kv/range", body: #"{"key":"\#(a)"}"#),
            Step(
                path: "/v3/kv/range",
                body: #"{"key":"\#(a)","range_end":"\#(z)","sort_order":"DESCEND","sort_target":"KEY","limit":1}"#
            ),
            Step(path: "/v3/kv/range", body: #"{"key":"\#(a)","range_end":"\#(z)","keys_only":true,"sortOrder":1}"#),
            Step(path: "/v3/kv/range", body: #"{"key":"\#(a)","range_end":"\#(z)","count_only":true}"#),
            Step(path: "/v3/kv/range", body: #"{"key":"AA==","range_end":"AA==","revision":"3"}"#),
            Step(path: "/v3/kv/range", body: #"{"key":"\#(a)","revision":100}"#),
            // grpc-gateway ignores unknown fields and whatever follows the first JSON value.
            Step(path: "/v3/kv/range", body: #"{"key":"\#(a)","no_such_field":{"x":[1,"}"]}}"#),
            Step(path: "/v3/kv/range", body: #"{"key":"\#(a)"} trailing"#),
            Step(path: "/v3/kv/range", body: #"{"key":"\#(a)","sort_order":"NOPE"}"#, decoderError: true),
            Step(path: "/v3/kv/range", body: #"{"key":"#, decoderError: true),
            Step(path: "/v3/kv/range", body: #"{"key":"\#(a)","limit":"abc"}"#, decoderError: true),
            Step(path: "/v3/kv/put", body: "", decoderError: false),
            Step(path: "/v3/kv/put", body: #"{"key":"\#(a)","ignore_value":true,"value":"\#(b)"}"#),
            Step(
                path: "/v3/kv/txn",
                body: #"""
                    {"compare":[{"key":"\#(a)","result":"EQUAL","target":"VERSION","version":"2"}],\#
                    "success":[{"request_put":{"key":"\#(b)","value":"\#(Self.b64("x"))"}}],\#
                    "failure":[{"request_range":{"key":"\#(a)"}}]}
                    """#
            ),
            Step(
                path: "/v3/kv/txn",
                body: #"""
                    {"compare":[{"key":"\#(a)","result":"GREATER","target":"MOD","mod_revision":"100"}],\#
                    "success":[{"request_delete_range":{"key":"\#(a)"}}],\#
                    "failure":[{"request_range":{"key":"\#(a)","range_end":"\#(z)"}}]}
                    """#
            ),
            Step(
                path: "/v3/kv/txn",
                body: #"{"success":[{"request_put":{"key":"\#(a)"}},{"request_put":{"key":"\#(a)"}}]}"#
            ),
            Step(path: "/v3/kv/compaction", body: #"{"revision":3}"#),
            Step(path: "/v3/kv/range", body: #"{"key":"\#(a)","revision":2}"#),
            Step(path: "/v3/kv/compaction", body: #"{"revision":2}"#),
            Step(path: "/v3/kv/deleterange", body: #"{"key":"\#(a)","range_end":"\#(z)","prev_kv":true}"#),
            Step(path: "/v3/lease/grant", body: #"{"TTL":60,"ID":4242}"#),
            Step(path: "/v3/lease/grant", body: #"{"TTL":60,"ID":4242}"#),
            Step(path: "/v3/kv/put", body: #"{"key":"\#(Self.b64("leased"))","lease":"4242"}"#),
            Step(path: "/v3/kv/lease/timetolive", body: #"{"ID":"4242","keys":true}"#),
            Step(path: "/v3/lease/timetolive", body: #"{"ID":"1"}"#),
            Step(path: "/v3/lease/leases", body: "{}"),
            Step(path: "/v3/lease/revoke", body: #"{"ID":"4242"}"#),
            Step(path: "/v3/kv/lease/revoke", body: #"{"ID":"4242"}"#),
            Step(path: "/v3/kv/range", body: #"{"key":"\#(Self.b64("leased"))"}"#),
            // etcd 3.4 leaves the header out of Alarm responses; Strata fills it as in every other response.
            Step(path: "/v3/maintenance/alarm", body: #"{"action":"GET"}"#, ignoresHeader: true),
            Step(path: "/v3/maintenance/transfer-leadership", body: #"{"targetID":"5"}"#),
            Step(path: "/v3/cluster/member/remove", body: #"{"ID":"5"}"#),
            // Not gateway calls, or not allowed ones.
            Step(method: "GET", path: "/v3/kv/range"),
            Step(method: "PUT", path: "/v3/kv/range", body: "{}"),
            Step(path: "/v3/kv/nothing", body: "{}"),
            Step(method: "GET", path: "/nothing"),
            Step(method: "OPTIONS", path: "/v3/kv/range"),
            Step(method: "POST", path: "/health"),
            Step(method: "POST", path: "/version"),
        ]
        try await withEtcdAndStrataPorts { etcdPort, strataPort, _ in
            for (index, step) in steps.enumerated() {
                let etcd = await TestNetwork.httpRequest(
                    port: etcdPort,
                    method: step.method,
                    path: step.path,
                    body: step.body
                )
                let strata = await TestNetwork.httpRequest(
                    port: strataPort,
                    method: step.method,
                    path: step.path,
                    body: step.body
                )
                var etcdAnswer = GatewayAnswer(etcd, decoderError: step.decoderError)
                var strataAnswer = GatewayAnswer(strata, decoderError: step.decoderError)
                if step.ignoresHeader {
                    etcdAnswer.dropHeader()
                    strataAnswer.dropHeader()
                }
                #expect(
                    etcdAnswer == strataAnswer,
                    "step \(index) \(step.method) \(step.path) \(step.body ?? ""):\n etcd:   \(etcdAnswer)\n strata: \(strataAnswer)"
                )
                // etcd's CORS wrapper answers every request with these; browsers and some tools rely on them.
                #expect(strata?.headers["access-control-allow-origin"] == "*")
            }
        }
    }

    /// NOSPACE raised and cleared through the Alarm RPC: puts, put-carrying txns and lease grants fail with etcd's
    /// error while deletes, delete-only txns, reads and compaction go on.
    @Test func noSpaceAlarmMatchesEtcd() async throws {
        try await withEtcdAndStrataPorts { etcdPort, strataPort, strataAdminPort in
            func memberID(_ port: Int) async -> String {
                let status = await TestNetwork.httpRequest(port: port, path: "/v3/maintenance/status", body: "{}")
                let json = status.flatMap { try? JSONSerialization.jsonObject(with: Data($0.body.utf8)) }
                let header = (json as? [String: Any])?["header"] as? [String: Any]
                return header?["member_id"] as? String ?? "0"
            }
            let x = Self.b64("x")
            let steps: [(String, String)] = [
                ("/v3/kv/put", #"{"key":"\#(x)","value":"\#(x)"}"#),
                ("/v3/maintenance/alarm", #"{"action":"ACTIVATE","memberID":"MEMBER","alarm":"NOSPACE"}"#),
                ("/v3/maintenance/alarm", #"{"action":"GET"}"#),
                ("/v3/kv/put", #"{"key":"\#(x)","value":"\#(x)"}"#),
                ("/v3/kv/txn", #"{"success":[{"request_put":{"key":"\#(x)"}}]}"#),
                ("/v3/lease/grant", #"{"TTL":30}"#),
                ("/v3/kv/range", #"{"key":"\#(x)"}"#),
                ("/v3/kv/txn", #"{"success":[{"request_range":{"key":"\#(x)"}}]}"#),
                ("/v3/kv/deleterange", #"{"key":"\#(x)"}"#),
                ("/v3/kv/txn", #"{"success":[{"request_delete_range":{"key":"\#(x)"}}]}"#),
                ("/v3/kv/compaction", #"{"revision":2}"#),
                ("/v3/maintenance/alarm", #"{"action":"DEACTIVATE","memberID":"MEMBER","alarm":"NOSPACE"}"#),
                ("/v3/maintenance/alarm", #"{"action":"GET"}"#),
                ("/v3/kv/put", #"{"key":"\#(x)","value":"\#(x)"}"#),
            ]
            // Not compared: a put inside a nested txn. etcd 3.4's quota counts only top-level puts, so the nested one
            // gets through under NOSPACE; Strata refuses any txn that can write a value (checked below on its own).
            let etcdMember = await memberID(etcdPort)
            let strataMember = await memberID(strataPort)
            for (index, (path, body)) in steps.enumerated() {
                let etcd = await TestNetwork.httpRequest(
                    port: etcdPort,
                    path: path,
                    body: body.replacingOccurrences(of: "MEMBER", with: etcdMember)
                )
                let strata = await TestNetwork.httpRequest(
                    port: strataPort,
                    path: path,
                    body: body.replacingOccurrences(of: "MEMBER", with: strataMember)
                )
                var etcdAnswer = GatewayAnswer(etcd, replacing: etcdMember)
                var strataAnswer = GatewayAnswer(strata, replacing: strataMember)
                if path == "/v3/maintenance/alarm" {
                    etcdAnswer.dropHeader()
                    strataAnswer.dropHeader()
                }
                #expect(
                    etcdAnswer == strataAnswer,
                    "step \(index) \(path) \(body):\n etcd:   \(etcdAnswer)\n strata: \(strataAnswer)"
                )
                if index == 2 {
                    // /health reports the alarm unless the probe excludes it (Kind's liveness probe does), on etcd's
                    // client port and on Strata's admin port alike.
                    for query in ["", "?exclude=NOSPACE", "?exclude=CORRUPT&serializable=true"] {
                        let etcdHealth = await TestNetwork.fetch(port: etcdPort, path: "/health\(query)")
                        for port in [strataPort, strataAdminPort] {
                            let strataHealth = await TestNetwork.fetch(port: port, path: "/health\(query)")
                            #expect(strataHealth?.status == etcdHealth?.status, "/health\(query) on \(port)")
                            let healthy = etcdHealth?.status == 200
                            #expect(strataHealth?.body.hasPrefix(#"{"health":"\#(healthy)""#) == true)
                            if !healthy { #expect(strataHealth?.body.contains(#""reason":"ALARM NOSPACE""#) == true) }
                        }
                    }
                    let nested = #"{"failure":[{"request_txn":{"success":[{"request_put":{"key":"\#(x)"}}]}}]}"#
                    let refused = await TestNetwork.httpRequest(port: strataPort, path: "/v3/kv/txn", body: nested)
                    #expect(refused?.status == 429)
                    #expect(refused?.body.contains("etcdserver: mvcc: database space exceeded") == true)
                }
            }
        }
    }

    @Test func watchAndKeepAliveStreamsMatchEtcd() async throws {
        let key = Self.b64("watched")
        try await withEtcdAndStrataPorts { etcdPort, strataPort, _ in
            func run(_ port: Int) async -> [GatewayAnswer] {
                // Two watchers on one stream (ids 0 and 1); the puts land while it is open; the server never ends a
                // watch stream, so the read ends at the sixth answer (two created, two events each), or after 15 s of
                // quiet: a machine busy with fsyncs can hold etcd's puts for seconds. The puts wait 1.5 s for both
                // watchers to exist.
                let request = #"""
                    {"create_request":{"key":"\#(key)","prev_kv":true}} {"create_request":{"key":"\#(key)","start_revision":1}}
                    """#
                async let lines = TestNetwork.httpRequest(
                    port: port,
                    path: "/v3/watch",
                    body: request,
                    timeoutSeconds: 15,
                    until: { bytes in
                        String(decoding: bytes, as: UTF8.self).components(separatedBy: "\"result\"").count > 6
                    }
                )
                try? await Task.sleep(nanoseconds: 1_500_000_000)
                for value in ["1", "2"] {
                    _ = await TestNetwork.httpRequest(
                        port: port,
                        path: "/v3/kv/put",
                        body: #"{"key":"\#(key)","value":"\#(Self.b64(value))"}"#
                    )
                }
                let response = await lines
                let answers =
                    response?.body.split(separator: "\n").map {
                        GatewayAnswer(
                            TestNetwork.HTTPResponse(status: response?.status ?? -1, headers: [:], body: String($0))
                        )
                    } ?? []
                return answers
            }
            // Each watcher's responses in order; how two watchers' responses interleave is up to the server.
            func byWatcher(_ answers: [GatewayAnswer]) -> [String: [GatewayAnswer]] {
                Dictionary(grouping: answers) { answer in
                    let result = (answer.json as? [String: Any])?["result"] as? [String: Any]
                    return result?["watch_id"].map { "\($0)" } ?? "0"
                }
            }
            let etcd = await run(etcdPort)
            let strata = await run(strataPort)
            #expect(etcd.count == 6, "etcd: \(etcd)")
            #expect(byWatcher(etcd) == byWatcher(strata), "\n etcd:   \(etcd)\n strata: \(strata)")

            // LeaseKeepAlive: one answer per request object; the stream ends with the request body.
            let grant = #"{"TTL":30,"ID":777}"#
            _ = await TestNetwork.httpRequest(port: etcdPort, path: "/v3/lease/grant", body: grant)
            _ = await TestNetwork.httpRequest(port: strataPort, path: "/v3/lease/grant", body: grant)
            let keepAlive = #"{"ID":777} {"ID":778}"#
            let etcdKeepAlive = await TestNetwork.httpRequest(
                port: etcdPort,
                path: "/v3/lease/keepalive",
                body: keepAlive
            )
            let strataKeepAlive = await TestNetwork.httpRequest(
                port: strataPort,
                path: "/v3/lease/keepalive",
                body: keepAlive
            )
            let lines = { (response: TestNetwork.HTTPResponse?) in
                response?.body.split(separator: "\n").map {
                    GatewayAnswer(
                        TestNetwork.HTTPResponse(status: response?.status ?? -1, headers: [:], body: String($0))
                    )
                } ?? []
            }
            #expect(lines(etcdKeepAlive).count == 2)
            #expect(lines(etcdKeepAlive) == lines(strataKeepAlive))
        }
    }
}

/// Debian's etcd 3.4 and Strata on free loopback ports, for tests that talk HTTP to both; `body` runs once etcd
/// answers `/health`, and Strata must then stop cleanly.
func withEtcdAndStrataPorts(
    _ body: (_ etcdPort: Int, _ strataPort: Int, _ strataAdminPort: Int) async throws -> Void
) async throws {
    let etcd = try ReferenceEtcd()
    try await withStrata { strata, strataPort in
        #expect(await etcd.waitUntilReady(), "etcd did not start")
        try await body(etcd.port, strataPort, strata.adminPort)
    }
}

@Suite("HTTP/1.1 on the etcd port")
struct EtcdPortHTTPTests {
    @Test func healthVersionAndMetrics() async throws {
        try await withStrata { _, port in
            let health = await TestNetwork.fetch(port: port, path: "/health?serializable=true")
            #expect(health?.status == 200)
            #expect(health?.body == #"{"health":"true","reason":""}"#)
            let version = await TestNetwork.fetch(port: port, path: "/version")
            #expect(version?.body == #"{"etcdserver":"3.5.17","etcdcluster":"3.5.0"}"#)
            let metrics = await TestNetwork.fetch(port: port, path: "/metrics")
            #expect(metrics?.status == 200)
            #expect(metrics?.body.contains("strata_mvcc_revision") == true)
        }
    }

    /// curl asks for "100 Continue" before sending a body above 1 MiB and otherwise waits a second.
    @Test func expectContinueIsAnswered() async throws {
        try await withStrata { _, port in
            let body = #"{"key":"YQ==","value":"Yg=="}"#
            let request =
                "POST /v3/kv/put HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nConnection: close\r\n"
                + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
            let answer = await TestNetwork.exchangeAsync(port: port, Array(request.utf8))
            let text = answer.map { String(decoding: $0, as: UTF8.self) } ?? ""
            #expect(text.hasPrefix("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"), "got: \(text)")
        }
    }

    @Test func shutdownEndsAnOpenGatewayWatch() async throws {
        let directory = TemporaryDirectory()
        let port = TestNetwork.freePort()
        let strata = try StrataProcess(
            dataDirectory: directory.appending("data"),
            etcdConfig: "[etcd]\nenabled = true\nlisten = \"127.0.0.1:\(port)\""
        )
        #expect(strata.waitUntilHealthy(), "output:\n\(strata.output)")
        let body = #"{"create_request":{"key":"YQ=="}}"#
        let request =
            "POST /v3/watch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        async let watch = TestNetwork.exchangeReportingCloseAsync(port: port, Array(request.utf8), timeoutSeconds: 60)
        try await Task.sleep(nanoseconds: 500_000_000)
        #expect(strata.stop() == 0)
        let answer = await watch
        // The server closed the connection as it stopped (the read did not just time out), after the created answer.
        #expect(answer?.closedByServer == true)
        #expect(answer.map { String(decoding: $0.bytes, as: UTF8.self).contains(#""created":true"#) } == true)
    }

    @Test func badInputGetsAnErrorAndTheServerCarriesOn() async throws {
        try await withStrata { strata, port in
            // A body past the bound is refused without being read to its end.
            let huge = String(repeating: "a", count: 8 << 20)
            // (A long timeout: on a loaded machine sending 8 MiB can take more than the default 5 s.)
            let tooLarge = await TestNetwork.httpRequest(
                port: port,
                path: "/v3/kv/put",
                body: #"{"key":"\#(huge)"}"#,
                timeoutSeconds: 60
            )
            #expect(tooLarge?.status == 429)
            #expect(tooLarge?.body.contains("grpc: received message larger than max") == true)
            // Within the gRPC limit but over max_request_bytes: etcd's own "request is too large" (400).
            let value = Data(repeating: 0x61, count: 1_700_000).base64EncodedString()
            let large = await TestNetwork.httpRequest(
                port: port,
                path: "/v3/kv/put",
                body: #"{"key":"YQ==","value":"\#(value)"}"#
            )
            #expect(large?.status == 400)
            #expect(large?.body.contains("etcdserver: request is too large") == true)
            // Not HTTP at all: 400, and the server closes the connection; a broken HTTP/2 preface: GOAWAY and close.
            let garbage = await TestNetwork.exchangeReportingCloseAsync(
                port: port,
                Array("\u{1}\u{2}garbage\r\n\r\n".utf8),
                timeoutSeconds: 30
            )
            #expect(garbage.map { String(decoding: $0.bytes, as: UTF8.self).hasPrefix("HTTP/1.1 400") } == true)
            #expect(garbage?.closedByServer == true)
            let preface = await TestNetwork.exchangeReportingCloseAsync(
                port: port,
                Array("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n".utf8),
                timeoutSeconds: 30
            )
            #expect(preface?.closedByServer == true)
            // A streaming call whose first request object is not JSON: etcd's 500 with gRPC code Unknown.
            let watch = await TestNetwork.httpRequest(port: port, path: "/v3/watch", body: "{bad")
            #expect(watch?.status == 500)
            #expect(watch?.body.contains(#""code":2"#) == true)
            // Still serving both protocols.
            let put = await TestNetwork.httpRequest(
                port: port,
                path: "/v3/kv/put",
                body: #"{"key":"YQ==","value":"Yg=="}"#
            )
            #expect(put?.status == 200)
            #expect(strata.waitUntilHealthy())
            let etcdctl = try Etcdctl(port: port).call(["get", "a", "--print-value-only"])
            #expect(etcdctl.output == "b\n")
        }
    }
}

@Suite("JSON gateway: randomized bad input")
struct GatewayFuzzTests {
    /// Seeded mutations of valid gateway requests (bytes flipped, dropped, duplicated, cut short) on unary and
    /// streaming paths, some sent as a pipeline on one connection: every request is answered or the connection
    /// closed, and the server stays healthy and correct afterwards.
    @Test(arguments: [0x5EED_0001 as UInt64, 0x5EED_0002])
    func mutatedRequestsNeverHurtTheServer(seed: UInt64) async throws {
        var random = SeededRandom(seed: seed)
        let seeds: [(String, String)] = [
            ("/v3/kv/put", #"{"key":"YQ==","value":"Yg==","prev_kv":true,"lease":"0"}"#),
            ("/v3/kv/range", #"{"key":"YQ==","range_end":"eg==","limit":5,"sort_order":"DESCEND","revision":"1"}"#),
            (
                "/v3/kv/txn",
                #"{"compare":[{"key":"YQ==","result":"EQUAL","target":"VALUE","value":"Yg=="}],"success":[{"request_put":{"key":"Yw=="}}],"failure":[{"request_txn":{"success":[]}}]}"#
            ),
            (
                "/v3/watch",
                #"{"create_request":{"key":"YQ==","filters":["NOPUT"]}} {"cancel_request":{"watch_id":"0"}}"#
            ),
            ("/v3/lease/keepalive", #"{"ID":"1"} {"ID":2}"#),
            ("/v3/lease/grant", #"{"TTL":"5","ID":"-3"}"#),
            ("/v3/maintenance/alarm", #"{"action":"ACTIVATE","alarm":"CORRUPT"}"#),
        ]
        try await withStrata { strata, port in
            for round in 0..<100 {
                let (path, valid) = seeds[Int.random(in: 0..<seeds.count, using: &random)]
                var body = Array(valid.utf8)
                for _ in 0..<Int.random(in: 1...4, using: &random) where !body.isEmpty {
                    let at = Int.random(in: 0..<body.count, using: &random)
                    switch Int.random(in: 0..<5, using: &random) {
                    case 0: body[at] = UInt8.random(in: 0...255, using: &random)
                    case 1: body.remove(at: at)
                    case 2: body.insert(body[at], at: at)
                    case 3: body = Array(body[..<at])
                    default: body.insert(contentsOf: Array(#"{"x":[{"#.utf8), at: at)
                    }
                }
                // Every tenth request goes twice on one keep-alive connection (the second after the first's answer).
                let pipelined = round % 10 == 0
                let connection = pipelined ? "keep-alive" : "close"
                let head =
                    "POST \(path) HTTP/1.1\r\nHost: x\r\nConnection: \(connection)\r\nContent-Length: \(body.count)\r\n\r\n"
                let request = Array(head.utf8) + body
                let answer = await TestNetwork.exchangeAsync(
                    port: port,
                    pipelined ? request + request : request,
                    timeoutSeconds: 1
                )
                let text = answer.map { String(decoding: $0, as: UTF8.self) } ?? ""
                // A watch stream that got no valid request has nothing to answer yet (etcd's gateway neither): it stays
                // open like any watch stream. Everything else is answered.
                let idleWatch = path == "/v3/watch" && text.isEmpty
                #expect(
                    text.hasPrefix("HTTP/1.1 ") || idleWatch,
                    "seed 0x\(String(seed, radix: 16)) round \(round): \(path) \(String(decoding: body, as: UTF8.self)) → \(text)"
                )
            }
            #expect(strata.waitUntilHealthy())
            let put = await TestNetwork.httpRequest(
                port: port,
                path: "/v3/kv/put",
                body: #"{"key":"ZmluYWw=","value":"b2s="}"#
            )
            #expect(put?.status == 200)
            let get = await TestNetwork.httpRequest(port: port, path: "/v3/kv/range", body: #"{"key":"ZmluYWw="}"#)
            #expect(get?.body.contains(#""value":"b2s=""#) == true)
        }
    }
}

@Suite("JSON values of a gateway request stream")
struct JSONValueSplitterTests {
    @Test func splitsValuesAcrossChunks() throws {
        var splitter = JSONValueSplitter(maxValueBytes: 1024)
        var values: [String] = []
        let text = #" {"a":"}{\"","b":[1,{"c":2}]}{"d":1}  7 "s\"x" {"e":{}}"#
        for chunk in text.utf8.map({ [$0] }) {
            values += try splitter.append(chunk).map { String(decoding: $0, as: UTF8.self) }
        }
        if let last = splitter.finish() { values.append(String(decoding: last, as: UTF8.self)) }
        #expect(values == [#"{"a":"}{\"","b":[1,{"c":2}]}"#, #"{"d":1}"#, "7", #""s\"x""#, #"{"e":{}}"#])
    }

    @Test func boundsAndRejects() {
        var splitter = JSONValueSplitter(maxValueBytes: 8)
        #expect(throws: JSONValueSplitter.SplitError.tooLarge(8)) {
            try splitter.append(Array(#"{"key":"value"}"#.utf8))
        }
        var other = JSONValueSplitter(maxValueBytes: 8)
        #expect(throws: JSONValueSplitter.SplitError.unexpected(UInt8(ascii: "}"))) {
            try other.append(Array("}".utf8))
        }
        var open = JSONValueSplitter(maxValueBytes: 64)
        #expect((try? open.append(Array(#"{"a":"#.utf8))) == [])
        #expect(open.finish() == Array(#"{"a":"#.utf8))
    }

    /// Every gateway path names a method etcd's services have, and every unary and streaming method of them has a path.
    @Test func routesCoverEtcdsServices() {
        let generated =
            Etcdserverpb_KV.Method.descriptors + Etcdserverpb_Watch.Method.descriptors
            + Etcdserverpb_Lease.Method.descriptors + Etcdserverpb_Cluster.Method.descriptors
            + Etcdserverpb_Maintenance.Method.descriptors + Etcdserverpb_Auth.Method.descriptors
        let names = Set(generated.map { "\($0)" })
        let routed = Set(EtcdGateway.routes.values.map { "\($0.descriptor)" })
        #expect(routed.isSubset(of: names), "\(routed.subtracting(names))")
        // RangeStream has no gateway path in etcd's rpc.proto.
        #expect(names.subtracting(routed) == ["etcdserverpb.KV/RangeStream"])
        #expect(EtcdGateway.routes.count == 44)
        #expect(EtcdGateway.routes["/v3/watch"]?.streamsRequests == true)
        #expect(EtcdGateway.routes["/v3/maintenance/snapshot"]?.streamsRequests == false)
        #expect(EtcdGateway.routes["/v3/maintenance/snapshot"]?.streamsResponses == true)
        #expect(EtcdGateway.routes["/v3/kv/lease/revoke"]?.descriptor.method == "LeaseRevoke")
    }

    @Test func statusTable() {
        #expect(EtcdGateway.httpStatus(for: .invalidArgument) == 400)
        #expect(EtcdGateway.httpStatus(for: .outOfRange) == 400)
        #expect(EtcdGateway.httpStatus(for: .notFound) == 404)
        #expect(EtcdGateway.httpStatus(for: .failedPrecondition) == 412)
        #expect(EtcdGateway.httpStatus(for: .resourceExhausted) == 429)
        #expect(EtcdGateway.httpStatus(for: .unavailable) == 503)
        #expect(
            EtcdGateway.errorBody(code: .invalidArgument, message: "a \"b\"\n")
                == #"{"error":"a \"b\"\n","message":"a \"b\"\n","code":3}"#
        )
        #expect(
            EtcdGateway.streamErrorLine(code: .notFound, message: "gone")
                == #"{"error":{"grpc_code":5,"http_code":404,"message":"gone","http_status":"Not Found"}}"# + "\n"
        )
    }
}
