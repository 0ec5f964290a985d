/// A revision of the one store-wide sequence. An empty store is at revision 1; every write transaction that changes
/// something takes the next one.
package typealias Revision = Int64

/// A key's state at some revision. Keyspaces with compact records fill only `key`, `modRevision`, `expiresAt` and
/// `value` (create revision and version are 0, lease 0).
package struct KeyValue: Sendable, Hashable {
    package var key: [UInt8]
    /// Revision of the last creation of this key (a delete resets it).
    package var createRevision: Revision
    /// Revision of the last change.
    package var modRevision: Revision
    /// 1 on create, +1 per change, reset by delete.
    package var version: Int64
    /// Attached lease ID, 0 for none.
    package var lease: Int64
    /// Wall-clock milliseconds (Unix epoch, as Redis's `PEXPIREAT`) after which the key no longer exists; 0 = never.
    package var expiresAt: Int64
    package var value: [UInt8]

    package init(
        key: [UInt8],
        createRevision: Revision,
        modRevision: Revision,
        version: Int64,
        lease: Int64 = 0,
        expiresAt: Int64 = 0,
        value: [UInt8]
    ) {
        self.key = key
        self.createRevision = createRevision
        self.modRevision = modRevision
        self.version = version
        self.lease = lease
        self.expiresAt = expiresAt
        self.value = value
    }

    /// Whether the key has expired at wall-clock time `now` (milliseconds).
    @inline(__always)
    package func isExpired(at now: Int64) -> Bool { expiresAt != 0 && expiresAt <= now }
}

/// When a written key expires.
package enum Expiry: Sendable, Hashable {
    /// Never (a put without it clears any expiry the key had, as Redis's `SET`).
    case none
    /// Whatever the key had before (Redis's `KEEPTTL`, and writes to a collection's metadata).
    case keep
    /// At this wall-clock time in milliseconds since the Unix epoch.
    case at(Int64)
}
