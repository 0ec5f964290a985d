internal import NIOCore
internal import NIOHTTP2

/// etcd's client port speaks gRPC (HTTP/2 with prior knowledge) and HTTP/1.1 on the same socket. The first bytes
/// tell them apart: an HTTP/2 client opens with the preface `PRI * HTTP/2.0`, which no HTTP/1 request starts with.
/// The sniffer sets up the matching pipeline behind itself, replays what it read, and leaves.
final class ProtocolSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private static let preface = Array("PRI ".utf8)

    private let http2: (any Channel) throws -> Void
    private let http1: (any Channel) throws -> Void
    private var buffered: ByteBuffer?

    init(http2: @escaping (any Channel) throws -> Void, http1: @escaping (any Channel) throws -> Void) {
        self.http2 = http2
        self.http1 = http1
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if var buffered {
            buffered.writeBuffer(&bytes)
            bytes = buffered
        }
        let seen = Array(bytes.readableBytesView.prefix(Self.preface.count))
        guard seen.count == Self.preface.count || seen != Array(Self.preface.prefix(seen.count)) else {
            buffered = bytes
            return
        }
        buffered = nil
        do {
            try (seen == Self.preface ? http2 : http1)(context.channel)
        } catch {
            context.fireErrorCaught(error)
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(wrapInboundOut(bytes))
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

/// Last in a connection's pipeline: a connection-level error (a bad HTTP/2 preface, a malformed HTTP/1 request, a
/// reset socket) closes the connection, as etcd's server does, instead of leaving it open and idle. Errors that
/// swift-nio-http2 also reports here but that concern one stream — a stream error, a frame for a stream it no longer
/// knows (a client's late RST_STREAM) — leave the connection and its other calls alone.
final class CloseOnConnectionError: ChannelInboundHandler {
    typealias InboundIn = Any

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is NIOHTTP2Errors.StreamError || error is NIOHTTP2Errors.NoSuchStream { return }
        context.close(promise: nil)
    }
}
