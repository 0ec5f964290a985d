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
        port: Int? = nil
    ) throws {
        self.directory = directory
        // A free port can be taken by another test's server between the check and Strata's bind; then the port
        // answers, but not from this process. A server that is not ours is detected (INFO's process_id) and Strata
        // starts again on another port (unless the caller fixed the port, to restart on the same one).
        var attempt = 0
        while true {
            attempt += 1
            let chosen = port ?? TestNetwork.freePort()
            let process = try StrataProcess(
                dataDirectory: directory.appending("data"),
                extraConfig: "[storage]\nsync = \"\(sync)\"\n",
                redisConfig: "[redis]\nenabled = true\nlisten = \"127.0.0.1:\(chosen)\"\n\(redisSettings)"
            )
            do {
                try ReferenceRedis.waitForPort(chosen)
            } catch {
                throw RedisTestFailure("strata did not start serving Redis:\n\(process.output)")
            }
            let info = (try? RESPClient(port: chosen).call("INFO", "server").text) ?? ""
            if info.contains("process_id:\(process.process.processIdentifier)\r\n") || port != nil || attempt == 3 {
                self.port = chosen
                self.strata = process
                return
            }
            _ = process.stop()
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
