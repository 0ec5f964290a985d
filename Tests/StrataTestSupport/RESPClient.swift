import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One RESP reply as a test sees it: the exact bytes the server sent and the parsed tree.
package indirect enum RESPReply: Sendable, Hashable, CustomStringConvertible {
    case simple(String)
    case error(String)
    case integer(Int64)
    case bulk([UInt8]?)
    case array([RESPReply]?)
    case null
    case double(String)
    case boolean(Bool)
    case bigNumber(String)
    case verbatim(String, String)
    case map([RESPReply])
    case set([RESPReply])
    case push([RESPReply])
    case attribute([RESPReply])

    package var description: String {
        switch self {
        case .simple(let text): "+\(text)"
        case .error(let text): "-\(text)"
        case .integer(let value): ":\(value)"
        case .bulk(let bytes): bytes.map { "\"\(String(decoding: $0, as: UTF8.self))\"" } ?? "(nil)"
        case .array(let items): items.map { "[" + $0.map(\.description).joined(separator: ", ") + "]" } ?? "(nil array)"
        case .null: "_"
        case .double(let text): ",\(text)"
        case .boolean(let flag): flag ? "#t" : "#f"
        case .bigNumber(let text): "(\(text)"
        case .verbatim(let format, let text): "=\(format):\(text)"
        case .map(let items): "%{" + items.map(\.description).joined(separator: ", ") + "}"
        case .set(let items): "~{" + items.map(\.description).joined(separator: ", ") + "}"
        case .push(let items): ">[" + items.map(\.description).joined(separator: ", ") + "]"
        case .attribute(let items): "|{" + items.map(\.description).joined(separator: ", ") + "}"
        }
    }

    /// The text of a bulk or simple string.
    package var text: String? {
        switch self {
        case .bulk(let bytes): bytes.map { String(decoding: $0, as: UTF8.self) }
        case .simple(let text), .verbatim(_, let text): text
        default: nil
        }
    }

    /// Array, set or map items.
    package var items: [RESPReply]? {
        switch self {
        case .array(let items): items
        case .set(let items), .map(let items), .push(let items): items
        default: nil
        }
    }
}

/// A blocking RESP client over a TCP socket: sends commands as multibulk (or raw bytes) and reads whole replies,
/// keeping their exact bytes, so tests can compare Strata with redis-server byte for byte.
package final class RESPClient: @unchecked Sendable {
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var offset = 0

    package init(port: Int, timeoutSeconds: Int = 10) throws {
        // The descriptor is stored only once connected: a class whose init throws after storing every property runs
        // its deinit, which closed it a second time — closing whatever another thread had opened under that number
        // meanwhile (a tool's output file: empty output, or posix_spawn failing with EBADF).
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw RESPClientError.connect(port) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            close(descriptor)
            throw RESPClientError.connect(port)
        }
        fd = descriptor
    }

    deinit { close(fd) }

    /// The multibulk encoding of a command.
    package static func encode(_ arguments: [[UInt8]]) -> [UInt8] {
        var bytes = Array("*\(arguments.count)\r\n".utf8)
        for argument in arguments {
            bytes += Array("$\(argument.count)\r\n".utf8)
            bytes += argument
            bytes += [13, 10]
        }
        return bytes
    }

    package func send(raw bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw RESPClientError.closed }
            sent += n
        }
    }

    package func send(_ arguments: [String]) throws { try send(raw: Self.encode(arguments.map { Array($0.utf8) })) }
    package func send(bytes arguments: [[UInt8]]) throws { try send(raw: Self.encode(arguments)) }

    /// Sends a command and reads its reply.
    @discardableResult
    package func call(_ arguments: String...) throws -> RESPReply { try call(arguments) }

    /// Sends a command of binary arguments and reads its reply.
    @discardableResult
    package func call(bytes arguments: [[UInt8]]) throws -> RESPReply {
        try send(bytes: arguments)
        return try read().reply
    }

    @discardableResult
    package func call(_ arguments: [String]) throws -> RESPReply {
        try send(arguments)
        return try read().reply
    }

    /// Reads one reply: the parsed value and its exact bytes.
    package func read() throws -> (reply: RESPReply, bytes: [UInt8]) {
        let start = offset
        let reply = try parse()
        let bytes = Array(buffer[start..<offset])
        if offset > 1 << 16 {
            buffer.removeFirst(offset)
            offset = 0
        }
        return (reply, bytes)
    }

    /// Whether the server has closed the connection (reads EOF within `timeoutSeconds`).
    package func isClosed(timeoutSeconds: Int = 2) -> Bool {
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var chunk = [UInt8](repeating: 0, count: 65536)
        // A server that keeps sending has not closed: give up at the deadline rather than read forever.
        let deadline = Date().addingTimeInterval(Double(timeoutSeconds))
        while Date() < deadline {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n == 0 { return true }
            if n < 0 { return errno == ECONNRESET }
            if buffer.count < 1 << 20 { buffer += chunk[0..<n] }
        }
        return false
    }

    /// Everything that arrives within `milliseconds` (for tests of what a server does not send).
    package func drain(milliseconds: Int) -> [UInt8] {
        var timeout = timeval(tv_sec: 0, tv_usec: Int(milliseconds) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var received: [UInt8] = Array(buffer[offset...])
        buffer.removeAll()
        offset = 0
        var chunk = [UInt8](repeating: 0, count: 65536)
        let deadline = Date().addingTimeInterval(Double(milliseconds) / 1000 + 5)
        while Date() < deadline {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n <= 0 { break }
            received += chunk[0..<n]
        }
        var restore = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &restore, socklen_t(MemoryLayout<timeval>.size))
        return received
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &chunk, chunk.count, 0)
        guard n > 0 else { throw n == 0 ? RESPClientError.closed : RESPClientError.timeout }
        buffer += chunk[0..<n]
    }

    private func line() throws -> String {
        while true {
            if let cr = buffer[offset...].firstIndex(of: 13), cr + 1 < buffer.count {
                let text = String(decoding: buffer[offset..<cr], as: UTF8.self)
                offset = cr + 2
                return text
            }
            try fill()
        }
    }

    private func bytes(_ count: Int) throws -> [UInt8] {
        while buffer.count - offset < count + 2 { try fill() }
        let data = Array(buffer[offset..<offset + count])
        offset += count + 2
        return data
    }

    private func parse() throws -> RESPReply {
        while offset >= buffer.count { try fill() }
        let type = buffer[offset]
        offset += 1
        let header = try line()
        func items(_ count: Int) throws -> [RESPReply] { try (0..<count).map { _ in try parse() } }
        switch type {
        case UInt8(ascii: "+"): return .simple(header)
        case UInt8(ascii: "-"): return .error(header)
        case UInt8(ascii: ":"): return .integer(Int64(header) ?? 0)
        case UInt8(ascii: "$"):
            let count = Int(header) ?? -1
            return count < 0 ? .bulk(nil) : .bulk(try bytes(count))
        case UInt8(ascii: "*"):
            let count = Int(header) ?? -1
            return count < 0 ? .array(nil) : .array(try items(count))
        case UInt8(ascii: "_"): return .null
        case UInt8(ascii: ","): return .double(header)
        case UInt8(ascii: "#"): return .boolean(header == "t")
        case UInt8(ascii: "("): return .bigNumber(header)
        case UInt8(ascii: "="):
            let text = String(decoding: try bytes(Int(header) ?? 0), as: UTF8.self)
            return .verbatim(String(text.prefix(3)), String(text.dropFirst(4)))
        case UInt8(ascii: "%"): return .map(try items(2 * (Int(header) ?? 0)))
        case UInt8(ascii: "~"): return .set(try items(Int(header) ?? 0))
        case UInt8(ascii: ">"): return .push(try items(Int(header) ?? 0))
        case UInt8(ascii: "|"): return .attribute(try items(2 * (Int(header) ?? 0)))
        default: throw RESPClientError.protocolViolation(type)
        }
    }
}

package enum RESPClientError: Error, CustomStringConvertible {
    case connect(Int)
    case closed
    case timeout
    case protocolViolation(UInt8)

    package var description: String {
        switch self {
        case .connect(let port): "cannot connect to 127.0.0.1:\(port)"
        case .closed: "connection closed"
        case .timeout: "timed out waiting for a reply"
        case .protocolViolation(let byte): "unexpected reply type byte \(byte)"
        }
    }
}

/// A Debian `redis-server` started on a free port with no persistence, as the reference for differential tests.
package final class ReferenceRedis: @unchecked Sendable {
    /// Killed (SIGKILL) and reaped when this is released.
    package let process = ChildProcess()
    package let port: Int

    package init(directory: String, arguments: [String] = []) throws {
        port = TestNetwork.freePort()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
        process.arguments =
            [
                "--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory,
                "--enable-debug-command", "yes",
            ] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        try Self.waitForPort(port)
    }

    /// Waits until something accepts connections on `port` and answers PING.
    package static func waitForPort(_ port: Int, timeoutSeconds: Double = 20) throws {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while Date() < deadline {
            if let client = try? RESPClient(port: port, timeoutSeconds: 1), (try? client.call("PING")) != nil {
                return
            }
            usleep(20_000)
        }
        throw RESPClientError.connect(port)
    }

}
