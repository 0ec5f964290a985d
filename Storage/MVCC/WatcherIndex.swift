/// Watchers by key range: exact keys and prefixes in hash maps (an event looks up only its own key and its
/// prefixes), every other range in an interval index. No event costs anything for watchers on unrelated keys.
struct WatcherIndex {
    private var exact: [[UInt8]: Set<Int>] = [:]
    private var prefixes: [[UInt8]: Set<Int>] = [:]
    private var prefixLengths: [Int: Int] = [:]
    private var intervals = IntervalIndex()

    private static func isPrefixRange(_ range: KeyRange) -> Bool {
        !range.isSingleKey && !range.isUnbounded && range.end == KeyRange.prefixEnd(range.key)
    }

    mutating func insert(_ id: Int, _ keyspace: Keyspace, _ range: KeyRange) {
        if range.isSingleKey {
            exact[[keyspace.id] + range.key, default: []].insert(id)
        } else if Self.isPrefixRange(range) {
            prefixes[[keyspace.id] + range.key, default: []].insert(id)
            prefixLengths[range.key.count, default: 0] += 1
        } else {
            intervals.insert(
                id,
                start: [keyspace.id] + range.key,
                end: range.isUnbounded ? [keyspace.id + 1] : [keyspace.id] + range.end
            )
        }
    }

    mutating func remove(_ id: Int, _ keyspace: Keyspace, _ range: KeyRange) {
        if range.isSingleKey {
            let key = [keyspace.id] + range.key
            exact[key]?.remove(id)
            if exact[key]?.isEmpty == true { exact[key] = nil }
        } else if Self.isPrefixRange(range) {
            let key = [keyspace.id] + range.key
            if prefixes[key]?.remove(id) != nil {
                prefixLengths[range.key.count]! -= 1
                if prefixLengths[range.key.count] == 0 { prefixLengths[range.key.count] = nil }
            }
            if prefixes[key]?.isEmpty == true { prefixes[key] = nil }
        } else {
            intervals.remove(id)
        }
    }

    func forEachMatch(_ keyspace: Keyspace, _ key: [UInt8], _ body: (Int) -> Void) {
        var lookup = [keyspace.id]
        lookup.append(contentsOf: key)
        exact[lookup]?.forEach(body)
        for length in prefixLengths.keys where length <= key.count {
            prefixes[Array(lookup[0...length])]?.forEach(body)
        }
        intervals.forEachContaining(lookup, body)
    }
}
