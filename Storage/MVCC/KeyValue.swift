internal import CoreMetrics
internal import StrataLease
internal import StrataRocksDB
internal import Synchronization

/// A revision of the one store-wide sequence. An empty store is at revision 1; every write transaction that changes
/// something takes the next one.
package typealias Revision = Int64

/// A key's state at some revision, in etcd's terms.
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
    package var value: [UInt8]

    package init(
        key: [UInt8],
        createRevision: Revision,
        modRevision: Revision,
        version: Int64,
        lease: Int64 = 0,
        value: [UInt8]
    ) {
        self.key = key
        self.createRevision = createRevision
        self.modRevision = modRevision
        self.version = version
        self.lease = lease
        self.value = value
    }
}

/// A change as watchers see it.
package struct Event: Sendable, Hashable {
    package enum Kind: UInt8, Sendable, Hashable {
        case put = 0
        case delete = 1
    }

    package var kind: Kind
    /// For a delete: only `key` and `modRevision` (the deleting revision) are set, as etcd sends it.
    package var kv: KeyValue
    /// The key's state just before this change, when it existed.
    package var prevKV: KeyValue?

    package init(kind: Kind, kv: KeyValue, prevKV: KeyValue? = nil) {
        self.kind = kind
        self.kv = kv
        self.prevKV = prevKV
    }
}

/// A separate key space inside the one store. Each front-end gets its own, so none sees another's keys; all share
/// the revision sequence. A latest-only keyspace keeps no history and no revision log (Redis: hot path first).
package struct Keyspace: Sendable, Hashable, CustomStringConvertible {
    /// Written into every storage key; never reuse or renumber one.
    package let id: UInt8
    package let name: String
    package let keepsHistory: Bool

    package init(id: UInt8, name: String, keepsHistory: Bool) {
        precondition(id != 0 && id != 0xFF, "keyspace ids 0 and 255 are reserved")
        self.id = id
        self.name = name
        self.keepsHistory = keepsHistory
    }

    package static let etcd = Keyspace(id: 1, name: "etcd", keepsHistory: true)
    package static let redis = Keyspace(id: 2, name: "redis", keepsHistory: false)
    package static let iceberg = Keyspace(id: 3, name: "iceberg", keepsHistory: true)

    package var description: String { name }
}

/// `[key, end)` with etcd's conventions: an empty `end` means just `key`; `end == [0]` means every key `>= key`.
package struct KeyRange: Sendable, Hashable {
    package var key: [UInt8]
    package var end: [UInt8]

    package init(key: [UInt8], end: [UInt8] = []) {
        self.key = key
        self.end = end
    }

    /// Every key starting with `prefix` (clientv3's `GetPrefixRangeEnd`).
    package static func prefix(_ prefix: [UInt8]) -> KeyRange {
        KeyRange(key: prefix, end: prefixEnd(prefix))
    }

    /// The smallest key greater than every key with this prefix; `[0]` (no upper bound) when there is none.
    package static func prefixEnd(_ prefix: [UInt8]) -> [UInt8] {
        var end = prefix
        while let last = end.last {
            if last < 0xFF {
                end[end.count - 1] = last + 1
                return end
            }
            end.removeLast()
        }
        return [0]
    }

    package var isSingleKey: Bool { end.isEmpty }
    package var isUnbounded: Bool { end == [0] }

    /// The exclusive upper bound, or nil for "no bound".
    package var upperBound: [UInt8]? {
        if isSingleKey { return key + [0] }
        if isUnbounded { return nil }
        return end
    }

    package func contains(_ candidate: [UInt8]) -> Bool {
        if isSingleKey { return candidate == key }
        guard !candidate.lexicographicallyPrecedes(key) else { return false }
        if isUnbounded { return true }
        return candidate.lexicographicallyPrecedes(end)
    }

    /// True when the range can hold no key (`key >= end` for a real range).
    package var isEmpty: Bool {
        !isSingleKey && !isUnbounded && !key.lexicographicallyPrecedes(end)
    }
}
