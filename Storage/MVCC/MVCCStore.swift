package import CoreMetrics
package import StrataLease
package import StrataRocksDB
internal import Synchronization

/// The multi-version store all front-ends share: etcd's data model (revisions, versions, history, transactions,
/// compaction) over RocksDB, with watches and leases.
///
/// Concurrency: write transactions are evaluated one at a time under `writer` (they read the latest state,
/// including writes not yet published), each becomes one atomic RocksDB write batch, and the next revision. Readers
/// never take that lock: they read through the published ``ReadView``, a RocksDB snapshot paired with the revision
/// it shows, so a response's revision always matches its data. A view is published only once its writes are as
/// durable as `sync` demands (for `always`, after the group fsync that covers them).
package final class MVCCStore: Sendable {
    package struct Configuration: Sendable, Hashable {
        package var sync: SyncMode = .always
        /// fsync period for `sync = .batch`.
        package var syncIntervalMilliseconds = 10
        /// etcd's `--max-txn-ops`.
        package var maxTxnOperations = 128
        /// Deletions per RocksDB batch during physical compaction.
        package var compactionBatchSize = 1000
        package var watch = WatchHub.Configuration.defaults
        package var lessor = Lessor.Configuration.defaults
        /// Flush the memtables of an idle store; nil keeps them until RocksDB's own flushes.
        package var idleFlush: IdleFlush? = .defaults
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
        /// Events written but not yet published (sync = always), in revision order.
        var unpublished: [(revision: Revision, events: [(Keyspace, Event)])] = []
        /// One write batch reused by every transaction.
        let batch = WriterBatch()
    }

    package let configuration: Configuration
    package let database: RocksDB
    package let lessor: Lessor
    package let watchHub: WatchHub
    let latest: RocksDB.ColumnFamily
    let history: RocksDB.ColumnFamily
    let log: RocksDB.ColumnFamily
    let leaseFamily: RocksDB.ColumnFamily
    let leaseKeys: RocksDB.ColumnFamily
    let keyspaces: [UInt8: Keyspace]
    let writer: Mutex<WriterState>
    let view: Mutex<ReadView>
    let committer: Committer?
    let metrics: MVCCMetrics
    let compaction = Mutex(CompactionState())
    let idleFlushState = Mutex(IdleFlushState())
    let failure = Mutex<String?>(nil)
    let isClosed = Atomic<Bool>(false)

    /// Column families the database must be opened with.
    package static var columnFamilies: [String] { StorageEncoding.families }

    /// The families worth a memtable bloom filter: only `latest` is read by key for keys that may be absent (every
    /// write reads the key's previous version, usually missing for a create). The log is read by revisions that
    /// exist, history and the lease families through iterators; each filter costs 1% of the write buffer, resident
    /// from the start.
    package static var memtableBloomFamilies: Set<String> { [StorageEncoding.latestFamily] }

    /// Opens the store over `database` (opened with ``columnFamilies``), checking the format version, restoring the
    /// revision, compaction point and leases.
    package init(
        database: RocksDB,
        keyspaces: [Keyspace] = [.etcd, .redis, .iceberg],
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
        self.configuration = configuration
        self.database = database
        self.latest = try family(StorageEncoding.latestFamily)
        self.history = try family(StorageEncoding.historyFamily)
        self.log = try family(StorageEncoding.logFamily)
        self.leaseFamily = try family(StorageEncoding.leaseFamily)
        self.leaseKeys = try family(StorageEncoding.leaseKeysFamily)
        self.keyspaces = Dictionary(uniqueKeysWithValues: keyspaces.map { ($0.id, $0) })
        self.metrics = MVCCMetrics(factory: metricsFactory)
        self.lessor = Lessor(configuration: configuration.lessor, clock: clock)

        let (revision, recordedCompaction) = try Self.openMeta(database)
        let compactRevision = recordedCompaction ?? 0
        self.writer = Mutex(
            WriterState(
                revision: revision,
                compactRevision: compactRevision,
                hasCompacted: recordedCompaction != nil
            )
        )
        // The opening view gets its snapshot now: with sync = always every later view comes with one from the
        // committer, and a reader arriving while the first write waits for its fsync could take none of its own (the
        // database already holds a revision the view does not show).
        let snapshot = try Self.storage { try database.snapshot() }
        self.view = Mutex(ReadView(revision: revision, compactRevision: compactRevision, snapshot: snapshot))
        self.watchHub = WatchHub(configuration: configuration.watch, clock: clock, metrics: metrics)
        switch configuration.sync {
        case .always, .batch:
            self.committer = Committer(mode: configuration.sync, interval: configuration.syncIntervalMilliseconds)
        case .none: self.committer = nil
        }
        let leases = try loadLeases()
        lessor.restore(leases)
        metrics.revision.record(revision)
        metrics.compactRevision.record(compactRevision)
        metrics.leases.record(leases.count)
        watchHub.attach(store: self)
        committer?.start(store: self)
        let done =
            try Self.storage { try database.get(StorageEncoding.compactDoneKey) }.flatMap(StorageEncoding.decodeInt64)
            ?? 0
        if done < compactRevision { compaction.withLock { $0.pending = compactRevision } }
    }

    /// Reads (or, for a new database, writes) the format version; returns the revision and compaction point.
    /// The current revision and the recorded compaction revision (nil: never compacted).
    private static func openMeta(_ database: RocksDB) throws(MVCCError) -> (Revision, Revision?) {
        let format = try storage { try database.get(StorageEncoding.formatKey) }
        if let format {
            guard format.count == 4 else { throw .storage("unreadable storage format marker") }
            let version = format.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            guard version == StorageEncoding.formatVersion else {
                throw .storage(
                    "unsupported storage format version \(version) (this build reads version \(StorageEncoding.formatVersion))"
                )
            }
        } else {
            let nonEmpty = try storage { try !database.scan(limit: 1).isEmpty }
            guard !nonEmpty else { throw .storage("database has data but no Strata format marker") }
            let version = StorageEncoding.formatVersion
            try storage {
                try database.put(
                    StorageEncoding.formatKey,
                    [
                        UInt8(version >> 24), UInt8(version >> 16 & 0xFF), UInt8(version >> 8 & 0xFF),
                        UInt8(version & 0xFF),
                    ],
                    sync: true
                )
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

    /// Runs a storage call, turning wrapper errors into ``MVCCError/storage(_:)``.
    @inline(__always)
    static func storage<T>(_ body: () throws -> T) throws(MVCCError) -> T {
        do {
            return try body()
        } catch let error as RocksDBError where error.code == .closed {
            throw .closed
        } catch {
            throw .storage("\(error)")
        }
    }

    func keyspace(_ id: UInt8) -> Keyspace? { keyspaces[id] }

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

    /// A storage failure that makes the store unusable for writes (reported by health checks), if any.
    package var fatalError: String? { failure.withLock { $0 } }

    func recordFailure(_ message: String) {
        failure.withLock { if $0 == nil { $0 = message } }
    }

    /// Stops the committer after a final fsync and ends every watch. The database itself is closed by its owner.
    package func close() {
        committer?.stop()
        watchHub.closeAll()
        try? database.syncWAL()
        // Refuse new reads, then drop the published snapshot so the database can close.
        isClosed.store(true, ordering: .releasing)
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
}

extension RocksDB.Configuration {
    /// What a database an ``MVCCStore`` runs on is opened with: its column families, and the memtable filter only
    /// where the store reads absent keys (``MVCCStore/memtableBloomFamilies``).
    package mutating func prepareForMVCCStore() {
        columnFamilies = MVCCStore.columnFamilies
        memtableBloomFamilies = MVCCStore.memtableBloomFamilies
    }
}

/// The writer's reusable batch. `@unchecked Sendable` because it lives in `WriterState` and is only ever touched
/// while the writer lock is held.
final class WriterBatch: @unchecked Sendable {
    let batch = RocksDB.WriteBatch()
}

/// Metrics of the core, reported through swift-metrics (Prometheus on the admin port).
struct MVCCMetrics: Sendable {
    let revision: Gauge
    let compactRevision: Gauge
    let puts: Counter
    let deletes: Counter
    let ranges: Counter
    let txns: Counter
    let commitLatency: CoreMetrics.Timer
    let fsyncs: Counter
    let groupCommitSize: Recorder
    let watchers: Gauge
    let unsyncedWatchers: Gauge
    let eventsSent: Counter
    let leases: Gauge
    let leaseExpirations: Counter
    let compactions: Counter
    let idleFlushes: Counter

    init(factory: any MetricsFactory) {
        revision = Gauge(label: "strata_mvcc_revision", factory: factory)
        compactRevision = Gauge(label: "strata_mvcc_compact_revision", factory: factory)
        puts = Counter(label: "strata_mvcc_put_total", factory: factory)
        deletes = Counter(label: "strata_mvcc_delete_total", factory: factory)
        ranges = Counter(label: "strata_mvcc_range_total", factory: factory)
        txns = Counter(label: "strata_mvcc_txn_total", factory: factory)
        commitLatency = CoreMetrics.Timer(label: "strata_mvcc_commit_duration_seconds", factory: factory)
        fsyncs = Counter(label: "strata_mvcc_fsync_total", factory: factory)
        groupCommitSize = Recorder(label: "strata_mvcc_group_commit_size", factory: factory)
        watchers = Gauge(label: "strata_watch_watchers", factory: factory)
        unsyncedWatchers = Gauge(label: "strata_watch_unsynced_watchers", factory: factory)
        eventsSent = Counter(label: "strata_watch_events_sent_total", factory: factory)
        leases = Gauge(label: "strata_lease_leases", factory: factory)
        leaseExpirations = Counter(label: "strata_lease_expired_total", factory: factory)
        compactions = Counter(label: "strata_mvcc_compactions_total", factory: factory)
        idleFlushes = Counter(label: "strata_storage_idle_flushes_total", factory: factory)
    }
}
