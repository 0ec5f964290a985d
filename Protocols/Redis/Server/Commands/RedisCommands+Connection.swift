internal import NIOCore
internal import StrataRedisStore
internal import Synchronization

extension RedisCommands {
    static let connection: [(String, RedisCommand.Access, RedisCommandTable.Handler)] = [
        (
            "ping", .control,
            { c throws(RedisError) in
                if c.count > 2 { throw .err("wrong number of arguments for 'ping' command") }
                if c.session.resp == 2 && c.client.isSubscribed {
                    return .array([.bulk("pong"), .bulk(c.count == 2 ? c[1] : [])])
                }
                return c.count == 2 ? .bulk(c[1]) : .simple("PONG")
            }
        ),
        ("echo", .control, { c throws(RedisError) in .bulk(c[1]) }),
        (
            "quit", .control,
            { c throws(RedisError) in
                c.closeAfterReply = true
                return .ok
            }
        ),
        (
            "select", .control,
            { c throws(RedisError) in
                c.session.db = try databaseIndex(c, 1)
                return .ok
            }
        ),
        (
            "hello", .control,
            { c throws(RedisError) in
                var version = 0
                var index = 1
                if c.count >= 2 {
                    guard let requested = RedisNumber.parseInteger(c[1]) else {
                        throw .err("Protocol version is not an integer or out of range")
                    }
                    if requested < 2 || requested > 3 { throw .reply("NOPROTO unsupported protocol version") }
                    version = Int(requested)
                    index = 2
                }
                while index < c.count {
                    let more = c.count - 1 - index
                    switch c.option(index) {
                    case "AUTH" where more >= 2:
                        guard authenticate(&c, c[index + 1], c[index + 2]) else { throw wrongPassword }
                        index += 3
                    case "SETNAME" where more >= 1:
                        try setName(&c, c[index + 1])
                        index += 2
                    default:
                        throw .err("Syntax error in HELLO option '\(RedisCommandTable.clip(c.text(index), 1024))'")
                    }
                }
                guard c.session.authenticated else {
                    throw .reply(
                        "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH "
                            + "<user> <pass> option can be used to authenticate the client and select the RESP protocol "
                            + "version at the same time"
                    )
                }
                if version != 0 { c.session.resp = version }
                return .map([
                    .bulk("server"), .bulk("redis"), .bulk("version"), .bulk(RedisInfo.redisVersion), .bulk("proto"),
                    .integer(c.session.resp), .bulk("id"), .integer(c.client.id), .bulk("mode"), .bulk("standalone"),
                    .bulk("role"), .bulk("master"), .bulk("modules"), .array([]),
                ])
            }
        ),
        (
            "reset", .control,
            { c throws(RedisError) in
                c.session.queued = nil
                c.session.queueFailed = false
                c.session.watched = []
                c.session.publishMulti()
                c.session.db = 0
                c.session.resp = 2
                unsubscribeAll(&c, .channel, notify: false)
                unsubscribeAll(&c, .pattern, notify: false)
                unsubscribeAll(&c, .shard, notify: false)
                c.client.shared.withLock { state in
                    state.name = ""
                    state.monitor = false
                    state.noEvict = false
                    state.noTouch = false
                }
                c.server.monitors.withLock { $0.removeAll { $0 === c.client } }
                c.session.replyMode = .on
                c.session.skipNext = false
                c.session.userName = RedisACL.defaultName
                c.session.aclGeneration = 0
                c.session.authenticated = c.server.acl.defaultUserOpen
                return .simple("RESET")
            }
        ),
        ("client|id", .control, { c throws(RedisError) in .integer(c.client.id) }),
        (
            "client|info", .control,
            { c throws(RedisError) in
                .verbatim(c.client.infoLine(now: c.data.now) + "\n")
            }
        ),
        (
            "client|list", .control,
            { c throws(RedisError) in
                var clients = c.server.clients.all
                if c.count == 4 && c.option(2) == "TYPE" {
                    let type = c.text(3).lowercased()
                    switch type {
                    case "normal": clients = clients.filter { !$0.isSubscribed }
                    case "pubsub": clients = clients.filter { $0.isSubscribed }
                    case "master", "replica", "slave": clients = []
                    default: throw .err("Unknown client type '\(c.text(3))'")
                    }
                } else if c.count > 3 && c.option(2) == "ID" {
                    var ids: [Int64] = []
                    for index in 3..<c.count {
                        guard let id = RedisNumber.parseInteger(c[index]) else { throw .err("Invalid client ID") }
                        ids.append(id)
                    }
                    clients = ids.compactMap { c.server.clients.client($0) }
                } else if c.count != 2 {
                    throw .syntax
                }
                let now = c.data.now
                c.client.shared.withLock { $0.lastCommand = "client|list" }
                return .verbatim(clients.map { $0.infoLine(now: now) + "\n" }.joined())
            }
        ),
        (
            "client|setname", .control,
            { c throws(RedisError) in
                try setName(&c, c[2])
                return .ok
            }
        ),
        (
            "client|getname", .control,
            { c throws(RedisError) in
                let name = c.client.shared.withLock { $0.name }
                return name.isEmpty ? .null : .bulk(name)
            }
        ),
        (
            "client|setinfo", .control,
            { c throws(RedisError) in
                let attribute = c.option(2)
                guard attribute == "LIB-NAME" || attribute == "LIB-VER" else {
                    throw .err("Unrecognized option '\(c.text(2))'")
                }
                let value = c.text(3)
                if value.utf8.contains(where: { $0 < 33 || $0 > 126 }) {
                    throw .err("\(attribute.lowercased()) cannot contain spaces, newlines or special characters.")
                }
                c.client.shared.withLock { state in
                    if attribute == "LIB-NAME" { state.libraryName = value } else { state.libraryVersion = value }
                }
                return .ok
            }
        ),
        (
            // Redis 7.2's: the client's reads do not count as accesses. Strata keeps no access times (OBJECT
            // IDLETIME is always 0), so there is nothing for it to leave alone; the flag shows in CLIENT LIST.
            "client|no-touch", .control,
            { c throws(RedisError) in
                switch c.option(2) {
                case "ON": c.client.shared.withLock { $0.noTouch = true }
                case "OFF": c.client.shared.withLock { $0.noTouch = false }
                default: throw .syntax
                }
                return .ok
            }
        ),
        (
            "client|reply", .control,
            { c throws(RedisError) in
                switch c.option(2) {
                case "ON":
                    c.session.replyMode = .on
                    c.session.skipNext = false
                    return .ok
                case "OFF":
                    c.session.replyMode = .off
                    return .sequence([])
                case "SKIP":
                    if c.session.replyMode != .off { c.session.armSkip = true }
                    return .sequence([])
                default:
                    throw .syntax
                }
            }
        ),
        (
            "client|no-evict", .control,
            { c throws(RedisError) in
                switch c.option(2) {
                case "ON": c.client.shared.withLock { $0.noEvict = true }
                case "OFF": c.client.shared.withLock { $0.noEvict = false }
                default: throw .syntax
                }
                return .ok
            }
        ),
        ("client|kill", .control, { c throws(RedisError) in try killClients(&c) }),
        ("client|tracking", .control, { c throws(RedisError) in try clientTracking(&c) }),
        (
            "client|caching", .control,
            { c throws(RedisError) in
                guard let mode = c.server.tracking.mode(of: c.client.id) else {
                    throw .err(
                        "CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT "
                            + "mode enabled"
                    )
                }
                switch c.option(2) {
                case "YES":
                    guard mode.optIn else {
                        throw .err("CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.")
                    }
                case "NO":
                    guard mode.optOut else {
                        throw .err("CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.")
                    }
                default:
                    throw .syntax
                }
                c.session.trackingCaching = true
                return .ok
            }
        ),
        (
            "client|getredir", .control,
            { c throws(RedisError) in .integer(c.server.tracking.mode(of: c.client.id)?.redirect ?? -1) }
        ),
        (
            "client|trackinginfo", .control,
            { c throws(RedisError) in
                let mode = c.server.tracking.mode(of: c.client.id)
                return .map([
                    .bulk("flags"),
                    .set(
                        c.server.tracking.flags(of: c.client.id, caching: c.session.trackingCaching).map { .bulk($0) }
                    ),
                    .bulk("redirect"), .integer(mode?.redirect ?? -1),
                    .bulk("prefixes"), .array((mode?.prefixes ?? []).map { .bulk($0) }),
                ])
            }
        ),
        (
            "client|unblock", .control,
            { c throws(RedisError) in
                var error = false
                if c.count == 4 {
                    switch c.option(3) {
                    case "TIMEOUT": error = false
                    case "ERROR": error = true
                    default: throw .err("CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
                    }
                }
                let id = try c.integer(2)
                let reply: RESPValue = error ? .error("UNBLOCKED client unblocked via CLIENT UNBLOCK") : .nullArray
                return .integer(c.server.blocking.end(id, with: reply) ? 1 : 0)
            }
        ),
        (
            "client|pause", .control,
            { c throws(RedisError) in
                var writesOnly = false
                if c.count == 4 {
                    switch c.option(3) {
                    case "WRITE": writesOnly = true
                    case "ALL": writesOnly = false
                    default: throw .err("CLIENT PAUSE mode must be WRITE or ALL")
                    }
                }
                guard let milliseconds = RedisNumber.parseInteger(c[2]) else {
                    throw .err("timeout is not an integer or out of range")
                }
                if milliseconds < 0 { throw .err("timeout is negative") }
                let (sum, overflow) = ContinuousClock.now.milliseconds.addingReportingOverflow(milliseconds)
                let until = overflow ? Int64.max : sum
                // Like Redis's pause by CLIENT PAUSE: the last one sets both the end and the kind.
                c.server.pause.withLock { $0 = (until, writesOnly) }
                return .ok
            }
        ),
        (
            "client|unpause", .control,
            { c throws(RedisError) in
                c.server.pause.withLock { $0 = (0, false) }
                return .ok
            }
        ),
        (
            "client|help", .control,
            { _ throws(RedisError) in
                help(
                    "CLIENT",
                    [
                        "CACHING (YES|NO)",
                        "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
                        "GETREDIR", "    Return the client ID we are redirecting to when tracking is enabled.",
                        "GETNAME",
                        "    Return the name of the current connection.", "ID",
                        "    Return the ID of the current connection.",
                        "INFO", "    Return information about the current client connection.",
                        "KILL <ip:port>", "    Kill connection made from <ip:port>.",
                        "KILL <option> <value> [<option> <value> [...]]",
                        "    Kill connections. Options are:", "    * ADDR (<ip:port>|<unixsocket>:0)",
                        "      Kill connections made from the specified address",
                        "    * LADDR (<ip:port>|<unixsocket>:0)",
                        "      Kill connections made to specified local address",
                        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
                        "      Kill connections by type.", "    * USER <username>",
                        "      Kill connections authenticated by <username>.", "    * SKIPME (YES|NO)",
                        "      Skip killing current connection (default: yes).", "    * ID <client-id>",
                        "      Kill connections by client id.", "LIST [options ...]",
                        "    Return information about client connections. Options:",
                        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
                        "      Return clients of specified type.", "UNPAUSE",
                        "    Stop the current client pause, resuming traffic.",
                        "PAUSE <timeout> [WRITE|ALL]",
                        "    Suspend all, or just write, clients for <timeout> milliseconds.",
                        "REPLY (ON|OFF|SKIP)", "    Control the replies sent to the current connection.",
                        "SETNAME <name>",
                        "    Assign the name <name> to the current connection.", "UNBLOCK <clientid> [TIMEOUT|ERROR]",
                        "    Unblock the specified blocked client.",
                        "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
                        "         [OPTIN] [OPTOUT] [NOLOOP]", "    Control server assisted client side caching.",
                        "TRACKINGINFO", "    Report tracking status for the current connection.", "NO-EVICT (ON|OFF)",
                        "    Protect current client connection from eviction.",
                    ]
                )
            }
        ),
    ]

    private static func setName(_ c: inout RedisInvocation, _ name: [UInt8]) throws(RedisError) {
        if name.contains(where: { $0 < UInt8(ascii: "!") || $0 > UInt8(ascii: "~") }) {
            throw .err("Client names cannot contain spaces, newlines or special characters.")
        }
        let text = String(decoding: name, as: UTF8.self)
        c.client.shared.withLock { $0.name = text }
    }

    private static func killClients(_ c: inout RedisInvocation) throws(RedisError) -> RESPValue {
        var address: String? = nil
        var localAddress: String? = nil
        var id: Int64? = nil
        var type: String? = nil
        var skipMe = true
        var user: String? = nil
        if c.count == 3 {
            address = c.text(2)
            skipMe = false
        } else {
            var index = 2
            while index < c.count {
                guard index + 1 < c.count else { throw .syntax }
                switch c.option(index) {
                case "ID":
                    guard let value = RedisNumber.parseInteger(c[index + 1]), value >= 1 else {
                        throw .err("client-id should be greater than 0")
                    }
                    id = value
                case "TYPE":
                    let name = c.text(index + 1).lowercased()
                    guard ["normal", "master", "replica", "slave", "pubsub"].contains(name) else {
                        throw .err("Unknown client type '\(c.text(index + 1))'")
                    }
                    type = name
                case "ADDR": address = c.text(index + 1)
                case "LADDR": localAddress = c.text(index + 1)
                case "USER":
                    guard c.server.acl.user(c[index + 1]) != nil else {
                        throw .err("No such user '\(c.text(index + 1))'")
                    }
                    user = c.text(index + 1)
                case "SKIPME":
                    switch c.option(index + 1) {
                    case "YES": skipMe = true
                    case "NO": skipMe = false
                    default: throw .syntax
                    }
                default:
                    throw .syntax
                }
                index += 2
            }
        }
        var killed = 0
        for client in c.server.clients.all {
            if let address, client.address != address { continue }
            if let localAddress, client.localAddress != localAddress { continue }
            if let id, client.id != id { continue }
            if let user, client.shared.withLock({ $0.user }) != user { continue }
            if let type {
                let subscribed = client.isSubscribed
                if type == "pubsub" && !subscribed { continue }
                if type == "normal" && subscribed { continue }
                if type != "pubsub" && type != "normal" { continue }
            }
            if client === c.client {
                if skipMe { continue }
                c.closeAfterReply = true
            } else {
                client.shared.withLock { $0.killed = true }
                client.channel.close(promise: nil)
            }
            killed += 1
        }
        if c.count == 3 {
            if killed == 0 { throw .err("No such client") }
            return .ok
        }
        return .integer(killed)
    }

    /// CLIENT TRACKING ON|OFF [REDIRECT id] [BCAST] [PREFIX p]… [OPTIN] [OPTOUT] [NOLOOP], with Redis's checks.
    private static func clientTracking(_ c: inout RedisInvocation) throws(RedisError) -> RESPValue {
        var mode = RedisTracking.Mode()
        var prefixes: [[UInt8]] = []
        var index = 3
        while index < c.count {
            let more = c.count - 1 - index
            switch c.option(index) {
            case "REDIRECT" where more > 0:
                index += 1
                if mode.redirect != 0 { throw .err("A client can only redirect to a single other client") }
                let id = try c.integer(index)
                guard c.server.clients.client(id) != nil else {
                    throw .err("The client ID you want redirect to does not exist")
                }
                mode.redirect = id
            case "BCAST": mode.broadcast = true
            case "OPTIN": mode.optIn = true
            case "OPTOUT": mode.optOut = true
            case "NOLOOP": mode.noLoop = true
            case "PREFIX" where more > 0:
                index += 1
                prefixes.append(c[index])
            default:
                throw .syntax
            }
            index += 1
        }
        switch c.option(2) {
        case "ON":
            if !mode.broadcast && !prefixes.isEmpty { throw .err("PREFIX option requires BCAST mode to be enabled") }
            let current = c.server.tracking.mode(of: c.client.id)
            if let current, current.broadcast != mode.broadcast {
                throw .err(
                    "You can't switch BCAST mode on/off before disabling tracking for this client, and then "
                        + "re-enabling it with a different mode."
                )
            }
            if mode.broadcast && (mode.optIn || mode.optOut) {
                throw .err("OPTIN and OPTOUT are not compatible with BCAST")
            }
            if mode.optIn && mode.optOut { throw .err("You can't specify both OPTIN mode and OPTOUT mode") }
            if let current, (mode.optIn && current.optOut) || (mode.optOut && current.optIn) {
                throw .err(
                    "You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then "
                        + "re-enabling it with a different mode."
                )
            }
            if mode.broadcast {
                let existing = current?.prefixes ?? []
                func overlap(_ a: [UInt8], _ b: [UInt8]) -> Bool { a.starts(with: b) || b.starts(with: a) }
                for (offset, prefix) in prefixes.enumerated() {
                    if let clash = existing.first(where: { overlap($0, prefix) && $0 != prefix }) {
                        throw .err(
                            "Prefix '\(RedisText.cString(prefix))' overlaps with an existing prefix "
                                + "'\(RedisText.cString(clash))'. Prefixes for a single client must not overlap."
                        )
                    }
                    if let clash = prefixes[(offset + 1)...].first(where: { overlap($0, prefix) }) {
                        throw .err(
                            "Prefix '\(RedisText.cString(prefix))' overlaps with another provided prefix "
                                + "'\(RedisText.cString(clash))'. Prefixes for a single client must not overlap."
                        )
                    }
                }
                var all = existing
                for prefix in (prefixes.isEmpty && existing.isEmpty ? [[]] : prefixes) where !all.contains(prefix) {
                    all.append(prefix)
                }
                mode.prefixes = all.sorted { $0.lexicographicallyPrecedes($1) }
            }
            c.server.tracking.enable(c.client.id, mode)
        case "OFF":
            c.server.tracking.disable(c.client.id)
            c.session.trackingCaching = false
        default:
            throw .syntax
        }
        return .ok
    }
}
