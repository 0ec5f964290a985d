package import CoreMetrics
internal import GRPCCore
package import Logging
package import ServiceLifecycle
package import StrataCommon
internal import StrataEtcdAPI
package import StrataFrontEnd
package import StrataMVCC
internal import StrataObservability

/// The etcd v3 gRPC front-end: one HTTP/2 listener serving etcd's services over the shared core (plus etcd's HTTP/1.1
/// side on the same port).
package struct EtcdFrontEnd: Service {
    /// A single member never changes term; etcd's single-node term after its first election is 2.
    static let raftTerm: UInt64 = 2

    package let configuration: Configuration
    let store: MVCCStore
    let logger: Logger
    package let alarms: AlarmTable
    let metricsFactory: any MetricsFactory
    /// What the port serves over HTTP/1.1 next to gRPC, as etcd's client port does.
    let httpEndpoints: EtcdHTTPEndpoints
    /// Called once the port is bound (the process's readiness waits for it).
    let onListening: @Sendable () -> Void

    package init(
        configuration: Configuration,
        store: MVCCStore,
        logger: Logger,
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        alarms: AlarmTable = AlarmTable(),
        httpEndpoints: EtcdHTTPEndpoints? = nil,
        onListening: @escaping @Sendable () -> Void = {}
    ) {
        self.onListening = onListening
        self.configuration = configuration
        self.alarms = alarms
        self.store = store
        self.logger = logger
        self.metricsFactory = metricsFactory
        // Without the process's checks and registry: health is the store's, and /metrics is not served.
        self.httpEndpoints =
            httpEndpoints
            ?? EtcdHTTPEndpoints(
                health: { [store, alarms] excluded in
                    HealthStatus.alarmed(alarms.names, excluding: excluded)
                        ?? store.healthProblem.map { .unhealthy($0) } ?? .healthy
                },
                metrics: nil
            )
    }

    /// Raises NOSPACE when the database outgrows the quota, as etcd's backend quota does.
    func watchQuota() async throws {
        while !Task.isCancelled {
            let size = store.storageSize.total
            if size > configuration.quotaBackendBytes && alarms.activate(.nospace) {
                logger.warning(
                    "database size \(size) exceeds the quota of \(configuration.quotaBackendBytes) bytes: NOSPACE alarm raised"
                )
            }
            try await Task.sleep(nanoseconds: 5_000_000_000)
        }
    }

    var services: [any RegistrableRPCService] {
        [
            KVService(store: store, configuration: configuration, alarms: alarms),
            LeaseService(store: store, configuration: configuration, alarms: alarms),
            MaintenanceService(store: store, configuration: configuration, alarms: alarms),
            WatchService(store: store, configuration: configuration),
            ClusterService(store: store, configuration: configuration),
            AuthService(store: store, configuration: configuration),
            HealthService(store: store),
        ]
    }

    package func run() async throws {
        let listen = configuration.listen
        let kv = KVService(store: store, configuration: configuration, alarms: alarms)
        let policy = EtcdCallPolicy(factory: metricsFactory)
        var transportConfiguration = EtcdServerTransport.Configuration(
            host: listen.host == "localhost" ? "127.0.0.1" : listen.host,
            port: listen.port,
            maxConcurrentStreams: configuration.maxConcurrentStreams,
            // etcd's gRPC receive limit: --max-request-bytes plus 512 KiB of envelope.
            maxRequestPayload: configuration.maxRequestBytes + 512 * 1024
        )
        transportConfiguration.maxControlFramesPer30Seconds = 1_000_000
        transportConfiguration.httpEndpoints = httpEndpoints
        let transport = EtcdServerTransport(
            configuration: transportConfiguration,
            fast: configuration.fastPath ? kv.fastMethods(policy: policy) : [:]
        )
        let server = GRPCServer(
            transport: transport,
            services: services,
            interceptors: [EtcdCallPolicyInterceptor(policy: policy)]
        )
        try await withGracefulShutdownHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    do {
                        try await server.serve()
                    } catch {
                        throw ListenError(component: "etcd gRPC", address: listen, underlying: error)
                    }
                }
                if let bound = await transport.listeningAddress {
                    logger.info("etcd v3 gRPC listening on \(bound)")
                    onListening()
                }
                group.addTask { try await watchQuota() }
                if let autoCompaction = configuration.autoCompaction {
                    group.addTask {
                        try await AutoCompactor(store: store, policy: autoCompaction, logger: logger).run()
                    }
                }
                // Whichever ends first (the server, after graceful shutdown) ends the others too.
                try await group.next()
                group.cancelAll()
            }
        } onGracefulShutdown: {
            server.beginGracefulShutdown()
        }
    }
}

extension EtcdFrontEnd: FrontEnd {
    package static let name = "etcd"
    package static var keyspaces: [Keyspace] { [.etcd] }

    package static func configuration(reading reader: inout ConfigReader) throws(ConfigError) -> Configuration {
        var configuration = Configuration.defaults
        try configuration.read(from: &reader)
        return configuration
    }

    package static func makeService(_ configuration: Configuration, context: FrontEndContext) throws -> any Service {
        // etcd's alarms (NOSPACE) make /health false on both the admin port and the etcd port, as etcd reports them.
        let store = context.store
        let alarms = AlarmTable(diskShort: { store.spaceShortage != nil })
        context.alarms.add { alarms.names }
        let render = context.metrics.render
        return EtcdFrontEnd(
            configuration: configuration,
            store: context.store,
            logger: context.logger,
            metricsFactory: context.metrics.factory,
            alarms: alarms,
            httpEndpoints: EtcdHTTPEndpoints(health: context.health, metrics: { render() }),
            onListening: context.onListening
        )
    }

    package static var personality: Personality? { EtcdPersonality.personality }
}
