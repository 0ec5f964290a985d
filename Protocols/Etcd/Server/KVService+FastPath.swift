internal import CoreMetrics
internal import GRPCCore
internal import StrataEtcdAPI
internal import StrataMVCC
internal import SwiftProtobuf

/// The KV calls on the transport's fast path: decoded, run and answered on the event loop that read them. Writes
/// are applied there too and answered from the committer's group commit (no task waits for the fsync).
extension KVService {
    func fastMethods(policy: EtcdCallPolicy) -> [String: EtcdFastMethod] {
        func method(
            _ name: String,
            _ run: @escaping @Sendable ([UInt8], @escaping EtcdFastMethod.Completion) -> Void
        ) -> (String, EtcdFastMethod) {
            ("/etcdserverpb.KV/\(name)", EtcdFastMethod(name: name, policy: policy, run: run))
        }
        return Dictionary(
            uniqueKeysWithValues: [
                method("Range") { bytes, done in
                    let request: Etcdserverpb_RangeRequest
                    do throws(RPCError) {
                        request = try Self.decode(Etcdserverpb_RangeRequest.self, bytes)
                    } catch {
                        return done(.failure(error))
                    }
                    let run: @Sendable () -> Void = {
                        done(Self.answer { () throws(RPCError) in try rangeNow(request) })
                    }
                    // A single key is read right here; a range (a kube list can be thousands of keys, tens of ms) runs
                    // on the core's blocking pool so it does not hold up the other streams on this event loop.
                    if request.rangeEnd.isEmpty { run() } else { store.submitBlocking(run) }
                },
                method("Put") { bytes, done in
                    write(done) { () throws(RPCError) in
                        try applyPut(Self.decode(Etcdserverpb_PutRequest.self, bytes))
                    } response: {
                        putResponse($0)
                    }
                },
                method("DeleteRange") { bytes, done in
                    write(done) { () throws(RPCError) in
                        try applyDeleteRange(Self.decode(Etcdserverpb_DeleteRangeRequest.self, bytes))
                    } response: {
                        deleteResponse($0)
                    }
                },
                method("Txn") { bytes, done in
                    write(done) { () throws(RPCError) in
                        try applyTxn(Self.decode(Etcdserverpb_TxnRequest.self, bytes))
                    } response: {
                        txnResponse($0)
                    }
                },
            ]
        )
    }

    /// Applies a write now and answers once it is durable.
    private func write<Value: Sendable, Response: SwiftProtobuf.Message>(
        _ done: @escaping EtcdFastMethod.Completion,
        apply: () throws(RPCError) -> PendingWrite<Value>,
        response: @escaping @Sendable (Value) -> Response
    ) {
        let pending: PendingWrite<Value>
        do {
            pending = try apply()
        } catch {
            return done(.failure(error))
        }
        store.whenDurable(pending) { result in
            switch result {
            case .success(let value): done(Self.answer { response(value) })
            case .failure(let error): done(.failure(EtcdError.map(error)))
            }
        }
    }

    private static func answer<M: SwiftProtobuf.Message>(_ body: () throws(RPCError) -> M) -> Result<[UInt8], RPCError>
    {
        do {
            return .success(try body().serializedBytes())
        } catch let error as RPCError {
            return .failure(error)
        } catch {
            return .failure(RPCError(code: .internalError, message: "grpc: error while marshaling: \(error)"))
        }
    }

    private static func decode<M: SwiftProtobuf.Message>(_ type: M.Type, _ bytes: [UInt8]) throws(RPCError) -> M {
        do {
            return try M(serializedBytes: bytes)
        } catch {
            throw EtcdError.unmarshalling("\(error)")
        }
    }
}
