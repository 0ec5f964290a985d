internal import ArgumentParser
private import Logging
private import StrataCommon
private import StrataConfig
private import StrataMVCC
private import StrataObservability
private import StrataRocksDB
private import StrataServer

#if canImport(Glibc)
    private import Glibc
#endif

@main
struct StrataCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strata",
        abstract: "etcd, Redis and an Iceberg REST catalog in one process, over one RocksDB-backed MVCC store.",
        subcommands: [Serve.self, Config.self, Snapshot.self, Version.self]
    )
}

extension StrataCommand {
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the server until SIGTERM or SIGINT.")

        @Option(help: "Configuration file (TOML). Without it, the built-in default (the shipped config.toml) is used.")
        var config: String?

        @Option(help: "Data directory; overrides [server] data_dir.")
        var dataDir: String?

        @Flag(help: "Keep all data in memory; overrides [server] in_memory.")
        var inMemory = false

        @Option(help: "trace | debug | info | notice | warning | error | critical; overrides [server] log_level.")
        var logLevel: String?

        func run() async throws {
            var configuration = try loadConfiguration(path: config)
            if let dataDir { configuration.server.dataDirectory = dataDir }
            if inMemory { configuration.server.inMemory = true }
            if let logLevel {
                guard let level = Logger.Level(rawValue: logLevel.lowercased()) else {
                    throw ValidationError("invalid --log-level '\(logLevel)'")
                }
                configuration.server.logLevel = level
            }
            let level = configuration.server.logLevel
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
            let logger = Logger(label: "strata")
            do {
                let server = try StrataServer(configuration: configuration, logger: logger)
                try await server.run()
            } catch {
                fail("\(error)")
            }
        }
    }

    struct Config: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Configuration tools.",
            subcommands: [Check.self]
        )

        struct Check: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Validate a configuration file and print the effective settings."
            )

            @Argument(help: "The TOML file to check.")
            var file: String

            func run() async throws {
                let configuration = try loadConfiguration(path: file)
                print("\(file): OK")
                print("data_dir=\(configuration.server.dataDirectory) in_memory=\(configuration.server.inMemory)")
                print("sync=\(configuration.storage.sync.rawValue)")
                for (name, enabled, listen) in [
                    ("etcd", configuration.etcd.enabled, configuration.etcd.listen),
                    ("redis", configuration.redis.enabled, configuration.redis.listen),
                    ("iceberg", configuration.iceberg.enabled, configuration.iceberg.listen),
                ] {
                    print("\(name): \(enabled ? "enabled on \(listen)" : "disabled")")
                }
                print("metrics: \(configuration.metrics.listen)")
            }
        }
    }

    struct Snapshot: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Snapshot tools.",
            subcommands: [Restore.self]
        )

        struct Restore: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract:
                    "Restore a snapshot (from the etcd Snapshot RPC, e.g. `etcdctl snapshot save`) into a new data directory."
            )

            @Argument(help: "The snapshot file.")
            var file: String

            @Option(help: "Data directory to create; it must not hold a database yet.")
            var dataDir: String

            func run() async throws {
                do {
                    try StoreSnapshot.restore(file: file, dataDirectory: dataDir)
                } catch {
                    fail("\(error)")
                }
                print("restored \(file) into \(dataDir)")
            }
        }
    }

    struct Version: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the version.")
        func run() async throws {
            print("strata \(StrataVersion.current)")
        }
    }
}

/// Reads and validates a config file, or the embedded default when `path` is nil. Exits with the located error.
private func loadConfiguration(path: String?) throws -> StrataConfiguration {
    guard let path else {
        return try parseOrFail(StrataConfiguration.defaultFileContents, file: "(built-in config.toml)")
    }
    guard let text = readTextFile(path) else {
        fail("cannot read configuration file '\(path)': \(String(cString: strerror(errno)))")
    }
    return try parseOrFail(text, file: path)
}

private func parseOrFail(_ text: String, file: String) throws -> StrataConfiguration {
    do {
        return try StrataConfiguration.parse(toml: text, file: file)
    } catch {
        fail("\(error)")
    }
}

private func readTextFile(_ path: String) -> String? {
    guard let file = fopen(path, "rb") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&buffer, 1, buffer.count, file)
        if n == 0 { break }
        bytes.append(contentsOf: buffer[0..<n])
        if bytes.count > 16 << 20 { return nil }
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Prints `strata: error: ...` and exits 1: the one way start-up errors reach the operator.
private func fail(_ message: String) -> Never {
    let line = Array("strata: error: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(1)
}
