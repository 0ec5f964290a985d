internal import CoreMetrics
package import Logging
package import StrataMVCC
package import StrataRedisStore
package import Synchronization

/// State every Redis connection shares: the store, the database table, configuration, clients, pub/sub, blocked
/// clients and statistics.
package final class RedisServer: Sendable {
    package let store: MVCCStore
    package let spaces: RedisSpaces
    package let config: RedisConfig
    package let stats: RedisStats
    package let clients = RedisClientRegistry()
    package let pubsub: RedisPubSub
    package let blocking: RedisBlocking
    package let slowlog: RedisSlowlog
    package let logger: Logger
    /// Milliseconds since the epoch when the server started.
    package let startedAt: Int64
    package let tcpPort: Int
    package let dataDirectory: String
    /// CLIENT PAUSE: until when (monotonic ms) and whether only writes are paused.
    package let pause = Mutex<(until: Int64, writesOnly: Bool)>((0, false))
    /// Clients whose command waits for CLIENT PAUSE to end (INFO counts them as blocked, as Redis does).
    package let postponed = Atomic<Int>(0)
    /// Blocked clients: on keys, or postponed by a pause.
    package var blockedClients: Int { blocking.blockedCount + postponed.load(ordering: .relaxed) }
    /// MONITOR subscribers.
    package let monitors = Mutex<[RedisClient]>([])
    /// `SHUTDOWN` allowed (config-gated): asks the process to stop.
    package let shutdown: (@Sendable () -> Void)?
    package let runID: String
    package let metrics: RedisMetrics
    /// EVAL's scripts and FUNCTION's libraries.
    package let scripting: RedisScripting
    /// CLIENT TRACKING.
    package let tracking = RedisTracking()
    /// ACL users, checks and log.
    package let acl: RedisACL
    /// The ACL file (ACL LOAD and SAVE), absolute; nil: none configured.
    package let aclFile: String?
    /// redis.conf's `rename-command` lines.
    package let renames: RedisCommandRenames
    /// The process's OOM score (`oom-score-adj`), when this process is a Redis server alone; nil otherwise.
    package let oomScore: RedisOOMScore?

    package init(
        store: MVCCStore,
        spaces: RedisSpaces,
        config: RedisConfig,
        logger: Logger,
        tcpPort: Int,
        dataDirectory: String,
        shutdown: (@Sendable () -> Void)?,
        metrics: RedisMetrics = RedisMetrics(factory: NOOPMetricsHandler.instance),
        aclFile: String? = nil,
        renames: RedisCommandRenames = RedisCommandRenames(),
        oomScore: RedisOOMScore? = nil
    ) {
        self.renames = renames
        self.oomScore = oomScore
        self.acl = RedisACL(config: config)
        self.aclFile = aclFile
        self.metrics = metrics
        self.store = store
        self.spaces = spaces
        self.config = config
        self.logger = logger
        let now = store.wallMilliseconds
        self.startedAt = now
        self.stats = RedisStats(now: now)
        self.pubsub = RedisPubSub(stats: stats, limits: { [config] in config.effective.outputLimits[.pubsub] })
        self.blocking = RedisBlocking()
        self.slowlog = RedisSlowlog()
        self.tcpPort = tcpPort
        self.dataDirectory = dataDirectory
        self.shutdown = shutdown
        self.runID = (0..<40).map { _ in String("0123456789abcdef".randomElement()!) }.joined()
        self.scripting = RedisScripting(logger: logger)
        scripting.loadLibraries(from: store, spaces: spaces)
    }

    /// One core write transaction over Redis's data, with the current `appendfsync` durability and notification
    /// classes: `body` reads and writes through `data`, and throws to write nothing.
    package func update(_ body: (inout RedisData) throws(MVCCError) -> Void) throws(MVCCError) -> PendingWrite<Void> {
        let effective = config.effective
        return try store.applyUpdate(.redis, durability: effective.durability) { txn throws(MVCCError) -> Void in
            var data = RedisData(store: store, spaces: spaces, transaction: txn, notify: effective.notify)
            data.trackModified = tracking.isActive
            try body(&data)
            txn = data.txn!
        }
    }

    /// Shows a command to MONITOR clients (all but `except`): `address` is the client's, or `lua` for a script's.
    package func feedMonitors(_ arguments: [[UInt8]], db: Int, address: String, except: RedisClient?) {
        let monitors = monitors.withLock { $0 }
        guard !monitors.isEmpty else { return }
        let now = store.wallMilliseconds
        var line = "\(now / 1000).\(String(format6: (now % 1000) * 1000)) [\(db) \(address)]"
        // Passwords and ACL rules never reach a monitor.
        for argument in RedisACL.redacted(arguments) { line += " \"" + RedisText.quoted(argument) + "\"" }
        for monitor in monitors where monitor !== except {
            monitor.push(.simple(line), limit: config.effective.outputLimits[.normal])
        }
    }

    /// Publishes a keyspace notification (`__keyspace@db__:key` → event, `__keyevent@db__:event` → key).
    package func notifyKeyspace(_ event: String, db: Int, key: [UInt8], flags: RedisNotifyFlags) {
        if flags.contains(.keyspace) {
            pubsub.publish(Array("__keyspace@\(db)__:".utf8) + key, Array(event.utf8))
        }
        if flags.contains(.keyevent) {
            pubsub.publish(Array("__keyevent@\(db)__:\(event)".utf8), key)
        }
    }
}

/// SLOWLOG's entries.
package final class RedisSlowlog: Sendable {
    package struct Entry: Sendable {
        package let id: Int64
        package let time: Int64
        package let microseconds: Int64
        package let arguments: [[UInt8]]
        package let address: String
        package let name: String
    }

    private let state = Mutex<(entries: [Entry], next: Int64)>(([], 0))

    package init() {}

    package func record(
        _ arguments: [[UInt8]],
        microseconds: Int64,
        client: RedisClient,
        now: Int64,
        maxLength: Int
    ) {
        // Redis keeps at most 32 arguments (the last says how many more) and 128 bytes of each.
        var kept: [[UInt8]] = []
        for (index, argument) in arguments.enumerated() {
            if index == 31 && arguments.count > 32 {
                kept.append(Array("... (\(arguments.count - 31) more arguments)".utf8))
                break
            }
            if argument.count > 128 {
                kept.append(Array(argument.prefix(128)) + Array("... (\(argument.count - 128) more bytes)".utf8))
            } else {
                kept.append(argument)
            }
        }
        let name = client.shared.withLock { $0.name }
        state.withLock { state in
            state.entries.insert(
                Entry(
                    id: state.next,
                    time: now / 1000,
                    microseconds: microseconds,
                    arguments: kept,
                    address: client.address,
                    name: name
                ),
                at: 0
            )
            state.next += 1
            if state.entries.count > maxLength { state.entries.removeLast(state.entries.count - maxLength) }
        }
    }

    package func entries(_ count: Int) -> [Entry] { state.withLock { Array($0.entries.prefix(count)) } }
    package var count: Int { state.withLock { $0.entries.count } }
    package func reset() { state.withLock { $0.entries = [] } }
    package func trim(to length: Int) {
        state.withLock { state in
            if state.entries.count > length { state.entries.removeLast(state.entries.count - length) }
        }
    }
}
