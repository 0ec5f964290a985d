/// A change as watchers see it.
package struct Event: Sendable, Hashable {
    package enum Kind: UInt8, Sendable, Hashable {
        case put = 0
        case delete = 1
    }

    package var kind: Kind
    /// For a delete: only `key` and `modRevision` (the deleting revision) are set, as etcd sends it.
    package var kv: KeyValue
    /// The key's state just before this change, when it existed (latest-only keyspaces: without its value).
    package var prevKV: KeyValue?
    /// What the front-end did, when it named it (Redis keyspace notifications: `set`, `lpush`, `expired`); nil for
    /// a plain put or delete. Delivered to live watchers only: the revision log does not keep it.
    package var operation: String?

    package init(kind: Kind, kv: KeyValue, prevKV: KeyValue? = nil, operation: String? = nil) {
        self.kind = kind
        self.kv = kv
        self.prevKV = prevKV
        self.operation = operation
    }

    /// The operation name the core gives deletions by the expirer or by a write that found the key expired.
    package static let expired = "expired"
}

/// What a write tells watchers.
package enum WriteEvent: Sendable, Hashable {
    /// A put or delete event.
    case standard
    /// The same, carrying the front-end's name for the operation.
    case named(String)
    /// Nothing: entries a front-end keeps for itself (a collection's members), whose changes it announces through
    /// the key they belong to. Latest-only keyspaces only (a keyspace with history replays every change).
    case none

    var operation: String? {
        if case .named(let name) = self { return name }
        return nil
    }
}
