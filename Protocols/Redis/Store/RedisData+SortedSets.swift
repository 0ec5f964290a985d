internal import StrataMVCC

/// Sorted sets: member → score in `s` (8 bytes, order-preserving) and the order in `z` version score member.
extension RedisData {
    package mutating func score(_ entry: Entry, _ member: [UInt8]) throws(RedisError) -> Double? {
        guard let bytes = try self.member(entry, member), bytes.count == 8 else { return nil }
        return SortableDouble.decode(RedisLayout.readUInt64(bytes, at: 0))
    }

    /// Sets a member's score; true when the member is new.
    @discardableResult
    package mutating func setScore(_ entry: inout Entry, _ member: [UInt8], _ score: Double, old: Double?)
        throws(RedisError) -> Bool
    {
        let version = entry.metadata.version
        if let old {
            if old == score { return false }
            try remove(RedisLayout.scoreKey(version, old, member))
        }
        var encoded: [UInt8] = []
        RedisLayout.append(SortableDouble.encode(score), to: &encoded)
        try write(RedisLayout.memberKey(version, member), encoded)
        try write(RedisLayout.scoreKey(version, score, member), [])
        if old == nil { entry.metadata.size += 1 }
        return old == nil
    }

    package mutating func removeScored(_ entry: inout Entry, _ member: [UInt8]) throws(RedisError) -> Bool {
        guard let old = try score(entry, member) else { return false }
        try remove(RedisLayout.memberKey(entry.metadata.version, member))
        try remove(RedisLayout.scoreKey(entry.metadata.version, old, member))
        entry.metadata.size -= 1
        return true
    }

    /// Members in score order (then member order), ascending or descending, from the `skip`-th on, until `body`
    /// returns false.
    package mutating func forEachScored(
        _ entry: Entry,
        reverse: Bool = false,
        from lower: Double? = nil,
        through upper: Double? = nil,
        _ body: (_ member: [UInt8], _ score: Double) throws(RedisError) -> Bool
    ) throws(RedisError) {
        let version = entry.metadata.version
        let prefix = RedisLayout.scorePrefix(version)
        var range = KeyRange.prefix(prefix)
        if let lower { range.key = RedisLayout.scoreKey(version, score: lower) }
        if let upper, upper < .infinity {
            range.end = RedisLayout.scoreKey(version, score: upper.nextUp)
        }
        try scan(range, reverse: reverse, keysOnly: true) { kv throws(RedisError) in
            let (score, member) = RedisLayout.parseScoreKey(kv.key)
            return try body(member, score)
        }
    }

    /// 0-based rank of `member` in ascending order (descending with `reverse`), or nil.
    package mutating func rank(_ entry: Entry, _ member: [UInt8], reverse: Bool) throws(RedisError) -> (Int, Double)? {
        guard let score = try score(entry, member) else { return nil }
        var rank = 0
        try forEachScored(entry, reverse: reverse) { candidate, _ throws(RedisError) in
            if candidate == member { return false }
            rank += 1
            return true
        }
        return (rank, score)
    }
}

extension RedisData {
    /// A score as stored in a member entry.
    package static func decodeScore(_ bytes: [UInt8]) -> Double {
        SortableDouble.decode(RedisLayout.readUInt64(bytes, at: 0))
    }
}
