package import CoreMetrics
package import GRPCCore
internal import Synchronization

/// Counts every etcd RPC by method and status code and times unary handlers
/// (`strata_etcd_rpc_total`, `strata_etcd_rpc_duration_seconds`), plus the open Watch streams. It also gives
/// grpc-swift's own errors grpc-go's wording (`EtcdError.transport`), since it sees every call that grpc-swift serves.
package final class MetricsInterceptor: ServerInterceptor {
    private let factory: any MetricsFactory
    private let watchStreams: Gauge
    private let openWatchStreams = Atomic<Int>(0)

    package init(factory: any MetricsFactory) {
        self.factory = factory
        self.watchStreams = Gauge(label: "strata_etcd_watch_streams", factory: factory)
    }

    package func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let method = context.descriptor.method
        let start = ContinuousClock.now
        let isWatch = method == "Watch"
        if isWatch { watchStreams.record(openWatchStreams.wrappingAdd(1, ordering: .relaxed).newValue) }
        defer {
            if isWatch { watchStreams.record(openWatchStreams.wrappingSubtract(1, ordering: .relaxed).newValue) }
        }
        do {
            let response = try await next(request, context)
            count(method, code: "ok")
            Timer(label: "strata_etcd_rpc_duration_seconds", dimensions: [("method", method)], factory: factory)
                .recordInterval(since: start)
            return response
        } catch let error as RPCError {
            let wire = EtcdError.transport(error)
            count(method, code: "\(wire.code)")
            throw wire
        } catch {
            count(method, code: "unknown")
            throw error
        }
    }

    private func count(_ method: String, code: String) {
        Counter(label: "strata_etcd_rpc_total", dimensions: [("method", method), ("code", code)], factory: factory)
            .increment()
    }
}

extension CoreMetrics.Timer {
    fileprivate func recordInterval(since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
    }
}
