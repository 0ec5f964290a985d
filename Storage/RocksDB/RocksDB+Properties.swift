internal import CRocksDB

extension RocksDB {
    /// RocksDB integer properties Strata reports (names from rocksdb/db.h `DB::Properties`).
    package enum Property: String, Sendable, CaseIterable {
        case estimatedKeys = "rocksdb.estimate-num-keys"
        case totalSSTFilesSize = "rocksdb.total-sst-files-size"
        case liveSSTFilesSize = "rocksdb.live-sst-files-size"
        case memtablesSize = "rocksdb.cur-size-all-mem-tables"
        /// Memtables including flushed ones still pinned by open iterators or read views.
        case memtablesPinnedSize = "rocksdb.size-all-mem-tables"
        /// Index and filter blocks held outside the block cache.
        case tableReadersSize = "rocksdb.estimate-table-readers-mem"
        case estimatedLiveDataSize = "rocksdb.estimate-live-data-size"
        case blockCacheUsage = "rocksdb.block-cache-usage"
        case backgroundErrors = "rocksdb.background-errors"
        case pendingCompactionBytes = "rocksdb.estimate-pending-compaction-bytes"
    }

    /// The value of an integer property for one column family, or nil when RocksDB does not report it.
    package func property(_ property: Property, in family: ColumnFamily? = nil) -> UInt64? {
        guard (try? enter()) != nil else { return nil }
        defer { leave() }
        var value: UInt64 = 0
        let status = rocksdb_property_int_cf(db, (family ?? defaultColumnFamily).handle, property.rawValue, &value)
        return status == 0 ? value : nil
    }

    /// The property summed over every column family (for DB-wide numbers like keys or SST size).
    package func totalProperty(_ property: Property) -> UInt64 {
        columnFamilies.reduce(0) { $0 + (self.property(property, in: $1) ?? 0) }
    }

    /// A free-form property such as `"rocksdb.stats"`.
    package func stringProperty(_ name: String) -> String? {
        guard (try? enter()) != nil else { return nil }
        defer { leave() }
        guard let value = rocksdb_property_value(db, name) else { return nil }
        defer { rocksdb_free(value) }
        return String(cString: value)
    }
}
