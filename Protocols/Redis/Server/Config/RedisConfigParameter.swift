internal import Foundation

/// One `CONFIG GET`/`CONFIG SET` parameter of Redis 7.0 (the table is generated from Redis's own: the
/// `+Table.swift` file), with its validation. Strata applies the parameters that mean something to it (listed in
/// docs/redis.md) and keeps the others as values, so tools and test suites that set them back and forth work.
package struct RedisConfigParameter: Sendable {
    package enum Style: Sendable { case integer, memory, octal }

    package enum Kind: Sendable {
        case bool
        case string(emptyIsNull: Bool)
        case enumeration([String])
        case number(Int64, Int64, style: Style, percent: Bool, unsigned: Bool)
        /// Validated by hand (save, bind, client-output-buffer-limit, …).
        case special
    }

    package struct Flags: OptionSet, Sendable {
        package let rawValue: UInt8
        package init(rawValue: UInt8) { self.rawValue = rawValue }
        package static let immutable = Self(rawValue: 1)
        package static let protected = Self(rawValue: 2)
        package static let hidden = Self(rawValue: 4)
        package static let sensitive = Self(rawValue: 8)
        package static let multi = Self(rawValue: 16)
    }

    package let name: String
    package let alias: String?
    package let kind: Kind
    package let defaultValue: String
    package let flags: Flags

    /// Parameters whose values have their own grammar.
    static let special: [RedisConfigParameter] = [
        RedisConfigParameter(name: "dir", alias: nil, kind: .special, defaultValue: "", flags: [.protected]),
        RedisConfigParameter(
            name: "save",
            alias: nil,
            kind: .special,
            defaultValue: "3600 1 300 100 60 10000",
            flags: [.multi]
        ),
        RedisConfigParameter(
            name: "client-output-buffer-limit",
            alias: nil,
            kind: .special,
            defaultValue: "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
            flags: [.multi]
        ),
        RedisConfigParameter(
            name: "oom-score-adj-values",
            alias: nil,
            kind: .special,
            defaultValue: "0 200 800",
            flags: [.multi]
        ),
        RedisConfigParameter(name: "notify-keyspace-events", alias: nil, kind: .special, defaultValue: "", flags: []),
        RedisConfigParameter(name: "bind", alias: nil, kind: .special, defaultValue: "* -::*", flags: [.multi]),
        RedisConfigParameter(
            name: "replicaof",
            alias: "slaveof",
            kind: .special,
            defaultValue: "",
            flags: [.immutable, .multi]
        ),
        RedisConfigParameter(
            name: "latency-tracking-info-percentiles",
            alias: nil,
            kind: .special,
            defaultValue: "50 99 99.9",
            flags: [.multi]
        ),
    ]

    package static let all: [RedisConfigParameter] = generated + special

    /// By lower-case name and alias.
    package static let byName: [String: RedisConfigParameter] = {
        var table: [String: RedisConfigParameter] = [:]
        for parameter in all {
            table[parameter.name] = parameter
            if let alias = parameter.alias { table[alias] = parameter }
        }
        return table
    }()

    /// The value as CONFIG GET shows it after `value` was accepted (memory sizes in bytes, yes/no lower case), or
    /// Redis's reason for refusing it (after "CONFIG SET failed (possibly related to argument '…') - ").
    package func normalize(_ value: String) -> Result<String, ConfigRefusal> {
        switch kind {
        case .bool:
            switch value.lowercased() {
            case "yes": return .success("yes")
            case "no": return .success("no")
            default: return .failure(ConfigRefusal("argument must be 'yes' or 'no'"))
            }
        case .string:
            return .success(value)
        case .enumeration(let names):
            let words = flags.contains(.multi) ? value.split(separator: " ").map(String.init) : [value]
            guard !words.isEmpty, words.allSatisfy({ word in names.contains(word.lowercased()) }) else {
                return .failure(
                    ConfigRefusal("argument(s) must be one of the following: " + names.joined(separator: ", "))
                )
            }
            guard flags.contains(.multi) else { return .success(value.lowercased()) }
            // Flags read back in the table's order, as Redis names a bit set (the first name, 0, only alone).
            let given = Set(words.map { $0.lowercased() })
            let named = names.dropFirst().filter { given.contains($0) }
            return .success(named.isEmpty ? names[0] : named.joined(separator: " "))
        case .number(let lower, let upper, let style, let percent, let unsigned):
            return Self.normalizeNumber(value, lower, upper, style, percent, unsigned)
        case .special:
            return normalizeSpecial(value)
        }
    }

    private static func normalizeNumber(
        _ value: String,
        _ lower: Int64,
        _ upper: Int64,
        _ style: Style,
        _ percent: Bool,
        _ unsigned: Bool
    ) -> Result<String, ConfigRefusal> {
        var parsed: Int64? = nil
        var percentage = false
        if style == .memory { parsed = parseMemory(value) }
        if parsed == nil, percent, value.count > 1, value.hasSuffix("%"),
            let number = RedisNumber.parseInteger(Array(value.dropLast().utf8)), number >= 0
        {
            parsed = -number
            percentage = true
        }
        if parsed == nil, style == .octal { parsed = Int64(value, radix: 8) }
        if parsed == nil, style == .integer, !percent { parsed = RedisNumber.parseInteger(Array(value.utf8)) }
        guard let number = parsed else {
            switch style {
            case .memory where percent: return .failure(ConfigRefusal("argument must be a memory or percent value"))
            case .memory: return .failure(ConfigRefusal("argument must be a memory value"))
            case .octal: return .failure(ConfigRefusal("argument couldn't be parsed as an octal number"))
            case .integer: return .failure(ConfigRefusal("argument couldn't be parsed into an integer"))
            }
        }
        if percentage {
            if number < lower {
                return .failure(ConfigRefusal("percentage argument must be less or equal to \(-lower)"))
            }
            return .success("\(-number)%")
        }
        if unsigned {
            let magnitude = UInt64(bitPattern: number)
            if magnitude > UInt64(upper) || magnitude < UInt64(lower) {
                if style == .octal {
                    let bounds = "\(String(lower, radix: 8)) and \(String(upper, radix: 8))"
                    return .failure(ConfigRefusal("argument must be between \(bounds) inclusive"))
                }
                return .failure(ConfigRefusal("argument must be between \(lower) and \(upper) inclusive"))
            }
        } else if number > upper || number < lower {
            return .failure(ConfigRefusal("argument must be between \(lower) and \(upper) inclusive"))
        }
        return .success(style == .octal ? String(number, radix: 8) : "\(number)")
    }

    /// A percentile as Redis shows it: `%f` without trailing zeros (`50`, `99.9`).
    package static func trimmed(_ value: Double) -> String {
        var text = String(format: "%f", value)
        if text.contains(".") {
            while text.hasSuffix("0") { text.removeLast() }
            if text.hasSuffix(".") { text.removeLast() }
        }
        return text
    }

    /// Redis's `memtoull`: digits with an optional unit (b, k = 1000, kb = 1024, m, mb, g, gb; any case).
    package static func parseMemory(_ text: String) -> Int64? {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        let unit = text.dropFirst(digits.count).lowercased()
        let multiplier: UInt64
        switch unit {
        case "", "b": multiplier = 1
        case "k": multiplier = 1000
        case "kb": multiplier = 1024
        case "m": multiplier = 1_000_000
        case "mb": multiplier = 1 << 20
        case "g": multiplier = 1_000_000_000
        case "gb": multiplier = 1 << 30
        default: return nil
        }
        guard !digits.isEmpty, let value = UInt64(digits) else { return digits.isEmpty && !unit.isEmpty ? 0 : nil }
        let (product, overflow) = value.multipliedReportingOverflow(by: multiplier)
        guard !overflow else { return nil }
        return Int64(bitPattern: product)
    }

    private func normalizeSpecial(_ value: String) -> Result<String, ConfigRefusal> {
        let words = value.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        switch name {
        case "save":
            guard words.count % 2 == 0, words.allSatisfy({ Int64($0).map { $0 >= 0 } ?? false }) else {
                return .failure(ConfigRefusal("Invalid save parameters"))
            }
            return .success(words.joined(separator: " "))
        case "client-output-buffer-limit":
            guard words.count % 4 == 0 else {
                return .failure(ConfigRefusal("Wrong number of arguments in buffer limit configuration."))
            }
            var limits = RedisOutputLimits.parse(RedisOutputLimits.defaultText)!
            for index in stride(from: 0, to: words.count, by: 4) {
                guard let kind = RedisOutputLimits.Kind(name: words[index]) else {
                    return .failure(ConfigRefusal("Invalid client class specified in buffer limit configuration."))
                }
                guard let hard = Self.parseMemory(words[index + 1]), let soft = Self.parseMemory(words[index + 2]),
                    let seconds = Int64(words[index + 3]), hard >= 0, soft >= 0, seconds >= 0
                else {
                    return .failure(
                        ConfigRefusal("Error in hard, soft or soft_seconds setting in buffer limit configuration.")
                    )
                }
                limits.set(kind, hard: hard, soft: soft, seconds: seconds)
            }
            return .success(limits.text)
        case "notify-keyspace-events":
            guard let flags = RedisNotifyFlagsParser.parse(value) else {
                return .failure(ConfigRefusal("Invalid event class character. Use 'Ag$lshzxeKEtmdn'."))
            }
            return .success(flags)
        case "oom-score-adj-values":
            guard words.count == 3, words.allSatisfy({ Int($0).map { (-2000...2000).contains($0) } ?? false }) else {
                return .failure(ConfigRefusal("Invalid oom-score-adj-values, elements must be between -2000 and 2000."))
            }
            return .success(words.joined(separator: " "))
        case "latency-tracking-info-percentiles":
            var percentiles: [String] = []
            for word in words {
                guard let percentile = RedisNumber.parseDouble(Array(word.utf8)) else {
                    return .failure(ConfigRefusal("Invalid latency-tracking-info-percentiles parameters"))
                }
                guard (0...100).contains(percentile) else {
                    return .failure(
                        ConfigRefusal("latency-tracking-info-percentiles parameters should sit between [0.0,100.0]")
                    )
                }
                percentiles.append(Self.trimmed(percentile))
            }
            return .success(percentiles.joined(separator: " "))
        case "bind":
            guard words.count <= 16 else { return .failure(ConfigRefusal("Too many bind addresses specified.")) }
            return .success(words.joined(separator: " "))
        default:
            return .success(value)
        }
    }
}

/// Why CONFIG SET refused a value, in Redis's words.
package struct ConfigRefusal: Error, Sendable {
    package let message: String
    package init(_ message: String) { self.message = message }
}

/// `client-output-buffer-limit` for the three client classes.
package struct RedisOutputLimits: Sendable, Hashable {
    package enum Kind: Int, Sendable, CaseIterable {
        case normal = 0, replica, pubsub
        init?(name: String) {
            switch name.lowercased() {
            case "normal": self = .normal
            case "slave", "replica": self = .replica
            case "pubsub": self = .pubsub
            default: return nil
            }
        }
        var name: String { ["normal", "slave", "pubsub"][rawValue] }
    }

    package struct Limit: Sendable, Hashable {
        package var hard: Int64
        package var soft: Int64
        package var seconds: Int64
    }

    package var limits: [Limit]

    static let defaultText = "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"

    package static func parse(_ text: String) -> RedisOutputLimits? {
        let words = text.split(separator: " ").map(String.init)
        var limits = [Limit](repeating: Limit(hard: 0, soft: 0, seconds: 0), count: 3)
        guard words.count % 4 == 0 else { return nil }
        for index in stride(from: 0, to: words.count, by: 4) {
            guard let kind = Kind(name: words[index]), let hard = Int64(words[index + 1]),
                let soft = Int64(words[index + 2]), let seconds = Int64(words[index + 3])
            else { return nil }
            limits[kind.rawValue] = Limit(hard: hard, soft: soft, seconds: seconds)
        }
        return RedisOutputLimits(limits: limits)
    }

    mutating func set(_ kind: Kind, hard: Int64, soft: Int64, seconds: Int64) {
        limits[kind.rawValue] = Limit(hard: hard, soft: soft, seconds: seconds)
    }

    package subscript(_ kind: Kind) -> Limit { limits[kind.rawValue] }

    /// One class's limits as a redis.conf line's arguments (`normal 0 0 0`).
    func line(for kind: Kind) -> String {
        let limit = limits[kind.rawValue]
        return "\(kind.name) \(limit.hard) \(limit.soft) \(limit.seconds)"
    }

    var text: String {
        Kind.allCases.map { kind in
            let limit = limits[kind.rawValue]
            return "\(kind.name) \(limit.hard) \(limit.soft) \(limit.seconds)"
        }.joined(separator: " ")
    }
}
