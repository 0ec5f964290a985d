internal import StrataMVCC

extension EtcdKV {
    /// Evaluates every compare of the transaction tree against the state before it runs (as etcd does), producing
    /// the branch taken at each transaction in execution order.
    static func comparePath(_ request: TxnRequest, in transaction: inout WriteTransaction) throws(MVCCError) -> [Bool] {
        var succeeded = true
        for compare in request.compares where !(try evaluate(compare, in: &transaction)) {
            succeeded = false
            break
        }
        var path = [succeeded]
        for operation in succeeded ? request.success : request.failure {
            if case .txn(let nested) = operation { path += try comparePath(nested, in: &transaction) }
        }
        return path
    }

    private static func evaluate(_ compare: Compare, in transaction: inout WriteTransaction) throws(MVCCError) -> Bool {
        let kvs: [KeyValue]
        if compare.range.isSingleKey {
            kvs = try transaction.get(compare.range.key).map { [$0] } ?? []
        } else {
            kvs = try transaction.range(compare.range).kvs
        }
        if kvs.isEmpty {
            if case .value = compare.target { return false }
            return Self.compare(KeyValue(key: [], createRevision: 0, modRevision: 0, version: 0, value: []), compare)
        }
        return kvs.allSatisfy { Self.compare($0, compare) }
    }

    static func compare(_ kv: KeyValue, _ compare: Compare) -> Bool {
        let order: Int
        func cmp<T: Comparable>(_ a: T, _ b: T) -> Int { a < b ? -1 : (a > b ? 1 : 0) }
        switch compare.target {
        case .version(let v): order = cmp(kv.version, v)
        case .create(let v): order = cmp(kv.createRevision, v)
        case .mod(let v): order = cmp(kv.modRevision, v)
        case .lease(let v): order = cmp(kv.lease, v)
        case .value(let v):
            order = kv.value == v ? 0 : (kv.value.lexicographicallyPrecedes(v) ? -1 : 1)
        }
        switch compare.result {
        case .equal: return order == 0
        case .notEqual: return order != 0
        case .greater: return order > 0
        case .less: return order < 0
        }
    }

    /// etcd's `checkTxn`: on the chosen path, range revisions must be servable, ignore_* puts need an existing key,
    /// and leases must exist — all checked before anything is written.
    static func check(_ request: TxnRequest, path: [Bool], in transaction: inout WriteTransaction) throws(MVCCError) {
        var remaining = path[...]
        try check(request, path: &remaining, in: &transaction)
    }

    private static func check(
        _ request: TxnRequest,
        path: inout ArraySlice<Bool>,
        in transaction: inout WriteTransaction
    ) throws(MVCCError) {
        let succeeded = path.removeFirst()
        for operation in succeeded ? request.success : request.failure {
            switch operation {
            case .range(let range):
                if range.revision > transaction.readRevision { throw .futureRevision }
                if range.revision > 0 && range.revision < transaction.compactRevision {
                    throw .compacted(compactRevision: transaction.compactRevision)
                }
            case .put(let put):
                if put.ignoreValue || put.ignoreLease {
                    guard try transaction.get(put.key, valueNeeded: false) != nil else {
                        throw .rejected(EtcdKVError.keyNotFoundRejection)
                    }
                }
                if put.lease != 0 && !transaction.leaseExists(put.lease) { throw .leaseNotFound }
            case .txn(let nested):
                try check(nested, path: &path, in: &transaction)
            case .deleteRange, .empty:
                break
            }
        }
    }

    static func execute(
        _ request: TxnRequest,
        path: inout ArraySlice<Bool>,
        in transaction: inout WriteTransaction
    ) throws(MVCCError) -> TxnResult {
        let succeeded = path.removeFirst()
        var results: [TxnOperationResult] = []
        for operation in succeeded ? request.success : request.failure {
            switch operation {
            case .range(let range):
                let read = try transaction.range(range.range, options(range))
                results.append(.range(finish(range, read)))
            case .put(let put):
                results.append(.put(try Self.put(put, in: &transaction)))
            case .deleteRange(let delete):
                results.append(.deleteRange(try deleteRange(delete, in: &transaction)))
            case .txn(let nested):
                results.append(.txn(try execute(nested, path: &path, in: &transaction)))
            case .empty:
                throw .rejected(EtcdKVError.keyNotFoundRejection)
            }
        }
        return TxnResult(succeeded: succeeded, results: results, revision: transaction.readRevision)
    }

    // MARK: Static validation (etcd's checkTxnRequest / checkIntervals)

    static func validate(_ request: TxnRequest, maxOperations: Int) throws(EtcdKVError) {
        let operations = max(request.compares.count, request.success.count, request.failure.count)
        if operations > maxOperations { throw .tooManyOperations }
        for compare in request.compares where compare.range.key.isEmpty { throw .emptyKey }
        for operation in [request.success, request.failure].joined() {
            switch operation {
            case .range(let range): if range.range.key.isEmpty { throw .emptyKey }
            case .put(let put): try validate(put)
            case .deleteRange(let delete): if delete.range.key.isEmpty { throw .emptyKey }
            case .txn(let nested): try validate(nested, maxOperations: maxOperations - operations)
            case .empty: throw .keyNotFound
            }
        }
    }

    /// Interval of a delete as etcd's check sees it: `[key, end)` compared as strings; a single key is a point.
    struct DeleteInterval {
        var start: [UInt8]
        var end: [UInt8]?

        func contains(_ key: [UInt8]) -> Bool {
            guard let end else { return key == start }
            return !key.lexicographicallyPrecedes(start) && key.lexicographicallyPrecedes(end)
        }
    }

    /// Rejects transactions that write a key twice, or put a key a delete in the same branch covers.
    static func checkIntervals(_ operations: [TxnOperation]) throws(EtcdKVError) -> (
        puts: Set<[UInt8]>, deletes: [DeleteInterval]
    ) {
        var deletes: [DeleteInterval] = []
        for case .deleteRange(let delete) in operations {
            deletes.append(
                DeleteInterval(start: delete.range.key, end: delete.range.end.isEmpty ? nil : delete.range.end)
            )
        }
        var puts = Set<[UInt8]>()
        for case .txn(let nested) in operations {
            let (putsThen, deletesThen) = try checkIntervals(nested.success)
            let (putsElse, deletesElse) = try checkIntervals(nested.failure)
            for key in putsThen {
                if puts.contains(key) || deletes.contains(where: { $0.contains(key) }) { throw .duplicateKey }
                puts.insert(key)
            }
            for key in putsElse {
                if puts.contains(key) && !putsThen.contains(key) { throw .duplicateKey }
                if deletes.contains(where: { $0.contains(key) }) { throw .duplicateKey }
                puts.insert(key)
            }
            deletes += deletesThen + deletesElse
        }
        for case .put(let put) in operations {
            if puts.contains(put.key) || deletes.contains(where: { $0.contains(put.key) }) { throw .duplicateKey }
            puts.insert(put.key)
        }
        return (puts, deletes)
    }
}
