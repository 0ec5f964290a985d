internal import StrataCommon
internal import StrataRedisStore

/// Why an ACL rule was refused (Redis's errno cases of ACLSetUser, with its texts).
enum RedisACLRuleError: Error, Equatable {
    case unknownName, syntax, patternAfterAllKeys, patternAfterAllChannels, noSuchPassword, badHash, subcommandFirstArg

    var message: String {
        switch self {
        case .unknownName: return "Unknown command or category name in ACL"
        case .syntax: return "Syntax error"
        case .patternAfterAllKeys:
            return "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any "
                + "effect. Try 'resetkeys' to start with an empty list of patterns"
        case .patternAfterAllChannels:
            return "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have "
                + "any effect. Try 'resetchannels' to start with an empty list of channels"
        case .noSuchPassword: return "The password you are trying to remove from the user does not exist"
        case .badHash:
            return "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
        case .subcommandFirstArg: return "Allowing first-arg of a subcommand is not supported"
        }
    }
}

/// One key pattern with the access it grants (`~p`: both, `%R~p`, `%W~p`).
struct RedisACLKeyPattern: Sendable, Equatable {
    var pattern: [UInt8]
    var read: Bool
    var write: Bool

    var text: [UInt8] {
        let prefix: String = read && write ? "~" : read ? "%R~" : "%W~"
        return Array(prefix.utf8) + pattern
    }
}

/// A set of permissions: the commands (a bitmap over the catalog's ids), keys and channels. A user has a root
/// selector and any number of added ones; a command may run when one selector allows all of it.
struct RedisACLSelector: Sendable, Equatable {
    var isRoot: Bool
    var allKeys = false
    var allChannels: Bool
    /// Set by `+@all`/`allcommands`, cleared by any removal: no bitmap test needed.
    var allCommands = false
    var commands: [UInt64]
    /// Allowed first arguments of otherwise denied commands (`+select|0`), by command id, in the order added.
    var firstArgs: [Int: [String]] = [:]
    var keys: [RedisACLKeyPattern] = []
    var channels: [[UInt8]] = []

    init(isRoot: Bool, allChannels: Bool) {
        self.isRoot = isRoot
        self.allChannels = allChannels
        self.commands = Array(repeating: 0, count: (RedisACLCatalog.shared.bitCount + 63) / 64)
    }

    func allows(_ id: Int) -> Bool { commands[id >> 6] & (1 << UInt64(id & 63)) != 0 }

    mutating func set(_ id: Int, _ value: Bool) {
        if value {
            commands[id >> 6] |= 1 << UInt64(id & 63)
        } else {
            commands[id >> 6] &= ~(1 << UInt64(id & 63))
            allCommands = false
        }
    }

    /// Allows or denies a command, and with a container all of its subcommands (ACLChangeSelectorPerm).
    mutating func change(_ id: Int, _ value: Bool) {
        let catalog = RedisACLCatalog.shared
        set(id, value)
        firstArgs[id] = nil
        for sub in catalog.entries[id].subcommands { set(sub, value) }
    }

    mutating func change(category: RedisACLCategories, _ value: Bool) {
        RedisACLCatalog.shared.forEach { entry in
            if entry.categories.contains(category) { change(entry.id, value) }
        }
    }

    var canRunFutureCommands: Bool { allows(RedisACLCatalog.shared.futureBit) }

    /// Applies one selector rule (Redis's ACLSetSelector).
    mutating func apply(_ op: [UInt8], pubsubDefaultAll: Bool) throws(RedisACLRuleError) {
        let catalog = RedisACLCatalog.shared
        let text = String(decoding: op, as: UTF8.self)
        let lower = text.lowercased()
        switch lower {
        case "allkeys", "~*":
            allKeys = true
            keys = []
            return
        case "resetkeys":
            allKeys = false
            keys = []
            return
        case "allchannels", "&*":
            allChannels = true
            channels = []
            return
        case "resetchannels":
            allChannels = false
            channels = []
            return
        case "allcommands", "+@all":
            commands = commands.map { _ in UInt64.max }
            allCommands = true
            firstArgs = [:]
            return
        case "nocommands", "-@all":
            commands = commands.map { _ in 0 }
            allCommands = false
            firstArgs = [:]
            return
        default:
            break
        }
        guard let first = op.first else { throw .syntax }
        switch first {
        case UInt8(ascii: "~"), UInt8(ascii: "%"):
            if allKeys { throw .patternAfterAllKeys }
            var read = true
            var write = true
            var offset = 1
            if first == UInt8(ascii: "%") {
                read = false
                write = false
                while offset < op.count {
                    let byte = op[offset]
                    offset += 1
                    if (byte == UInt8(ascii: "R") || byte == UInt8(ascii: "r")) && !read {
                        read = true
                    } else if (byte == UInt8(ascii: "W") || byte == UInt8(ascii: "w")) && !write {
                        write = true
                    } else if byte == UInt8(ascii: "~") {
                        break
                    } else {
                        throw .syntax
                    }
                }
                // `%~p` would grant nothing (Redis cannot even describe it): refused.
                if !read && !write { throw .syntax }
            }
            let pattern = Array(op[offset...])
            if Self.hasSpaces(pattern) { throw .syntax }
            if let index = keys.firstIndex(where: { $0.pattern == pattern }) {
                keys[index].read = keys[index].read || read
                keys[index].write = keys[index].write || write
            } else {
                keys.append(RedisACLKeyPattern(pattern: pattern, read: read, write: write))
            }
            allKeys = false
        case UInt8(ascii: "&"):
            if allChannels { throw .patternAfterAllChannels }
            let pattern = Array(op.dropFirst())
            if Self.hasSpaces(pattern) { throw .syntax }
            if !channels.contains(pattern) { channels.append(pattern) }
            allChannels = false
        case UInt8(ascii: "+") where op.count < 2 || op[1] != UInt8(ascii: "@"):
            let name = String(text.dropFirst())
            guard let bar = name.lastIndex(of: "|") else {
                guard let id = catalog.lookup(name) else { throw .unknownName }
                change(id, true)
                return
            }
            let container = String(name[..<bar])
            let sub = String(name[name.index(after: bar)...])
            guard let id = catalog.lookup(container) else { throw .unknownName }
            if catalog.entries[id].parent != nil { throw .subcommandFirstArg }
            if sub.isEmpty { throw .syntax }
            if !catalog.entries[id].subcommands.isEmpty {
                guard let subID = catalog.lookup(name) else { throw .unknownName }
                change(subID, true)
            } else {
                var list = firstArgs[id] ?? []
                if !list.contains(where: { $0.lowercased() == sub.lowercased() }) { list.append(sub) }
                firstArgs[id] = list
            }
        case UInt8(ascii: "-") where op.count < 2 || op[1] != UInt8(ascii: "@"):
            guard let id = catalog.lookup(String(text.dropFirst())) else { throw .unknownName }
            change(id, false)
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            guard let category = RedisACLCategories(name: String(text.dropFirst(2))) else { throw .unknownName }
            change(category: category, first == UInt8(ascii: "+"))
        default:
            throw .syntax
        }
    }

    /// Redis's ACLStringHasSpaces: whitespace or NUL.
    static func hasSpaces(_ bytes: [UInt8]) -> Bool {
        bytes.contains { $0 == 0 || $0 == 32 || ($0 >= 9 && $0 <= 13) }
    }

    // MARK: Description

    /// The command rules as SETUSER takes them back: `+@all`/`-@all`, then the categories that best cover the
    /// bitmap, then single commands (Redis's ACLDescribeSelectorCommandRules, same algorithm and tie-breaks).
    var commandRules: String {
        let catalog = RedisACLCatalog.shared
        var rules: [String] = []
        var fake = RedisACLSelector(isRoot: false, allChannels: false)
        let additive = !canRunFutureCommands
        if additive {
            rules.append("-@all")
        } else {
            rules.append("+@all")
            try? fake.apply(Array("+@all".utf8), pubsubDefaultAll: false)
        }
        var temp = RedisACLSelector(isRoot: false, allChannels: false)
        temp.commands = commands
        var applied = Set<Int>()
        while true {
            var best = -1
            var minDiff = Int.max
            var maxSame = 0
            for index in RedisACLCategories.names.indices where !applied.contains(index) {
                let category = RedisACLCategories(index: index)
                var on = 0
                var off = 0
                catalog.forEach { entry in
                    guard entry.categories.contains(category) else { return }
                    if temp.allows(entry.id) { on += 1 } else { off += 1 }
                }
                let diff = additive ? off : on
                let same = additive ? on : off
                if same > diff && (diff < minDiff || (diff == minDiff && same > maxSame)) {
                    best = index
                    minDiff = diff
                    maxSame = same
                }
            }
            if best == -1 { break }
            let category = RedisACLCategories(index: best)
            fake.change(category: category, additive)
            temp.change(category: category, !additive)
            rules.append((additive ? "+@" : "-@") + RedisACLCategories.names[best])
            applied.insert(best)
        }
        catalog.forEach { entry in
            let mine = allows(entry.id)
            if mine != fake.allows(entry.id) {
                rules.append((mine ? "+" : "-") + entry.name)
                fake.change(entry.id, mine)
            }
            if !mine, let args = firstArgs[entry.id] {
                for arg in args { rules.append("+\(entry.name)|\(arg)") }
            }
        }
        return rules.joined(separator: " ")
    }

    /// Keys, channels and command rules, as ACL LIST shows a selector.
    var description: [UInt8] {
        var result: [UInt8] = []
        if allKeys {
            result += Array("~* ".utf8)
        } else {
            for pattern in keys { result += pattern.text + [32] }
        }
        if allChannels {
            result += Array("&* ".utf8)
        } else {
            result += Array("resetchannels ".utf8)
            for channel in channels { result += [UInt8(ascii: "&")] + channel + [32] }
        }
        return result + Array(commandRules.utf8)
    }

    /// ACL GETUSER's fields for this selector.
    var fields: [RESPValue] {
        var keyText: [UInt8] = []
        if allKeys {
            keyText = Array("~*".utf8)
        } else {
            for (index, pattern) in keys.enumerated() {
                if index > 0 { keyText.append(32) }
                keyText += pattern.text
            }
        }
        var channelText: [UInt8] = []
        if allChannels {
            channelText = Array("&*".utf8)
        } else {
            for (index, channel) in channels.enumerated() {
                if index > 0 { channelText.append(32) }
                channelText += [UInt8(ascii: "&")] + channel
            }
        }
        return [
            .bulk("commands"), .bulk(Array(commandRules.utf8)), .bulk("keys"), .bulk(keyText), .bulk("channels"),
            .bulk(channelText),
        ]
    }
}

/// One ACL user: flags, password hashes and selectors (the root one first).
struct RedisACLUser: Sendable, Equatable {
    var name: [UInt8]
    var enabled = false
    var noPass = false
    /// nil: neither `sanitize-payload` nor `skip-sanitize-payload` was given.
    var skipSanitize: Bool? = nil
    /// SHA-256 hex digests.
    var passwords: [String] = []
    var selectors: [RedisACLSelector]

    init(name: [UInt8], pubsubDefaultAll: Bool) {
        self.name = name
        self.selectors = [RedisACLSelector(isRoot: true, allChannels: pubsubDefaultAll)]
    }

    var root: RedisACLSelector {
        get { selectors[0] }
        set { selectors[0] = newValue }
    }

    /// Every command, key and channel, through one selector: permission checks can be skipped.
    var isUnrestricted: Bool {
        selectors.contains { $0.allCommands && $0.allKeys && $0.allChannels }
    }

    static func hash(_ password: some Collection<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        for byte in SHA256.hash(password) {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 15)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    static func isValidHash(_ bytes: ArraySlice<UInt8>) -> Bool {
        bytes.count == 64 && bytes.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    /// The hash a password rule names: of its clear text (`>p`, `<p`), or given (`#h`, `!h`), checked.
    private static func passwordHash(_ op: [UInt8], clear: Bool) throws(RedisACLRuleError) -> String {
        if clear { return hash(op.dropFirst()) }
        guard isValidHash(op.dropFirst()) else { throw .badHash }
        return String(decoding: op.dropFirst(), as: UTF8.self)
    }

    /// Whether `password` is one of the user's (every stored hash is compared, in constant time for each).
    func accepts(_ password: [UInt8]) -> Bool {
        if noPass { return true }
        let hashed = Array(Self.hash(password).utf8)
        var matched = false
        for stored in passwords {
            var difference: UInt8 = 0
            for (a, b) in zip(hashed, stored.utf8) { difference |= a ^ b }
            if difference == 0 { matched = true }
        }
        return matched
    }

    /// Applies one rule (Redis's ACLSetUser).
    mutating func apply(_ op: [UInt8], pubsubDefaultAll: Bool) throws(RedisACLRuleError) {
        guard let first = op.first else { return }
        switch String(decoding: op, as: UTF8.self).lowercased() {
        case "on": enabled = true
        case "off": enabled = false
        case "skip-sanitize-payload": skipSanitize = true
        case "sanitize-payload": skipSanitize = false
        case "nopass":
            noPass = true
            passwords = []
        case "resetpass":
            noPass = false
            passwords = []
        case "clearselectors":
            selectors = [selectors[0]]
        case "reset":
            noPass = false
            passwords = []
            try? selectors[0].apply(Array("resetkeys".utf8), pubsubDefaultAll: pubsubDefaultAll)
            try? selectors[0].apply(Array("resetchannels".utf8), pubsubDefaultAll: pubsubDefaultAll)
            if pubsubDefaultAll { try? selectors[0].apply(Array("allchannels".utf8), pubsubDefaultAll: true) }
            enabled = false
            skipSanitize = false
            selectors = [selectors[0]]
            try? selectors[0].apply(Array("-@all".utf8), pubsubDefaultAll: pubsubDefaultAll)
        default:
            switch first {
            case UInt8(ascii: ">"), UInt8(ascii: "#"):
                let hash = try Self.passwordHash(op, clear: first == UInt8(ascii: ">"))
                if !passwords.contains(hash) { passwords.append(hash) }
                noPass = false
            case UInt8(ascii: "<"), UInt8(ascii: "!"):
                let hash = try Self.passwordHash(op, clear: first == UInt8(ascii: "<"))
                guard let index = passwords.firstIndex(of: hash) else { throw .noSuchPassword }
                passwords.remove(at: index)
            case UInt8(ascii: "(") where op.last == UInt8(ascii: ")") && op.count >= 2:
                var selector = RedisACLSelector(isRoot: false, allChannels: pubsubDefaultAll)
                for rule in RedisACLUser.splitArguments(Array(op[1..<(op.count - 1)])) {
                    try selector.apply(rule, pubsubDefaultAll: pubsubDefaultAll)
                }
                selectors.append(selector)
            default:
                try selectors[0].apply(op, pubsubDefaultAll: pubsubDefaultAll)
            }
        }
    }

    /// Redis's flag names in its order (ACL GETUSER, ACL LIST).
    var flagNames: [String] {
        var names: [String] = [enabled ? "on" : "off"]
        if noPass { names.append("nopass") }
        if skipSanitize == true { names.append("skip-sanitize-payload") }
        if skipSanitize == false { names.append("sanitize-payload") }
        return names
    }

    /// The user's rules as ACL LIST and ACL SAVE write them (without `user <name> `).
    var description: [UInt8] {
        var result: [UInt8] = []
        for flag in flagNames { result += Array(flag.utf8) + [32] }
        for password in passwords { result += [UInt8(ascii: "#")] + Array(password.utf8) + [32] }
        for selector in selectors {
            if selector.isRoot {
                result += selector.description
            } else {
                result += Array(" (".utf8) + selector.description + [UInt8(ascii: ")")]
            }
        }
        return result
    }

    /// Splits `text` at whitespace, honouring quotes as Redis's sdssplitargs does (selector bodies).
    static func splitArguments(_ text: [UInt8]) -> [[UInt8]] {
        RESPRequestParser.splitArguments(text) ?? [text]
    }
}
