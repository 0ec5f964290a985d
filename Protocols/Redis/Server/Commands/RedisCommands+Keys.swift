internal import StrataMVCC
internal import StrataRedisStore

extension RedisCommands {
    static let keys: [(String, RedisCommand.Access, RedisCommandTable.Handler)] = [
        ("del", .write, { c throws(RedisError) in try delete(&c) }),
        ("unlink", .write, { c throws(RedisError) in try delete(&c) }),
        (
            "exists", .read,
            { c throws(RedisError) in
                var found = 0
                for index in 1..<c.count where try c.data.lookup(c.db, c[index]) != nil { found += 1 }
                return .integer(found)
            }
        ),
        (
            "touch", .read,
            { c throws(RedisError) in
                var found = 0
                for index in 1..<c.count where try c.data.lookup(c.db, c[index]) != nil { found += 1 }
                return .integer(found)
            }
        ),
        (
            "type", .read,
            { c throws(RedisError) in
                .simple(try c.data.lookup(c.db, c[1])?.type.name ?? "none")
            }
        ),
        ("ttl", .read, { c throws(RedisError) in try timeToLive(&c, milliseconds: false, absolute: false) }),
        ("pttl", .read, { c throws(RedisError) in try timeToLive(&c, milliseconds: true, absolute: false) }),
        ("expiretime", .read, { c throws(RedisError) in try timeToLive(&c, milliseconds: false, absolute: true) }),
        ("pexpiretime", .read, { c throws(RedisError) in try timeToLive(&c, milliseconds: true, absolute: true) }),
        ("expire", .write, { c throws(RedisError) in try expire(&c, base: c.data.now, seconds: true, name: "expire") }),
        (
            "pexpire", .write,
            { c throws(RedisError) in
                try expire(&c, base: c.data.now, seconds: false, name: "pexpire")
            }
        ),
        ("expireat", .write, { c throws(RedisError) in try expire(&c, base: 0, seconds: true, name: "expireat") }),
        ("pexpireat", .write, { c throws(RedisError) in try expire(&c, base: 0, seconds: false, name: "pexpireat") }),
        (
            "persist", .write,
            { c throws(RedisError) in
                guard let entry = try c.data.lookup(c.db, c[1]), entry.expiresAt != 0 else { return .integer(0) }
                try c.data.setExpiry(c.db, c[1], entry, 0)
                c.notify("persist", .generic, c[1])
                return .integer(1)
            }
        ),
        (
            "keys", .read,
            { c throws(RedisError) in
                let pattern = GlobPattern(c[1])
                var keys: [RESPValue] = []
                try c.data.forEachKey(c.db) { key, _ throws(RedisError) in
                    if pattern.matchesAll || pattern.matches(key) { keys.append(.bulk(key)) }
                    return true
                }
                return .array(keys)
            }
        ),
        ("scan", .read, { c throws(RedisError) in try scan(&c) }),
        (
            "randomkey", .read,
            { c throws(RedisError) in
                guard let key = try c.data.randomKey(c.db) else { return .null }
                return .bulk(key)
            }
        ),
        ("dbsize", .read, { c throws(RedisError) in .integer(try c.data.keyCount(c.db).keys) }),
        ("rename", .write, { c throws(RedisError) in try rename(&c, onlyIfAbsent: false) }),
        ("renamenx", .write, { c throws(RedisError) in try rename(&c, onlyIfAbsent: true) }),
        (
            "move", .write,
            { c throws(RedisError) in
                let target = try databaseIndex(c, 2)
                if target == c.db { throw .reply("ERR source and destination objects are the same") }
                guard let entry = try c.data.lookup(c.db, c[1]) else { return .integer(0) }
                if try c.data.lookup(target, c[1]) != nil { return .integer(0) }
                try c.data.move(c.db, c[1], entry, to: target, c[1])
                c.notify("move_from", .generic, c[1])
                c.notify("move_to", .generic, c[1], db: target)
                return .integer(1)
            }
        ),
        (
            "copy", .write,
            { c throws(RedisError) in
                var replace = false
                var target = c.db
                var index = 3
                while index < c.count {
                    if c.option(index) == "REPLACE" {
                        replace = true
                    } else if c.option(index) == "DB" && index + 1 < c.count {
                        target = try databaseIndex(c, index + 1)
                        index += 1
                    } else {
                        throw .syntax
                    }
                    index += 1
                }
                if target == c.db && c[1] == c[2] {
                    throw .reply("ERR source and destination objects are the same")
                }
                guard let entry = try c.data.lookup(c.db, c[1]) else { return .integer(0) }
                let existing = try c.data.lookup(target, c[2])
                if existing != nil && !replace { return .integer(0) }
                let copy = entry.type == .string ? entry : try c.data.copyCollection(entry)
                try c.data.replace(
                    target,
                    c[2],
                    with: copy,
                    expiry: entry.expiresAt == 0 ? .none : .at(entry.expiresAt),
                    previous: .some(existing)
                )
                c.notify("copy_to", .generic, c[2], db: target)
                return .integer(1)
            }
        ),
        (
            "object|encoding", .read,
            { c throws(RedisError) in
                guard let entry = try c.data.lookup(c.db, c[2]) else { return .null }
                return .bulk(try encoding(&c, entry))
            }
        ),
        (
            "object|refcount", .read,
            { c throws(RedisError) in
                guard let entry = try c.data.lookup(c.db, c[2]) else { return .null }
                if entry.type == .string, let number = RedisNumber.parseInteger(entry.metadata.value), number >= 0,
                    number < 10_000
                {
                    return .integer(Int64(Int32.max))
                }
                return .integer(1)
            }
        ),
        (
            "object|idletime", .read,
            { c throws(RedisError) in
                guard try c.data.lookup(c.db, c[2]) != nil else { return .null }
                if (c.server.config.value("maxmemory-policy") ?? "").contains("lfu") {
                    throw .err(
                        "An LRU maxmemory policy is selected, access frequency not tracked. Please note that when "
                            + "switching between policies at runtime LRU and LFU data will take some time to adjust."
                    )
                }
                return .integer(0)
            }
        ),
        (
            "object|freq", .read,
            { c throws(RedisError) in
                guard try c.data.lookup(c.db, c[2]) != nil else { return .null }
                guard (c.server.config.value("maxmemory-policy") ?? "").contains("lfu") else {
                    throw .err(
                        "An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when "
                            + "switching between policies at runtime LRU and LFU data will take some time to adjust."
                    )
                }
                return .integer(0)
            }
        ),
        (
            "object|help", .control,
            { _ throws(RedisError) in
                help(
                    "OBJECT",
                    [
                        "ENCODING <key>",
                        "    Return the kind of internal representation used in order to store the value",
                        "    associated with a <key>.", "FREQ <key>",
                        "    Return the access frequency index of the <key>. The returned integer is",
                        "    proportional to the logarithm of the recent access frequency of the key.",
                        "IDLETIME <key>",
                        "    Return the idle time of the <key>, that is the approximated number of",
                        "    seconds elapsed since the last access to the key.",
                        "REFCOUNT <key>",
                        "    Return the number of references of the value associated with the specified", "    <key>.",
                    ]
                )
            }
        ),
    ]

    /// The HELP reply of a container command: its usage lines, then Redis's closing line.
    static func help(_ command: String, _ lines: [String]) -> RESPValue {
        var all = ["\(command) <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"] + lines
        all.append("HELP")
        all.append("    Print this help.")
        return .array(all.map { .simple($0) })
    }

    /// A database index argument (SELECT, MOVE, COPY DB).
    static func databaseIndex(_ c: RedisInvocation, _ index: Int) throws(RedisError) -> Int {
        guard let value = RedisNumber.parseInteger(c[index]), value >= Int64(Int32.min), value <= Int64(Int32.max)
        else { throw .notInteger }
        guard value >= 0 && value < Int64(c.server.spaces.databases) else {
            throw .err("DB index is out of range")
        }
        return Int(value)
    }

    private static func delete(_ c: inout RedisInvocation) throws(RedisError) -> RESPValue {
        var deleted = 0
        for index in 1..<c.count {
            guard let entry = try c.data.lookup(c.db, c[index]) else { continue }
            try c.data.drop(c.db, c[index], entry)
            c.notify("del", .generic, c[index])
            deleted += 1
        }
        return .integer(deleted)
    }

    private static func timeToLive(_ c: inout RedisInvocation, milliseconds: Bool, absolute: Bool) throws(RedisError)
        -> RESPValue
    {
        guard let entry = try c.data.lookup(c.db, c[1]) else { return .integer(-2) }
        guard entry.expiresAt != 0 else { return .integer(-1) }
        let ttl = max(0, absolute ? entry.expiresAt : entry.expiresAt - c.data.now)
        return .integer(milliseconds ? ttl : (ttl + 500) / 1000)
    }

    private static func expire(_ c: inout RedisInvocation, base: Int64, seconds: Bool, name: String)
        throws(RedisError) -> RESPValue
    {
        var nx = false
        var xx = false
        var gt = false
        var lt = false
        for index in 3..<max(3, c.count) {
            switch c.option(index) {
            case "NX": nx = true
            case "XX": xx = true
            case "GT": gt = true
            case "LT": lt = true
            default: throw .err("Unsupported option \(c.text(index))")
            }
        }
        if nx && (xx || gt || lt) { throw .err("NX and XX, GT or LT options at the same time are not compatible") }
        if gt && lt { throw .err("GT and LT options at the same time are not compatible") }
        var when = try c.integer(2)
        if seconds {
            if when > Int64.max / 1000 || when < Int64.min / 1000 { throw .invalidExpireTime(command: name) }
            when *= 1000
        }
        if when > Int64.max - base { throw .invalidExpireTime(command: name) }
        when += base
        guard let entry = try c.data.lookup(c.db, c[1]) else { return .integer(0) }
        let current = entry.expiresAt
        if nx && current != 0 { return .integer(0) }
        if xx && current == 0 { return .integer(0) }
        if gt && (current == 0 || when <= current) { return .integer(0) }
        if lt && current != 0 && when >= current { return .integer(0) }
        if when <= c.data.now {
            try c.data.drop(c.db, c[1], entry)
            c.notify("del", .generic, c[1])
            return .integer(1)
        }
        try c.data.setExpiry(c.db, c[1], entry, when)
        c.notify("expire", .generic, c[1])
        return .integer(1)
    }

    private static func rename(_ c: inout RedisInvocation, onlyIfAbsent: Bool) throws(RedisError) -> RESPValue {
        guard let entry = try c.data.lookup(c.db, c[1]) else { throw .noSuchKey }
        if c[1] == c[2] { return onlyIfAbsent ? .integer(0) : .ok }
        if onlyIfAbsent, try c.data.lookup(c.db, c[2]) != nil { return .integer(0) }
        try c.data.move(c.db, c[1], entry, to: c.db, c[2])
        c.notify("rename_from", .generic, c[1])
        c.notify("rename_to", .generic, c[2])
        return onlyIfAbsent ? .integer(1) : .ok
    }

    /// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type].
    private static func scan(_ c: inout RedisInvocation) throws(RedisError) -> RESPValue {
        guard let cursor = RedisNumber.parseCursor(c[1]) else { throw .err("invalid cursor") }
        let (pattern, count, type) = try scanOptions(c, from: 2, allowType: true)
        let (keys, next) = try c.data.keyPage(c.db, cursor: cursor, count: count)
        var found: [RESPValue] = []
        for (key, entry) in keys {
            if let pattern, !pattern.matches(key) { continue }
            if let type, entry.type.name != type { continue }
            found.append(.bulk(key))
        }
        return .array([.bulk(String(next)), .array(found)])
    }

    /// MATCH / COUNT (/ TYPE) of the SCAN family.
    static func scanOptions(_ c: RedisInvocation, from start: Int, allowType: Bool) throws(RedisError)
        -> (GlobPattern?, Int, String?)
    {
        var pattern: GlobPattern? = nil
        var count = 10
        var type: String? = nil
        var index = start
        while index < c.count {
            let remaining = c.count - index
            switch c.option(index) {
            case "COUNT" where remaining >= 2:
                let value = try c.integer(index + 1)
                guard value >= 1 else { throw .syntax }
                count = Int(clamping: value)
            case "MATCH" where remaining >= 2:
                let glob = GlobPattern(c[index + 1])
                pattern = glob.matchesAll ? nil : glob
            case "TYPE" where remaining >= 2 && allowType:
                type = c.text(index + 1).lowercased()
            default:
                throw .syntax
            }
            index += 2
        }
        return (pattern, count, type)
    }

    /// OBJECT ENCODING: the encoding Redis 7.0 would use for this value (Strata's storage has one layout per type).
    private static func encoding(_ c: inout RedisInvocation, _ entry: RedisData.Entry) throws(RedisError) -> String {
        let effective = c.server.config.effective
        switch entry.type {
        case .string:
            let value = entry.metadata.value
            if value.count <= 20, RedisNumber.parseInteger(value) != nil { return "int" }
            return value.count <= 44 ? "embstr" : "raw"
        case .list:
            return "quicklist"
        case .stream:
            return "stream"
        case .hash:
            guard entry.metadata.size <= effective.hashListpackEntries else { return "hashtable" }
            for (field, value) in try c.data.members(entry)
            where field.count > effective.hashListpackValue || value.count > effective.hashListpackValue {
                return "hashtable"
            }
            return "listpack"
        case .set:
            guard entry.metadata.size <= effective.setIntsetEntries else { return "hashtable" }
            for (member, _) in try c.data.members(entry) where RedisNumber.parseInteger(member) == nil {
                return "hashtable"
            }
            return "intset"
        case .zset:
            guard entry.metadata.size <= effective.zsetListpackEntries else { return "skiplist" }
            for (member, _) in try c.data.members(entry) where member.count > effective.zsetListpackValue {
                return "skiplist"
            }
            return "listpack"
        }
    }
}
