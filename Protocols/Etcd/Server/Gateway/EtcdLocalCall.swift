internal import GRPCCore
internal import Synchronization

/// A call the JSON gateway makes into this process's gRPC services, like etcd's gateway, which is a gRPC client of
/// its own server: it runs through grpc-swift's server, services and interceptors exactly as a remote call would.
struct EtcdLocalCall: Sendable {
    let descriptor: MethodDescriptor
    let requests: AsyncThrowingStream<RPCRequestPart<EtcdWireBytes>, any Error>
    /// Receives each response part; returns once the part is written (backpressure for streaming responses).
    let deliver: @Sendable (RPCResponsePart<EtcdWireBytes>) async throws -> Void
    let control: Control
    let remotePeer: String
    let localPeer: String

    /// Cancels the call when the HTTP client goes away, whether or not grpc-swift has started it yet.
    final class Control: Sendable {
        private let state = Mutex<(handle: ServerContext.RPCCancellationHandle?, cancelled: Bool)>((nil, false))

        func attach(_ handle: ServerContext.RPCCancellationHandle) {
            let cancelled = state.withLock { state -> Bool in
                state.handle = handle
                return state.cancelled
            }
            if cancelled { handle.cancel() }
        }

        func cancel() {
            let handle = state.withLock { state -> ServerContext.RPCCancellationHandle? in
                state.cancelled = true
                return state.handle
            }
            handle?.cancel()
        }
    }

    /// grpc-swift's view of the call's outbound side.
    struct Outbound: ClosableRPCWriterProtocol {
        typealias Element = RPCResponsePart<EtcdWireBytes>
        let deliver: @Sendable (Element) async throws -> Void

        func write(_ element: Element) async throws { try await deliver(element) }

        func write(contentsOf elements: some Sequence<Element>) async throws {
            for element in elements { try await deliver(element) }
        }

        func finish() async {}

        /// The call ended without a status (the server is going away): report it as unavailable.
        func finish(throwing error: any Error) async {
            try? await deliver(.status(Status(code: .unavailable, message: "\(error)"), [:]))
        }
    }
}
