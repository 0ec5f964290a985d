package import NIOCore
package import Synchronization

/// One connection's state. Its event loop reads and writes it; CLIENT LIST/KILL/INFO and pub/sub read the shared
/// part from other connections' loops, so that part sits behind a lock.
package final class RedisClient: Sendable {
    package let id: Int64
    package let channel: any Channel
    package let address: String
    package let localAddress: String
    package let createdAt: Int64
    package let isUnixSocket: Bool

    /// What other connections see and change.
    package struct Shared: Sendable {
        package var name = ""
        package var libraryName = ""
        package var libraryVersion = ""
        package var db = 0
        package var resp = 2
        package var lastCommand = "NULL"
        package var lastInteraction: Int64
        package var authenticated: Bool
        /// The ACL user the connection runs as.
        package var user = "default"
        package var inMulti = false
        package var multiCount = 0
        package var watchCount = 0
        package var channels = 0
        package var patterns = 0
        package var shardChannels = 0
        package var blocked = false
        package var monitor = false
        package var replyMode = ReplyMode.on
        package var killed = false
        /// Bytes written to the socket and not yet confirmed sent (output buffer limits).
        package var pendingOutput = 0
        package var softLimitSince: Int64 = 0
        package var queryBuffer = 0
        package var noEvict = false
        package var noTouch = false
    }

    package enum ReplyMode: Sendable { case on, off, skip }

    package let shared: Mutex<Shared>

    package init(id: Int64, channel: any Channel, now: Int64, authenticated: Bool) {
        self.id = id
        self.channel = channel
        self.createdAt = now
        self.address = Self.describe(channel.remoteAddress)
        self.localAddress = Self.describe(channel.localAddress)
        if case .unixDomainSocket = channel.localAddress { isUnixSocket = true } else { isUnixSocket = false }
        self.shared = Mutex(Shared(lastInteraction: now, authenticated: authenticated))
    }

    static func describe(_ address: SocketAddress?) -> String {
        guard let address else { return "" }
        switch address {
        case .unixDomainSocket: return (address.pathname ?? "") + ":0"
        default: return "\(address.ipAddress ?? ""):\(address.port ?? 0)"
        }
    }

    package var db: Int { shared.withLock { $0.db } }
    package var resp: Int { shared.withLock { $0.resp } }
    package var isSubscribed: Bool { shared.withLock { $0.channels + $0.patterns + $0.shardChannels > 0 } }

    /// CLIENT LIST / CLIENT INFO's line for this client (Redis 7.0's fields, then 7.2's `lib-name`/`lib-ver`).
    package func infoLine(now: Int64) -> String {
        let state = shared.withLock { $0 }
        var flags = ""
        if state.monitor { flags += "O" }
        if state.channels + state.patterns + state.shardChannels > 0 { flags += "P" }
        if state.inMulti { flags += "x" }
        if state.blocked { flags += "b" }
        if state.killed { flags += "A" }
        if isUnixSocket { flags += "U" }
        if state.noEvict { flags += "e" }
        if state.noTouch { flags += "T" }
        if flags.isEmpty { flags = "N" }
        let age = (now - createdAt) / 1000
        let idle = (now - state.lastInteraction) / 1000
        let totalMemory = state.pendingOutput + state.queryBuffer + 1024
        return "id=\(id) addr=\(address) laddr=\(localAddress) fd=\(8 + id) name=\(state.name) age=\(age) "
            + "idle=\(idle) flags=\(flags) db=\(state.db) sub=\(state.channels) psub=\(state.patterns) "
            + "ssub=\(state.shardChannels) multi=\(state.inMulti ? state.multiCount : -1) qbuf=\(state.queryBuffer) "
            + "qbuf-free=0 argv-mem=0 multi-mem=0 rbs=1024 rbp=0 obl=0 oll=0 omem=\(state.pendingOutput) "
            + "tot-mem=\(totalMemory) events=r cmd=\(state.lastCommand) user=\(state.user) redir=-1 resp=\(state.resp) "
            + "lib-name=\(state.libraryName) lib-ver=\(state.libraryVersion)"
    }
}

/// Every connected client, by id.
package final class RedisClientRegistry: Sendable {
    private let clients = Mutex<[Int64: RedisClient]>([:])
    private let nextID = Atomic<Int64>(1)

    package init() {}

    package func allocateID() -> Int64 { nextID.wrappingAdd(1, ordering: .relaxed).oldValue }

    package func add(_ client: RedisClient) { clients.withLock { $0[client.id] = client } }
    package func remove(_ id: Int64) { clients.withLock { _ = $0.removeValue(forKey: id) } }
    package func client(_ id: Int64) -> RedisClient? { clients.withLock { $0[id] } }
    package var all: [RedisClient] { clients.withLock { Array($0.values) }.sorted { $0.id < $1.id } }
    package var count: Int { clients.withLock { $0.count } }
}
