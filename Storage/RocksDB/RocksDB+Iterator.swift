internal import CRocksDB

#if canImport(Glibc)
    internal import Glibc
#endif

extension RocksDB {
    /// An ordered cursor over one column family, optionally bounded to `[lowerBound, upperBound)` and pinned to a
    /// snapshot. Not `Sendable`: use it from one task.
    package final class Iterator {
        private let database: RocksDB
        private let snapshot: Snapshot?
        private let iterator: OpaquePointer
        private let readOptions: OpaquePointer
        // RocksDB keeps pointers to the bound bytes; they live as long as the iterator.
        private let bounds: [UnsafeMutableRawBufferPointer]
        /// The batch a merged iterator reads through; it must outlive the iterator.
        private let batch: IndexedBatch?

        init(
            database: RocksDB,
            family: ColumnFamily,
            lowerBound: [UInt8]?,
            upperBound: [UInt8]?,
            snapshot: Snapshot?,
            fillCache: Bool,
            batch: IndexedBatch? = nil
        ) {
            self.database = database
            self.snapshot = snapshot
            self.batch = batch
            let readOptions = rocksdb_readoptions_create()!
            var bounds: [UnsafeMutableRawBufferPointer] = []
            func copy(_ bytes: [UInt8]) -> UnsafeMutableRawBufferPointer {
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
                buffer.copyBytes(from: bytes)
                bounds.append(buffer)
                return buffer
            }
            if let lowerBound {
                let b = copy(lowerBound)
                rocksdb_readoptions_set_iterate_lower_bound(
                    readOptions,
                    b.baseAddress!.assumingMemoryBound(to: CChar.self),
                    lowerBound.count
                )
            }
            if let upperBound {
                let b = copy(upperBound)
                rocksdb_readoptions_set_iterate_upper_bound(
                    readOptions,
                    b.baseAddress!.assumingMemoryBound(to: CChar.self),
                    upperBound.count
                )
            }
            if let snapshot { rocksdb_readoptions_set_snapshot(readOptions, snapshot.snapshot) }
            rocksdb_readoptions_set_fill_cache(readOptions, fillCache ? 1 : 0)
            self.readOptions = readOptions
            self.bounds = bounds
            let base = rocksdb_create_iterator_cf(database.db, readOptions, family.handle)!
            if let batch {
                // Takes over the base iterator.
                self.iterator = rocksdb_writebatch_wi_create_iterator_with_base_cf(batch.handle, base, family.handle)!
            } else {
                self.iterator = base
            }
        }

        deinit {
            rocksdb_iter_destroy(iterator)
            rocksdb_readoptions_destroy(readOptions)
            for buffer in bounds { buffer.deallocate() }
            database.leave()
        }

        package var isValid: Bool { rocksdb_iter_valid(iterator) != 0 }

        package func seekToFirst() { rocksdb_iter_seek_to_first(iterator) }
        package func seekToLast() { rocksdb_iter_seek_to_last(iterator) }

        /// Positions at the first key `>= target`.
        package func seek(_ target: [UInt8]) {
            withOptionalBytes(target) { rocksdb_iter_seek(iterator, $0, $1) }
        }

        /// Positions at the last key `<= target`.
        package func seekForPrev(_ target: [UInt8]) {
            withOptionalBytes(target) { rocksdb_iter_seek_for_prev(iterator, $0, $1) }
        }

        package func next() { rocksdb_iter_next(iterator) }
        package func previous() { rocksdb_iter_prev(iterator) }

        /// The current key. Only meaningful while ``isValid``.
        package var key: [UInt8] { withKey { [UInt8]($0) } }
        /// The current value. Only meaningful while ``isValid``.
        package var value: [UInt8] { withValue { [UInt8]($0) } }

        /// Borrows the current key without copying; the bytes are valid only inside `body`.
        package func withKey<T, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> T) throws(E) -> T {
            var length = 0
            let pointer = rocksdb_iter_key(iterator, &length)
            return try body(UnsafeRawBufferPointer(start: pointer, count: length))
        }

        /// Borrows the current value without copying; the bytes are valid only inside `body`.
        package func withValue<T, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> T) throws(E) -> T {
            var length = 0
            let pointer = rocksdb_iter_value(iterator, &length)
            return try body(UnsafeRawBufferPointer(start: pointer, count: length))
        }

        /// Throws the error that stopped iteration early, if any (an invalid iterator is otherwise just the end).
        package func checkError() throws {
            try withRocksDBError { err in rocksdb_iter_get_error(iterator, err) }
        }
    }

    /// An iterator over `family` restricted to `[lowerBound, upperBound)`; it starts unpositioned.
    package func makeIterator(
        _ family: ColumnFamily? = nil,
        lowerBound: [UInt8]? = nil,
        upperBound: [UInt8]? = nil,
        snapshot: Snapshot? = nil,
        fillCache: Bool = true
    ) throws -> Iterator {
        try enter()  // the iterator leaves on deinit
        return Iterator(
            database: self,
            family: family ?? defaultColumnFamily,
            lowerBound: lowerBound,
            upperBound: upperBound,
            snapshot: snapshot,
            fillCache: fillCache
        )
    }

    /// Key-value pairs in `[start, end)` in key order, at most `limit` of them.
    package func scan(
        _ family: ColumnFamily? = nil,
        from start: [UInt8]? = nil,
        to end: [UInt8]? = nil,
        limit: Int = .max,
        snapshot: Snapshot? = nil
    ) throws -> [(key: [UInt8], value: [UInt8])] {
        let iterator = try makeIterator(family, lowerBound: start, upperBound: end, snapshot: snapshot)
        var result: [(key: [UInt8], value: [UInt8])] = []
        iterator.seekToFirst()
        while iterator.isValid && result.count < limit {
            result.append((iterator.key, iterator.value))
            iterator.next()
        }
        try iterator.checkError()
        return result
    }
}
