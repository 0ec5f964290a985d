internal import StrataRedisStore
internal import Synchronization

extension RedisCommands {
    /// The commands that run a script: a client's go to the script thread (RedisConnectionHandler).
    static let runsScript: Set<String> = ["eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"]

    /// EVAL, EVALSHA, their `_RO` forms, SCRIPT, FCALL, FCALL_RO and FUNCTION (RedisScripting does the work).
    static let scripting: [(String, RedisCommand.Access, RedisCommandTable.Handler)] = [
        ("eval", .write, { c throws(RedisError) in try c.server.scripting.eval(&c, bySHA: false, readOnly: false) }),
        ("evalsha", .write, { c throws(RedisError) in try c.server.scripting.eval(&c, bySHA: true, readOnly: false) }),
        ("eval_ro", .write, { c throws(RedisError) in try c.server.scripting.eval(&c, bySHA: false, readOnly: true) }),
        (
            "evalsha_ro", .write,
            { c throws(RedisError) in try c.server.scripting.eval(&c, bySHA: true, readOnly: true) }
        ),
        ("fcall", .write, { c throws(RedisError) in try c.server.scripting.fcall(&c, readOnly: false) }),
        ("fcall_ro", .write, { c throws(RedisError) in try c.server.scripting.fcall(&c, readOnly: true) }),
        // SCRIPT LOAD and FLUSH use the interpreter: as writes they wait for a running script, not an event loop.
        ("script|load", .write, { c throws(RedisError) in .bulk(try c.server.scripting.scriptLoad(c[2])) }),
        (
            "script|exists", .control,
            { c throws(RedisError) in
                .array(c.server.scripting.scriptExists((2..<c.count).map { c.text($0) }).map { .integer($0 ? 1 : 0) })
            }
        ),
        (
            "script|flush", .write,
            { c throws(RedisError) in
                try flushMode(c, "SCRIPT FLUSH only support SYNC|ASYNC option")
                c.server.scripting.scriptFlush()
                return .ok
            }
        ),
        ("script|kill", .control, { c throws(RedisError) in c.server.scripting.kill(isEval: true) }),
        (
            "script|help", .control,
            { _ throws(RedisError) in
                help(
                    "SCRIPT",
                    [
                        "EXISTS <sha1> [<sha1> ...]",
                        "    Return information about the existence of the scripts in the script cache.",
                        "FLUSH [ASYNC|SYNC]", "    Flush the Lua scripts cache.",
                        "KILL", "    Kill the currently executing Lua script.",
                        "LOAD <script>", "    Load a script into the scripts cache without executing it.",
                    ]
                )
            }
        ),
        (
            "function|load", .write,
            { c throws(RedisError) in
                var replace = false
                for index in 2..<(c.count - 1) {
                    guard c.option(index) == "REPLACE" else { throw .err("Unknown option given: \(c.text(index))") }
                    replace = true
                }
                return .bulk(try c.server.scripting.functionLoad(&c.data, code: c[c.count - 1], replace: replace))
            }
        ),
        (
            "function|delete", .write,
            { c throws(RedisError) in
                try c.server.scripting.functionDelete(&c.data, name: c.text(2))
                return .ok
            }
        ),
        (
            "function|flush", .write,
            { c throws(RedisError) in
                try flushMode(c, "FUNCTION FLUSH only supports SYNC|ASYNC option")
                try c.server.scripting.functionFlush(&c.data)
                return .ok
            }
        ),
        (
            "function|restore", .write,
            { c throws(RedisError) in
                guard c.count <= 4 else { throw subcommandSyntax(c) }
                var policy = "APPEND"
                if c.count > 3 {
                    policy = c.option(3)
                    guard ["FLUSH", "APPEND", "REPLACE"].contains(policy) else {
                        throw .err("Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.")
                    }
                }
                let codes: [[UInt8]]
                do throws(RedisDump.Failure) {
                    codes = try RedisDump.restoreFunctions(c[2])
                } catch {
                    switch error {
                    case .versionOrChecksum: throw .err("DUMP payload version or checksum are wrong")
                    case .notAFunction: throw .err("given type is not a function")
                    case .badFormat: throw .err("failed loading the given functions payload")
                    }
                }
                try c.server.scripting.functionRestore(&c.data, codes: codes, policy: policy)
                return .ok
            }
        ),
        (
            "function|dump", .control,
            { c throws(RedisError) in
                let libraries = c.server.scripting.catalog.withLock {
                    $0.libraries.values.sorted { $0.name < $1.name }
                }
                return .bulk(RedisDump.dumpFunctions(libraries.map(\.code)))
            }
        ),
        ("function|list", .control, { c throws(RedisError) in try functionList(c) }),
        (
            "function|stats", .control,
            { c throws(RedisError) in
                let running = c.server.scripting.current
                if let running, running.isEval { throw .reply(RedisScripting.busyMessage(isEval: true)) }
                let (libraries, functions) = c.server.scripting.catalog.withLock {
                    ($0.libraries.count, $0.functions.count)
                }
                var script = RESPValue.null
                if let running {
                    let elapsed = running.started.duration(to: .now)
                    script = .map([
                        .bulk("name"), .bulk(running.name),
                        .bulk("command"), .bulks(running.command),
                        .bulk("duration_ms"),
                        .integer(
                            elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000
                        ),
                    ])
                }
                return .map([
                    .bulk("running_script"), script,
                    .bulk("engines"),
                    .map([
                        .bulk("LUA"),
                        .map([
                            .bulk("libraries_count"), .integer(libraries), .bulk("functions_count"),
                            .integer(functions),
                        ]),
                    ]),
                ])
            }
        ),
        ("function|kill", .control, { c throws(RedisError) in c.server.scripting.kill(isEval: false) }),
        (
            "function|help", .control,
            { _ throws(RedisError) in
                help(
                    "FUNCTION",
                    [
                        "LOAD [REPLACE] <FUNCTION CODE>",
                        "    Create a new library with the given library name and code.",
                        "DELETE <LIBRARY NAME>", "    Delete the given library.",
                        "LIST [LIBRARYNAME PATTERN] [WITHCODE]", "    Return general information on all the libraries.",
                        "FCALL <FUNCTION NAME> <NUMKEYS> <KEY1 .. KEYN> <ARG1 .. ARGN>", "    Call a function.",
                        "FCALL_RO <FUNCTION NAME> <NUMKEYS> <KEY1 .. KEYN> <ARG1 .. ARGN>",
                        "    Call a read-only function.",
                        "KILL", "    Kill the current running function.",
                        "STATS", "    Return information about the current function running.",
                        "FLUSH [ASYNC|SYNC]", "    Delete all the libraries.",
                        "DUMP", "    Return a serialized payload representing the current libraries.",
                        "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]", "    Restore the libraries of a DUMP payload.",
                    ]
                )
            }
        ),
    ]

    /// FLUSH's optional SYNC or ASYNC (both flush at once here).
    private static func flushMode(_ c: RedisInvocation, _ message: String) throws(RedisError) {
        guard c.count <= 3 else { throw subcommandSyntax(c) }
        if c.count == 3 && !["SYNC", "ASYNC"].contains(c.option(2)) { throw .err(message) }
    }

    /// FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE].
    private static func functionList(_ c: RedisInvocation) throws(RedisError) -> RESPValue {
        var withCode = false
        var pattern: GlobPattern? = nil
        var index = 2
        while index < c.count {
            let option = c.option(index)
            if !withCode && option == "WITHCODE" {
                withCode = true
            } else if pattern == nil && option == "LIBRARYNAME" {
                guard index + 1 < c.count else { throw .err("library name argument was not given") }
                index += 1
                pattern = GlobPattern(c[index], ignoreCase: true)
            } else {
                throw .err("Unknown argument \(c.text(index))")
            }
            index += 1
        }
        let (libraries, functions) = c.server.scripting.catalog.withLock { ($0.libraries, $0.functions) }
        var replies: [RESPValue] = []
        for library in libraries.values.sorted(by: { $0.name < $1.name }) {
            if let pattern, !pattern.matches(Array(library.name.utf8)) { continue }
            var entry: [RESPValue] = [
                .bulk("library_name"), .bulk(library.name), .bulk("engine"), .bulk("LUA"), .bulk("functions"),
                .array(
                    library.functions.compactMap { functions[$0.lowercased()] }.map { function in
                        .map([
                            .bulk("name"), .bulk(function.name),
                            .bulk("description"), function.description.map { .bulk($0) } ?? .null,
                            .bulk("flags"),
                            .set(RedisScriptFlags.names.filter { function.flags.contains($0.1) }.map { .simple($0.0) }),
                        ])
                    }
                ),
            ]
            if withCode { entry += [.bulk("library_code"), .bulk(library.code)] }
            replies.append(.map(entry))
        }
        return .array(replies)
    }
}
