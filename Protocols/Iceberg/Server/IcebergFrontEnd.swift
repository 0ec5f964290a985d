internal import CoreMetrics
internal import Foundation
internal import Hummingbird
package import Logging
package import ServiceLifecycle
package import StrataCommon
package import StrataFrontEnd
package import StrataMVCC
internal import StrataObservability
internal import Synchronization

/// The Iceberg REST catalog front-end: HTTP/1.1 (Hummingbird) over ``IcebergCatalog``.
package struct IcebergFrontEnd: Service {
    package let configuration: Configuration
    let store: MVCCStore
    let logger: Logger
    let metrics: FrontEndMetrics?
    let onListening: @Sendable () -> Void

    package init(
        configuration: Configuration,
        store: MVCCStore,
        logger: Logger,
        metrics: FrontEndMetrics? = nil,
        onListening: @escaping @Sendable () -> Void = {}
    ) {
        self.configuration = configuration
        self.store = store
        self.logger = logger
        self.metrics = metrics
        self.onListening = onListening
    }

    /// The warehouses the configuration names, their directories made absolute and created.
    static func warehouses(_ configuration: Configuration) throws -> [Warehouse] {
        let cwd = FileManager.default.currentDirectoryPath
        func absolute(_ path: String) -> String {
            var text = path.hasPrefix("file://") ? String(path.dropFirst("file://".count)) : path
            if !text.hasPrefix("/") { text = cwd + "/" + text }
            let standardized = (text as NSString).standardizingPath
            return standardized.count > 1 && standardized.hasSuffix("/")
                ? String(standardized.dropLast()) : standardized
        }
        var result: [Warehouse] = []
        let defaultRoot = absolute(configuration.warehouse)
        result.append(
            Warehouse(
                name: "",
                root: defaultRoot,
                aliases: [configuration.warehouse, defaultRoot, "file://" + defaultRoot]
            )
        )
        for (name, path) in configuration.warehouses.sorted(by: { $0.key < $1.key }) {
            let root = absolute(path)
            result.append(Warehouse(name: name, root: root, aliases: [name, root, "file://" + root]))
        }
        for warehouse in result {
            try FileManager.default.createDirectory(atPath: warehouse.root, withIntermediateDirectories: true)
        }
        return result
    }

    package func run() async throws {
        let catalog = IcebergCatalog(
            store: store,
            warehouses: try Self.warehouses(configuration),
            maxPageSize: configuration.maxPageSize
        )
        let icebergMetrics = IcebergMetrics(factory: metrics?.factory ?? NOOPMetricsHandler.instance)
        metrics?.addCollector(icebergMetrics.collector(for: catalog))
        let idempotency = IcebergIdempotency(store: store, lifetime: configuration.idempotencyKeyLifetime)
        let http = IcebergHTTP(
            catalog: catalog,
            configuration: configuration,
            auth: IcebergAuth(configuration),
            idempotency: idempotency,
            metrics: icebergMetrics
        )
        let listen = configuration.listen
        let host = listen.host == "localhost" ? "127.0.0.1" : listen.host
        let started = Atomic<Bool>(false)
        let logger = self.logger
        let onListening = self.onListening
        let app = Application(
            responder: CallbackResponder<BasicRequestContext> { request, _ in await http.respond(to: request) },
            configuration: .init(address: .hostname(host, port: listen.port), serverName: "strata"),
            onServerRunning: { channel in
                started.store(true, ordering: .releasing)
                let port = channel.localAddress?.port ?? listen.port
                logger.info("Iceberg REST catalog listening on \(host):\(port)")
                onListening()
            },
            logger: logger
        )
        do {
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await app.run() }
                tasks.addTask { try await cancelWhenGracefulShutdown { try await idempotency.expireRecords() } }
                try await tasks.next()
                tasks.cancelAll()
            }
        } catch {
            if !started.load(ordering: .acquiring) {
                throw ListenError(component: "Iceberg REST", address: listen, underlying: error)
            }
            if error is CancellationError { return }
            throw error
        }
    }
}

extension IcebergFrontEnd: FrontEnd {
    package static let name = "iceberg"
    package static var keyspaces: [Keyspace] { [.iceberg] }

    package static func configuration(reading reader: inout ConfigReader) throws(ConfigError) -> Configuration {
        var configuration = Configuration.defaults
        try configuration.read(from: &reader)
        return configuration
    }

    package static func makeService(_ configuration: Configuration, context: FrontEndContext) throws -> any Service {
        IcebergFrontEnd(
            configuration: configuration,
            store: context.store,
            logger: context.logger,
            metrics: context.metrics,
            onListening: context.onListening
        )
    }
}
