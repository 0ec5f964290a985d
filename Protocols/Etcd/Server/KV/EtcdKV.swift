package import StrataMVCC

extension Keyspace {
    /// etcd's keys: full history, etcd's versioned records. Id 1 since the first release; never renumber it.
    package static let etcd = Keyspace(id: 1, name: "etcd", history: .full)
}

/// What an etcd KV request fails with: etcd's own request rules (checked here, not by the core), or the core's errors.
package enum EtcdKVError: Error, Sendable, Hashable {
    case emptyKey
    /// `ignore_value`/`ignore_lease` on a key that does not exist, or a transaction operation with no request.
    case keyNotFound
    case valueProvided
    case leaseProvided
    /// The same key written twice (or put and deleted) in one transaction.
    case duplicateKey
    case tooManyOperations
    case invalidSortOption
    case invalidCompare
    case core(MVCCError)

    /// The core's rejection that stands for ``keyNotFound`` inside a transaction.
    static let keyNotFoundRejection = Rejection(code: 1, message: "key not found")

    init(_ error: MVCCError) {
        self = error == .rejected(Self.keyNotFoundRejection) ? .keyNotFound : .core(error)
    }
}

/// etcd's KV semantics (Range, Put, DeleteRange, Txn) over the core's general transactions, with etcd's own
/// validation. Every write is one ``MVCCStore/applyUpdate(_:durability:_:)``: one write path for every call.
package struct EtcdKV: Sendable {
    package let store: MVCCStore
    /// etcd's `--max-txn-ops`.
    package let maxTxnOperations: Int

    package init(store: MVCCStore, maxTxnOperations: Int = 128) {
        self.store = store
        self.maxTxnOperations = maxTxnOperations
    }

    @inline(__always)
    static func core<T>(_ body: () throws(MVCCError) -> T) throws(EtcdKVError) -> T {
        do {
            return try body()
        } catch {
            throw EtcdKVError(error)
        }
    }

    // MARK: Reads

    /// A Range at the latest or a historical revision, with every option etcd's has.
    package func range(_ request: RangeRequest) throws(EtcdKVError) -> RangeResult {
        guard !request.range.key.isEmpty else { throw .emptyKey }
        let read = try Self.core { () throws(MVCCError) in
            try store.range(.etcd, request.range, Self.options(request))
        }
        return Self.finish(request, read)
    }

    /// What the core reads for a Range: `limit + 1` when the order allows (so `more` is known), every key counted.
    static func options(_ request: RangeRequest) -> RangeOptions {
        var fetchLimit = 0
        if request.isDefaultOrdering && !request.hasRevisionFilters && request.limit > 0 && request.limit < Int64.max {
            fetchLimit = Int(request.limit) + 1
        }
        return RangeOptions(
            revision: request.revision,
            limit: fetchLimit,
            keysOnly: request.keysOnly,
            countOnly: request.countOnly,
            countAll: true
        )
    }

    /// etcd's range pipeline after the fetch: revision filters, sort, truncation to the limit.
    static func finish(_ request: RangeRequest, _ read: RangeRead) -> RangeResult {
        var kvs = read.kvs
        if request.maxModRevision != 0 { kvs.removeAll { $0.modRevision > request.maxModRevision } }
        if request.minModRevision != 0 { kvs.removeAll { $0.modRevision < request.minModRevision } }
        if request.maxCreateRevision != 0 { kvs.removeAll { $0.createRevision > request.maxCreateRevision } }
        if request.minCreateRevision != 0 { kvs.removeAll { $0.createRevision < request.minCreateRevision } }

        var order = request.sortOrder
        if request.sortTarget != .key && order == .none { order = .ascending }
        if !(order == .none || (request.sortTarget == .key && order == .ascending)) {
            let ascending: (KeyValue, KeyValue) -> Bool
            switch request.sortTarget {
            case .key: ascending = { $0.key.lexicographicallyPrecedes($1.key) }
            case .version: ascending = { $0.version < $1.version }
            case .create: ascending = { $0.createRevision < $1.createRevision }
            case .mod: ascending = { $0.modRevision < $1.modRevision }
            case .value: ascending = { $0.value.lexicographicallyPrecedes($1.value) }
            }
            // Ties keep key order in both directions: what etcd's Go sort (insertion sort up to 12 elements, stable
            // also under sort.Reverse) gives for small results; for larger ones Go's order of ties is unspecified.
            let indexed = kvs.enumerated().map { ($0.offset, $0.element) }
            let sorted = indexed.sorted { a, b in
                if order == .descending {
                    if ascending(b.1, a.1) { return true }
                    if ascending(a.1, b.1) { return false }
                } else {
                    if ascending(a.1, b.1) { return true }
                    if ascending(b.1, a.1) { return false }
                }
                return a.0 < b.0
            }
            kvs = sorted.map(\.1)
        }

        var more = false
        if request.limit > 0 && kvs.count > Int(request.limit) {
            kvs.removeLast(kvs.count - Int(request.limit))
            more = true
        }
        return RangeResult(kvs: kvs, more: more, count: Int64(read.count), revision: read.revision)
    }

    // MARK: Writes (applied now, acknowledged when durable: see MVCCStore.whenDurable)

    package func applyPut(_ request: PutRequest) throws(EtcdKVError) -> PendingWrite<PutResult> {
        try Self.validate(request)
        return try Self.core { () throws(MVCCError) in
            try store.applyUpdate(.etcd) { transaction throws(MVCCError) in
                try Self.put(request, in: &transaction)
            }
        }
    }

    package func applyDeleteRange(_ request: DeleteRangeRequest) throws(EtcdKVError)
        -> PendingWrite<DeleteRangeResult>
    {
        guard !request.range.key.isEmpty else { throw .emptyKey }
        return try Self.core { () throws(MVCCError) in
            try store.applyUpdate(.etcd) { transaction throws(MVCCError) in
                try Self.deleteRange(request, in: &transaction)
            }
        }
    }

    /// An etcd transaction: compares, then the success or failure branch, atomically at one revision.
    package func applyTxn(_ request: TxnRequest) throws(EtcdKVError) -> PendingWrite<TxnResult> {
        try Self.validate(request, maxOperations: maxTxnOperations)
        if request.success.count + request.failure.count > 1 {
            // A single operation cannot write a key twice; skip the interval check on the plain put/delete path.
            _ = try Self.checkIntervals(request.success)
            _ = try Self.checkIntervals(request.failure)
        }
        return try Self.core { () throws(MVCCError) in
            try store.applyUpdate(.etcd) { transaction throws(MVCCError) -> TxnResult in
                let path = try Self.comparePath(request, in: &transaction)
                try Self.check(request, path: path, in: &transaction)
                var remaining = path[...]
                var result = try Self.execute(request, path: &remaining, in: &transaction)
                result.revision = transaction.readRevision
                return result
            }
        }
    }

    package func put(_ request: PutRequest) async throws(EtcdKVError) -> PutResult {
        try await durable(applyPut(request))
    }

    package func deleteRange(_ request: DeleteRangeRequest) async throws(EtcdKVError) -> DeleteRangeResult {
        try await durable(applyDeleteRange(request))
    }

    package func txn(_ request: TxnRequest) async throws(EtcdKVError) -> TxnResult {
        try await durable(applyTxn(request))
    }

    package func durable<Value: Sendable>(_ pending: PendingWrite<Value>) async throws(EtcdKVError) -> Value {
        do {
            return try await store.durable(pending)
        } catch {
            throw EtcdKVError(error)
        }
    }

    // MARK: Operations inside a transaction

    static func put(_ request: PutRequest, in transaction: inout WriteTransaction) throws(MVCCError) -> PutResult {
        var value = request.value
        var lease = request.lease
        if request.ignoreValue || request.ignoreLease {
            guard let current = try transaction.get(request.key) else {
                throw .rejected(EtcdKVError.keyNotFoundRejection)
            }
            if request.ignoreValue { value = current.value }
            if request.ignoreLease { lease = current.lease }
        }
        let (kv, previous) = try transaction.put(request.key, value, lease: lease)
        return PutResult(revision: kv.modRevision, prevKV: request.prevKV ? previous : nil)
    }

    static func deleteRange(_ request: DeleteRangeRequest, in transaction: inout WriteTransaction) throws(MVCCError)
        -> DeleteRangeResult
    {
        let deleted: [KeyValue]
        if request.range.isSingleKey {
            deleted = try transaction.delete(request.range.key).map { [$0] } ?? []
        } else {
            deleted = try transaction.deleteRange(request.range)
        }
        return DeleteRangeResult(
            revision: transaction.readRevision,
            deleted: Int64(deleted.count),
            prevKVs: request.prevKV ? deleted : []
        )
    }

    // MARK: Validation (etcd's checkPutRequest, checkTxnRequest and checkIntervals)

    static func validate(_ request: PutRequest) throws(EtcdKVError) {
        if request.key.isEmpty { throw .emptyKey }
        if request.ignoreValue && !request.value.isEmpty { throw .valueProvided }
        if request.ignoreLease && request.lease != 0 { throw .leaseProvided }
    }
}
