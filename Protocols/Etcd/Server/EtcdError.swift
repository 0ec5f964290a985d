package import GRPCCore
package import StrataMVCC

/// etcd's wire errors (api/v3rpc/rpctypes): clients match on code *and* exact message, so these strings are part
/// of the protocol.
package enum EtcdError {
    package static let emptyKey = RPCError(code: .invalidArgument, message: "etcdserver: key is not provided")
    package static let keyNotFound = RPCError(code: .invalidArgument, message: "etcdserver: key not found")
    package static let valueProvided = RPCError(code: .invalidArgument, message: "etcdserver: value is provided")
    package static let leaseProvided = RPCError(code: .invalidArgument, message: "etcdserver: lease is provided")
    package static let tooManyOps = RPCError(
        code: .invalidArgument,
        message: "etcdserver: too many operations in txn request"
    )
    package static let duplicateKey = RPCError(
        code: .invalidArgument,
        message: "etcdserver: duplicate key given in txn request"
    )
    package static let invalidSortOption = RPCError(code: .invalidArgument, message: "etcdserver: invalid sort option")
    package static let compacted = RPCError(
        code: .outOfRange,
        message: "etcdserver: mvcc: required revision has been compacted"
    )
    package static let futureRevision = RPCError(
        code: .outOfRange,
        message: "etcdserver: mvcc: required revision is a future revision"
    )
    package static let noSpace = RPCError(
        code: .resourceExhausted,
        message: "etcdserver: mvcc: database space exceeded"
    )
    package static let leaseNotFound = RPCError(code: .notFound, message: "etcdserver: requested lease not found")
    package static let leaseExists = RPCError(code: .failedPrecondition, message: "etcdserver: lease already exists")
    package static let leaseTTLTooLarge = RPCError(code: .outOfRange, message: "etcdserver: too large lease TTL")
    package static let requestTooLarge = RPCError(code: .invalidArgument, message: "etcdserver: request is too large")
    package static let stopped = RPCError(code: .unavailable, message: "etcdserver: server stopped")
    package static let rangeStreamUnsupported = RPCError(
        code: .unimplemented,
        message: "etcdserver: RangeStream is not supported by this server"
    )

    /// The one table from core errors to wire errors (etcd's `toGRPCErrorMap`).
    package static func map(_ error: MVCCError) -> RPCError {
        switch error {
        case .compacted: compacted
        case .futureRevision: futureRevision
        case .leaseNotFound: leaseNotFound
        case .leaseAlreadyExists: leaseExists
        case .leaseTTLTooLarge: leaseTTLTooLarge
        case .emptyWatchRange: RPCError(code: .invalidArgument, message: "mvcc: watcher range is empty")
        case .closed: stopped
        case .noSpace: noSpace
        case .transactionTooLarge(let what): RPCError(code: .resourceExhausted, message: "etcdserver: \(what)")
        case .unsupported(let what): RPCError(code: .unimplemented, message: "etcdserver: \(what)")
        case .rejected(let rejection): RPCError(code: .invalidArgument, message: "etcdserver: \(rejection.message)")
        case .storage(let message): RPCError(code: .unknown, message: "etcdserver: storage: \(message)")
        }
    }

    /// The same for the KV layer's errors: etcd's request rules, then the core's.
    package static func map(_ error: EtcdKVError) -> RPCError {
        switch error {
        case .emptyKey: emptyKey
        case .keyNotFound: keyNotFound
        case .valueProvided: valueProvided
        case .leaseProvided: leaseProvided
        case .duplicateKey: duplicateKey
        case .tooManyOperations: tooManyOps
        case .invalidSortOption: invalidSortOption
        case .invalidCompare: RPCError(code: .invalidArgument, message: "etcdserver: invalid compare")
        case .core(let core): map(core)
        }
    }

    /// grpc-swift's errors for a request it could not decode, in grpc-go's terms, which is what etcd answers: code
    /// Internal, "grpc: error unmarshalling request: …" for unary calls (the fast path produces the same for its
    /// calls), "grpc: failed to unmarshal the received message …" (grpc-go's text, no colon) on streams.
    package static func transport(_ error: RPCError, streaming: Bool = false) -> RPCError {
        guard error.code == .invalidArgument, error.message.hasPrefix("Can't deserialize to message of type") else {
            return error
        }
        guard streaming else { return unmarshalling(error.message) }
        return RPCError(
            code: .internalError,
            message: "grpc: failed to unmarshal the received message \(error.message)"
        )
    }

    package static func unmarshalling(_ detail: String) -> RPCError {
        RPCError(code: .internalError, message: "grpc: error unmarshalling request: \(detail)")
    }

    /// Runs a core call, turning its domain errors into etcd's wire errors.
    @inline(__always)
    package static func wire<T>(_ body: () async throws(MVCCError) -> T) async throws(RPCError) -> T {
        do {
            return try await body()
        } catch {
            throw map(error)
        }
    }

    /// The same for a synchronous core call (the transport's fast path runs on an event loop).
    @inline(__always)
    package static func wireSync<T>(_ body: () throws(MVCCError) -> T) throws(RPCError) -> T {
        do {
            return try body()
        } catch {
            throw map(error)
        }
    }

    /// Runs a KV-layer call, turning its errors into etcd's wire errors.
    @inline(__always)
    package static func wireKV<T>(_ body: () throws(EtcdKVError) -> T) throws(RPCError) -> T {
        do {
            return try body()
        } catch {
            throw map(error)
        }
    }
}
