internal import GRPCCore
internal import NIOCore

/// What every stream handler of one listener shares: the fast table and the hand-off to grpc-swift.
final class EtcdRouter: Sendable {
    struct AcceptedStream: Sendable {
        let channel: NIOAsyncChannel<RPCRequestPart<EtcdWireBytes>, RPCResponsePart<EtcdWireBytes>>
        let descriptor: MethodDescriptor
    }

    /// What grpc-swift serves: a remote HTTP/2 stream, or a call from the JSON gateway in this process.
    enum Accepted: Sendable {
        case stream(AcceptedStream)
        case local(EtcdLocalCall)
    }

    let fast: [String: EtcdFastMethod]
    let maxRequestPayload: Int
    let gateway: EtcdHTTPEndpoints?
    private let sink: AsyncStream<Accepted>.Continuation

    init(
        fast: [String: EtcdFastMethod],
        maxRequestPayload: Int,
        gateway: EtcdHTTPEndpoints?,
        sink: AsyncStream<Accepted>.Continuation
    ) {
        self.fast = fast
        self.maxRequestPayload = maxRequestPayload
        self.gateway = gateway
        self.sink = sink
    }

    /// Hands a stream to grpc-swift; false once the listener is shutting down.
    func accept(_ stream: AcceptedStream) -> Bool {
        if case .enqueued = sink.yield(.stream(stream)) { return true }
        return false
    }

    /// Hands a gateway call to grpc-swift; false once the listener is shutting down.
    func accept(_ call: EtcdLocalCall) -> Bool {
        if case .enqueued = sink.yield(.local(call)) { return true }
        return false
    }
}
