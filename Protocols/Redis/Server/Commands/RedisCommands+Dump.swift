internal import StrataMVCC
internal import StrataRedisStore

/// DUMP and RESTORE in Redis's payload format (``RedisDump``): a value dumped here restores in Redis 7.0 and the
/// reverse.
extension RedisCommands {
    static let dumps: [(String, RedisCommand.Access, RedisCommandTable.Handler)] = [
        (
            "dump", .read,
            { c throws(RedisError) in
                guard let entry = try c.data.lookup(c.db, c[1]) else { return .null }
                let value: RedisDump.Value
                switch entry.type {
                case .string: value = .string(entry.metadata.value)
                case .list: value = .list(try c.data.listAll(entry))
                case .set: value = .set(try c.data.members(entry).map(\.member))
                case .hash: value = .hash(try c.data.members(entry).map { (field: $0.member, value: $0.value) })
                case .zset:
                    var members: [(member: [UInt8], score: Double)] = []
                    try c.data.forEachScored(entry) { member, score throws(RedisError) in
                        members.append((member, score))
                        return true
                    }
                    value = .sortedSet(members)
                case .stream: value = .stream(try c.data.streamDump(entry))
                }
                return .bulk(RedisDump.dump(value))
            }
        ),
        ("restore", .write, { c throws(RedisError) in try restore(&c) }),
    ]

    static func restore(_ c: inout RedisInvocation) throws(RedisError) -> RESPValue {
        var replace = false
        var absoluteTTL = false
        var idle = false
        var frequency = false
        var index = 4
        while index < c.count {
            let option = c.option(index)
            let more = index + 1 < c.count
            switch option {
            case "REPLACE": replace = true
            case "ABSTTL": absoluteTTL = true
            case "IDLETIME" where more && !frequency:
                guard try c.integer(index + 1) >= 0 else { throw .err("Invalid IDLETIME value, must be >= 0") }
                idle = true
                index += 1
            case "FREQ" where more && !idle:
                let value = try c.integer(index + 1)
                guard (0...255).contains(value) else { throw .err("Invalid FREQ value, must be >= 0 and <= 255") }
                frequency = true
                index += 1
            default:
                throw .syntax
            }
            index += 1
        }
        let existing = try c.data.lookup(c.db, c[1])
        if !replace && existing != nil { throw .reply("BUSYKEY Target key name already exists.") }
        var ttl = try c.integer(2)
        guard ttl >= 0 else { throw .err("Invalid TTL value, must be >= 0") }
        let value: RedisDump.Value
        do throws(RedisDump.Failure) {
            value = try RedisDump.restore(c[3])
        } catch {
            throw error == .versionOrChecksum
                ? .err("DUMP payload version or checksum are wrong") : .err("Bad data format")
        }
        if ttl > 0 && !absoluteTTL {
            let (sum, overflow) = ttl.addingReportingOverflow(c.data.now)
            ttl = overflow ? Int64.max : sum
        }
        if ttl > 0 && ttl <= c.data.now {
            if let existing {
                try c.data.drop(c.db, c[1], existing)
                c.notify("del", .generic, c[1])
            }
            return .ok
        }
        let expiry: Expiry = ttl > 0 ? .at(ttl) : .none
        let bad = RedisError.err("Bad data format")
        switch value {
        case .string(let bytes):
            try c.data.setString(c.db, c[1], bytes, expiry: expiry, previous: .some(existing))
        case .list(let elements):
            var entry = c.data.newCollection(.list)
            for element in elements { try c.data.push(&entry, element, left: false) }
            try c.data.replace(c.db, c[1], with: entry, expiry: expiry, previous: .some(existing))
        case .set(let members):
            var entry = c.data.newCollection(.set)
            for member in members {
                guard try c.data.member(entry, member) == nil else { throw bad }
                try c.data.putMember(&entry, member, [])
            }
            try c.data.replace(c.db, c[1], with: entry, expiry: expiry, previous: .some(existing))
        case .hash(let fields):
            var entry = c.data.newCollection(.hash)
            for (field, fieldValue) in fields {
                guard try c.data.member(entry, field) == nil else { throw bad }
                try c.data.putMember(&entry, field, fieldValue)
            }
            try c.data.replace(c.db, c[1], with: entry, expiry: expiry, previous: .some(existing))
        case .stream(let stream):
            let effective = c.server.config.effective
            let entry = try c.data.restoreStream(
                stream,
                nodeMaxEntries: effective.streamNodeMaxEntries,
                nodeMaxBytes: effective.streamNodeMaxBytes
            )
            try c.data.replace(c.db, c[1], with: entry, expiry: expiry, previous: .some(existing))
        case .sortedSet(let members):
            var entry = c.data.newCollection(.zset)
            for (member, score) in members {
                guard try c.data.score(entry, member) == nil else { throw bad }
                try c.data.setScore(&entry, member, score, old: nil)
            }
            try c.data.replace(c.db, c[1], with: entry, expiry: expiry, previous: .some(existing))
        }
        c.notify("restore", .generic, c[1])
        return .ok
    }
}
