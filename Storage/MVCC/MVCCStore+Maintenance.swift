internal import StrataRocksDB
internal import Synchronization

/// The store's size as an operator sees it.
package struct StorageSize: Sendable, Hashable {
    /// SST files plus memtables: what the database occupies (etcd's `dbSize`, and what its quota compares).
    package var total: Int64
    /// The part holding live data (etcd's `dbSizeInUse`).
    package var inUse: Int64
}

extension MVCCStore {
    /// Current size of the database.
    package var storageSize: StorageSize {
        let memtables = database.totalProperty(.memtablesSize)
        return StorageSize(
            total: Int64(database.totalProperty(.totalSSTFilesSize) + memtables),
            inUse: Int64(database.totalProperty(.estimatedLiveDataSize) + memtables)
        )
    }

    /// Rewrites every column family's files, dropping what deletions and compaction left behind (etcd's defragment),
    /// on the blocking pool. Not exclusive: reads, writes and RocksDB's own compactions go on meanwhile.
    package func defragment() async throws(MVCCError) {
        let database = database
        let outcome: Result<Void, MVCCError>
        do {
            outcome = try await runBlocking {
                Result { () throws(MVCCError) in
                    try Self.storage { for family in database.columnFamilies { try database.compactRange(family) } }
                }
            }
        } catch {
            throw .closed
        }
        try outcome.get()
    }

    /// A consistent checkpoint of the whole store as one sealed byte stream (see ``StoreSnapshot``), made on the
    /// blocking pool; read it with ``StoreSnapshot/Stream/next(maximum:)`` off the event loops too.
    package func snapshot() async throws(MVCCError) -> StoreSnapshot.Stream {
        let database = database
        let outcome: Result<StoreSnapshot.Stream, MVCCError>
        do {
            outcome = try await runBlocking {
                Result { () throws(MVCCError) in try Self.storage { try StoreSnapshot.make(from: database) } }
            }
        } catch {
            throw .closed
        }
        return try outcome.get()
    }
}

extension MVCCStore {
    /// Makes every write so far durable now: one WAL fsync on the caller's thread (Redis's SAVE, which blocks its
    /// caller by definition).
    package func syncNow() throws(MVCCError) {
        if isClosed.load(ordering: .acquiring) { throw .closed }
        try Self.storage { try database.flushWAL(sync: true) }
    }
}
