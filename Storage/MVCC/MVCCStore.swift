package import CoreMetrics
internal import NIOPosix
package import StrataLease
package import StrataRocksDB
internal import Synchronization

/// The multi-version store every front-end shares: revisions, history, transactions, compaction, watches, leases
/// and per-key expiry over RocksDB, in keyspaces the front-ends declare.
///
/// Concurrency: write transactions (``update(_:durability:_:)``) run one at a time under `writer` against the
/// latest state, including writes not yet published; each becomes one atomic RocksDB write batch and, if it changed
/// a key, the next revision. Readers never take that lock. In keyspaces with history they read through the
/// published ``ReadView``, a RocksDB snapshot paired with the revision it shows, so a response's revision always
/// matches its data; a view is published only once its writes are as durable as `sync` demands (for `always`,
/// after the group fsync that covers them). Latest-only keyspaces read the live database: a write is visible as
/// soon as its transaction returns.
package final class MVCCStore: Sendable {
    package struct Configuration: Sendable, Hashable {
        package var sync: SyncMode = .always
        /// fsync period for `sync = .batch`.
        package var syncIntervalMilliseconds = 10
        /// Deletions per RocksDB batch during physical compaction.
        package var compactionBatchSize = 1000
        package var transactionLimits = TransactionLimits.defaults
        package var watch = WatchHub.Configuration.defaults
        package var lessor = Lessor.Configuration.defaults
        package var expiry = ExpiryConfiguration.defaults
        /// Flush the memtables of an idle store; nil keeps them until RocksDB's own flushes.
        package var idleFlush: IdleFlush? = .defaults
        /// Free space the data directory's file system must keep; below it writes that add data are refused.
        package var minFreeSpace: FreeSpaceReserve? = .defaults
        /// Threads for blocking work (compaction, flushes, defragment, snapshots, large reads).
        package var blockingThreads = 4
        package init() {}
        package static var defaults: Self { Self() }
    }

    /// What one write transaction may do under the writer lock before it fails instead of stalling every writer.
    package struct TransactionLimits: Sendable, Hashable {
        /// Entries read (point reads plus entries iterated). A delete of a whole etcd prefix reads each key once.
        package var maxEntriesRead = 4_000_000
        /// Bytes of the write batch (keys, values, revision log entry).
        package var maxBatchBytes = 1 << 30
        package init() {}
        package static var defaults: Self { Self() }
    }

    /// A consistent, published state: reads at `revision` see exactly the writes up to it.
    ///
    /// Its RocksDB snapshot is taken lazily: a write-only stream of puts (sync none/batch) never pays for one. The
    /// first reader of a view without a snapshot takes it under the writer lock while the view is still the newest,
    /// so the snapshot shows exactly `revision` (see ``MVCCStore/openReadView()``).
    package final class ReadView: Sendable {
        package let revision: Revision
        package let compactRevision: Revision
        private let snapshotBox: Mutex<RocksDB.Snapshot?>

        init(revision: Revision, compactRevision: Revision, snapshot: RocksDB.Snapshot?) {
            self.revision = revision
            self.compactRevision = compactRevision
            self.snapshotBox = Mutex(snapshot)
        }

        var snapshot: RocksDB.Snapshot? { snapshotBox.withLock { $0 } }

        func setSnapshotIfAbsent(_ make: () throws(MVCCError) -> RocksDB.Snapshot) throws(MVCCError) -> RocksDB.Snapshot
        {
            try snapshotBox.withLock { box throws(MVCCError) -> RocksDB.Snapshot in
                if let existing = box { return existing }
                let created = try make()
                box = created
                return created
            }
        }

        func dropSnapshot() -> RocksDB.Snapshot? {
            snapshotBox.withLock { box in
                defer { box = nil }
                return box
            }
        }
    }

    struct WriterState {
        /// Last revision written to RocksDB (possibly not yet durable or published).
        var revision: Revision
        var compactRevision: Revision
        /// Whether a compaction was ever recorded: etcd accepts one compaction at revision 0 on a store never
        /// compacted (its compaction point starts below every revision), and refuses it as compacted afterwards.
        var hasCompacted: Bool
        /// Events of keyspaces with history written but not yet published (sync = always), in revision order.
        var unpublished: [(revision: Revision, events: [(Keyspace, Event)])] = []
    }

    package let configuration: Configuration
    let database: RocksDB
    package let lessor: Lessor
    package let watchHub: WatchHub
    let clock: any StrataClock
    let latest: RocksDB.ColumnFamily
    let history: RocksDB.ColumnFamily
    let log: RocksDB.ColumnFamily
    let leaseFamily: RocksDB.ColumnFamily
    let leaseKeys: RocksDB.ColumnFamily
    let expiry: RocksDB.ColumnFamily
    let keyspaces: [UInt8: Keyspace]
    let writer: Mutex<WriterState>
    /// The writer's reusable batch: only touched under `writer`.
    nonisolated(unsafe) let writerBatch = RocksDB.IndexedBatch()
    let view: Mutex<ReadView>
    let committer: Committer
    let metrics: MVCCMetrics
    let compaction = Mutex(CompactionState())
    let idleFlushState = Mutex(IdleFlushState())
    let expiryCursor = Mutex(ExpiryCursor())
    let space: FreeSpaceGuard
    let blockingPool: NIOThreadPool
    let lastSyncError = Mutex<String?>(nil)
    let lastWriteError = Mutex<String?>(nil)
    let isClosed = Atomic<Bool>(false)
    /// The last revision written (possibly not yet published), for reads of latest-only keyspaces.
    let written = Atomic<Revision>(0)

    /// Column families the database must be opened with.
    package static var columnFamilies: [String] { StorageEncoding.families }

    /// The families worth a memtable bloom filter: only `latest` is read by key for keys that may be absent (every
    /// write reads the key's previous version, usually missing for a create). The log is read by revisions that
    /// exist, history and the lease and expiry families through iterators; each filter costs 1% of the write buffer,
    /// resident from the start.
    package static var memtableBloomFamilies: Set<String> { [StorageEncoding.latestFamily] }

    /// Opens the store over `database` (opened with ``columnFamilies``) for the front-ends' `keyspaces`: checks the
    /// format version and that no keyspace id changed owner, and restores the revision, compaction point and leases.
    package init(
        database: RocksDB,
        keyspaces: [Keyspace],
        configuration: Configuration = .defaults,
        clock: any StrataClock = SystemClock(),
        metricsFactory: any MetricsFactory = MetricsSystem.factory
    ) throws(MVCCError) {
        func family(_ name: String) throws(MVCCError) -> RocksDB.ColumnFamily {
            guard let family = database.columnFamily(name) else {
                throw .storage("column family '\(name)' is missing; open the database with MVCCStore.columnFamilies")
            }
            return family
        }
        var byID: [UInt8: Keyspace] = [:]
        for keyspace in keyspaces {
            if let other = byID[keyspace.id], other != keyspace {
                throw .unsupported("keyspace id \(keyspace.id) declared twice (\(other) and \(keyspace))")
            }
            byID[keyspace.id] = keyspace
        }
        self.configuration = configuration
        self.database = database
        self.clock = clock
        self.latest = try family(StorageEncoding.latestFamily)
        self.history = try family(StorageEncoding.historyFamily)
        self.log = try family(StorageEncoding.logFamily)
        self.leaseFamily = try family(StorageEncoding.leaseFamily)
        self.leaseKeys = try family(StorageEncoding.leaseKeysFamily)
        self.expiry = try family(StorageEncoding.expiryFamily)
        self.keyspaces = byID
        self.metrics = MVCCMetrics(factory: metricsFactory)
        self.lessor = Lessor(configuration: configuration.lessor, clock: clock)
        self.space = FreeSpaceGuard(
            path: database.configuration.inMemory ? nil : database.path,
            reserve: configuration.minFreeSpace
        )

        let (revision, recordedCompaction) = try Self.openMeta(database, keyspaces: keyspaces)
        let compactRevision = recordedCompaction ?? 0
        self.writer = Mutex(
            WriterState(revision: revision, compactRevision: compactRevision, hasCompacted: recordedCompaction != nil)
        )
        // The opening view gets its snapshot now: with sync = always every later view comes with one from the
        // committer, and a reader arriving while the first write waits for its fsync could take none of its own (the
        // database already holds a revision the view does not show).
        let snapshot = try Self.storage { try database.snapshot() }
        self.view = Mutex(ReadView(revision: revision, compactRevision: compactRevision, snapshot: snapshot))
        written.store(revision, ordering: .releasing)
        self.watchHub = WatchHub(configuration: configuration.watch, clock: clock, metrics: metrics)
        self.committer = Committer(
            mode: configuration.sync,
            batchIntervalMilliseconds: configuration.syncIntervalMilliseconds
        )
        self.blockingPool = NIOThreadPool(numberOfThreads: max(configuration.blockingThreads, 1))
        blockingPool.start()
        let leases = try loadLeases()
        lessor.restore(leases)
        metrics.revision.record(revision)
        metrics.compactRevision.record(compactRevision)
        metrics.leases.record(leases.count)
        watchHub.attach(store: self)
        committer.start(store: self)
        space.refresh()
        let done =
            try Self.storage { try database.get(StorageEncoding.compactDoneKey) }.flatMap(StorageEncoding.decodeInt64)
            ?? 0
        if done < compactRevision { compaction.withLock { $0.pending = compactRevision } }
    }

    /// Reads (or, for a new database, writes) the format version and the keyspace owners; returns the revision and
    /// the recorded compaction revision (nil: never compacted).
    private static func openMeta(_ database: RocksDB, keyspaces: [Keyspace]) throws(MVCCError) -> (Revision, Revision?)
    {
        let format = try storage { try database.get(StorageEncoding.formatKey) }
        if let format {
            guard format.count == 4 else { throw .storage("unreadable storage format marker") }
            let version = format.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            guard StorageEncoding.readableFormatVersions.contains(version) else {
                throw .storage(
                    "unsupported storage format version \(version) (this build reads versions "
                        + "\(StorageEncoding.readableFormatVersions.sorted().map(String.init).joined(separator: ", ")))"
                )
            }
            if version != StorageEncoding.formatVersion { try writeFormatMarker(database) }
        } else {
            let nonEmpty = try storage { try !database.scan(limit: 1).isEmpty }
            guard !nonEmpty else { throw .storage("database has data but no Strata format marker") }
            try writeFormatMarker(database)
        }
        for keyspace in keyspaces {
            let key = StorageEncoding.keyspaceKey(keyspace.id)
            let declared = StorageEncoding.keyspaceDeclaration(keyspace)
            if let recorded = try storage({ try database.get(key) }) {
                guard recorded == declared else {
                    throw .storage(
                        "keyspace id \(keyspace.id) holds '\(String(decoding: recorded, as: UTF8.self))' data, "
                            + "but '\(String(decoding: declared, as: UTF8.self))' was declared with it"
                    )
                }
            } else {
                try storage { try database.put(key, declared, sync: true) }
            }
        }
        let metaRevision =
            try storage { try database.get(StorageEncoding.revisionKey) }.flatMap(StorageEncoding.decodeInt64) ?? 1
        let lastLogged: Revision = try storage { () throws -> Revision in
            guard let log = database.columnFamily(StorageEncoding.logFamily) else { return 0 }
            let iterator = try database.makeIterator(log)
            iterator.seekToLast()
            guard iterator.isValid else { return 0 }
            return iterator.withKey { Revision(bitPattern: StorageEncoding.readUInt64($0, at: 0)) }
        }
        let revision = max(metaRevision, lastLogged)
        let compact =
            try storage { try database.get(StorageEncoding.compactRevisionKey) }.flatMap(StorageEncoding.decodeInt64)
        return (revision, compact)
    }

    private static func writeFormatMarker(_ database: RocksDB) throws(MVCCError) {
        let version = StorageEncoding.formatVersion
        let bytes = [
            UInt8(version >> 24), UInt8(version >> 16 & 0xFF), UInt8(version >> 8 & 0xFF), UInt8(version & 0xFF),
        ]
        try storage { try database.put(StorageEncoding.formatKey, bytes, sync: true) }
    }

    /// Runs a storage call, turning wrapper errors into core errors (``storageError(_:context:)``).
    @inline(__always)
    static func storage<T>(_ body: () throws -> T) throws(MVCCError) -> T {
        do {
            return try body()
        } catch {
            throw storageError(error)
        }
    }

    /// A storage engine error in the core's terms: closed, out of space (RocksDB stops writes on a full disk and
    /// recovers by itself once there is room again), or the engine's own message.
    static func storageError(_ error: any Error, context: String? = nil) -> MVCCError {
        let prefix = context.map { "\($0): " } ?? ""
        if let error = error as? RocksDBError {
            if error.code == .closed { return .closed }
            if error.message.contains("No space left on device") { return .noSpace(prefix + error.message) }
        }
        return .storage(prefix + "\(error)")
    }

    func keyspace(_ id: UInt8) -> Keyspace? { keyspaces[id] }

    /// The registered keyspace `keyspace` must be (a front-end cannot use one it did not declare).
    @inline(__always)
    func checkRegistered(_ keyspace: Keyspace) throws(MVCCError) {
        guard keyspaces[keyspace.id] == keyspace else {
            throw .unsupported("keyspace \(keyspace) (id \(keyspace.id)) was not declared when the store opened")
        }
    }

    /// The latest published view (revision + snapshot). Cheap: a lock and a retain.
    package func readView() -> ReadView {
        view.withLock { $0 }
    }

    /// The newest published view, with its snapshot, for a read; fails once the store is closed.
    func openReadView() throws(MVCCError) -> (view: ReadView, snapshot: RocksDB.Snapshot) {
        if isClosed.load(ordering: .acquiring) { throw .closed }
        let view = readView()
        if let snapshot = view.snapshot { return (view, snapshot) }
        // Take the snapshot under the writer lock, where no write can slip in after the newest view's revision.
        return try writer.withLock { state throws(MVCCError) -> (view: ReadView, snapshot: RocksDB.Snapshot) in
            if isClosed.load(ordering: .acquiring) { throw .closed }
            let newest = readView()
            if let snapshot = newest.snapshot { return (newest, snapshot) }
            guard state.revision == newest.revision else {
                throw .storage(
                    "published view \(newest.revision) has no snapshot behind written revision \(state.revision)"
                )
            }
            let snapshot = try newest.setSnapshotIfAbsent { () throws(MVCCError) in
                try Self.storage { try database.snapshot() }
            }
            return (newest, snapshot)
        }
    }

    package var currentRevision: Revision { readView().revision }
    package var compactRevision: Revision { readView().compactRevision }

    /// Why the store is not healthy right now, if it is not: a failed WAL sync, or the last write failing in RocksDB
    /// (its background error: RocksDB refuses writes until it recovers, by itself for a full disk). Each clears with
    /// the next success; RocksDB's own error counter only ever grows.
    package var healthProblem: String? {
        if let sync = lastSyncError.withLock({ $0 }) { return sync }
        if let write = lastWriteError.withLock({ $0 }) { return write }
        if database.writeAheadLogFailed { return "the write-ahead log failed; writes wait for RocksDB to recover" }
        return nil
    }

    /// Stops the committer after a final fsync, ends every watch and the blocking pool. The database itself is
    /// closed by its owner.
    package func close() {
        guard !isClosed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        committer.stop()
        watchHub.closeAll()
        try? database.syncWAL()
        try? blockingPool.syncShutdownGracefully()
        // Drop the published snapshot so the database can close.
        let old = view.withLock { current -> ReadView in
            defer {
                current = ReadView(revision: current.revision, compactRevision: current.compactRevision, snapshot: nil)
            }
            return current
        }
        _ = old.dropSnapshot()
    }

    /// Publishes a new view. Called with the writer lock held (sync none/batch) or by the committer (always),
    /// always in revision order. The compaction revision never goes back: the committer may publish a boundary it
    /// took before a compaction that was published meanwhile.
    func publish(revision: Revision, compactRevision: Revision, snapshot: RocksDB.Snapshot?) {
        replaceView {
            ReadView(revision: revision, compactRevision: max(compactRevision, $0.compactRevision), snapshot: snapshot)
        }
        metrics.revision.record(revision)
    }

    /// Raises the compaction revision of the newest view, keeping its revision and snapshot (called with the writer
    /// lock held, so no writer publishes meanwhile; the committer's next view keeps it too).
    func publishCompaction(_ compactRevision: Revision) {
        replaceView {
            ReadView(
                revision: $0.revision,
                compactRevision: max(compactRevision, $0.compactRevision),
                snapshot: $0.snapshot
            )
        }
    }

    /// Swaps the newest view for `next(current)`; the old one is released outside the lock (releasing a snapshot
    /// takes RocksDB's mutex).
    private func replaceView(_ next: (ReadView) -> ReadView) {
        let old = view.withLock { current -> ReadView in
            defer { current = next(current) }
            return current
        }
        _ = old
    }

    /// Runs blocking work (I/O, long scans) on the store's thread pool, never on an event loop or the Swift pool.
    package func runBlocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await blockingPool.runIfActive(body)
    }

    /// Runs `body` on the store's thread pool (for callers on an event loop that answer from a callback). After
    /// close it runs at once on the caller's thread, where store calls fail as closed.
    package func submitBlocking(_ body: @escaping @Sendable () -> Void) {
        blockingPool.submit { _ in body() }
    }
}

extension RocksDB.Configuration {
    /// What a database an ``MVCCStore`` runs on is opened with: its column families, and the memtable filter only
    /// where the store reads absent keys (``MVCCStore/memtableBloomFamilies``).
    package mutating func prepareForMVCCStore() {
        columnFamilies = MVCCStore.columnFamilies
        memtableBloomFamilies = MVCCStore.memtableBloomFamilies
    }
}
