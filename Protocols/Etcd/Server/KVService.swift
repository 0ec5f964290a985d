internal import Foundation
package import GRPCCore
package import StrataEtcdAPI
package import StrataMVCC

/// etcd's KV service over the shared core: validate, translate, call the store, fill the header, map errors.
package struct KVService: Etcdserverpb_KV.SimpleServiceProtocol {
    let store: MVCCStore
    let kv: EtcdKV
    let configuration: EtcdFrontEnd.Configuration
    let alarms: AlarmTable

    package init(store: MVCCStore, configuration: EtcdFrontEnd.Configuration, alarms: AlarmTable = AlarmTable()) {
        self.store = store
        self.kv = EtcdKV(store: store, maxTxnOperations: configuration.maxTxnOperations)
        self.configuration = configuration
        self.alarms = alarms
    }

    func header(_ revision: Revision) -> Etcdserverpb_ResponseHeader {
        configuration.header(revision)
    }

    package func range(
        request: Etcdserverpb_RangeRequest,
        context: ServerContext
    ) async throws -> Etcdserverpb_RangeResponse {
        try rangeNow(request)
    }

    /// Translates and runs a Range (shared by this handler and the transport's fast path).
    func rangeNow(_ request: Etcdserverpb_RangeRequest) throws(RPCError) -> Etcdserverpb_RangeResponse {
        let result = try EtcdError.wireKV { () throws(EtcdKVError) in try kv.range(RangeRequest(request)) }
        return rangeResponse(result)
    }

    func rangeResponse(_ result: RangeResult) -> Etcdserverpb_RangeResponse {
        var response = Etcdserverpb_RangeResponse()
        response.header = header(result.revision)
        response.kvs = result.kvs.map(\.proto)
        response.more = result.more
        response.count = result.count
        return response
    }

    package func rangeStream(
        request: Etcdserverpb_RangeRequest,
        response: RPCWriter<Etcdserverpb_RangeStreamResponse>,
        context: ServerContext
    ) async throws {
        // Newer clients try RangeStream and fall back to Range on Unimplemented (docs/etcd.md, "What clients rely on").
        throw EtcdError.rangeStreamUnsupported
    }

    package func put(request: Etcdserverpb_PutRequest, context: ServerContext) async throws -> Etcdserverpb_PutResponse
    {
        putResponse(try await durable(applyPut(request)))
    }

    /// Validates and applies a Put; it is acknowledged once `durable`. The write calls below are shared by these
    /// handlers and the transport's fast path (which answers from `MVCCStore.whenDurable` instead of awaiting).
    func applyPut(_ request: Etcdserverpb_PutRequest) throws(RPCError) -> PendingWrite<PutResult> {
        guard request.key.count + request.value.count <= configuration.maxRequestBytes else {
            throw EtcdError.requestTooLarge
        }
        try alarms.checkWritable()
        return try EtcdError.wireKV { () throws(EtcdKVError) in try kv.applyPut(PutRequest(request)) }
    }

    func applyDeleteRange(_ request: Etcdserverpb_DeleteRangeRequest) throws(RPCError)
        -> PendingWrite<DeleteRangeResult>
    {
        // No NOSPACE check: deleting is how a full database is freed, and etcd allows it under the alarm too.
        return try EtcdError.wireKV { () throws(EtcdKVError) in try kv.applyDeleteRange(DeleteRangeRequest(request)) }
    }

    func applyTxn(_ request: Etcdserverpb_TxnRequest) throws(RPCError) -> PendingWrite<TxnResult> {
        guard Self.payloadSize(request) <= configuration.maxRequestBytes else { throw EtcdError.requestTooLarge }
        let core = try EtcdError.wireKV { () throws(EtcdKVError) in try TxnRequest(request) }
        if Self.hasPuts(request) { try alarms.checkWritable() }
        return try EtcdError.wireKV { () throws(EtcdKVError) in try kv.applyTxn(core) }
    }

    private func durable<Value: Sendable>(_ pending: PendingWrite<Value>) async throws(RPCError) -> Value {
        try await EtcdError.wire { () throws(MVCCError) in try await store.durable(pending) }
    }

    func putResponse(_ result: PutResult) -> Etcdserverpb_PutResponse {
        var response = Etcdserverpb_PutResponse()
        response.header = header(result.revision)
        if let prev = result.prevKV { response.prevKv = prev.proto }
        return response
    }

    package func deleteRange(
        request: Etcdserverpb_DeleteRangeRequest,
        context: ServerContext
    ) async throws -> Etcdserverpb_DeleteRangeResponse {
        deleteResponse(try await durable(applyDeleteRange(request)))
    }

    func deleteResponse(_ result: DeleteRangeResult) -> Etcdserverpb_DeleteRangeResponse {
        var response = Etcdserverpb_DeleteRangeResponse()
        response.header = header(result.revision)
        response.deleted = result.deleted
        response.prevKvs = result.prevKVs.map(\.proto)
        return response
    }

    package func txn(request: Etcdserverpb_TxnRequest, context: ServerContext) async throws -> Etcdserverpb_TxnResponse
    {
        txnResponse(try await durable(applyTxn(request)))
    }

    func txnResponse(_ result: TxnResult) -> Etcdserverpb_TxnResponse {
        var response = txnResponse(result, nested: false)
        response.header = header(result.revision)
        return response
    }

    /// etcd fills only the top-level header completely: responses inside a transaction carry just their revision,
    /// and a nested transaction's own header is left empty.
    func txnResponse(_ result: TxnResult, nested: Bool) -> Etcdserverpb_TxnResponse {
        func revisionOnly(_ revision: Revision) -> Etcdserverpb_ResponseHeader {
            var header = Etcdserverpb_ResponseHeader()
            header.revision = revision
            return header
        }
        var response = Etcdserverpb_TxnResponse()
        response.header = Etcdserverpb_ResponseHeader()
        response.succeeded = result.succeeded
        response.responses = result.results.map { operation in
            var op = Etcdserverpb_ResponseOp()
            switch operation {
            case .range(let range):
                var inner = rangeResponse(range)
                inner.header = revisionOnly(range.revision)
                op.responseRange = inner
            case .put(let put):
                var inner = putResponse(put)
                inner.header = revisionOnly(put.revision)
                op.responsePut = inner
            case .deleteRange(let delete):
                var inner = deleteResponse(delete)
                inner.header = revisionOnly(delete.revision)
                op.responseDeleteRange = inner
            case .txn(let nestedResult):
                op.responseTxn = txnResponse(nestedResult, nested: true)
            }
            return op
        }
        return response
    }

    package func compact(
        request: Etcdserverpb_CompactionRequest,
        context: ServerContext
    ) async throws -> Etcdserverpb_CompactionResponse {
        try await EtcdError.wire { () throws(MVCCError) in
            try await store.compact(request.revision, physical: request.physical)
        }
        var response = Etcdserverpb_CompactionResponse()
        response.header = header(store.currentRevision)
        return response
    }

    /// Whether a transaction can add data: what etcd's NOSPACE alarm refuses (its quota "cost" counts puts only).
    static func hasPuts(_ request: Etcdserverpb_TxnRequest) -> Bool {
        (request.success + request.failure).contains { op in
            switch op.request {
            case .requestPut: true
            case .requestTxn(let nested): hasPuts(nested)
            case .requestDeleteRange, .requestRange, nil: false
            }
        }
    }

    /// Bytes of keys and values a transaction carries (etcd limits the whole request to `--max-request-bytes`).
    static func payloadSize(_ request: Etcdserverpb_TxnRequest) -> Int {
        func size(_ ops: [Etcdserverpb_RequestOp]) -> Int {
            ops.reduce(0) { total, op in
                switch op.request {
                case .requestPut(let put): total + put.key.count + put.value.count
                case .requestRange(let range): total + range.key.count + range.rangeEnd.count
                case .requestDeleteRange(let delete): total + delete.key.count + delete.rangeEnd.count
                case .requestTxn(let nested): total + payloadSize(nested)
                case nil: total
                }
            }
        }
        let compares = request.compare.reduce(0) { total, compare in
            var bytes = compare.key.count + compare.rangeEnd.count
            if case .value(let value) = compare.targetUnion { bytes += value.count }
            return total + bytes
        }
        return compares + size(request.success) + size(request.failure)
    }
}
