package import Logging
package import ServiceLifecycle
package import StrataCommon
package import StrataMVCC
package import StrataObservability

/// A protocol front-end as the server composes it: a folder under `Protocols/`, this conformance, and one line in
/// `StrataServer.frontEnds`. The server, `strata config check`, `/version` and the command line's personalities
/// iterate the registered front-ends; none of them names one.
package protocol FrontEnd: SendableMetatype {
    associatedtype Configuration: FrontEndConfiguration

    /// The config section and the name `/version` and logs use (`etcd`, `redis`, `iceberg`).
    static var name: String { get }
    /// The keyspaces it owns in the shared store (their ids never change).
    static var keyspaces: [Keyspace] { get }
    /// Reads its `[name]` section; absent keys keep the defaults written in `Configuration`.
    static func configuration(reading reader: inout ConfigReader) throws(ConfigError) -> Configuration
    /// The running front-end: binds its listeners in `run()`, serves until graceful shutdown.
    static func makeService(_ configuration: Configuration, context: FrontEndContext) throws -> any Service
    /// The reference server's command line, when test harnesses may exec Strata in its place (`strata etcd …`).
    static var personality: Personality? { get }
}

extension FrontEnd {
    package static var personality: Personality? { nil }
}

/// What every front-end configuration tells the server.
package protocol FrontEndConfiguration: Sendable {
    /// `[name] enabled`.
    var enabled: Bool { get }
    /// Its listeners by config key (`listen`, `unixsocket`), so two enabled listeners on one port are caught before
    /// anything starts.
    var listeners: [(key: String, address: ListenAddress)] { get }
    /// Settings of the shared core this front-end needs (etcd: the progress-notification interval of watchers).
    func adjust(_ core: inout MVCCStore.Configuration)
    /// One line for `strata config check`, after "name: ".
    var summary: String { get }
}

extension FrontEndConfiguration {
    package func adjust(_ core: inout MVCCStore.Configuration) {}
    package var summary: String {
        guard enabled else { return "disabled" }
        return "enabled on " + listeners.map { "\($0.address)" }.joined(separator: ", ")
    }
}

/// What a front-end gets from the server that runs it.
package struct FrontEndContext: Sendable {
    package let store: MVCCStore
    package let logger: Logger
    package let metrics: FrontEndMetrics
    /// The process's overall health (storage, listeners, alarms), as the admin port's `/health` answers it, for
    /// front-ends that answer health on their own port too (etcd's client port); `excluding` alarm names.
    package let health: @Sendable (_ excluding: Set<String>) async -> HealthStatus
    /// Called once every listener of the front-end is bound (the process's readiness waits for it).
    package let onListening: @Sendable () -> Void
    /// Alarms the front-end raises (etcd's NOSPACE), which make `/health` false unless excluded.
    package let alarms: AlarmRegistry
    /// Checks whose failure makes the process unhealthy.
    package let healthChecks: HealthCheckRegistry
    /// Where the store keeps its files (empty when it runs in memory): what Redis's `CONFIG GET dir` shows.
    package let dataDirectory: String

    package init(
        store: MVCCStore,
        logger: Logger,
        metrics: FrontEndMetrics,
        health: @escaping @Sendable (_ excluding: Set<String>) async -> HealthStatus,
        onListening: @escaping @Sendable () -> Void,
        alarms: AlarmRegistry,
        healthChecks: HealthCheckRegistry,
        dataDirectory: String = ""
    ) {
        self.dataDirectory = dataDirectory
        self.store = store
        self.logger = logger
        self.metrics = metrics
        self.health = health
        self.onListening = onListening
        self.alarms = alarms
        self.healthChecks = healthChecks
    }
}

/// A front-end's type-erased registration: what ``FrontEnd`` says, callable without its types.
package struct FrontEndRegistration: Sendable {
    package let name: String
    package let keyspaces: [Keyspace]
    package let personality: Personality?
    private let read: @Sendable (inout ConfigReader) throws(ConfigError) -> any FrontEndConfiguration
    private let make: @Sendable (any FrontEndConfiguration, FrontEndContext) throws -> any Service

    package init<F: FrontEnd>(_ frontEnd: F.Type) {
        name = F.name
        keyspaces = F.keyspaces
        personality = F.personality
        read = { reader throws(ConfigError) in try F.configuration(reading: &reader) }
        make = { configuration, context in
            guard let configuration = configuration as? F.Configuration else {
                preconditionFailure("\(F.name) was handed another front-end's configuration")
            }
            return try F.makeService(configuration, context: context)
        }
    }

    /// Reads the front-end's section (an empty one when the file has none) and reports unknown keys.
    package func configuration(from section: ConfigSection, file: String) throws(ConfigError)
        -> any FrontEndConfiguration
    {
        var reader = ConfigReader(section, file: file)
        let configuration = try read(&reader)
        try reader.finish()
        return configuration
    }

    package func makeService(_ configuration: any FrontEndConfiguration, context: FrontEndContext) throws
        -> any Service
    {
        try make(configuration, context)
    }
}
