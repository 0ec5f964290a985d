internal import Foundation

/// Command flags, as Redis 7.0's command table declares them (bit order = the generator's).
package struct RedisCommandFlags: OptionSet, Sendable, Hashable {
    package let rawValue: UInt32
    package init(rawValue: UInt32) { self.rawValue = rawValue }

    package static let write = Self(rawValue: 1 << 0)
    package static let readonly = Self(rawValue: 1 << 1)
    package static let denyOOM = Self(rawValue: 1 << 2)
    package static let admin = Self(rawValue: 1 << 4)
    package static let pubsub = Self(rawValue: 1 << 5)
    package static let noScript = Self(rawValue: 1 << 6)
    package static let blocking = Self(rawValue: 1 << 7)
    package static let loading = Self(rawValue: 1 << 8)
    package static let stale = Self(rawValue: 1 << 9)
    package static let skipMonitor = Self(rawValue: 1 << 10)
    package static let skipSlowlog = Self(rawValue: 1 << 11)
    package static let fast = Self(rawValue: 1 << 13)
    package static let noAuth = Self(rawValue: 1 << 14)
    package static let noMandatoryKeys = Self(rawValue: 1 << 15)
    package static let noMulti = Self(rawValue: 1 << 17)
    package static let movableKeys = Self(rawValue: 1 << 18)
    package static let allowBusy = Self(rawValue: 1 << 19)
    package static let mayReplicate = Self(rawValue: 1 << 20)
    package static let onlySentinel = Self(rawValue: 1 << 22)
    package static let protected = Self(rawValue: 1 << 23)
}

/// One command or subcommand of Redis 7.0's table (generated: `RedisCommandSpec+Table.swift`).
package struct RedisCommandSpec: Sendable {
    /// Lower case; subcommands as `container|sub`.
    package let name: String
    /// N = exactly N arguments including the name (and the subcommand); -N = at least N.
    package let arity: Int
    package let flags: RedisCommandFlags
    /// The legacy key range of COMMAND INFO (used by COMMAND GETKEYS).
    package let firstKey: Int
    package let lastKey: Int
    package let keyStep: Int
    package let group: String

    /// Whether `count` arguments (name included) satisfy the arity.
    @inline(__always)
    package func accepts(_ count: Int) -> Bool {
        arity > 0 ? count == arity : count >= -arity
    }

    /// Commands newer than Redis 7.0 that clients send and Strata answers (CLIENT SETINFO and CLIENT NO-TOUCH, 7.2).
    static let additions: [RedisCommandSpec] = [
        RedisCommandSpec(
            name: "client|setinfo",
            arity: 4,
            flags: [.noScript, .loading, .stale],
            firstKey: 0,
            lastKey: 0,
            keyStep: 0,
            group: "connection"
        ),
        RedisCommandSpec(
            name: "client|no-touch",
            arity: 3,
            flags: [.noScript, .loading, .stale],
            firstKey: 0,
            lastKey: 0,
            keyStep: 0,
            group: "connection"
        ),
    ]

    /// By full name.
    package static let byName: [String: RedisCommandSpec] = Dictionary(
        uniqueKeysWithValues: (all + additions).map { ($0.name, $0) }
    )

    /// Subcommand names of each container.
    package static let subcommands: [String: [String]] = {
        var table: [String: [String]] = [:]
        for spec in all {
            guard let bar = spec.name.firstIndex(of: "|") else { continue }
            table[String(spec.name[..<bar]), default: []].append(spec.name)
        }
        return table
    }()

    /// The COMMAND INFO and COMMAND DOCS replies of every command, decoded on first use.
    package static let documentation: (info: [String: RESPValue], docs: [String: RESPValue]) = {
        guard let data = replies.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let info = object["info"] as? [String: Any], let docs = object["docs"] as? [String: Any]
        else { return ([:], [:]) }
        return (info.mapValues(decode), docs.mapValues(decode))
    }()

    /// The generator's tagged JSON: strings are bulk strings, numbers integers, `{"+": s}` a status, `{"a"|"s"|"m":
    /// [...]}` an array, a set or a map (keys and values alternating).
    private static func decode(_ value: Any) -> RESPValue {
        if let text = value as? String { return .bulk(Array(text.utf8)) }
        if let number = value as? NSNumber { return .integer(number.int64Value) }
        guard let object = value as? [String: Any], let (tag, content) = object.first else { return .null }
        switch tag {
        case "+": return .simple(content as? String ?? "")
        case "a": return .array((content as? [Any] ?? []).map(decode))
        case "s": return .set((content as? [Any] ?? []).map(decode))
        default: return .map((content as? [Any] ?? []).map(decode))
        }
    }
}
