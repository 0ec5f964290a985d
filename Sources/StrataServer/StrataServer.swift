package import Logging
private import Prometheus
package import ServiceLifecycle
package import StrataCommon
package import StrataConfig
private import StrataEtcd
private import StrataMVCC
package import StrataObservability
private import StrataRocksDB
private import UnixSignals

/// The composition root: builds every service from a configuration, in the order they must start.
///
/// `main` stays tiny and tests call this directly. Order matters: `ServiceGroup` starts services in list order and
/// shuts them down in reverse, so storage comes first (closes last) and listeners come after it (stop accepting
/// first). Front-ends plug in here, each behind its `[name] enabled` switch (see Protocols/README.md).
package struct StrataServer: Sendable {
    package let configuration: StrataConfiguration
    package let storage: StorageService
    package let admin: AdminServer
    package let metrics: StrataMetrics
    /// Front-ends actually running, by config section name.
    package let frontEnds: [String]
    private let services: [any Service]
    private let logger: Logger

    /// Front-ends this build contains. The protocol issues add theirs here.
    package static let availableFrontEnds: [String] = ["etcd"]

    package init(
        configuration: StrataConfiguration,
        metrics: StrataMetrics = StrataMetrics(),
        logger: Logger,
        onAdminListening: @escaping @Sendable (ListenAddress) async -> Void = { _ in }
    ) throws {
        MemoryService.configureAllocator()
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger

        var mvcc = MVCCStore.Configuration.defaults
        mvcc.sync = configuration.storage.sync
        mvcc.syncIntervalMilliseconds = configuration.storage.syncIntervalMilliseconds
        mvcc.idleFlush = configuration.storage.idleFlushAfter.map { after in
            var policy = MVCCStore.IdleFlush.defaults
            policy.after = after
            return policy
        }
        // Periodic progress is requested only by etcd watchers; the hub runs one timer for all of them.
        mvcc.watch.progressNotifyIntervalSeconds = configuration.etcd.progressNotifyInterval.secondsValue
        let storage = try StorageService(
            configuration: .init(
                dataDirectory: configuration.server.dataDirectory,
                inMemory: configuration.server.inMemory,
                rocksDB: configuration.storage.rocksDB,
                mvcc: mvcc,
                keyspaces: [.etcd]
            ),
            metrics: metrics,
            logger: logger
        )
        storage.registerMetrics(metrics)
        self.storage = storage

        let processMetrics = ProcessMetrics(registry: metrics.registry)
        metrics.addCollector { processMetrics.collect() }
        metrics.registry.gauge(
            "strata_build_info",
            help: "Always 1; labels carry the build's version.",
            labels: [("version", StrataVersion.current)]
        ).set(Int64(1))

        var frontEnds: [String] = []
        for (name, enabled) in [
            ("etcd", configuration.etcd.enabled), ("redis", configuration.redis.enabled),
            ("iceberg", configuration.iceberg.enabled),
        ] where enabled {
            if Self.availableFrontEnds.contains(name) {
                frontEnds.append(name)
            } else {
                logger.warning("[\(name)] is enabled but this build has no \(name) front-end yet; not listening")
            }
        }
        self.frontEnds = frontEnds

        // etcd's alarms (NOSPACE) make /health false on both the admin port and the etcd port, as etcd reports them.
        let etcdAlarms = AlarmTable()
        let listeners = ListenerReadiness(waitingFor: frontEnds)
        let admin = AdminServer(
            configuration: configuration.metrics,
            metrics: metrics,
            healthChecks: [storage, listeners],
            alarms: { etcdAlarms.names },
            versionInfo: .init(frontEnds: frontEnds),
            logger: logger
        )
        self.admin = admin
        // Storage first (it shuts down last), then the front-ends, then the admin listener.
        var services: [any Service] = [storage, MemoryService()]
        if frontEnds.contains("etcd") {
            var etcd = EtcdFrontEnd.Configuration.defaults
            etcd.listen = configuration.etcd.listen
            etcd.name = configuration.etcd.name
            etcd.maxRequestBytes = configuration.etcd.maxRequestBytes
            etcd.maxTxnOperations = configuration.etcd.maxTxnOperations
            etcd.quotaBackendBytes = configuration.etcd.quotaBackendBytes
            etcd.maxConcurrentStreams = configuration.etcd.maxConcurrentStreams
            etcd.maxWatchersPerStream = configuration.etcd.maxWatchersPerStream
            services.append(
                EtcdFrontEnd(
                    configuration: etcd,
                    store: storage.store,
                    logger: logger,
                    metricsFactory: metrics.factory,
                    alarms: etcdAlarms,
                    httpEndpoints: EtcdHTTPEndpoints(
                        health: { await admin.health(excludingAlarms: $0) },
                        metrics: { metrics.render() }
                    ),
                    onListening: { listeners.markListening("etcd") }
                )
            )
        }
        services.append(AdminService(server: admin, onListening: onAdminListening))
        self.services = services
    }

    /// The group that runs everything until SIGTERM/SIGINT (graceful) or until one service fails.
    package func makeServiceGroup(handleSignals: Bool = true) -> ServiceGroup {
        ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) },
                gracefulShutdownSignals: handleSignals ? [.sigterm, .sigint] : [],
                logger: logger
            )
        )
    }

    /// Runs until shutdown; storage is closed whatever happened.
    package func run(handleSignals: Bool = true) async throws {
        logger.info(
            "strata \(StrataVersion.current) starting",
            metadata: [
                "data_dir": "\(configuration.server.inMemory ? "(in memory)" : configuration.server.dataDirectory)",
                "sync": "\(configuration.storage.sync.rawValue)",
            ]
        )
        defer { storage.close() }
        try await makeServiceGroup(handleSignals: handleSignals).run()
    }
}

/// Adapts ``AdminServer`` to `Service`.
private struct AdminService: Service {
    let server: AdminServer
    let onListening: @Sendable (ListenAddress) async -> Void
    func run() async throws { try await server.run(onListening: onListening) }
}
