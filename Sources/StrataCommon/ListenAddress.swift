/// A `host:port` a listener binds to. IPv6 hosts are written in brackets (`[::1]:2379`).
package struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    package var host: String
    package var port: Int

    package init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`, `[v6]:port`, or `:port` (meaning 127.0.0.1). Throws a message fit for a config error.
    package init(parsing text: String) throws(ListenAddressError) {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"),
                text[text.index(after: close)...].hasPrefix(":")
            else { throw ListenAddressError(text: text, reason: "expected [ipv6]:port") }
            hostPart = text[text.index(after: text.startIndex)..<close]
            portPart = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw ListenAddressError(text: text, reason: "expected host:port")
            }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            if hostPart.contains(":") {
                throw ListenAddressError(text: text, reason: "write IPv6 hosts in brackets, like [::1]:2379")
            }
        }
        guard let port = Int(portPart), (0...65535).contains(port) else {
            throw ListenAddressError(text: text, reason: "port must be a number from 0 to 65535")
        }
        let host = hostPart.isEmpty ? "127.0.0.1" : String(hostPart)
        guard host.allSatisfy({ $0.isLetter || $0.isNumber || ".-_:".contains($0) }) else {
            throw ListenAddressError(text: text, reason: "invalid host '\(host)'")
        }
        self.init(host: host, port: port)
    }

    package var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// True for 127.0.0.0/8, ::1 and localhost: addresses only this machine can reach.
    package var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

package struct ListenAddressError: Error, Sendable, CustomStringConvertible {
    package let text: String
    package let reason: String
    package var description: String { "invalid listen address '\(text)': \(reason)" }
}
