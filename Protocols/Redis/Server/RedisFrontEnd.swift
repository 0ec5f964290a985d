internal import CoreMetrics
internal import Foundation
package import Logging
internal import NIOCore
internal import NIOPosix
package import ServiceLifecycle
package import StrataCommon
package import StrataFrontEnd
package import StrataMVCC
internal import StrataObservability
internal import StrataRedisStore
internal import Synchronization

/// The Redis front-end: a RESP2/RESP3 server over the shared core (``RedisData`` lays Redis's types out on it).
package struct RedisFrontEnd: Service {
    package let configuration: Configuration
    let store: MVCCStore
    let logger: Logger
    let dataDirectory: String
    let onListening: @Sendable () -> Void
    let metrics: FrontEndMetrics?

    package init(
        configuration: Configuration,
        store: MVCCStore,
        logger: Logger,
        dataDirectory: String = "",
        metrics: FrontEndMetrics? = nil,
        onListening: @escaping @Sendable () -> Void = {}
    ) {
        self.configuration = configuration
        self.metrics = metrics
        self.store = store
        self.logger = logger
        self.dataDirectory = dataDirectory
        self.onListening = onListening
    }

    package func run() async throws {
        let spaces = try await RedisSpaces(store: store, databases: configuration.databases)
        let config = RedisConfig(overrides: configuration.initialDirectives, configFile: configuration.configFile)
        let workingDirectory = FileManager.default.currentDirectoryPath
        // As redis-server, the personality shows the `dir` it was given, absolute (its store is <dir>/strata-data),
        // so that CONFIG REWRITE writes it back unchanged; `strata serve` shows its data directory.
        let directory =
            configuration.redisStyleLog
            ? URL(
                fileURLWithPath: configuration.directives["dir"] ?? ".",
                relativeTo: URL(fileURLWithPath: workingDirectory)
            )
            .standardizedFileURL.path
            : dataDirectory.isEmpty ? workingDirectory : dataDirectory
        _ = config.set([("dir", directory)], protectedAllowed: true)
        // The listeners close at once, so a client connecting after SHUTDOWN is refused as by an exited
        // redis-server; then SIGTERM to the process, not the calling thread (`raise`): the lifecycle's signal
        // watcher reads process signals only, so a SIGTERM aimed at an event-loop thread was lost.
        let listeners = Listeners()
        let stop: @Sendable () -> Void = {
            let channels = listeners.state.withLock { state in
                state.stopping = true
                return state.channels
            }
            for channel in channels { channel.close(promise: nil) }
            _ = kill(getpid(), SIGTERM)
        }
        let shutdown = configuration.allowShutdown ? stop : nil
        let server = RedisServer(
            store: store,
            spaces: spaces,
            config: config,
            logger: logger,
            tcpPort: configuration.listen.port,
            dataDirectory: directory,
            shutdown: shutdown,
            metrics: RedisMetrics(factory: metrics?.factory ?? NOOPMetricsHandler.instance),
            aclFile: configuration.aclFile.isEmpty ? nil : configuration.aclFile,
            renames: RedisCommandRenames(configuration.renamedCommands),
            oomScore: configuration.redisStyleLog ? RedisOOMScore() : nil
        )
        if let oomScore = server.oomScore, !oomScore.apply(config) { logger.warning("Unable to set oom_score_adj") }
        try loadUsers(server)
        metrics?.addCollector(server.metrics.collector(for: server))
        // Redis's `io-threads`: with 1 (its default) every connection is served by one event loop, so commands run
        // in the order they arrive across connections, as in Redis; more spread connections over that many threads.
        let ownGroup =
            configuration.ioThreads > 1 ? MultiThreadedEventLoopGroup(numberOfThreads: configuration.ioThreads) : nil
        defer { if let ownGroup { Task { try? await ownGroup.shutdownGracefully() } } }
        let group: any EventLoopGroup = ownGroup ?? MultiThreadedEventLoopGroup.singleton.next()
        func bootstrap() -> ServerBootstrap {
            ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 511)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.maxMessagesPerRead, value: 16)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(RedisConnectionHandler(server: server))
                    }
                }
        }
        let host = configuration.listen.host == "localhost" ? "127.0.0.1" : configuration.listen.host
        var bound: [any Channel] = []
        do {
            bound.append(try await bootstrap().bind(host: host, port: configuration.listen.port).get())
            if !configuration.unixSocket.isEmpty {
                try? FileManager.default.removeItem(atPath: configuration.unixSocket)
                bound.append(try await bootstrap().bind(unixDomainSocketPath: configuration.unixSocket).get())
                chmod(configuration.unixSocket, mode_t(configuration.unixSocketPermissions))
            }
        } catch {
            for channel in bound { try? await channel.close() }
            throw ListenError(component: "Redis", address: configuration.listen, underlying: error)
        }
        let channels = bound
        listeners.state.withLock { $0.channels = channels }
        let port = channels[0].localAddress?.port ?? configuration.listen.port
        logger.info("Redis RESP listening on \(host):\(port)")
        // What redis-server prints, and what testcontainers and pytest-redis wait for.
        logger.notice("Ready to accept connections")
        if configuration.redisStyleLog {
            // Redis's start-up lines (its logo's `PID:` is what Redis's own test harness waits for).
            RedisFrontEnd.printRedisLine(
                "Redis version=\(RedisInfo.redisVersion), bits=64, commit=00000000, modified=0, pid=\(getpid()), "
                    + "just started (Strata \(StrataVersion.current))"
            )
            RedisFrontEnd.printRedisLine("Running mode=standalone, port=\(port). PID: \(getpid())")
            RedisFrontEnd.printRedisLine("Ready to accept connections")
        }
        onListening()
        try await withGracefulShutdownHandler {
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await RedisReclaimer(store: store).run() }
                tasks.addTask { try await RedisNotifier(server: server).run() }
                tasks.addTask { try await Self.clientCron(server) }
                tasks.addTask {
                    try await channels[0].closeFuture.get()
                    // Closed by SHUTDOWN: the front-end ends with the rest of the process, on the SIGTERM it sent.
                    if listeners.state.withLock({ $0.stopping }) { try await gracefulShutdown() }
                }
                try await tasks.next()
                tasks.cancelAll()
            }
        } onGracefulShutdown: {
            // A script that never ends would hold the shutdown forever (SIGTERM stops redis-server under one too).
            server.scripting.killForShutdown()
            for channel in channels { channel.close(promise: nil) }
            for client in server.clients.all { client.channel.close(promise: nil) }
        }
        for channel in channels { try? await channel.close() }
        if !configuration.unixSocket.isEmpty { try? FileManager.default.removeItem(atPath: configuration.unixSocket) }
    }
}

extension RedisFrontEnd {
    struct ACLStartupError: Error, CustomStringConvertible {
        let description: String
    }

    /// Users from `user` directives or the ACL file, before any client connects (Redis refuses to start on an
    /// error in either).
    func loadUsers(_ server: RedisServer) throws {
        if !configuration.users.isEmpty {
            do throws(RedisError) {
                try server.acl.loadDirectives(configuration.users)
            } catch {
                throw ACLStartupError(
                    description: "Error loading ACL users from the configuration: \(error.message.dropFirst(4))"
                )
            }
        }
        guard let file = server.aclFile else { return }
        if !configuration.users.isEmpty {
            throw ACLStartupError(description: "users and an ACL file are both configured: use one of them")
        }
        switch server.acl.load(file: file) {
        case .success: break
        case .failure(let error):
            throw ACLStartupError(description: "Aborting start-up because of ACL errors: \(error.message.dropFirst(4))")
        }
    }
}

extension RedisFrontEnd {
    /// Redis's client cron, every 250 ms: closes clients idle past `timeout` (not blocked, subscribed or monitoring
    /// ones) and clients that have stayed over their soft output limit for its time.
    static func clientCron(_ server: RedisServer) async throws {
        while !Task.isCancelled {
            try await Task.sleep(for: .milliseconds(250))
            let effective = server.config.effective
            let timeout = Int64(effective.idleTimeoutSeconds)
            let now = server.store.wallMilliseconds
            for client in server.clients.all {
                let (idle, overSoftLimit, subscriber) = client.shared.withLock { state in
                    let subscriber = state.channels + state.patterns + state.shardChannels > 0
                    let idle =
                        timeout > 0 && !state.blocked && !state.monitor && !subscriber
                        && now - state.lastInteraction > timeout * 1000
                    return (idle, state.softLimitSince != 0, subscriber)
                }
                if idle {
                    client.channel.close(promise: nil)
                } else if overSoftLimit {
                    // A client over its soft limit goes when the time passes, even if nothing more is written to it.
                    _ = client.exceedsOutputLimit(adding: 0, effective.outputLimits[subscriber ? .pubsub : .normal])
                }
            }
        }
    }

    /// A line in redis-server's log format (`<pid>:M <date> * <message>`) on standard output.
    static func printRedisLine(_ message: String) {
        var now = timeval()
        gettimeofday(&now, nil)
        var seconds = now.tv_sec
        var parts = tm()
        localtime_r(&seconds, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, "%d %b %Y %H:%M:%S", &parts)
        let stamp = String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let milliseconds = String(format: "%03d", Int(now.tv_usec) / 1000)
        let line = "\(getpid()):M \(stamp).\(milliseconds) * \(message)\n"
        FileHandle.standardOutput.write(Data(line.utf8))
    }
}

extension RedisFrontEnd: FrontEnd {
    package static let name = "redis"
    package static var keyspaces: [Keyspace] { [.redis] }

    package static func configuration(reading reader: inout ConfigReader) throws(ConfigError) -> Configuration {
        var configuration = Configuration.defaults
        try configuration.read(from: &reader)
        return configuration
    }

    package static func makeService(_ configuration: Configuration, context: FrontEndContext) throws -> any Service {
        RedisFrontEnd(
            configuration: configuration,
            store: context.store,
            logger: context.logger,
            dataDirectory: context.dataDirectory,
            metrics: context.metrics,
            onListening: context.onListening
        )
    }

    package static var personality: Personality? { RedisPersonality.personality }
}

/// Delivers keyspace notifications and counts expired keys: one live watch on the keyspace's metadata and
/// announcement keys (``RedisLayout``), in commit order.
struct RedisNotifier {
    let server: RedisServer

    func run() async throws {
        while !Task.isCancelled {
            let request = WatchRequest(keyspace: .redis, range: RedisLayout.notifiedKeyRange)
            let watcher = try server.store.watch(request)
            defer { watcher.cancel() }
            do {
                for try await update in watcher {
                    switch update {
                    case .events(_, let events):
                        for event in events { deliver(event) }
                    case .overflowed:
                        server.logger.warning("Redis keyspace notifications fell behind; some were dropped")
                    case .progress, .compacted:
                        break
                    }
                }
            } catch {
                if Task.isCancelled { return }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    private func deliver(_ event: Event) {
        guard let operation = event.operation else { return }
        let flags = server.config.effective.notify
        if let (db, key) = RedisLayout.parseNotificationKey(event.kv.key) {
            server.notifyKeyspace(operation, db: db, key: key, flags: flags)
            return
        }
        guard operation == Event.expired, let (space, _, key) = RedisLayout.parseMetadataKey(event.kv.key) else {
            return
        }
        guard let db = server.spaces.database(of: space) else { return }
        server.stats.expiredKeys.wrappingAdd(1, ordering: .relaxed)
        server.tracking.invalidate([key], flushed: false, writer: nil, server: server)
        if flags.contains(.expired) && (flags.contains(.keyspace) || flags.contains(.keyevent)) {
            server.notifyKeyspace("expired", db: db, key: key, flags: flags)
        }
    }
}

/// The front-end's listening channels, and whether SHUTDOWN closed them.
private final class Listeners: Sendable {
    let state = Mutex<(channels: [any Channel], stopping: Bool)>(([], false))
}
