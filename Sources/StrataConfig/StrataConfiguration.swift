package import Logging
package import StrataCommon
package import StrataMVCC
package import StrataObservability
package import StrataRocksDB

/// The process's configuration, as `config.toml` describes it: each part is its subsystem's own `Configuration` (the
/// defaults are written there), filled by a ``ConfigReader`` over its section. Front-ends read their own sections:
/// they are kept here as written, and the server hands each to its front-end.
package struct StrataConfiguration: Sendable, Hashable {
    /// `[server]`.
    package struct Server: Sendable, Hashable {
        package var dataDirectory = "data"
        package var inMemory = false
        package var logLevel: Logger.Level = .info
        package init() {}
    }

    package var server = Server()
    /// `[storage]`: the engine's part.
    package var rocksDB = RocksDB.Configuration.defaults
    /// `[storage]`: the core's part.
    package var mvcc = MVCCStore.Configuration.defaults
    /// `[metrics]`: the admin listener.
    package var metrics: AdminServer.Configuration? = .defaults
    /// Every section written in the file, by name, with its keys' lines (the front-ends read theirs from here).
    package var sections: [String: ConfigSection] = [:]

    package init() {}

    package static var defaults: Self { Self() }

    /// The file's name in error messages.
    package var file = "config.toml"
}
