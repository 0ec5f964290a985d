internal import StrataRedisStore

extension RedisACL {
    /// Whether `user` may run `arguments` (catalog entry `id`): nil, or the denial Redis would report (when no
    /// selector allows it: a command denial unless some selector got as far as a key or channel).
    static func check(_ user: RedisACLUser, id: Int, _ arguments: [[UInt8]]) -> Denial? {
        var relevant = Denial.command
        var keys: [RedisKeyFinder.Key]? = nil
        for selector in user.selectors {
            guard let denial = check(selector, id: id, arguments, keys: &keys) else { return nil }
            if denial.rank > relevant.rank || (denial.rank == relevant.rank && denial.position > relevant.position) {
                relevant = denial
            }
        }
        return relevant
    }

    private static func check(
        _ selector: RedisACLSelector,
        id: Int,
        _ arguments: [[UInt8]],
        keys: inout [RedisKeyFinder.Key]?
    ) -> Denial? {
        let entry = RedisACLCatalog.shared.entries[id]
        if !selector.allCommands && !entry.spec.flags.contains(.noAuth) && !selector.allows(id) {
            let index = entry.parent == nil ? 1 : 2
            guard arguments.count >= 2, index < arguments.count, let allowed = selector.firstArgs[id] else {
                return .command
            }
            let given = String(decoding: arguments[index], as: UTF8.self).lowercased()
            guard allowed.contains(where: { $0.lowercased() == given }) else { return .command }
        }
        if !selector.allKeys && entry.hasKeys {
            if keys == nil { keys = RedisKeyFinder.locate(entry.spec, specs: entry.keySpecs, arguments).keys }
            for key in keys! where key.position < arguments.count {
                if !allows(selector, key: arguments[key.position], flags: key.flags) {
                    return .key(position: key.position)
                }
            }
        }
        if !selector.allChannels, let (first, count, pattern) = channelArguments(entry.name) {
            let end = count < 0 ? arguments.count : min(arguments.count, first + count)
            var position = first
            while position < end {
                if !allows(selector.channels, channel: arguments[position], isPattern: pattern) {
                    return .channel(position: position)
                }
                position += 1
            }
        }
        return nil
    }

    /// Which arguments name channels a command publishes or subscribes to (unsubscribing is always allowed).
    private static func channelArguments(_ name: String) -> (first: Int, count: Int, pattern: Bool)? {
        switch name {
        case "subscribe", "ssubscribe": return (1, -1, false)
        case "psubscribe": return (1, -1, true)
        case "publish", "spublish": return (1, 1, false)
        default: return nil
        }
    }

    private static func allows(_ selector: RedisACLSelector, key: [UInt8], flags: [String]) -> Bool {
        if selector.allKeys { return true }
        let read = flags.contains("access")
        let write = flags.contains("insert") || flags.contains("delete") || flags.contains("update")
        for pattern in selector.keys {
            if read && !pattern.read { continue }
            if write && !pattern.write { continue }
            if GlobPattern(pattern.pattern).matches(key) { return true }
        }
        return false
    }

    /// A subscription pattern must appear literally; a channel may match a channel pattern.
    static func allows(_ patterns: [[UInt8]], channel: [UInt8], isPattern: Bool) -> Bool {
        patterns.contains { isPattern ? $0 == channel : GlobPattern($0).matches(channel) }
    }

    /// Whether `user` may use `channel` through some selector.
    static func allows(_ user: RedisACLUser, channel: [UInt8], isPattern: Bool) -> Bool {
        user.selectors.contains { $0.allChannels || allows($0.channels, channel: channel, isPattern: isPattern) }
    }

    /// Whether some selector that allows the command can also read every key (SORT's BY and GET: Redis's
    /// ACLUserCheckCmdWithUnrestrictedKeyAccess).
    static func readsEveryKey(_ user: RedisACLUser, id: Int, _ arguments: [[UInt8]]) -> Bool {
        var keys: [RedisKeyFinder.Key]? = nil
        for selector in user.selectors where check(selector, id: id, arguments, keys: &keys) == nil {
            if selector.allKeys { return true }
            if selector.keys.contains(where: { $0.read && $0.pattern == [UInt8(ascii: "*")] }) { return true }
        }
        return false
    }

    /// The NOPERM text a denied command gets at the top level.
    static func message(_ denial: Denial, command: String) -> String {
        switch denial {
        case .command: return "NOPERM this user has no permissions to run the '\(command)' command"
        case .key: return "NOPERM this user has no permissions to access one of the keys used as arguments"
        case .channel: return "NOPERM this user has no permissions to access one of the channels used as arguments"
        case .auth: return "NOPERM no permission"
        }
    }

    /// The reason inside scripts (`The user executing the script …`; Redis's getAclErrorMessage).
    static func scriptReason(_ denial: Denial) -> String {
        switch denial {
        case .command: return "can't run this command or subcommand"
        case .key: return "can't access at least one of the keys mentioned in the command arguments"
        case .channel: return "can't publish to the channel mentioned in the command"
        case .auth: return "lacking the permissions for the command"
        }
    }

    /// EXEC's text when permissions changed after a command was queued.
    static func execMessage(_ denial: Denial) -> String {
        let reason: String
        switch denial {
        case .command: reason = "no permission to execute the command or subcommand"
        case .key: reason = "no permission to touch the specified keys"
        case .channel: reason = "no permission to access one of the channels used as arguments"
        case .auth: reason = "no permission"
        }
        return "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This "
            + "command is no longer allowed for the following reason: \(reason)"
    }

    /// What the log records as the object of a denial.
    static func object(_ denial: Denial, command: String, _ arguments: [[UInt8]]) -> [UInt8] {
        switch denial {
        case .command: return Array(command.utf8)
        case .key(let position), .channel(let position):
            return position < arguments.count ? arguments[position] : []
        case .auth: return arguments.first ?? []
        }
    }

    /// A command line as SLOWLOG and MONITOR show it: passwords and ACL rules replaced by `(redacted)`, as Redis
    /// does (AUTH, HELLO … AUTH, ACL SETUSER, CONFIG SET of sensitive parameters, MIGRATE … AUTH/AUTH2).
    static func redacted(_ arguments: [[UInt8]]) -> [[UInt8]] {
        guard let first = arguments.first, first.count >= 3, first.count <= 7 else { return arguments }
        let hidden = Array("(redacted)".utf8)
        func word(_ index: Int) -> String { String(decoding: arguments[index], as: UTF8.self).lowercased() }
        var result = arguments
        switch word(0) {
        case "auth":
            for index in 1..<result.count { result[index] = hidden }
        case "hello":
            var index = 2
            while index < result.count {
                if word(index) == "auth" && index + 2 < result.count {
                    result[index + 1] = hidden
                    result[index + 2] = hidden
                    index += 3
                } else {
                    index += 1
                }
            }
        case "acl" where result.count > 2 && word(1) == "setuser":
            for index in 2..<result.count { result[index] = hidden }
        case "config" where result.count > 3 && word(1) == "set":
            for index in stride(from: 2, to: result.count - 1, by: 2) {
                if let parameter = RedisConfigParameter.byName[word(index)], parameter.flags.contains(.sensitive) {
                    result[index + 1] = hidden
                }
            }
        case "migrate":
            var index = 6
            while index < result.count {
                switch word(index) {
                case "auth" where index + 1 < result.count:
                    result[index + 1] = hidden
                    index += 2
                case "auth2" where index + 2 < result.count:
                    result[index + 1] = hidden
                    result[index + 2] = hidden
                    index += 3
                default: index += 1
                }
            }
        default: break
        }
        return result
    }
}
