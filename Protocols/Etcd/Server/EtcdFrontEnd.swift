package import CoreMetrics
package import GRPCCore
internal import GRPCNIOTransportHTTP2
package import Logging
package import ServiceLifecycle
package import StrataCommon
internal import StrataEtcdAPI
package import StrataMVCC
internal import StrataObservability
internal import StrataRocksDB

/// The etcd v3 gRPC front-end: one HTTP/2 listener serving etcd's services over the shared core.
package struct EtcdFrontEnd: Service {
    /// A single member never changes term; etcd's single-node term after its first election is 2.
    static let raftTerm: UInt64 = 2

    package let configuration: Configuration
    let store: MVCCStore
    let logger: Logger
    package let alarms = AlarmTable()
    let metricsFactory: any MetricsFactory

    package init(
        configuration: Configuration,
        store: MVCCStore,
        logger: Logger,
        metricsFactory: any MetricsFactory = MetricsSystem.factory
    ) {
        self.configuration = configuration
        self.store = store
        self.logger = logger
        self.metricsFactory = metricsFactory
    }

    /// Raises NOSPACE when the database outgrows the quota, as etcd's backend quota does.
    func watchQuota() async throws {
        while !Task.isCancelled {
            let database = store.database
            let size = Int64(database.totalProperty(.totalSSTFilesSize) + database.totalProperty(.memtablesSize))
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
        let address: GRPCNIOTransportCore.SocketAddress =
            listen.host.contains(":")
            ? .ipv6(host: listen.host, port: listen.port)
            : .ipv4(host: listen.host == "localhost" ? "127.0.0.1" : listen.host, port: listen.port)
        let transport = HTTP2ServerTransport.Posix(
            address: address,
            transportSecurity: .plaintext,
            config: .defaults { config in
                // etcd lets clients ping every 5 s, with or without calls (kube-apiserver pings idle streams every
                // 30 s); grpc-swift's default (5 min, no pings without calls) would answer them with GOAWAY.
                config.connection.keepalive.clientBehavior = .init(
                    minPingIntervalWithoutCalls: .seconds(5),
                    allowWithoutCalls: true
                )
                // etcd's gRPC receive limit: --max-request-bytes plus 512 KiB of envelope.
                config.rpc.maxRequestPayloadSize = configuration.maxRequestBytes + 512 * 1024
                config.http2.maxConcurrentStreams = configuration.maxConcurrentStreams
            }
        )
        let server = GRPCServer(
            transport: transport,
            services: services,
            interceptors: [MetricsInterceptor(factory: metricsFactory)]
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
                if let bound = try? await transport.listeningAddress {
                    logger.info("etcd v3 gRPC listening on \(bound)")
                }
                group.addTask { try await watchQuota() }
                // Whichever ends first (the server, after graceful shutdown) ends the quota watch too.
                try await group.next()
                group.cancelAll()
            }
        } onGracefulShutdown: {
            server.beginGracefulShutdown()
        }
    }
}
