internal import CoreMetrics
internal import StrataLease
internal import StrataRocksDB
internal import Synchronization

/// What a watcher asks for.
package struct WatchRequest: Sendable, Hashable {
    package var keyspace: Keyspace
    package var range: KeyRange
    /// 0 = from the next revision; otherwise replay history from this revision first.
    package var startRevision: Revision = 0
    package var prevKV = false
    package var noPut = false
    package var noDelete = false
    /// Periodic progress notifications while idle and caught up.
    package var progressNotify = false

    package init(keyspace: Keyspace, range: KeyRange) {
        self.keyspace = keyspace
        self.range = range
    }
}

/// One item a watcher receives.
package enum WatchUpdate: Sendable, Hashable {
    /// The watcher's events of one revision, in order.
    case events(revision: Revision, events: [Event])
    /// Caught up: nothing for this watcher up to `revision`.
    case progress(revision: Revision)
    /// The watch cannot continue: it needs history below the compaction revision. Last item.
    case compacted(compactRevision: Revision)
}

/// Fans committed events out to watchers, replaying history for those that start in the past or fall behind.
///
/// Writers never wait for watchers: publishing appends to a bounded per-watcher buffer, and a watcher whose buffer
/// is full stops receiving live events and is marked unsynced. Its own consumer then catches it up from the revision
/// log (in its own task, at most `maxRevisionsPerCatchUp` per read) and switches back to live delivery atomically
/// under the hub lock, so there is no gap and no duplicate at the hand-over. Watchers are indexed by exact key and
/// by prefix, so an event costs nothing for watchers on unrelated keys.
package final class WatchHub: Sendable {
    package struct Configuration: Sendable, Hashable {
        /// Updates buffered per watcher before it is switched to catch-up from the log.
        package var bufferedUpdatesPerWatcher = 128
        /// Revisions read from the log per catch-up step (etcd: watchBatchMaxRevs = 1000).
        package var maxRevisionsPerCatchUp = 1000
        /// Interval of progress notifications for watchers that asked for them (etcd's default: 10 minutes).
        package var progressNotifyIntervalSeconds: Double = 600
        package init() {}
        package static var defaults: Self { Self() }
    }

    enum Mode {
        case live
        /// Receiving nothing live; the consumer reads the log from `next`.
        case catchingUp(next: Revision)
    }

    struct WatcherState {
        let request: WatchRequest
        var mode: Mode
        var buffer: [WatchUpdate] = []
        var bufferStart = 0
        var waiting: CheckedContinuation<Void, Never>?
        var closed = false
        var sentSinceTick = false
        var bufferedCount: Int { buffer.count - bufferStart }

        mutating func popFirst() -> WatchUpdate? {
            guard bufferStart < buffer.count else { return nil }
            let first = buffer[bufferStart]
            bufferStart += 1
            if bufferStart > 64 && bufferStart * 2 > buffer.count {
                buffer.removeFirst(bufferStart)
                bufferStart = 0
            }
            return first
        }

        mutating func append(_ update: WatchUpdate) -> CheckedContinuation<Void, Never>? {
            buffer.append(update)
            defer { waiting = nil }
            return waiting
        }
    }

    struct State {
        var watchers: [Int: WatcherState] = [:]
        var index = WatcherIndex()
        var nextID = 1
        var published: Revision = 0
    }

    package let configuration: Configuration
    let clock: any StrataClock
    let metrics: MVCCMetrics
    let state = Mutex(State())
    private let storeBox = Mutex<WeakStore>(WeakStore())

    struct WeakStore: @unchecked Sendable {
        weak var store: MVCCStore?
    }

    init(configuration: Configuration, clock: any StrataClock, metrics: MVCCMetrics) {
        self.configuration = configuration
        self.clock = clock
        self.metrics = metrics
    }

    func attach(store: MVCCStore) {
        let revision = store.readView().revision
        storeBox.withLock { $0.store = store }
        state.withLock { $0.published = revision }
    }

    var store: MVCCStore? { storeBox.withLock { $0.store } }

    /// Number of watchers, and how many are catching up.
    package var counts: (watchers: Int, unsynced: Int) {
        state.withLock { state in
            let unsynced = state.watchers.values.filter {
                if case .catchingUp = $0.mode { return true }
                return false
            }.count
            return (state.watchers.count, unsynced)
        }
    }

    // MARK: Creating and ending watches

    /// Starts a watch. A start revision below the compaction point yields one `.compacted` update and ends.
    package func watch(_ request: WatchRequest) throws(MVCCError) -> Watcher {
        guard !request.range.isEmpty else { throw .emptyWatchRange }
        guard let store else { throw .closed }
        let view = store.readView()
        if request.startRevision > 0 && request.startRevision <= view.revision && !request.keyspace.keepsHistory {
            throw .unsupported("watching history in the \(request.keyspace) keyspace")
        }
        let (id, createdRevision) = state.withLock { state -> (Int, Revision) in
            let id = state.nextID
            state.nextID += 1
            var watcher: WatcherState
            if request.startRevision > 0 && request.startRevision < view.compactRevision {
                watcher = WatcherState(request: request, mode: .live)
                watcher.buffer = [.compacted(compactRevision: view.compactRevision)]
                watcher.closed = true
            } else if request.startRevision > 0 && request.startRevision <= state.published {
                watcher = WatcherState(request: request, mode: .catchingUp(next: request.startRevision))
                state.index.insert(id, request.keyspace, request.range)
            } else {
                watcher = WatcherState(request: request, mode: .live)
                state.index.insert(id, request.keyspace, request.range)
            }
            state.watchers[id] = watcher
            return (id, state.published)
        }
        updateGauges()
        return Watcher(id: id, hub: self, createdRevision: createdRevision)
    }

    func cancel(_ id: Int) {
        let waiting = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard var watcher = state.watchers.removeValue(forKey: id) else { return nil }
            state.index.remove(id, watcher.request.keyspace, watcher.request.range)
            watcher.closed = true
            return watcher.waiting
        }
        waiting?.resume()
        updateGauges()
    }

    /// Ends every watch (server shutdown): consumers see the end of their stream.
    func closeAll() {
        let waiting = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            var waiting: [CheckedContinuation<Void, Never>] = []
            for id in state.watchers.keys {
                state.watchers[id]!.closed = true
                if let continuation = state.watchers[id]!.waiting { waiting.append(continuation) }
                state.watchers[id]!.waiting = nil
            }
            return waiting
        }
        for continuation in waiting { continuation.resume() }
    }

    private func updateGauges() {
        let (watchers, unsynced) = counts
        metrics.watchers.record(watchers)
        metrics.unsyncedWatchers.record(unsynced)
    }

    // MARK: Publishing (called in revision order by the commit path)

    func publish(revision: Revision, changes: [(Keyspace, Event)]) {
        publish(revision: revision) { changes }
    }

    /// Publishes one revision; `changes` is only evaluated when some watch is open (checked under the hub lock, so a
    /// watch created concurrently either sees this revision as already published or receives its events).
    func publish(revision: Revision, changes makeChanges: () -> [(Keyspace, Event)]) {
        var resumed: [CheckedContinuation<Void, Never>] = []
        var switchedToCatchUp = false
        state.withLock { state in
            state.published = revision
            guard !state.watchers.isEmpty else { return }
            let changes = makeChanges()
            var matched: [Int: [Event]] = [:]
            for (keyspace, event) in changes {
                state.index.forEachMatch(keyspace, event.kv.key) { id in matched[id, default: []].append(event) }
            }
            let limit = configuration.bufferedUpdatesPerWatcher
            for (id, events) in matched {
                state.watchers.mutate(id) { watcher in
                    guard !watcher.closed, case .live = watcher.mode else { return }
                    guard revision >= watcher.request.startRevision else { return }
                    let delivered = Self.filter(events, for: watcher.request)
                    guard !delivered.isEmpty else { return }
                    if watcher.bufferedCount >= limit {
                        if watcher.request.keyspace.keepsHistory {
                            watcher.mode = .catchingUp(next: revision)
                            switchedToCatchUp = true
                        } else {
                            // No log to catch up from: end the watch rather than drop events silently.
                            if let continuation = watcher.append(.compacted(compactRevision: revision)) {
                                resumed.append(continuation)
                            }
                            watcher.closed = true
                        }
                    } else if let continuation = watcher.append(.events(revision: revision, events: delivered)) {
                        resumed.append(continuation)
                    }
                    watcher.sentSinceTick = true
                }
            }
        }
        for continuation in resumed { continuation.resume() }
        if switchedToCatchUp { updateGauges() }
    }

    static func filter(_ events: [Event], for request: WatchRequest) -> [Event] {
        var result: [Event] = []
        result.reserveCapacity(events.count)
        for var event in events {
            if event.kind == .put && request.noPut { continue }
            if event.kind == .delete && request.noDelete { continue }
            if !request.prevKV { event.prevKV = nil }
            result.append(event)
        }
        return result
    }

    // MARK: Progress

    func isSynced(_ id: Int) -> Bool {
        state.withLock { state in
            guard let watcher = state.watchers[id], case .live = watcher.mode else { return false }
            return watcher.bufferedCount == 0
        }
    }

    /// Queues a progress notification for a caught-up watcher with nothing buffered; false if it is not caught up.
    func requestProgress(_ id: Int) -> Bool {
        let (queued, continuation) = state.withLock { state -> (Bool, CheckedContinuation<Void, Never>?) in
            guard var watcher = state.watchers[id], !watcher.closed, case .live = watcher.mode,
                watcher.bufferedCount == 0, state.published >= watcher.request.startRevision - 1
            else { return (false, nil) }
            let continuation = watcher.append(.progress(revision: state.published))
            state.watchers[id] = watcher
            return (true, continuation)
        }
        continuation?.resume()
        return queued
    }

    /// One tick of periodic progress: every caught-up watcher that asked for it and got nothing since the last tick
    /// receives the current revision.
    package func tickProgress() {
        var resumed: [CheckedContinuation<Void, Never>] = []
        state.withLock { state in
            let published = state.published
            for index in state.watchers.values.indices {
                let continuation = { (watcher: inout WatcherState) -> CheckedContinuation<Void, Never>? in
                    let idle = !watcher.sentSinceTick
                    watcher.sentSinceTick = false
                    guard watcher.request.progressNotify, idle, !watcher.closed, case .live = watcher.mode,
                        watcher.bufferedCount == 0
                    else { return nil }
                    return watcher.append(.progress(revision: published))
                }(&state.watchers.values[index])
                if let continuation { resumed.append(continuation) }
            }
        }
        for continuation in resumed { continuation.resume() }
    }

    /// Sends periodic progress notifications until cancelled; one task for all watchers.
    package func runProgressNotifications() async throws {
        let interval = Int64(configuration.progressNotifyIntervalSeconds * 1e9)
        while !Task.isCancelled {
            try await clock.sleep(for: interval)
            tickProgress()
        }
    }

    // MARK: Consuming

    enum NextStep {
        case deliver([WatchUpdate])
        case end
        case catchUp(from: Revision, to: Revision)
        case wait
        /// Wait, after switching from catch-up back to live delivery (the unsynced gauge changes).
        case waitAfterRejoining
    }

    /// The next updates of watcher `id` (at least one, at most `limit`; waiting for the first); nil when it ended.
    func next(_ id: Int, limit: Int) async throws(MVCCError) -> [WatchUpdate]? {
        while true {
            let step = state.withLock { state -> NextStep in
                // Mutated in place: a copy of the watcher would copy its whole buffer on every pop.
                state.watchers.mutate(id) { watcher -> NextStep in
                    if let update = watcher.popFirst() {
                        var updates = [update]
                        while updates.count < limit, let more = watcher.popFirst() { updates.append(more) }
                        return .deliver(updates)
                    }
                    if watcher.closed { return .end }
                    if case .catchingUp(let next) = watcher.mode {
                        if next > state.published {
                            watcher.mode = .live
                            return .waitAfterRejoining
                        }
                        return .catchUp(from: next, to: state.published)
                    }
                    return .wait
                } ?? .end
            }
            switch step {
            case .deliver(let updates):
                var count = 0
                for case .events(_, let events) in updates { count += events.count }
                if count > 0 { metrics.eventsSent.increment(by: count) }
                return updates
            case .end:
                if state.withLock({ $0.watchers[id]?.closed ?? false }) { cancel(id) }
                return nil
            case .catchUp(let from, let to):
                try await catchUp(id, from: from, to: to)
            case .wait, .waitAfterRejoining:
                // Gauges only change on a mode switch: recounting on every wait would cost O(watchers) per event.
                if case .waitAfterRejoining = step { updateGauges() }
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                        let resumeNow = state.withLock { state -> Bool in
                            state.watchers.mutate(id) { watcher -> Bool in
                                if watcher.bufferedCount > 0 || watcher.closed || Task.isCancelled { return true }
                                if case .catchingUp = watcher.mode { return true }
                                watcher.waiting = continuation
                                return false
                            } ?? true
                        }
                        if resumeNow { continuation.resume() }
                    }
                } onCancel: {
                    // The consumer's task ended: wake it so `next()` returns instead of waiting for an event.
                    let waiting = state.withLock { state -> CheckedContinuation<Void, Never>? in
                        defer { state.watchers[id]?.waiting = nil }
                        return state.watchers[id]?.waiting
                    }
                    waiting?.resume()
                }
                if Task.isCancelled { return nil }
            }
        }
    }

    /// Reads revisions `[from, to]` (at most `maxRevisionsPerCatchUp`) from the log into the watcher's buffer.
    private func catchUp(_ id: Int, from: Revision, to: Revision) async throws(MVCCError) {
        defer { updateGauges() }
        guard let store else { throw .closed }
        guard let request = state.withLock({ $0.watchers[id]?.request }) else { return }
        let (view, _) = try store.openReadView()
        let last = min(to, from + Revision(configuration.maxRevisionsPerCatchUp) - 1, view.revision)
        var updates: [WatchUpdate]
        if from < view.compactRevision {
            updates = [.compacted(compactRevision: view.compactRevision)]
        } else {
            updates = try store.replay(request, from: from, through: last, view: view).map {
                .events(revision: $0.revision, events: $0.events)
            }
        }
        let compacted = updates.contains { if case .compacted = $0 { return true } else { return false } }
        state.withLock { state in
            guard var watcher = state.watchers[id], case .catchingUp(let next) = watcher.mode, next == from else {
                return
            }
            for update in updates { _ = watcher.append(update) }
            // Caught up with everything published: back to live delivery, atomically with publishers.
            watcher.mode = last + 1 > state.published ? .live : .catchingUp(next: last + 1)
            if compacted {
                watcher.closed = true
                state.index.remove(id, request.keyspace, request.range)
            }
            state.watchers[id] = watcher
        }
    }
}

/// The consumer's handle on one watch: an async sequence of updates, ended by `cancel()` or shutdown.
package final class Watcher: Sendable, AsyncSequence {
    package typealias Element = WatchUpdate
    package let id: Int
    /// The revision published when the watch was created: with start revision 0, every event after it is delivered
    /// and none at or before it (what etcd reports in the "created" response header).
    package let createdRevision: Revision
    private let hub: WatchHub

    init(id: Int, hub: WatchHub, createdRevision: Revision) {
        self.id = id
        self.hub = hub
        self.createdRevision = createdRevision
    }

    deinit { hub.cancel(id) }

    /// The next update; nil when the watch has ended.
    package func next() async throws(MVCCError) -> WatchUpdate? {
        try await hub.next(id, limit: 1)?.first
    }

    /// The next update and up to `limit - 1` more already buffered behind it, so a consumer that fell behind can
    /// send them together; nil when the watch has ended.
    package func next(upTo limit: Int) async throws(MVCCError) -> [WatchUpdate]? {
        try await hub.next(id, limit: Swift.max(1, limit))
    }

    /// Asks for a progress notification now; false when the watcher is still catching up or has updates pending.
    @discardableResult
    package func requestProgress() -> Bool { hub.requestProgress(id) }

    package func cancel() { hub.cancel(id) }

    /// Caught up and nothing buffered (what etcd's RequestProgress requires of every watcher on a stream).
    package var isSynced: Bool { hub.isSynced(id) }

    package struct AsyncIterator: AsyncIteratorProtocol {
        let watcher: Watcher
        package mutating func next() async throws(MVCCError) -> WatchUpdate? { try await watcher.next() }
    }

    package func makeAsyncIterator() -> AsyncIterator { AsyncIterator(watcher: self) }
}

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

/// Half-open byte-string intervals, answering "which intervals contain this key" in O(log n + matches):
/// intervals sorted by start, with a segment tree of maximum ends over that order, rebuilt when the set changes
/// (watch creation and cancellation are rare next to events).
struct IntervalIndex {
    private var entries: [(start: [UInt8], end: [UInt8], id: Int)] = []
    private var maxEnd: [[UInt8]] = []
    private var dirty = false

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

extension Dictionary {
    /// Runs `body` on the value for `key` in place (no copy of the value, so no copy-on-write of its buffers); nil
    /// when the key is absent.
    @inline(__always)
    mutating func mutate<R>(_ key: Key, _ body: (inout Value) -> R) -> R? {
        guard let index = index(forKey: key) else { return nil }
        return body(&values[index])
    }
}
