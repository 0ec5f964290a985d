package import CoreMetrics
package import GRPCCore
internal import StrataCommon
internal import Synchronization

/// What happens around every etcd call, whichever path serves it (the transport's fast path on the event loop, or
/// grpc-swift's server): it is counted by method and status code (`strata_etcd_rpc_total`), unary calls are timed
/// (`strata_etcd_rpc_duration_seconds`), and errors get etcd's (grpc-go's) wording. The one place to add per-call
/// rules (auth, when it is enabled) so both paths follow them.
package final class EtcdCallPolicy: Sendable {
    private let factory: any MetricsFactory
    /// The series of the fast methods, made once (the fast path must not look them up per call).
    private let series: Mutex<[String: (ok: Counter, duration: CoreMetrics.Timer)]> = Mutex([:])
    let watchStreams: Gauge
    let openWatchStreams = Atomic<Int>(0)

    package init(factory: any MetricsFactory) {
        self.factory = factory
        self.watchStreams = Gauge(label: "strata_etcd_watch_streams", factory: factory)
    }

    /// etcd's (grpc-go's) streaming methods: their requests are read from the stream.
    static let streamingMethods: Set<String> = ["Watch", "LeaseKeepAlive", "Snapshot"]

    /// The cached success counter and timer of `method`.
    func series(_ method: String) -> (ok: Counter, duration: CoreMetrics.Timer) {
        series.withLock { cache in
            if let known = cache[method] { return known }
            let made = (
                Counter(
                    label: "strata_etcd_rpc_total",
                    dimensions: [("method", method), ("code", "ok")],
                    factory: factory
                ),
                CoreMetrics.Timer(
                    label: "strata_etcd_rpc_duration_seconds",
                    dimensions: [("method", method)],
                    factory: factory
                )
            )
            cache[method] = made
            return made
        }
    }

    /// Records a finished call; `duration` for unary calls.
    func record(_ method: String, error: RPCError?, nanoseconds duration: Int64?) {
        let (ok, timer) = series(method)
        if let error {
            count(method, code: "\(error.code)")
            return
        }
        ok.increment()
        if let duration { timer.recordNanoseconds(duration) }
    }

    /// Records a call that failed with an error that is not an `RPCError`.
    func recordUnknownFailure(_ method: String) { count(method, code: "unknown") }

    private func count(_ method: String, code: String) {
        Counter(label: "strata_etcd_rpc_total", dimensions: [("method", method), ("code", code)], factory: factory)
            .increment()
    }

    /// grpc-swift's own errors in grpc-go's wording (what etcd answers).
    func wire(_ error: RPCError, method: String) -> RPCError {
        EtcdError.transport(error, streaming: Self.streamingMethods.contains(method))
    }
}

/// The policy for calls grpc-swift serves: counts, times and maps their errors, and tracks open Watch streams.
package final class EtcdCallPolicyInterceptor: ServerInterceptor {
    private let policy: EtcdCallPolicy

    package init(policy: EtcdCallPolicy) {
        self.policy = policy
    }

    package func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let method = context.descriptor.method
        let start = ContinuousClock.now
        let streaming = EtcdCallPolicy.streamingMethods.contains(method)
        let policy = policy
        /// Counts a failed call and gives its error etcd's wording.
        @Sendable func failed(_ error: any Error) -> any Error {
            guard let error = error as? RPCError else {
                policy.recordUnknownFailure(method)
                return error
            }
            let wired = policy.wire(error, method: method)
            policy.record(method, error: wired, nanoseconds: nil)
            return wired
        }
        let response: StreamingServerResponse<Output>
        do {
            response = try await next(request, context)
        } catch {
            throw failed(error)
        }
        guard case .success(var contents) = response.accepted else { return response }
        // A streaming call runs in its producer, after this returns: count, time and map its errors there.
        let producer = contents.producer
        let isWatch = method == "Watch"
        contents.producer = { writer in
            if isWatch {
                policy.watchStreams.record(policy.openWatchStreams.wrappingAdd(1, ordering: .relaxed).newValue)
            }
            defer {
                if isWatch {
                    policy.watchStreams.record(
                        policy.openWatchStreams.wrappingSubtract(1, ordering: .relaxed).newValue
                    )
                }
            }
            do {
                let trailers = try await producer(writer)
                policy.record(
                    method,
                    error: nil,
                    nanoseconds: streaming ? nil : (ContinuousClock.now - start).nanoseconds
                )
                return trailers
            } catch let error as RPCError {
                let wired = policy.wire(error, method: method)
                policy.record(method, error: wired, nanoseconds: nil)
                throw wired
            } catch {
                policy.recordUnknownFailure(method)
                throw error
            }
        }
        return StreamingServerResponse(accepted: .success(contents))
    }
}
