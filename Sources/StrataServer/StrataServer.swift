package import Logging
private import Prometheus
package import ServiceLifecycle
package import StrataCommon
internal import StrataConfig
private import StrataEtcd
package import StrataFrontEnd
private import StrataIceberg
private import StrataMVCC
package import StrataObservability
private import StrataRedis
private import UnixSignals

/// The composition root: builds every service from a configuration, in the order they must start.
///
/// `main` stays tiny and tests call this directly. Order matters: `ServiceGroup` starts services in list order and
/// shuts them down in reverse, so storage comes first (closes last) and listeners come after it (stop accepting
/// first). Front-ends come from ``frontEnds``; nothing here names one.
package struct StrataServer: Sendable {
    /// Every front-end of this build. A new front-end is one line here (plus its folder, Package.swift and its
    /// section of config.toml).
    package static let frontEnds: [FrontEndRegistration] = [
        FrontEndRegistration(EtcdFrontEnd.self),
        FrontEndRegistration(RedisFrontEnd.self),
        FrontEndRegistration(IcebergFrontEnd.self),
    ]

    package let configuration: ServerConfiguration
    package let storage: StorageService
    package let admin: AdminServer?
    package let metrics: StrataMetrics
    /// Front-ends actually running, by name.
    package let runningFrontEnds: [String]
    private let services: [any Service]
    private let logger: Logger

    package init(
        configuration: ServerConfiguration,
        metrics: StrataMetrics = StrataMetrics(),
        logger: Logger,
        onAdminListening: @escaping @Sendable (ListenAddress) async -> Void = { _ in }
    ) throws {
        MemoryService.configureAllocator()
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        let core = configuration.core

        var mvcc = core.mvcc
        let enabled = configuration.frontEnds.filter { $0.configuration.enabled }
        for frontEnd in enabled { frontEnd.configuration.adjust(&mvcc) }
        let storage = try StorageService(
            configuration: .init(
                dataDirectory: core.server.dataDirectory,
                inMemory: core.server.inMemory,
                rocksDB: core.rocksDB,
                mvcc: mvcc,
                // Every front-end of the build declares its keyspaces, enabled or not: their ids stay theirs.
                keyspaces: Self.frontEnds.flatMap(\.keyspaces)
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

        let names = enabled.map(\.registration.name)
        self.runningFrontEnds = names
        let listeners = ListenerReadiness(waitingFor: names)
        let health = ProcessHealth(checks: HealthCheckRegistry([storage, listeners]), alarms: AlarmRegistry())
        let frontEndMetrics = FrontEndMetrics(
            factory: metrics.factory,
            render: { metrics.render() },
            addCollector: { metrics.addCollector($0) }
        )
        // Storage first (it shuts down last), then the front-ends, then the admin listener.
        var services: [any Service] = [storage, MemoryService()]
        for frontEnd in enabled {
            let name = frontEnd.registration.name
            let context = FrontEndContext(
                store: storage.store,
                logger: logger,
                metrics: frontEndMetrics,
                health: { await health.status(excludingAlarms: $0) },
                onListening: { listeners.markListening(name) },
                alarms: health.alarms,
                healthChecks: health.checks,
                dataDirectory: core.server.inMemory ? "" : core.server.dataDirectory
            )
            services.append(try frontEnd.registration.makeService(frontEnd.configuration, context: context))
        }
        if let adminConfiguration = core.metrics {
            let admin = AdminServer(
                configuration: adminConfiguration,
                metrics: metrics,
                health: health,
                versionInfo: .init(frontEnds: names),
                logger: logger
            )
            services.append(AdminService(server: admin, onListening: onAdminListening))
            self.admin = admin
        } else {
            self.admin = nil
        }
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
        let core = configuration.core
        logger.info(
            "strata \(StrataVersion.current) starting",
            metadata: [
                "data_dir": "\(core.server.inMemory ? "(in memory)" : core.server.dataDirectory)",
                "sync": "\(core.mvcc.sync.rawValue)",
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
