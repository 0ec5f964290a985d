package import CoreMetrics
package import GRPCCore
internal import StrataCommon
internal import Synchronization

/// Counts every etcd RPC by method and status code when it ends and times unary handlers
/// (`strata_etcd_rpc_total`, `strata_etcd_rpc_duration_seconds`), plus the open Watch streams (while their producer
/// runs). It also gives grpc-swift's own errors grpc-go's wording (`EtcdError.transport`), since it sees every call
/// that grpc-swift serves.
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
        let streaming = Self.streamingMethods.contains(method)
        let response: StreamingServerResponse<Output>
        do {
            response = try await next(request, context)
        } catch let error as RPCError {
            throw failed(method, EtcdError.transport(error, streaming: streaming))
        } catch {
            count(method, code: "unknown")
            throw error
        }
        guard case .success(var contents) = response.accepted else { return response }
        // A streaming call runs in its producer, after this returns: count, time and map its errors there.
        let producer = contents.producer
        let isWatch = method == "Watch"
        contents.producer = { [self] writer in
            if isWatch { watchStreams.record(openWatchStreams.wrappingAdd(1, ordering: .relaxed).newValue) }
            defer {
                if isWatch { watchStreams.record(openWatchStreams.wrappingSubtract(1, ordering: .relaxed).newValue) }
            }
            do {
                let trailers = try await producer(writer)
                count(method, code: "ok")
                if !streaming {
                    RPCMetrics.duration(method, factory).recordInterval(since: start)
                }
                return trailers
            } catch let error as RPCError {
                throw failed(method, EtcdError.transport(error, streaming: streaming))
            } catch {
                count(method, code: "unknown")
                throw error
            }
        }
        return StreamingServerResponse(accepted: .success(contents))
    }

    /// etcd's (grpc-go's) streaming methods: their requests are read from the stream.
    static let streamingMethods: Set<String> = ["Watch", "LeaseKeepAlive", "Snapshot"]

    private func failed(_ method: String, _ error: RPCError) -> RPCError {
        count(method, code: "\(error.code)")
        return error
    }

    private func count(_ method: String, code: String) {
        RPCMetrics.calls(method, code: code, factory).increment()
    }
}

extension CoreMetrics.Timer {
    fileprivate func recordInterval(since start: ContinuousClock.Instant) {
        recordNanoseconds((ContinuousClock.now - start).nanoseconds)
    }
}

/// The per-RPC series, shared by this interceptor and the transport's fast path (`EtcdFastMethod`).
enum RPCMetrics {
    static func calls(_ method: String, code: String, _ factory: any MetricsFactory) -> Counter {
        Counter(label: "strata_etcd_rpc_total", dimensions: [("method", method), ("code", code)], factory: factory)
    }

    static func duration(_ method: String, _ factory: any MetricsFactory) -> CoreMetrics.Timer {
        CoreMetrics.Timer(label: "strata_etcd_rpc_duration_seconds", dimensions: [("method", method)], factory: factory)
    }
}
