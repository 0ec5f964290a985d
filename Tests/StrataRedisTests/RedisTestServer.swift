internal import Foundation
internal import StrataTestSupport

/// Strata serving Redis on a free port (etcd off), as a user runs it, plus helpers shared by the Redis suites.
final class RedisTestServer: @unchecked Sendable {
    let directory: TemporaryDirectory
    let port: Int
    let strata: StrataProcess

    /// `directory` and `port` are given to start again on the data of a stopped server.
    init(
        redisSettings: String = "",
        sync: String = "always",
        directory: TemporaryDirectory = TemporaryDirectory(),
        port: Int = TestNetwork.freePort()
    ) throws {
        self.directory = directory
        self.port = port
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

/// Debian's redis-server and Strata side by side, with a connection to each (after HELLO 3 when `resp` is 3).
struct RedisSideBySide {
    let directory = TemporaryDirectory()
    let reference: ReferenceRedis
    let strata: RedisTestServer
    let expected: RESPClient
    let actual: RESPClient

    init(resp: Int = 2) throws {
        reference = try ReferenceRedis(directory: directory.appending("redis"))
        strata = try RedisTestServer()
        expected = try RESPClient(port: reference.port)
        actual = try strata.client()
        if resp == 3 {
            _ = try expected.call("HELLO", "3")
            _ = try actual.call("HELLO", "3")
        }
    }
}

struct RedisTestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
