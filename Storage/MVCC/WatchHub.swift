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
        /// Bytes of recently published events kept in memory while watches are open, so a watcher that fell behind
        /// by a little catches up without reading and decoding the log (every watcher of a busy key would otherwise
        /// decode the same entries).
        package var recentEventBytes = 4 << 20
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
        /// The consumer serving this watcher together with others, woken through the group instead of `waiting`.
        let group: WatchGroup?
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

        /// Appends `update`; returns how to wake the consumer (to do once the hub lock is released).
        mutating func append(_ update: WatchUpdate, id: Int) -> Wakeup? {
            buffer.append(update)
            return wakeup(id)
        }

        mutating func wakeup(_ id: Int) -> Wakeup? {
            if let group { return .group(group, id) }
            defer { waiting = nil }
            return waiting.map(Wakeup.continuation)
        }
    }

    enum Wakeup {
        case continuation(CheckedContinuation<Void, Never>)
        case group(WatchGroup, Int)

        func callAsFunction() {
            switch self {
            case .continuation(let continuation): continuation.resume()
            case .group(let group, let id): group.markReady([id])
            }
        }
    }

    struct State {
        var watchers: [Int: WatcherState] = [:]
        var index = WatcherIndex()
        var nextID = 1
        var published: Revision = 0
        /// Watchers in `.catchingUp` mode, kept with every mode change so the gauge costs O(1).
        var unsynced = 0
        var recent = RecentRevisions()
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
        state.withLock { ($0.watchers.count, $0.unsynced) }
    }

    /// Bytes of recently published events held for catch-up (0 while no watch is open).
    package var recentEventBytesKept: Int { state.withLock { $0.recent.byteCount } }

    // MARK: Creating and ending watches

    /// Starts a watch. A start revision below the compaction point yields one `.compacted` update and ends.
    package func watch(_ request: WatchRequest, group: WatchGroup? = nil) throws(MVCCError) -> Watcher {
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
                watcher = WatcherState(request: request, mode: .live, group: group)
                watcher.buffer = [.compacted(compactRevision: view.compactRevision)]
                watcher.closed = true
            } else if request.startRevision > 0 && request.startRevision <= state.published {
                watcher = WatcherState(request: request, mode: .catchingUp(next: request.startRevision), group: group)
                state.unsynced += 1
                state.index.insert(id, request.keyspace, request.range)
            } else {
                watcher = WatcherState(request: request, mode: .live, group: group)
                state.index.insert(id, request.keyspace, request.range)
            }
            state.watchers[id] = watcher
            return (id, state.published)
        }
        updateGauges()
        return Watcher(id: id, hub: self, createdRevision: createdRevision)
    }

    func cancel(_ id: Int) {
        let wakeup = state.withLock { state -> Wakeup? in
            guard var watcher = state.watchers.removeValue(forKey: id) else { return nil }
            state.index.remove(id, watcher.request.keyspace, watcher.request.range)
            // The last watch is gone: nobody can need the recent events for a catch-up (publish would drop them at
            // the next write, but an idle server would hold up to `recentEventBytes` until then).
            if state.watchers.isEmpty { state.recent.removeAll() }
            if case .catchingUp = watcher.mode { state.unsynced -= 1 }
            watcher.closed = true
            return watcher.wakeup(id)
        }
        wakeup?()
        updateGauges()
    }

    /// Ends every watch (server shutdown): consumers see the end of their stream.
    func closeAll() {
        let wakeups = state.withLock { state -> [Wakeup] in
            var wakeups: [Wakeup] = []
            for id in state.watchers.keys {
                state.watchers.mutate(id) { watcher in
                    watcher.closed = true
                    if let wakeup = watcher.wakeup(id) { wakeups.append(wakeup) }
                }
            }
            return wakeups
        }
        for wakeup in wakeups { wakeup() }
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
        var resumed: [Wakeup] = []
        var switchedToCatchUp = 0
        state.withLock { state in
            state.published = revision
            guard !state.watchers.isEmpty else {
                // Nobody to catch up: keep no events (the kept revisions must stay contiguous up to `published`).
                state.recent.removeAll()
                return
            }
            let changes = makeChanges()
            state.recent.append(revision, changes, limit: configuration.recentEventBytes)
            var matched: [Int: [Event]] = [:]
            if changes.count == 1 {
                // The common case: every matching watcher gets the same one event, filtered at most 8 ways.
                let (keyspace, event) = changes[0]
                state.index.forEachMatch(keyspace, event.kv.key) { id in matched[id] = [] }
            } else {
                for (keyspace, event) in changes {
                    state.index.forEachMatch(keyspace, event.kv.key) { id in matched[id, default: []].append(event) }
                }
            }
            var variants: [Int: [Event]] = [:]
            func filtered(_ events: [Event], for request: WatchRequest) -> [Event] {
                guard changes.count == 1 else { return Self.filter(events, for: request) }
                let key = (request.noPut ? 1 : 0) | (request.noDelete ? 2 : 0) | (request.prevKV ? 4 : 0)
                if let variant = variants[key] { return variant }
                let variant = Self.filter([changes[0].1], for: request)
                variants[key] = variant
                return variant
            }
            let limit = configuration.bufferedUpdatesPerWatcher
            for (id, events) in matched {
                state.watchers.mutate(id) { watcher in
                    guard !watcher.closed, case .live = watcher.mode else { return }
                    guard revision >= watcher.request.startRevision else { return }
                    let delivered = filtered(events, for: watcher.request)
                    guard !delivered.isEmpty else { return }
                    if watcher.bufferedCount >= limit {
                        if watcher.request.keyspace.keepsHistory {
                            watcher.mode = .catchingUp(next: revision)
                            switchedToCatchUp += 1
                        } else {
                            // No log to catch up from: end the watch rather than drop events silently.
                            if let wakeup = watcher.append(.compacted(compactRevision: revision), id: id) {
                                resumed.append(wakeup)
                            }
                            watcher.closed = true
                        }
                    } else if let wakeup = watcher.append(.events(revision: revision, events: delivered), id: id) {
                        resumed.append(wakeup)
                    }
                    watcher.sentSinceTick = true
                }
            }
            state.unsynced += switchedToCatchUp
        }
        WatchGroup.wake(resumed)
        if switchedToCatchUp > 0 { updateGauges() }
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
        let (queued, wakeup) = state.withLock { state -> (Bool, Wakeup?) in
            guard var watcher = state.watchers[id], !watcher.closed, case .live = watcher.mode,
                watcher.bufferedCount == 0, state.published >= watcher.request.startRevision - 1
            else { return (false, nil) }
            let wakeup = watcher.append(.progress(revision: state.published), id: id)
            state.watchers[id] = watcher
            return (true, wakeup)
        }
        wakeup?()
        return queued
    }

    /// One tick of periodic progress: every caught-up watcher that asked for it and got nothing since the last tick
    /// receives the current revision.
    package func tickProgress() {
        var resumed: [Wakeup] = []
        state.withLock { state in
            let published = state.published
            for index in state.watchers.values.indices {
                let id = state.watchers.keys[index]
                let wakeup = { (watcher: inout WatcherState) -> Wakeup? in
                    let idle = !watcher.sentSinceTick
                    watcher.sentSinceTick = false
                    guard watcher.request.progressNotify, idle, !watcher.closed, case .live = watcher.mode,
                        watcher.bufferedCount == 0
                    else { return nil }
                    return watcher.append(.progress(revision: published), id: id)
                }(&state.watchers.values[index])
                if let wakeup { resumed.append(wakeup) }
            }
        }
        WatchGroup.wake(resumed)
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
        /// Updates to hand over; `more` when the watcher has further updates buffered or is catching up.
        case deliver([WatchUpdate], more: Bool)
        case end
        case catchUp(from: Revision, to: Revision)
        case wait
        /// Wait, after switching from catch-up back to live delivery (the unsynced gauge changes).
        case waitAfterRejoining
    }

    /// Takes up to `limit` buffered updates of watcher `id`, catching it up from the recent events or the log first
    /// when it is behind; never waits (`.wait` when there is nothing).
    private func advance(_ id: Int, limit: Int) throws(MVCCError) -> NextStep {
        while true {
            let step = state.withLock { state -> NextStep in
                // Mutated in place: a copy of the watcher would copy its whole buffer on every pop.
                let step =
                    state.watchers.mutate(id) { watcher -> NextStep in
                        if let update = watcher.popFirst() {
                            var updates = [update]
                            while updates.count < limit, let more = watcher.popFirst() { updates.append(more) }
                            var behind = false
                            if case .catchingUp = watcher.mode { behind = true }
                            return .deliver(updates, more: watcher.bufferedCount > 0 || behind || watcher.closed)
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
                if case .waitAfterRejoining = step { state.unsynced -= 1 }
                return step
            }
            switch step {
            case .deliver(let updates, _):
                var count = 0
                for case .events(_, let events) in updates { count += events.count }
                if count > 0 { metrics.eventsSent.increment(by: count) }
                return step
            case .end:
                if state.withLock({ $0.watchers[id]?.closed ?? false }) { cancel(id) }
                return .end
            case .catchUp(let from, let to):
                try catchUp(id, from: from, to: to)
            case .wait:
                return .wait
            case .waitAfterRejoining:
                // Gauges only change on a mode switch: recounting on every wait would cost O(watchers) per event.
                updateGauges()
                return .wait
            }
        }
    }

    /// The next updates of watcher `id` (at least one, at most `limit`; waiting for the first); nil when it ended.
    func next(_ id: Int, limit: Int) async throws(MVCCError) -> [WatchUpdate]? {
        while true {
            switch try advance(id, limit: limit) {
            case .deliver(let updates, _):
                return updates
            case .end:
                return nil
            case .catchUp, .wait, .waitAfterRejoining:
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

    /// Up to `limit` updates of watcher `id` without waiting, for a consumer serving it through a ``WatchGroup``:
    /// empty when there is nothing now (the group is woken when there is), nil when the watch ended. `more` asks the
    /// consumer to poll again (more is buffered, or it is still catching up).
    func poll(_ id: Int, limit: Int) throws(MVCCError) -> (updates: [WatchUpdate], more: Bool)? {
        switch try advance(id, limit: limit) {
        case .deliver(let updates, let more): (updates, more)
        case .end: nil
        case .catchUp, .wait, .waitAfterRejoining: ([], false)
        }
    }

    /// Reads revisions `[from, to]` (at most `maxRevisionsPerCatchUp`) into the watcher's buffer: from the recent
    /// events when they still hold them (no log read, and every watcher behind on a busy key shares the events
    /// already in memory), else from the log.
    private func catchUp(_ id: Int, from: Revision, to: Revision) throws(MVCCError) {
        defer { updateGauges() }
        guard let store else { throw .closed }
        let last = min(to, from + Revision(configuration.maxRevisionsPerCatchUp) - 1)
        if from >= store.readView().compactRevision {
            let done = state.withLock { state -> Bool in
                guard let request = state.watchers[id]?.request,
                    let updates = state.recent.updates(for: request, from: from, through: last)
                else { return false }
                Self.finishCatchUp(&state, id, from: from, through: last, updates)
                return true
            }
            if done { return }
        }
        guard let request = state.withLock({ $0.watchers[id]?.request }) else { return }
        let (view, _) = try store.openReadView()
        let replayed = min(last, view.revision)
        let updates: [WatchUpdate]
        if from < view.compactRevision {
            updates = [.compacted(compactRevision: view.compactRevision)]
        } else {
            updates = try store.replay(request, from: from, through: replayed, view: view).map {
                .events(revision: $0.revision, events: $0.events)
            }
        }
        state.withLock { Self.finishCatchUp(&$0, id, from: from, through: replayed, updates) }
    }

    /// Appends a catch-up step's updates for revisions `[from, last]` and moves the watcher on: back to live delivery
    /// once it has everything published (atomically with publishers), ended when the step hit the compaction.
    private static func finishCatchUp(
        _ state: inout State,
        _ id: Int,
        from: Revision,
        through last: Revision,
        _ updates: [WatchUpdate]
    ) {
        let published = state.published
        let outcome = state.watchers.mutate(id) { watcher -> (rejoined: Bool, compacted: WatchRequest?)? in
            guard case .catchingUp(let next) = watcher.mode, next == from else { return nil }
            for update in updates { _ = watcher.append(update, id: id) }
            watcher.mode = last + 1 > published ? .live : .catchingUp(next: last + 1)
            var rejoined = false
            if case .live = watcher.mode { rejoined = true }
            guard updates.contains(where: { if case .compacted = $0 { true } else { false } }) else {
                return (rejoined, nil)
            }
            watcher.closed = true
            return (rejoined, watcher.request)
        }
        guard let outcome = outcome ?? nil else { return }
        if outcome.rejoined { state.unsynced -= 1 }
        if let request = outcome.compacted { state.index.remove(id, request.keyspace, request.range) }
    }
}

/// Wakes one consumer that serves many watchers (a Watch stream with many watches): instead of a task per watcher
/// waiting on its own buffer, the hub marks watchers ready here and the consumer takes every ready one in one go.
package final class WatchGroup: Sendable {
    private struct State {
        var ready: Set<Int> = []
        var waiting: CheckedContinuation<Void, Never>?
        var closed = false
    }

    private let state = Mutex(State())

    package init() {}

    /// Marks watchers (by ``Watcher/id``) as having something for their consumer.
    package func markReady(_ ids: some Sequence<Int>) {
        let waiting = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.ready.formUnion(ids)
            defer { state.waiting = nil }
            return state.waiting
        }
        waiting?.resume()
    }

    /// The watchers marked ready since the last call, waiting until there is one; nil once closed or cancelled.
    package func next() async -> Set<Int>? {
        while true {
            let taken = state.withLock { state -> Set<Int>? in
                if state.closed { return nil }
                defer { state.ready = [] }
                return state.ready
            }
            guard let taken else { return nil }
            if !taken.isEmpty { return taken }
            if Task.isCancelled { return nil }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = state.withLock { state -> Bool in
                        if state.closed || !state.ready.isEmpty || Task.isCancelled { return true }
                        state.waiting = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            } onCancel: {
                let waiting = state.withLock { state -> CheckedContinuation<Void, Never>? in
                    defer { state.waiting = nil }
                    return state.waiting
                }
                waiting?.resume()
            }
        }
    }

    /// Ends the consumer's loop: `next()` returns nil.
    package func close() {
        let waiting = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.closed = true
            defer { state.waiting = nil }
            return state.waiting
        }
        waiting?.resume()
    }

    /// Wakes consumers after the hub lock is released: per-watcher continuations resumed, group members marked ready
    /// once per group.
    static func wake(_ wakeups: [WatchHub.Wakeup]) {
        guard !wakeups.isEmpty else { return }
        var groups: [ObjectIdentifier: (WatchGroup, [Int])] = [:]
        for wakeup in wakeups {
            switch wakeup {
            case .continuation(let continuation): continuation.resume()
            case .group(let group, let id): groups[ObjectIdentifier(group), default: (group, [])].1.append(id)
            }
        }
        for (group, ids) in groups.values { group.markReady(ids) }
    }
}

/// The events of the most recently published revisions, contiguous up to the hub's `published`, bounded in bytes.
struct RecentRevisions {
    private var entries: [(revision: Revision, changes: [(Keyspace, Event)], bytes: Int)] = []
    private var head = 0
    private var bytes = 0

    var byteCount: Int { bytes }
    var firstRevision: Revision? { head < entries.count ? entries[head].revision : nil }
    var lastRevision: Revision? { head < entries.count ? entries[entries.count - 1].revision : nil }

    mutating func removeAll() {
        guard !entries.isEmpty else { return }
        entries.removeAll()
        head = 0
        bytes = 0
    }

    mutating func append(_ revision: Revision, _ changes: [(Keyspace, Event)], limit: Int) {
        if let last = entries.last, last.revision + 1 != revision { removeAll() }
        var size = 64
        for (_, event) in changes {
            size +=
                96 + event.kv.key.count + event.kv.value.count
                + (event.prevKV.map { $0.key.count + $0.value.count } ?? 0)
        }
        entries.append((revision, changes, size))
        bytes += size
        while bytes > limit, head < entries.count {
            bytes -= entries[head].bytes
            head += 1
        }
        if head > 64 && head * 2 > entries.count {
            entries.removeFirst(head)
            head = 0
        }
    }

    /// The updates `request` gets for revisions `[from, last]`, exactly as a log replay would give them; nil unless
    /// all of them are kept here.
    func updates(for request: WatchRequest, from: Revision, through last: Revision) -> [WatchUpdate]? {
        guard let first = firstRevision, let kept = lastRevision, first <= from, last <= kept else { return nil }
        var updates: [WatchUpdate] = []
        for revision in stride(from: from, through: last, by: 1) {
            var events: [Event] = []
            for (keyspace, event) in entries[head + Int(revision - first)].changes
            where keyspace.id == request.keyspace.id && request.range.contains(event.kv.key) {
                events.append(event)
            }
            let delivered = WatchHub.filter(events, for: request)
            if !delivered.isEmpty { updates.append(.events(revision: revision, events: delivered)) }
        }
        return updates
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

    /// Up to `limit` updates without waiting (for watchers created with a ``WatchGroup``): empty when there is
    /// nothing now, nil when the watch has ended; poll again when `more` is true.
    package func poll(upTo limit: Int) throws(MVCCError) -> (updates: [WatchUpdate], more: Bool)? {
        try hub.poll(id, limit: Swift.max(1, limit))
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
