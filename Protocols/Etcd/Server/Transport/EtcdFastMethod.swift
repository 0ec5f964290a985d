internal import CoreMetrics
package import GRPCCore
internal import NIOCore

/// A unary call answered on the connection's event loop: `run` gets the request bytes and must call its completion
/// exactly once, from any thread, without blocking.
package final class EtcdFastMethod: Sendable {
    package typealias Completion = @Sendable (Result<[UInt8], RPCError>) -> Void

    let name: String
    let run: @Sendable ([UInt8], @escaping Completion) -> Void
    private let policy: EtcdCallPolicy

    package init(name: String, policy: EtcdCallPolicy, run: @escaping @Sendable ([UInt8], @escaping Completion) -> Void)
    {
        self.name = name
        self.run = run
        self.policy = policy
        _ = policy.series(name)  // made now, not on the first call
    }

    /// The same record the policy keeps for calls grpc-swift serves.
    func record(_ outcome: Result<[UInt8], RPCError>, since started: NIODeadline) {
        switch outcome {
        case .success: policy.record(name, error: nil, nanoseconds: (NIODeadline.now() - started).nanoseconds)
        case .failure(let error): policy.record(name, error: error, nanoseconds: nil)
        }
    }
}
