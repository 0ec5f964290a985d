internal import CoreMetrics
internal import NIOPosix
internal import StrataLease
internal import StrataRocksDB
internal import Synchronization

struct CompactionState {
    /// A compaction revision whose physical work has not finished yet.
    var pending: Revision?
    var running = false
}

extension MVCCStore {
    /// Compacts history at `revision`: reads below it fail from now on; per key, every version above it and the
    /// newest at or below it (unless that is a deletion) are kept. With `physical`, returns only after the obsolete
    /// versions are deleted from storage; otherwise that happens in the background (``runBackgroundTasks()``).
    package func compact(_ revision: Revision, physical: Bool = false) async throws(MVCCError) {
        let current = readView()
        try writer.withLock { state throws(MVCCError) in
            let firstAtZero = revision == 0 && !state.hasCompacted
            guard revision > state.compactRevision || firstAtZero else {
                throw .compacted(compactRevision: state.compactRevision)
            }
            guard revision <= current.revision else { throw .futureRevision }
            try Self.storage {
                try database.put(
                    StorageEncoding.compactRevisionKey,
                    StorageEncoding.encode(revision),
                    in: database.defaultColumnFamily,
                    sync: configuration.sync != .none
                )
            }
            state.compactRevision = revision
            state.hasCompacted = true
            publishCompaction(revision)
        }
        metrics.compactRevision.record(revision)
        metrics.compactions.increment()
        compaction.withLock { $0.pending = max($0.pending ?? 0, revision) }
        if physical { try await compactOffThePool() }
    }

    /// Runs ``runPendingCompaction()`` on the blocking pool: it is long, blocking I/O.
    func compactOffThePool() async throws(MVCCError) {
        let outcome: Result<Void, MVCCError>
        do {
            outcome = try await runBlocking { Result { () throws(MVCCError) in try self.runPendingCompaction() } }
        } catch {
            throw .closed
        }
        try outcome.get()
    }

    /// Runs the physical part of the newest requested compaction, if any, alongside writers:
    ///
    /// 1. For every key changed in the revision log below the compaction revision C, find its "base": the newest
    ///    version at or below C. If that base is no longer the key's latest version and lives in a log entry about to
    ///    go, copy it into the history family (reads at revisions >= C may still need it). Writers do the same for
    ///    any version they supersede that is older than C, so a key changed during this step is covered too.
    /// 2. Delete the log entries below C and record the progress.
    /// 3. Drop tombstones at or below C from the latest family (the key is absent at every readable revision), and
    ///    history entries older than each key's base.
    func runPendingCompaction() throws(MVCCError) {
        let target: Revision? = compaction.withLock { state in
            guard let pending = state.pending, !state.running else { return nil }
            state.running = true
            return pending
        }
        guard let target else {
            // Another task is compacting: wait for it so `physical` keeps its promise (on the blocking pool).
            while compaction.withLock({ $0.running }) { usleep(1000) }
            return
        }
        defer {
            compaction.withLock { state in
                state.running = false
                if state.pending == target { state.pending = nil }
            }
        }
        let done =
            try Self.storage { try database.get(StorageEncoding.compactDoneKey) }.flatMap(StorageEncoding.decodeInt64)
            ?? 0
        guard done < target else { return }
        let snapshot = try Self.storage { try database.snapshot() }
        var tombstones: [(Keyspace, [UInt8], Revision)] = []

        // 1. Preserve bases, in chunks of distinct keys.
        let iterator = try Self.storage {
            try database.makeIterator(
                log,
                lowerBound: StorageEncoding.logKey(done),
                upperBound: StorageEncoding.logKey(target),
                snapshot: snapshot
            )
        }
        var pendingKeys = Set<[UInt8]>()
        func flush() throws(MVCCError) {
            let batch = RocksDB.WriteBatch()
            for storageKey in pendingKeys {
                guard let keyspace = keyspace(storageKey[0]) else { continue }
                let key = Array(storageKey.dropFirst())
                guard let latestRecord = try latestRecord(keyspace, key, source: .snapshot(snapshot)) else { continue }
                if latestRecord.modRevision <= target {
                    if case .tombstone(let revision, _) = latestRecord { tombstones.append((keyspace, key, revision)) }
                    continue
                }
                var current = latestRecord
                var base: StorageEncoding.Record? = nil
                while true {
                    let previous = current.previous
                    guard previous > 0 else { break }
                    if let older = try logRecord(keyspace, key, at: previous, snapshot: snapshot) {
                        if older.modRevision <= target {
                            base = older
                            break
                        }
                        current = older
                    } else {
                        break  // already below an earlier compaction: its base is in history
                    }
                }
                if let base, base.modRevision < target {
                    batch.put(StorageEncoding.historyKey(keyspace, key, base.modRevision), base.encoded(), in: history)
                }
            }
            pendingKeys.removeAll(keepingCapacity: true)
            if batch.count > 0 { try Self.storage { try database.write(batch) } }
        }
        iterator.seekToFirst()
        while iterator.isValid {
            for change in try StorageEncoding.decodeLogEntry(iterator.value) {
                pendingKeys.insert([change.keyspace] + change.key)
            }
            if pendingKeys.count >= configuration.compactionBatchSize { try flush() }
            iterator.next()
        }
        try Self.storage { try iterator.checkError() }
        try flush()

        // 2. Drop the log below the compaction revision.
        let batch = RocksDB.WriteBatch()
        batch.deleteRange(StorageEncoding.logKey(0), StorageEncoding.logKey(target), in: log)
        batch.put(StorageEncoding.compactDoneKey, StorageEncoding.encode(target), in: database.defaultColumnFamily)
        try Self.storage { try database.write(batch, sync: configuration.sync != .none) }

        // 3. Tombstones (under the writer lock: a writer may be re-creating the key) and stale history.
        for chunk in stride(from: 0, to: tombstones.count, by: max(configuration.compactionBatchSize, 1)) {
            let slice = tombstones[chunk..<min(chunk + configuration.compactionBatchSize, tombstones.count)]
            try writer.withLock { _ throws(MVCCError) in
                let batch = RocksDB.WriteBatch()
                for (keyspace, key, revision) in slice {
                    if case .tombstone(let current, _) = try latestRecord(keyspace, key, source: .snapshot(nil)),
                        current == revision
                    {
                        batch.delete(StorageEncoding.latestKey(keyspace, key), in: latest)
                    }
                }
                if batch.count > 0 { try Self.storage { try database.write(batch) } }
            }
        }
        try pruneHistory(through: target)
    }

    /// Keeps, per key, only the newest history entry at or below `revision` (and none when the key's latest version
    /// is itself at or below it).
    private func pruneHistory(through revision: Revision) throws(MVCCError) {
        let iterator = try Self.storage { try database.makeIterator(history) }
        let batch = RocksDB.WriteBatch()
        var currentPrefix: [UInt8] = []
        var keptBase = false
        iterator.seekToFirst()
        while iterator.isValid {
            let (entryKey, decoded) = iterator.withKey { ([UInt8]($0), StorageEncoding.decodeHistoryKey($0)) }
            defer { iterator.next() }
            guard let (key, entryRevision) = decoded, let keyspace = keyspace(entryKey[0]), entryRevision <= revision
            else {
                continue
            }
            let prefix = StorageEncoding.historyPrefix(keyspace, key)
            if prefix != currentPrefix {
                currentPrefix = prefix
                let latestRevision = try latestRecord(keyspace, key, source: .snapshot(nil))?.modRevision ?? 0
                // When the latest version is itself at or below the compaction point, no history is needed.
                keptBase = latestRevision <= revision
            }
            if keptBase {
                batch.delete(entryKey, in: history)
            } else {
                keptBase = true  // the first (newest) entry at or below the compaction point stays
            }
            if batch.count >= configuration.compactionBatchSize {
                try Self.storage { try database.write(batch) }
                batch.clear()
            }
        }
        try Self.storage { try iterator.checkError() }
        if batch.count > 0 { try Self.storage { try database.write(batch) } }
    }

    /// Background work of the core until cancelled: lease expiry, key expiry, pending physical compaction, progress
    /// notifications, idle flushes and the free-space check. One task group, no loose tasks; blocking steps run on
    /// the blocking pool.
    package func runBackgroundTasks() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.leaseExpiry.run() }
            group.addTask { try await self.watchHub.runProgressNotifications() }
            group.addTask { try await self.runExpirer() }
            if let policy = self.configuration.idleFlush { group.addTask { try await self.runIdleFlush(policy) } }
            if self.space.isActive { group.addTask { try await self.runFreeSpaceChecks() } }
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(nanoseconds: 100_000_000)
                    if self.compaction.withLock({ $0.pending != nil && !$0.running }) {
                        try? await self.compactOffThePool()
                    }
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }
}

#if canImport(Glibc)
    private import Glibc
#endif
