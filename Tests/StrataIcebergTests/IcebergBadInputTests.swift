internal import Foundation
internal import StrataTestSupport
internal import Testing

/// Hostile and broken input over raw sockets: oversized bodies, deep or binary JSON, garbage request lines,
/// traversal in percent-encoded names. Each gets a clear error (or a closed connection), nothing is written, and
/// the server keeps answering. Then the catalog's series on the shared `/metrics`.
@Suite("Iceberg bad input and metrics")
struct IcebergBadInputTests {
    func post(_ server: IcebergTestServer, _ path: String, _ body: [UInt8]) -> TestNetwork.HTTPResponse? {
        TestNetwork.request(port: server.port, method: "POST", path: path, body: body, timeoutSeconds: 20)
    }

    func errorType(_ response: TestNetwork.HTTPResponse?) -> String? {
        guard let response, let data = response.body.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let error = object["error"] as? [String: Any]
        else { return nil }
        return error["type"] as? String
    }

    @Test func brokenRequestsGetClearErrorsAndChangeNothing() throws {
        let server = try IcebergTestServer(settings: "max_request_bytes = \"64KiB\"")
        let big =
            Array(#"{"namespace":["big"],"properties":{"k":""#.utf8) + [UInt8](repeating: 0x61, count: 100_000)
            + Array(#""}}"#.utf8)
        let tooLarge = post(server, "/v1/namespaces", big)
        #expect(tooLarge?.status == 413, "\(String(describing: tooLarge))")
        let deep = Array(String(repeating: "[", count: 60_000).utf8)
        #expect(post(server, "/v1/namespaces", deep)?.status == 400)
        let binary: [UInt8] = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919) }
        #expect(errorType(post(server, "/v1/namespaces", binary)) == "BadRequestException")
        #expect(post(server, "/v1/namespaces", [0xFF, 0xFE, 0x7B, 0x7D])?.status == 400)
        let wrongTypes = Array(#"{"namespace":[1,2],"properties":{"a":true}}"#.utf8)
        #expect(errorType(post(server, "/v1/namespaces", wrongTypes)) == "BadRequestException")
        let traversal = post(server, "/v1/namespaces/..%2F..%2Fetc/tables", Array(#"{"name":"t","schema":{}}"#.utf8))
        #expect(traversal?.status == 400, "\(String(describing: traversal))")
        // Garbage instead of HTTP, and a request line that never ends: the connection is refused or closed.
        _ = TestNetwork.exchange(port: server.port, [0x16, 0x03, 0x01, 0x00, 0xFF] + binary, timeoutSeconds: 5)
        _ = TestNetwork.exchange(
            port: server.port,
            Array(("GET /" + String(repeating: "a", count: 200_000)).utf8),
            timeoutSeconds: 5
        )
        for _ in 0..<3 {
            _ = TestNetwork.exchange(
                port: server.port,
                Array("POST /v1/namespaces HTTP/1.1\r\nContent-Length: 99\r\n\r\n{".utf8),
                timeoutSeconds: 1
            )
        }
        let listed = TestNetwork.get(port: server.port, path: "/v1/namespaces")
        #expect(
            listed?.status == 200 && listed?.body.contains(#""namespaces":[]"#) == true,
            "\(String(describing: listed))"
        )
        #expect(server.strata.process.isRunning)
    }

    @Test func metricsCountRequestsCommitsConflictsAndObjects() throws {
        let server = try IcebergTestServer()
        let schema = #"{"type":"struct","fields":[{"id":1,"name":"id","required":false,"type":"long"}]}"#
        #expect(post(server, "/v1/namespaces", Array(#"{"namespace":["m"]}"#.utf8))?.status == 200)
        #expect(
            post(server, "/v1/namespaces/m/tables", Array(#"{"name":"t","schema":\#(schema)}"#.utf8))?.status == 200
        )
        let commit = #"{"requirements":[],"updates":[{"action":"set-properties","updates":{"a":"b"}}]}"#
        #expect(post(server, "/v1/namespaces/m/tables/t", Array(commit.utf8))?.status == 200)
        let conflict = #"{"requirements":[{"type":"assert-table-uuid","uuid":"x"}],"updates":[]}"#
        #expect(post(server, "/v1/namespaces/m/tables/t", Array(conflict.utf8))?.status == 409)
        #expect(TestNetwork.get(port: server.port, path: "/v1/namespaces/m/tables/zz")?.status == 404)
        let metrics = TestNetwork.get(port: server.strata.adminPort, path: "/metrics")?.body ?? ""
        for expected in [
            #"strata_iceberg_requests_total{route="POST /v1/{prefix}/namespaces",status="200"} 1"#,
            #"strata_iceberg_requests_total{route="POST /v1/{prefix}/namespaces/{namespace}/tables/{table}",status="409"} 1"#,
            #"strata_iceberg_requests_total{route="GET /v1/{prefix}/namespaces/{namespace}/tables/{table}",status="404"} 1"#,
            "strata_iceberg_commit_conflicts_total 1", "strata_iceberg_commit_duration_seconds_count 2",
            "strata_iceberg_tables 1", "strata_iceberg_namespaces 1", "strata_iceberg_views 0",
        ] {
            #expect(
                metrics.contains(expected),
                "\(expected) not in:\n\(metrics.split(separator: "\n").filter { $0.contains("iceberg") }.joined(separator: "\n"))"
            )
        }
    }
}
