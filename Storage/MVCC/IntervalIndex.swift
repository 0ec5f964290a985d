/// Half-open byte-string intervals, answering "which intervals contain this key" in O(log n + matches):
/// intervals sorted by start, with a segment tree of maximum ends over that order, rebuilt when the set changes
/// (watch creation and cancellation are rare next to events).
struct IntervalIndex {
    private var entries: [(start: [UInt8], end: [UInt8], id: Int)] = []
    private var maxEnd: [[UInt8]] = []

    var count: Int { entries.count }

    mutating func insert(_ id: Int, start: [UInt8], end: [UInt8]) {
        let index = entries.firstIndex { !$0.start.lexicographicallyPrecedes(start) } ?? entries.count
        entries.insert((start, end, id), at: index)
        rebuild()
    }

    mutating func remove(_ id: Int) {
        entries.removeAll { $0.id == id }
        rebuild()
    }

    private mutating func rebuild() {
        guard !entries.isEmpty else {
            maxEnd = []
            return
        }
        var size = 1
        while size < entries.count { size *= 2 }
        maxEnd = Array(repeating: [], count: 2 * size)
        for (offset, entry) in entries.enumerated() { maxEnd[size + offset] = entry.end }
        for node in stride(from: size - 1, through: 1, by: -1) {
            let (left, right) = (maxEnd[2 * node], maxEnd[2 * node + 1])
            maxEnd[node] = left.lexicographicallyPrecedes(right) ? right : left
        }
    }

    func forEachContaining(_ key: [UInt8], _ body: (Int) -> Void) {
        guard !entries.isEmpty else { return }
        // Intervals starting at or before the key: a prefix of the sorted order.
        var low = 0
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if key.lexicographicallyPrecedes(entries[middle].start) { high = middle } else { low = middle + 1 }
        }
        guard low > 0 else { return }
        let size = maxEnd.count / 2
        visit(node: 1, nodeLow: 0, nodeHigh: size, limit: low, key: key, body)
    }

    /// Visits leaves below `node` (covering `[nodeLow, nodeHigh)`) with index `< limit` and end `> key`.
    private func visit(node: Int, nodeLow: Int, nodeHigh: Int, limit: Int, key: [UInt8], _ body: (Int) -> Void) {
        guard nodeLow < limit, key.lexicographicallyPrecedes(maxEnd[node]) else { return }
        if nodeHigh - nodeLow == 1 {
            body(entries[nodeLow].id)
            return
        }
        let middle = (nodeLow + nodeHigh) / 2
        visit(node: 2 * node, nodeLow: nodeLow, nodeHigh: middle, limit: limit, key: key, body)
        visit(node: 2 * node + 1, nodeLow: middle, nodeHigh: nodeHigh, limit: limit, key: key, body)
    }
}

/// Test access to ``IntervalIndex``.
package struct IntervalIndexProbe {
    private var index = IntervalIndex()
    package init() {}
    package mutating func insert(_ id: Int, start: [UInt8], end: [UInt8]) { index.insert(id, start: start, end: end) }
    package mutating func remove(_ id: Int) { index.remove(id) }
    package func matches(_ key: [UInt8]) -> Set<Int> {
        var found = Set<Int>()
        index.forEachContaining(key) { found.insert($0) }
        return found
    }
}
