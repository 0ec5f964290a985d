internal import CoreMetrics
internal import StrataCommon
internal import StrataLease
internal import StrataRocksDB
internal import Synchronization

/// What the idle flush has seen: the revision it last observed and since when it has not changed.
struct IdleFlushState {
    var revision: Revision = -1
    var since: Int64 = 0
    /// The memtables were flushed at `revision`; nothing to do until the next write.
    var flushed = false
}

extension MVCCStore {
    /// When an idle store flushes its memtables (``Configuration/idleFlush``).
    package struct IdleFlush: Sendable, Hashable {
        /// Time without a new revision after which the memtables are flushed.
        package var after: Duration = .seconds(10)
        /// Memtables smaller than this stay: a trickle of writes would otherwise make a tiny SST file per pause. (The
        /// first write into a column family's memtable allocates its ~640 KiB bloom filter.)
        package var minimumBytes: UInt64 = 4 << 20
        package init() {}
        package static var defaults: Self { Self() }
    }

    /// Flushes the memtables to SST files if no revision was written for ``IdleFlush/after`` and they hold at least
    /// ``IdleFlush/minimumBytes``. Memtables otherwise keep everything written since the last flush, up to the write
    /// buffer budget, for as long as the process runs: an idle server after a burst of writes gives that memory back
    /// (and a restart replays less WAL). Returns whether it flushed. Blocks for the flush; see ``runIdleFlush(_:)``.
    @discardableResult
    package func flushIfIdle() throws(MVCCError) -> Bool {
        guard let policy = configuration.idleFlush, !isClosed.load(ordering: .acquiring) else { return false }
        let now = clock.now()
        let revision = currentRevision
        let due = idleFlushState.withLock { state -> Bool in
            if state.revision != revision {
                state = IdleFlushState(revision: revision, since: now)
                return false
            }
            return !state.flushed && now - state.since >= policy.after.nanoseconds
        }
        guard due, database.totalProperty(.memtablesSize) >= policy.minimumBytes else { return false }
        try Self.storage { try database.flush() }
        idleFlushState.withLock { if $0.revision == revision { $0.flushed = true } }
        metrics.idleFlushes.increment()
        return true
    }

    /// Checks for idleness a few times per ``IdleFlush/after`` until cancelled, flushing on the blocking pool.
    func runIdleFlush(_ policy: IdleFlush) async throws {
        let tick = max(policy.after.nanoseconds / 4, 10_000_000)
        while !Task.isCancelled {
            try await clock.sleep(for: tick)
            // A failed flush is RocksDB's background error: writes fail and the health check reports it.
            _ = try? await runBlocking { _ = try? self.flushIfIdle() }
        }
    }
}
