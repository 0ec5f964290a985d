/// `[key, end)` with etcd's conventions, which every front-end can express: an empty `end` means just `key`;
/// `end == [0]` means every key `>= key`.
package struct KeyRange: Sendable, Hashable {
    package var key: [UInt8]
    package var end: [UInt8]

    package init(key: [UInt8], end: [UInt8] = []) {
        self.key = key
        self.end = end
    }

    /// Every key starting with `prefix` (clientv3's `GetPrefixRangeEnd`).
    package static func prefix(_ prefix: [UInt8]) -> KeyRange {
        KeyRange(key: prefix, end: prefixEnd(prefix))
    }

    /// Every key of the keyspace.
    package static var all: KeyRange { KeyRange(key: [0], end: [0]) }

    /// The smallest key greater than every key with this prefix; `[0]` (no upper bound) when there is none.
    package static func prefixEnd(_ prefix: [UInt8]) -> [UInt8] {
        var end = prefix
        while let last = end.last {
            if last < 0xFF {
                end[end.count - 1] = last + 1
                return end
            }
            end.removeLast()
        }
        return [0]
    }

    package var isSingleKey: Bool { end.isEmpty }
    package var isUnbounded: Bool { end == [0] }

    /// The exclusive upper bound, or nil for "no bound".
    package var upperBound: [UInt8]? {
        if isSingleKey { return key + [0] }
        if isUnbounded { return nil }
        return end
    }

    package func contains(_ candidate: [UInt8]) -> Bool {
        if isSingleKey { return candidate == key }
        guard !candidate.lexicographicallyPrecedes(key) else { return false }
        if isUnbounded { return true }
        return candidate.lexicographicallyPrecedes(end)
    }

    /// True when the range can hold no key (`key >= end` for a real range).
    package var isEmpty: Bool {
        !isSingleKey && !isUnbounded && !key.lexicographicallyPrecedes(end)
    }
}
