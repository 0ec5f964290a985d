internal import ArgumentParser
private import Logging
private import StrataCommon
private import StrataConfig
private import StrataFrontEnd
private import StrataMVCC
private import StrataObservability
private import StrataServer

#if canImport(Glibc)
    private import Glibc
#endif

/// `strata …`, or a reference server's command line: `strata etcd …` and the binary run through a symlink named after
/// a registered front-end's personality (`etcd`).
@main
enum StrataMain {
    static func main() async {
        let arguments = CommandLine.arguments
        let invokedAs = arguments.first.map { String($0.split(separator: "/").last ?? "") } ?? ""
        let personalities = StrataServer.frontEnds.compactMap { registration in
            registration.personality.map { (registration.name, $0) }
        }
        if let (name, personality) = personalities.first(where: { $0.1.command == invokedAs }) {
            await runPersonality(personality, frontEnd: name, arguments: Array(arguments.dropFirst()))
        } else if arguments.count > 1,
            let (name, personality) = personalities.first(where: { $0.1.command == arguments[1] })
        {
            await runPersonality(personality, frontEnd: name, arguments: Array(arguments.dropFirst(2)))
        } else {
            await StrataCommand.main()
        }
    }
}

struct StrataCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strata",
        abstract: "etcd, Redis and an Iceberg REST catalog in one process, over one RocksDB-backed MVCC store.",
        discussion: """
            Personalities, for test harnesses that exec a reference server: \
            \(StrataServer.frontEnds.compactMap { $0.personality.map { "strata \($0.command) [its flags]" } }
            .joined(separator: ", ")) (or this binary run through a symlink of that name).
            """,
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
            if let dataDir { configuration.core.server.dataDirectory = dataDir }
            if inMemory { configuration.core.server.inMemory = true }
            if let logLevel {
                guard let level = Logger.Level(rawValue: logLevel.lowercased()) else {
                    throw ValidationError("invalid --log-level '\(logLevel)'")
                }
                configuration.core.server.logLevel = level
            }
            await serve(configuration)
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
                let core = configuration.core
                print("\(file): OK")
                print("data_dir=\(core.server.dataDirectory) in_memory=\(core.server.inMemory)")
                print("sync=\(core.mvcc.sync.rawValue)")
                for (registration, frontEnd) in configuration.frontEnds {
                    print("\(registration.name): \(frontEnd.summary)")
                }
                print("metrics: \(core.metrics.map { "\($0.listen)" } ?? "disabled")")
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

/// Runs the server with `configuration` until shutdown; start-up errors exit 1.
private func serve(_ configuration: ServerConfiguration) async {
    let level = configuration.core.server.logLevel
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

/// A reference server's command line: parsed by the front-end's personality, served with the built-in defaults for
/// everything it does not set, the front-end alone.
private func runPersonality(_ personality: Personality, frontEnd: String, arguments: [String]) async {
    var environment: [String: String] = [:]
    var pointer = environ
    while let entry = pointer.pointee {
        let text = String(cString: entry)
        if let equals = text.firstIndex(of: "=") {
            environment[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
        pointer += 1
    }
    switch personality.parse(arguments, environment) {
    case .exit(let output, let status):
        let bytes = Array(output.utf8)
        _ = bytes.withUnsafeBytes { write(status == 0 ? 1 : 2, $0.baseAddress, $0.count) }
        exit(status)
    case .serve(let settings, let frontEndConfiguration):
        var configuration: ServerConfiguration
        do {
            configuration = try ServerConfiguration.defaults.serving(only: frontEnd, with: frontEndConfiguration)
        } catch {
            fail("\(error)")
        }
        if let directory = settings.dataDirectory { configuration.core.server.dataDirectory = directory }
        if let inMemory = settings.inMemory { configuration.core.server.inMemory = inMemory }
        if let sync = settings.sync { configuration.core.mvcc.sync = sync }
        if let level = settings.logLevel.flatMap(Logger.Level.init(rawValue:)) {
            configuration.core.server.logLevel = level
        }
        configuration.core.metrics = settings.adminListen.map { listen in
            var admin = AdminServer.Configuration.defaults
            admin.listen = listen
            return admin
        }
        await serve(configuration)
    }
}

/// Reads and validates a config file, or the embedded default when `path` is nil. Exits with the located error.
private func loadConfiguration(path: String?) throws -> ServerConfiguration {
    guard let path else {
        return parseOrFail(StrataConfiguration.defaultFileContents, file: "(built-in config.toml)")
    }
    guard let text = readTextFile(path) else {
        fail("cannot read configuration file '\(path)': \(String(cString: strerror(errno)))")
    }
    return parseOrFail(text, file: path)
}

private func parseOrFail(_ text: String, file: String) -> ServerConfiguration {
    do {
        return try ServerConfiguration.load(toml: text, file: file)
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
