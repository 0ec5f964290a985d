/// Deadlines for many IDs (leases, or millions of Redis keys with TTLs): a binary min-heap with lazy deletion.
///
/// `schedule` and `cancel` are O(log n) / O(1): a re-scheduled or cancelled ID leaves its old heap entry behind,
/// which is recognised as stale (its generation no longer matches) and dropped when it reaches the top. No task or
/// timer per entry. Not thread-safe: the owner guards it (a `Mutex`).
package struct ExpiryQueue<ID: Hashable & Sendable>: Sendable {
    private struct Entry: Sendable {
        var deadline: Int64
        var generation: UInt64
        var id: ID
    }

    private var heap: [Entry] = []
    private var current: [ID: (deadline: Int64, generation: UInt64)] = [:]
    private var nextGeneration: UInt64 = 0

    package init() {}

    /// Number of scheduled IDs.
    package var count: Int { current.count }

    package func deadline(of id: ID) -> Int64? { current[id]?.deadline }

    /// Sets (or moves) the deadline of `id`.
    package mutating func schedule(_ id: ID, at deadline: Int64) {
        nextGeneration &+= 1
        current[id] = (deadline, nextGeneration)
        push(Entry(deadline: deadline, generation: nextGeneration, id: id))
        compactIfMostlyStale()
    }

    /// Forgets `id`; returns whether it was scheduled.
    @discardableResult
    package mutating func cancel(_ id: ID) -> Bool {
        current.removeValue(forKey: id) != nil
    }

    /// The earliest live deadline.
    package mutating func nextDeadline() -> Int64? {
        dropStaleTop()
        return heap.first?.deadline
    }

    /// Removes and returns up to `limit` IDs whose deadline is `<= now`, earliest first.
    package mutating func popExpired(now: Int64, limit: Int = .max) -> [ID] {
        var expired: [ID] = []
        while expired.count < limit {
            dropStaleTop()
            guard let top = heap.first, top.deadline <= now else { break }
            popTop()
            current[top.id] = nil
            expired.append(top.id)
        }
        return expired
    }

    private func isLive(_ entry: Entry) -> Bool {
        current[entry.id]?.generation == entry.generation
    }

    private mutating func dropStaleTop() {
        while let top = heap.first, !isLive(top) { popTop() }
    }

    /// Rebuilds the heap when stale entries dominate, so memory stays proportional to live IDs.
    private mutating func compactIfMostlyStale() {
        guard heap.count > 1024, heap.count > 4 * current.count else { return }
        heap = heap.filter(isLive)
        for index in stride(from: heap.count / 2 - 1, through: 0, by: -1) { siftDown(index) }
    }

    private mutating func push(_ entry: Entry) {
        heap.append(entry)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].deadline < heap[parent].deadline else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func popTop() {
        let last = heap.removeLast()
        guard !heap.isEmpty else { return }
        heap[0] = last
        siftDown(0)
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count && heap[left].deadline < heap[smallest].deadline { smallest = left }
            if right < heap.count && heap[right].deadline < heap[smallest].deadline { smallest = right }
            guard smallest != parent else { return }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
