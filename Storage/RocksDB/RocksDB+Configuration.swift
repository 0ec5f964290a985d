extension RocksDB {
    /// Block compression for SST files. Debian's librocksdb links snappy, lz4, zstd, zlib and bzip2.
    package enum Compression: String, Sendable, Hashable, CaseIterable {
        case none, snappy, lz4, zstd

        var cValue: Int32 {
            switch self {
            case .none: 0
            case .snappy: 1
            case .lz4: 4
            case .zstd: 7
            }
        }
    }

    /// How a RocksDB instance is opened. Defaults suit a small dev server: bounded memory, bloom filters on.
    package struct Configuration: Sendable, Hashable {
        /// Keep the database in RocksDB's in-memory environment: nothing touches disk, nothing survives exit.
        package var inMemory: Bool = false
        package var createIfMissing: Bool = true
        /// Column families to open (created when missing). `"default"` always exists and need not be named.
        package var columnFamilies: [String] = []
        /// Shared LRU block cache for all column families.
        package var blockCacheSizeBytes: Int = 256 << 20
        /// Full-key bloom filter; 0 disables it.
        package var bloomFilterBitsPerKey: Double = 10
        /// Memtable bloom filter (fraction of the write buffer), so reading a key that is not in the memtable skips
        /// the skiplist search: the MVCC write path reads every key's previous version, usually absent for creates.
        /// Each memtable allocates and zeroes its filter up front: 0.01 of 64 MiB is 640 KiB (about 17 bits per
        /// key at full size) per column family; 0.05 cost 16 MiB of resident memory for five idle families.
        package var memtableBloomSizeRatio: Double = 0.01
        /// The column families whose memtables get that filter; nil: all of them. It only speeds up point reads of
        /// absent keys, so a family read by iterators, or only for keys that exist, pays its memory for nothing.
        package var memtableBloomFamilies: Set<String>? = nil
        package var compression: Compression = .lz4
        /// Compression of the last level, where most data lives.
        package var bottommostCompression: Compression = .zstd
        package var writeBufferSizeBytes: Int = 64 << 20
        /// All column families' memtables together: past it the largest is flushed (RocksDB's write buffer manager).
        /// Without it five families could hold 5 × 2 × 64 MiB.
        package var totalWriteBufferBytes: Int = 128 << 20
        /// WAL files kept for column families that have not flushed; past it they are flushed so old WAL files can
        /// go (RocksDB's default is four times all write buffers: over a GiB of WAL on disk).
        package var maxTotalWALBytes: UInt64 = 256 << 20
        /// Open-file limit for SST readers; RocksDB's default (-1, unlimited) can exhaust a 1024-fd ulimit.
        package var maxOpenFiles: Int = 512
        package var backgroundJobs: Int = 2
        /// RocksDB's info LOG rotation, so a long-running dev server does not fill its disk with logs.
        package var infoLogMaxFileSizeBytes: Int = 16 << 20
        package var infoLogFilesKept: Int = 4
        /// Keep WAL records in RocksDB's buffer until `syncWAL()` writes and syncs them together, instead of one
        /// `write()` per batch. Only for a writer that acknowledges nothing before `syncWAL()` (group commit with
        /// `sync = always`): unsynced writes are lost if the process dies before the next `syncWAL()`. Writes with
        /// `sync: true` still write and sync the buffer themselves (the crash test's lease-only rounds check it).
        package var manualWALFlush: Bool = false

        package init() {}

        package static var defaults: Self { Self() }
    }
}
