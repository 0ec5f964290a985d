package import StrataMVCC

// etcd's KV requests and results in the core's terms (Conversions.swift maps them from and to protobuf).

/// A range read, with every option etcd's Range has.
package struct RangeRequest: Sendable, Hashable {
    package enum SortOrder: Sendable, Hashable { case none, ascending, descending }
    package enum SortTarget: Sendable, Hashable { case key, version, create, mod, value }

    package var range: KeyRange
    /// 0 (or negative) = the current revision.
    package var revision: Revision = 0
    /// 0 = no limit.
    package var limit: Int64 = 0
    package var sortOrder: SortOrder = .none
    package var sortTarget: SortTarget = .key
    package var keysOnly = false
    package var countOnly = false
    package var minModRevision: Revision = 0
    package var maxModRevision: Revision = 0
    package var minCreateRevision: Revision = 0
    package var maxCreateRevision: Revision = 0

    package init(range: KeyRange) { self.range = range }

    package init(key: [UInt8], end: [UInt8] = []) { self.range = KeyRange(key: key, end: end) }

    var hasRevisionFilters: Bool {
        minModRevision != 0 || maxModRevision != 0 || minCreateRevision != 0 || maxCreateRevision != 0
    }

    /// Natural storage order (ascending keys) needs no sort and lets the limit stop the scan early.
    var isDefaultOrdering: Bool {
        sortOrder == .none || (sortTarget == .key && sortOrder == .ascending)
    }
}

package struct RangeResult: Sendable, Hashable {
    package var kvs: [KeyValue]
    /// More keys matched than `limit` allowed.
    package var more: Bool
    /// Keys in the range at the read revision, regardless of limit and filters.
    package var count: Int64
    /// The store's current revision when the read was served (etcd reports this even for historical reads).
    package var revision: Revision

    package init(kvs: [KeyValue], more: Bool, count: Int64, revision: Revision) {
        self.kvs = kvs
        self.more = more
        self.count = count
        self.revision = revision
    }
}

package struct PutRequest: Sendable, Hashable {
    package var key: [UInt8]
    package var value: [UInt8]
    package var lease: Int64 = 0
    package var prevKV = false
    package var ignoreValue = false
    package var ignoreLease = false

    package init(key: [UInt8], value: [UInt8], lease: Int64 = 0) {
        self.key = key
        self.value = value
        self.lease = lease
    }
}

package struct PutResult: Sendable, Hashable {
    package var revision: Revision
    package var prevKV: KeyValue?
}

package struct DeleteRangeRequest: Sendable, Hashable {
    package var range: KeyRange
    package var prevKV = false

    package init(range: KeyRange, prevKV: Bool = false) {
        self.range = range
        self.prevKV = prevKV
    }
}

package struct DeleteRangeResult: Sendable, Hashable {
    package var revision: Revision
    package var deleted: Int64
    package var prevKVs: [KeyValue]
}

/// One condition of a transaction. Over a range, every key in it must satisfy it.
package struct Compare: Sendable, Hashable {
    package enum Result: Sendable, Hashable { case equal, notEqual, greater, less }
    package enum Target: Sendable, Hashable {
        case version(Int64)
        case create(Revision)
        case mod(Revision)
        case value([UInt8])
        case lease(Int64)
    }

    package var range: KeyRange
    package var result: Result
    package var target: Target

    package init(range: KeyRange, result: Result, target: Target) {
        self.range = range
        self.result = result
        self.target = target
    }

    package init(key: [UInt8], _ result: Result, _ target: Target) {
        self.init(range: KeyRange(key: key), result: result, target: target)
    }
}

package indirect enum TxnOperation: Sendable, Hashable {
    case range(RangeRequest)
    case put(PutRequest)
    case deleteRange(DeleteRangeRequest)
    case txn(TxnRequest)
    /// An operation with no request set (etcd answers "key not found").
    case empty
}

package struct TxnRequest: Sendable, Hashable {
    package var compares: [Compare]
    package var success: [TxnOperation]
    package var failure: [TxnOperation]

    package init(compares: [Compare] = [], success: [TxnOperation] = [], failure: [TxnOperation] = []) {
        self.compares = compares
        self.success = success
        self.failure = failure
    }
}

package indirect enum TxnOperationResult: Sendable, Hashable {
    case range(RangeResult)
    case put(PutResult)
    case deleteRange(DeleteRangeResult)
    case txn(TxnResult)
}

package struct TxnResult: Sendable, Hashable {
    package var succeeded: Bool
    package var results: [TxnOperationResult]
    /// The revision after the transaction (unchanged when it wrote nothing).
    package var revision: Revision
}
