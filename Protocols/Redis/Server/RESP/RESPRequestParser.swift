package import NIOCore

/// Splits a connection's input into commands as Redis 7.0's `processInputBuffer` does: multibulk (`*`) or inline
/// (anything else) per command, Redis's limits and its exact protocol errors. Incremental: a large bulk is read once,
/// as it arrives, and nothing is reserved for a declared length before its bytes are there.
package struct RESPRequestParser: Sendable {
    package enum Outcome: Equatable {
        case command([[UInt8]])
        /// The input ends inside a command.
        case needMore
        /// A line that holds no command (`*0`, an empty inline line): nothing to reply.
        case nothing
        /// Reply `-ERR Protocol error: <message>` and close.
        case protocolError(String)
    }

    /// Longest inline command, and longest `*`/`$` line (Redis's PROTO_INLINE_MAX_SIZE).
    package static let maxInlineSize = 64 * 1024
    /// `proto-max-bulk-len`.
    package var maxBulkLength: Int
    /// Until AUTH succeeds, counts and lengths are capped (10 elements, 16 KiB).
    package var authenticated: Bool

    private var remaining = 0
    private var arguments: [[UInt8]] = []
    private var bulkLength: Int? = nil

    package init(maxBulkLength: Int = 512 * 1024 * 1024, authenticated: Bool = true) {
        self.maxBulkLength = maxBulkLength
        self.authenticated = authenticated
    }

    /// Whether the parser is inside a multibulk command (its next bytes continue it).
    package var isInsideCommand: Bool { remaining > 0 }

    package mutating func next(_ buffer: inout ByteBuffer) -> Outcome {
        if remaining == 0 {
            guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return .needMore }
            if first != UInt8(ascii: "*") { return inline(&buffer) }
            guard let line = readLine(&buffer, tooBig: "too big mbulk count string") else { return .needMore }
            guard case .success(let bytes) = line else {
                if case .failure(let error) = line { return .protocolError(error.message) }
                return .needMore
            }
            guard let count = Self.parseInteger(bytes.dropFirst()), count <= Int(Int32.max) else {
                return .protocolError("invalid multibulk length")
            }
            if !authenticated && count > 10 { return .protocolError("unauthenticated multibulk length") }
            if count <= 0 { return .nothing }
            remaining = count
            arguments = []
            arguments.reserveCapacity(min(count, 1024))
        }
        while remaining > 0 {
            if bulkLength == nil {
                guard let line = readLine(&buffer, tooBig: "too big bulk count string") else { return .needMore }
                guard case .success(let bytes) = line else {
                    if case .failure(let error) = line { return .protocolError(error.message) }
                    return .needMore
                }
                guard let first = bytes.first, first == UInt8(ascii: "$") else {
                    let byte = bytes.first ?? 0
                    return .protocolError("expected '$', got '\(Character(Unicode.Scalar(byte)))'")
                }
                guard let length = Self.parseInteger(bytes.dropFirst()), length >= 0, length <= maxBulkLength else {
                    return .protocolError("invalid bulk length")
                }
                if !authenticated && length > 16384 { return .protocolError("unauthenticated bulk length") }
                bulkLength = length
            }
            let length = bulkLength!
            // The two bytes after the payload are skipped, not checked (as Redis does).
            guard buffer.readableBytes >= length + 2 else { return .needMore }
            arguments.append(buffer.readBytes(length: length)!)
            buffer.moveReaderIndex(forwardBy: 2)
            bulkLength = nil
            remaining -= 1
        }
        let command = arguments
        arguments = []
        return .command(command)
    }

    private struct LineError: Error { let message: String }

    /// The bytes of the next `\r\n`-terminated line (without it), consumed; nil when it has not arrived yet.
    private func readLine(_ buffer: inout ByteBuffer, tooBig: String) -> Result<[UInt8], LineError>? {
        let view = buffer.readableBytesView
        guard let cr = view.firstIndex(of: UInt8(ascii: "\r")) else {
            if view.count > Self.maxInlineSize { return .failure(LineError(message: tooBig)) }
            return nil
        }
        // The line needs its "\n" too.
        guard cr + 1 < view.endIndex else { return nil }
        let line = Array(view[view.startIndex..<cr])
        buffer.moveReaderIndex(to: cr + 2)
        return .success(line)
    }

    private func inline(_ buffer: inout ByteBuffer) -> Outcome {
        let view = buffer.readableBytesView
        guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if view.count > Self.maxInlineSize { return .protocolError("too big inline request") }
            return .needMore
        }
        var end = newline
        if end > view.startIndex && view[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        let line = Array(view[view.startIndex..<end])
        buffer.moveReaderIndex(to: newline + 1)
        guard let arguments = Self.splitArguments(line) else {
            return .protocolError("unbalanced quotes in request")
        }
        return arguments.isEmpty ? .nothing : .command(arguments)
    }

    /// Redis's `string2ll` for protocol lengths (see ``RedisNumber/parseInteger(_:)``).
    static func parseInteger<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Int? {
        RedisNumber.parseInteger(bytes).map { Int($0) }
    }

    /// Redis's `sdssplitargs`: words separated by white space; `"…"` with `\n \r \t \b \a \xHH` and other escaped
    /// characters; `'…'` with only `\'`; a closing quote must be followed by white space or the end. nil for
    /// unbalanced quotes. A NUL byte ends the line, as in C.
    package static func splitArguments(_ line: [UInt8]) -> [[UInt8]]? {
        func at(_ index: Int) -> UInt8 { index < line.count ? line[index] : 0 }
        func isSpace(_ byte: UInt8) -> Bool { byte == 32 || (byte >= 9 && byte <= 13) }
        func hex(_ byte: UInt8) -> UInt8? {
            switch byte {
            case 48...57: byte - 48
            case 65...70: byte - 55
            case 97...102: byte - 87
            default: nil
            }
        }
        var arguments: [[UInt8]] = []
        var p = 0
        while true {
            while at(p) != 0 && isSpace(at(p)) { p += 1 }
            if at(p) == 0 { return arguments }
            var current: [UInt8] = []
            var inDouble = false
            var inSingle = false
            var done = false
            while !done {
                let c = at(p)
                if inDouble {
                    if c == UInt8(ascii: "\\") && at(p + 1) == UInt8(ascii: "x"), let high = hex(at(p + 2)),
                        let low = hex(at(p + 3))
                    {
                        current.append(high * 16 + low)
                        p += 3
                    } else if c == UInt8(ascii: "\\") && at(p + 1) != 0 {
                        p += 1
                        switch at(p) {
                        case UInt8(ascii: "n"): current.append(10)
                        case UInt8(ascii: "r"): current.append(13)
                        case UInt8(ascii: "t"): current.append(9)
                        case UInt8(ascii: "b"): current.append(8)
                        case UInt8(ascii: "a"): current.append(7)
                        default: current.append(at(p))
                        }
                    } else if c == UInt8(ascii: "\"") {
                        if at(p + 1) != 0 && !isSpace(at(p + 1)) { return nil }
                        done = true
                    } else if c == 0 {
                        return nil
                    } else {
                        current.append(c)
                    }
                } else if inSingle {
                    if c == UInt8(ascii: "\\") && at(p + 1) == UInt8(ascii: "'") {
                        p += 1
                        current.append(UInt8(ascii: "'"))
                    } else if c == UInt8(ascii: "'") {
                        if at(p + 1) != 0 && !isSpace(at(p + 1)) { return nil }
                        done = true
                    } else if c == 0 {
                        return nil
                    } else {
                        current.append(c)
                    }
                } else {
                    switch c {
                    case 32, 10, 13, 9, 0: done = true
                    case UInt8(ascii: "\""): inDouble = true
                    case UInt8(ascii: "'"): inSingle = true
                    default: current.append(c)
                    }
                }
                if at(p) != 0 { p += 1 }
            }
            arguments.append(current)
        }
    }
}
