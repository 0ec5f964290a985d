internal import StrataRedisStore

extension RedisCommands {
    static let sets: [(String, RedisCommand.Access, RedisCommandTable.Handler)] = [
        (
            "sadd", .write,
            { c throws(RedisError) in
                var (entry, _) = try c.data.collection(c.db, c[1], .set)
                var added = 0
                for index in 2..<c.count where try c.data.putMember(&entry, c[index], []) { added += 1 }
                guard added > 0 else { return .integer(0) }
                try c.data.finish(c.db, c[1], entry)
                c.notify("sadd", .set, c[1])
                return .integer(added)
            }
        ),
        (
            "srem", .write,
            { c throws(RedisError) in
                guard var entry = try c.data.lookup(c.db, c[1], as: .set) else { return .integer(0) }
                var removed = 0
                for index in 2..<c.count where try c.data.removeMember(&entry, c[index]) { removed += 1 }
                guard removed > 0 else { return .integer(0) }
                let exists = try c.data.finish(c.db, c[1], entry)
                c.notify("srem", .set, c[1])
                if !exists { c.notify("del", .generic, c[1]) }
                return .integer(removed)
            }
        ),
        (
            "sismember", .read,
            { c throws(RedisError) in
                guard let entry = try c.data.lookup(c.db, c[1], as: .set) else { return .integer(0) }
                return .integer(try c.data.member(entry, c[2]) == nil ? 0 : 1)
            }
        ),
        (
            "smismember", .read,
            { c throws(RedisError) in
                let entry = try c.data.lookup(c.db, c[1], as: .set)
                var replies: [RESPValue] = []
                for index in 2..<c.count {
                    if let entry, try c.data.member(entry, c[index]) != nil {
                        replies.append(.integer(1))
                    } else {
                        replies.append(.integer(0))
                    }
                }
                return .array(replies)
            }
        ),
        (
            "smembers", .read,
            { c throws(RedisError) in
                guard let entry = try c.data.lookup(c.db, c[1], as: .set) else { return .set([]) }
                return .set(try orderedMembers(&c, entry).map { .bulk($0) })
            }
        ),
        (
            "scard", .read,
            { c throws(RedisError) in
                .integer(Int(try c.data.lookup(c.db, c[1], as: .set)?.metadata.size ?? 0))
            }
        ),
        (
            "spop", .write,
            { c throws(RedisError) in
                if c.count > 3 { throw .syntax }
                let hasCount = c.count == 3
                let count = hasCount ? try c.positiveCount(2) : 1
                guard var entry = try c.data.lookup(c.db, c[1], as: .set) else { return hasCount ? .set([]) : .null }
                if hasCount && count == 0 { return .set([]) }
                let picks = randomPicks(try c.data.members(entry), count: Int64(count))
                for pick in picks { try c.data.removeMember(&entry, pick.member) }
                let exists = try c.data.finish(c.db, c[1], entry)
                c.notify("spop", .set, c[1])
                if !exists { c.notify("del", .generic, c[1]) }
                return hasCount ? .set(picks.map { .bulk($0.member) }) : .bulk(picks[0].member)
            }
        ),
        (
            "srandmember", .read,
            { c throws(RedisError) in
                if c.count > 3 { throw .syntax }
                if c.count == 3 {
                    let count = try randomCount(c, 2)
                    guard let entry = try c.data.lookup(c.db, c[1], as: .set), count != 0 else { return .array([]) }
                    return .array(randomPicks(try c.data.members(entry), count: count).map { .bulk($0.member) })
                }
                guard let entry = try c.data.lookup(c.db, c[1], as: .set),
                    let pick = try c.data.members(entry).randomElement()
                else { return .null }
                return .bulk(pick.member)
            }
        ),
        (
            "smove", .write,
            { c throws(RedisError) in
                let source = try c.data.lookup(c.db, c[1])
                let destination = try c.data.lookup(c.db, c[2])
                guard var source else { return .integer(0) }
                if source.type != .set || (destination != nil && destination!.type != .set) { throw .wrongType }
                if c[1] == c[2] { return .integer(try c.data.member(source, c[3]) == nil ? 0 : 1) }
                guard try c.data.removeMember(&source, c[3]) else { return .integer(0) }
                let exists = try c.data.finish(c.db, c[1], source)
                c.notify("srem", .set, c[1])
                if !exists { c.notify("del", .generic, c[1]) }
                var target = destination ?? c.data.newCollection(.set)
                if try c.data.putMember(&target, c[3], []) {
                    try c.data.finish(c.db, c[2], target)
                    c.notify("sadd", .set, c[2])
                }
                return .integer(1)
            }
        ),
        (
            "sinter", .read,
            { c throws(RedisError) in .set(try setAlgebra(&c, Array(c.arguments[1...]), .inter).map { .bulk($0) }) }
        ),
        (
            "sunion", .read,
            { c throws(RedisError) in .set(try setAlgebra(&c, Array(c.arguments[1...]), .union).map { .bulk($0) }) }
        ),
        (
            "sdiff", .read,
            { c throws(RedisError) in .set(try setAlgebra(&c, Array(c.arguments[1...]), .diff).map { .bulk($0) }) }
        ),
        ("sinterstore", .write, { c throws(RedisError) in try storeSetAlgebra(&c, .inter, event: "sinterstore") }),
        ("sunionstore", .write, { c throws(RedisError) in try storeSetAlgebra(&c, .union, event: "sunionstore") }),
        ("sdiffstore", .write, { c throws(RedisError) in try storeSetAlgebra(&c, .diff, event: "sdiffstore") }),
        (
            "sintercard", .read,
            { c throws(RedisError) in
                guard let numkeys = RedisNumber.parseInteger(c[1]), numkeys >= 1 else {
                    throw .err("numkeys should be greater than 0")
                }
                if numkeys > Int64(c.count - 2) { throw .err("Number of keys can't be greater than number of args") }
                var limit: Int64 = 0
                var index = 2 + Int(numkeys)
                while index < c.count {
                    guard c.option(index) == "LIMIT", index + 1 < c.count else { throw .syntax }
                    // Redis answers a LIMIT that is not a number like a negative one.
                    guard let value = RedisNumber.parseInteger(c[index + 1]), value >= 0 else {
                        throw .err("LIMIT can't be negative")
                    }
                    limit = value
                    index += 2
                }
                let members = try setAlgebra(&c, Array(c.arguments[2..<(2 + Int(numkeys))]), .inter)
                return .integer(limit > 0 ? min(members.count, Int(limit)) : members.count)
            }
        ),
        ("sscan", .read, { c throws(RedisError) in try scanCollection(&c, .set) { member, _ in [.bulk(member)] } }),
    ]

    enum SetOperation { case inter, union, diff }

    /// The members of the sets at `keys` combined; every key must hold a set or nothing.
    static func setAlgebra(_ c: inout RedisInvocation, _ keys: [[UInt8]], _ operation: SetOperation)
        throws(RedisError) -> [[UInt8]]
    {
        var sets: [RedisData.Entry?] = []
        for key in keys { sets.append(try c.data.lookup(c.db, key, as: .set)) }
        switch operation {
        case .inter:
            if sets.contains(where: { $0 == nil }) { return [] }
            let ordered = sets.map { $0! }.sorted { $0.metadata.size < $1.metadata.size }
            var result: [[UInt8]] = []
            for (member, _) in try c.data.members(ordered[0]) {
                var everywhere = true
                for other in ordered.dropFirst() where try c.data.member(other, member) == nil {
                    everywhere = false
                    break
                }
                if everywhere { result.append(member) }
            }
            return result
        case .union:
            var seen = Set<[UInt8]>()
            var result: [[UInt8]] = []
            for case let entry? in sets {
                for (member, _) in try c.data.members(entry) where seen.insert(member).inserted {
                    result.append(member)
                }
            }
            return result
        case .diff:
            guard let first = sets.first, let first else { return [] }
            var result: [[UInt8]] = []
            for (member, _) in try c.data.members(first) {
                var elsewhere = false
                for case let other? in sets.dropFirst() where try c.data.member(other, member) != nil {
                    elsewhere = true
                    break
                }
                if !elsewhere { result.append(member) }
            }
            return result
        }
    }

    private static func storeSetAlgebra(_ c: inout RedisInvocation, _ operation: SetOperation, event: String)
        throws(RedisError) -> RESPValue
    {
        let members = try setAlgebra(&c, Array(c.arguments[2...]), operation)
        var entry = c.data.newCollection(.set)
        for member in members { try c.data.putMember(&entry, member, []) }
        let existed = try c.data.lookup(c.db, c[1]) != nil
        try c.data.replace(c.db, c[1], with: entry)
        if !members.isEmpty {
            c.notify(event, .set, c[1])
        } else if existed {
            c.notify("del", .generic, c[1])
        }
        return .integer(members.count)
    }

    /// A set's members in Redis's order where Redis defines one: a set it keeps as an intset (every member an
    /// integer, at most `set-max-intset-entries`) lists them in ascending numeric order; otherwise Strata's.
    static func orderedMembers(_ c: inout RedisInvocation, _ entry: RedisData.Entry) throws(RedisError) -> [[UInt8]] {
        let members = try c.data.members(entry).map(\.member)
        guard members.count <= c.server.config.effective.setIntsetEntries else { return members }
        var numbers: [(Int64, [UInt8])] = []
        numbers.reserveCapacity(members.count)
        for member in members {
            guard let number = RedisNumber.parseInteger(member) else { return members }
            numbers.append((number, member))
        }
        return numbers.sorted { $0.0 < $1.0 }.map(\.1)
    }
}
