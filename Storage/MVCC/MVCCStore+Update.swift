internal import CoreMetrics
internal import StrataLease
internal import StrataRocksDB
internal import Synchronization

/// When a write is acknowledged relative to its fsync.
package enum Durability: Sendable, Hashable {
    /// What `[storage] sync` says (etcd's writes, the Iceberg catalog's: the only choice for keyspaces with history).
    case storeDefault
    /// Acknowledged once the WAL holding it is fsynced (Redis's `appendfsync always`); concurrent writers share one
    /// fsync.
    case fsync
    /// Acknowledged at once, fsynced within this many milliseconds (Redis's `everysec`: 1000). Handed to the
    /// operating system before the acknowledgement, so a process crash cannot lose it; a machine crash can lose the
    /// interval.
    case fsyncWithin(milliseconds: Int)
    /// Acknowledged at once and handed to the operating system, which writes it back when it likes (Redis's `no`).
    case os
}

/// A write that is applied but not yet acknowledged: it becomes acknowledgeable (and, in a keyspace with history
/// under `sync = always`, visible) at the committer's next fsync. See ``MVCCStore/whenDurable(_:_:)``.
package struct PendingWrite<Value: Sendable>: Sendable {
    package let value: Value
    /// The revision the write took; nil when it changed nothing.
    package let revision: Revision?
    /// Whether the acknowledgement waits for the committer.
    let waits: Bool
    let started: Int64
}

extension MVCCStore {
    /// Runs `body` as one write transaction in `keyspace` (see ``WriteTransaction``) and returns its result once the
    /// write is as durable as `durability` asks. If `body` throws, nothing is written.
    package func update<T: Sendable>(
        _ keyspace: Keyspace,
        durability: Durability = .storeDefault,
        _ body: (inout WriteTransaction) throws(MVCCError) -> T
    ) async throws(MVCCError) -> T {
        try await durable(applyUpdate(keyspace, durability: durability, body))
    }

    /// Runs `body` as one write transaction now and returns it pending: callers on an event loop answer from
    /// ``whenDurable(_:_:)`` instead of awaiting.
    package func applyUpdate<T: Sendable>(
        _ keyspace: Keyspace,
        durability: Durability = .storeDefault,
        _ body: (inout WriteTransaction) throws(MVCCError) -> T
    ) throws(MVCCError) -> PendingWrite<T> {
        try checkRegistered(keyspace)
        if keyspace.keepsHistory && durability != .storeDefault {
            throw .unsupported("per-write durability in the \(keyspace) keyspace (its reads follow [storage] sync)")
        }
        let started = clock.now()
        let (value, revision) = try write(keyspace, body)
        metrics.transactions.increment()
        guard let revision else { return PendingWrite(value: value, revision: nil, waits: false, started: started) }
        let waits = acknowledge(keyspace, revision: revision, durability: durability)
        return PendingWrite(value: value, revision: revision, waits: waits, started: started)
    }

    /// Arranges the fsync a committed write needs; returns whether its acknowledgement waits for the committer.
    private func acknowledge(_ keyspace: Keyspace, revision: Revision, durability: Durability) -> Bool {
        let mode = configuration.sync
        if keyspace.keepsHistory {
            // Visibility follows durability: the committer publishes these revisions (always), or fsyncs on its
            // timer (batch).
            return mode == .always
        }
        var effective = durability
        if effective == .storeDefault {
            switch mode {
            case .always: effective = .fsync
            case .batch: effective = .fsyncWithin(milliseconds: configuration.syncIntervalMilliseconds)
            case .none: effective = .os
            }
        }
        switch effective {
        case .fsync:
            return true
        case .fsyncWithin(let milliseconds):
            handToOperatingSystem()
            committer.requestSync(within: milliseconds)
        case .os, .storeDefault:
            handToOperatingSystem()
            // With sync = always the committer also publishes the view this revision joins.
            if mode == .always { committer.requestSync(within: 1000) }
        }
        return false
    }

    /// With a manually flushed WAL (sync = always), writes wait in RocksDB's buffer for the group fsync: one that is
    /// acknowledged before it must reach the operating system first, so that a process crash cannot lose it.
    private func handToOperatingSystem() {
        guard database.configuration.manualWALFlush else { return }
        do {
            try database.flushWAL(sync: false)
        } catch {
            lastSyncError.withLock { $0 = "WAL write failed: \(error)" }
        }
    }

    /// Waits until a pending write is durable, then returns its result.
    package func durable<Value>(_ pending: PendingWrite<Value>) async throws(MVCCError) -> Value {
        if pending.waits, let revision = pending.revision { try await committer.waitUntilDurable(revision) }
        metrics.commitLatency.recordNanoseconds(clock.now() - pending.started)
        return pending.value
    }

    /// Calls `completion` once a pending write is durable: at once when it already is (or changed nothing, or need
    /// not wait), otherwise from the committer thread after its fsync. The completion must not block.
    package func whenDurable<Value: Sendable>(
        _ pending: PendingWrite<Value>,
        _ completion: @escaping @Sendable (Result<Value, MVCCError>) -> Void
    ) {
        let finish: @Sendable (MVCCError?) -> Void = { [metrics, clock] error in
            if let error { return completion(.failure(error)) }
            metrics.commitLatency.recordNanoseconds(clock.now() - pending.started)
            completion(.success(pending.value))
        }
        guard pending.waits, let revision = pending.revision else { return finish(nil) }
        committer.whenDurable(revision, finish)
    }

    // MARK: The write path

    /// Runs `body` under the writer lock with a fresh transaction; if it changed a key, commits one revision: one
    /// atomic RocksDB batch (latest records, revision log entry or revision marker, indexes), then publishes it or
    /// queues it for the committer. Returns the body's result and the new revision (nil when nothing changed).
    func write<T>(
        _ keyspace: Keyspace,
        _ body: (inout WriteTransaction) throws(MVCCError) -> T
    ) throws(MVCCError) -> (T, Revision?) {
        if isClosed.load(ordering: .acquiring) { throw .closed }
        return try writer.withLock { state throws(MVCCError) -> (T, Revision?) in
            writerBatch.clear()
            var transaction = WriteTransaction(
                store: self,
                keyspace: keyspace,
                beginRevision: state.revision,
                compactRevision: state.compactRevision,
                now: clock.wallMilliseconds()
            )
            let result = try body(&transaction)
            if transaction.addsData, let shortage = space.shortage {
                metrics.writesRefusedNoSpace.increment()
                throw .noSpace(shortage)
            }
            guard transaction.hasChanges else {
                // Index upkeep without a key change (a stale expiry entry, a revoked lease's record): no revision.
                if writerBatch.count > 0 {
                    try Self.storage { try database.write(writerBatch, sync: configuration.sync == .always) }
                }
                return (result, nil)
            }
            let revision = transaction.writeRevision
            try commit(transaction, revision: revision)
            state.revision = revision
            written.store(revision, ordering: .releasing)
            if let lowest = transaction.lowestExpiryKey { expiryCursor.withLock { $0.lower(to: lowest) } }
            publishCommitted(transaction, revision: revision, state: &state)
            return (result, revision)
        }
    }

    private func commit(_ transaction: WriteTransaction, revision: Revision) throws(MVCCError) {
        var logChanges: [StorageEncoding.LogChange] = []
        for change in transaction.changes {
            guard let record = change.logRecord else { continue }
            logChanges.append(StorageEncoding.LogChange(keyspace: change.keyspace.id, key: change.key, record: record))
        }
        if !logChanges.isEmpty {
            // The log entry is the history: every version, reachable by revision and chained per key.
            writerBatch.put(StorageEncoding.logKey(revision), StorageEncoding.encodeLogEntry(logChanges), in: log)
        } else {
            // No log entry records this revision (latest-only keyspaces): keep it in the meta key instead. On open
            // the revision is the larger of the two.
            writerBatch.put(
                StorageEncoding.revisionKey,
                StorageEncoding.encode(revision),
                in: database.defaultColumnFamily
            )
        }
        // The WAL write happens here; fsyncs are the committer's.
        space.noteWritten(writerBatch.byteSize)
        do {
            try Self.storage { try database.write(writerBatch, sync: false) }
            lastWriteError.withLock { if $0 != nil { $0 = nil } }
        } catch {
            lastWriteError.withLock { $0 = "\(error)" }
            throw error
        }
    }

    /// Hands a committed revision to readers and watchers (under the writer lock, so in revision order).
    private func publishCommitted(_ transaction: WriteTransaction, revision: Revision, state: inout WriterState) {
        let always = configuration.sync == .always
        if transaction.keyspace.keepsHistory || transaction.changes.contains(where: { $0.keyspace.keepsHistory }) {
            let events = transaction.keyedEvents
            if always {
                state.unpublished.append((revision, events))
            } else {
                // Published without a snapshot: the first reader takes it (openReadView), so write bursts pay none.
                publish(revision: revision, compactRevision: state.compactRevision, snapshot: nil)
                watchHub.publish(revision: revision, events: events)
            }
        } else {
            // Latest-only: watchers are live-only and its readers read the live database, so its events go out now;
            // with sync = always the committer's next view includes the revision.
            watchHub.publishLive(revision: revision) { transaction.keyedEvents }
            if !always {
                publish(revision: revision, compactRevision: state.compactRevision, snapshot: nil)
                watchHub.advance(to: revision)
            }
        }
    }
}
