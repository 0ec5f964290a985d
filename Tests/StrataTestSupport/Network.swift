internal import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Network helpers for end-to-end tests: free loopback ports and a minimal HTTP/1.1 client, so tests depend on no
/// HTTP library and talk to the server exactly as curl would.
package enum TestNetwork {
    /// `127.0.0.1:port` as a socket address.
    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return address
    }

    /// Runs a socket call that takes a `sockaddr` pointer with `address`.
    private static func withSocketAddress<T>(
        _ address: inout sockaddr_in,
        _ body: (UnsafeMutablePointer<sockaddr>, socklen_t) -> T
    ) -> T {
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
    package static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        precondition(fd >= 0)
        defer { close(fd) }
        var address = loopback(port: 0)
        let bound = withSocketAddress(&address) { pointer, length in
            var length = length
            return bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
        }
        precondition(bound)
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Opens a listening socket on `port` and keeps it until the returned descriptor is closed (to make a port busy).
    package static func occupy(port: Int) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = loopback(port: port)
        let ok = withSocketAddress(&address) { bind(fd, $0, $1) == 0 }
        precondition(ok && listen(fd, 1) == 0)
        return fd
    }

    package struct HTTPResponse: Sendable {
        package var status: Int
        package var headers: [String: String]
        package var body: String

        package init(status: Int, headers: [String: String], body: String) {
            self.status = status
            self.headers = headers
            self.body = body
        }
    }

    /// `GET path` on 127.0.0.1:port with `Connection: close`; nil when nothing answers.
    package static func get(port: Int, path: String, timeoutSeconds: Int = 5) -> HTTPResponse? {
        request(port: port, method: "GET", path: path, timeoutSeconds: timeoutSeconds)
    }

    /// One HTTP/1.1 request with `Connection: close` (and the body, if any, with its Content-Length); the response
    /// is read until the server closes or `timeoutSeconds` pass without data. Nil when nothing answers.
    package static func request(
        port: Int,
        method: String,
        path: String,
        body: [UInt8]? = nil,
        timeoutSeconds: Int = 5,
        until: (@Sendable ([UInt8]) -> Bool)? = nil
    ) -> HTTPResponse? {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        if let body { head += "Content-Length: \(body.count)\r\nContent-Type: application/json\r\n" }
        let data = exchangeReportingClose(
            port: port,
            Array((head + "\r\n").utf8) + (body ?? []),
            timeoutSeconds: timeoutSeconds,
            until: until
        )?.bytes
        guard let data else { return nil }
        return parse(data)
    }

    /// Sends raw bytes and returns everything the server sends back until it closes or goes quiet for
    /// `timeoutSeconds`; nil when the connection cannot be made.
    package static func exchange(port: Int, _ request: [UInt8], timeoutSeconds: Int = 5) -> [UInt8]? {
        exchangeReportingClose(port: port, request, timeoutSeconds: timeoutSeconds)?.bytes
    }

    /// ``exchange(port:_:timeoutSeconds:)``, also telling whether the server closed the connection (rather than
    /// going quiet until the timeout).
    /// `until`, when given, ends the read as soon as it holds for what has arrived (a stream's expected answers).
    package static func exchangeReportingClose(
        port: Int,
        _ request: [UInt8],
        timeoutSeconds: Int = 5,
        until: (@Sendable ([UInt8]) -> Bool)? = nil
    ) -> (bytes: [UInt8], closedByServer: Bool)? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = loopback(port: port)
        let connected = withSocketAddress(&address) { connect(fd, $0, $1) == 0 }
        guard connected else { return nil }
        var sent = 0
        while sent < request.count {
            let n = request[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }
            sent += n
        }
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return (data, true) }
            if n < 0 { return (data, errno != EAGAIN && errno != EWOULDBLOCK) }
            data.append(contentsOf: buffer[0..<n])
            if let until, until(data) { return (data, false) }
        }
    }

    private static func parse(_ data: [UInt8]) -> HTTPResponse? {
        let text = String(decoding: data, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { return nil }
        let head = text[..<split.lowerBound].split(separator: "\r\n")
        guard let statusLine = head.first else { return nil }
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { return nil }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            if let colon = line.firstIndex(of: ":") {
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                    in: .whitespaces
                )
            }
        }
        var body = String(text[split.upperBound...])
        if headers["transfer-encoding"]?.lowercased() == "chunked" { body = dechunk(body) }
        return HTTPResponse(status: status, headers: headers, body: body)
    }

    /// The payload of a chunked body (sizes in hex, each chunk followed by CRLF).
    private static func dechunk(_ body: String) -> String {
        var bytes = Array(body.utf8)[...]
        var out: [UInt8] = []
        while let lineEnd = bytes.firstIndex(of: UInt8(ascii: "\n")) {
            let sizeText = String(decoding: bytes[..<lineEnd], as: UTF8.self).trimmingCharacters(
                in: .whitespacesAndNewlines
            )
            guard let size = Int(sizeText.split(separator: ";").first ?? "", radix: 16), size > 0 else { break }
            let start = lineEnd + 1
            guard bytes.endIndex - start >= size else {
                out.append(contentsOf: bytes[start...])
                break
            }
            out.append(contentsOf: bytes[start..<(start + size)])
            bytes = bytes[(start + size)...].drop { $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\n") }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension TestNetwork {
    /// ``get(port:path:timeoutSeconds:)`` on its own thread, for async tests: a blocking socket call must not occupy
    /// one of the few cooperative-pool threads the server under test also needs.
    package static func fetch(port: Int, path: String, timeoutSeconds: Int = 5) async -> HTTPResponse? {
        await withCheckedContinuation { continuation in
            let thread = Thread {
                continuation.resume(returning: get(port: port, path: path, timeoutSeconds: timeoutSeconds))
            }
            thread.start()
        }
    }

    /// ``request(port:method:path:body:timeoutSeconds:)`` on its own thread, for async tests.
    package static func httpRequest(
        port: Int,
        method: String = "POST",
        path: String,
        body: String? = nil,
        timeoutSeconds: Int = 5,
        until: (@Sendable ([UInt8]) -> Bool)? = nil
    ) async -> HTTPResponse? {
        await withCheckedContinuation { continuation in
            let thread = Thread {
                continuation.resume(
                    returning: request(
                        port: port,
                        method: method,
                        path: path,
                        body: body.map { Array($0.utf8) },
                        timeoutSeconds: timeoutSeconds,
                        until: until
                    )
                )
            }
            thread.start()
        }
    }

    /// ``exchange(port:_:timeoutSeconds:)`` on its own thread, for async tests.
    package static func exchangeAsync(port: Int, _ request: [UInt8], timeoutSeconds: Int = 5) async -> [UInt8]? {
        await exchangeReportingCloseAsync(port: port, request, timeoutSeconds: timeoutSeconds)?.bytes
    }

    /// ``exchangeReportingClose(port:_:timeoutSeconds:)`` on its own thread, for async tests.
    package static func exchangeReportingCloseAsync(
        port: Int,
        _ request: [UInt8],
        timeoutSeconds: Int = 5
    ) async -> (bytes: [UInt8], closedByServer: Bool)? {
        await withCheckedContinuation { continuation in
            let thread = Thread {
                continuation.resume(
                    returning: exchangeReportingClose(port: port, request, timeoutSeconds: timeoutSeconds)
                )
            }
            thread.start()
        }
    }
}
