internal import CRocksDB
internal import CRocksDBShim
internal import Synchronization

#if canImport(Glibc)
    internal import Glibc
#endif

/// A RocksDB database opened through the C API.
///
/// Ownership: this object owns every C handle it creates (the `rocksdb_t`, options, block cache, environment,
/// column-family handles and the shared read/write options) and destroys each exactly once: in `close()`, or in
/// `deinit` if it was never closed.
///
/// Closing is safe against concurrent use: every operation, and every live iterator or snapshot, holds an "active"
/// count while it touches the C handles. `close()` first refuses new work, waits for the count to reach zero, then
/// flushes, syncs the WAL and destroys the handles, so a closed database releases its files and lock at once and no
/// background RocksDB thread outlives it (which would crash at process exit).
///
/// `rocksdb_t` is thread-safe for concurrent reads and writes; everything else here is immutable after `init` or
/// atomic, which is why the type can be `Sendable`.
package final class RocksDB: @unchecked Sendable {
    /// A column family of this database. Only valid while the database that returned it is alive.
    package struct ColumnFamily: @unchecked Sendable, Hashable {
        package let name: String
        let handle: OpaquePointer

        package static func == (lhs: Self, rhs: Self) -> Bool { lhs.handle == rhs.handle }
        package func hash(into hasher: inout Hasher) { hasher.combine(UInt(bitPattern: Int(bitPattern: handle))) }
    }

    package let path: String
    package let configuration: Configuration

    let db: OpaquePointer
    private let options: OpaquePointer
    private let cache: OpaquePointer
    private let env: OpaquePointer?
    private let cfHandles: [ColumnFamily]
    let defaultReadOptions: OpaquePointer
    let syncWriteOptions: OpaquePointer
    let asyncWriteOptions: OpaquePointer
    private let flushOptions: OpaquePointer
    private let closed = Atomic<Bool>(false)
    /// The write-ahead log's writer failed (a full disk): it must not be used again. RocksDB stops writes then (a
    /// hard background error) and starts a new log when it recovers, which a write that gets through proves.
    private let walFailed = Atomic<Bool>(false)
    private let destroyed = Atomic<Bool>(false)
    /// Operations in flight plus live iterators and snapshots.
    private let active = Atomic<Int>(0)

    /// The `"default"` column family.
    package let defaultColumnFamily: ColumnFamily

    /// Opens (or creates) the database at `path`. With `configuration.inMemory` the path only names the
    /// database inside RocksDB's memory environment.
    package init(path: String, configuration: Configuration = .defaults) throws {
        self.path = path
        self.configuration = configuration

        let options = rocksdb_options_create()!
        let cache = rocksdb_cache_create_lru(max(configuration.blockCacheSizeBytes, 1 << 20))!
        let env: OpaquePointer? = configuration.inMemory ? rocksdb_create_mem_env() : nil
        var opened = false
        defer {
            if !opened {
                rocksdb_options_destroy(options)
                rocksdb_cache_destroy(cache)
                if let env { rocksdb_env_destroy(env) }
            }
        }

        Self.apply(configuration, to: options, cache: cache, env: env)
        if !configuration.inMemory {
            // RocksDB's own info log aborts the process (Debian builds it with assertions) on the first line after a
            // write to it failed, as on a full disk: this one drops such lines instead.
            try? DataDirectoryLock.makeDirectory(path)
            _ = strata_rocksdb_set_tolerant_info_log(
                options,
                path + "/LOG",
                1,
                configuration.infoLogMaxFileSizeBytes
            )
        }

        // RocksDB must be opened with every column family it already has, so list them first.
        var names = ["default"]
        if !configuration.inMemory, let existing = try? Self.listColumnFamilies(path: path, options: options) {
            for name in existing where !names.contains(name) { names.append(name) }
        }
        for name in configuration.columnFamilies where !names.contains(name) { names.append(name) }

        var handles = [OpaquePointer?](repeating: nil, count: names.count)
        // Families without the memtable filter get a copy of the options without it (RocksDB copies per-family
        // options at open, so the copy goes right after).
        let filtered = configuration.memtableBloomSizeRatio > 0 ? configuration.memtableBloomFamilies : nil
        let unfiltered: OpaquePointer? = filtered.map { _ in
            let copy = rocksdb_options_create_copy(options)
            rocksdb_options_set_memtable_prefix_bloom_size_ratio(copy, 0)
            rocksdb_options_set_memtable_whole_key_filtering(copy, 0)
            return copy!
        }
        defer { if let unfiltered { rocksdb_options_destroy(unfiltered) } }
        let cfOptions = names.map { filtered?.contains($0) == false ? unfiltered : options }
        let db: OpaquePointer? = try withCStrings(names) { cNames in
            try cfOptions.withUnsafeBufferPointer { optionsBuffer in
                try handles.withUnsafeMutableBufferPointer { handlesBuffer in
                    try withRocksDBError { err in
                        rocksdb_open_column_families(
                            options,
                            path,
                            Int32(names.count),
                            cNames,
                            optionsBuffer.baseAddress,
                            handlesBuffer.baseAddress,
                            err
                        )
                    }
                }
            }
        }
        guard let db else { throw RocksDBError(code: .unknown, message: "rocksdb_open returned no handle") }

        let families = zip(names, handles).map { ColumnFamily(name: $0.0, handle: $0.1!) }
        self.db = db
        self.options = options
        self.cache = cache
        self.env = env
        self.cfHandles = families
        self.defaultColumnFamily = families[0]
        self.defaultReadOptions = rocksdb_readoptions_create()!
        self.syncWriteOptions = rocksdb_writeoptions_create()!
        rocksdb_writeoptions_set_sync(syncWriteOptions, 1)
        self.asyncWriteOptions = rocksdb_writeoptions_create()!
        rocksdb_writeoptions_set_sync(asyncWriteOptions, 0)
        self.flushOptions = rocksdb_flushoptions_create()!
        rocksdb_flushoptions_set_wait(flushOptions, 1)
        opened = true
    }

    deinit {
        destroyHandles()
    }

    private func destroyHandles() {
        guard !destroyed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        for family in cfHandles { rocksdb_column_family_handle_destroy(family.handle) }
        rocksdb_close(db)
        rocksdb_readoptions_destroy(defaultReadOptions)
        rocksdb_writeoptions_destroy(syncWriteOptions)
        rocksdb_writeoptions_destroy(asyncWriteOptions)
        rocksdb_flushoptions_destroy(flushOptions)
        rocksdb_options_destroy(options)
        rocksdb_cache_destroy(cache)
        if let env { rocksdb_env_destroy(env) }
    }

    private static func apply(
        _ configuration: Configuration,
        to options: OpaquePointer,
        cache: OpaquePointer,
        env: OpaquePointer?
    ) {
        rocksdb_options_set_create_if_missing(options, configuration.createIfMissing ? 1 : 0)
        rocksdb_options_set_create_missing_column_families(options, 1)
        rocksdb_options_set_paranoid_checks(options, 1)
        rocksdb_options_set_max_open_files(options, Int32(configuration.maxOpenFiles))
        rocksdb_options_set_max_background_jobs(options, Int32(max(configuration.backgroundJobs, 1)))
        rocksdb_options_set_write_buffer_size(options, configuration.writeBufferSizeBytes)
        rocksdb_options_set_db_write_buffer_size(options, configuration.totalWriteBufferBytes)
        rocksdb_options_set_max_total_wal_size(options, configuration.maxTotalWALBytes)
        rocksdb_options_set_compression(options, configuration.compression.cValue)
        rocksdb_options_set_bottommost_compression(options, configuration.bottommostCompression.cValue)
        rocksdb_options_set_level_compaction_dynamic_level_bytes(options, 1)
        if configuration.memtableBloomSizeRatio > 0 {
            rocksdb_options_set_memtable_prefix_bloom_size_ratio(options, configuration.memtableBloomSizeRatio)
            rocksdb_options_set_memtable_whole_key_filtering(options, 1)
        }
        rocksdb_options_set_bytes_per_sync(options, 1 << 20)
        if configuration.manualWALFlush && !configuration.inMemory { rocksdb_options_set_manual_wal_flush(options, 1) }
        rocksdb_options_set_max_log_file_size(options, configuration.infoLogMaxFileSizeBytes)
        rocksdb_options_set_keep_log_file_num(options, configuration.infoLogFilesKept)
        if let env { rocksdb_options_set_env(options, env) }

        let table = rocksdb_block_based_options_create()!
        defer { rocksdb_block_based_options_destroy(table) }
        rocksdb_block_based_options_set_block_cache(table, cache)
        rocksdb_block_based_options_set_format_version(table, 5)
        rocksdb_block_based_options_set_cache_index_and_filter_blocks(table, 1)
        rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(table, 1)
        if configuration.bloomFilterBitsPerKey > 0 {
            // The table options take ownership of the policy.
            rocksdb_block_based_options_set_filter_policy(
                table,
                rocksdb_filterpolicy_create_bloom_full(configuration.bloomFilterBitsPerKey)
            )
        }
        rocksdb_options_set_block_based_table_factory(options, table)
    }

    /// The column families stored in the database at `path`.
    package static func listColumnFamilies(path: String, options: OpaquePointer? = nil) throws -> [String] {
        let opts = options ?? rocksdb_options_create()!
        defer { if options == nil { rocksdb_options_destroy(opts) } }
        var count = 0
        let list = try withRocksDBError { err in rocksdb_list_column_families(opts, path, &count, err) }
        guard let list else { return [] }
        defer { rocksdb_list_column_families_destroy(list, count) }
        return (0..<count).map { String(cString: list[$0]!) }
    }

    /// The column family with this name, if the database was opened with it.
    package func columnFamily(_ name: String) -> ColumnFamily? {
        cfHandles.first { $0.name == name }
    }

    package var columnFamilies: [ColumnFamily] { cfHandles }

    /// Marks the start of work on the C handles; throws once the database is closing.
    /// Sequentially consistent on both sides (here and in `close`), so either the worker sees `closed` or `close`
    /// sees the worker.
    @inline(__always)
    func enter() throws {
        active.wrappingAdd(1, ordering: .sequentiallyConsistent)
        if closed.load(ordering: .sequentiallyConsistent) {
            active.wrappingSubtract(1, ordering: .sequentiallyConsistent)
            throw RocksDBError.closedError
        }
    }

    @inline(__always)
    func leave() {
        active.wrappingSubtract(1, ordering: .sequentiallyConsistent)
    }

    package var isClosed: Bool { closed.load(ordering: .relaxed) }

    /// Refuses new work, waits (up to `timeoutSeconds`) for in-flight operations, iterators and snapshots to finish,
    /// then flushes memtables, syncs the WAL and destroys every handle, releasing RocksDB's lock. Idempotent.
    package func close(timeoutSeconds: Double = 30) throws {
        guard !closed.exchange(true, ordering: .sequentiallyConsistent) else { return }
        var waitedMicroseconds = 0.0
        while active.load(ordering: .sequentiallyConsistent) > 0 {
            guard waitedMicroseconds < timeoutSeconds * 1e6 else {
                throw RocksDBError(
                    code: .busy,
                    message: "\(active.load(ordering: .relaxed)) operation(s), iterator(s) or snapshot(s) still open"
                )
            }
            usleep(200)
            waitedMicroseconds += 200
        }
        var firstError: (any Error)?
        if !configuration.inMemory && !walFailed.load(ordering: .acquiring) {
            do {
                try withRocksDBError { err in rocksdb_flush_wal(db, 1, err) }
                for family in cfHandles {
                    try withRocksDBError { err in rocksdb_flush_cf(db, flushOptions, family.handle, err) }
                }
            } catch {
                firstError = error
            }
        }
        rocksdb_cancel_all_background_work(db, 1)
        destroyHandles()
        if let firstError { throw firstError }
    }

    // MARK: Point reads and writes

    /// The value stored under `key`, or nil.
    package func get(_ key: [UInt8], in family: ColumnFamily? = nil, snapshot: Snapshot? = nil) throws -> [UInt8]? {
        try enter()
        defer { leave() }
        let readOptions = snapshot?.readOptions ?? defaultReadOptions
        let cf = (family ?? defaultColumnFamily).handle
        var length = 0
        let value = try key.withUnsafeBufferPointer { keyBuffer in
            try withRocksDBError { err in
                keyBuffer.withMemoryRebound(to: CChar.self) { k in
                    rocksdb_get_cf(db, readOptions, cf, k.baseAddress, k.count, &length, err)
                }
            }
        }
        guard let value else { return nil }
        defer { rocksdb_free(value) }
        return [UInt8](UnsafeRawBufferPointer(start: value, count: length))
    }

    package func put(_ key: [UInt8], _ value: [UInt8], in family: ColumnFamily? = nil, sync: Bool = false) throws {
        try enter()
        defer { leave() }
        let cf = (family ?? defaultColumnFamily).handle
        let writeOptions = sync ? syncWriteOptions : asyncWriteOptions
        try writing {
            try key.withUnsafeBufferPointer { k in
                try value.withUnsafeBufferPointer { v in
                    try withRocksDBError { err in
                        k.withMemoryRebound(to: CChar.self) { k in
                            v.withMemoryRebound(to: CChar.self) { v in
                                rocksdb_put_cf(
                                    db,
                                    writeOptions,
                                    cf,
                                    k.baseAddress,
                                    k.count,
                                    v.baseAddress,
                                    v.count,
                                    err
                                )
                            }
                        }
                    }
                }
            }
        }
    }

    package func delete(_ key: [UInt8], in family: ColumnFamily? = nil, sync: Bool = false) throws {
        try enter()
        defer { leave() }
        let cf = (family ?? defaultColumnFamily).handle
        let writeOptions = sync ? syncWriteOptions : asyncWriteOptions
        try writing {
            try key.withUnsafeBufferPointer { k in
                try withRocksDBError { err in
                    k.withMemoryRebound(to: CChar.self) { k in
                        rocksdb_delete_cf(db, writeOptions, cf, k.baseAddress, k.count, err)
                    }
                }
            }
        }
    }

    /// Applies every operation in `batch` atomically. With `sync`, the WAL is fsynced before returning.
    package func write(_ batch: WriteBatch, sync: Bool = false) throws {
        try enter()
        defer { leave() }
        let writeOptions = sync ? syncWriteOptions : asyncWriteOptions
        try writing { try withRocksDBError { err in rocksdb_write(db, writeOptions, batch.handle, err) } }
    }

    /// Fsyncs the write-ahead log: everything written before this call survives a crash afterwards.
    package func syncWAL() throws {
        try flushWAL(sync: true)
    }

    /// Hands WAL records buffered in RocksDB (``Configuration/manualWALFlush``) to the operating system, and fsyncs
    /// the log with `sync`: without it the writes survive a process crash, not a machine crash.
    package func flushWAL(sync: Bool) throws {
        try enter()
        defer { leave() }
        guard !configuration.inMemory else { return }
        if walFailed.load(ordering: .acquiring) {
            // Debian's build asserts (aborting the process) when a failed log writer is used again: first prove that
            // RocksDB has recovered onto a new log, with a write it refuses up front while it has not.
            try withRocksDBError { err in
                rocksdb_put_cf(db, asyncWriteOptions, defaultColumnFamily.handle, Self.probeKey, 1, nil, 0, err)
            }
            walFailed.store(false, ordering: .releasing)
        }
        do {
            try withRocksDBError { err in rocksdb_flush_wal(db, sync ? 1 : 0, err) }
        } catch {
            walFailed.store(true, ordering: .releasing)
            throw error
        }
    }

    /// Runs a write; an I/O error means the log writer failed (RocksDB appends to it inside the write), so it must
    /// not be flushed again until RocksDB shows it recovered (see ``flushWAL(sync:)``).
    @inline(__always)
    func writing(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as RocksDBError where error.code == .ioError {
            walFailed.store(true, ordering: .releasing)
            throw error
        }
    }

    /// A one-byte key below every key Strata writes (they start with a letter or a keyspace byte from 1).
    private static let probeKey: [CChar] = [0]

    /// Whether the write-ahead log failed and RocksDB has not shown it recovered yet.
    package var writeAheadLogFailed: Bool { walFailed.load(ordering: .acquiring) }

    /// Flushes memtables to SST files (all column families when `family` is nil).
    package func flush(_ family: ColumnFamily? = nil) throws {
        try enter()
        defer { leave() }
        for cf in family.map({ [$0] }) ?? cfHandles {
            try withRocksDBError { err in rocksdb_flush_cf(db, flushOptions, cf.handle, err) }
        }
    }

    /// Compacts the key range `[start, end)` (the whole column family when both are nil).
    /// Compacts `[start, end)` of `family` (all of it by default). Not exclusive: RocksDB's automatic compactions go
    /// on meanwhile, so a long manual compaction cannot stall writers by letting level-0 files pile up.
    package func compactRange(_ family: ColumnFamily? = nil, start: [UInt8]? = nil, end: [UInt8]? = nil) throws {
        try enter()
        defer { leave() }
        let cf = (family ?? defaultColumnFamily).handle
        let options = rocksdb_compactoptions_create()
        defer { rocksdb_compactoptions_destroy(options) }
        rocksdb_compactoptions_set_exclusive_manual_compaction(options, 0)
        withOptionalBytes(start) { s, sLen in
            withOptionalBytes(end) { e, eLen in
                rocksdb_compact_range_cf_opt(db, cf, options, s, sLen, e, eLen)
            }
        }
    }
}

/// Calls `body` with C pointers to `strings`, valid for the duration of the call.
func withCStrings<T>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) throws -> T) rethrows -> T {
    let duplicated = strings.map { strdup($0) }
    defer { duplicated.forEach { free($0) } }
    let pointers = duplicated.map { UnsafePointer<CChar>($0) }
    return try pointers.withUnsafeBufferPointer { try body($0.baseAddress!) }
}

func withOptionalBytes<T>(_ bytes: [UInt8]?, _ body: (UnsafePointer<CChar>?, Int) throws -> T) rethrows -> T {
    guard let bytes else { return try body(nil, 0) }
    return try bytes.withUnsafeBufferPointer { buffer in
        try buffer.withMemoryRebound(to: CChar.self) { try body($0.baseAddress, $0.count) }
    }
}
