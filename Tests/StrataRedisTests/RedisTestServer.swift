internal import Foundation
internal import StrataTestSupport

/// Strata serving Redis on a free port (etcd off), as a user runs it, plus helpers shared by the Redis suites.
final class RedisTestServer: @unchecked Sendable {
    let directory = TemporaryDirectory()
    let port = TestNetwork.freePort()
    let strata: StrataProcess

    init(redisSettings: String = "", sync: String = "always") throws {
        strata = try StrataProcess(
            dataDirectory: directory.appending("data"),
            extraConfig: "[storage]\nsync = \"\(sync)\"\n",
            redisConfig: "[redis]\nenabled = true\nlisten = \"127.0.0.1:\(port)\"\n\(redisSettings)"
        )
        do {
            try ReferenceRedis.waitForPort(port)
        } catch {
            throw RedisTestFailure("strata did not start serving Redis:\n\(strata.output)")
        }
    }

    func client() throws -> RESPClient { try RESPClient(port: port) }
}

struct RedisTestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
