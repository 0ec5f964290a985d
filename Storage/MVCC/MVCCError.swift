/// Errors of the core, in domain terms. Each front-end maps them to exact wire errors in one table.
package enum MVCCError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A read or watch below the compaction revision.
    case compacted(compactRevision: Revision)
    /// A read above the current revision.
    case futureRevision
    case leaseNotFound
    case leaseAlreadyExists
    case leaseTTLTooLarge
    /// A watch whose range holds no key.
    case emptyWatchRange
    /// The keyspace does not support this (history reads on a latest-only keyspace, an unregistered keyspace).
    case unsupported(String)
    /// A write transaction read or wrote more than the store allows one transaction under the writer lock.
    case transactionTooLarge(String)
    /// Free space on the data directory's file system is below `storage.min_free_space`: writes that add data are
    /// refused until space is back (deletes still run).
    case noSpace(String)
    /// A front-end's own reason for abandoning a write transaction (nothing of it is written).
    case rejected(Rejection)
    /// The storage engine failed; the message is the engine's.
    case storage(String)
    /// The store is closed.
    case closed

    package var description: String {
        switch self {
        case .compacted: "mvcc: required revision has been compacted"
        case .futureRevision: "mvcc: required revision is a future revision"
        case .leaseNotFound: "requested lease not found"
        case .leaseAlreadyExists: "lease already exists"
        case .leaseTTLTooLarge: "too large lease TTL"
        case .emptyWatchRange: "mvcc: watcher range is empty"
        case .unsupported(let what): "not supported: \(what)"
        case .transactionTooLarge(let what): "transaction too large: \(what)"
        case .noSpace(let what): "no space: \(what)"
        case .rejected(let rejection): rejection.message
        case .storage(let message): "storage: \(message)"
        case .closed: "mvcc: store is closed"
        }
    }
}

/// Why a front-end abandoned a transaction: its own code (the front-end's error table maps it back) and a message.
package struct Rejection: Sendable, Hashable {
    package let code: Int
    package let message: String

    package init(code: Int, message: String) {
        self.code = code
        self.message = message
    }
}
