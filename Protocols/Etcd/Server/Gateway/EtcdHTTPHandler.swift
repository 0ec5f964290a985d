internal import GRPCCore
internal import NIOCore
internal import NIOHTTP1
internal import StrataCommon
package import StrataObservability

/// What etcd's client port serves over HTTP/1.1 besides gRPC: health, version and metrics, which scripts and
/// container health checks call (`curl http://127.0.0.1:2379/health`).
package struct EtcdHTTPEndpoints: Sendable {
    /// `/health`: the process's overall health, as the admin listener reports it, ignoring the alarms named.
    package var health: @Sendable (_ excludedAlarms: Set<String>) async -> HealthStatus
    /// `/metrics`: the Prometheus exposition; nil answers 404.
    package var metrics: (@Sendable () -> [UInt8])?

    package init(
        health: @escaping @Sendable (_ excludedAlarms: Set<String>) async -> HealthStatus,
        metrics: (@Sendable () -> [UInt8])?
    ) {
        self.health = health
        self.metrics = metrics
    }
}

/// One HTTP/1.1 connection on the etcd port: `/health`, `/version`, `/metrics` and etcd's JSON gateway (`/v3/...`).
/// Requests are answered one at a time (NIO's pipelining handler holds back the next one). A gateway call runs in
/// grpc-swift's server like any gRPC call; streaming calls read their request objects while they answer.
final class EtcdHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// What the current request is doing.
    private enum Phase {
        case idle
        /// Collecting a body to answer at its end (unary calls, the simple endpoints).
        case collecting(HTTPRequestHead, Target, ByteBuffer)
        /// A streaming call runs; body values go to it as they arrive.
        case streaming(Call, JSONValueSplitter)
        /// Answered already (an error, or a call that ended first): the rest of the body is dropped.
        case discarding
    }

    private enum Target {
        case health, version, metrics
        case gateway(EtcdGateway.Route)
    }

    /// The response side of one gateway call.
    private final class Call {
        let id: Int
        let route: EtcdGateway.Route
        let control = EtcdLocalCall.Control()
        let requests: AsyncThrowingStream<RPCRequestPart<EtcdWireBytes>, any Error>.Continuation
        let keepAlive: Bool
        var headWritten = false
        var requestsFinished = false
        /// Request objects passed to the call so far.
        var sent = 0
        /// A unary call's response, written with its status.
        var message: [UInt8]?

        init(
            id: Int,
            route: EtcdGateway.Route,
            keepAlive: Bool,
            requests: AsyncThrowingStream<RPCRequestPart<EtcdWireBytes>, any Error>.Continuation
        ) {
            self.id = id
            self.route = route
            self.keepAlive = keepAlive
            self.requests = requests
        }

        func finishRequests() {
            guard !requestsFinished else { return }
            requestsFinished = true
            requests.finish()
        }
    }

    private struct CallFailed: Error {}

    /// etcd (grpc-gateway behind a CORS wrapper allowing every origin) sends these with every answer.
    static let corsHeaders: [(String, String)] = [
        ("Access-Control-Allow-Headers", "accept, content-type, authorization"),
        ("Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE"),
        ("Access-Control-Allow-Origin", "*"),
    ]

    /// Request objects a streaming call may have queued before it reads them.
    static let maxQueuedRequests = 1024

    private let router: EtcdRouter
    private let endpoints: EtcdHTTPEndpoints
    private let eventLoop: any EventLoop
    /// JSON is base64 and quoting around the protobuf limit: a body this large cannot be a valid request.
    private let maxBodyBytes: Int
    private var phase = Phase.idle
    /// Answered and closed for output, still reading (and dropping) the request's rest: see ``answerTooLarge``.
    private var lingering = false
    private var call: Call?
    private var nextCallID = 0
    private var context: ChannelHandlerContext?

    init(router: EtcdRouter, endpoints: EtcdHTTPEndpoints, eventLoop: any EventLoop) {
        self.router = router
        self.endpoints = endpoints
        self.eventLoop = eventLoop
        self.maxBodyBytes = router.maxRequestPayload * 2 + (64 << 10)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        endCall()
    }

    func channelInactive(context: ChannelHandlerContext) {
        endCall()
        context.fireChannelInactive()
    }

    private func endCall() {
        guard let call else { return }
        self.call = nil
        call.finishRequests()
        call.control.cancel()
    }

    // MARK: Requests

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if lingering {
            // The client has sent all of its request: nothing unread is left to turn the close into a reset.
            if case .end = unwrapInboundIn(data) { context.close(promise: nil) }
            return
        }
        switch unwrapInboundIn(data) {
        case .head(let head): begin(head, context: context)
        case .body(var chunk):
            switch phase {
            case .collecting(let head, let target, var body):
                phase = .discarding
                if body.readableBytes + chunk.readableBytes > maxBodyBytes {
                    return answerTooLarge(context: context)
                }
                body.writeBuffer(&chunk)
                phase = .collecting(head, target, body)
            case .streaming(let call, var splitter):
                feed(call, &splitter, chunk.readableBytesView, context: context)
                // Unless the call was answered with an error, keep the splitter's progress.
                if case .streaming = phase { phase = .streaming(call, splitter) }
            case .idle, .discarding: break
            }
        case .end:
            let current = phase
            phase = .idle
            switch current {
            case .collecting(let head, let target, let body): answer(head, target, body, context: context)
            case .streaming(let call, var splitter):
                if let last = splitter.finish() { send(last, to: call, context: context) }
                call.finishRequests()
            case .idle, .discarding: break
            }
        }
    }

    private func begin(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        // A client that waits for "100 Continue" before sending its body (curl does above 1 MiB) and is answered
        // without one may or may not send the body anyway: such a connection is closed after the answer.
        let expectsContinue = head.headers["expect"].contains { $0.lowercased() == "100-continue" }
        let keepAlive = head.isKeepAlive && !expectsContinue
        phase = .discarding
        if head.method == .OPTIONS {
            return respond(status: .ok, contentType: nil, body: [], keepAlive: keepAlive, context: context)
        }
        let target: Target
        switch path {
        case "/health": target = .health
        case "/version": target = .version
        case "/metrics" where endpoints.metrics != nil: target = .metrics
        default:
            guard path.hasPrefix("/v3/") else {
                return respond(status: .notFound, text: "404 page not found\n", keepAlive: keepAlive, context: context)
            }
            guard let route = EtcdGateway.routes[path] else {
                return respond(status: .notFound, text: "Not Found\n", keepAlive: keepAlive, context: context)
            }
            target = .gateway(route)
        }
        let allowed: Bool
        switch target {
        case .gateway: allowed = head.method == .POST
        case .health, .version: allowed = head.method == .GET
        case .metrics: allowed = true
        }
        guard allowed else {
            return respond(
                status: .methodNotAllowed,
                text: "Method Not Allowed\n",
                keepAlive: keepAlive,
                context: context
            )
        }
        if expectsContinue {
            // The body will be read: ask for it now rather than after the client's timeout (curl waits 1 s).
            let interim = HTTPResponseHead(version: head.version, status: .continue)
            context.writeAndFlush(wrapOutboundOut(.head(interim)), promise: nil)
        }
        if case .gateway(let route) = target, route.streamsRequests {
            guard let call = startCall(route, keepAlive: head.isKeepAlive, context: context) else { return }
            phase = .streaming(call, JSONValueSplitter(maxValueBytes: maxBodyBytes))
        } else {
            phase = .collecting(head, target, context.channel.allocator.buffer(capacity: 0))
        }
    }

    /// Passes the values a body chunk completes to a streaming call; the first bad one ends its requests.
    private func feed(
        _ call: Call,
        _ splitter: inout JSONValueSplitter,
        _ bytes: ByteBufferView,
        context: ChannelHandlerContext
    ) {
        let values: [[UInt8]]
        do throws(JSONValueSplitter.SplitError) {
            values = try splitter.append(bytes)
        } catch {
            return rejectStreamRequest(call, message: "\(error)", context: context)
        }
        for value in values where !call.requestsFinished { send(value, to: call, context: context) }
    }

    private func send(_ json: [UInt8], to call: Call, context: ChannelHandlerContext) {
        let bytes: [UInt8]
        do {
            bytes = try call.route.decodeRequest(json)
        } catch {
            return rejectStreamRequest(call, message: EtcdGateway.describe(error), context: context)
        }
        if let tooLarge = sizeFailure(bytes.count) {
            return rejectStreamRequest(call, message: tooLarge.message, context: context)
        }
        if case .dropped = call.requests.yield(.message(EtcdWireBytes(bytes))) {
            return rejectStreamRequest(call, message: "too many queued requests", context: context)
        }
        call.sent += 1
    }

    /// etcd's gateway fails a stream whose first request does not decode (500, gRPC code Unknown) and otherwise just
    /// stops reading requests; the call keeps answering.
    private func rejectStreamRequest(_ call: Call, message: String, context: ChannelHandlerContext) {
        call.finishRequests()
        guard call.sent == 0, !call.headWritten, self.call === call else { return }
        endCall()
        phase = .discarding
        let body = EtcdGateway.errorBody(code: .unknown, message: message)
        respond(
            status: .internalServerError,
            contentType: "application/json",
            body: Array(body.utf8),
            keepAlive: false,
            context: context
        )
    }

    private func answer(_ head: HTTPRequestHead, _ target: Target, _ body: ByteBuffer, context: ChannelHandlerContext) {
        let keepAlive = head.isKeepAlive
        switch target {
        case .version:
            let json =
                #"{"etcdserver":"\#(MaintenanceService.reportedVersion)","etcdcluster":"\#(Self.clusterVersion)"}"#
            respond(
                status: .ok,
                contentType: "application/json",
                body: Array(json.utf8),
                keepAlive: keepAlive,
                context: context
            )
        case .metrics:
            let text = endpoints.metrics?() ?? []
            respond(
                status: .ok,
                contentType: "text/plain; version=0.0.4; charset=utf-8",
                body: text,
                keepAlive: keepAlive,
                context: context
            )
        case .health:
            let health = endpoints.health
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            let contextBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            let query = head.uri.split(separator: "?", maxSplits: 1).dropFirst().first ?? ""
            let excluded = AdminServer.excludedAlarms(query: query)
            context.eventLoop.makeFutureWithTask { await health(excluded) }.whenSuccess { status in
                let json = #"{"health":"\#(status.isHealthy)","reason":\#(JSONText.quoted(status.reason))}"#
                loopBound.value.respond(
                    status: status.isHealthy ? .ok : .serviceUnavailable,
                    contentType: "application/json",
                    body: Array(json.utf8),
                    keepAlive: keepAlive,
                    context: contextBound.value
                )
            }
        case .gateway(let route):
            // Like grpc-gateway's decoder, read the first JSON value and ignore whatever follows it.
            var splitter = JSONValueSplitter(maxValueBytes: maxBodyBytes)
            let first = (try? splitter.append(body.readableBytesView))?.first ?? splitter.finish() ?? []
            let request: [UInt8]
            do {
                request = try route.decodeRequest(first)
            } catch {
                return respondError(
                    code: .invalidArgument,
                    message: EtcdGateway.describe(error),
                    keepAlive: keepAlive,
                    context: context
                )
            }
            if let tooLarge = sizeFailure(request.count) {
                return respondError(
                    code: tooLarge.code,
                    message: tooLarge.message,
                    keepAlive: keepAlive,
                    context: context
                )
            }
            guard let call = startCall(route, keepAlive: keepAlive, context: context) else { return }
            _ = call.requests.yield(.message(EtcdWireBytes(request)))
            call.finishRequests()
        }
    }

    /// grpc-go's receive-limit error for a decoded request above it (a gateway call skips the gRPC deframer).
    private func sizeFailure(_ count: Int) -> Status? {
        count > router.maxRequestPayload
            ? GRPCDeframer.Failure.tooLarge(length: count, limit: router.maxRequestPayload).status : nil
    }

    /// The cluster version etcd reports next to its server version: major.minor.0.
    static var clusterVersion: String {
        let parts = MaintenanceService.reportedVersion.split(separator: ".")
        return parts.count >= 2 ? "\(parts[0]).\(parts[1]).0" : MaintenanceService.reportedVersion
    }

    // MARK: Calls

    private func startCall(_ route: EtcdGateway.Route, keepAlive: Bool, context: ChannelHandlerContext) -> Call? {
        let (requests, continuation) = AsyncThrowingStream.makeStream(
            of: RPCRequestPart<EtcdWireBytes>.self,
            throwing: (any Error).self,
            bufferingPolicy: .bufferingOldest(Self.maxQueuedRequests)
        )
        continuation.yield(.metadata([:]))
        nextCallID += 1
        let call = Call(id: nextCallID, route: route, keepAlive: keepAlive, requests: continuation)
        self.call = call
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        let id = call.id
        let encode = route.encodeResponse
        let local = EtcdLocalCall(
            descriptor: route.descriptor,
            requests: requests,
            deliver: { part in
                switch part {
                case .metadata: return
                case .message(let bytes):
                    let json = try encode(Array(bytes.buffer.readableBytesView))
                    try await eventLoop.flatSubmit { loopBound.value.deliver(json, callID: id) }.get()
                case .status(let status, _):
                    try await eventLoop.submit { loopBound.value.finish(status, callID: id) }.get()
                }
            },
            control: call.control,
            remotePeer: EtcdServerTransport.describe(context.channel.remoteAddress),
            localPeer: EtcdServerTransport.describe(context.channel.localAddress)
        )
        guard router.accept(local) else {
            self.call = nil
            continuation.finish()
            respondError(code: .unavailable, message: "etcdserver: server stopped", keepAlive: false, context: context)
            return nil
        }
        return call
    }

    /// A response message: kept for a unary call's answer, written as a `{"result": ...}` line for a stream.
    private func deliver(_ json: [UInt8], callID: Int) -> EventLoopFuture<Void> {
        guard let context, let call, call.id == callID else {
            return eventLoop.makeFailedFuture(CallFailed())
        }
        guard call.route.streamsResponses else {
            call.message = json
            return context.eventLoop.makeSucceededVoidFuture()
        }
        if !call.headWritten {
            call.headWritten = true
            var headers = Self.headers(contentType: "application/json", keepAlive: call.keepAlive)
            headers.add(name: "Grpc-Metadata-Content-Type", value: "application/grpc")
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))),
                promise: nil
            )
        }
        var line = context.channel.allocator.buffer(capacity: json.count + 12)
        line.writeString(#"{"result":"#)
        line.writeBytes(json)
        line.writeString("}\n")
        return context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(line))))
    }

    private func finish(_ status: Status, callID: Int) {
        guard let context, let call, call.id == callID else { return }
        self.call = nil
        call.finishRequests()
        if call.headWritten {
            var tail = context.channel.allocator.buffer(capacity: 0)
            if status.code != .ok {
                tail.writeString(EtcdGateway.streamErrorLine(code: status.code, message: status.message))
                context.write(wrapOutboundOut(.body(.byteBuffer(tail))), promise: nil)
            }
            return end(keepAlive: call.keepAlive, context: context)
        }
        if status.code == .ok {
            var headers = Self.headers(contentType: "application/json", keepAlive: call.keepAlive)
            headers.add(name: "Grpc-Metadata-Content-Type", value: "application/grpc")
            let body = call.message ?? []
            headers.add(name: "Content-Length", value: "\(body.count)")
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))),
                promise: nil
            )
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
            end(keepAlive: call.keepAlive, context: context)
        } else {
            respondError(code: status.code, message: status.message, keepAlive: call.keepAlive, context: context)
        }
    }

    // MARK: Responses

    private static func headers(contentType: String?, keepAlive: Bool) -> HTTPHeaders {
        var headers = HTTPHeaders(corsHeaders)
        if let contentType { headers.add(name: "Content-Type", value: contentType) }
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        return headers
    }

    private func respondError(code: Status.Code, message: String, keepAlive: Bool, context: ChannelHandlerContext) {
        let body = EtcdGateway.errorBody(code: code, message: message)
        respond(
            status: HTTPResponseStatus(statusCode: EtcdGateway.httpStatus(for: code)),
            contentType: "application/json",
            body: Array(body.utf8),
            keepAlive: keepAlive,
            context: context
        )
    }

    private func answerTooLarge(context: ChannelHandlerContext) {
        let status = GRPCDeframer.Failure.tooLarge(length: maxBodyBytes + 1, limit: router.maxRequestPayload).status
        let body = Array(EtcdGateway.errorBody(code: status.code, message: status.message).utf8)
        var headers = Self.headers(contentType: "application/json", keepAlive: false)
        headers.add(name: "Content-Length", value: "\(body.count)")
        let head = HTTPResponseHead(
            version: .http1_1,
            status: HTTPResponseStatus(statusCode: EtcdGateway.httpStatus(for: status.code)),
            headers: headers
        )
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
        // Closing with the body's rest unread would send a reset, which can destroy the answer before the client
        // reads it. As Go's server does: close for output, drop what still arrives until the request ends, then
        // close; a client that never finishes gets a bounded wait.
        lingering = true
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            channel.close(mode: .output, promise: nil)
            channel.eventLoop.scheduleTask(in: Self.lingerLimit) { channel.close(promise: nil) }
        }
    }

    /// How long a refused request's rest is read and dropped before the connection closes anyway.
    static let lingerLimit = TimeAmount.seconds(2)

    private func respond(status: HTTPResponseStatus, text: String, keepAlive: Bool, context: ChannelHandlerContext) {
        var headers = Self.headers(contentType: "text/plain; charset=utf-8", keepAlive: keepAlive)
        headers.add(name: "X-Content-Type-Options", value: "nosniff")
        write(status: status, headers: headers, body: Array(text.utf8), keepAlive: keepAlive, context: context)
    }

    private func respond(
        status: HTTPResponseStatus,
        contentType: String?,
        body: [UInt8],
        keepAlive: Bool,
        context: ChannelHandlerContext
    ) {
        write(
            status: status,
            headers: Self.headers(contentType: contentType, keepAlive: keepAlive),
            body: body,
            keepAlive: keepAlive,
            context: context
        )
    }

    private func write(
        status: HTTPResponseStatus,
        headers: HTTPHeaders,
        body: [UInt8],
        keepAlive: Bool,
        context: ChannelHandlerContext
    ) {
        var headers = headers
        headers.add(name: "Content-Length", value: "\(body.count)")
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))),
            promise: nil
        )
        if !body.isEmpty { context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil) }
        end(keepAlive: keepAlive, context: context)
    }

    private func end(keepAlive: Bool, context: ChannelHandlerContext) {
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            written.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
