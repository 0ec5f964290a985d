internal import Foundation
internal import StrataTestSupport
internal import Testing

/// ACL: the same sessions against Strata and redis-server 7.0 (users, rules, selectors, every denial path and its
/// NOPERM text, the ACL log, AUTH and HELLO AUTH, ACL files), replies compared.
@Suite("Redis ACL")
struct RedisACLTests {
    /// How a step's reply is compared.
    enum Comparison {
        case exact
        /// ACL LOG: every entry's count, reason, context, object and username (not its age or client details).
        case log
        /// ACL GENPASS: only the length (the password is random).
        case length
        /// HELLO: only whether it succeeded (the reply holds the client ID).
        case success
        /// SLOWLOG GET: each entry's arguments (not its id, time, duration or client).
        case slowlog
    }

    struct Step {
        let client: Int
        let command: [String]
        var comparison = Comparison.exact
    }

    static func step(_ client: Int, _ command: String..., comparison: Comparison = .exact) -> Step {
        Step(client: client, command: command, comparison: comparison)
    }

    /// Connection 0 administers (default user); 1 becomes alice; 2 becomes sel; 3 stays the default user.
    static let steps: [Step] = [
        step(
            0,
            "ACL",
            "SETUSER",
            "alice",
            "on",
            ">pw",
            "~cached:*",
            "%R~read:*",
            "%W~write:*",
            "&news.*",
            "+@read",
            "+@write",
            "-flushall",
            "+select|0",
            "-hset",
            "+eval",
            "+multi",
            "+exec",
            "+sort"
        ),
        step(0, "ACL", "LIST"),
        step(0, "ACL", "GETUSER", "alice"),
        step(0, "ACL", "SETUSER", "sel", "on", ">s", "+ping", "(~a* +get)", "(", "%R~b*", "+@string", "-set", ")"),
        step(0, "ACL", "GETUSER", "sel"),
        step(0, "ACL", "SETUSER", "multi", "on", "nopass", ">x", "#" + String(repeating: "a", count: 64), "<x"),
        step(0, "ACL", "GETUSER", "multi"),
        step(0, "ACL", "SETUSER", "cats", "+@all", "-@dangerous", "-@keyspace", "+del", "allkeys", "allchannels"),
        step(0, "ACL", "SETUSER", "subs", "-@all", "+config|get", "+client|id", "+debug|digest", "+select|1"),
        step(0, "ACL", "SETUSER", "reset-me", "on", ">p", "~*", "reset"),
        step(0, "ACL", "SETUSER", "skip", "skip-sanitize-payload", "sanitize-payload", "skip-sanitize-payload"),
        step(0, "ACL", "LIST"),
        step(0, "ACL", "USERS"),
        step(0, "ACL", "GETUSER", "nobody"),
        // Refused rules: the user is left as it was.
        step(0, "ACL", "SETUSER", "alice", "~*", "~more"),
        step(0, "ACL", "SETUSER", "alice", "allkeys", "~more"),
        step(0, "ACL", "SETUSER", "cats", "&more"),
        step(0, "ACL", "SETUSER", "alice", "+nosuch"),
        step(0, "ACL", "SETUSER", "alice", "+@nosuch"),
        step(0, "ACL", "SETUSER", "alice", "+config|get|x"),
        step(0, "ACL", "SETUSER", "alice", "+config|nosuch"),
        step(0, "ACL", "SETUSER", "alice", "-select|0"),
        step(0, "ACL", "SETUSER", "alice", "+select|"),
        step(0, "ACL", "SETUSER", "alice", "<never-set"),
        step(0, "ACL", "SETUSER", "alice", "#abc"),
        step(0, "ACL", "SETUSER", "alice", "!" + String(repeating: "A", count: 64)),
        step(0, "ACL", "SETUSER", "alice", "%X~k"),
        step(0, "ACL", "SETUSER", "alice", "what"),
        step(0, "ACL", "SETUSER", "alice", "(+get", "~k"),
        step(0, "ACL", "SETUSER", "alice", "(+get ~k", "nope)"),
        step(0, "ACL", "SETUSER", "bad name", "on"),
        step(0, "ACL", "GETUSER", "alice"),
        step(0, "ACL", "DELUSER", "default"),
        step(0, "ACL", "DELUSER", "reset-me", "nosuch"),
        step(0, "ACL", "CAT", "nosuch"),
        step(0, "ACL", "CAT", "x", "y"),
        step(0, "ACL", "GENPASS", comparison: .length),
        step(0, "ACL", "GENPASS", "9", comparison: .length),
        step(0, "ACL", "GENPASS", "0"),
        step(0, "ACL", "GENPASS", "4097"),
        step(0, "ACL", "GENPASS", "x"),
        step(0, "ACL", "LOG", "1", "2"),
        step(0, "ACL", "LOG", "x"),
        step(0, "ACL", "LOAD"),
        step(0, "ACL", "SAVE"),
        step(0, "ACL", "WHOAMI"),
        step(0, "ACL", "DRYRUN", "alice", "get", "cached:1"),
        step(0, "ACL", "DRYRUN", "alice", "get", "other"),
        step(0, "ACL", "DRYRUN", "alice", "set", "read:1", "v"),
        step(0, "ACL", "DRYRUN", "alice", "hset", "cached:1", "f", "v"),
        step(0, "ACL", "DRYRUN", "alice", "publish", "other", "m"),
        step(0, "ACL", "DRYRUN", "alice", "select", "0"),
        step(0, "ACL", "DRYRUN", "alice", "select", "2"),
        step(0, "ACL", "DRYRUN", "sel", "get", "b1"),
        step(0, "ACL", "DRYRUN", "sel", "set", "a1", "v"),
        step(0, "ACL", "DRYRUN", "nobody", "get", "x"),
        step(0, "ACL", "DRYRUN", "alice", "nosuch"),
        step(0, "ACL", "DRYRUN", "alice", "get"),
        // Authentication.
        step(1, "AUTH", "alice", "wrong"),
        step(1, "AUTH", "nobody", "pw"),
        step(1, "AUTH", "a", "b", "c"),
        step(1, "AUTH", "onlypassword"),
        step(1, "HELLO", "2", "AUTH", "alice", "nope"),
        step(1, "AUTH", "alice", "pw"),
        step(1, "ACL", "WHOAMI"),
        step(2, "HELLO", "2", "AUTH", "sel", "s", comparison: .success),
        step(2, "ACL", "WHOAMI"),
        // Every kind of denial, and what is allowed next to it.
        step(1, "GET", "cached:1"),
        step(1, "GET", "other"),
        step(1, "SET", "write:1", "v"),
        step(1, "GET", "write:1"),
        step(1, "SET", "read:1", "v"),
        step(1, "GET", "read:1"),
        step(1, "MSET", "cached:1", "a", "other", "b"),
        step(1, "HSET", "cached:h", "f", "v"),
        step(1, "FLUSHALL"),
        step(1, "SELECT", "0"),
        step(1, "SELECT", "1"),
        step(1, "CLIENT", "ID"),
        step(1, "PUBLISH", "news.today", "m"),
        step(1, "PUBLISH", "other", "m"),
        step(1, "LPUSH", "cached:list", "3", "1", "2"),
        step(1, "SORT", "cached:list"),
        step(1, "SORT", "cached:list", "BY", "nosort"),
        step(1, "SORT", "cached:list", "BY", "w_*"),
        step(1, "SORT", "cached:list", "GET", "#"),
        step(1, "EVAL", "return redis.call('get', 'other')", "0"),
        step(1, "EVAL", "return redis.call('set', 'cached:2', 'x')", "0"),
        step(1, "EVAL", "return redis.call('hset', 'cached:2', 'f', 'x')", "0"),
        step(1, "EVAL", "return redis.acl_check_cmd('get', 'other')", "0"),
        step(1, "EVAL", "return redis.acl_check_cmd('get', 'cached:9')", "0"),
        step(1, "EVAL", "return redis.acl_check_cmd('nosuch')", "0"),
        step(1, "MULTI"),
        step(1, "SET", "cached:3", "x"),
        step(1, "GET", "other"),
        step(1, "EXEC"),
        step(1, "MULTI"),
        step(1, "SET", "cached:4", "x"),
        step(1, "GET", "cached:4"),
        step(0, "ACL", "SETUSER", "alice", "-get"),
        step(1, "EXEC"),
        step(2, "GET", "a1"),
        step(2, "GET", "b1"),
        step(2, "SET", "a1", "v"),
        step(2, "APPEND", "b1", "v"),
        step(2, "PING"),
        step(0, "ACL", "LOG", comparison: .log),
        step(0, "ACL", "LOG", "3", comparison: .log),
        // Nothing a denial refused was written.
        step(3, "EXISTS", "other", "read:1", "cached:h", "cached:2", "cached:3", "a1", "b1"),
        step(3, "GET", "cached:1"),
        step(3, "GET", "cached:4"),
        step(3, "DBSIZE"),
        step(0, "ACL", "LOG", "RESET"),
        step(0, "ACL", "LOG"),
        // Rules changed while authenticated take effect at once; a deleted user's connection is closed.
        step(0, "ACL", "SETUSER", "alice", "+get", "-set"),
        step(1, "GET", "cached:1"),
        step(1, "SET", "cached:1", "v"),
        step(0, "ACL", "SETUSER", "alice", "off"),
        step(1, "GET", "cached:1"),
        step(1, "AUTH", "alice", "pw"),
        step(0, "ACL", "DELUSER", "sel"),
        step(0, "CLIENT", "KILL", "USER", "nosuch"),
        step(0, "CLIENT", "KILL", "USER", "alice"),
        step(3, "RESET"),
        step(3, "ACL", "WHOAMI"),
    ]

    @Test func aclSessionsMatchRedis() throws {
        let directory = TemporaryDirectory()
        let reference = try ReferenceRedis(directory: directory.appending("redis"))
        let strata = try RedisTestServer(sync: "none")
        let (redisClients, strataClients) = try Self.compare(Self.steps, reference.port, strata.port)
        // The deleted user's connection and the killed ones are closed by both.
        #expect(redisClients[2].isClosed() && strataClients[2].isClosed())
        #expect(redisClients[1].isClosed() && strataClients[1].isClosed())
        #expect(!redisClients[0].isClosed(timeoutSeconds: 0) && !strataClients[0].isClosed(timeoutSeconds: 0))
    }

    /// Runs `steps` on both servers (a step naming the next unused connection opens it) and expects the same
    /// replies; returns the connections.
    static func compare(
        _ steps: [Step],
        _ redisPort: Int,
        _ strataPort: Int
    ) throws -> ([RESPClient], [RESPClient]) {
        var redisClients: [RESPClient] = []
        var strataClients: [RESPClient] = []
        var mismatches: [String] = []
        for step in steps {
            while redisClients.count <= step.client {
                redisClients.append(try RESPClient(port: redisPort))
                strataClients.append(try RESPClient(port: strataPort))
            }
            let want = try run(step, redisClients)
            let got = try run(step, strataClients)
            if want != got {
                mismatches.append(
                    "\(step.client): \(step.command.joined(separator: " "))\n  redis:  \(want)\n  strata: \(got)"
                )
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) steps differ:\n\(mismatches.joined(separator: "\n"))")
        return (redisClients, strataClients)
    }

    /// `requirepass` and the default user: what new connections may do as it changes (NOAUTH, AUTH forms,
    /// disabled default user, HELLO AUTH).
    @Test func defaultUserAndRequirepassMatchRedis() throws {
        let directory = TemporaryDirectory()
        let reference = try ReferenceRedis(directory: directory.appending("redis"))
        let strata = try RedisTestServer(sync: "none")
        let steps: [Step] = [
            Self.step(0, "CONFIG", "SET", "requirepass", "foo"),
            Self.step(0, "SET", "k", "v"),  // opened before: still authenticated
            Self.step(1, "GET", "k"),
            Self.step(1, "ACL", "WHOAMI"),
            Self.step(1, "HELLO", "3"),
            Self.step(1, "AUTH", "wrong"),
            Self.step(1, "AUTH", "default", "wrong"),
            Self.step(1, "AUTH", "foo"),
            Self.step(1, "GET", "k"),
            Self.step(2, "AUTH", "default", "foo"),
            Self.step(2, "GET", "k"),
            Self.step(0, "ACL", "GETUSER", "default"),
            Self.step(0, "ACL", "LIST"),
            Self.step(0, "CONFIG", "GET", "requirepass"),
            Self.step(0, "ACL", "SETUSER", "default", "nopass"),
            Self.step(3, "GET", "k"),
            Self.step(3, "AUTH", "foo"),
            Self.step(0, "ACL", "SETUSER", "default", "resetpass", ">bar"),
            Self.step(4, "GET", "k"),
            Self.step(4, "AUTH", "foo"),
            Self.step(4, "AUTH", "bar"),
            Self.step(0, "ACL", "SETUSER", "default", "off"),
            Self.step(5, "PING"),
            Self.step(5, "AUTH", "bar"),
            Self.step(4, "GET", "k"),  // authenticated before: keeps running as default
            Self.step(0, "ACL", "SETUSER", "default", "on"),
            Self.step(0, "CONFIG", "SET", "requirepass", ""),
            Self.step(0, "ACL", "GETUSER", "default"),
            Self.step(6, "GET", "k"),
            Self.step(6, "AUTH", "x"),
            Self.step(0, "ACL", "LOG", comparison: .log),
            // Passwords and rules never reach SLOWLOG (or MONITOR).
            Self.step(0, "CONFIG", "SET", "slowlog-log-slower-than", "0"),
            Self.step(0, "SLOWLOG", "RESET"),
            Self.step(0, "ACL", "SETUSER", "bad name", "+get"),
            Self.step(0, "ACL", "SETUSER", "logged", "on", ">pw", "+get"),
            Self.step(0, "AUTH", "default", "wrong"),
            Self.step(0, "CONFIG", "SET", "masterauth", "secret", "slowlog-max-len", "128"),
            Self.step(0, "HELLO", "2", "AUTH", "logged", "pw", comparison: .success),
            Self.step(0, "AUTH", "logged", "pw"),
            Self.step(0, "CONFIG", "SET", "slowlog-log-slower-than", "-1"),
            Self.step(0, "AUTH", "default", ""),
            Self.step(0, "CONFIG", "SET", "slowlog-log-slower-than", "-1"),
            Self.step(6, "SLOWLOG", "GET", comparison: .slowlog),
        ]
        _ = try Self.compare(steps, reference.port, strata.port)
    }

    /// ACL files: users loaded at start-up, ACL SAVE writes what ACL LIST shows, ACL LOAD replaces every user (and
    /// closes their connections) or, on any error, changes nothing and says why; a bad file stops start-up.
    @Test func aclFilesMatchRedis() throws {
        let directory = TemporaryDirectory()
        let initial = """
            user default on nopass ~* &* +@all
            user alice on #\(String(repeating: "a", count: 64)) ~app:* +@read -keys
            user bob off resetchannels &jobs:* -@all +get ~* (~s:* +set)

            """
        func file(_ name: String) -> String { directory.appending(name + "/users.acl") }
        for side in ["redis", "strata"] {
            try FileManager.default.createDirectory(
                atPath: directory.appending(side),
                withIntermediateDirectories: true
            )
            try initial.write(toFile: file(side), atomically: true, encoding: .utf8)
        }
        let reference = try ReferenceRedis(
            directory: directory.appending("redis"),
            arguments: ["--aclfile", file("redis")]
        )
        let strata = try RedisTestServer(redisSettings: "aclfile = \"\(file("strata"))\"\n", sync: "none")
        let (redisClients, strataClients) = try Self.compare(
            [
                Self.step(0, "ACL", "LIST"),
                Self.step(0, "ACL", "SETUSER", "carol", "on", ">pw", "%R~c:*", "+@string"),
                Self.step(0, "ACL", "SAVE"),
                Self.step(1, "AUTH", "carol", "pw"),
                Self.step(1, "GET", "c:1"),
            ],
            reference.port,
            strata.port
        )
        let savedRedis = (try? String(contentsOfFile: file("redis"), encoding: .utf8)) ?? "(unreadable)"
        let savedStrata = (try? String(contentsOfFile: file("strata"), encoding: .utf8)) ?? "(unreadable)"
        #expect(Self.sortingCommandRuns(savedStrata) == Self.sortingCommandRuns(savedRedis))
        #expect(savedStrata.contains("user carol on #"))
        // A file with errors: nothing changes, and every problem is listed.
        let broken = "user dave on +nosuch ~x\nnonsense line\nuser erin (+get\nuser dave on\n"
        for side in ["redis", "strata"] { try broken.write(toFile: file(side), atomically: true, encoding: .utf8) }
        let redisError = try redisClients[0].call("ACL", "LOAD").description
        let strataError = try strataClients[0].call("ACL", "LOAD").description
        #expect(
            strataError.replacingOccurrences(of: file("strata"), with: "FILE")
                == redisError.replacingOccurrences(of: file("redis"), with: "FILE")
        )
        // A good file replaces every user; carol's connection is closed.
        for side in ["redis", "strata"] { try initial.write(toFile: file(side), atomically: true, encoding: .utf8) }
        _ = try Self.compare(
            [Self.step(0, "ACL", "LIST"), Self.step(0, "ACL", "LOAD"), Self.step(0, "ACL", "LIST")],
            reference.port,
            strata.port
        )
        #expect(redisClients[1].isClosed() && strataClients[1].isClosed())
        // A bad file stops start-up.
        let bad = directory.appending("bad.acl")
        try "user x on +nosuch\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let failed = try runTool(
            StrataProcess.binaryPath,
            ["redis-server", "--port", String(TestNetwork.freePort()), "--save", "", "--aclfile", bad],
            timeoutSeconds: 20
        )
        #expect(failed.status != 0 && (failed.output + failed.errors).contains("nosuch"), "\(failed.output)")
    }

    /// `users` in config.toml declares users as redis.conf's `user` lines do.
    @Test func usersFromConfiguration() throws {
        let strata = try RedisTestServer(
            redisSettings: "users = [\"default on >admin ~* &* +@all\", \"ro on >ro %R~* +@read\"]\n",
            sync: "none"
        )
        let client = try strata.client()
        #expect(try client.call("GET", "k") == .error("NOAUTH Authentication required."))
        #expect(try client.call("AUTH", "ro", "ro") == .simple("OK"))
        #expect(try client.call("GET", "k") == .bulk(nil))
        #expect(
            try client.call("SET", "k", "v")
                == .error("NOPERM this user has no permissions to run the 'set' command")
        )
        #expect(try client.call("AUTH", "admin") == .simple("OK"))
        #expect(try client.call("SET", "k", "v") == .simple("OK"))
    }

    /// Narrowing a user's channels closes its subscribers that hold a channel no longer allowed (as Redis does).
    @Test func revokedChannelsCloseSubscribers() throws {
        let directory = TemporaryDirectory()
        let reference = try ReferenceRedis(directory: directory.appending("redis"))
        let strata = try RedisTestServer(sync: "none")
        let (redisClients, strataClients) = try Self.compare(
            [
                Self.step(0, "ACL", "SETUSER", "sub", "on", ">p", "+@all", "&news.*", "&jobs"),
                Self.step(1, "AUTH", "sub", "p"),
                Self.step(1, "SUBSCRIBE", "news.a"),
                Self.step(2, "AUTH", "sub", "p"),
                Self.step(2, "SUBSCRIBE", "jobs"),
                Self.step(2, "PSUBSCRIBE", "news.*"),
                Self.step(0, "ACL", "SETUSER", "sub", "&more"),  // a wider list: nobody is closed
                Self.step(0, "PUBLISH", "news.a", "1"),
                Self.step(0, "ACL", "SETUSER", "sub", "resetchannels", "&news.*"),
            ],
            reference.port,
            strata.port
        )
        // Connection 1 (news.a still allowed) stays; 2 (jobs revoked) is closed.
        #expect(try redisClients[1].read().reply == strataClients[1].read().reply)
        #expect(redisClients[2].isClosed() && strataClients[2].isClosed())
        #expect(!redisClients[1].isClosed(timeoutSeconds: 1) && !strataClients[1].isClosed(timeoutSeconds: 1))
    }

    /// Random rule lists (categories, commands, subcommands, first arguments, key and channel patterns with
    /// read/write flags, selectors) applied to both servers: the users they describe (ACL GETUSER, ACL LIST) and
    /// what those users may run (ACL DRYRUN over a fixed set of command lines) must be the same. Each user's
    /// description is also applied to a fresh user, which must come out identical (the description is complete).
    @Test func randomRulesMatchRedis() throws {
        let sides = try RedisSideBySide()
        let seeds = Int(ProcessInfo.processInfo.environment["STRATA_REDIS_ACL_SEEDS"] ?? "") ?? 60
        var mismatches: [String] = []
        func compare(_ command: [String]) throws {
            let want = Self.normalized(try sides.expected.call(command)).description
            let got = Self.normalized(try sides.actual.call(command)).description
            if want != got {
                mismatches.append("\(command.joined(separator: " "))\n  redis:  \(want)\n  strata: \(got)")
            }
        }
        for seed in 0..<seeds {
            var random = SeededRandom(seed: UInt64(seed))
            let name = "u\(seed)"
            var rules: [String] = []
            for _ in 0..<Int.random(in: 1...12, using: &random) { rules.append(Self.randomRule(&random)) }
            if Int.random(in: 0..<3, using: &random) == 0 {
                let inner = (0..<Int.random(in: 1...4, using: &random)).map { _ in
                    Self.randomRule(&random, inSelector: true)
                }
                rules.append("(" + inner.joined(separator: " ") + ")")
            }
            try compare(["ACL", "SETUSER", name] + rules)
            try compare(["ACL", "GETUSER", name])
            for line in Self.dryRunLines { try compare(["ACL", "DRYRUN", name] + line) }
            // The description, applied to a new user, describes the same user.
            if case .array(let users?) = try sides.actual.call("ACL", "LIST") {
                for case .bulk(let line?) in users {
                    let words = String(decoding: line, as: UTF8.self).split(separator: " ").map(String.init)
                    guard words.count > 2, words[1] == name else { continue }
                    // `%RW~*` adds a pattern `*` that reads back as `~*`, which means allkeys (Redis does the same):
                    // such a description does not round-trip.
                    if words.contains("~*") && words.contains(where: { $0.contains("~") && $0 != "~*" }) { continue }
                    let copy = "copy\(seed)"
                    let merged = Self.mergeSelectorWords(Array(words.dropFirst(2)))
                    _ = try sides.actual.call(["ACL", "SETUSER", copy] + merged)
                    let original = try sides.actual.call("ACL", "GETUSER", name).description
                    let copied = try sides.actual.call("ACL", "GETUSER", copy).description
                    if original != copied { mismatches.append("round trip of \(name):\n  \(original)\n  \(copied)") }
                    _ = try sides.actual.call("ACL", "DELUSER", copy)
                }
            }
            if mismatches.count > 10 { break }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) differ:\n\(mismatches.prefix(10).joined(separator: "\n"))")
    }

    /// ACL LIST shows a selector as one `(…)` group; SETUSER takes it back as one argument.
    static func mergeSelectorWords(_ words: [String]) -> [String] {
        var merged: [String] = []
        var open: String? = nil
        for word in words {
            if let current = open {
                open = current + " " + word
                if word.hasSuffix(")") {
                    merged.append(open!)
                    open = nil
                }
            } else if word.hasPrefix("(") && !word.hasSuffix(")") {
                open = word
            } else {
                merged.append(word)
            }
        }
        return merged
    }

    static let categories = [
        "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap", "hyperloglog", "geo",
        "stream", "pubsub", "admin", "fast", "slow", "blocking", "dangerous", "connection", "transaction",
        "scripting", "all",
    ]
    static let commands = [
        "get", "set", "hset", "del", "mset", "lmove", "publish", "subscribe", "psubscribe", "sort", "config",
        "config|get", "config|set", "client", "client|id", "client|kill", "eval", "xread", "zunionstore", "georadius",
        "object|encoding", "flushall", "info", "ping", "acl|whoami", "acl", "keys", "scan", "bitfield",
    ]
    static let dryRunLines: [[String]] = [
        ["get", "k1"], ["get", "read:1"], ["set", "w1", "v"], ["set", "write:9", "v", "GET"],
        ["mset", "a", "1", "k2", "2"],
        ["del", "k1", "read:2"], ["lmove", "read:s", "write:d", "left", "right"], ["publish", "ch1", "m"],
        ["publish", "news", "m"], ["subscribe", "ch1", "other"], ["psubscribe", "ch*"], ["psubscribe", "n*"],
        ["sort", "k1"], ["sort", "k1", "store", "write:d"], ["config", "get", "maxmemory"],
        ["config", "set", "a", "b"],
        ["client", "id"], ["select", "0"], ["select", "5"], ["debug", "digest"], ["eval", "return 1", "1", "k1"],
        ["xread", "streams", "read:s", "0"], ["zunionstore", "write:d", "2", "read:a", "k2"],
        ["georadius", "read:g", "0", "0", "1", "km", "store", "write:d"], ["object", "encoding", "k1"], ["flushall"],
        ["info"], ["ping"], ["keys", "*"], ["bitfield", "read:b", "get", "u8", "0"],
        ["bitfield", "k1", "set", "u8", "0", "1"],
        ["exists", "k1"], ["hello"], ["auth", "x", "y"],
    ]
    static let patterns = ["k*", "read:*", "write:*", "*", "a", "news", "ch*", "ch1"]

    static func randomRule(_ random: inout SeededRandom, inSelector: Bool = false) -> String {
        func pick(_ items: [String]) -> String { items[Int.random(in: 0..<items.count, using: &random)] }
        switch Int.random(in: 0..<(inSelector ? 10 : 13), using: &random) {
        case 0, 1: return (Bool.random(using: &random) ? "+@" : "-@") + pick(categories)
        case 2, 3: return (Bool.random(using: &random) ? "+" : "-") + pick(commands)
        case 4: return "+" + pick(["select|0", "select|1", "debug|digest", "config|nosuch", "get|x"])
        case 5: return pick(["~", "%R~", "%W~", "%RW~"]) + pick(patterns)
        case 6: return "&" + pick(patterns)
        case 7: return pick(["allkeys", "resetkeys", "allchannels", "resetchannels", "allcommands", "nocommands"])
        case 8: return pick(["~*", "&*", "+@all", "-@all"])
        case 9: return pick(["%R~k*", "%W~k*", "~read:*"])
        case 10: return pick(["on", "off", "nopass", "resetpass", ">secret", "clearselectors"])
        case 11: return "reset"
        default: return pick(["skip-sanitize-payload", "sanitize-payload", "#" + String(repeating: "b", count: 64)])
        }
    }

    static func run(_ step: Step, _ clients: [RESPClient]) throws -> String {
        let reply = try clients[step.client].call(step.command)
        switch step.comparison {
        case .exact: return normalized(reply).description
        case .length: return "length \(reply.text?.count ?? -1)"
        case .success: if case .error = reply { return reply.description } else { return "success" }
        case .slowlog:
            guard case .array(let entries?) = reply else { return reply.description }
            return entries.map { entry -> String in
                guard case .array(let fields?) = entry, fields.count > 3 else { return entry.description }
                return fields[3].description
            }.joined(separator: "; ")
        case .log:
            guard case .array(let entries?) = reply else { return reply.description }
            return entries.map { entry -> String in
                guard case .array(let fields?) = entry else { return entry.description }
                var kept: [String] = []
                for index in stride(from: 0, to: fields.count - 1, by: 2) {
                    let name = fields[index].text ?? ""
                    if ["count", "reason", "context", "object", "username"].contains(name) {
                        kept.append("\(name)=\(fields[index + 1])")
                    }
                }
                return kept.joined(separator: " ")
            }.joined(separator: "; ")
        }
    }

    /// Redis lists single-command rules in its hash table's order (random per process): each run of them is sorted.
    static func normalized(_ reply: RESPReply) -> RESPReply {
        switch reply {
        case .bulk(let bytes?):
            return .bulk(Array(sortingCommandRuns(String(decoding: bytes, as: UTF8.self)).utf8))
        case .array(let items?): return .array(items.map(normalized))
        case .map(let items): return .map(items.map(normalized))
        default: return reply
        }
    }

    static func sortingCommandRuns(_ text: String) -> String {
        guard text.contains("@all") else { return text }
        var words: [String] = []
        var run: [String] = []
        func isCommandRule(_ word: String) -> Bool {
            (word.hasPrefix("+") || word.hasPrefix("-")) && !word.hasPrefix("+@") && !word.hasPrefix("-@")
                && !word.hasSuffix(")")
        }
        for word in text.split(separator: " ", omittingEmptySubsequences: false).map(String.init) {
            if isCommandRule(word) {
                run.append(word)
            } else {
                words += run.sorted()
                run = []
                words.append(word)
            }
        }
        words += run.sorted()
        return words.joined(separator: " ")
    }
}
