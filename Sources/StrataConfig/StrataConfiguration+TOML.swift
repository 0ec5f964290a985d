private import Logging
private import StrataCommon
private import StrataObservability
private import StrataRocksDB
private import TOMLKit

extension StrataConfiguration {
    /// Parses and validates a TOML document. Unknown keys, wrong types and invalid values are errors that name the
    /// key and its line; absent keys keep their defaults.
    package static func parse(toml text: String, file: String = "config.toml") throws(ConfigError) -> Self {
        let locator = TOMLKeyLocator(text: text)
        let document: ConfigFile
        do {
            document = try TOMLDecoder(strictDecoding: true).decode(ConfigFile.self, from: text)
        } catch let error as TOMLParseError {
            throw ConfigError(
                file: file,
                line: Int(error.source.begin.line),
                message: "syntax error: \(error.description)"
            )
        } catch let error as UnexpectedKeysError {
            throw Self.unknownKeyError(error, locator: locator, file: file)
        } catch let error as DecodingError {
            throw Self.decodingError(error, locator: locator, file: file)
        } catch {
            throw ConfigError(file: file, line: nil, message: "\(error)")
        }
        return try document.resolve(locator: locator, file: file)
    }

    private static func unknownKeyError(_ error: UnexpectedKeysError, locator: TOMLKeyLocator, file: String)
        -> ConfigError
    {
        let paths = error.keys.map { key, codingPath in Self.keyPath(codingPath, key) }
        // Report the first unknown key in file order.
        let located = paths.map { (path: $0, line: locator.line(of: $0)) }
            .sorted {
                ($0.line ?? .max, $0.path.joined(separator: ".")) < ($1.line ?? .max, $1.path.joined(separator: "."))
            }
        let first = located[0]
        var message = "unknown key '\(first.path.joined(separator: "."))'"
        if let suggestion = ConfigFile.suggestion(for: first.path) {
            message += " (did you mean '\(suggestion)'?)"
        }
        return ConfigError(file: file, line: first.line, message: message)
    }

    private static func decodingError(_ error: DecodingError, locator: TOMLKeyLocator, file: String) -> ConfigError {
        let path: [String]
        let detail: String
        switch error {
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            path = context.codingPath.map(\.stringValue)
            detail = "expected \(ConfigFile.expectedType[path.joined(separator: ".")] ?? Self.typeName(type))"
        case .keyNotFound(let key, let context):
            // Every key is optional, so TOMLKit only says "not found" when the value has the wrong type.
            path = Self.keyPath(context.codingPath, key.stringValue)
            detail = "expected \(ConfigFile.expectedType[path.joined(separator: ".")] ?? "another type")"
        case .dataCorrupted(let context):
            path = context.codingPath.map(\.stringValue)
            detail = context.debugDescription
        @unknown default:
            path = []
            detail = "\(error)"
        }
        return ConfigError(
            file: file,
            line: locator.line(of: path),
            message: "invalid value for '\(path.joined(separator: "."))': \(detail)"
        )
    }

    /// TOMLKit's coding paths sometimes already end with the key itself.
    private static func keyPath(_ codingPath: [any CodingKey], _ key: String) -> [String] {
        let path = codingPath.map(\.stringValue)
        return path.last == key ? path : path + [key]
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Bool.Type: "true or false"
        case is String.Type: "a string"
        case is Int.Type: "an integer"
        default: "\(type)"
        }
    }
}

// MARK: - The file's shape

/// The TOML document as written: every key optional, names as in the file.
private struct ConfigFile: Decodable {
    var server: ServerSection?
    var storage: StorageSection?
    var etcd: EtcdSection?
    var redis: FrontEndSection?
    var iceberg: IcebergSection?
    var metrics: MetricsSection?

    struct ServerSection: Decodable {
        var data_dir: String?
        var in_memory: Bool?
        var log_level: String?
    }

    struct StorageSection: Decodable {
        var sync: String?
        var sync_interval_ms: Int?
        var block_cache_size: SizeValue?
        var compression: String?
        var idle_flush_after: DurationValue?
    }

    struct FrontEndSection: Decodable {
        var enabled: Bool?
        var listen: String?
    }

    struct EtcdSection: Decodable {
        var enabled: Bool?
        var listen: String?
        var name: String?
        var max_request_bytes: SizeValue?
        var max_txn_ops: Int?
        var quota_backend_bytes: SizeValue?
        var progress_notify_interval: DurationValue?
        var max_concurrent_streams: Int?
        var max_watchers_per_stream: Int?
    }

    struct IcebergSection: Decodable {
        var enabled: Bool?
        var listen: String?
        var warehouse: String?
    }

    struct MetricsSection: Decodable {
        var listen: String?
    }

    /// A size written as an integer number of bytes or a string with a unit.
    enum SizeValue: Decodable {
        case bytes(Int)
        case text(String)

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let bytes = try? container.decode(Int.self) {
                self = .bytes(bytes)
            } else {
                self = .text(try container.decode(String.self))
            }
        }
    }

    /// A duration written as a number of seconds or a string with a unit.
    enum DurationValue: Decodable {
        case seconds(Int)
        case text(String)

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let seconds = try? container.decode(Int.self) {
                self = .seconds(seconds)
            } else {
                self = .text(try container.decode(String.self))
            }
        }

        var duration: Duration? {
            switch self {
            case .seconds(let seconds): seconds >= 0 ? .seconds(seconds) : nil
            case .text(let text): Duration(parsing: text)
            }
        }
    }

    /// Every key the file may contain, for "did you mean" hints.
    static let knownKeys: [String: [String]] = [
        "": ["server", "storage", "etcd", "redis", "iceberg", "metrics"],
        "server": ["data_dir", "in_memory", "log_level"],
        "storage": ["sync", "sync_interval_ms", "block_cache_size", "compression", "idle_flush_after"],
        "etcd": [
            "enabled", "listen", "name", "max_request_bytes", "max_txn_ops", "quota_backend_bytes",
            "progress_notify_interval", "max_concurrent_streams", "max_watchers_per_stream",
        ],
        "redis": ["enabled", "listen"],
        "iceberg": ["enabled", "listen", "warehouse"],
        "metrics": ["listen"],
    ]

    /// What each key takes, for type errors.
    static let expectedType: [String: String] = [
        "server.data_dir": "a string", "server.in_memory": "true or false", "server.log_level": "a string",
        "storage.sync": "a string", "storage.sync_interval_ms": "an integer (milliseconds)",
        "storage.block_cache_size": "a size such as \"256MiB\" or a number of bytes", "storage.compression": "a string",
        "storage.idle_flush_after": "a duration such as \"10s\" or \"0s\", or a number of seconds",
        "etcd.enabled": "true or false", "etcd.listen": "a string \"host:port\"", "etcd.name": "a string",
        "etcd.max_request_bytes": "a size such as \"1536KiB\" or a number of bytes", "etcd.max_txn_ops": "an integer",
        "etcd.quota_backend_bytes": "a size such as \"2GiB\" or a number of bytes",
        "etcd.progress_notify_interval": "a duration such as \"10m\" or \"30s\", or a number of seconds",
        "etcd.max_concurrent_streams": "an integer", "etcd.max_watchers_per_stream": "an integer",
        "redis.enabled": "true or false", "redis.listen": "a string \"host:port\"",
        "iceberg.enabled": "true or false", "iceberg.listen": "a string \"host:port\"", "iceberg.warehouse": "a string",
        "metrics.listen": "a string \"host:port\"",
    ]

    static func suggestion(for path: [String]) -> String? {
        guard let last = path.last else { return nil }
        let section = path.dropLast().joined(separator: ".")
        guard let candidates = knownKeys[section] else { return nil }
        let best = candidates.map { ($0, editDistance($0, last)) }.min { $0.1 < $1.1 }
        guard let best, best.1 <= max(2, last.count / 3) else { return nil }
        return (path.dropLast() + [best.0]).joined(separator: ".")
    }

    func resolve(locator: TOMLKeyLocator, file: String) throws(ConfigError) -> StrataConfiguration {
        var config = StrataConfiguration.defaults
        func fail(_ path: [String], _ message: String) -> ConfigError {
            ConfigError(
                file: file,
                line: locator.line(of: path),
                message: "invalid value for '\(path.joined(separator: "."))': \(message)"
            )
        }
        func address(_ text: String?, _ path: [String], default value: ListenAddress) throws(ConfigError)
            -> ListenAddress
        {
            guard let text else { return value }
            do {
                return try ListenAddress(parsing: text)
            } catch {
                throw fail(path, error.reason)
            }
        }

        func size(_ value: SizeValue, _ path: [String], _ range: ClosedRange<Int>, _ hint: String) throws(ConfigError)
            -> Int
        {
            let bytes: Int?
            switch value {
            case .bytes(let n): bytes = n
            case .text(let text): bytes = ByteSize(parsing: text)?.bytes
            }
            guard let bytes, range.contains(bytes) else { throw fail(path, "expected \(hint)") }
            return bytes
        }

        func integer(_ value: Int, _ path: [String], _ range: ClosedRange<Int>) throws(ConfigError) -> Int {
            guard range.contains(value) else {
                throw fail(path, "\(value) (expected \(range.lowerBound) to \(range.upperBound))")
            }
            return value
        }

        if let server {
            if let dir = server.data_dir {
                guard !dir.isEmpty else { throw fail(["server", "data_dir"], "must not be empty") }
                config.server.dataDirectory = dir
            }
            if let inMemory = server.in_memory { config.server.inMemory = inMemory }
            if let level = server.log_level {
                guard let parsed = Logger.Level(rawValue: level.lowercased()) else {
                    let names = Logger.Level.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
                    throw fail(["server", "log_level"], "\"\(level)\" (expected one of \(names))")
                }
                config.server.logLevel = parsed
            }
        }
        if let storage {
            if let sync = storage.sync {
                guard let mode = SyncMode(rawValue: sync) else {
                    throw fail(["storage", "sync"], "\"\(sync)\" (expected \"always\", \"batch\" or \"none\")")
                }
                config.storage.sync = mode
            }
            if let interval = storage.sync_interval_ms {
                config.storage.syncIntervalMilliseconds = try integer(
                    interval,
                    ["storage", "sync_interval_ms"],
                    1...10_000
                )
            }
            if let value = storage.block_cache_size {
                config.storage.rocksDB.blockCacheSizeBytes = try size(
                    value,
                    ["storage", "block_cache_size"],
                    (1 << 20)...(1 << 40),
                    "a size from 1MiB to 1TiB, like \"256MiB\""
                )
            }
            if let compression = storage.compression {
                guard let parsed = RocksDB.Compression(rawValue: compression) else {
                    throw fail(
                        ["storage", "compression"],
                        "\"\(compression)\" (expected \"none\", \"snappy\", \"lz4\" or \"zstd\")"
                    )
                }
                config.storage.rocksDB.compression = parsed
            }
            if let value = storage.idle_flush_after {
                guard let after = value.duration, after >= .zero, after <= .seconds(86_400) else {
                    throw fail(
                        ["storage", "idle_flush_after"],
                        "expected a duration from 0s (off) to 24h, like \"10s\""
                    )
                }
                config.storage.idleFlushAfter = after == .zero ? nil : after
            }
        }
        if let etcd {
            if let enabled = etcd.enabled { config.etcd.enabled = enabled }
            config.etcd.listen = try address(etcd.listen, ["etcd", "listen"], default: config.etcd.listen)
            if let name = etcd.name {
                guard !name.isEmpty else { throw fail(["etcd", "name"], "must not be empty") }
                config.etcd.name = name
            }
            if let value = etcd.max_request_bytes {
                config.etcd.maxRequestBytes = try size(
                    value,
                    ["etcd", "max_request_bytes"],
                    1024...(64 << 20),
                    "a size from 1KiB to 64MiB, like \"1536KiB\""
                )
            }
            if let ops = etcd.max_txn_ops {
                config.etcd.maxTxnOperations = try integer(ops, ["etcd", "max_txn_ops"], 1...100_000)
            }
            if let value = etcd.quota_backend_bytes {
                config.etcd.quotaBackendBytes = Int64(
                    try size(
                        value,
                        ["etcd", "quota_backend_bytes"],
                        (1 << 20)...(1 << 50),
                        "a size from 1MiB to 1PiB, like \"8GiB\""
                    )
                )
            }
            if let value = etcd.progress_notify_interval {
                guard let interval = value.duration, interval >= .milliseconds(100), interval <= .seconds(86_400)
                else {
                    throw fail(
                        ["etcd", "progress_notify_interval"],
                        "expected a duration from 100ms to 24h, like \"10m\""
                    )
                }
                config.etcd.progressNotifyInterval = interval
            }
            if let streams = etcd.max_concurrent_streams {
                config.etcd.maxConcurrentStreams = try integer(
                    streams,
                    ["etcd", "max_concurrent_streams"],
                    1...Int(Int32.max)
                )
            }
            if let watchers = etcd.max_watchers_per_stream {
                config.etcd.maxWatchersPerStream = try integer(
                    watchers,
                    ["etcd", "max_watchers_per_stream"],
                    1...10_000_000
                )
            }
        }
        if let redis {
            if let enabled = redis.enabled { config.redis.enabled = enabled }
            config.redis.listen = try address(redis.listen, ["redis", "listen"], default: config.redis.listen)
        }
        if let iceberg {
            if let enabled = iceberg.enabled { config.iceberg.enabled = enabled }
            config.iceberg.listen = try address(iceberg.listen, ["iceberg", "listen"], default: config.iceberg.listen)
            if let warehouse = iceberg.warehouse {
                guard !warehouse.isEmpty else { throw fail(["iceberg", "warehouse"], "must not be empty") }
                config.iceberg.warehouse = warehouse
            }
        }
        if let metrics {
            config.metrics.listen = try address(metrics.listen, ["metrics", "listen"], default: config.metrics.listen)
        }
        try config.validateListeners(locator: locator, file: file)
        return config
    }
}

extension StrataConfiguration {
    /// Two enabled listeners on one port can never both bind; say so before starting anything.
    fileprivate func validateListeners(locator: TOMLKeyLocator, file: String) throws(ConfigError) {
        var seen: [Int: String] = [:]
        let listeners: [(String, Bool, ListenAddress)] = [
            ("etcd", etcd.enabled, etcd.listen), ("redis", redis.enabled, redis.listen),
            ("iceberg", iceberg.enabled, iceberg.listen), ("metrics", true, metrics.listen),
        ]
        for (section, enabled, address) in listeners where enabled && address.port != 0 {
            if let other = seen[address.port] {
                throw ConfigError(
                    file: file,
                    line: locator.line(of: [section, "listen"]) ?? locator.line(of: [other, "listen"]),
                    message: "'\(section).listen' uses port \(address.port), already used by '\(other).listen'"
                )
            }
            seen[address.port] = section
        }
    }
}

private func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a)
    let b = Array(b)
    guard !a.isEmpty else { return b.count }
    guard !b.isEmpty else { return a.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}
