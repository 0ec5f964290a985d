internal import CoreMetrics
package import GRPCCore
internal import NIOCore
internal import NIOHTTP1
internal import NIOHTTP2
internal import NIOPosix
internal import Synchronization

/// etcd's gRPC over HTTP/2, built on swift-nio-http2 directly rather than grpc-swift's transport: the unary KV calls
/// that carry almost all load skip grpc-swift's per-call task, async sequences and thread hops (a call is decoded,
/// run against the store and answered on the event loop that read it), while every other call, streaming ones
/// included, is handed to grpc-swift's `GRPCServer` as an ordinary `RPCStream` and served by the generated services.
package final class EtcdServerTransport: ServerTransport {
    package typealias Bytes = EtcdWireBytes

    package struct Configuration: Sendable {
        package var host: String
        package var port: Int
        /// SETTINGS_MAX_CONCURRENT_STREAMS per connection.
        package var maxConcurrentStreams: Int
        /// The largest request message accepted (etcd: `--max-request-bytes` plus 512 KiB of envelope).
        package var maxRequestPayload: Int
        /// Inbound PING/SETTINGS frames allowed per 30 s per connection. grpc-go clients send a BDP-estimation PING
        /// with most data they receive, so swift-nio-http2's default (200) would disconnect busy etcd clients.
        package var maxControlFramesPer30Seconds = 1_000_000
        /// HTTP/1.1 on the same port, as etcd's client port: `/health`, `/version`, `/metrics` and the JSON gateway
        /// (`/v3/...`). Nil: HTTP/2 only.
        package var httpEndpoints: EtcdHTTPEndpoints?

        package init(host: String, port: Int, maxConcurrentStreams: Int, maxRequestPayload: Int) {
            self.host = host
            self.port = port
            self.maxConcurrentStreams = maxConcurrentStreams
            self.maxRequestPayload = maxRequestPayload
        }
    }

    private struct State {
        var listener: (any Channel)?
        var connections: [ObjectIdentifier: any Channel] = [:]
        var shuttingDown = false
    }

    private let configuration: Configuration
    private let fast: [String: EtcdFastMethod]
    private let state = Mutex(State())
    private let bound: (stream: AsyncStream<String>, continuation: AsyncStream<String>.Continuation)

    package init(configuration: Configuration, fast: [String: EtcdFastMethod]) {
        self.configuration = configuration
        self.fast = fast
        self.bound = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// The address the listener bound ("host:port"), once it has; nil if it never did.
    package var listeningAddress: String? {
        get async {
            for await address in bound.stream { return address }
            return nil
        }
    }

    package func listen(
        streamHandler: @escaping @Sendable (RPCStream<Inbound, Outbound>, ServerContext) async -> Void
    ) async throws {
        let (accepted, sink) = AsyncStream.makeStream(of: EtcdRouter.Accepted.self)
        let router = EtcdRouter(
            fast: fast,
            maxRequestPayload: configuration.maxRequestPayload,
            gateway: configuration.httpEndpoints,
            sink: sink
        )
        let listener: any Channel
        do {
            listener = try await bootstrap(router: router)
                .bind(host: configuration.host, port: configuration.port).get()
        } catch {
            bound.continuation.finish()
            throw error
        }
        let stop = state.withLock { state -> Bool in
            state.listener = listener
            return state.shuttingDown
        }
        if let address = listener.localAddress, let port = address.port {
            bound.continuation.yield("\(address.ipAddress ?? configuration.host):\(port)")
        }
        bound.continuation.finish()
        if stop { try? await listener.close() }

        await withDiscardingTaskGroup { group in
            group.addTask {
                // No new grpc-swift calls once the listener is closed; the loop below then drains.
                try? await listener.closeFuture.get()
                sink.finish()
            }
            for await item in accepted {
                switch item {
                case .stream(let stream): group.addTask { await Self.serve(stream, handler: streamHandler) }
                case .local(let call): group.addTask { await Self.serve(call, handler: streamHandler) }
                }
            }
        }
    }

    package func beginGracefulShutdown() {
        let (listener, connections) = state.withLock { state -> ((any Channel)?, [any Channel]) in
            state.shuttingDown = true
            return (state.listener, Array(state.connections.values))
        }
        listener?.close(promise: nil)
        // GOAWAY first, so clients stop opening streams here and reconnect elsewhere (or later) without an error;
        // then, after a moment for calls in flight, close: Watch streams never end by themselves, and closing the
        // connections cancels them, which is what lets `listen` return.
        let goAway = HTTP2Frame(
            streamID: .rootStream,
            payload: .goAway(lastStreamID: .maxID, errorCode: .noError, opaqueData: nil)
        )
        for connection in connections {
            // Only HTTP/2 connections take a GOAWAY; HTTP/1.1 ones (the JSON gateway) are just closed.
            connection.eventLoop.execute {
                if (try? connection.pipeline.syncOperations.handler(type: NIOHTTP2Handler.self)) != nil {
                    connection.writeAndFlush(goAway, promise: nil)
                }
            }
            connection.eventLoop.scheduleTask(in: Self.shutdownGrace) { connection.close(promise: nil) }
        }
    }

    /// How long calls in flight get after GOAWAY before the connection closes.
    static let shutdownGrace = TimeAmount.milliseconds(250)

    private func bootstrap(router: EtcdRouter) -> ServerBootstrap {
        var connectionSettings = NIOHTTP2Handler.ConnectionConfiguration()
        connectionSettings.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: configuration.maxConcurrentStreams),
            HTTP2Setting(parameter: .initialWindowSize, value: 1 << 20),
            HTTP2Setting(parameter: .maxFrameSize, value: 1 << 14),
            HTTP2Setting(parameter: .maxHeaderListSize, value: 16 << 10),
        ]
        connectionSettings.targetWindowSize = 8 << 20
        connectionSettings.controlFrameRateLimit.maximumCount = configuration.maxControlFramesPer30Seconds
        var streamSettings = NIOHTTP2Handler.StreamConfiguration()
        streamSettings.targetWindowSize = 1 << 20
        streamSettings.outboundBufferSizeHighWatermark = 256 << 10
        streamSettings.outboundBufferSizeLowWatermark = 64 << 10
        let (connection, stream) = (connectionSettings, streamSettings)
        let tracked = self
        return ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.socketOption(.so_keepalive), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let http2: (any Channel) throws -> Void = { channel in
                        let batcher = ConnectionBatcher(eventLoop: channel.eventLoop)
                        try channel.pipeline.syncOperations.addHandler(batcher)
                        _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                            mode: .server,
                            connectionConfiguration: connection,
                            streamConfiguration: stream
                        ) { streamChannel in
                            streamChannel.eventLoop.makeCompletedFuture {
                                try streamChannel.pipeline.syncOperations.addHandler(
                                    GRPCStreamHandler(router: router, batcher: batcher)
                                )
                            }
                        }
                        try channel.pipeline.syncOperations.addHandler(CloseOnConnectionError())
                    }
                    if let endpoints = router.gateway {
                        let http1: (any Channel) throws -> Void = { channel in
                            try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                                withPipeliningAssistance: true,
                                withErrorHandling: true
                            )
                            try channel.pipeline.syncOperations.addHandler(
                                EtcdHTTPHandler(router: router, endpoints: endpoints, eventLoop: channel.eventLoop)
                            )
                            try channel.pipeline.syncOperations.addHandler(CloseOnConnectionError())
                        }
                        try channel.pipeline.syncOperations.addHandler(ProtocolSniffer(http2: http2, http1: http1))
                    } else {
                        try http2(channel)
                    }
                    tracked.track(channel)
                }
            }
    }

    private func track(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        let refused = state.withLock { state -> Bool in
            if state.shuttingDown { return true }
            state.connections[id] = channel
            return false
        }
        if refused { return channel.close(promise: nil) }
        channel.closeFuture.whenComplete { [self] _ in
            _ = state.withLock { $0.connections.removeValue(forKey: id) }
        }
    }

    /// Runs one call through grpc-swift, as its own transport does: a cancellation handle the stream handler
    /// triggers when the stream closes, then wait for the stream to close so buffered writes are not dropped.
    private static func serve(
        _ accepted: EtcdRouter.AcceptedStream,
        handler: @escaping @Sendable (RPCStream<Inbound, Outbound>, ServerContext) async -> Void
    ) async {
        let stream = accepted.channel
        let channel = stream.channel
        let remote = Self.describe(channel.parent?.remoteAddress)
        let local = Self.describe(channel.parent?.localAddress)
        try? await stream.executeThenClose { inbound, outbound in
            await withServerContextRPCCancellationHandle { handle in
                channel.eventLoop.execute {
                    (try? channel.pipeline.syncOperations.handler(type: GRPCStreamHandler.self))?
                        .setCancellationHandle(handle)
                }
                let rpc = RPCStream(
                    descriptor: accepted.descriptor,
                    inbound: RPCAsyncSequence(wrapping: inbound),
                    outbound: RPCWriter.Closable(wrapping: StreamOutbound(writer: outbound, channel: channel))
                )
                let context = ServerContext(
                    descriptor: accepted.descriptor,
                    remotePeer: remote,
                    localPeer: local,
                    cancellation: handle
                )
                await handler(rpc, context)
            }
            if !Task.isCancelled { try await channel.closeFuture.get() }
        }
    }

    /// Runs one JSON-gateway call through grpc-swift.
    private static func serve(
        _ call: EtcdLocalCall,
        handler: @escaping @Sendable (RPCStream<Inbound, Outbound>, ServerContext) async -> Void
    ) async {
        await withServerContextRPCCancellationHandle { handle in
            call.control.attach(handle)
            let rpc = RPCStream(
                descriptor: call.descriptor,
                inbound: RPCAsyncSequence(wrapping: call.requests),
                outbound: RPCWriter.Closable(wrapping: EtcdLocalCall.Outbound(deliver: call.deliver))
            )
            let context = ServerContext(
                descriptor: call.descriptor,
                remotePeer: call.remotePeer,
                localPeer: call.localPeer,
                cancellation: handle
            )
            await handler(rpc, context)
        }
    }

    static func describe(_ address: SocketAddress?) -> String {
        guard let address, let ip = address.ipAddress, let port = address.port else { return "unknown" }
        switch address {
        case .v6: return "ipv6:[\(ip)]:\(port)"
        default: return "ipv4:\(ip):\(port)"
        }
    }
}

/// grpc-swift's view of a stream's outbound side.
private struct StreamOutbound: ClosableRPCWriterProtocol {
    typealias Element = RPCResponsePart<EtcdWireBytes>

    let writer: NIOAsyncChannelOutboundWriter<RPCResponsePart<EtcdWireBytes>>
    let channel: any Channel

    func write(_ element: Element) async throws { try await writer.write(element) }

    func write(contentsOf elements: some Sequence<Element>) async throws {
        try await writer.write(contentsOf: elements)
    }

    func finish() async { writer.finish() }

    /// The call failed without a status (the server is going away): reset the stream.
    func finish(throwing error: any Error) async {
        writer.finish()
        channel.close(promise: nil)
    }
}
