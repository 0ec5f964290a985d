internal import CoreMetrics
internal import StrataLease
package import StrataRocksDB
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
        let newView: (Revision, Revision, RocksDB.Snapshot?) = try writer.withLock { state throws(MVCCError) in
            guard revision > state.compactRevision else { throw .compacted(compactRevision: state.compactRevision) }
            guard revision <= current.revision else { throw .futureRevision }
            try Self.storage {
                try database.put(
                    StorageEncoding.compactRevisionKey, StorageEncoding.encode(revision), in: database.defaultColumnFamily,
                    sync: configuration.sync != .none)
            }
            state.compactRevision = revision
            let latestView = readView()
            return (latestView.revision, revision, latestView.snapshot)
        }
        publish(revision: newView.0, compactRevision: newView.1, snapshot: newView.2)
        metrics.compactRevision.record(revision)
        metrics.compactions.increment()
        compaction.withLock { $0.pending = max($0.pending ?? 0, revision) }
        if physical { try runPendingCompaction() }
    }

    /// Runs the physical part of the newest requested compaction, if any. Safe alongside writers: it deletes only
    /// versions at or below the compaction revision, which no writer touches and no allowed read needs.
    func runPendingCompaction() throws(MVCCError) {
        let target: Revision? = compaction.withLock { state in
            guard let pending = state.pending, !state.running else { return nil }
            state.running = true
            return pending
        }
        guard let target else {
            // Another task is compacting: wait for it so `physical` keeps its promise.
            while compaction.withLock({ $0.running }) { usleep(1000) }
            return
        }
        defer {
            compaction.withLock { state in
                state.running = false
                if state.pending == target { state.pending = nil }
            }
        }
        try compactHistory(through: target)
        let batch = RocksDB.WriteBatch()
        batch.deleteRange(StorageEncoding.logKey(0), StorageEncoding.logKey(target), in: log)
        batch.put(StorageEncoding.compactDoneKey, StorageEncoding.encode(target), in: database.defaultColumnFamily)
        try Self.storage { try database.write(batch, sync: configuration.sync != .none) }
    }

    private func compactHistory(through revision: Revision) throws(MVCCError) {
        let iterator = try Self.storage { try database.makeIterator(history) }
        let batch = RocksDB.WriteBatch()
        var currentPrefix: [UInt8] = []
        var keptAtOrBelow = false
        iterator.seekToFirst()
        while iterator.isValid {
            let (entryKey, decoded) = iterator.withKey { ([UInt8]($0), StorageEncoding.decodeHistoryKey($0)) }
            guard let (key, entryRevision) = decoded, let keyspaceID = entryKey.first, let keyspace = keyspace(keyspaceID)
            else {
                iterator.next()
                continue
            }
            let prefix = StorageEncoding.historyPrefix(keyspace, key)
            if prefix != currentPrefix {
                currentPrefix = prefix
                keptAtOrBelow = false
            }
            if entryRevision <= revision {
                let isTombstone = iterator.withValue { $0.first == 1 }
                if keptAtOrBelow || isTombstone {
                    batch.delete(entryKey, in: history)
                }
                keptAtOrBelow = true
            }
            if batch.count >= configuration.compactionBatchSize {
                try Self.storage { try database.write(batch) }
                batch.clear()
            }
            iterator.next()
        }
        try Self.storage { try iterator.checkError() }
        if batch.count > 0 { try Self.storage { try database.write(batch) } }
    }

    /// Background work of the core until cancelled: lease expiry, pending physical compaction, progress
    /// notifications. One task group, no loose tasks.
    package func runBackgroundTasks() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.leaseExpiry.run() }
            group.addTask { try await self.watchHub.runProgressNotifications() }
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(nanoseconds: 100_000_000)
                    if self.compaction.withLock({ $0.pending != nil && !$0.running }) {
                        try? self.runPendingCompaction()
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
