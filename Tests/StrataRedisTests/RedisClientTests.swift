internal import Foundation
internal import StrataTestSupport
internal import Testing

/// Real Redis clients against the real binary: redis-cli (plain, `--pipe` mass insertion, `-3`) compared with what
/// it prints for redis-server 7.0, and redis-py (5.x speaking RESP2, 8.x speaking RESP3) running a realistic
/// workload (Tests/PythonClients/redis_workload.py). `make test` makes the redis-py environments
/// (scripts/python-clients.sh); a missing one fails the test.
@Suite("Redis clients: redis-cli and redis-py")
final class RedisClientTests {
    let directory = TemporaryDirectory()

    static let pythonClients =
        ProcessInfo.processInfo.environment["STRATA_PYCLIENTS"]
        ?? repositoryRoot + "/.build/pyclients"

    /// Runs one of Tests/PythonClients' scripts with the Python of `environment` against a fresh Strata (the port
    /// is its first argument) and expects it to print `ok`.
    func runPythonClient(_ environment: String, _ script: String, _ arguments: [String], timeout: Double) throws {
        let python = Self.pythonClients + "/\(environment)/bin/python"
        try #require(
            FileManager.default.isExecutableFile(atPath: python),
            "\(python) is missing: run `make test` or scripts/python-clients.sh"
        )
        let server = try RedisTestServer(sync: "none")
        let result = try runTool(
            python,
            [repositoryRoot + "/Tests/PythonClients/" + script, String(server.port)] + arguments,
            timeoutSeconds: timeout
        )
        #expect(result.status == 0 && result.output.contains("ok"), "\(result.output)\n\(result.errors)")
    }

    @Test(arguments: [("redis5", "2"), ("redis8", "3")])
    func redisPyWorkload(environment: String, resp: String) throws {
        try runPythonClient(environment, "redis_workload.py", [resp], timeout: 120)
    }

    /// ACL through redis-py's API: users made with acl_setuser, username/password logins (AUTH in RESP2, HELLO
    /// AUTH in RESP3), NoPermissionError for every denial and nothing written (Tests/PythonClients/redis_acl.py).
    @Test(arguments: [("redis5", "2"), ("redis8", "3")])
    func redisPyACL(environment: String, resp: String) throws {
        try runPythonClient(environment, "redis_acl.py", [resp], timeout: 120)
    }

    /// rq (a job queue whose results live in streams) enqueues, works and checks jobs; redis-py's Lock runs its
    /// Lua scripts (EVALSHA, reloaded after SCRIPT FLUSH).
    @Test func rqJobQueueWorkload() throws {
        try runPythonClient("rq", "rq_workload.py", [], timeout: 180)
    }

    @Test func redisCLIMassInsertion() throws {
        let server = try RedisTestServer(sync: "none")
        var protocolText: [UInt8] = []
        let count = 20_000
        for index in 0..<count {
            let key = "key:\(index)"
            let value = String(repeating: "v", count: index % 50)
            protocolText += Array(
                "*3\r\n$3\r\nSET\r\n$\(key.utf8.count)\r\n\(key)\r\n$\(value.utf8.count)\r\n\(value)\r\n".utf8
            )
        }
        protocolText += Array("*2\r\n$4\r\nLLEN\r\n$6\r\nkey:10\r\n".utf8)  // one error among the replies
        let result = try runTool("/usr/bin/redis-cli", ["-p", String(server.port), "--pipe"], input: protocolText)
        #expect(result.output.contains("errors: 1, replies: \(count + 1)"), "\(result.output)\n\(result.errors)")
        #expect(try server.client().call("DBSIZE") == .integer(Int64(count)))
        #expect(try server.client().call("STRLEN", "key:49") == .integer(49))
    }

    /// The same redis-cli invocations against redis-server 7.0 and Strata print the same text (RESP2 and `-3`).
    @Test func redisCLIPrintsWhatItPrintsForRedis() throws {
        let reference = try ReferenceRedis(directory: directory.appending("redis"))
        let server = try RedisTestServer(sync: "none")
        let invocations: [[String]] = [
            ["SET", "greeting", "hello world"], ["GET", "greeting"], ["INCR", "n"], ["INCRBYFLOAT", "f", "1.5"],
            ["RPUSH", "list", "a", "b", "c"], ["LRANGE", "list", "0", "-1"], ["HSET", "h", "field", "1"],
            ["HGETALL", "h"], ["ZADD", "z", "1.5", "m"], ["ZRANGE", "z", "0", "-1", "WITHSCORES"],
            ["SADD", "s", "x"], ["SMEMBERS", "s"], ["GET", "missing"], ["LPUSH", "greeting", "x"], ["NOPE"],
            ["EXISTS", "greeting", "list"], ["TYPE", "h"], ["OBJECT", "FREQ", "h"], ["HRANDFIELD", "h", "-2"],
            ["CONFIG", "GET", "databases"], ["EXPIRE", "greeting", "100"], ["PERSIST", "greeting"], ["DEL", "list"],
        ]
        for resp in [[], ["-3"]] {
            for raw in [[], ["--raw"]] {
                for invocation in invocations {
                    let outputs = try [reference.port, server.port].map { port in
                        let arguments = ["-p", String(port)] + resp + raw + invocation
                        let result = try runTool("/usr/bin/redis-cli", arguments)
                        return "\(result.status) \(result.output)"
                    }
                    #expect(
                        outputs[0] == outputs[1],
                        "redis-cli \((resp + raw + invocation).joined(separator: " "))"
                    )
                }
            }
        }
        // Interactive-style input on stdin, several commands, one connection.
        let script = Array("SELECT 3\nSET a 1\nINCR a\nGET a\nDBSIZE\nSELECT 0\nDBSIZE\n".utf8)
        let outputs = try [reference.port, server.port].map { port in
            try runTool("/usr/bin/redis-cli", ["-p", String(port)], input: script).output
        }
        #expect(outputs[0] == outputs[1], "redis-cli with commands on stdin")
    }
}
