package import GRPCCore
package import StrataEtcdAPI
package import StrataMVCC

/// The standard gRPC health service etcd registers on its client port: the overall service ("") is SERVING while
/// the store is healthy; any other service name is unknown, as with etcd.
package struct HealthService: Grpc_Health_V1_Health.SimpleServiceProtocol {
    let store: MVCCStore

    package init(store: MVCCStore) {
        self.store = store
    }

    func status(_ service: String) throws(RPCError) -> Grpc_Health_V1_HealthCheckResponse.ServingStatus {
        guard service.isEmpty else { throw RPCError(code: .notFound, message: "unknown service") }
        return store.healthProblem == nil ? .serving : .notServing
    }

    package func check(
        request: Grpc_Health_V1_HealthCheckRequest,
        context: ServerContext
    ) async throws -> Grpc_Health_V1_HealthCheckResponse {
        var response = Grpc_Health_V1_HealthCheckResponse()
        response.status = try status(request.service)
        return response
    }

    /// Sends the status, then every change, until the client goes away.
    package func watch(
        request: Grpc_Health_V1_HealthCheckRequest,
        response: RPCWriter<Grpc_Health_V1_HealthCheckResponse>,
        context: ServerContext
    ) async throws {
        var last: Grpc_Health_V1_HealthCheckResponse.ServingStatus? = nil
        while !Task.isCancelled {
            let current = (try? status(request.service)) ?? .serviceUnknown
            if current != last {
                var message = Grpc_Health_V1_HealthCheckResponse()
                message.status = current
                try await response.write(message)
                last = current
            }
            try await Task.sleep(nanoseconds: 1_000_000_000)
        }
    }
}
