internal import StrataRedisStore

extension RedisCommands {
    static let hashes: [(String, RedisCommand.Access, RedisCommandTable.Handler)] = [
        ("hset", .write, { c throws(RedisError) in try hashSet(&c, reply: { .integer($0) }) }),
        ("hmset", .write, { c throws(RedisError) in try hashSet(&c, reply: { _ in .ok }) }),
        (
            "hsetnx", .write,
            { c throws(RedisError) in
                var (entry, _) = try c.data.collection(c.db, c[1], .hash)
                if try c.data.member(entry, c[2]) != nil { return .integer(0) }
                try c.data.putMember(&entry, c[2], c[3])
                try c.data.finish(c.db, c[1], entry)
                c.notify("hset", .hash, c[1])
                return .integer(1)
            }
        ),
        (
            "hget", .read,
            { c throws(RedisError) in
                guard let entry = try c.data.lookup(c.db, c[1], as: .hash), let value = try c.data.member(entry, c[2])
                else { return .null }
                return .bulk(value)
            }
        ),
        (
            "hmget", .read,
            { c throws(RedisError) in
                let entry = try c.data.lookup(c.db, c[1], as: .hash)
                var values: [RESPValue] = []
                for index in 2..<c.count {
                    if let entry, let value = try c.data.member(entry, c[index]) {
                        values.append(.bulk(value))
                    } else {
                        values.append(.null)
                    }
                }
                return .array(values)
            }
        ),
        (
            "hdel", .write,
            { c throws(RedisError) in
                guard var entry = try c.data.lookup(c.db, c[1], as: .hash) else { return .integer(0) }
                var deleted = 0
                for index in 2..<c.count where try c.data.removeMember(&entry, c[index]) { deleted += 1 }
                guard deleted > 0 else { return .integer(0) }
                let exists = try c.data.finish(c.db, c[1], entry)
                c.notify("hdel", .hash, c[1])
                if !exists { c.notify("del", .generic, c[1]) }
                return .integer(deleted)
            }
        ),
        (
            "hlen", .read,
            { c throws(RedisError) in
                .integer(Int(try c.data.lookup(c.db, c[1], as: .hash)?.metadata.size ?? 0))
            }
        ),
        (
            "hstrlen", .read,
            { c throws(RedisError) in
                guard let entry = try c.data.lookup(c.db, c[1], as: .hash) else { return .integer(0) }
                return .integer(try c.data.member(entry, c[2])?.count ?? 0)
            }
        ),
        (
            "hexists", .read,
            { c throws(RedisError) in
                guard let entry = try c.data.lookup(c.db, c[1], as: .hash) else { return .integer(0) }
                return .integer(try c.data.member(entry, c[2]) == nil ? 0 : 1)
            }
        ),
        (
            "hkeys", .read,
            { c throws(RedisError) in
                guard let entry = try c.data.lookup(c.db, c[1], as: .hash) else { return .array([]) }
                return .array(try c.data.members(entry).map { .bulk($0.member) })
            }
        ),
        (
            "hvals", .read,
            { c throws(RedisError) in
                guard let entry = try c.data.lookup(c.db, c[1], as: .hash) else { return .array([]) }
                return .array(try c.data.members(entry).map { .bulk($0.value) })
            }
        ),
        (
            "hgetall", .read,
            { c throws(RedisError) in
                guard let entry = try c.data.lookup(c.db, c[1], as: .hash) else { return .map([]) }
                var items: [RESPValue] = []
                for (field, value) in try c.data.members(entry) {
                    items.append(.bulk(field))
                    items.append(.bulk(value))
                }
                return .map(items)
            }
        ),
        (
            "hincrby", .write,
            { c throws(RedisError) in
                let increment = try c.integer(3)
                var (entry, _) = try c.data.collection(c.db, c[1], .hash)
                var current: Int64 = 0
                if let value = try c.data.member(entry, c[2]) {
                    guard let number = RedisNumber.parseInteger(value) else {
                        throw .err("hash value is not an integer")
                    }
                    current = number
                }
                let (result, overflow) = current.addingReportingOverflow(increment)
                if overflow { throw .overflow }
                try c.data.putMember(&entry, c[2], Array(String(result).utf8))
                try c.data.finish(c.db, c[1], entry)
                c.notify("hincrby", .hash, c[1])
                return .integer(result)
            }
        ),
        (
            "hincrbyfloat", .write,
            { c throws(RedisError) in
                guard let increment = RedisNumber.parseLongDouble(c[3]) else { throw .notFloat }
                if !increment.isFinite { throw .err("value is NaN or Infinity") }
                var (entry, _) = try c.data.collection(c.db, c[1], .hash)
                var current: LongDouble = 0
                if let value = try c.data.member(entry, c[2]) {
                    guard let number = RedisNumber.parseLongDouble(value) else {
                        throw .err("hash value is not a float")
                    }
                    current = number
                }
                let result = current + increment
                guard result.isFinite, let text = RedisNumber.humanString(result) else {
                    throw .err("increment would produce NaN or Infinity")
                }
                try c.data.putMember(&entry, c[2], Array(text.utf8))
                try c.data.finish(c.db, c[1], entry)
                c.notify("hincrbyfloat", .hash, c[1])
                return .bulk(Array(text.utf8))
            }
        ),
        ("hrandfield", .read, { c throws(RedisError) in try hashRandomField(&c) }),
        (
            "hscan", .read,
            { c throws(RedisError) in
                try scanCollection(&c, .hash) { field, value in [.bulk(field), .bulk(value)] }
            }
        ),
    ]

    private static func hashSet(_ c: inout RedisInvocation, reply: (Int) -> RESPValue) throws(RedisError) -> RESPValue {
        guard c.count % 2 == 0 else {
            throw .err("wrong number of arguments for '\(c.text(0).lowercased())' command")
        }
        var (entry, _) = try c.data.collection(c.db, c[1], .hash)
        var created = 0
        for index in stride(from: 2, to: c.count, by: 2) where try c.data.putMember(&entry, c[index], c[index + 1]) {
            created += 1
        }
        try c.data.finish(c.db, c[1], entry)
        c.notify("hset", .hash, c[1])
        return reply(created)
    }

    /// A signed count argument in ±(2^63 − 1) (HRANDFIELD, SRANDMEMBER, ZRANDMEMBER).
    static func randomCount(_ c: RedisInvocation, _ index: Int) throws(RedisError) -> Int64 {
        let value = try c.integer(index)
        if value == Int64.min {
            throw .err("value is out of range, value must between -9223372036854775807 and 9223372036854775807")
        }
        return value
    }

    /// Distinct random picks (count ≥ 0) or picks with repetition (count < 0), as Redis's *RANDMEMBER do.
    static func randomPicks<T>(_ items: [T], count: Int64) -> [T] {
        if count >= 0 {
            if count >= Int64(items.count) { return items.shuffled() }
            return Array(items.shuffled().prefix(Int(count)))
        }
        guard !items.isEmpty else { return [] }
        // Every pick is a reply element: bound them as an output buffer would.
        return (0..<Int(min(-count, 1 << 24))).map { _ in items.randomElement()! }
    }

    private static func hashRandomField(_ c: inout RedisInvocation) throws(RedisError) -> RESPValue {
        if c.count >= 3 {
            let count = try randomCount(c, 2)
            var withValues = false
            if c.count > 4 || (c.count == 4 && c.option(3) != "WITHVALUES") { throw .syntax }
            if c.count == 4 {
                withValues = true
                if count < -Int64.max / 2 || count > Int64.max / 2 { throw .err("value is out of range") }
            }
            guard let entry = try c.data.lookup(c.db, c[1], as: .hash) else { return .array([]) }
            if count == 0 { return .array([]) }
            let picks = randomPicks(try c.data.members(entry), count: count)
            if !withValues { return .array(picks.map { .bulk($0.member) }) }
            if c.session.resp == 2 { return .array(picks.flatMap { [RESPValue.bulk($0.member), .bulk($0.value)] }) }
            return .array(picks.map { .array([.bulk($0.member), .bulk($0.value)]) })
        }
        guard let entry = try c.data.lookup(c.db, c[1], as: .hash) else { return .null }
        guard let pick = try c.data.members(entry).randomElement() else { return .null }
        return .bulk(pick.member)
    }

    /// HSCAN / SSCAN / ZSCAN: small collections (what Redis keeps as a listpack or intset) come back whole with
    /// cursor 0, as Redis answers them; larger ones page by member hash.
    static func scanCollection(
        _ c: inout RedisInvocation,
        _ type: RedisType,
        _ items: ([UInt8], [UInt8]) -> [RESPValue]
    ) throws(RedisError) -> RESPValue {
        guard let cursor = RedisNumber.parseCursor(c[2]) else { throw .err("invalid cursor") }
        let (pattern, count, _) = try scanOptions(c, from: 3, allowType: false)
        guard let entry = try c.data.lookup(c.db, c[1], as: type) else { return .array([.bulk("0"), .array([])]) }
        let effective = c.server.config.effective
        let small: Bool
        switch type {
        case .hash: small = entry.metadata.size <= effective.hashListpackEntries
        case .set: small = entry.metadata.size <= effective.setIntsetEntries
        default: small = entry.metadata.size <= effective.zsetListpackEntries
        }
        var found: [RESPValue] = []
        let page: [(member: [UInt8], value: [UInt8])]
        var next: UInt64 = 0
        if small && type == .set {
            page = try orderedMembers(&c, entry).map { (member: $0, value: []) }
        } else if small {
            page = try c.data.members(entry)
        } else {
            (page, next) = try c.data.memberPage(entry, cursor: cursor, count: count)
        }
        for (member, value) in page where pattern?.matches(member) ?? true {
            found.append(contentsOf: items(member, value))
        }
        return .array([.bulk(String(next)), .array(found)])
    }
}
