internal import Logging
internal import NIOCore
internal import StrataMVCC
internal import StrataRedisStore
internal import Synchronization

/// One client connection: parses every complete command of a read burst, runs them in order, and writes their
/// replies with one flush per burst. A write acknowledged under `appendfsync always` holds the burst's replies
/// until its fsync; a blocked command holds the commands after it until it is served or times out.
final class RedisConnectionHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let server: RedisServer
    private var session: RedisSession!
    private var context: ChannelHandlerContext!
    private var input = ByteBuffer()
    private var output = ByteBuffer()
    private var parser = RESPRequestParser()
    /// Replies wait for the fsync of this write.
    private var durability: RedisDurabilityWait?
    private var awaitingFsync = false
    private var blocked = false
    private var blockTimer: Scheduled<Void>?
    /// The command a blocked client waits in (its failure is counted when it ends).
    private var blockedCommand: String?
    private var closing = false
    /// The socket is not draining: no commands run and nothing is read until it is writable again.
    private var writePaused = false
    /// Consecutive plain writes of one burst (a pipeline), run as one core transaction by ``runGroup()``.
    private var group: [(RedisCommand, [[UInt8]])] = []
    /// A command waits for CLIENT PAUSE to end.
    private var postponed = false
    /// A command waits for another client's script to end (or to pass the busy threshold).
    private var waitingForScript = false
    /// A command is running (its nested writes go to `output`).
    private var commandBytes = 0

    init(server: RedisServer) {
        self.server = server
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        input = context.channel.allocator.buffer(capacity: 4096)
        output = context.channel.allocator.buffer(capacity: 4096)
    }

    func channelActive(context: ChannelHandlerContext) {
        let effective = server.config.effective
        let open = server.acl.defaultUserOpen
        let client = RedisClient(
            id: server.clients.allocateID(),
            channel: context.channel,
            now: server.store.wallMilliseconds,
            authenticated: open
        )
        session = RedisSession(client: client, authenticated: open)
        parser.authenticated = session.authenticated
        parser.maxBulkLength = effective.maxBulkLength
        server.stats.connectionsReceived.wrappingAdd(1, ordering: .relaxed)
        if server.clients.count >= effective.maxClients {
            server.stats.connectionsRejected.wrappingAdd(1, ordering: .relaxed)
            output.writeRESP(.error("ERR max number of clients reached"), version: 2)
            closing = true
            flush(close: true)
            return
        }
        server.clients.add(client)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        guard let session else { return }
        if postponed {
            postponed = false
            server.postponed.wrappingSubtract(1, ordering: .relaxed)
        }
        waitingForScript = false
        server.tracking.disable(session.client.id)
        blockTimer?.cancel()
        server.blocking.end(session.client.id, with: nil)
        for channel in session.channels { server.pubsub.unsubscribe(session.client, channel, .channel) }
        for pattern in session.patterns { server.pubsub.unsubscribe(session.client, pattern, .pattern) }
        for channel in session.shardChannels { server.pubsub.unsubscribe(session.client, channel, .shard) }
        server.monitors.withLock { $0.removeAll { $0 === session.client } }
        server.clients.remove(session.client.id)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard !closing else { return }
        server.stats.inputBytes.wrappingAdd(bytes.readableBytes, ordering: .relaxed)
        input.writeBuffer(&bytes)
        if input.readableBytes > server.config.effective.queryBufferLimit {
            server.logger.warning("closing Redis client \(session.client.address): query buffer over its limit")
            closing = true
            context.close(promise: nil)
            return
        }
        session.client.shared.withLock { $0.queryBuffer = input.readableBytes }
        process()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    // MARK: The command loop

    /// Runs every complete command in the input, unless blocked or waiting for an fsync.
    private func process() {
        while !blocked && !awaitingFsync && !closing && !writePaused {
            let start = input.readerIndex
            // Redis's limits for unauthenticated clients end with AUTH (or when the default user needs no password).
            if !parser.authenticated { parser.authenticated = session.authenticated || server.acl.defaultUserOpen }
            let outcome = parser.next(&input)
            switch outcome {
            case .needMore:
                runGroup()
                finishBurst()
                compactInput()
                return
            case .nothing:
                continue
            case .protocolError(let message):
                runGroup()
                writeReply(.error("ERR Protocol error: " + message), force: true)
                closing = true
            case .command(let typed):
                commandBytes = input.readerIndex - start
                guard let arguments = server.renames.resolve(typed) else {
                    // Renamed away (`rename-command`): its old name is unknown.
                    runGroup()
                    execute(typed, .failure(RedisCommandTable.unknownCommand(typed)))
                    continue
                }
                let lookup = RedisCommandTable.lookup(arguments)
                if case .success(let command) = lookup, groupable(command, arguments) {
                    group.append((command, arguments))
                    if group.count >= Self.maxGroup { runGroup() }
                    continue
                }
                runGroup()
                execute(arguments, lookup)
                // Big replies go out as they come, so one burst of pipelined reads cannot pile up unbounded output
                // (replies held for an fsync stay until it is done: writes' replies are small).
                if output.readableBytes >= 64 * 1024 && durability == nil && !blocked { flush(close: false) }
            }
        }
        runGroup()
        finishBurst()
        compactInput()
    }

    private func compactInput() {
        if input.readerIndex > 64 * 1024 || input.readableBytes == 0 { input.discardReadBytes() }
        session?.client.shared.withLock { $0.queryBuffer = input.readableBytes }
    }

    /// Sends the burst's replies, after the fsync of its last durable write when there is one.
    private func finishBurst() {
        if let wait = durability {
            durability = nil
            awaitingFsync = true
            let loop = context.eventLoop
            wait.whenDurable { [self] error in
                loop.execute {
                    self.awaitingFsync = false
                    if let error {
                        // Not durable: the write must not be acknowledged.
                        self.server.logger.error("Redis write not made durable: \(error); closing the client")
                        self.output.clear()
                        self.closing = true
                        self.context.close(promise: nil)
                        return
                    }
                    self.flush(close: self.closing)
                    self.process()
                }
            }
            return
        }
        flush(close: closing)
    }

    private func flush(close: Bool) {
        if output.readableBytes > 0 {
            let size = output.readableBytes
            server.stats.outputBytes.wrappingAdd(size, ordering: .relaxed)
            let buffer = output
            output = context.channel.allocator.buffer(capacity: 1024)
            if close {
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
                return
            }
            let client = session.client
            let limit = server.config.effective.outputLimits[.normal]
            if client.exceedsOutputLimit(adding: size, limit) {
                server.logger.warning("closing Redis client \(client.address): output buffer over its limit")
                closing = true
                return
            }
            context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in
                client.shared.withLock { $0.pendingOutput -= size }
            }
            // Without a hard limit (Redis's default for normal clients is none), a client that does not read its
            // replies stops being read from, so its commands stop running and its output stops growing, until the
            // socket drains. With one, its output grows to the limit and it is disconnected, as Redis does.
            if limit.hard == 0 && !context.channel.isWritable && !writePaused {
                writePaused = true
                context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
            }
        } else if close {
            context.close(promise: nil)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && writePaused {
            writePaused = false
            context.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
            process()
        }
        context.fireChannelWritabilityChanged()
    }

    /// Appends a reply, as CLIENT REPLY allows (`force`: protocol errors and the like always go out).
    private func writeReply(_ reply: RESPValue, force: Bool = false) {
        if case .error(let message) = reply { server.stats.recordError(message) }
        defer {
            if session.armSkip {
                session.armSkip = false
                session.skipNext = true
            }
        }
        // Pub/sub frames (subscription confirmations; RESP2 arrays, RESP3 pushes) are not replies: CLIENT REPLY
        // OFF|SKIP leave them alone, as in Redis.
        if !force && reply.isPush {
            session.skipNext = false  // the command a SKIP was for has run
            output.writeRESP(reply, version: session.resp)
            return
        }
        if !force {
            if session.skipNext {
                session.skipNext = false
                return
            }
            if session.replyMode == .off { return }
        }
        output.writeRESP(reply, version: session.resp)
    }

    // MARK: Dispatch

    /// Runs one command (`lookup`: its table entry, when the caller has looked it up already).
    private func execute(_ arguments: [[UInt8]], _ lookup: Result<RedisCommand, RedisError>? = nil) {
        let name = String(decoding: arguments[0], as: UTF8.self).lowercased()
        if name == "host:" || name == "post" {
            server.logger.warning("possible cross-protocol attack from \(session.client.address): closing")
            closing = true
            return
        }
        let now = server.store.wallMilliseconds
        session.client.shared.withLock { $0.lastInteraction = now }
        let command: RedisCommand
        switch lookup ?? RedisCommandTable.lookup(arguments) {
        case .failure(let error):
            reject(error.message, command: nil)
            return
        case .success(let found):
            command = found
        }
        session.client.shared.withLock { $0.lastCommand = command.name }
        guard command.spec.accepts(arguments.count) else {
            reject("ERR wrong number of arguments for '\(command.name)' command", command: command)
            return
        }
        if command.spec.flags.contains(.protected) && !allowsProtected("enable-debug-command") {
            reject(
                "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run "
                    + "it from a local connection, otherwise you need to set this option in the configuration file, "
                    + "and then restart the server.",
                command: command
            )
            return
        }
        if !session.authenticated && !command.spec.flags.contains(.noAuth) && !server.acl.defaultUserOpen {
            reject("NOAUTH Authentication required.", command: command)
            return
        }
        if session.queued != nil && command.spec.flags.contains(.noMulti) {
            reject("ERR Command not allowed inside a transaction", command: command)
            return
        }
        if let denial = aclDenial(command, arguments) {
            logDenial(denial, command, arguments, context: session.queued != nil ? .multi : .toplevel)
            reject(RedisACL.message(denial, command: command.name), command: command)
            return
        }
        if session.resp == 2 && session.client.isSubscribed && !Self.allowedWhileSubscribed.contains(command.name) {
            reject(
                "ERR Can't execute '\(command.name)': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are "
                    + "allowed in this context",
                command: command
            )
            return
        }
        if let busy = server.scripting.busyError(for: command) {
            reject(busy, command: command)
            return
        }
        if session.queued != nil && !Self.runInsideMulti.contains(command.name) {
            session.queued!.append((command, arguments))
            session.publishMulti()
            writeReply(.queued)
            return
        }
        if isPaused(command, arguments) {
            postponeUntilUnpaused(arguments)
            return
        }
        let runsScript = RedisCommands.runsScript.contains(command.name)
        if !runsScript && (command.access == .write || command.name == "exec") && waitForScript(arguments) { return }
        if command.name == "exec" {
            exec(arguments)
        } else if runsScript {
            runScript(command, arguments)
        } else {
            run(command, arguments)
        }
    }

    /// Why the connection's user may not run `arguments`, if it may not.
    private func aclDenial(_ command: RedisCommand, _ arguments: [[UInt8]]) -> RedisACL.Denial? {
        if session.isUnrestricted(server.acl) { return nil }
        // A user deleted since the connection authenticated can do nothing (the connection is being closed).
        guard let user = session.currentUser(server.acl) else { return .command }
        guard let id = RedisACLCatalog.shared.byName[command.spec.name] else { return nil }
        return RedisACL.check(user, id: id, arguments)
    }

    private func logDenial(
        _ denial: RedisACL.Denial,
        _ command: RedisCommand,
        _ arguments: [[UInt8]],
        context: RedisACL.LogContext
    ) {
        let now = server.store.wallMilliseconds
        server.acl.log(
            denial,
            context: context,
            object: RedisACL.object(denial, command: command.name, arguments),
            username: session.userName,
            clientInfo: session.client.infoLine(now: now),
            now: now
        )
    }

    /// Commands a RESP2 connection may send while subscribed.
    private static let allowedWhileSubscribed: Set<String> = [
        "ping", "subscribe", "ssubscribe", "unsubscribe", "sunsubscribe", "psubscribe", "punsubscribe", "quit",
        "reset",
    ]

    /// Commands MULTI runs at once instead of queueing.
    private static let runInsideMulti: Set<String> = ["exec", "discard", "multi", "watch", "quit", "reset"]

    private func allowsProtected(_ parameter: String) -> Bool {
        switch server.config.value(parameter) {
        case "yes": return true
        case "local": return session.client.isUnixSocket || session.client.address.hasPrefix("127.")
        default: return false
        }
    }

    private func reject(_ message: String, command: RedisCommand?) {
        if let command { server.stats.rejected(command.name) }
        if session.queued != nil && command?.name == "exec" {
            // A refused EXEC ends the transaction, saying why (Redis's execCommandAbort).
            session.queued = nil
            session.queueFailed = false
            session.watched = []
            session.publishMulti()
            writeReply(.error("EXECABORT Transaction discarded because of: " + message))
            return
        }
        if session.queued != nil { session.queueFailed = true }
        writeReply(.error(message))
    }

    // MARK: Running

    /// Runs one command outside MULTI.
    /// Whether `command` is a write that ``execute(_:_:)`` would run straight away, needs nothing but the store and
    /// cannot block: those of a pipeline are grouped (anything else goes through ``execute(_:_:)``). The cheap
    /// checks come first: reads never take the shared locks.
    private func groupable(_ command: RedisCommand, _ arguments: [[UInt8]]) -> Bool {
        command.access == .write && command.spec.accepts(arguments.count)
            && command.spec.flags.isDisjoint(with: [.blocking, .protected, .noMulti, .admin])
            && !Self.ungroupable.contains(command.name) && session.authenticated && session.queued == nil
            && session.isUnrestricted(server.acl)
            && !session.client.isSubscribed && server.monitors.withLock({ $0.isEmpty })
            && server.blocking.blockedCount == 0 && !isPaused(command, arguments) && !server.scripting.isRunning
    }

    /// Most writes in one group: bounds the transaction (and the work redone when one of them fails).
    private static let maxGroup = 64

    /// Writes that change more than keys (the database table) or end the connection.
    private static let ungroupable = Set(["flushdb", "flushall", "swapdb", "move", "quit", "exec"])
        .union(RedisCommands.runsScript)

    /// Runs the grouped writes as one core transaction (one revision, one RocksDB write): each command's reply is
    /// what it would have been alone, since nothing else writes in between. If any of them fails, nothing of the
    /// group is kept and each runs again on its own, so a failing command changes nothing, as in Redis.
    private func runGroup() {
        guard !group.isEmpty else { return }
        let commands = group
        group = []
        guard commands.count > 1 else {
            execute(commands[0].1)
            return
        }
        var replies: [(RESPValue, Duration)] = []
        var readied: [RedisKeyName] = []
        var changes = 0
        var written: RedisData? = nil
        do throws(MVCCError) {
            let pending = try server.update { data throws(MVCCError) -> Void in
                for (command, arguments) in commands {
                    let started = ContinuousClock.now
                    var invocation = makeInvocation(arguments, inTransaction: false)
                    invocation.data = data
                    do throws(RedisError) {
                        let reply = try command.run(&invocation)
                        guard invocation.block == nil, !invocation.closeAfterReply else { throw RedisError.syntax }
                        replies.append((reply, started.duration(to: .now)))
                    } catch {
                        throw .rejected(Rejection(code: 0, message: error.message))
                    }
                    data = invocation.data
                }
                readied = data.readied
                changes = data.changes
                written = data
            }
            if pending.revision != nil { durability = RedisDurabilityWait(store: server.store, pending: pending) }
        } catch {
            for (_, arguments) in commands { execute(arguments) }
            return
        }
        server.stats.dirty.wrappingAdd(changes, ordering: .relaxed)
        let now = server.store.wallMilliseconds
        for ((command, arguments), (reply, elapsed)) in zip(commands, replies) {
            session.client.shared.withLock {
                $0.lastInteraction = now
                $0.lastCommand = command.name
            }
            finish(command, arguments, reply: reply, elapsed: elapsed)
            writeReply(reply)
            commandDone(command.name)
        }
        if let written { invalidate(written) }
        if !readied.isEmpty { server.blocking.signal(readied, server: server) }
    }

    private func run(_ command: RedisCommand, _ arguments: [[UInt8]]) {
        let started = ContinuousClock.now
        var invocation = makeInvocation(arguments, inTransaction: false)
        var reply: RESPValue = .null
        var readied: [RedisKeyName] = []
        switch command.access {
        case .read, .control:
            do throws(RedisError) {
                reply = try command.run(&invocation)
            } catch {
                reply = .error(error.message)
            }
            recordHits(invocation.data)
        case .write:
            let (written, wait) = server.runWrite(command, &invocation)
            reply = written
            if let wait { durability = wait }
            readied = invocation.data.readied
        }
        let elapsed = started.duration(to: .now)
        finish(command, arguments, reply: reply, elapsed: elapsed)
        if let request = invocation.block {
            block(command, arguments, request)
        } else {
            writeReply(reply)
            if command.access == .write && !reply.isError { invalidate(invocation.data) }
        }
        commandDone(command.name)
        if invocation.closeAfterReply { closing = true }
        if !readied.isEmpty { server.blocking.signal(readied, server: server) }
    }

    private func makeInvocation(_ arguments: [[UInt8]], inTransaction: Bool) -> RedisInvocation {
        RedisInvocation(
            server: server,
            session: session,
            arguments: arguments,
            data: RedisData(store: server.store, spaces: server.spaces, notify: server.config.effective.notify),
            inTransaction: inTransaction
        )
    }

    private func recordHits(_ data: RedisData) {
        if data.hits > 0 { server.stats.keyspaceHits.wrappingAdd(data.hits, ordering: .relaxed) }
        if data.misses > 0 { server.stats.keyspaceMisses.wrappingAdd(data.misses, ordering: .relaxed) }
    }

    /// Statistics, slowlog and MONITOR for a command that ran.
    private func finish(
        _ command: RedisCommand,
        _ arguments: [[UInt8]],
        reply: RESPValue,
        elapsed: Duration,
        monitored: Bool = false
    ) {
        let microseconds = elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000
        let effective = server.config.effective
        server.stats.commandsProcessed.wrappingAdd(1, ordering: .relaxed)
        server.stats.record(
            command.name,
            microseconds: microseconds,
            failed: reply.isError,
            trackLatency: effective.latencyTracking
        )
        server.metrics.record(
            command.name,
            nanoseconds: elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
        )
        if effective.slowlogSlowerThan >= 0 && microseconds >= effective.slowlogSlowerThan
            && !command.spec.flags.contains(.skipSlowlog)
        {
            server.slowlog.record(
                RedisACL.redacted(arguments),
                microseconds: microseconds,
                client: session.client,
                now: server.store.wallMilliseconds,
                maxLength: effective.slowlogMaxLength
            )
        }
        if !monitored && !command.spec.flags.contains(.skipMonitor) { feedMonitors(arguments) }
        // (A script's reads are remembered while it runs: as the keys it declared.)
        if server.tracking.isActive && command.spec.flags.contains(.readonly) && !command.spec.flags.contains(.pubsub)
            && !RedisCommands.runsScript.contains(command.name)
        {
            let keys = ((try? RedisKeyFinder.keys(arguments)) ?? []).map { arguments[$0.position] }
            server.tracking.remember(keys, client: session.client.id, caching: session.trackingCaching)
            server.tracking.enforceLimit(server)
        }
    }

    private func feedMonitors(_ arguments: [[UInt8]]) {
        server.feedMonitors(arguments, db: session.db, address: session.client.address, except: session.client)
    }

    // MARK: MULTI / EXEC

    /// EXEC: every queued command in one transaction, after checking the WATCHed keys inside it.
    private func exec(_ arguments: [[UInt8]]) {
        guard let queue = session.queued else {
            // A failed call of EXEC, in its statistics (Redis's failed_calls).
            let reply = RESPValue.error("ERR EXEC without MULTI")
            finish(RedisCommandTable.commands["exec"]!, arguments, reply: reply, elapsed: .zero)
            writeReply(reply)
            return
        }
        let failedQueue = session.queueFailed
        let watched = session.watched
        session.queued = nil
        session.queueFailed = false
        session.watched = []
        session.publishMulti()
        let started = ContinuousClock.now
        let exec = RedisCommandTable.commands["exec"]!
        if failedQueue {
            let reply = RESPValue.error("EXECABORT Transaction discarded because of previous errors.")
            finish(exec, arguments, reply: reply, elapsed: started.duration(to: .now))
            writeReply(reply)
            return
        }
        var replies: [RESPValue] = []
        var aborted = false
        var readied: [RedisKeyName] = []
        var written: RedisData? = nil
        var closeAfter = false
        var storageFailure: RedisError? = nil
        do throws(MVCCError) {
            let pending = try server.update { data throws(MVCCError) -> Void in
                for watch in watched {
                    let current: Revision?
                    do throws(RedisError) {
                        current = try data.lookup(watch.db, watch.key)?.modRevision
                    } catch {
                        storageFailure = error
                        throw .rejected(Rejection(code: 0, message: error.message))
                    }
                    if current != watch.revision {
                        aborted = true
                        return
                    }
                }
                for (command, commandArguments) in queue {
                    // Permissions are checked again: they may have changed since the command was queued.
                    if let denial = aclDenial(command, commandArguments) {
                        logDenial(denial, command, commandArguments, context: .multi)
                        server.stats.recordError(RedisACL.execMessage(denial))
                        replies.append(.error(RedisACL.execMessage(denial)))
                        continue
                    }
                    var invocation = RedisInvocation(
                        server: server,
                        session: session,
                        arguments: commandArguments,
                        data: data,
                        inTransaction: true
                    )
                    let commandStarted = ContinuousClock.now
                    var reply: RESPValue
                    do throws(RedisError) {
                        reply = try command.run(&invocation)
                    } catch {
                        if case .storage = error {
                            storageFailure = error
                            throw .rejected(Rejection(code: 0, message: error.message))
                        }
                        reply = .error(error.message)
                    }
                    if invocation.block != nil { reply = .nullArray }
                    if invocation.closeAfterReply { closeAfter = true }
                    data = invocation.data
                    // An error inside EXEC's reply counts in the error statistics, as in Redis.
                    if case .error(let message) = reply { server.stats.recordError(message) }
                    replies.append(reply)
                    finish(command, commandArguments, reply: reply, elapsed: commandStarted.duration(to: .now))
                }
                readied = data.readied
                written = data
                server.stats.dirty.wrappingAdd(data.changes, ordering: .relaxed)
            }
            if pending.revision != nil { durability = RedisDurabilityWait(store: server.store, pending: pending) }
        } catch {
            let message = (storageFailure ?? .storage(error)).message
            server.spaces.reload(from: server.store)
            let reply = RESPValue.error("EXECABORT Transaction discarded because of: " + message)
            finish(exec, arguments, reply: reply, elapsed: started.duration(to: .now))
            writeReply(reply)
            return
        }
        if aborted {
            finish(exec, arguments, reply: .nullArray, elapsed: started.duration(to: .now))
            writeReply(.nullArray)
            return
        }
        finish(exec, arguments, reply: .array(replies), elapsed: started.duration(to: .now))
        writeReply(.array(replies))
        if let written { invalidate(written) }
        commandDone("exec")
        if closeAfter { closing = true }
        if !readied.isEmpty { server.blocking.signal(readied, server: server) }
    }

    // MARK: Client-side caching

    /// Tells tracking clients about the keys a committed write changed; this connection's own message follows its
    /// reply, as Redis sends it.
    private func invalidate(_ data: RedisData) {
        guard !data.modified.isEmpty || data.flushed else { return }
        server.tracking.invalidate(data.modified, flushed: data.flushed, writer: session.client, server: server) {
            [self] message in self.output.writeRESP(message, version: self.session.resp)
        }
    }

    /// CLIENT CACHING covers the next command, or the next transaction.
    private func commandDone(_ name: String) {
        if session.trackingCaching && session.queued == nil && !name.hasPrefix("client") {
            session.trackingCaching = false
        }
    }

    // MARK: Scripts

    /// Runs EVAL or FCALL on the script thread: this connection waits (its later commands stay queued), the
    /// event loop does not.
    private func runScript(_ command: RedisCommand, _ arguments: [[UInt8]]) {
        blocked = true
        // MONITOR shows the script before the commands it runs.
        feedMonitors(arguments)
        let loop = context.eventLoop
        let started = ContinuousClock.now
        let job = ScriptJob(makeInvocation(arguments, inTransaction: false))
        server.scripting.submit { [self, server] in
            job.run(command, server: server)
            let elapsed = started.duration(to: .now)
            loop.execute {
                self.blocked = false
                if let wait = job.wait { self.durability = wait }
                self.finish(command, arguments, reply: job.reply, elapsed: elapsed, monitored: true)
                self.writeReply(job.reply)
                self.invalidate(job.invocation.data)
                self.commandDone(command.name)
                if !job.readied.isEmpty { server.blocking.signal(job.readied, server: server) }
                self.process()
            }
        }
    }

    /// Holds a write while another client's script runs (it would wait for the core's write lock on this event
    /// loop); true when it waits. It runs again when the script ends, or gets BUSY when the script passes the
    /// threshold.
    private func waitForScript(_ arguments: [[UInt8]]) -> Bool {
        let loop = context.eventLoop
        guard server.scripting.waitForScript({ loop.execute { self.resumeAfterScript(arguments) } }) else {
            return false
        }
        blocked = true
        waitingForScript = true
        return true
    }

    private func resumeAfterScript(_ arguments: [[UInt8]]) {
        guard waitingForScript else { return }  // the connection closed meanwhile
        waitingForScript = false
        blocked = false
        execute(arguments)
        process()
    }

    // MARK: Blocking

    private func block(_ command: RedisCommand, _ arguments: [[UInt8]], _ request: RedisBlockRequest) {
        blocked = true
        blockedCommand = command.name
        session.client.shared.withLock { $0.blocked = true }
        let loop = context.eventLoop
        let monotonicNow = ContinuousClock.now.milliseconds
        // (Timeouts beyond a century are as good as none.)
        let milliseconds = min((request.timeout * 1000).rounded(.up), 3e12)
        let deadline = request.timeout > 0 ? monotonicNow + Int64(milliseconds) : 0
        let waiter = RedisBlocking.Waiter(
            session: session,
            db: session.db,
            request: request,
            command: command,
            arguments: arguments,
            deadline: deadline,
            served: { [self] reply, wait, modified in
                loop.execute {
                    if let wait { self.durability = wait }
                    self.unblock(with: reply, modified: modified)
                }
            },
            ended: { [self] reply in loop.execute { self.unblock(with: reply) } }
        )
        server.blocking.add(waiter)
        if request.timeout > 0 {
            let id = session.client.id
            let server = server
            blockTimer = loop.scheduleTask(in: .milliseconds(deadline - monotonicNow)) {
                server.blocking.end(id, with: .nullArray)
            }
        }
        // Served at once if the key became ready between the command and the registration.
        server.blocking.signal(request.keys.map { RedisKeyName(db: session.db, key: $0) }, server: server)
    }

    private func unblock(with reply: RESPValue, modified: [[UInt8]] = []) {
        guard blocked else { return }
        blocked = false
        blockTimer?.cancel()
        blockTimer = nil
        session.client.shared.withLock { $0.blocked = false }
        if reply.isError, let name = blockedCommand { server.stats.failedAfterBlocking(name) }
        blockedCommand = nil
        writeReply(reply)
        // Tracking clients hear of the keys the served command changed, after its reply.
        if !modified.isEmpty {
            server.tracking.invalidate(modified, flushed: false, writer: session.client, server: server) {
                [self] message in self.output.writeRESP(message, version: self.session.resp)
            }
        }
        process()
    }

    // MARK: CLIENT PAUSE

    private func isPaused(_ command: RedisCommand, _ arguments: [[UInt8]]) -> Bool {
        let (until, writesOnly) = server.pause.withLock { $0 }
        guard until > ContinuousClock.now.milliseconds else { return false }
        if !writesOnly { return true }
        // As Redis: writes and commands that may replicate (PUBLISH, PFCOUNT, …), scripts unless declared
        // `no-writes` (or run by a `_RO` command), and EXEC when its queue has one of those.
        func writes(_ command: RedisCommand, _ arguments: [[UInt8]]) -> Bool {
            if RedisCommands.runsScript.contains(command.name) {
                return !server.scripting.isReadOnly(command.name, arguments)
            }
            return !command.spec.flags.isDisjoint(with: [.write, .mayReplicate])
        }
        if command.name == "exec" { return (session.queued ?? []).contains { writes($0.0, $0.1) } }
        return writes(command, arguments)
    }

    /// Holds the connection (this command and the ones after it) until the pause ends.
    private func postponeUntilUnpaused(_ arguments: [[UInt8]]) {
        blocked = true
        postponed = true
        server.postponed.wrappingAdd(1, ordering: .relaxed)
        session.client.shared.withLock { $0.blocked = true }
        context.eventLoop.scheduleTask(in: .milliseconds(10)) { self.resumeWhenUnpaused(arguments) }
    }

    private func resumeWhenUnpaused(_ arguments: [[UInt8]]) {
        let until = server.pause.withLock { $0.until }
        let now = ContinuousClock.now.milliseconds
        if until > now {
            context.eventLoop.scheduleTask(in: .milliseconds(min(until - now, 50))) {
                self.resumeWhenUnpaused(arguments)
            }
            return
        }
        guard postponed else { return }  // the connection closed meanwhile
        postponed = false
        server.postponed.wrappingSubtract(1, ordering: .relaxed)
        blocked = false
        session.client.shared.withLock { $0.blocked = false }
        execute(arguments)
        process()
    }
}

extension String {
    /// Zero-padded to six digits (MONITOR's microseconds).
    init(format6 value: Int64) {
        var digits = Array("\(value)".utf8)
        while digits.count < 6 { digits.insert(UInt8(ascii: "0"), at: 0) }
        self.init(decoding: digits, as: UTF8.self)
    }
}

/// A script command on its way to the script thread and its result on the way back (each side touches it in turn).
private final class ScriptJob: @unchecked Sendable {
    var invocation: RedisInvocation
    var reply: RESPValue = .null
    var readied: [RedisKeyName] = []
    var wait: RedisDurabilityWait? = nil

    init(_ invocation: RedisInvocation) { self.invocation = invocation }

    /// Runs the command in one write transaction, as ``RedisConnectionHandler`` runs any write.
    func run(_ command: RedisCommand, server: RedisServer) {
        (reply, wait) = server.runWrite(command, &invocation)
        readied = invocation.data.readied
    }
}

extension RedisServer {
    /// Runs a write command in one core transaction: its reply, and the wait for its fsync when it wrote. A command
    /// that fails writes nothing; a storage failure is an error reply (and the database table is reloaded).
    func runWrite(_ command: RedisCommand, _ invocation: inout RedisInvocation) -> (RESPValue, RedisDurabilityWait?) {
        var reply: RESPValue = .null
        var failure: RedisError? = nil
        do throws(MVCCError) {
            let pending = try update { data throws(MVCCError) -> Void in
                invocation.data = data
                do throws(RedisError) {
                    reply = try command.run(&invocation)
                } catch {
                    failure = error
                    throw .rejected(Rejection(code: 0, message: error.message))
                }
                data = invocation.data
            }
            stats.dirty.wrappingAdd(invocation.data.changes, ordering: .relaxed)
            return (reply, pending.revision != nil ? RedisDurabilityWait(store: store, pending: pending) : nil)
        } catch {
            if failure == nil { spaces.reload(from: store) }
            return (.error((failure ?? .storage(error)).message), nil)
        }
    }
}
