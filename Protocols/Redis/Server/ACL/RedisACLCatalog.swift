/// The command table as ACL rules see it: an id per command and subcommand (bit positions in a selector's
/// permission bitmap), each one's categories, containers and their subcommands, parsed key specs.
///
/// Sentinel-only commands are left out, as a Redis server that is not a sentinel leaves them out of its table.
struct RedisACLCatalog: Sendable {
    struct Entry: Sendable {
        /// Full name, lower case (`config|get`).
        let name: String
        let id: Int
        let categories: RedisACLCategories
        let spec: RedisCommandSpec
        let parent: Int?
        var subcommands: [Int]
        let keySpecs: [RedisKeyFinder.Spec]
        /// Whether any key spec names a key (Redis's doesCommandHaveKeys).
        let hasKeys: Bool
    }

    let entries: [Entry]
    /// Top-level commands in the order rules are described and categories listed (by name).
    let topLevel: [Int]
    let byName: [String: Int]
    /// Number of bits a selector needs: every id, plus the "future commands" bit (`+@all`).
    var bitCount: Int { entries.count + 1 }
    var futureBit: Int { entries.count }

    static let shared = RedisACLCatalog()

    private init() {
        let specs = (RedisCommandSpec.all + RedisCommandSpec.additions)
            .filter { !$0.flags.contains(.onlySentinel) }
            .sorted { $0.name < $1.name }
        var entries: [Entry] = []
        var byName: [String: Int] = [:]
        var topLevel: [Int] = []
        for spec in specs {
            let id = entries.count
            var parent: Int? = nil
            if let bar = spec.name.firstIndex(of: "|") {
                parent = byName[String(spec.name[..<bar])]
            }
            let keySpecs = RedisKeyFinder.keySpecs(spec.name)
            entries.append(
                Entry(
                    name: spec.name,
                    id: id,
                    categories: Self.categories(of: spec),
                    spec: spec,
                    parent: parent,
                    subcommands: [],
                    keySpecs: keySpecs,
                    hasKeys: keySpecs.contains { !$0.flags.contains("not_key") } || spec.flags.contains(.movableKeys)
                )
            )
            byName[spec.name] = id
            if let parent { entries[parent].subcommands.append(id) } else { topLevel.append(id) }
        }
        self.entries = entries
        self.byName = byName
        self.topLevel = topLevel
    }

    /// The categories COMMAND INFO lists (the table's own plus those Redis derives from the flags).
    private static func categories(of spec: RedisCommandSpec) -> RedisACLCategories {
        var result: RedisACLCategories = []
        if case .array(let fields)? = RedisCommandSpec.documentation.info[spec.name], fields.count > 6,
            case .set(let names) = fields[6]
        {
            for case .simple(let name) in names {
                if let category = RedisACLCategories(name: String(name.dropFirst())) { result.insert(category) }
            }
        } else {
            // Strata's additions (newer than 7.0): as Redis 7.2 declares them.
            result = [.slow, .connection]
        }
        return result
    }

    /// Redis's ACLLookupCommand: `name` or `container|sub`, case-insensitive.
    func lookup(_ name: String) -> Int? {
        let lower = name.lowercased()
        let parts = lower.split(separator: "|", omittingEmptySubsequences: false)
        switch parts.count {
        case 1: return byName[lower].flatMap { entries[$0].parent == nil ? $0 : nil }
        case 2:
            guard let container = byName[String(parts[0])], !entries[container].subcommands.isEmpty else { return nil }
            return byName[lower]
        default: return nil
        }
    }

    /// The id of the command `arguments` run (its subcommand for containers), as the dispatcher resolves it.
    func resolve(_ arguments: [[UInt8]]) -> Int? {
        guard let spec = RedisCommandTable.lookupSpec(arguments) else { return nil }
        return byName[spec.name]
    }

    /// Every command (containers before their subcommands) in description order.
    func forEach(_ body: (Entry) -> Void) {
        for id in topLevel {
            body(entries[id])
            for sub in entries[id].subcommands { body(entries[sub]) }
        }
    }
}

/// Redis's ACL command categories, in its order (which ACL CAT and the rule descriptions follow).
struct RedisACLCategories: OptionSet, Sendable, Hashable {
    let rawValue: UInt32

    static let names = [
        "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap", "hyperloglog", "geo",
        "stream", "pubsub", "admin", "fast", "slow", "blocking", "dangerous", "connection", "transaction", "scripting",
    ]

    init(rawValue: UInt32) { self.rawValue = rawValue }

    init?(name: String) {
        guard let index = Self.names.firstIndex(of: name.lowercased()) else { return nil }
        self.init(rawValue: 1 << UInt32(index))
    }

    init(index: Int) { self.init(rawValue: 1 << UInt32(index)) }

    static let fast = Self(name: "fast")!
    static let slow = Self(name: "slow")!
    static let connection = Self(name: "connection")!
}
