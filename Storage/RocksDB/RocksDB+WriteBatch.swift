internal import CRocksDB

extension RocksDB {
    /// A set of writes applied atomically by ``RocksDB/write(_:sync:)``. Owned by one task at a time.
    package final class WriteBatch {
        let handle: OpaquePointer

        package init() {
            handle = rocksdb_writebatch_create()!
        }

        deinit {
            rocksdb_writebatch_destroy(handle)
        }

        /// Number of operations recorded.
        package var count: Int { Int(rocksdb_writebatch_count(handle)) }

        /// Approximate encoded size, useful to bound a batch.
        package var byteSize: Int {
            var size = 0
            _ = rocksdb_writebatch_data(handle, &size)
            return size
        }

        package func put(_ key: [UInt8], _ value: [UInt8], in family: ColumnFamily) {
            withOptionalBytes(key) { k, kLen in
                withOptionalBytes(value) { v, vLen in
                    rocksdb_writebatch_put_cf(handle, family.handle, k, kLen, v, vLen)
                }
            }
        }

        package func delete(_ key: [UInt8], in family: ColumnFamily) {
            withOptionalBytes(key) { k, kLen in rocksdb_writebatch_delete_cf(handle, family.handle, k, kLen) }
        }

        /// Deletes every key in `[start, end)`.
        package func deleteRange(_ start: [UInt8], _ end: [UInt8], in family: ColumnFamily) {
            withOptionalBytes(start) { s, sLen in
                withOptionalBytes(end) { e, eLen in
                    rocksdb_writebatch_delete_range_cf(handle, family.handle, s, sLen, e, eLen)
                }
            }
        }

        package func clear() {
            rocksdb_writebatch_clear(handle)
        }
    }
}
