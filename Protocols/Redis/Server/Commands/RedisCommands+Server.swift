internal import Foundation
internal import Logging
internal import StrataMVCC
internal import StrataRedisStore
internal import Synchronization

extension RedisCommands {
    static let server: [(String, RedisCommand.Access, RedisCommandTable.Handler)] = [
        (
            "info", .read,
            { c throws(RedisError) in
                .verbatim(try RedisInfo.render(&c, sections: (1..<c.count).map { c.text($0) }))
            }
        ),
        (
            "flushdb", .write,
            { c throws(RedisError) in
                try flushMode(c)
                try c.data.flush([c.db])
                // Clients blocked reading a stream group learn it is gone.
                for name in c.server.blocking.blockedKeys(in: c.db) { c.data.readied.append(name) }
                return .ok
            }
        ),
        (
            "flushall", .write,
            { c throws(RedisError) in
                try flushMode(c)
                try c.data.flush(Array(0..<c.server.spaces.databases))
                // As redis-server: with save points FLUSHALL saves (the change counter starts again at 0, and the
                // save time moves); without, its changes count like any write's.
                if !(c.server.config.value("save") ?? "").isEmpty {
                    c.data.changes = 0
                    c.server.stats.dirty.store(0, ordering: .relaxed)
                    c.server.stats.lastSave.store(c.data.now / 1000, ordering: .relaxed)
                }
                for db in 0..<c.server.spaces.databases {
                    for name in c.server.blocking.blockedKeys(in: db) { c.data.readied.append(name) }
                }
                return .ok
            }
        ),
        (
            "swapdb", .write,
            { c throws(RedisError) in
                guard let first = RedisNumber.parseInteger(c[1]), first.magnitude <= UInt64(Int32.max) else {
                    throw .err("invalid first DB index")
                }
                guard let second = RedisNumber.parseInteger(c[2]), second.magnitude <= UInt64(Int32.max) else {
                    throw .err("invalid second DB index")
                }
                let databases = Int64(c.server.spaces.databases)
                guard first >= 0, first < databases, second >= 0, second < databases else {
                    throw .err("DB index is out of range")
                }
                if first != second { try c.data.swapDatabases(Int(first), Int(second)) }
                // Clients blocked on keys that now exist in either database may be served.
                for db in [Int(first), Int(second)] {
                    for name in c.server.blocking.blockedKeys(in: db) { c.data.readied.append(name) }
                }
                return .ok
            }
        ),
        (
            "time", .control,
            { c throws(RedisError) in
                var now = timeval()
                gettimeofday(&now, nil)
                return .array([.bulk(String(now.tv_sec)), .bulk(String(now.tv_usec))])
            }
        ),
        ("lastsave", .control, { c throws(RedisError) in .integer(c.server.stats.lastSave.load(ordering: .relaxed)) }),
        (
            "save", .control,
            { c throws(RedisError) in
                try save(c)
                return .ok
            }
        ),
        (
            "bgsave", .control,
            { c throws(RedisError) in
                if c.count > 2 { throw .syntax }
                if c.count == 2 && c.option(1) != "SCHEDULE" { throw .syntax }
                try save(c)
                return .simple("Background saving started")
            }
        ),
        (
            "bgrewriteaof", .control,
            { _ throws(RedisError) in
                .simple("Background append only file rewriting started")
            }
        ),
        (
            "config|get", .control,
            { c throws(RedisError) in
                let pairs = c.server.config.get((2..<c.count).map { c.text($0) })
                return .map(pairs.flatMap { [RESPValue.bulk($0.0), .bulk($0.1)] })
            }
        ),
        (
            "config|set", .control,
            { c throws(RedisError) in
                guard c.count % 2 == 0 else { throw .syntax }
                var pairs: [(String, String)] = []
                for index in stride(from: 2, to: c.count, by: 2) { pairs.append((c.text(index), c.text(index + 1))) }
                let protectedAllowed = c.server.config.value("enable-protected-configs") == "yes"
                let oomNames = ["oom-score-adj", "oom-score-adj-values"]
                let previous = pairs.compactMap { pair in c.server.config.value(pair.0).map { (pair.0, $0) } }
                if let error = c.server.config.set(pairs, protectedAllowed: protectedAllowed) { throw .err(error) }
                if let oomScore = c.server.oomScore,
                    let changed = pairs.first(where: { oomNames.contains($0.0.lowercased()) })
                {
                    if !oomScore.apply(c.server.config) {
                        // As Redis: the whole CONFIG SET is rolled back (and the old score put back).
                        _ = c.server.config.set(previous, protectedAllowed: true)
                        _ = oomScore.apply(c.server.config)
                        throw .err(
                            "CONFIG SET failed (possibly related to argument '\(changed.0)') - Failed to set current "
                                + "oom_score_adj. Check server logs."
                        )
                    }
                }
                if pairs.contains(where: { $0.0.lowercased() == "requirepass" }) {
                    c.server.acl.updateDefaultPassword(c.server.config.effective.requirePass)
                }
                // A lower tracking-table-max-keys evicts at once (Redis does it on its next cron tick).
                c.server.tracking.enforceLimit(c.server)
                return .ok
            }
        ),
        (
            "config|resetstat", .control,
            { c throws(RedisError) in
                c.server.stats.reset()
                c.server.slowlog.reset()
                return .ok
            }
        ),
        (
            "config|rewrite", .control,
            { c throws(RedisError) in try rewriteConfig(c, forceAll: false) }
        ),
        (
            "config|help", .control,
            { _ throws(RedisError) in
                help(
                    "CONFIG",
                    [
                        "GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values.",
                        "SET <directive> <value>", "    Set the configuration <directive> to <value>.", "RESETSTAT",
                        "    Reset statistics reported by the INFO command.", "REWRITE",
                        "    Rewrite the configuration file.",
                    ]
                )
            }
        ),
        (
            "slowlog|get", .control,
            { c throws(RedisError) in
                var count = 10
                if c.count == 3 {
                    let value = try c.integer(2)
                    if value < -1 { throw .err("count should be greater than or equal to -1") }
                    count = value == -1 ? Int.max : Int(value)
                }
                return .array(
                    c.server.slowlog.entries(count).map { entry in
                        .array([
                            .integer(entry.id), .integer(entry.time), .integer(entry.microseconds),
                            .bulks(entry.arguments),
                            .bulk(entry.address), .bulk(entry.name),
                        ])
                    }
                )
            }
        ),
        ("slowlog|len", .control, { c throws(RedisError) in .integer(c.server.slowlog.count) }),
        (
            "slowlog|reset", .control,
            { c throws(RedisError) in
                c.server.slowlog.reset()
                return .ok
            }
        ),
        (
            "slowlog|help", .control,
            { _ throws(RedisError) in
                help(
                    "SLOWLOG",
                    [
                        "GET [<count>]", "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
                        "    Entries are made of:",
                        "    id, timestamp, time in microseconds, arguments array, client IP and port,",
                        "    client name", "LEN", "    Return the length of the slowlog.", "RESET",
                        "    Reset the slowlog.",
                    ]
                )
            }
        ),
        ("latency|latest", .control, { _ throws(RedisError) in .array([]) }),
        ("latency|history", .control, { _ throws(RedisError) in .array([]) }),
        ("latency|reset", .control, { _ throws(RedisError) in .integer(0) }),
        (
            "latency|doctor", .control,
            { _ throws(RedisError) in
                .verbatim(
                    "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sleep better tonight.\n"
                )
            }
        ),
        ("latency|histogram", .control, { _ throws(RedisError) in .map([]) }),
        (
            "latency|help", .control,
            { _ throws(RedisError) in
                help(
                    "LATENCY",
                    [
                        "DOCTOR", "    Return a human readable latency analysis report.", "GRAPH <event>",
                        "    Return an ASCII latency graph for the <event> class.", "HISTORY <event>",
                        "    Return time-latency samples for the <event> class.", "LATEST",
                        "    Return the latest latency samples for all events.", "RESET [<event> ...]",
                        "    Reset latency data of one or more <event> classes.",
                        "    (default: reset all data for all event classes)",
                        "HISTOGRAM [COMMAND ...]",
                        "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
                        "    If no commands are specified then all histograms are replied.",
                    ]
                )
            }
        ),
        (
            "memory|usage", .read,
            { c throws(RedisError) in
                var index = 3
                while index < c.count {
                    guard c.option(index) == "SAMPLES", index + 1 < c.count else { throw .syntax }
                    _ = try c.integer(index + 1)
                    index += 2
                }
                guard let entry = try c.data.lookup(c.db, c[2]) else { return .null }
                return .integer(try memoryUsage(&c, c[2], entry))
            }
        ),
        (
            "memory|doctor", .control,
            { _ throws(RedisError) in
                .verbatim(
                    "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n"
                )
            }
        ),
        (
            "memory|stats", .control,
            { _ throws(RedisError) in
                let rss = ProcessMemory.residentBytes()
                return .map([
                    .bulk("peak.allocated"), .integer(ProcessMemory.peakBytes()), .bulk("total.allocated"),
                    .integer(rss), .bulk("startup.allocated"), .integer(0), .bulk("dataset.bytes"), .integer(rss),
                ])
            }
        ),
        ("memory|purge", .control, { _ throws(RedisError) in .ok }),
        (
            "memory|malloc-stats", .control,
            { _ throws(RedisError) in .bulk("Stats not supported for the current allocator") }
        ),
        (
            "memory|help", .control,
            { _ throws(RedisError) in
                help(
                    "MEMORY",
                    [
                        "DOCTOR", "    Return memory problems reports.", "MALLOC-STATS",
                        "    Return internal statistics report from the memory allocator.", "PURGE",
                        "    Attempt to purge dirty pages for reclamation by the allocator.", "STATS",
                        "    Return information about the memory usage of the server.", "USAGE <key> [SAMPLES <count>]",
                        "    Return memory in bytes used by <key> and its value. Nested values are",
                        "    sampled up to <count> times (default: 5, 0 means sample all).",
                    ]
                )
            }
        ),
        (
            "monitor", .control,
            { c throws(RedisError) in
                c.client.shared.withLock { $0.monitor = true }
                c.server.monitors.withLock { monitors in
                    if !monitors.contains(where: { $0 === c.client }) { monitors.append(c.client) }
                }
                return .ok
            }
        ),
        ("role", .control, { _ throws(RedisError) in .array([.bulk("master"), .integer(0), .array([])]) }),
        (
            "wait", .control,
            { c throws(RedisError) in
                _ = try c.integer(1)
                let timeout = try c.integer(2)
                if timeout < 0 { throw .err("timeout is negative") }
                return .integer(0)
            }
        ),
        (
            "shutdown", .control,
            { c throws(RedisError) in
                var save: Bool? = nil
                var now = false
                var abort = false
                var others = false
                for index in 1..<c.count {
                    switch c.option(index) {
                    case "NOSAVE":
                        if save == true { throw .syntax }
                        save = false
                    case "SAVE":
                        if save == false { throw .syntax }
                        save = true
                    case "NOW": now = true
                    case "FORCE": others = true
                    case "ABORT": abort = true
                    default: throw .syntax
                    }
                }
                if abort {
                    if save != nil || now || others { throw .syntax }
                    // Strata's shutdown is never pending (no replicas to wait for): there is nothing to abort.
                    throw .err("No shutdown in progress.")
                }
                if !now && c.inTransaction {
                    throw .err("SHUTDOWN without NOW or ABORT isn't allowed for DENY BLOCKING client")
                }
                if save != false, let running = c.server.scripting.current, running.timedOut {
                    throw .reply(RedisScripting.busyMessage(isEval: running.isEval))
                }
                guard let shutdown = c.server.shutdown else {
                    throw .err("SHUTDOWN is disabled for this Strata (set [redis] allow_shutdown = true to allow it)")
                }
                c.server.scripting.killForShutdown()
                try? c.server.store.syncNow()
                shutdown()
                c.closeAfterReply = true
                return .sequence([])
            }
        ),
        ("debug", .control, { c throws(RedisError) in try debug(&c) }),
        (
            "function|flush", .control,
            { c throws(RedisError) in
                if c.count > 3 || (c.count == 3 && !["ASYNC", "SYNC"].contains(c.option(2))) {
                    throw .err("FUNCTION FLUSH only supports SYNC|ASYNC option")
                }
                return .ok
            }
        ),
        ("function|list", .control, { _ throws(RedisError) in .array([]) }),
        (
            "function|stats", .control,
            { _ throws(RedisError) in
                .map([
                    .bulk("running_script"), .null, .bulk("engines"),
                    .map([
                        .bulk("LUA"),
                        .map([
                            .bulk("libraries_count"), .integer(0), .bulk("functions_count"), .integer(0),
                        ]),
                    ]),
                ])
            }
        ),
        (
            "command", .control,
            { c throws(RedisError) in
                .array(RedisCommandTable.implementedTopLevel.compactMap { RedisCommandSpec.documentation.info[$0] })
            }
        ),
        ("command|count", .control, { _ throws(RedisError) in .integer(RedisCommandTable.implementedTopLevel.count) }),
        (
            "command|info", .control,
            { c throws(RedisError) in
                if c.count == 2 {
                    return .array(
                        RedisCommandTable.implementedTopLevel.compactMap { RedisCommandSpec.documentation.info[$0] }
                    )
                }
                return .array(
                    (2..<c.count).map { index in
                        RedisCommandTable.isImplemented(c.text(index).lowercased())
                            ? RedisCommandSpec.documentation.info[c.text(index).lowercased()] ?? .nullArray : .nullArray
                    }
                )
            }
        ),
        (
            "command|docs", .control,
            { c throws(RedisError) in
                let names =
                    c.count == 2 ? RedisCommandTable.implementedTopLevel : (2..<c.count).map { c.text($0).lowercased() }
                var items: [RESPValue] = []
                for name in names where RedisCommandTable.isImplemented(name) {
                    guard let docs = RedisCommandSpec.documentation.docs[name] else { continue }
                    items.append(.bulk(name))
                    items.append(docs)
                }
                return .map(items)
            }
        ),
        (
            "command|list", .control,
            { c throws(RedisError) in
                // As Redis: commands and their subcommands (`client|list`).
                var names = RedisCommandTable.implementedAll
                if c.count > 2 {
                    guard c.count == 5, c.option(2) == "FILTERBY" else { throw .syntax }
                    let value = c.text(4)
                    switch c.option(3) {
                    case "MODULE": names = []
                    case "PATTERN":
                        let glob = GlobPattern(Array(value.utf8), ignoreCase: true)
                        names = RedisCommandTable.implementedAll.filter { glob.matches(Array($0.utf8)) }
                    case "ACLCAT":
                        names = names.filter { name in
                            guard case .array(let fields)? = RedisCommandSpec.documentation.info[name],
                                fields.count > 6,
                                case .set(let categories) = fields[6]
                            else { return false }
                            return categories.contains(.simple("@" + value.lowercased()))
                        }
                    default: throw .syntax
                    }
                }
                return .array(names.map { .bulk($0) })
            }
        ),
        (
            "command|getkeys", .control,
            { c throws(RedisError) in
                let keys = try RedisKeyFinder.keys(Array(c.arguments[2...]))
                return .array(keys.map { .bulk(c[2 + $0.position]) })
            }
        ),
        (
            "command|getkeysandflags", .control,
            { c throws(RedisError) in
                let keys = try RedisKeyFinder.keys(Array(c.arguments[2...]))
                return .array(keys.map { .array([.bulk(c[2 + $0.position]), .set($0.flags.map { .simple($0) })]) })
            }
        ),
        (
            "command|help", .control,
            { _ throws(RedisError) in
                help(
                    "COMMAND",
                    [
                        "(no subcommand)", "    Return details about all Redis commands.", "COUNT",
                        "    Return the total number of commands in this Redis server.", "LIST",
                        "    Return a list of all commands in this Redis server.", "INFO [<command-name> ...]",
                        "    Return details about multiple Redis commands.",
                        "    If no command names are given, documentation details for all",
                        "    commands are returned.", "DOCS [<command-name> ...]",
                        "    Return documentation details about multiple Redis commands.",
                        "    If no command names are given, documentation details for all",
                        "    commands are returned.",
                        "GETKEYS <full-command>", "    Return the keys from a full Redis command.",
                        "GETKEYSANDFLAGS <full-command>",
                        "    Return the keys and the access flags from a full Redis command.",
                    ]
                )
            }
        ),
    ]

    private static func flushMode(_ c: RedisInvocation) throws(RedisError) {
        if c.count > 2 || (c.count == 2 && !["SYNC", "ASYNC"].contains(c.option(1))) { throw .syntax }
    }

    private static func save(_ c: RedisInvocation) throws(RedisError) {
        do {
            try c.server.store.syncNow()
        } catch {
            throw .storage(error)
        }
        c.server.stats.dirty.store(0, ordering: .relaxed)
        c.server.stats.lastSave.store(c.data.now / 1000, ordering: .relaxed)
    }

    /// MEMORY USAGE: the bytes the key's entries take (keys and values as stored, plus per-entry overhead).
    private static func memoryUsage(_ c: inout RedisInvocation, _ key: [UInt8], _ entry: RedisData.Entry)
        throws(RedisError) -> Int
    {
        let overhead = 48
        var total = key.count + overhead + 16
        switch entry.type {
        case .string:
            total += entry.metadata.value.count
        case .list:
            for element in try c.data.listAll(entry) { total += element.count + 24 }
        case .hash, .set, .zset:
            for (member, value) in try c.data.members(entry) { total += member.count + value.count + 24 }
        case .stream:
            for item in try c.data.streamRange(entry, from: .zero, to: .max) {
                total += item.fields.reduce(24) { $0 + $1.count + 2 }
            }
        }
        return total
    }

    /// CONFIG REWRITE (and DEBUG CONFIG-REWRITE-FORCE-ALL): the config file rewritten as Redis rewrites it.
    private static func rewriteConfig(_ c: RedisInvocation, forceAll: Bool) throws(RedisError) -> RESPValue {
        guard let path = c.server.config.configFile else {
            throw .err("The server is running without a config file")
        }
        // Users go with the file unless an ACL file keeps them (Redis's rewriteConfigUserOption).
        let users: [String]? =
            c.server.aclFile == nil
            ? c.server.acl.usersByName.map { user in
                String(decoding: Array("user ".utf8) + user.name + [32] + user.description, as: UTF8.self)
            } : nil
        let old = try? String(contentsOfFile: path, encoding: .utf8)
        let text = c.server.config.rewrittenFile(old: old, users: users, forceAll: forceAll)
        do {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw .err("Rewriting config file: \(error)")
        }
        return .ok
    }

    /// DEBUG POPULATE count [prefix] [size]: `prefix:N` keys (default `key`) holding `value:N`, cut or padded with
    /// zero bytes to `size`; keys that exist are left alone.
    static func debugPopulate(_ c: inout RedisInvocation) throws(RedisError) -> RESPValue {
        guard (3...5).contains(c.count) else {
            throw .err("unknown subcommand or wrong number of arguments for '\(c.text(1))'. Try DEBUG HELP.")
        }
        func positive(_ index: Int) throws(RedisError) -> Int {
            guard let number = RedisNumber.parseInteger(c[index]), number >= 0 else { throw .outOfRangePositive }
            return Int(number)
        }
        let count = try positive(2)
        let size = c.count == 5 ? try positive(4) : 0
        let prefix = c.count >= 4 ? c[3] : Array("key".utf8)
        for index in 0..<count {
            let key = prefix + Array(":\(index)".utf8)
            if try c.data.lookup(c.db, key) != nil { continue }
            var value = Array("value:\(index)".utf8)
            if size > 0 {
                value = Array(value.prefix(size))
                value += [UInt8](repeating: 0, count: size - value.count)
            }
            try c.data.setString(c.db, key, value, previous: .some(nil))
        }
        return .ok
    }

    /// DEBUG subcommands test suites use.
    private static func debug(_ c: inout RedisInvocation) throws(RedisError) -> RESPValue {
        switch c.option(1) {
        case "CONFIG-REWRITE-FORCE-ALL":
            return try rewriteConfig(c, forceAll: true)
        case "SLEEP":
            guard c.count == 3, let seconds = Double(c.text(2)), seconds.isFinite else { throw .syntax }
            usleep(UInt32(max(0, min(seconds, 3600)) * 1_000_000))
            return .ok
        case "RELOAD", "SET-ACTIVE-EXPIRE", "QUICKLIST-PACKED-THRESHOLD", "SET-SKIP-CHECKSUM-VALIDATION",
            "CHANGE-REPL-ID", "STRINGMATCH-LEN", "REPLYBUFFER", "JMAP", "DICT-RESIZING", "PAUSE-CRON":
            return .ok
        case "LOG":
            c.server.logger.notice("DEBUG LOG: \(c.count > 2 ? c.text(2) : "")")
            return .ok
        case "OBJECT" where c.count == 3:
            guard let entry = try c.data.lookup(c.db, c[2]) else { throw .noSuchKey }
            return .simple(
                "Value at:0x0 refcount:1 encoding:\(entry.type.name) serializedlength:\(entry.metadata.value.count) "
                    + "lru:0 lru_seconds_idle:0"
            )
        case "PROTOCOL" where c.count == 3:
            return try debugProtocol(c, c.text(2).lowercased())
        case "HELP":
            return help(
                "DEBUG",
                [
                    "SLEEP <seconds>", "    Stop the server for <seconds>.", "LOG <message>",
                    "    Write <message> to the server log.", "PROTOCOL <type>",
                    "    Reply with a test value of the given type.",
                ]
            )
        default:
            throw .err("unknown subcommand or wrong number of arguments for '\(c.text(1))'. Try DEBUG HELP.")
        }
    }

    private static func debugProtocol(_ c: RedisInvocation, _ type: String) throws(RedisError) -> RESPValue {
        switch type {
        case "string": return .bulk("Hello World")
        case "integer": return .integer(12345)
        case "double": return .double(3.141)
        case "bignum": return .bigNumber("1234567999999999999999999999999999999")
        case "null": return .null
        case "array": return .array([.integer(0), .integer(1), .integer(2)])
        case "set": return .set([.integer(0), .integer(1), .integer(2)])
        case "map":
            return .map([.integer(0), .bool(false), .integer(1), .bool(true), .integer(2), .bool(false)])
        case "verbatim": return .verbatim("This is a verbatim\nstring")
        case "true": return .bool(true)
        case "false": return .bool(false)
        default:
            throw .err(
                "Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false"
            )
        }
    }
}
