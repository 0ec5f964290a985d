/// A separate key space inside the one store, declared by the front-end that owns it and handed to the store when
/// it opens. No keyspace sees another's keys; all share the revision sequence. The core names none of them.
package struct Keyspace: Sendable, Hashable, CustomStringConvertible {
    /// Runs inside the transaction that deletes a key of this keyspace because its expiry time passed (the expirer's,
    /// or a write that found it expired), with the key's last state including its value: the owner's chance to
    /// write, atomically with the deletion, what it keeps beside the key (Redis records a dropped collection's
    /// members for reclamation). It must only touch its own keyspace and never block.
    package struct ExpiryHook: Sendable {
        package let body: @Sendable (inout WriteTransaction, KeyValue) throws(MVCCError) -> Void
        package init(_ body: @escaping @Sendable (inout WriteTransaction, KeyValue) throws(MVCCError) -> Void) {
            self.body = body
        }
    }

    package enum History: Sendable, Hashable {
        /// Every version stays readable by revision until compaction, and watches can start in the past (etcd,
        /// the Iceberg catalog).
        case full
        /// Only the newest value of each key: no revision log, no history reads, live watches only; keys may carry
        /// an expiry time (Redis).
        case latestOnly
    }

    /// How a key's newest value is stored.
    package enum RecordFormat: Sendable, Hashable {
        /// etcd's header with every value: create and mod revision, version, lease.
        case versioned
        /// Just the mod revision (enough for `WATCH`-style checks) and an optional expiry time. Latest-only only.
        case compact
    }

    /// Written into every storage key; never reuse or renumber one. 0 and 255 are reserved.
    package let id: UInt8
    package let name: String
    package let history: History
    package let format: RecordFormat
    /// See ``ExpiryHook``; not part of the keyspace's identity.
    package let expiryHook: ExpiryHook?

    package init(
        id: UInt8,
        name: String,
        history: History,
        format: RecordFormat? = nil,
        expiryHook: ExpiryHook? = nil
    ) {
        precondition(id != 0 && id != 0xFF, "keyspace ids 0 and 255 are reserved")
        let format = format ?? (history == .full ? .versioned : .compact)
        precondition(history == .latestOnly || format == .versioned, "a keyspace with history keeps versioned records")
        self.id = id
        self.name = name
        self.history = history
        self.format = format
        self.expiryHook = expiryHook
    }

    package static func == (lhs: Keyspace, rhs: Keyspace) -> Bool {
        lhs.id == rhs.id && lhs.name == rhs.name && lhs.history == rhs.history && lhs.format == rhs.format
    }

    package func hash(into hasher: inout Hasher) {
        hasher.combine(id)
        hasher.combine(name)
    }

    package var keepsHistory: Bool { history == .full }

    package var description: String { name }
}
