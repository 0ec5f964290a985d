private import Logging
package import StrataCommon
private import StrataMVCC
private import StrataObservability
private import StrataRocksDB
private import TOMLKit

extension StrataConfiguration {
    /// The sections the core reads itself.
    package static let coreSections = ["server", "storage", "metrics"]

    /// Parses and validates a TOML document. `frontEnds` are the section names the front-ends of this build read;
    /// any other section or key is an error naming it and its line (with the closest known name). Absent keys keep
    /// their defaults.
    package static func parse(toml text: String, file: String = "config.toml", frontEnds: [String]) throws(ConfigError)
        -> Self
    {
        let locator = TOMLKeyLocator(text: text)
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigError(
                file: file,
                line: Int(error.source.begin.line),
                message: "syntax error: \(error.description)"
            )
        } catch {
            throw ConfigError(file: file, line: nil, message: "\(error)")
        }
        let document = ConfigDocument.section(table, path: [], locator: locator)
        var config = StrataConfiguration.defaults
        config.file = file
        let known = coreSections + frontEnds
        for name in document.values.keys.sorted(by: { (document.lines[$0] ?? 0) < (document.lines[$1] ?? 0) }) {
            guard known.contains(name) else {
                var message = "unknown key '\(name)'"
                if let suggestion = ConfigReader.closest(to: name, among: known) {
                    message += " (did you mean '\(suggestion)'?)"
                }
                throw ConfigError(file: file, line: document.lines[name], message: message)
            }
            guard case .table(let section) = document.values[name] else {
                throw ConfigError(
                    file: file,
                    line: document.lines[name],
                    message: "invalid value for '\(name)': expected a [\(name)] section"
                )
            }
            config.sections[name] = section
        }
        func section(_ name: String) -> ConfigSection {
            if case .table(let section) = document.values[name] { return section }
            return ConfigSection(path: [name])
        }
        var server = ConfigReader(section("server"), file: file)
        try config.server.read(from: &server)
        try server.finish()
        var storage = ConfigReader(section("storage"), file: file)
        try config.readStorage(from: &storage)
        try storage.finish()
        var metrics = ConfigReader(section("metrics"), file: file)
        var admin = AdminServer.Configuration.defaults
        try metrics.read("listen", into: &admin.listen)
        try metrics.finish()
        config.metrics = admin
        return config
    }

    /// `[storage]`: one section, read into the engine's and the core's configurations.
    private mutating func readStorage(from reader: inout ConfigReader) throws(ConfigError) {
        try reader.read("sync", into: &mvcc.sync)
        try reader.readInteger("sync_interval_ms", into: &mvcc.syncIntervalMilliseconds, in: 1...10_000)
        try reader.readSize(
            "block_cache_size",
            into: &rocksDB.blockCacheSizeBytes,
            in: (1 << 20)...(1 << 40),
            hint: "a size from 1MiB to 1TiB, like \"256MiB\""
        )
        try reader.read("compression", into: &rocksDB.compression)
        var idle = mvcc.idleFlush?.after ?? .zero
        try reader.readDuration(
            "idle_flush_after",
            into: &idle,
            in: .zero ... .seconds(86_400),
            hint: "a duration from 0s (off) to 24h, like \"10s\""
        )
        if idle == .zero {
            mvcc.idleFlush = nil
        } else {
            var policy = mvcc.idleFlush ?? .defaults
            policy.after = idle
            mvcc.idleFlush = policy
        }
        if let value = reader.value("min_free_space") {
            mvcc.minFreeSpace = try Self.freeSpaceReserve(value, reader: reader)
        }
        try reader.readInteger(
            "max_transaction_reads",
            into: &mvcc.transactionLimits.maxEntriesRead,
            in: 1_000...1_000_000_000
        )
    }

    /// `"256MiB"`, a number of bytes, or `"2%"` of the file system; 0 turns the guard off.
    private static func freeSpaceReserve(_ value: ConfigValue, reader: ConfigReader) throws(ConfigError)
        -> FreeSpaceReserve?
    {
        let hint = "a size like \"256MiB\", a share of the file system like \"2%\", or 0 (off)"
        switch value {
        case .integer(let bytes) where bytes >= 0:
            return bytes == 0 ? nil : .bytes(UInt64(bytes))
        case .string(let text) where text.hasSuffix("%"):
            guard let percent = Double(text.dropLast().trimmingPrefix(" ")), percent >= 0, percent < 100 else {
                throw reader.error("min_free_space", "expected \(hint)")
            }
            return percent == 0 ? nil : .percent(percent)
        case .string(let text):
            guard let size = ByteSize(parsing: text) else { throw reader.error("min_free_space", "expected \(hint)") }
            return size.bytes == 0 ? nil : .bytes(UInt64(size.bytes))
        default:
            throw reader.error("min_free_space", "expected \(hint)")
        }
    }
}

extension StrataConfiguration.Server {
    fileprivate mutating func read(from reader: inout ConfigReader) throws(ConfigError) {
        try reader.read("data_dir", into: &dataDirectory)
        try reader.read("in_memory", into: &inMemory)
        if let value = reader.value("log_level") {
            guard case .string(let text) = value, let level = Logger.Level(rawValue: text.lowercased()) else {
                let names = Logger.Level.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
                throw reader.error("log_level", "expected one of \(names)")
            }
            logLevel = level
        }
    }
}

/// TOMLKit's tables as the readers' sections, with every key's line.
private enum ConfigDocument {
    static func section(_ table: TOMLTable, path: [String], locator: TOMLKeyLocator) -> ConfigSection {
        var section = ConfigSection(path: path, line: path.isEmpty ? nil : locator.line(of: path))
        for key in table.keys {
            guard let value = table[key] else { continue }
            section.values[key] = convert(value, path: path + [key], locator: locator)
            section.lines[key] = locator.line(of: path + [key])
        }
        return section
    }

    static func convert(_ value: any TOMLValueConvertible, path: [String], locator: TOMLKeyLocator) -> ConfigValue {
        switch value.type {
        case .bool: return .bool(value.bool ?? false)
        case .int: return .integer(value.int ?? 0)
        case .double: return .float(value.double ?? 0)
        case .string: return .string(value.string ?? "")
        case .table:
            guard let table = value.table else { return .other("\(value)") }
            return .table(section(table, path: path, locator: locator))
        case .array:
            guard let array = value.array else { return .other("\(value)") }
            return .array(array.map { convert($0, path: path, locator: locator) })
        default:
            return .other("\(value)")
        }
    }
}
