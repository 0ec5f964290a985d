internal import GRPCCore
internal import NIOCore
internal import NIOHPACK
internal import NIOHTTP2

/// One HTTP/2 stream carrying one gRPC call. Calls in the fast table (the unary KV calls) are answered right here on
/// the connection's event loop; every other call becomes an `RPCStream` for grpc-swift's server, with this handler
/// translating between HTTP/2 frames and request/response parts underneath an `NIOAsyncChannel`.
final class GRPCStreamHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = RPCRequestPart<EtcdWireBytes>
    typealias OutboundIn = RPCResponsePart<EtcdWireBytes>
    typealias OutboundOut = HTTP2Frame.FramePayload

    private enum State {
        case idle
        case fast(EtcdFastMethod)
        /// Answered on the fast path, waiting for the store (for a write: the group commit).
        case dispatched(EtcdFastMethod, started: NIODeadline)
        case slow
        case done
    }

    private let router: EtcdRouter
    private let batcher: ConnectionBatcher
    private var state = State.idle
    private var deframer: GRPCDeframer
    private var request: ByteBuffer?
    private var inputClosed = false
    private var sentHeaders = false
    /// Response messages written since the last flush, framed back to back: they leave as one DATA frame (HTTP/2
    /// splits it to the peer's frame size), so a stream that writes many small messages at once — a Watch stream's
    /// responses for many watchers — costs one frame, not one per message.
    private var pendingData: ByteBuffer?
    private var pendingPromise: EventLoopPromise<Void>?
    private var cancellation: ServerContext.RPCCancellationHandle?
    private var closed = false

    init(router: EtcdRouter, batcher: ConnectionBatcher) {
        self.router = router
        self.batcher = batcher
        self.deframer = GRPCDeframer(limit: router.maxRequestPayload)
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .headers(let headers):
            if case .idle = state {
                receivedRequestHeaders(context: context, headers.headers)
            }
            if headers.endStream { endOfInput(context: context) }
        case .data(let frame):
            guard case .byteBuffer(let buffer) = frame.data else { return }
            received(buffer, context: context)
            if frame.endStream { endOfInput(context: context) }
        default:
            break
        }
    }

    private func receivedRequestHeaders(context: ChannelHandlerContext, _ headers: HPACKHeaders) {
        guard headers.first(name: ":method") == "POST" else {
            return respondHTTP(context: context, status: "405")
        }
        guard let contentType = headers.first(name: "content-type"), contentType.hasPrefix("application/grpc") else {
            return respondHTTP(context: context, status: "415")
        }
        let path = headers.first(name: ":path") ?? ""
        if let method = router.fast[path] {
            state = .fast(method)
            return
        }
        guard let descriptor = GRPCWire.methodDescriptor(path) else {
            return fail(context: context, Status(code: .unimplemented, message: "grpc: malformed method name: \(path)"))
        }
        do {
            let channel = try NIOAsyncChannel<RPCRequestPart<EtcdWireBytes>, RPCResponsePart<EtcdWireBytes>>(
                wrappingChannelSynchronously: context.channel
            )
            guard router.accept(EtcdRouter.AcceptedStream(channel: channel, descriptor: descriptor)) else {
                return fail(context: context, Status(code: .unavailable, message: "etcdserver: server stopped"))
            }
        } catch {
            return fail(context: context, Status(code: .internalError, message: "grpc: \(error)"))
        }
        state = .slow
        context.fireChannelRead(wrapInboundOut(.metadata(GRPCWire.metadata(headers))))
    }

    private func received(_ buffer: ByteBuffer, context: ChannelHandlerContext) {
        switch state {
        case .fast:
            deframer.append(buffer)
            do {
                while let message = try deframer.next() {
                    guard request == nil else {
                        return fail(
                            context: context,
                            Status(
                                code: .internalError,
                                message: "grpc: received more than one request message for a unary call"
                            )
                        )
                    }
                    request = message
                }
            } catch {
                fail(context: context, error.status)
            }
        case .slow:
            deframer.append(buffer)
            do {
                while let message = try deframer.next() {
                    context.fireChannelRead(wrapInboundOut(.message(EtcdWireBytes(message))))
                }
            } catch {
                // End the call with the status; closing the stream then cancels the handler.
                writeStatus(context: context, error.status, metadata: [:], promise: nil)
                context.flush()
            }
        case .idle:
            fail(context: context, Status(code: .internalError, message: "grpc: data before headers"))
        case .dispatched, .done:
            break
        }
    }

    private func endOfInput(context: ChannelHandlerContext) {
        guard !inputClosed else { return }
        inputClosed = true
        switch state {
        case .fast(let method):
            guard let request, !deframer.hasPartialMessage else {
                return fail(
                    context: context,
                    Status(code: .internalError, message: "grpc: request ended without a complete message")
                )
            }
            self.request = nil
            dispatch(method, request, context: context)
        case .slow:
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        case .idle, .dispatched, .done:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        pendingData = nil
        if let promise = pendingPromise {
            pendingPromise = nil
            promise.fail(ChannelError.ioOnClosedChannel)
        }
        switch state {
        case .slow:
            cancellation?.cancel()
        case .fast, .dispatched, .idle:
            state = .done
        case .done:
            break
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if case .slow = state {
            context.fireErrorCaught(error)
        } else {
            context.close(promise: nil)
        }
    }

    /// Called from the call's task once grpc-swift runs it: closing the stream cancels the handler (a Watch stream
    /// ends when its client goes away).
    func setCancellationHandle(_ handle: ServerContext.RPCCancellationHandle) {
        cancellation = handle
        if closed { handle.cancel() }
    }

    // MARK: Fast path

    private func dispatch(_ method: EtcdFastMethod, _ request: ByteBuffer, context: ChannelHandlerContext) {
        state = .dispatched(method, started: .now())
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let batcher = self.batcher
        method.run(Array(request.readableBytesView)) { outcome in
            batcher.complete { bound.value.0.respond(context: bound.value.1, outcome) }
        }
    }

    private func respond(context: ChannelHandlerContext, _ outcome: Result<[UInt8], RPCError>) {
        guard case .dispatched(let method, let started) = state else { return }
        state = .done
        method.record(outcome, since: started)
        switch outcome {
        case .success(let message):
            context.write(wrapOutboundOut(.headers(.init(headers: GRPCWire.responseHeaders))), promise: nil)
            let framed = GRPCWire.frame(message, allocator: context.channel.allocator)
            context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(framed)))), promise: nil)
            context.writeAndFlush(
                wrapOutboundOut(.headers(.init(headers: GRPCWire.okTrailers, endStream: true))),
                promise: nil
            )
        case .failure(let error):
            let status = Status(code: .init(error.code), message: error.message)
            let headers = GRPCWire.trailers(status, trailersOnly: true)
            context.writeAndFlush(wrapOutboundOut(.headers(.init(headers: headers, endStream: true))), promise: nil)
        }
    }

    /// Ends the call with a status before it reached a handler.
    private func fail(context: ChannelHandlerContext, _ status: Status) {
        if case .dispatched = state { return }
        if case .done = state { return }
        if case .slow = state {
            writeStatus(context: context, status, metadata: [:], promise: nil)
            context.flush()
            return
        }
        state = .done
        let headers = GRPCWire.trailers(status, trailersOnly: true)
        context.writeAndFlush(wrapOutboundOut(.headers(.init(headers: headers, endStream: true))), promise: nil)
        if !inputClosed { context.close(promise: nil) }
    }

    private func respondHTTP(context: ChannelHandlerContext, status: String) {
        state = .done
        let headers: HPACKHeaders = [":status": status]
        context.writeAndFlush(wrapOutboundOut(.headers(.init(headers: headers, endStream: true))), promise: nil)
        context.close(promise: nil)
    }

    // MARK: Outbound (grpc-swift's response parts)

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .metadata(let metadata):
            guard !sentHeaders else { promise?.succeed(); return }
            sentHeaders = true
            var headers = GRPCWire.responseHeaders
            GRPCWire.add(metadata, to: &headers)
            context.write(wrapOutboundOut(.headers(.init(headers: headers))), promise: promise)
        case .message(let bytes):
            if !sentHeaders {
                sentHeaders = true
                context.write(wrapOutboundOut(.headers(.init(headers: GRPCWire.responseHeaders))), promise: nil)
            }
            var pending = pendingData ?? context.channel.allocator.buffer(capacity: bytes.buffer.readableBytes + 5)
            pendingData = nil  // uniquely referenced while appending
            GRPCWire.appendFrame(bytes.buffer, to: &pending)
            if let promise {
                if let pendingPromise {
                    pendingPromise.futureResult.cascade(to: promise)
                } else {
                    pendingPromise = promise
                }
            }
            pendingData = pending
            if pending.readableBytes >= Self.maxPendingBytes { writePending(context: context) }
        case .status(let status, let metadata):
            writePending(context: context)
            writeStatus(context: context, status, metadata: metadata, promise: promise)
        }
    }

    static let maxPendingBytes = 1 << 20

    func flush(context: ChannelHandlerContext) {
        writePending(context: context)
        context.flush()
    }

    private func writePending(context: ChannelHandlerContext) {
        guard let data = pendingData else { return }
        pendingData = nil
        let promise = pendingPromise
        pendingPromise = nil
        context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(data)))), promise: promise)
    }

    private func writeStatus(
        context: ChannelHandlerContext,
        _ status: Status,
        metadata: Metadata,
        promise: EventLoopPromise<Void>?
    ) {
        guard case .slow = state else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        state = .done
        let headers = GRPCWire.trailers(status, metadata: metadata, trailersOnly: !sentHeaders)
        sentHeaders = true
        let written = context.eventLoop.makePromise(of: Void.self)
        context.write(wrapOutboundOut(.headers(.init(headers: headers, endStream: true))), promise: written)
        let inputClosed = self.inputClosed
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        written.futureResult.whenComplete { result in
            // A call that ends before its client finished sending (a Watch stream ended by the server) resets the
            // stream after the trailers, as grpc-go does.
            if !inputClosed { bound.value.close(promise: nil) }
            promise?.completeWith(result)
        }
    }
}
