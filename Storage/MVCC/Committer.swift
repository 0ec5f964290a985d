internal import CoreMetrics
internal import Dispatch
internal import StrataCommon
internal import StrataRocksDB
internal import Synchronization

/// Group commit and periodic syncs, on one thread the store owns (an fsync blocks for milliseconds; the Swift pool
/// has only as many threads as cores).
///
/// A round fsyncs the WAL once for every write made before it, then (with `sync = always`) publishes their view and
/// watch events in revision order and resumes every writer waiting for a revision it covered: 64 concurrent writers
/// share one fsync. Rounds run when a writer waits, when a periodic write's sync is due (`fsyncWithin`, Redis's
/// `everysec`), and every interval with `sync = batch`.
final class Committer: Sendable {
    private struct Waiter {
        let revision: Revision
        /// Called with nil once durable (and published), or with the failure.
        let resume: @Sendable (MVCCError?) -> Void
    }

    private struct State {
        /// Durable and published through this revision.
        var durable: Revision = 0
        var synced: Revision = 0
        var waiters: [Waiter] = []
        /// Uptime nanoseconds by which the next fsync is due (periodic writes).
        var syncDue: UInt64?
        var roundRequested = false
        var stopped = false
    }

    let mode: SyncMode
    private let batchInterval: UInt64
    private let wake = DispatchSemaphore(value: 0)
    private let state = Mutex(State())
    private let thread = Mutex<OwnedThread?>(nil)

    init(mode: SyncMode, batchIntervalMilliseconds: Int) {
        self.mode = mode
        self.batchInterval = UInt64(max(batchIntervalMilliseconds, 1)) * 1_000_000
    }

    /// Starts the thread. It holds the store weakly: the store owns the committer.
    func start(store: MVCCStore) {
        let revision = store.readView().revision
        state.withLock {
            $0.durable = revision
            $0.synced = revision
        }
        let started = OwnedThread(name: "strata-commit") { [self, weak store] in
            var lastRound = DispatchTime.now().uptimeNanoseconds
            while true {
                let due = state.withLock { state -> UInt64? in
                    if state.roundRequested || state.stopped { return 0 }
                    var due = state.syncDue
                    if mode == .batch { due = min(due ?? .max, lastRound + batchInterval) }
                    return due
                }
                if let due {
                    if due > DispatchTime.now().uptimeNanoseconds {
                        _ = wake.wait(timeout: DispatchTime(uptimeNanoseconds: due))
                    }
                } else {
                    wake.wait()
                }
                let stopping = state.withLock { state -> Bool in
                    state.roundRequested = false
                    state.syncDue = nil
                    return state.stopped
                }
                lastRound = DispatchTime.now().uptimeNanoseconds
                guard let store else { break }
                store.committerRound()
                if stopping { break }
            }
        }
        thread.withLock { $0 = started }
    }

    /// Stops the thread after one last round (which syncs and publishes everything written).
    func stop() {
        let alreadyStopped = state.withLock { state -> Bool in
            defer { state.stopped = true }
            return state.stopped
        }
        guard !alreadyStopped else { return }
        wake.signal()
        thread.withLock { $0 }?.join()
        let waiters = state.withLock { state -> [Waiter] in
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(.closed) }
    }

    var hasWaiters: Bool { state.withLock { !$0.waiters.isEmpty } }

    /// Suspends until `revision` is durable (and published).
    func waitUntilDurable(_ revision: Revision) async throws(MVCCError) {
        let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<MVCCError?, Never>) in
            whenDurable(revision) { continuation.resume(returning: $0) }
        }
        if let outcome { throw outcome }
    }

    /// Calls `resume` (nil, or the failure) once `revision` is durable and published: at once if it already is,
    /// otherwise from the committer thread.
    func whenDurable(_ revision: Revision, _ resume: @escaping @Sendable (MVCCError?) -> Void) {
        let (outcome, signal): (MVCCError??, Bool) = state.withLock { state in
            if state.durable >= revision { return (.some(nil), false) }
            if state.stopped { return (.some(.closed), false) }
            state.waiters.append(Waiter(revision: revision, resume: resume))
            // 64 writers arriving during one fsync cost one more round, not 64 wake-ups.
            defer { state.roundRequested = true }
            return (nil, !state.roundRequested)
        }
        if let outcome {
            resume(outcome)
        } else if signal {
            wake.signal()
        }
    }

    /// Asks for an fsync within `milliseconds` (writes acknowledged before they are durable).
    func requestSync(within milliseconds: Int) {
        let due = DispatchTime.now().uptimeNanoseconds + UInt64(max(milliseconds, 0)) * 1_000_000
        let earlier = state.withLock { state -> Bool in
            guard state.syncDue.map({ due < $0 }) ?? true else { return false }
            state.syncDue = due
            return !state.roundRequested
        }
        if earlier { wake.signal() }
    }

    /// The revision the last successful fsync covered; records a new one.
    func markSynced(_ revision: Revision) {
        state.withLock { $0.synced = max($0.synced, revision) }
    }

    var syncedRevision: Revision { state.withLock { $0.synced } }

    /// Marks everything up to `revision` durable and resumes its writers.
    func markDurable(_ revision: Revision) {
        let ready = state.withLock { state -> [Waiter] in
            state.durable = max(state.durable, revision)
            let ready = state.waiters.filter { $0.revision <= state.durable }
            state.waiters.removeAll { $0.revision <= state.durable }
            return ready
        }
        for waiter in ready { waiter.resume(nil) }
    }

    /// Fails every waiting writer: the WAL could not be synced, so nothing after the last good sync is acknowledged
    /// (the next round tries again).
    func failWaiters(_ error: MVCCError) {
        let waiters = state.withLock { state -> [Waiter] in
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(error) }
    }
}

extension MVCCStore {
    /// One committer round: take the boundary (and, with `sync = always`, a snapshot of it) under the writer lock,
    /// fsync once, then publish the view and the events of the revisions it covers, in order, and release the
    /// writers waiting for them.
    func committerRound() {
        let always = committer.mode == .always
        let boundary = writer.withLock {
            state -> (Revision, Revision, RocksDB.Snapshot?, [(revision: Revision, events: [(Keyspace, Event)])])? in
            let target = state.revision
            let published = readView().revision
            let needsView = always && target > published
            let needsSync = target > committer.syncedRevision || committer.hasWaiters
            guard needsView || needsSync else { return nil }
            let snapshot = needsView ? try? database.snapshot() : nil
            defer { state.unpublished = [] }
            return (target, state.compactRevision, snapshot, state.unpublished)
        }
        guard let (target, compactRevision, snapshot, batches) = boundary else { return }
        do {
            if target > committer.syncedRevision || committer.hasWaiters {
                try database.syncWAL()
                metrics.fsyncs.increment()
                metrics.groupCommitSize.record(batches.count)
                committer.markSynced(target)
            }
        } catch {
            // Not latched: RocksDB reports its own background error (and recovers from a full disk by itself); the
            // revisions stay unpublished for the next round, and their writers hear that the sync failed.
            writer.withLock { $0.unpublished = batches + $0.unpublished }
            lastSyncError.withLock { $0 = "WAL sync failed: \(error)" }
            committer.failWaiters(Self.storageError(error, context: "WAL sync failed"))
            return
        }
        lastSyncError.withLock { $0 = nil }
        if always {
            if target > readView().revision {
                guard let snapshot else {
                    writer.withLock { $0.unpublished = batches + $0.unpublished }
                    committer.failWaiters(.storage("could not take a snapshot"))
                    return
                }
                publish(revision: target, compactRevision: compactRevision, snapshot: snapshot)
            }
            for batch in batches { watchHub.publish(revision: batch.revision, events: batch.events) }
            watchHub.advance(to: target)
        }
        committer.markDurable(target)
    }
}
