internal import CoreMetrics
internal import StrataLease
internal import StrataRocksDB
internal import Synchronization

/// Errors of the MVCC core, in domain terms. Each front-end maps them to exact wire errors in one table.
package enum MVCCError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A read or watch below the compaction revision.
    case compacted(compactRevision: Revision)
    /// A read above the current revision.
    case futureRevision
    /// A request key was empty.
    case emptyKey
    /// `ignoreValue`/`ignoreLease` on a key that does not exist, or an empty transaction operation.
    case keyNotFound
    case valueProvided
    case leaseProvided
    case leaseNotFound
    case leaseAlreadyExists
    case leaseTTLTooLarge
    /// The same key written twice (or put and deleted) in one transaction.
    case duplicateKey
    case tooManyOperations
    /// A watch whose range holds no key.
    case emptyWatchRange
    /// The keyspace does not support this (history reads on a latest-only keyspace).
    case unsupported(String)
    /// The storage engine failed; the message is the engine's.
    case storage(String)
    /// The store is closed.
    case closed

    package var description: String {
        switch self {
        case .compacted: "mvcc: required revision has been compacted"
        case .futureRevision: "mvcc: required revision is a future revision"
        case .emptyKey: "key is not provided"
        case .keyNotFound: "key not found"
        case .valueProvided: "value is provided"
        case .leaseProvided: "lease is provided"
        case .leaseNotFound: "requested lease not found"
        case .leaseAlreadyExists: "lease already exists"
        case .leaseTTLTooLarge: "too large lease TTL"
        case .duplicateKey: "duplicate key given in txn request"
        case .tooManyOperations: "too many operations in txn request"
        case .emptyWatchRange: "mvcc: watcher range is empty"
        case .unsupported(let what): "not supported: \(what)"
        case .storage(let message): "storage: \(message)"
        case .closed: "mvcc: store is closed"
        }
    }
}
