internal import StrataMVCC
package import StrataRedisStore

/// One command being run: its arguments, the data it reads and writes, and the connection it came from.
package struct RedisInvocation {
    package let server: RedisServer
    package let session: RedisSession
    package var arguments: [[UInt8]]
    package var data: RedisData
    /// Inside EXEC (or a script): blocking commands answer at once instead of blocking.
    package var inTransaction: Bool
    /// Set by a blocking command that found nothing to serve: the connection waits (see ``RedisBlocking``).
    package var block: RedisBlockRequest? = nil
    /// A blocked command run again because one of its keys changed (XREADGROUP then reports a vanished stream).
    package var retryingBlocked = false
    /// Close the connection once the reply is written (QUIT).
    package var closeAfterReply = false

    package var client: RedisClient { session.client }
    /// The connection's database (SELECT inside EXEC changes it for the commands after it).
    package var db: Int { session.db }
    package var count: Int { arguments.count }

    package subscript(_ index: Int) -> [UInt8] { arguments[index] }

    /// Argument `index` as text (option names, numbers).
    package func text(_ index: Int) -> String { String(decoding: arguments[index], as: UTF8.self) }

    /// Argument `index` upper-cased, for option matching.
    package func option(_ index: Int) -> String { text(index).uppercased() }

    package func integer(_ index: Int) throws(RedisError) -> Int64 {
        guard let value = RedisNumber.parseInteger(arguments[index]) else { throw .notInteger }
        return value
    }

    package func double(_ index: Int) throws(RedisError) -> Double {
        guard let value = RedisNumber.parseDouble(arguments[index]) else { throw .notFloat }
        return value
    }

    /// A count that must not be negative (LPOP/RPOP/SPOP count).
    package func positiveCount(_ index: Int) throws(RedisError) -> Int {
        let value = try integer(index)
        guard value >= 0 else { throw .outOfRangePositive }
        return Int(value)
    }

    /// Announces a keyspace event of this command.
    package mutating func notify(_ event: String, _ eventClass: RedisNotifyFlags, _ key: [UInt8], db: Int? = nil) {
        data.notify(event, eventClass, db ?? self.db, key)
    }
}

/// A command: its entry in Redis's table and Strata's implementation.
package struct RedisCommand: Sendable {
    package enum Access: Sendable {
        /// Reads the live store (no transaction, no lock).
        case read
        /// Runs in a write transaction.
        case write
        /// Connection or server state only.
        case control
    }

    package let spec: RedisCommandSpec
    package let access: Access
    package let run: @Sendable (inout RedisInvocation) throws(RedisError) -> RESPValue

    package var name: String { spec.name }
}

/// Builds the dispatch table from each family's list.
package enum RedisCommandTable {
    package typealias Handler = @Sendable (inout RedisInvocation) throws(RedisError) -> RESPValue

    /// Implemented commands by full name (`get`, `client|list`).
    package static let commands: [String: RedisCommand] = {
        var table: [String: RedisCommand] = [:]
        let families: [[(String, RedisCommand.Access, Handler)]] = [
            RedisCommands.strings, RedisCommands.keys, RedisCommands.hashes, RedisCommands.lists, RedisCommands.sets,
            RedisCommands.sortedSets, RedisCommands.connection, RedisCommands.server, RedisCommands.transactions,
            RedisCommands.pubsub, RedisCommands.bits, RedisCommands.sort, RedisCommands.hyperLogLogs,
            RedisCommands.geo, RedisCommands.dumps, RedisCommands.scripting,
            RedisCommands.streams, RedisCommands.acl,
        ]
        for family in families {
            for (name, access, run) in family {
                guard let spec = RedisCommandSpec.byName[name] else {
                    preconditionFailure("\(name) is not in Redis 7.0's command table")
                }
                table[name] = RedisCommand(spec: spec, access: access, run: run)
            }
        }
        return table
    }()

    /// Containers with at least one implemented subcommand (their bare name answers "unknown subcommand").
    package static let containers: Set<String> = Set(
        commands.keys.compactMap { name in name.firstIndex(of: "|").map { String(name[..<$0]) } }
    )

    /// Implemented top-level commands (what COMMAND, COUNT and LIST show), sorted.
    package static let implementedTopLevel: [String] = {
        var names = Set(commands.keys.filter { !$0.contains("|") })
        names.formUnion(containers)
        return names.sorted()
    }()

    /// Every implemented command and subcommand name.
    package static let implementedAll: [String] = (Set(commands.keys).union(containers)).sorted()

    package static func isImplemented(_ name: String) -> Bool { commands[name] != nil || containers.contains(name) }

    /// The table entry a command line names (any command of Redis 7.0's table, implemented or not).
    package static func lookupSpec(_ arguments: [[UInt8]]) -> RedisCommandSpec? {
        guard let first = arguments.first else { return nil }
        let name = String(decoding: first, as: UTF8.self).lowercased()
        if RedisCommandSpec.subcommands[name] != nil, arguments.count > 1 {
            return RedisCommandSpec.byName[name + "|" + String(decoding: arguments[1], as: UTF8.self).lowercased()]
        }
        return RedisCommandSpec.byName[name]
    }

    /// The command `arguments` names: nil with Redis's error when there is none.
    package static func lookup(_ arguments: [[UInt8]]) -> Result<RedisCommand, RedisError> {
        let name = String(decoding: arguments[0], as: UTF8.self).lowercased()
        if containers.contains(name) {
            guard arguments.count > 1 else {
                // The container alone: its own arity error.
                let spec = RedisCommandSpec.byName[name]!
                return .success(RedisCommand(spec: spec, access: .control, run: { _ throws(RedisError) in .null }))
            }
            let sub = String(decoding: arguments[1], as: UTF8.self).lowercased()
            if let command = commands[name + "|" + sub] { return .success(command) }
            let typed = Self.clip(String(decoding: arguments[1], as: UTF8.self), 128)
            return .failure(.err("unknown subcommand '\(typed)'. Try \(name.uppercased()) HELP."))
        }
        // DEBUG POPULATE writes keys, so it runs as a write; every other DEBUG subcommand is control.
        if name == "debug", arguments.count > 1,
            String(decoding: arguments[1], as: UTF8.self).lowercased() == "populate",
            let debug = commands[name]
        {
            return .success(RedisCommand(spec: debug.spec, access: .write, run: RedisCommands.debugPopulate))
        }
        if !name.contains("|"), let command = commands[name] { return .success(command) }
        return .failure(unknownCommand(arguments))
    }

    /// Redis's error for a command name it does not know.
    package static func unknownCommand(_ arguments: [[UInt8]]) -> RedisError {
        var listed = ""
        for argument in arguments.dropFirst() {
            guard listed.utf8.count < 128 else { break }
            let room = 128 - listed.utf8.count
            listed += "'" + clip(String(decoding: argument.prefix(room), as: UTF8.self), room) + "' "
        }
        let typed = clip(String(decoding: arguments[0], as: UTF8.self), 128)
        let message = "unknown command '\(typed)', with args beginning with: \(listed)"
        return .err(String(message.map { $0 == "\r" || $0 == "\n" ? " " : $0 }))
    }

    /// At most `count` bytes, cut at a NUL as C's `%.*s` does.
    static func clip(_ text: String, _ count: Int) -> String {
        let bytes = text.utf8.prefix { $0 != 0 }.prefix(count)
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Each command family's list (`RedisCommands+<Family>.swift`).
package enum RedisCommands {}
