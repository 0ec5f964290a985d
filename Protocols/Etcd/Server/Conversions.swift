package import Foundation
package import StrataEtcdAPI
package import StrataMVCC

/// Mapping between etcd's protobuf messages and the core's types.
extension KeyValue {
    package var proto: Mvccpb_KeyValue {
        var kv = Mvccpb_KeyValue()
        kv.key = Data(key)
        kv.createRevision = createRevision
        kv.modRevision = modRevision
        kv.version = version
        kv.value = Data(value)
        kv.lease = lease
        return kv
    }
}

extension KeyRange {
    /// etcd's range from a request's `key` and `range_end` (an empty end means one key).
    package init(key: Data, rangeEnd: Data) {
        self.init(key: [UInt8](key), end: [UInt8](rangeEnd))
    }
}

extension RangeRequest {
    package init(_ request: Etcdserverpb_RangeRequest) throws(EtcdKVError) {
        self.init(range: KeyRange(key: request.key, rangeEnd: request.rangeEnd))
        revision = request.revision
        limit = request.limit
        keysOnly = request.keysOnly
        countOnly = request.countOnly
        minModRevision = request.minModRevision
        maxModRevision = request.maxModRevision
        minCreateRevision = request.minCreateRevision
        maxCreateRevision = request.maxCreateRevision
        switch request.sortOrder {
        case .none: sortOrder = .none
        case .ascend: sortOrder = .ascending
        case .descend: sortOrder = .descending
        case .UNRECOGNIZED: throw .invalidSortOption
        }
        switch request.sortTarget {
        case .key: sortTarget = .key
        case .version: sortTarget = .version
        case .create: sortTarget = .create
        case .mod: sortTarget = .mod
        case .value: sortTarget = .value
        case .UNRECOGNIZED: throw .invalidSortOption
        }
    }
}

extension PutRequest {
    package init(_ request: Etcdserverpb_PutRequest) {
        self.init(key: [UInt8](request.key), value: [UInt8](request.value), lease: request.lease)
        prevKV = request.prevKv
        ignoreValue = request.ignoreValue
        ignoreLease = request.ignoreLease
    }
}

extension DeleteRangeRequest {
    package init(_ request: Etcdserverpb_DeleteRangeRequest) {
        self.init(range: KeyRange(key: request.key, rangeEnd: request.rangeEnd), prevKV: request.prevKv)
    }
}

extension Compare {
    package init(_ compare: Etcdserverpb_Compare) throws(EtcdKVError) {
        let range = KeyRange(key: compare.key, rangeEnd: compare.rangeEnd)
        let result: Compare.Result
        switch compare.result {
        case .equal: result = .equal
        case .greater: result = .greater
        case .less: result = .less
        case .notEqual: result = .notEqual
        case .UNRECOGNIZED: throw .invalidCompare
        }
        // A missing target_union compares against zero / empty, as in etcd.
        let target: Compare.Target
        switch compare.target {
        case .version:
            if case .version(let v) = compare.targetUnion { target = .version(v) } else { target = .version(0) }
        case .create:
            if case .createRevision(let v) = compare.targetUnion { target = .create(v) } else { target = .create(0) }
        case .mod:
            if case .modRevision(let v) = compare.targetUnion { target = .mod(v) } else { target = .mod(0) }
        case .value:
            if case .value(let v) = compare.targetUnion { target = .value([UInt8](v)) } else { target = .value([]) }
        case .lease:
            if case .lease(let v) = compare.targetUnion { target = .lease(v) } else { target = .lease(0) }
        case .UNRECOGNIZED: throw .invalidCompare
        }
        self.init(range: range, result: result, target: target)
    }
}

extension TxnRequest {
    package init(_ request: Etcdserverpb_TxnRequest) throws(EtcdKVError) {
        var compares: [Compare] = []
        compares.reserveCapacity(request.compare.count)
        for compare in request.compare { compares.append(try Compare(compare)) }
        self.init(
            compares: compares,
            success: try request.success.map { op throws(EtcdKVError) in try TxnOperation(op) },
            failure: try request.failure.map { op throws(EtcdKVError) in try TxnOperation(op) }
        )
    }
}

extension TxnOperation {
    package init(_ op: Etcdserverpb_RequestOp) throws(EtcdKVError) {
        switch op.request {
        case .requestRange(let range): self = .range(try RangeRequest(range))
        case .requestPut(let put): self = .put(PutRequest(put))
        case .requestDeleteRange(let delete): self = .deleteRange(DeleteRangeRequest(delete))
        case .requestTxn(let txn): self = .txn(try TxnRequest(txn))
        case nil: self = .empty
        }
    }
}
