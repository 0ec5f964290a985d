internal import CoreMetrics
internal import Dispatch
internal import StrataLease
package import StrataRocksDB
internal import Synchronization

/// Group commit: one background thread fsyncs the WAL for every writer waiting at that moment, then publishes
/// their revisions in order. 64 concurrent writers share one fsync instead of queueing for 64.
///
/// It runs on its own thread (not the Swift cooperative pool), because an fsync blocks for milliseconds and the
/// pool has only as many threads as cores. With `sync = batch` the same thread fsyncs on a timer and writers do not
/// wait for it.
final class Committer: Sendable {
    private struct Waiter {
        let revision: Revision
        /// Called with nil once published, or with the failure.
        let resume: @Sendable (MVCCError?) -> Void
    }

    private struct State {
        var published: Revision = 0
        var waiters: [Waiter] = []
        var stopped = false
        var failure: String?
    }

    let mode: SyncMode
    private let intervalMilliseconds: Int
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let state = Mutex(State())
    private let started = Atomic<Bool>(false)
    /// Set by the first writer that wakes the thread, cleared by the thread before its round: 64 writers arriving
    /// during one fsync cost one more round, not 64 wake-ups that each take the writer lock to find nothing to do.
    private let wakePending = Atomic<Bool>(false)

    init(mode: SyncMode, interval: Int) {
        self.mode = mode
        self.intervalMilliseconds = max(interval, 1)
    }

    /// Starts the thread. It holds the store weakly: the store owns the committer.
    func start(store: MVCCStore) {
        state.withLock { $0.published = store.readView().revision }
        started.store(true, ordering: .releasing)
        let thread = DispatchQueue(label: "strata.mvcc.committer", qos: .userInitiated)
        thread.async { [self, weak store] in
            while true {
                if mode == .batch {
                    _ = wake.wait(timeout: .now() + .milliseconds(intervalMilliseconds))
                } else {
                    wake.wait()
                    wakePending.store(false, ordering: .sequentiallyConsistent)
                }
                let stopping = state.withLock { $0.stopped }
                guard let store else { break }
                store.committerRound()
                if stopping { break }
            }
            finished.signal()
        }
    }

    /// Stops the thread after one last round (which syncs and publishes everything written).
    func stop() {
        guard started.load(ordering: .acquiring) else { return }
        let alreadyStopped = state.withLock { state -> Bool in
            defer { state.stopped = true }
            return state.stopped
        }
        guard !alreadyStopped else { return }
        wake.signal()
        finished.wait()
        let waiters = state.withLock { state -> [Waiter] in
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(.closed) }
    }

    /// Suspends until `revision` is durable and published.
    func waitUntilPublished(_ revision: Revision) async throws(MVCCError) {
        let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<MVCCError?, Never>) in
            whenPublished(revision) { continuation.resume(returning: $0) }
        }
        if let outcome { throw outcome }
    }

    /// Calls `resume` (nil, or the failure) once `revision` is durable and published: at once if it already is,
    /// otherwise from the committer thread.
    func whenPublished(_ revision: Revision, _ resume: @escaping @Sendable (MVCCError?) -> Void) {
        let outcome: MVCCError?? = state.withLock { state in
            if let failure = state.failure { return .some(.storage(failure)) }
            if state.published >= revision { return .some(nil) }
            if state.stopped { return .some(.closed) }
            state.waiters.append(Waiter(revision: revision, resume: resume))
            return nil
        }
        if let outcome {
            resume(outcome)
        } else if !wakePending.exchange(true, ordering: .sequentiallyConsistent) {
            wake.signal()
        }
    }

    /// Marks everything up to `revision` published and resumes its writers.
    func markPublished(_ revision: Revision) {
        let ready = state.withLock { state -> [Waiter] in
            state.published = max(state.published, revision)
            let ready = state.waiters.filter { $0.revision <= state.published }
            state.waiters.removeAll { $0.revision <= state.published }
            return ready
        }
        for waiter in ready { waiter.resume(nil) }
    }

    /// Fails every waiting writer: the WAL could not be synced, so nothing after this point is acknowledged.
    func fail(_ message: String) {
        let waiters = state.withLock { state -> [Waiter] in
            state.failure = message
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(.storage(message)) }
    }
}

extension MVCCStore {
    /// One committer round. `always`: snapshot the boundary under the writer lock, fsync, publish views and events in
    /// revision order, release the writers. `batch`: just fsync what was written.
    func committerRound() {
        guard let committer else { return }
        if committer.mode == .batch {
            do {
                try database.syncWAL()
                metrics.fsyncs.increment()
            } catch {
                recordFailure("WAL sync failed: \(error)")
            }
            return
        }
        let boundary = writer.withLock {
            state -> (Revision, Revision, RocksDB.Snapshot?, [(revision: Revision, events: [(Keyspace, Event)])])? in
            guard !state.unpublished.isEmpty else { return nil }
            let snapshot = try? database.snapshot()
            defer { state.unpublished = [] }
            return (state.revision, state.compactRevision, snapshot, state.unpublished)
        }
        guard let (target, compactRevision, snapshot, batches) = boundary else { return }
        do {
            try database.syncWAL()
            metrics.fsyncs.increment()
            metrics.groupCommitSize.record(batches.count)
        } catch {
            let message = "WAL sync failed: \(error)"
            recordFailure(message)
            committer.fail(message)
            return
        }
        guard let snapshot else {
            recordFailure("could not take a snapshot")
            committer.fail("could not take a snapshot")
            return
        }
        publish(revision: target, compactRevision: compactRevision, snapshot: snapshot)
        for batch in batches { watchHub.publish(revision: batch.revision, changes: batch.events) }
        committer.markPublished(target)
    }
}
