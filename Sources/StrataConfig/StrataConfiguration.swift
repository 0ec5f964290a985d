package import Logging
package import StrataCommon
package import StrataObservability
package import StrataRocksDB

/// The whole server configuration, as `config.toml` describes it. Each subsystem's part is that subsystem's own
/// `Configuration` type; this module only maps TOML onto them.
package struct StrataConfiguration: Sendable, Hashable {
    package struct Server: Sendable, Hashable {
        package var dataDirectory = "data"
        package var inMemory = false
        package var logLevel: Logger.Level = .info
        package init() {}
    }

    package struct Storage: Sendable, Hashable {
        package var sync: SyncMode = .always
        /// fsync period for `sync = "batch"`.
        package var syncIntervalMilliseconds = 10
        package var rocksDB = RocksDB.Configuration.defaults
        /// Flush the memtables after this long without a write (nil: never on idleness).
        package var idleFlushAfter: Duration? = .seconds(10)
        package init() {}
    }

    /// A protocol front-end's listener section (`[etcd]`, `[redis]`).
    package struct FrontEnd: Sendable, Hashable {
        package var enabled = true
        package var listen: ListenAddress
        package init(listen: ListenAddress) { self.listen = listen }
    }

    /// `[etcd]`: the listener and etcd's own limits, under etcd's flag names.
    package struct Etcd: Sendable, Hashable {
        package var enabled = true
        package var listen = ListenAddress(host: "127.0.0.1", port: 2379)
        /// `--name`: the member name `member list` reports.
        package var name = "default"
        /// `--max-request-bytes`.
        package var maxRequestBytes = 1_572_864
        /// `--max-txn-ops`.
        package var maxTxnOperations = 128
        /// `--quota-backend-bytes`: above it the NOSPACE alarm stops writes.
        package var quotaBackendBytes: Int64 = 2 << 30
        /// `--experimental-watch-progress-notify-interval`.
        package var progressNotifyInterval: Duration = .seconds(600)
        /// `--max-concurrent-streams`: HTTP/2 streams (RPCs, watch and keepalive streams) per client connection.
        package var maxConcurrentStreams = 10_000
        /// Watchers per Watch stream (etcd has no limit; every watcher holds a buffer and a task).
        package var maxWatchersPerStream = 100_000
        package init() {}
    }

    package struct Iceberg: Sendable, Hashable {
        package var enabled = true
        package var listen = ListenAddress(host: "127.0.0.1", port: 8181)
        package var warehouse = "warehouse"
        package init() {}
    }

    package var server = Server()
    package var storage = Storage()
    package var etcd = Etcd()
    package var redis = FrontEnd(listen: ListenAddress(host: "127.0.0.1", port: 6379))
    package var iceberg = Iceberg()
    package var metrics = AdminServer.Configuration.defaults

    package init() {}

    package static var defaults: Self { Self() }
}
