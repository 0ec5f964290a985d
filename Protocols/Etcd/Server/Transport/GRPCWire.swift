package import GRPCCore
package import NIOCore
internal import NIOHPACK

/// Message bytes as they arrive from and leave for the wire: a `ByteBuffer`, so grpc-swift's codecs read and write
/// them without another copy.
package struct EtcdWireBytes: GRPCContiguousBytes, Sendable {
    var buffer: ByteBuffer

    init(_ buffer: ByteBuffer) { self.buffer = buffer }

    package init(repeating: UInt8, count: Int) { buffer = ByteBuffer(repeating: repeating, count: count) }

    package init(_ sequence: some Sequence<UInt8>) { buffer = ByteBuffer(bytes: sequence) }

    package var count: Int { buffer.readableBytes }

    package func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try buffer.withUnsafeReadableBytes(body)
    }

    package mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try buffer.withUnsafeMutableReadableBytes(body)
    }
}

/// gRPC's length-prefixed messages (`[compressed flag][BE32 length][bytes]`), reassembled from DATA frames with a
/// bound on their size.
package struct GRPCDeframer {
    package enum Failure: Error, Equatable {
        /// grpc-go's text, which etcd clients see when a request exceeds the server's receive limit.
        case tooLarge(length: Int, limit: Int)
        case compressed

        package var status: Status {
            switch self {
            case .tooLarge(let length, let limit):
                Status(
                    code: .resourceExhausted,
                    message: "grpc: received message larger than max (\(length) vs. \(limit))"
                )
            case .compressed:
                Status(code: .unimplemented, message: "grpc: compressed messages are not supported by this server")
            }
        }
    }

    package let limit: Int
    private var pending: ByteBuffer?

    package init(limit: Int) { self.limit = limit }

    /// Whether part of a message is still waiting for more bytes.
    package var hasPartialMessage: Bool { (pending?.readableBytes ?? 0) > 0 }

    package mutating func append(_ data: ByteBuffer) {
        if pending == nil || pending!.readableBytes == 0 {
            pending = data
        } else {
            var data = data
            pending!.writeBuffer(&data)
        }
    }

    /// The next complete message, nil when more bytes are needed.
    package mutating func next() throws(Failure) -> ByteBuffer? {
        guard var buffer = pending, buffer.readableBytes >= 5,
            let flag = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
            let length = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt32.self)
        else { return nil }
        if flag != 0 { throw .compressed }
        if Int(length) > limit { throw .tooLarge(length: Int(length), limit: limit) }
        guard buffer.readableBytes >= 5 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 5)
        let message = buffer.readSlice(length: Int(length))!
        pending = buffer
        return message
    }
}

package enum GRPCWire {
    /// The response headers every successful call starts with.
    static let responseHeaders: HPACKHeaders = [":status": "200", "content-type": "application/grpc"]

    static let okTrailers: HPACKHeaders = ["grpc-status": "0"]

    /// `/package.Service/Method` as grpc-swift's router names it; nil for anything else.
    package static func methodDescriptor(_ path: String) -> MethodDescriptor? {
        guard path.hasPrefix("/") else { return nil }
        let parts = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        return MethodDescriptor(fullyQualifiedService: String(parts[0]), method: String(parts[1]))
    }

    /// Prefixes a serialized message with gRPC's 5-byte frame header.
    static func frame(_ message: some Collection<UInt8>, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: message.count + 5)
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(message.count))
        buffer.writeBytes(message)
        return buffer
    }

    /// Appends `message` framed (uncompressed) to `buffer`: gRPC messages may share one DATA frame.
    static func appendFrame(_ message: ByteBuffer, to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(message.readableBytes))
        buffer.writeImmutableBuffer(message)
    }

    /// Trailers carrying a status; `trailersOnly` when no response headers were sent (the whole response is one
    /// HEADERS frame).
    static func trailers(_ status: Status, metadata: Metadata = [:], trailersOnly: Bool) -> HPACKHeaders {
        var headers: HPACKHeaders = trailersOnly ? responseHeaders : [:]
        headers.add(name: "grpc-status", value: String(status.code.rawValue))
        if !status.message.isEmpty { headers.add(name: "grpc-message", value: percentEncoded(status.message)) }
        add(metadata, to: &headers)
        return headers
    }

    static func add(_ metadata: Metadata, to headers: inout HPACKHeaders) {
        for entry in metadata {
            switch entry.value {
            case .string(let value): headers.add(name: entry.key, value: value)
            case .binary(let bytes): headers.add(name: entry.key, value: base64(bytes))
            }
        }
    }

    /// Request headers other than HTTP/2 pseudo-headers, for grpc-swift (it reads `grpc-timeout` from them).
    static func metadata(_ headers: HPACKHeaders) -> Metadata {
        var metadata = Metadata()
        for (name, value, _) in headers where !name.hasPrefix(":") {
            metadata.addString(value, forKey: name)
        }
        return metadata
    }

    /// gRPC's percent-encoding of `grpc-message`: printable ASCII except `%` stays, everything else is `%XX` of its
    /// UTF-8 bytes.
    package static func percentEncoded(_ message: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(message.utf8.count)
        for byte in message.utf8 {
            if byte >= 0x20 && byte <= 0x7E && byte != UInt8(ascii: "%") {
                bytes.append(byte)
            } else {
                bytes.append(UInt8(ascii: "%"))
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0x0F)])
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    package static func base64(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let chunk = bytes[index..<min(index + 3, bytes.count)]
            var value = 0
            for (offset, byte) in chunk.enumerated() { value |= Int(byte) << (16 - 8 * offset) }
            for position in 0..<4 {
                out.append(
                    position <= chunk.count ? alphabet[(value >> (18 - 6 * position)) & 0x3F] : UInt8(ascii: "=")
                )
            }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
