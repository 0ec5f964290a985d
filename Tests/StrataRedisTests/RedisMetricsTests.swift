internal import Foundation
internal import StrataTestSupport
internal import Testing

/// The Redis series on the shared `/metrics` of the real binary.
@Suite("Redis metrics on /metrics")
struct RedisMetricsTests {
    @Test func commandsClientsKeysAndExpiriesAreReported() throws {
        let server = try RedisTestServer(sync: "none")
        let client = try server.client()
        for key in ["a", "b", "c"] { _ = try client.call("SET", key, "1") }
        _ = try client.call("GET", "a")
        _ = try client.call("SELECT", "2")
        _ = try client.call("SET", "short", "1", "PX", "1")
        _ = try client.call("SUBSCRIBE", "news")
        let blocked = try server.client()
        try blocked.send(["BLPOP", "queue", "0"])
        var text = ""
        for _ in 0..<100 {
            text = TestNetwork.get(port: server.strata.adminPort, path: "/metrics")?.body ?? ""
            if text.contains("strata_redis_blocked_clients 1.0") && text.contains("strata_redis_expired_keys_total 1") {
                break
            }
            usleep(50_000)
        }
        for expected in [
            "strata_redis_commands_total{command=\"set\"} 4", "strata_redis_commands_total{command=\"get\"} 1",
            "strata_redis_command_duration_seconds_count{command=\"set\"} 4", "strata_redis_connected_clients 2.0",
            "strata_redis_blocked_clients 1.0", "strata_redis_pubsub_channels 1.0", "strata_redis_keys{db=\"0\"} 3.0",
            "strata_redis_keys{db=\"2\"} 0.0", "strata_redis_expired_keys_total 1",
        ] {
            #expect(text.contains(expected), "missing \(expected)")
        }
    }
}
