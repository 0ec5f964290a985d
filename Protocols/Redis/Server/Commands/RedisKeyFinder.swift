internal import StrataRedisStore

/// COMMAND GETKEYS: the key positions of a full command line, from its key specs (Redis 7.0's algorithm over the
/// generated table's specs; commands whose specs are incomplete or flag-variable fall back to the legacy range).
enum RedisKeyFinder {
    struct Key {
        let position: Int
        let flags: [String]
    }

    static func keys(_ arguments: [[UInt8]]) throws(RedisError) -> [Key] {
        let command: RedisCommandSpec
        switch RedisCommandTable.lookupSpec(arguments) {
        case .some(let spec): command = spec
        case .none: throw .err("Invalid command specified")
        }
        let specs = keySpecs(command.name)
        let hasKeys = specs.contains { !$0.flags.contains("not_key") } || command.flags.contains(.movableKeys)
        guard hasKeys else { throw .err("The command has no key arguments") }
        guard command.accepts(arguments.count) else {
            throw .err("Invalid number of arguments specified for command")
        }
        let (found, valid) = locate(command, specs: specs, arguments)
        if !valid && found.isEmpty && !command.flags.contains(.noMandatoryKeys) {
            throw .err("Invalid arguments specified for command")
        }
        if found.isEmpty && !command.flags.contains(.noMandatoryKeys) {
            throw .err("Invalid arguments specified for command")
        }
        return found
    }

    /// The keys of a command line (Redis's getKeysFromCommandWithSpecs), and whether every spec could be applied.
    static func locate(_ command: RedisCommandSpec, specs: [Spec], _ arguments: [[UInt8]]) -> (keys: [Key], valid: Bool)
    {
        // SORT's STORE spec is incomplete (it cannot say which STORE counts): Redis falls back to its own parser.
        if command.name == "sort" { return (sortKeys(arguments), true) }
        // MIGRATE's key is its third argument, or, when that is empty, every argument after KEYS.
        if command.name == "migrate" { return (migrateKeys(arguments), true) }
        // Variable flags, which Redis resolves with the command's own parser.
        if command.name == "set" { return ([setKey(arguments)], true) }
        if command.name == "bitfield" { return ([bitfieldKey(arguments)], true) }
        var found: [Key] = []
        var valid = true
        let argc = arguments.count
        for spec in specs where !spec.flags.contains("not_key") {
            var first = 0
            switch spec.begin {
            case .index(let position):
                first = position
            case .keyword(let keyword, let startFrom):
                let start = startFrom > 0 ? startFrom : argc + startFrom
                let end = startFrom > 0 ? argc - 1 : 1
                var index = start
                while index != end {
                    if index >= argc || index < 1 { break }
                    if String(decoding: arguments[index], as: UTF8.self).uppercased() == keyword {
                        first = index + 1
                        break
                    }
                    index += start <= end ? 1 : -1
                }
                if first == 0 { continue }
            case .unknown:
                valid = false
                continue
            }
            var last: Int
            var step: Int
            switch spec.find {
            case .range(let lastKey, let keyStep, let limit):
                step = keyStep
                if lastKey >= 0 {
                    last = first + lastKey
                } else if limit == 0 {
                    last = argc + lastKey
                } else {
                    last = first + ((argc - first) / limit + lastKey)
                }
            case .keynum(let keynumIndex, let firstKey, let keyStep):
                step = keyStep
                guard first + keynumIndex < argc, let count = RedisNumber.parseInteger(arguments[first + keynumIndex]),
                    count >= 0, count <= Int64(argc)
                else {
                    valid = false
                    continue
                }
                first += firstKey
                last = first + Int(count) - 1
            case .unknown:
                valid = false
                continue
            }
            if last >= argc || last < first || first >= argc {
                valid = false
                continue
            }
            var index = first
            while index <= last {
                found.append(Key(position: index, flags: spec.flags))
                index += max(step, 1)
            }
            if spec.flags.contains("incomplete") { valid = false }
        }
        return (found, valid)
    }

    /// Redis's `setGetKeys`: with GET the key is read too.
    private static func setKey(_ arguments: [[UInt8]]) -> Key {
        let reads = arguments.dropFirst(3).contains { String(decoding: $0, as: UTF8.self).lowercased() == "get" }
        return Key(position: 1, flags: reads ? ["RW", "access", "update"] : ["OW", "update"])
    }

    /// Redis's `bitfieldGetKeys`: read-only when every operation is a GET (OVERFLOW aside).
    private static func bitfieldKey(_ arguments: [[UInt8]]) -> Key {
        var readOnly = true
        var index = 2
        scan: while index < arguments.count {
            let remaining = arguments.count - index - 1
            switch String(decoding: arguments[index], as: UTF8.self).lowercased() {
            case "get" where remaining >= 2: index += 2
            case "overflow" where remaining >= 1: index += 1
            default:
                // SET, INCRBY, or a syntax error (safer to assume a write).
                readOnly = false
                break scan
            }
            index += 1
        }
        return Key(position: 1, flags: readOnly ? ["RO", "access"] : ["RW", "access", "update"])
    }

    /// Redis's `migrateGetKeys`: AUTH's and AUTH2's arguments are skipped while looking for KEYS.
    private static func migrateKeys(_ arguments: [[UInt8]]) -> [Key] {
        let flags = ["RW", "access", "delete"]
        guard arguments.count > 3 else { return [] }
        var index = 6
        while index < arguments.count {
            switch String(decoding: arguments[index], as: UTF8.self).lowercased() {
            case "auth": index += 1
            case "auth2": index += 2
            case "keys" where arguments[3].isEmpty:
                return (index + 1..<arguments.count).map { Key(position: $0, flags: flags) }
            case "keys": return []  // a syntax error MIGRATE itself reports
            default: break
            }
            index += 1
        }
        return [Key(position: 3, flags: flags)]
    }

    /// Redis's `sortGetKeys`: the sorted key, and the last STORE's key (LIMIT, GET and BY arguments skipped).
    private static func sortKeys(_ arguments: [[UInt8]]) -> [Key] {
        var keys = [Key(position: 1, flags: ["RO", "access"])]
        var store: Key?
        var index = 2
        while index < arguments.count {
            switch String(decoding: arguments[index], as: UTF8.self).lowercased() {
            case "limit": index += 2
            case "get", "by": index += 1
            case "store" where index + 1 < arguments.count: store = Key(position: index + 1, flags: ["OW", "update"])
            default: break
            }
            index += 1
        }
        if let store { keys.append(store) }
        return keys
    }

    enum Begin {
        case index(Int)
        case keyword(String, Int)
        case unknown
    }

    enum Find {
        case range(Int, Int, Int)
        case keynum(Int, Int, Int)
        case unknown
    }

    struct Spec {
        let flags: [String]
        let begin: Begin
        let find: Find
    }

    /// The command's key specs, read back from its COMMAND INFO reply.
    static func keySpecs(_ name: String) -> [Spec] {
        guard case .array(let fields)? = RedisCommandSpec.documentation.info[name], fields.count > 8,
            case .set(let specs) = fields[8]
        else { return [] }
        return specs.compactMap { value -> Spec? in
            guard case .map(let items) = value else { return nil }
            let table = pairs(items)
            var flags: [String] = []
            if case .set(let names)? = table["flags"] {
                for case .simple(let flag) in names { flags.append(flag) }
            }
            var begin = Begin.unknown
            if case .map(let search)? = table["begin_search"] {
                let search = pairs(search)
                if case .map(let spec)? = search["spec"] {
                    let spec = pairs(spec)
                    if case .bulk(let type)? = search["type"], type == Array("index".utf8),
                        case .integer(let index)? = spec["index"]
                    {
                        begin = .index(Int(index))
                    } else if case .bulk(let keyword)? = spec["keyword"], case .integer(let from)? = spec["startfrom"] {
                        begin = .keyword(String(decoding: keyword, as: UTF8.self).uppercased(), Int(from))
                    }
                }
            }
            var find = Find.unknown
            if case .map(let keys)? = table["find_keys"], case .map(let spec)? = pairs(keys)["spec"] {
                let spec = pairs(spec)
                if case .integer(let last)? = spec["lastkey"], case .integer(let step)? = spec["keystep"],
                    case .integer(let limit)? = spec["limit"]
                {
                    find = .range(Int(last), Int(step), Int(limit))
                } else if case .integer(let index)? = spec["keynumidx"], case .integer(let first)? = spec["firstkey"],
                    case .integer(let step)? = spec["keystep"]
                {
                    find = .keynum(Int(index), Int(first), Int(step))
                }
            }
            return Spec(flags: flags, begin: begin, find: find)
        }
    }

    private static func pairs(_ items: [RESPValue]) -> [String: RESPValue] {
        var table: [String: RESPValue] = [:]
        var index = 0
        while index + 1 < items.count {
            if case .bulk(let key) = items[index] { table[String(decoding: key, as: UTF8.self)] = items[index + 1] }
            index += 2
        }
        return table
    }
}
