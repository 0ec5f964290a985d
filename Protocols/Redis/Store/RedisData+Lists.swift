internal import StrataMVCC

/// Lists: elements at `s` version index, indexes `head ..< head + size` (LPUSH takes `head - 1`, RPUSH
/// `head + size`), so pushes, pops and LINDEX touch one entry.
extension RedisData {
    /// The element at `index` (0-based from the head; negative from the tail), or nil when out of range.
    package mutating func listElement(_ entry: Entry, at index: Int) throws(RedisError) -> [UInt8]? {
        guard let position = Self.position(index, size: entry.metadata.size) else { return nil }
        return try read(RedisLayout.elementKey(entry.metadata.version, entry.metadata.head &+ UInt64(position)))?.value
    }

    package mutating func setListElement(_ entry: Entry, at index: Int, _ value: [UInt8]) throws(RedisError) -> Bool {
        guard let position = Self.position(index, size: entry.metadata.size) else { return false }
        try write(RedisLayout.elementKey(entry.metadata.version, entry.metadata.head &+ UInt64(position)), value)
        return true
    }

    package mutating func push(_ entry: inout Entry, _ value: [UInt8], left: Bool) throws(RedisError) {
        let version = entry.metadata.version
        if left {
            entry.metadata.head &-= 1
            try write(RedisLayout.elementKey(version, entry.metadata.head), value)
        } else {
            try write(RedisLayout.elementKey(version, entry.metadata.head &+ UInt64(entry.metadata.size)), value)
        }
        entry.metadata.size += 1
    }

    package mutating func pop(_ entry: inout Entry, left: Bool) throws(RedisError) -> [UInt8]? {
        guard entry.metadata.size > 0 else { return nil }
        let index = left ? entry.metadata.head : entry.metadata.head &+ UInt64(entry.metadata.size - 1)
        let key = RedisLayout.elementKey(entry.metadata.version, index)
        let value = try read(key)?.value ?? []
        try remove(key)
        entry.metadata.size -= 1
        if left { entry.metadata.head &+= 1 }
        return value
    }

    /// Elements `start...stop` (already clamped to the list), in order.
    package mutating func listRange(_ entry: Entry, from start: Int64, through stop: Int64) throws(RedisError)
        -> [[UInt8]]
    {
        guard start <= stop, start >= 0, stop < entry.metadata.size else { return [] }
        let version = entry.metadata.version
        let head = entry.metadata.head
        let range = KeyRange(
            key: RedisLayout.elementKey(version, head &+ UInt64(start)),
            end: RedisLayout.elementKey(version, head &+ UInt64(stop) &+ 1)
        )
        var elements: [[UInt8]] = []
        elements.reserveCapacity(Int(stop - start + 1))
        if head &+ UInt64(stop) < head &+ UInt64(start) || head &+ UInt64(stop) == UInt64.max {
            // The index space wrapped (never in practice: 2^63 pushes to one side); read one by one.
            for offset in start...stop {
                elements.append(try read(RedisLayout.elementKey(version, head &+ UInt64(offset)))?.value ?? [])
            }
            return elements
        }
        try scan(range) { kv throws(RedisError) in
            elements.append(kv.value)
            return true
        }
        return elements
    }

    /// Every element, head first.
    package mutating func listAll(_ entry: Entry) throws(RedisError) -> [[UInt8]] {
        try listRange(entry, from: 0, through: entry.metadata.size - 1)
    }

    /// Rewrites the whole list as `elements` (LINSERT, LREM: Redis moves the tail too).
    package mutating func rewriteList(_ entry: inout Entry, _ elements: [[UInt8]]) throws(RedisError) {
        let version = entry.metadata.version
        for offset in 0..<entry.metadata.size {
            try remove(RedisLayout.elementKey(version, entry.metadata.head &+ UInt64(offset)))
        }
        for (offset, element) in elements.enumerated() {
            try write(RedisLayout.elementKey(version, entry.metadata.head &+ UInt64(offset)), element)
        }
        entry.metadata.size = Int64(elements.count)
    }

    /// Keeps elements `start...stop` (clamped), deleting the rest from both ends (LTRIM).
    package mutating func trimList(_ entry: inout Entry, keeping start: Int64, through stop: Int64) throws(RedisError) {
        let size = entry.metadata.size
        let version = entry.metadata.version
        let keepFrom = max(0, start)
        let keepTo = min(size - 1, stop)
        if keepFrom > keepTo || keepFrom >= size {
            for offset in 0..<size {
                try remove(RedisLayout.elementKey(version, entry.metadata.head &+ UInt64(offset)))
            }
            entry.metadata.size = 0
            return
        }
        for offset in 0..<keepFrom {
            try remove(RedisLayout.elementKey(version, entry.metadata.head &+ UInt64(offset)))
        }
        if keepTo + 1 < size {
            for offset in (keepTo + 1)..<size {
                try remove(RedisLayout.elementKey(version, entry.metadata.head &+ UInt64(offset)))
            }
        }
        entry.metadata.head &+= UInt64(keepFrom)
        entry.metadata.size = keepTo - keepFrom + 1
    }

    /// A Redis index (negative from the end) as a position in `0 ..< size`, or nil.
    static func position(_ index: Int, size: Int64) -> Int64? {
        let position = index < 0 ? size + Int64(index) : Int64(index)
        return position >= 0 && position < size ? position : nil
    }
}
