// A deliberately cheap gRPC-over-HTTP/2 load generator for unary calls: blocking sockets, one thread per
// connection, every logical client's next request written in the same syscall as its neighbours', headers encoded
// once per path and response headers skipped (never decoded). On a 2-core machine the load generator shares the CPU
// with the server under test, so a client that costs as much per call as the server (grpc-swift's does) caps every
// server at the same rate; this one costs a few microseconds per call.
//
// It speaks just enough HTTP/2 for unary calls against etcd and Strata: the preface and SETTINGS, a large receive
// window, SETTINGS/PING acknowledgements, send-window accounting from WINDOW_UPDATE, RST_STREAM and GOAWAY as errors.
import Foundation
import Synchronization

/// One unary call a logical client makes: the method path and the serialized request.
struct RawCall: Sendable {
    var path: String
    var message: [UInt8]
}

enum RawClientError: Error, CustomStringConvertible {
    case connect(String)
    case protocolError(String)
    case goAway(UInt32)

    var description: String {
        switch self {
        case .connect(let what): "connect: \(what)"
        case .protocolError(let what): "HTTP/2: \(what)"
        case .goAway(let code): "GOAWAY error code \(code)"
        }
    }
}

/// One HTTP/2 connection serving a set of logical clients, each with at most one call in flight.
final class RawConnection {
    private let socket: Int32
    private let authority: String
    private var nextStream: UInt32 = 1
    private var sendWindow = 65_535
    private var streamWindow = 65_535
    private var consumed = 0
    private var inbound: [UInt8] = []
    private var outbound: [UInt8] = []
    private var headerBlocks: [String: [UInt8]] = [:]

    init(host: String, port: Int) throws {
        let fd = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        socket = fd
        guard fd >= 0 else { throw RawClientError.connect("socket") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        inet_pton(AF_INET, host, &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw RawClientError.connect("\(host):\(port): errno \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        authority = "\(host):\(port)"
        outbound.append(contentsOf: Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8))
        // SETTINGS: no push, and a stream window large enough that responses never wait for us.
        var settings: [UInt8] = []
        for (id, value) in [(UInt16(2), UInt32(0)), (4, UInt32(Int32.max))] {
            settings.append(contentsOf: [UInt8(id >> 8), UInt8(id & 0xFF)])
            settings.append(contentsOf: bigEndian(value))
        }
        frame(type: 4, flags: 0, stream: 0, payload: settings)
        frame(type: 8, flags: 0, stream: 0, payload: bigEndian(UInt32(Int32.max) - 65_535))
        try flush()
    }

    deinit { close(socket) }

    private func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    private func frame(type: UInt8, flags: UInt8, stream: UInt32, payload: some Collection<UInt8>) {
        let length = payload.count
        outbound.append(contentsOf: [UInt8(length >> 16), UInt8((length >> 8) & 0xFF), UInt8(length & 0xFF)])
        outbound.append(contentsOf: [type, flags])
        outbound.append(contentsOf: bigEndian(stream))
        outbound.append(contentsOf: payload)
    }

    /// HPACK without the dynamic table: indexed `:method POST` and `:scheme http`, literals for the rest.
    private func headerBlock(_ path: String) -> [UInt8] {
        if let block = headerBlocks[path] { return block }
        func literal(_ bytes: [UInt8]) -> [UInt8] { [UInt8(bytes.count)] + bytes }
        var block: [UInt8] = [0x83, 0x86]
        block += [0x04] + literal(Array(path.utf8))
        block += [0x01] + literal(Array(authority.utf8))
        block += [0x0F, 0x10] + literal(Array("application/grpc".utf8))
        block += [0x00] + literal(Array("te".utf8)) + literal(Array("trailers".utf8))
        headerBlocks[path] = block
        return block
    }

    /// Queues a call; returns its stream id.
    func send(_ call: RawCall) -> UInt32 {
        let stream = nextStream
        nextStream += 2
        frame(type: 1, flags: 0x4, stream: stream, payload: headerBlock(call.path))
        var body: [UInt8] = [0]
        body += bigEndian(UInt32(call.message.count))
        body += call.message
        frame(type: 0, flags: 0x1, stream: stream, payload: body)
        sendWindow -= body.count
        return stream
    }

    /// Whether the peer's windows allow another request of about this size.
    func canSend(_ bytes: Int) -> Bool { sendWindow >= bytes + 5 && streamWindow >= bytes + 5 }

    func flush() throws {
        var offset = 0
        while offset < outbound.count {
            let written = outbound[offset...].withUnsafeBytes { write(socket, $0.baseAddress, $0.count) }
            guard written > 0 else { throw RawClientError.connect("write: errno \(errno)") }
            offset += written
        }
        outbound.removeAll(keepingCapacity: true)
    }

    enum Event {
        /// A call ended: its response message, or nil if the server answered without one (an error status).
        case finished(stream: UInt32, message: [UInt8]?)
        case reset(stream: UInt32)
    }

    private var messages: [UInt32: [UInt8]] = [:]

    /// Blocks until at least one call ends; returns every event the bytes read so far complete.
    func receive() throws -> [Event] {
        var events: [Event] = []
        while events.isEmpty {
            var chunk = [UInt8](repeating: 0, count: 256 * 1024)
            let count = chunk.withUnsafeMutableBytes { read(socket, $0.baseAddress, $0.count) }
            guard count > 0 else { throw RawClientError.connect("connection closed by the server") }
            inbound.append(contentsOf: chunk[0..<count])
            var offset = 0
            while inbound.count - offset >= 9 {
                let length = Int(inbound[offset]) << 16 | Int(inbound[offset + 1]) << 8 | Int(inbound[offset + 2])
                guard inbound.count - offset >= 9 + length else { break }
                let type = inbound[offset + 3]
                let flags = inbound[offset + 4]
                let stream =
                    (UInt32(inbound[offset + 5]) << 24 | UInt32(inbound[offset + 6]) << 16
                        | UInt32(inbound[offset + 7]) << 8 | UInt32(inbound[offset + 8])) & 0x7FFF_FFFF
                let payload = inbound[(offset + 9)..<(offset + 9 + length)]
                offset += 9 + length
                try handle(type: type, flags: flags, stream: stream, payload: payload, events: &events)
            }
            inbound.removeFirst(offset)
        }
        if consumed > 1 << 30 {
            frame(type: 8, flags: 0, stream: 0, payload: bigEndian(UInt32(consumed)))
            consumed = 0
        }
        if !outbound.isEmpty { try flush() }
        return events
    }

    private func handle(type: UInt8, flags: UInt8, stream: UInt32, payload: ArraySlice<UInt8>, events: inout [Event])
        throws
    {
        switch type {
        case 0:  // DATA
            consumed += payload.count
            var data = payload
            if flags & 0x8 != 0, let pad = data.first { data = data.dropFirst().dropLast(Int(pad)) }
            messages[stream, default: []].append(contentsOf: data)
            if flags & 0x1 != 0 { events.append(.finished(stream: stream, message: unframe(stream))) }
        case 1:  // HEADERS: the response headers or the trailers; only END_STREAM matters here.
            if flags & 0x1 != 0 { events.append(.finished(stream: stream, message: unframe(stream))) }
        case 3:  // RST_STREAM
            messages[stream] = nil
            events.append(.reset(stream: stream))
        case 4:  // SETTINGS
            guard flags & 0x1 == 0 else { return }
            var index = payload.startIndex
            while index + 6 <= payload.endIndex {
                let id = UInt16(payload[index]) << 8 | UInt16(payload[index + 1])
                let value =
                    Int(payload[index + 2]) << 24 | Int(payload[index + 3]) << 16 | Int(payload[index + 4]) << 8
                    | Int(payload[index + 5])
                if id == 4 { streamWindow = value }
                index += 6
            }
            frame(type: 4, flags: 0x1, stream: 0, payload: [UInt8]())
        case 6:  // PING
            if flags & 0x1 == 0 { frame(type: 6, flags: 0x1, stream: 0, payload: payload) }
        case 7:  // GOAWAY
            let code = payload.count >= 8 ? UInt32(payload[payload.startIndex + 7]) : 0
            throw RawClientError.goAway(code)
        case 8:  // WINDOW_UPDATE
            guard payload.count == 4 else { return }
            let increment =
                Int(payload[payload.startIndex] & 0x7F) << 24 | Int(payload[payload.startIndex + 1]) << 16
                | Int(payload[payload.startIndex + 2]) << 8 | Int(payload[payload.startIndex + 3])
            if stream == 0 { sendWindow += increment }
        default:
            break
        }
    }

    /// The one gRPC message a unary response carries, without its 5-byte prefix.
    private func unframe(_ stream: UInt32) -> [UInt8]? {
        guard let bytes = messages.removeValue(forKey: stream), bytes.count >= 5 else { return nil }
        return Array(bytes[5...])
    }
}

/// Runs `clients` closed-loop clients over `connections` raw connections (one thread each). `next` builds client
/// c's i-th call; `check` validates its response (throwing counts as an error and the call is retried, up to 5
/// times). Returns the wall time in seconds.
func runRaw(
    host: String,
    port: Int,
    clients: Int,
    connections: Int,
    perClient: Int,
    recorder: Recorder,
    next: @escaping @Sendable (_ client: Int, _ index: Int) -> RawCall,
    check: @escaping @Sendable (_ client: Int, _ index: Int, _ response: [UInt8]) throws -> Void
) throws -> Double {
    let connectionCount = min(connections, clients)
    let failure = Mutex<(any Error)?>(nil)
    let done = DispatchGroup()
    let start = now()
    for connectionIndex in 0..<connectionCount {
        done.enter()
        let thread = Thread {
            defer { done.leave() }
            do {
                let connection = try RawConnection(host: host, port: port)
                let mine = Array(stride(from: connectionIndex, to: clients, by: connectionCount))
                var index = [Int](repeating: 0, count: clients)
                var tries = [Int](repeating: 0, count: clients)
                var started = [UInt64](repeating: 0, count: clients)
                var latencies: [UInt64] = []
                latencies.reserveCapacity(mine.count * perClient)
                var inFlight: [UInt32: Int] = [:]
                var waiting: [Int] = mine
                func pump() throws {
                    var stillWaiting: [Int] = []
                    for client in waiting {
                        let call = next(client, index[client])
                        guard connection.canSend(call.message.count) else {
                            stillWaiting.append(client)
                            continue
                        }
                        if tries[client] == 0 { started[client] = now() }
                        inFlight[connection.send(call)] = client
                    }
                    waiting = stillWaiting
                    try connection.flush()
                }
                try pump()
                while !inFlight.isEmpty || !waiting.isEmpty {
                    for event in try connection.receive() {
                        let stream: UInt32
                        var response: [UInt8]?
                        switch event {
                        case .finished(let id, let message):
                            stream = id
                            response = message
                        case .reset(let id):
                            stream = id
                        }
                        guard let client = inFlight.removeValue(forKey: stream) else { continue }
                        do {
                            guard let response else {
                                throw RawClientError.protocolError("call ended without a response message")
                            }
                            try check(client, index[client], response)
                            latencies.append(now() - started[client])
                            tries[client] = 0
                            index[client] += 1
                        } catch {
                            recorder.fail(error)
                            tries[client] += 1
                            if tries[client] > 5 { throw error }
                        }
                        if index[client] < perClient { waiting.append(client) }
                    }
                    try pump()
                }
                recorder.record(latencies)
            } catch {
                failure.withLock { $0 = $0 ?? error }
            }
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
    done.wait()
    if let error = failure.withLock({ $0 }) { throw error }
    return Double(now() - start) / 1e9
}
