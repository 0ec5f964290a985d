/// Reads one section of the configuration into a subsystem's own `Configuration`, whose property initial values are
/// the defaults: a key that is absent leaves its property alone. Wrong types and invalid values are errors naming the
/// key and its line; ``finish()`` reports keys nobody read (misspellings), with the closest known key.
///
/// ```swift
/// var reader = ConfigReader(section, file: file)
/// try reader.read("listen", into: &configuration.listen)
/// try reader.readInteger("max_txn_ops", into: &configuration.maxTxnOperations, in: 1...100_000)
/// try reader.finish()
/// ```
package struct ConfigReader {
    package let section: ConfigSection
    package let file: String
    private var known: [String] = []

    package init(_ section: ConfigSection, file: String) {
        self.section = section
        self.file = file
    }

    /// An error about `key` of this section, located on its line.
    package func error(_ key: String, _ message: String) -> ConfigError {
        ConfigError(
            file: file,
            line: section.lines[key] ?? section.line,
            message: "invalid value for '\((section.path + [key]).joined(separator: "."))': \(message)"
        )
    }

    /// The raw value of `key`, marking it as known.
    package mutating func value(_ key: String) -> ConfigValue? {
        known.append(key)
        return section.values[key]
    }

    package mutating func read(_ key: String, into target: inout Bool) throws(ConfigError) {
        guard let value = value(key) else { return }
        guard case .bool(let bool) = value else { throw error(key, "expected true or false, not \(value.kind)") }
        target = bool
    }

    package mutating func read(_ key: String, into target: inout String, allowEmpty: Bool = false) throws(ConfigError) {
        guard let value = value(key) else { return }
        guard case .string(let string) = value else { throw error(key, "expected a string, not \(value.kind)") }
        guard allowEmpty || !string.isEmpty else { throw error(key, "must not be empty") }
        target = string
    }

    package mutating func read(_ key: String, into target: inout [String]) throws(ConfigError) {
        guard let value = value(key) else { return }
        guard case .array(let items) = value else {
            throw error(key, "expected an array of strings, not \(value.kind)")
        }
        var strings: [String] = []
        for item in items {
            guard case .string(let string) = item else {
                throw error(key, "expected an array of strings, not one holding \(item.kind)")
            }
            strings.append(string)
        }
        target = strings
    }

    package mutating func read(_ key: String, into target: inout ListenAddress) throws(ConfigError) {
        guard let value = value(key) else { return }
        guard case .string(let text) = value else {
            throw error(key, "expected a string \"host:port\", not \(value.kind)")
        }
        do {
            target = try ListenAddress(parsing: text)
        } catch {
            throw self.error(key, error.reason)
        }
    }

    /// One of a string enum's raw values.
    package mutating func read<T: RawRepresentable & CaseIterable>(_ key: String, into target: inout T)
        throws(ConfigError) where T.RawValue == String
    {
        guard let value = value(key) else { return }
        let names = T.allCases.map { "\"\($0.rawValue)\"" }
        let list = names.dropLast().joined(separator: ", ") + (names.count > 1 ? " or " : "") + (names.last ?? "")
        guard case .string(let text) = value, let parsed = T(rawValue: text) else {
            let written: String = if case .string(let text) = value { "\"\(text)\"" } else { value.kind }
            throw error(key, "\(written) (expected \(list))")
        }
        target = parsed
    }

    package mutating func readInteger(_ key: String, into target: inout Int, in range: ClosedRange<Int>)
        throws(ConfigError)
    {
        guard let value = value(key) else { return }
        guard case .integer(let integer) = value else { throw error(key, "expected an integer, not \(value.kind)") }
        guard range.contains(integer) else {
            throw error(key, "\(integer) (expected \(range.lowerBound) to \(range.upperBound))")
        }
        target = integer
    }

    /// A size: a number of bytes, or a string with a unit (`"256MiB"`).
    package mutating func readSize(_ key: String, into target: inout Int, in range: ClosedRange<Int>, hint: String)
        throws(ConfigError)
    {
        guard let value = value(key) else { return }
        let bytes: Int?
        switch value {
        case .integer(let number): bytes = number
        case .string(let text): bytes = ByteSize(parsing: text)?.bytes
        default: bytes = nil
        }
        guard let bytes, range.contains(bytes) else { throw error(key, "expected \(hint)") }
        target = bytes
    }

    /// A duration: a number of seconds, or a string with a unit (`"10s"`, `"250ms"`, `"10m"`).
    package mutating func readDuration(
        _ key: String,
        into target: inout Duration,
        in range: ClosedRange<Duration>,
        hint: String
    ) throws(ConfigError) {
        guard let value = value(key) else { return }
        let duration: Duration?
        switch value {
        case .integer(let seconds): duration = seconds >= 0 ? .seconds(seconds) : nil
        case .string(let text): duration = Duration(parsing: text)
        default: duration = nil
        }
        guard let duration, range.contains(duration) else { throw error(key, "expected \(hint)") }
        target = duration
    }

    /// Keys of the section no read asked for: the first, in file order, is an error (with a suggestion).
    package func finish() throws(ConfigError) {
        let unknown = section.values.keys.filter { !known.contains($0) }
            .sorted { (section.lines[$0] ?? .max, $0) < (section.lines[$1] ?? .max, $1) }
        guard let first = unknown.first else { return }
        var message = "unknown key '\((section.path + [first]).joined(separator: "."))'"
        if let suggestion = Self.closest(to: first, among: known) {
            message += " (did you mean '\((section.path + [suggestion]).joined(separator: "."))'?)"
        }
        throw ConfigError(file: file, line: section.lines[first] ?? section.line, message: message)
    }

    /// The candidate within a few edits of `name`, for "did you mean".
    package static func closest(to name: String, among candidates: [String]) -> String? {
        let best = candidates.map { ($0, editDistance($0, name)) }.min { $0.1 < $1.1 }
        guard let best, best.1 <= max(2, name.count / 3) else { return nil }
        return best.0
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(
                    previous[j] + 1,
                    current[j - 1] + 1,
                    previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                )
            }
            previous = current
        }
        return previous[b.count]
    }
}
