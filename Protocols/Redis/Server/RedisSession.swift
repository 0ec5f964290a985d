package import StrataMVCC
internal import Synchronization

/// A connection's own state, touched only on its event loop (and, while the connection is blocked and therefore
/// idle, by the thread serving its blocked command).
package final class RedisSession {
    package let client: RedisClient
    /// SELECT's database.
    package var db = 0 {
        didSet { if !isScript { client.shared.withLock { $0.db = db } } }
    }
    /// RESP version (HELLO).
    package var resp = 2 {
        didSet { if !isScript { client.shared.withLock { $0.resp = resp } } }
    }
    /// A script's own session: its SELECT and RESP stay its own (CLIENT LIST keeps showing the caller's).
    package let isScript: Bool
    package var authenticated: Bool {
        didSet { if !isScript { client.shared.withLock { $0.authenticated = authenticated } } }
    }
    /// The ACL user the connection runs as (`default` until AUTH).
    package var userName: [UInt8] = RedisACL.defaultName {
        didSet { if !isScript { client.shared.withLock { $0.user = String(decoding: userName, as: UTF8.self) } } }
    }
    /// `userName`'s permissions as of ACL generation `aclGeneration` (nil: the user was deleted).
    var aclUser: RedisACLUser? = nil
    var aclGeneration: UInt64 = 0
    /// Commands queued by MULTI (nil outside MULTI).
    package var queued: [(RedisCommand, [[UInt8]])]? = nil
    /// A queued command was rejected: EXEC answers EXECABORT.
    package var queueFailed = false
    /// WATCHed keys and the mod revision each had (nil: absent).
    package var watched: [(db: Int, key: [UInt8], revision: Revision?)] = []
    package var channels: [[UInt8]] = []
    package var patterns: [[UInt8]] = []
    package var shardChannels: [[UInt8]] = []
    /// CLIENT REPLY.
    package var replyMode = RedisClient.ReplyMode.on
    /// CLIENT CACHING YES/NO: applies to the next command (or transaction) only.
    package var trackingCaching = false
    /// CLIENT REPLY SKIP: the next command's reply is dropped (`armSkip` becomes `skipNext` after the SKIP itself).
    package var skipNext = false
    package var armSkip = false

    package init(client: RedisClient, authenticated: Bool) {
        self.client = client
        self.authenticated = authenticated
        self.isScript = false
    }

    /// The session a script of `caller` runs its commands in: the caller's database, RESP2 until redis.setresp.
    package init(scriptOf caller: RedisSession) {
        self.client = caller.client
        self.authenticated = true
        self.isScript = true
        self.db = caller.db
        self.userName = caller.userName
        self.aclUser = caller.aclUser
        self.aclGeneration = caller.aclGeneration
        self.aclUnrestricted = caller.aclUnrestricted
    }

    /// Whether `aclUser` may run anything (checks skipped), as of `aclGeneration`.
    var aclUnrestricted = false

    /// The connection's user as of the latest ACL change (nil: deleted since it authenticated).
    func currentUser(_ acl: RedisACL) -> RedisACLUser? {
        if acl.generation != aclGeneration {
            (aclUser, aclGeneration) = acl.snapshot(userName)
            aclUnrestricted = aclUser?.isUnrestricted ?? false
        }
        return aclUser
    }

    /// Whether the connection's user may run anything: the common case, answered without copying the user.
    func isUnrestricted(_ acl: RedisACL) -> Bool {
        if acl.generation != aclGeneration { _ = currentUser(acl) }
        return aclUnrestricted
    }

    package var subscriptionCount: Int { channels.count + patterns.count }

    /// Refreshes the counts CLIENT LIST shows.
    package func publishSubscriptions() {
        client.shared.withLock { state in
            state.channels = channels.count
            state.patterns = patterns.count
            state.shardChannels = shardChannels.count
        }
    }

    package func publishMulti() {
        client.shared.withLock { state in
            state.inMulti = queued != nil
            state.multiCount = queued?.count ?? 0
            state.watchCount = watched.count
        }
    }
}
