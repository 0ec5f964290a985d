internal import CRocksDB

extension RocksDB {
    /// A write batch that can be read back before it is written: point reads and iterators see its writes merged
    /// over the database (RocksDB's `WriteBatchWithIndex`). A later write to a key replaces the earlier one in the
    /// index. Owned by one writer at a time.
    package final class IndexedBatch {
        let handle: OpaquePointer

        package init(reservedBytes: Int = 0) {
            handle = rocksdb_writebatch_wi_create(reservedBytes, 1)!
        }

        deinit {
            rocksdb_writebatch_wi_destroy(handle)
        }

        /// Number of operations recorded.
        package var count: Int { Int(rocksdb_writebatch_wi_count(handle)) }

        /// Encoded size in bytes (what the WAL record will hold).
        package var byteSize: Int {
            var size = 0
            _ = rocksdb_writebatch_wi_data(handle, &size)
            return size
        }

        package func put(_ key: [UInt8], _ value: [UInt8], in family: ColumnFamily) {
            withOptionalBytes(key) { k, kLen in
                withOptionalBytes(value) { v, vLen in
                    rocksdb_writebatch_wi_put_cf(handle, family.handle, k, kLen, v, vLen)
                }
            }
        }

        package func delete(_ key: [UInt8], in family: ColumnFamily) {
            withOptionalBytes(key) { k, kLen in rocksdb_writebatch_wi_delete_cf(handle, family.handle, k, kLen) }
        }

        package func clear() {
            rocksdb_writebatch_wi_clear(handle)
        }
    }

    /// The value of `key` as `batch` would leave it: the batch's own write if it has one, else the database's.
    package func get(_ key: [UInt8], in family: ColumnFamily, through batch: IndexedBatch) throws -> [UInt8]? {
        try enter()
        defer { leave() }
        var length = 0
        let value = try key.withUnsafeBufferPointer { keyBuffer in
            try withRocksDBError { err in
                keyBuffer.withMemoryRebound(to: CChar.self) { k in
                    rocksdb_writebatch_wi_get_from_batch_and_db_cf(
                        batch.handle,
                        db,
                        defaultReadOptions,
                        family.handle,
                        k.baseAddress,
                        k.count,
                        &length,
                        err
                    )
                }
            }
        }
        guard let value else { return nil }
        defer { rocksdb_free(value) }
        return [UInt8](UnsafeRawBufferPointer(start: value, count: length))
    }

    /// Applies `batch` atomically. With `sync`, the WAL is fsynced before returning.
    package func write(_ batch: IndexedBatch, sync: Bool = false) throws {
        try enter()
        defer { leave() }
        let writeOptions = sync ? syncWriteOptions : asyncWriteOptions
        try writing { try withRocksDBError { err in rocksdb_write_writebatch_wi(db, writeOptions, batch.handle, err) } }
    }

    /// An iterator over `family` that sees `batch`'s writes merged over the live database. The bounds limit the
    /// database side only: the caller must check keys against them (RocksDB's merged iterator ignores them for the
    /// batch side), and seek to the lower bound rather than the first key.
    package func makeIterator(
        _ family: ColumnFamily,
        lowerBound: [UInt8]?,
        upperBound: [UInt8]?,
        through batch: IndexedBatch
    ) throws -> Iterator {
        try enter()  // the iterator leaves on deinit
        return Iterator(
            database: self,
            family: family,
            lowerBound: lowerBound,
            upperBound: upperBound,
            snapshot: nil,
            fillCache: true,
            batch: batch
        )
    }
}
