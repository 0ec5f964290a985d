package import Logging
private import Prometheus
internal import ServiceLifecycle
private import StrataLease
package import StrataMVCC
package import StrataObservability
package import StrataRocksDB
private import Synchronization

/// Owns the data directory (its lock file and the RocksDB instance under `<data dir>/db`) and the MVCC store over it.
///
/// Opened eagerly in `init` so a locked or corrupt directory stops start-up before any listener binds. As a
/// `Service` it runs the core's background work (lease expiry, physical compaction, progress notifications) until
/// graceful shutdown, then closes the store, flushes and closes the database and releases the lock. It is the first
/// service in the group, so it shuts down last, after every front-end has drained.
package final class StorageService: Service, HealthCheck, Sendable {
    package struct Configuration: Sendable, Hashable {
        package var dataDirectory: String
        package var inMemory: Bool
        package var rocksDB: RocksDB.Configuration
        package var mvcc: MVCCStore.Configuration
        /// The keyspaces the front-ends declared.
        package var keyspaces: [Keyspace]
        package init(
            dataDirectory: String,
            inMemory: Bool,
            rocksDB: RocksDB.Configuration = .defaults,
            mvcc: MVCCStore.Configuration = .defaults,
            keyspaces: [Keyspace]
        ) {
            self.dataDirectory = dataDirectory
            self.inMemory = inMemory
            self.rocksDB = rocksDB
            self.mvcc = mvcc
            self.keyspaces = keyspaces
        }
    }

    package let configuration: Configuration
    package let database: RocksDB
    package let store: MVCCStore
    private let lock: Mutex<DataDirectoryLock?>
    private let logger: Logger

    package init(configuration: Configuration, metrics: StrataMetrics, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        var rocksConfiguration = configuration.rocksDB
        rocksConfiguration.inMemory = configuration.inMemory
        rocksConfiguration.prepareForMVCCStore()
        // With sync = always nothing is acknowledged before the committer's fsync, so the WAL can be written by that
        // same call: one write + fsync per group instead of a write per transaction.
        rocksConfiguration.manualWALFlush = configuration.mvcc.sync == .always
        let lock: DataDirectoryLock?
        let database: RocksDB
        if configuration.inMemory {
            lock = nil
            database = try RocksDB(path: "/strata-memory/db", configuration: rocksConfiguration)
        } else {
            lock = try DataDirectoryLock(directory: configuration.dataDirectory)
            database = try RocksDB(path: configuration.dataDirectory + "/db", configuration: rocksConfiguration)
        }
        self.lock = Mutex(lock)
        self.database = database
        do {
            self.store = try MVCCStore(
                database: database,
                keyspaces: configuration.keyspaces,
                configuration: configuration.mvcc,
                metricsFactory: metrics.factory
            )
        } catch {
            try? database.close()
            throw error
        }
    }

    package func run() async throws {
        // Background work until shutdown; cancellation (another service failed) ends it too, and we still close.
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await self.store.runBackgroundTasks() }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        close()
    }

    /// Closes the store, flushes and closes the database, then releases the directory lock. Idempotent.
    package func close() {
        guard !database.isClosed else { return }
        store.close()
        do {
            try database.close()
            logger.info("storage closed", metadata: ["data_dir": "\(configuration.dataDirectory)"])
        } catch {
            logger.error("storage close failed: \(error)")
        }
        lock.withLock { $0 = nil }
    }

    // MARK: HealthCheck

    package var healthCheckName: String { "storage" }

    package func checkHealth() async -> HealthStatus {
        if database.isClosed { return .unhealthy("database is closed") }
        if let problem = store.healthProblem { return .unhealthy(problem) }
        if let shortage = store.spaceShortage { return .unhealthy(shortage) }
        do {
            // A real read through the engine: a wedged or failed DB answers with an error here.
            _ = try database.get([0x00, 0x68, 0x65, 0x61, 0x6c, 0x74, 0x68])
            return .healthy
        } catch {
            return .unhealthy("\(error)")
        }
    }

    // MARK: Metrics

    /// Registers storage gauges, refreshed from RocksDB properties at each scrape.
    package func registerMetrics(_ metrics: StrataMetrics) {
        let registry = metrics.registry
        let gauges: [(RocksDB.Property, Gauge)] = [
            (
                .estimatedKeys,
                registry.gauge(
                    "strata_storage_keys_estimated",
                    help: "Estimated number of keys in RocksDB (all column families)."
                )
            ),
            (.totalSSTFilesSize, registry.gauge("strata_storage_sst_bytes", help: "Total size of SST files in bytes.")),
            (
                .liveSSTFilesSize,
                registry.gauge(
                    "strata_storage_live_sst_bytes",
                    help: "Size of SST files of the current version in bytes."
                )
            ),
            (.memtablesSize, registry.gauge("strata_storage_memtable_bytes", help: "Size of all memtables in bytes.")),
            (
                .memtablesPinnedSize,
                registry.gauge(
                    "strata_storage_memtable_with_pinned_bytes",
                    help: "Size of all memtables, including flushed ones still pinned by readers, in bytes."
                )
            ),
            (
                .tableReadersSize,
                registry.gauge(
                    "strata_storage_table_readers_bytes",
                    help: "Memory of SST index and filter blocks outside the block cache in bytes."
                )
            ),
            (
                .estimatedLiveDataSize,
                registry.gauge(
                    "strata_storage_live_data_bytes_estimated",
                    help: "Estimated size of live data in bytes."
                )
            ),
            (
                .backgroundErrors,
                registry.gauge("strata_storage_background_errors", help: "RocksDB background errors since open.")
            ),
            (
                .pendingCompactionBytes,
                registry.gauge(
                    "strata_storage_pending_compaction_bytes",
                    help: "Estimated bytes compaction still has to rewrite."
                )
            ),
        ]
        let cacheUsage = registry.gauge("strata_storage_block_cache_bytes", help: "Block cache memory in use in bytes.")
        let cacheCapacity = registry.gauge(
            "strata_storage_block_cache_capacity_bytes",
            help: "Configured block cache size in bytes."
        )
        let keys = registry.gauge("strata_mvcc_keys", help: "Live keys in all keyspaces (RocksDB estimate).")
        let dbSize = registry.gauge("strata_storage_db_bytes", help: "SST files plus memtables in bytes.")
        let database = self.database
        metrics.addCollector {
            guard !database.isClosed else { return }
            keys.set(Double(database.property(.estimatedKeys, in: database.columnFamily("latest")) ?? 0))
            dbSize.set(Double(database.totalProperty(.totalSSTFilesSize) + database.totalProperty(.memtablesSize)))
        }
        metrics.addCollector {
            guard !database.isClosed else { return }
            for (property, gauge) in gauges { gauge.set(Double(database.totalProperty(property))) }
            cacheUsage.set(Double(database.property(.blockCacheUsage) ?? 0))
            cacheCapacity.set(Double(database.configuration.blockCacheSizeBytes))
        }
    }
}
