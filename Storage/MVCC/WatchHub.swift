internal import CoreMetrics
internal import StrataLease
internal import Synchronization

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
        try store.checkRegistered(request.keyspace)
        if request.startRevision != 0 && !request.keyspace.keepsHistory {
            throw .unsupported("watching from a revision in the \(request.keyspace) keyspace (live watches only)")
        }
        let (id, createdRevision) = state.withLock { state -> (Int, Revision) in
            let id = state.nextID
            state.nextID += 1
            var watcher: WatcherState
            // A negative start is below every revision kept: compacted, as etcd answers it.
            if request.startRevision < 0 || (request.startRevision > 0 && request.startRevision < view.compactRevision)
            {
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

    func updateGauges() {
        let (watchers, unsynced) = counts
        metrics.watchers.record(watchers)
        metrics.unsyncedWatchers.record(unsynced)
    }

    // MARK: Publishing (called in revision order by the commit path)

    /// Publishes one revision of a keyspace with history: `events` go to the live watchers they match and into the
    /// recent events that catch-ups read.
    func publish(revision: Revision, events: [(Keyspace, Event)]) {
        publish(revision: revision, history: true) { events }
    }

    /// Delivers the events of a latest-only keyspace's revision to its (always live) watchers now; `events` is only
    /// evaluated when some watch is open. The published revision does not move: see ``advance(to:)``.
    func publishLive(revision: Revision, events: () -> [(Keyspace, Event)]) {
        publish(revision: revision, history: false, events)
    }

    /// Marks revisions up to `revision` published when they hold no events of a keyspace with history.
    func advance(to revision: Revision) {
        state.withLock { state in
            guard revision > state.published else { return }
            state.published = revision
            state.recent.advance(to: revision)
        }
    }

    private func publish(revision: Revision, history: Bool, _ makeChanges: () -> [(Keyspace, Event)]) {
        var resumed: [Wakeup] = []
        var switchedToCatchUp = 0
        state.withLock { state in
            if history {
                state.published = max(state.published, revision)
                guard !state.watchers.isEmpty else {
                    // Nobody to catch up: keep no events (the kept revisions must stay contiguous up to `published`).
                    state.recent.removeAll()
                    return
                }
            } else if state.watchers.isEmpty {
                return
            }
            let changes = makeChanges()
            if history { state.recent.append(revision, changes, limit: configuration.recentEventBytes) }
            guard !changes.isEmpty else { return }
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
                            if let wakeup = watcher.append(.overflowed(revision: revision), id: id) {
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
