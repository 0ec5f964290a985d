internal import Foundation
internal import StrataTestSupport
internal import Testing

/// `strata redis-server …` and a symlink named `redis-server`, started the way test harnesses (pytest-redis,
/// testcontainers, Redis's own suite) start Redis: its command line, its readiness line, its fatal config errors.
@Suite("Redis: the redis-server personality", .serialized)
struct RedisPersonalityTests {
    /// A running `redis-server`-style process whose output is collected in a file.
    final class Running {
        let process = ChildProcess()
        let logPath: String

        init(executable: String, arguments: [String], directory: TemporaryDirectory) throws {
            logPath = directory.appending("server-\(UUID().uuidString).log")
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
            let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            process.currentDirectoryURL = URL(fileURLWithPath: directory.path)
            process.standardOutput = log
            process.standardError = log
            try process.run()
        }

        var output: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

        /// Waits for Redis's readiness line, as harnesses do.
        func waitUntilReady() -> Bool {
            for _ in 0..<400 {
                if output.contains("* Ready to accept connections") { return true }
                if !process.isRunning { return false }
                usleep(25_000)
            }
            return false
        }

        func stop() -> Int32 {
            if process.isRunning { kill(process.processIdentifier, SIGTERM) }
            for _ in 0..<400 where process.isRunning { usleep(25_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            return process.terminationStatus
        }

        deinit { _ = stop() }
    }

    let directory = TemporaryDirectory()

    /// A symlink named `redis-server` to the strata binary.
    func symlink() throws -> String {
        let path = directory.appending("redis-server")
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: StrataProcess.binaryPath)
        return path
    }

    @Test func startsLikeRedisServerAndKeepsNothingWithoutPersistence() throws {
        let port = TestNetwork.freePort()
        let arguments = ["--port", String(port), "--save", "", "--appendonly", "no", "--daemonize", "no"]
        for _ in 0..<2 {
            let server = try Running(executable: try symlinkOnce(), arguments: arguments, directory: directory)
            #expect(server.waitUntilReady(), "no readiness line:\n\(server.output)")
            let client = try RESPClient(port: port)
            #expect(try client.call("DBSIZE") == .integer(0), "an in-memory server started with data")
            #expect(try client.call("SET", "k", "v") == .simple("OK"))
            #expect(try client.call("CONFIG", "GET", "save") == .array([.bulk(Array("save".utf8)), .bulk([])]))
            #expect(server.stop() == 0, "\(server.output)")
        }
        #expect(!FileManager.default.fileExists(atPath: directory.appending("strata-data")))
    }

    @Test func persistsInItsDirWithSaveAndAConfigFile() throws {
        let port = TestNetwork.freePort()
        let data = directory.appending("data")
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let configPath = directory.appending("redis.conf")
        try "port \(port)\nbind 127.0.0.1\nsave 900 1\ndatabases 4\n# a comment\nappendfsync always\n".write(
            toFile: configPath,
            atomically: true,
            encoding: .utf8
        )
        let arguments = ["redis-server", configPath, "--dir", data, "--loglevel", "warning"]
        let first = try Running(executable: StrataProcess.binaryPath, arguments: arguments, directory: directory)
        #expect(first.waitUntilReady(), "\(first.output)")
        var client = try RESPClient(port: port)
        #expect(try client.call("SELECT", "3") == .simple("OK"))
        #expect(try client.call("SELECT", "4") == .error("ERR DB index is out of range"))
        #expect(try client.call("RPUSH", "list", "a", "b") == .integer(2))
        // SHUTDOWN stops the server as harnesses stop redis-server: no reply, the connection closes, exit status 0.
        #expect(throws: RESPClientError.self) { try client.call("SHUTDOWN") }
        #expect(first.process.wait(timeoutSeconds: 20), "SHUTDOWN did not stop the server")
        #expect(first.process.terminationStatus == 0, "\(first.output)")
        let second = try Running(executable: StrataProcess.binaryPath, arguments: arguments, directory: directory)
        #expect(second.waitUntilReady(), "\(second.output)")
        client = try RESPClient(port: port)
        _ = try client.call("SELECT", "3")
        #expect(try client.call("LRANGE", "list", "0", "-1") == .array([.bulk([97]), .bulk([98])]))
        #expect(FileManager.default.fileExists(atPath: data + "/strata-data"))
    }

    /// Directives from the file and the command line combine as in redis-server: the first `save` replaces the
    /// defaults and later ones add to it (`save ""` clears), and values read back as CONFIG SET leaves them.
    @Test(arguments: [
        ["--save", "100 100"], ["--save", ""], ["--save", "", "--save", "5 5"], [],
        ["--shutdown-on-sigint", "nosave force now", "--proc-title-template", "--my--title--"],
    ])
    func configurationCombinesAsInRedisServer(extra: [String]) throws {
        let configPath = directory.appending("combine-\(UUID().uuidString).conf")
        try "save 900 1\nnotify-keyspace-events KEA\nappendonly no\n".write(
            toFile: configPath,
            atomically: true,
            encoding: .utf8
        )
        var answers: [[String]] = []
        for executable in ["/usr/bin/redis-server", try symlinkOnce()] {
            let port = TestNetwork.freePort()
            let arguments =
                [configPath, "--port", String(port), "--bind", "127.0.0.1", "--dir", directory.path] + extra
            let server = try Running(executable: executable, arguments: arguments, directory: directory)
            #expect(server.waitUntilReady(), "\(server.output)")
            let client = try RESPClient(port: port)
            answers.append(
                try ["save", "notify-keyspace-events", "shutdown-on-sigint", "proc-title-template"].map {
                    "\(try client.call("CONFIG", "GET", $0))"
                }
            )
            #expect(server.stop() == 0)
        }
        #expect(answers[0] == answers[1], "\(extra)")
    }

    /// `rename-command` (hardened redis.conf files disable FLUSHALL, CONFIG …): the old name is unknown, the new one
    /// runs the command, for clients and scripts alike; CONFIG REWRITE keeps the line, the file's comments and its
    /// layout, so the rename survives a restart. Every reply compared with redis-server's.
    @Test func renamedCommandsAndConfigRewriteAsInRedisServer() throws {
        var transcripts: [[String]] = []
        for executable in ["/usr/bin/redis-server", try symlinkOnce()] {
            let home = directory.appending("rename-\(transcripts.count)")
            try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
            let port = TestNetwork.freePort()
            let configPath = home + "/redis.conf"
            try """
            # A hardened configuration
            port \(port)
            bind 127.0.0.1
            dir \(home)
            rename-command flushdb badger
            rename-command flushall ""

            # Persistence
            save 900 1
            appendonly no
            hash-max-ziplist-entries 20
            """.write(toFile: configPath, atomically: true, encoding: .utf8)
            var log: [String] = []
            for round in 0..<2 {
                let server = try Running(executable: executable, arguments: [configPath], directory: directory)
                #expect(server.waitUntilReady(), "\(server.output)")
                let client = try RESPClient(port: port)
                for command in [
                    ["SET", "k", "v"], ["FLUSHDB"], ["FLUSHALL"], ["DBSIZE"],
                    ["EVAL", "return redis.call('flushdb')", "0"],
                    ["EVAL", "return redis.call('badger')", "0"], ["BADGER"], ["DBSIZE"], ["CONFIG", "GET", "save"],
                    ["CONFIG", "GET", "hash-max-listpack-entries"],
                ] {
                    log.append("\(round) \(command.joined(separator: " ")): \(try client.call(command))")
                }
                if round == 0 {
                    _ = try client.call("CONFIG", "SET", "save", "100 10 200 20")
                    _ = try client.call("CONFIG", "SET", "hash-max-listpack-entries", "100")
                    _ = try client.call("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
                    log.append("rewrite: \(try client.call("CONFIG", "REWRITE"))")
                    let text = try String(contentsOfFile: configPath, encoding: .utf8)
                    for kept in ["# A hardened configuration", "rename-command flushdb badger", "# Persistence"] {
                        log.append("\(kept) kept: \(text.contains(kept))")
                    }
                    log.append("signature: \(text.contains("# Generated by CONFIG REWRITE"))")
                }
                #expect(server.stop() == 0)
                log.append(
                    "maxmemory-policy after restart: "
                        + ((try? String(contentsOfFile: configPath, encoding: .utf8))?.contains(
                            "maxmemory-policy allkeys-lru"
                        )
                        .description ?? "")
                )
            }
            transcripts.append(log)
        }
        #expect(transcripts[0] == transcripts[1])
    }

    /// DEBUG POPULATE (Redis's own tests fill databases with it): names, values, sizes, existing keys, errors; on a
    /// server started with `--enable-debug-command yes`, next to redis-server.
    @Test func debugPopulateAsInRedisServer() throws {
        var transcripts: [[String]] = []
        for executable in ["/usr/bin/redis-server", try symlinkOnce()] {
            let port = TestNetwork.freePort()
            let arguments = [
                "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--enable-debug-command", "yes",
            ]
            let server = try Running(executable: executable, arguments: arguments, directory: directory)
            #expect(server.waitUntilReady(), "\(server.output)")
            let client = try RESPClient(port: port)
            var log: [String] = []
            _ = try client.call("SET", "key:1", "mine")
            for command in [
                ["DEBUG", "POPULATE", "5"], ["DEBUG", "POPULATE", "3", "pre", "10"],
                ["DEBUG", "POPULATE", "2", "tiny", "3"],
                ["DEBUG", "POPULATE", "-1"], ["DEBUG", "POPULATE", "x"], ["DEBUG", "POPULATE", "1", "a", "-2"],
                ["DEBUG", "populate", "1", "a", "1", "extra"], ["DBSIZE"], ["GET", "key:1"], ["GET", "key:4"],
                ["GET", "pre:2"], ["GET", "tiny:1"], ["STRLEN", "pre:0"],
            ] {
                log.append("\(command.joined(separator: " ")): \(try client.call(command))")
            }
            transcripts.append(log)
            #expect(server.stop() == 0)
        }
        #expect(transcripts[0] == transcripts[1])
    }

    /// `oom-score-adj`: the process's OOM score follows it as redis-server's does (relative to the score before,
    /// absolute, given back when turned off); compared with redis-server, score by score.
    @Test func oomScoreFollowsItsConfigurationAsInRedisServer() throws {
        var transcripts: [[String]] = []
        for executable in ["/usr/bin/redis-server", try symlinkOnce()] {
            let port = TestNetwork.freePort()
            let arguments = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            let server = try Running(executable: executable, arguments: arguments, directory: directory)
            #expect(server.waitUntilReady(), "\(server.output)")
            let client = try RESPClient(port: port)
            let path = "/proc/\(server.process.processIdentifier)/oom_score_adj"
            func score() -> Int {
                Int(
                    (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(
                        in: .whitespacesAndNewlines
                    ) ?? ""
                ) ?? -9999
            }
            let base = score()
            var log: [String] = []
            for step in [
                ["oom-score-adj-values", "9 9 9", "oom-score-adj", "yes"], ["oom-score-adj-values", "15 20 30"],
                ["oom-score-adj", "absolute"], ["oom-score-adj", "no"], ["oom-score-adj-values", "-2001 0 0"],
            ] {
                let reply = try client.call(["CONFIG", "SET"] + step)
                log.append("\(step.joined(separator: " ")): \(reply), score - base = \(score() - base)")
            }
            transcripts.append(log)
            #expect(server.stop() == 0)
        }
        #expect(transcripts[0] == transcripts[1])
    }

    /// Bad command lines end as redis-server 7.0's do: the same text and exit status.
    @Test(arguments: [
        ["--bogus", "1"], ["--databases", "x"], ["--databases", "0"], ["--port", "70000"],
        ["--appendfsync", "sometimes"], ["--loglevel", "loud"], ["/nonexistent/redis.conf"], ["--version"],
        ["--rename-command", "nosuch", "x"], ["--rename-command", "get", "set"], ["--rename-command", "get"],
        ["--port"], ["--port", "6379", "6380"], ["--port", "--loglevel", "verbose"],
        ["--port", "--bla", "--loglevel", "verbose"], ["--logfile", "--my--log--file", "--loglevel", "--bla"],
        ["--shutdown-on-sigint"], ["--replicaof", "127.0.0.1", "abc"],
    ])
    func badCommandLinesFailAsRedisServerDoes(arguments: [String]) throws {
        let reference = try runTool("/usr/bin/redis-server", arguments, timeoutSeconds: 10)
        let strata = try runTool(try symlinkOnce(), arguments, timeoutSeconds: 10)
        #expect(strata.status == reference.status)
        if arguments == ["--version"] {
            #expect(strata.output.hasPrefix("Redis server v=7.0.15 "), "\(strata.output)")
        } else {
            // redis-server logs "<pid>:C <time> # …" for a missing file; compare what follows the prefix.
            func message(_ result: ToolResult) -> String {
                (result.output + result.errors).split(separator: "\n").map { line in
                    line.range(of: " # ").map { String(line[$0.upperBound...]) } ?? String(line)
                }.joined(separator: "\n")
            }
            #expect(message(strata) == message(reference))
        }
    }

    func symlinkOnce() throws -> String {
        let path = directory.appending("redis-server")
        if FileManager.default.fileExists(atPath: path) { return path }
        return try symlink()
    }
}
