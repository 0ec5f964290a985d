internal import Foundation
internal import NIOCore
internal import StrataMVCC
internal import StrataRedisStore
internal import Synchronization

extension RedisCommands {
    static let acl: [(String, RedisCommand.Access, RedisCommandTable.Handler)] = [
        (
            "auth", .control,
            { c throws(RedisError) in
                if c.count > 3 { throw .syntax }
                if c.count == 2 && c.server.acl.user(RedisACL.defaultName)?.noPass != false {
                    throw .err(
                        "AUTH <password> called without any password configured for the default user. Are you sure "
                            + "your configuration is correct?"
                    )
                }
                let user = c.count == 3 ? c[1] : RedisACL.defaultName
                guard authenticate(&c, user, c[c.count - 1]) else { throw wrongPassword }
                return .ok
            }
        ),
        (
            "acl|setuser", .control,
            { c throws(RedisError) in
                let name = c[2]
                if RedisACLSelector.hasSpaces(name) { throw .err("Usernames can't contain spaces or null characters") }
                switch c.server.acl.setUser(name, rules: Array(c.arguments[3...])) {
                case .failure(let error): throw error
                case .success(let change):
                    if let before = change.before {
                        disconnectRevokedSubscribers(&c, before: before, after: change.after)
                    }
                }
                return .ok
            }
        ),
        (
            "acl|deluser", .control,
            { c throws(RedisError) in
                let names = Array(c.arguments[2...])
                if names.contains(RedisACL.defaultName) { throw .err("The 'default' user cannot be removed") }
                let deleted = c.server.acl.deleteUsers(names)
                disconnect(&c, users: Set(names.map { String(decoding: $0, as: UTF8.self) }))
                return .integer(deleted)
            }
        ),
        (
            "acl|getuser", .control,
            { c throws(RedisError) in
                guard let user = c.server.acl.user(c[2]) else { return .null }
                var fields: [RESPValue] = [
                    .bulk("flags"), .set(user.flagNames.map { .bulk($0) }), .bulk("passwords"),
                    .array(user.passwords.map { .bulk($0) }),
                ]
                fields += user.root.fields
                fields += [.bulk("selectors"), .array(user.selectors.dropFirst().map { .map($0.fields) })]
                return .map(fields)
            }
        ),
        (
            "acl|list", .control,
            { c throws(RedisError) in
                .array(
                    c.server.acl.usersByName.map { user in
                        .bulk(Array("user ".utf8) + user.name + [32] + user.description)
                    }
                )
            }
        ),
        ("acl|users", .control, { c throws(RedisError) in .bulks(c.server.acl.usersByName.map(\.name)) }),
        ("acl|whoami", .control, { c throws(RedisError) in .bulk(c.session.userName) }),
        (
            "acl|load", .control,
            { c throws(RedisError) in
                let file = try aclFile(c)
                switch c.server.acl.load(file: file) {
                case .failure(let error): throw error
                case .success(let before):
                    // Like Redis, every connection of a user that was replaced is closed (the default user's stay).
                    let names = before.filter { $0 != RedisACL.defaultName }
                    disconnect(&c, users: Set(names.map { String(decoding: $0, as: UTF8.self) }))
                }
                return .ok
            }
        ),
        (
            "acl|save", .control,
            { c throws(RedisError) in
                let file = try aclFile(c)
                guard c.server.acl.save(file: file) else {
                    throw .err(
                        "There was an error trying to save the ACLs. Please check the server logs for more information"
                    )
                }
                return .ok
            }
        ),
        (
            "acl|cat", .control,
            { c throws(RedisError) in
                if c.count == 2 { return .array(RedisACLCategories.names.map { .bulk($0) }) }
                guard c.count == 3 else { throw subcommandSyntax(c) }
                guard let category = RedisACLCategories(name: c.text(2)) else {
                    throw .err("Unknown category '\(RedisCommandTable.clip(c.text(2), 128))'")
                }
                var names: [RESPValue] = []
                RedisACLCatalog.shared.forEach { entry in
                    if entry.categories.contains(category) { names.append(.bulk(entry.name)) }
                }
                return .array(names)
            }
        ),
        (
            "acl|genpass", .control,
            { c throws(RedisError) in
                guard c.count <= 3 else { throw subcommandSyntax(c) }
                var bits: Int64 = 256
                if c.count == 3 {
                    guard let given = RedisNumber.parseInteger(c[2]) else {
                        throw .err("value is not an integer or out of range")
                    }
                    bits = given
                }
                guard bits > 0 && bits <= 4096 else {
                    throw .err(
                        "ACL GENPASS argument must be the number of bits for the output password, a positive number "
                            + "up to 4096"
                    )
                }
                var generator = SystemRandomNumberGenerator()
                let digits = Array("0123456789abcdef".utf8)
                let password = (0..<Int((bits + 3) / 4)).map { _ in digits[Int(generator.next() & 15)] }
                return .bulk(password)
            }
        ),
        (
            "acl|log", .control,
            { c throws(RedisError) in
                guard c.count <= 3 else { throw subcommandSyntax(c) }
                var count = 10
                if c.count == 3 {
                    if c.option(2) == "RESET" {
                        c.server.acl.resetLog()
                        return .ok
                    }
                    guard let given = RedisNumber.parseInteger(c[2]) else {
                        throw .err("value is not an integer or out of range")
                    }
                    count = Int(max(0, given))
                }
                let now = c.server.store.wallMilliseconds
                return .array(
                    c.server.acl.logEntries(count).map { entry in
                        .map([
                            .bulk("count"), .integer(entry.count), .bulk("reason"), .bulk(entry.reason),
                            .bulk("context"), .bulk(entry.context.rawValue), .bulk("object"), .bulk(entry.object),
                            .bulk("username"), .bulk(entry.username), .bulk("age-seconds"),
                            .double(Double(now - entry.created) / 1000), .bulk("client-info"),
                            .bulk(entry.clientInfo),
                        ])
                    }
                )
            }
        ),
        (
            "acl|dryrun", .control,
            { c throws(RedisError) in
                guard let user = c.server.acl.user(c[2]) else { throw .err("User '\(c.text(2))' not found") }
                let arguments = Array(c.arguments[3...])
                guard let spec = RedisCommandTable.lookupSpec(arguments),
                    let id = RedisACLCatalog.shared.byName[spec.name]
                else { throw .err("Command '\(c.text(3))' not found") }
                guard spec.accepts(arguments.count) else {
                    throw .err("wrong number of arguments for '\(spec.name)' command")
                }
                switch RedisACL.check(user, id: id, arguments) {
                case nil: return .ok
                case .command?: return .bulk("This user has no permissions to run the '\(spec.name)' command")
                case .key(let position)?:
                    return .bulk(
                        Array("This user has no permissions to access the '".utf8) + arguments[position]
                            + Array("' key".utf8)
                    )
                case .channel(let position)?:
                    return .bulk(
                        Array("This user has no permissions to access the '".utf8) + arguments[position]
                            + Array("' channel".utf8)
                    )
                case .auth?: return .bulk("This user has no permissions")
                }
            }
        ),
        (
            "acl|help", .control,
            { _ throws(RedisError) in
                help(
                    "ACL",
                    [
                        "CAT [<category>]",
                        "    List all commands that belong to <category>, or all command categories",
                        "    when no category is specified.",
                        "DELUSER <username> [<username> ...]",
                        "    Delete a list of users.",
                        "DRYRUN <username> <command> [<arg> ...]",
                        "    Returns whether the user can execute the given command without executing the command.",
                        "GETUSER <username>",
                        "    Get the user's details.",
                        "GENPASS [<bits>]",
                        "    Generate a secure 256-bit user password. The optional `bits` argument can",
                        "    be used to specify a different size.",
                        "LIST",
                        "    Show users details in config file format.",
                        "LOAD",
                        "    Reload users from the ACL file.",
                        "LOG [<count> | RESET]",
                        "    Show the ACL log entries.",
                        "SAVE",
                        "    Save the current config to the ACL file.",
                        "SETUSER <username> <attribute> [<attribute> ...]",
                        "    Create or modify a user with the specified attributes.",
                        "USERS",
                        "    List all the registered usernames.",
                        "WHOAMI",
                        "    Return the current connection username.",
                    ]
                )
            }
        ),
    ]

    static let wrongPassword = RedisError.reply("WRONGPASS invalid username-password pair or user is disabled.")

    /// Redis's answer to a subcommand given the wrong arguments.
    static func subcommandSyntax(_ c: RedisInvocation) -> RedisError {
        .err(
            "unknown subcommand or wrong number of arguments for '\(RedisCommandTable.clip(c.text(1), 128))'. Try "
                + "\(c.option(0)) HELP."
        )
    }

    /// AUTH and HELLO's AUTH: on success the connection runs as `name`; a failure goes to the ACL log.
    static func authenticate(_ c: inout RedisInvocation, _ name: [UInt8], _ password: [UInt8]) -> Bool {
        guard c.server.acl.authenticate(name, password) != nil else {
            let now = c.server.store.wallMilliseconds
            c.server.acl.log(
                .auth,
                context: c.session.queued != nil ? .multi : .toplevel,
                object: c[0],
                username: name,
                clientInfo: c.client.infoLine(now: now),
                now: now
            )
            return false
        }
        c.session.userName = name
        c.session.aclGeneration = 0
        c.session.authenticated = true
        return true
    }

    private static func aclFile(_ c: RedisInvocation) throws(RedisError) -> String {
        guard let file = c.server.aclFile else {
            throw .err(
                "This Redis instance is not configured to use an ACL file. You may want to specify users via the "
                    + "ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration "
                    + "file set) in order to store users in the Redis configuration."
            )
        }
        return file
    }

    /// Closes every connection authenticated as one of `users` (deleted or replaced); the caller's after its reply.
    static func disconnect(_ c: inout RedisInvocation, users: Set<String>) {
        guard !users.isEmpty else { return }
        for client in c.server.clients.all where users.contains(client.shared.withLock { $0.user }) {
            disconnect(&c, client)
        }
    }

    private static func disconnect(_ c: inout RedisInvocation, _ client: RedisClient) {
        if client === c.client {
            c.closeAfterReply = true
        } else {
            client.shared.withLock { $0.killed = true }
            client.channel.close(promise: nil)
        }
    }

    /// After SETUSER narrowed a user's channels, its subscribers that hold a channel or pattern no longer allowed are
    /// disconnected (Redis's ACLKillPubsubClientsIfNeeded).
    private static func disconnectRevokedSubscribers(
        _ c: inout RedisInvocation,
        before: RedisACLUser,
        after: RedisACLUser
    ) {
        if after.selectors.contains(where: \.allChannels) { return }
        let allowed = after.selectors.flatMap(\.channels)
        let kept =
            !before.selectors.contains(where: \.allChannels)
            && before.selectors.allSatisfy { $0.channels.allSatisfy { allowed.contains($0) } }
        if kept { return }
        let name = String(decoding: after.name, as: UTF8.self)
        for client in c.server.clients.all where client.shared.withLock({ $0.user }) == name && client.isSubscribed {
            let held = c.server.pubsub.subscriptions(of: client)
            let revoked =
                held.patterns.contains { !RedisACL.allows(allowed, channel: $0, isPattern: true) }
                || (held.channels + held.shard).contains { !RedisACL.allows(allowed, channel: $0, isPattern: false) }
            if revoked { disconnect(&c, client) }
        }
    }
}
