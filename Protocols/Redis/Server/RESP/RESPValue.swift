internal import Foundation
package import NIOCore

/// A reply, written for the connection's protocol: RESP2 folds RESP3's types into its own (a map into a flat
/// array, a double into a bulk string, a null into `$-1` or `*-1`), as Redis 7.0 does.
package indirect enum RESPValue: Sendable, Hashable {
    case simple(String)
    /// The text after `-` (code first: `ERR …`, `WRONGTYPE …`).
    case error(String)
    case integer(Int64)
    case bulk([UInt8])
    /// A missing single value: `$-1` / `_`.
    case null
    /// A missing multi-value result: `*-1` / `_`.
    case nullArray
    case array([RESPValue])
    /// Keys and values alternating: RESP3 `%`, RESP2 a flat array.
    case map([RESPValue])
    /// RESP3 `~`, RESP2 an array.
    case set([RESPValue])
    /// RESP3 `,`, RESP2 a bulk string (`%.17g`; `inf`, `-inf`).
    case double(Double)
    /// A double already formatted (GEOPOS's `%.17Lf` human form): RESP3 `,`, RESP2 a bulk string.
    case formattedDouble(String)
    /// RESP3 `#t`/`#f`, RESP2 `:1`/`:0`.
    case bool(Bool)
    /// RESP3 `=` with `txt:`, RESP2 a bulk string.
    case verbatim(String)
    /// RESP3 `>`, RESP2 an array (pub/sub messages).
    case push([RESPValue])
    /// RESP3 `(`, RESP2 a bulk string.
    case bigNumber(String)
    /// Several replies one after another (SUBSCRIBE answers once per channel); not a RESP type.
    case sequence([RESPValue])

    package static let ok = RESPValue.simple("OK")
    package static let queued = RESPValue.simple("QUEUED")
    package static func bulk(_ text: String) -> RESPValue { .bulk(Array(text.utf8)) }
    package static func integer(_ value: Int) -> RESPValue { .integer(Int64(value)) }
    /// An array of bulk strings.
    package static func bulks(_ items: [[UInt8]]) -> RESPValue { .array(items.map { .bulk($0) }) }

    package var isError: Bool {
        if case .error = self { return true }
        return false
    }

    /// Redis's `%.17g` (ZSCORE and friends in 7.0), with `inf`/`-inf`.
    package static func format(_ value: Double) -> String {
        if value.isInfinite { return value > 0 ? "inf" : "-inf" }
        return String(format: "%.17g", value)
    }

    /// A push frame, or a sequence made only of them.
    var isPush: Bool {
        switch self {
        case .push: true
        case .sequence(let values): !values.isEmpty && values.allSatisfy(\.isPush)
        default: false
        }
    }
}

extension ByteBuffer {
    @inline(__always)
    mutating func writeDecimal(_ value: Int64) {
        if value >= 0 && value < 10 {
            writeInteger(UInt8(48 + value))
            return
        }
        var digits: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)  // 32 bytes of scratch
        var magnitude = value.magnitude
        withUnsafeMutableBytes(of: &digits) { scratch in
            var index = scratch.count
            repeat {
                index -= 1
                scratch[index] = UInt8(48 + magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            if value < 0 {
                index -= 1
                scratch[index] = UInt8(ascii: "-")
            }
            writeBytes(UnsafeRawBufferPointer(rebasing: scratch[index...]))
        }
    }

    @inline(__always)
    mutating func writeCRLF() { writeInteger(UInt16(0x0D0A)) }

    @inline(__always)
    mutating func writeHeader(_ type: UInt8, _ count: Int) {
        writeInteger(type)
        writeDecimal(Int64(count))
        writeCRLF()
    }

    @inline(__always)
    mutating func writeBulk<Bytes: Collection<UInt8>>(_ bytes: Bytes) {
        writeHeader(UInt8(ascii: "$"), bytes.count)
        writeBytes(bytes)
        writeCRLF()
    }

    /// A double's text: RESP3 `,`, RESP2 a bulk string.
    mutating func writeDouble(_ text: String, version: Int) {
        if version == 3 {
            writeInteger(UInt8(ascii: ","))
            writeString(text)
            writeCRLF()
        } else {
            writeBulk(text.utf8)
        }
    }

    /// Writes `value` as RESP `version` (2 or 3) speaks it.
    package mutating func writeRESP(_ value: RESPValue, version: Int) {
        switch value {
        case .simple(let text):
            writeInteger(UInt8(ascii: "+"))
            writeString(text)
            writeCRLF()
        case .error(let text):
            writeInteger(UInt8(ascii: "-"))
            writeString(text)
            writeCRLF()
        case .integer(let number):
            writeInteger(UInt8(ascii: ":"))
            writeDecimal(number)
            writeCRLF()
        case .bulk(let bytes):
            writeBulk(bytes)
        case .null:
            if version == 3 { writeStaticString("_\r\n") } else { writeStaticString("$-1\r\n") }
        case .nullArray:
            if version == 3 { writeStaticString("_\r\n") } else { writeStaticString("*-1\r\n") }
        case .array(let items):
            writeHeader(UInt8(ascii: "*"), items.count)
            for item in items { writeRESP(item, version: version) }
        case .map(let items):
            if version == 3 {
                writeHeader(UInt8(ascii: "%"), items.count / 2)
            } else {
                writeHeader(UInt8(ascii: "*"), items.count)
            }
            for item in items { writeRESP(item, version: version) }
        case .set(let items):
            writeHeader(UInt8(ascii: version == 3 ? "~" : "*"), items.count)
            for item in items { writeRESP(item, version: version) }
        case .double(let number):
            writeDouble(RESPValue.format(number), version: version)
        case .formattedDouble(let text):
            writeDouble(text, version: version)
        case .bool(let flag):
            if version == 3 {
                writeStaticString(flag ? "#t\r\n" : "#f\r\n")
            } else {
                writeStaticString(flag ? ":1\r\n" : ":0\r\n")
            }
        case .verbatim(let text):
            if version == 3 {
                writeHeader(UInt8(ascii: "="), text.utf8.count + 4)
                writeStaticString("txt:")
                writeString(text)
                writeCRLF()
            } else {
                writeBulk(text.utf8)
            }
        case .push(let items):
            writeHeader(UInt8(ascii: version == 3 ? ">" : "*"), items.count)
            for item in items { writeRESP(item, version: version) }
        case .sequence(let items):
            for item in items { writeRESP(item, version: version) }
        case .bigNumber(let digits):
            if version == 3 {
                writeInteger(UInt8(ascii: "("))
                writeString(digits)
                writeCRLF()
            } else {
                writeBulk(digits.utf8)
            }
        }
    }
}
