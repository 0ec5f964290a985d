/// DUMP and RESTORE payloads in Redis's own format: one RDB-encoded value, then the RDB version (2 bytes, little
/// endian) and the CRC-64 (Jones, reflected) of everything before it (8 bytes, little endian). Strata writes the
/// plain encodings (raw strings, and list/set/sorted-set/hash as counted sequences; streams as Redis 7.0 writes them),
/// which Redis 7.0 restores; it reads those, the compact encodings Redis 7.0 writes (integer and LZF strings,
/// intsets, listpacks, quicklists) and the older ones it still reads (ziplists, zipmaps, the first stream encoding).
/// Every length is checked against the bytes left, so a corrupt payload is an error, never a crash.
package enum RedisDump {
    package enum Value: Equatable, Sendable {
        case string([UInt8])
        case list([[UInt8]])
        case set([[UInt8]])
        case sortedSet([(member: [UInt8], score: Double)])
        case hash([(field: [UInt8], value: [UInt8])])
        case stream(Stream)

        package static func == (lhs: Value, rhs: Value) -> Bool {
            switch (lhs, rhs) {
            case (.string(let a), .string(let b)): a == b
            case (.list(let a), .list(let b)): a == b
            case (.set(let a), .set(let b)): a == b
            case (.sortedSet(let a), .sortedSet(let b)):
                a.count == b.count && zip(a, b).allSatisfy { $0.member == $1.member && $0.score == $1.score }
            case (.hash(let a), .hash(let b)):
                a.count == b.count && zip(a, b).allSatisfy { $0.field == $1.field && $0.value == $1.value }
            case (.stream(let a), .stream(let b)): a == b
            default: false
            }
        }
    }

    /// RESTORE's failures, in Redis's words.
    package enum Failure: Error, Equatable {
        /// "DUMP payload version or checksum are wrong"
        case versionOrChecksum
        /// "Bad data format"
        case badFormat
        /// FUNCTION RESTORE: "given type is not a function"
        case notAFunction
    }

    static let version: UInt16 = 10

    // MARK: CRC-64

    static let crcTable: [UInt64] = (0..<256).map { index in
        var crc = UInt64(index)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x95AC_9329_AC4B_C9B5 : crc >> 1 }
        return crc
    }

    package static func crc64<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> UInt64 {
        var crc: UInt64 = 0
        for byte in bytes { crc = crcTable[Int((crc ^ UInt64(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc
    }

    // MARK: Writing

    static func appendLength(_ length: Int, to out: inout [UInt8]) {
        if length < 64 {
            out.append(UInt8(length))
        } else if length < 16384 {
            out += [UInt8(0x40 | (length >> 8)), UInt8(length & 0xFF)]
        } else if length <= Int(UInt32.max) {
            out.append(0x80)
            for shift in stride(from: 24, through: 0, by: -8) { out.append(UInt8((length >> shift) & 0xFF)) }
        } else {
            out.append(0x81)
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8((length >> shift) & 0xFF)) }
        }
    }

    static func appendString(_ bytes: [UInt8], to out: inout [UInt8]) {
        appendLength(bytes.count, to: &out)
        out += bytes
    }

    /// The DUMP payload of a value.
    package static func dump(_ value: Value) -> [UInt8] {
        var out: [UInt8] = []
        switch value {
        case .string(let bytes):
            out.append(0)
            appendString(bytes, to: &out)
        case .list(let elements):
            out.append(1)
            appendLength(elements.count, to: &out)
            for element in elements { appendString(element, to: &out) }
        case .set(let members):
            out.append(2)
            appendLength(members.count, to: &out)
            for member in members { appendString(member, to: &out) }
        case .sortedSet(let members):
            out.append(5)
            appendLength(members.count, to: &out)
            for (member, score) in members {
                appendString(member, to: &out)
                let bits = score.bitPattern
                for shift in stride(from: 0, through: 56, by: 8) { out.append(UInt8((bits >> UInt64(shift)) & 0xFF)) }
            }
        case .hash(let fields):
            out.append(4)
            appendLength(fields.count, to: &out)
            for (field, value) in fields {
                appendString(field, to: &out)
                appendString(value, to: &out)
            }
        case .stream(let stream):
            appendStream(stream, to: &out)
        }
        out += [UInt8(version & 0xFF), UInt8(version >> 8)]
        let crc = crc64(out)
        for shift in stride(from: 0, through: 56, by: 8) { out.append(UInt8((crc >> UInt64(shift)) & 0xFF)) }
        return out
    }

    /// FUNCTION DUMP's payload: each library's code after the FUNCTION2 opcode, then the version and checksum.
    package static func dumpFunctions(_ codes: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = []
        for code in codes {
            out.append(functionOpcode)
            appendString(code, to: &out)
        }
        out += [UInt8(version & 0xFF), UInt8(version >> 8)]
        let crc = crc64(out)
        for shift in stride(from: 0, through: 56, by: 8) { out.append(UInt8((crc >> UInt64(shift)) & 0xFF)) }
        return out
    }

    /// RDB's `RDB_OPCODE_FUNCTION2`.
    static let functionOpcode: UInt8 = 245

    /// The library codes of a FUNCTION DUMP payload.
    package static func restoreFunctions(_ payload: [UInt8]) throws(Failure) -> [[UInt8]] {
        var reader = Reader(data: try body(of: payload))
        var codes: [[UInt8]] = []
        while !reader.data.isEmpty {
            guard try reader.byte() == functionOpcode else { throw .notAFunction }
            codes.append(try reader.string())
        }
        return codes
    }

    // MARK: Reading

    /// A payload's RDB bytes, once its version (no newer than ours) and CRC-64 footer check out.
    static func body(of payload: [UInt8]) throws(Failure) -> ArraySlice<UInt8> {
        guard payload.count >= 10 else { throw .versionOrChecksum }
        let footer = payload.count - 10
        let payloadVersion = UInt16(payload[footer]) | UInt16(payload[footer + 1]) << 8
        guard payloadVersion <= version else { throw .versionOrChecksum }
        var stored: UInt64 = 0
        for index in 0..<8 { stored |= UInt64(payload[footer + 2 + index]) << UInt64(8 * index) }
        guard crc64(payload[0..<(footer + 2)]) == stored else { throw .versionOrChecksum }
        return payload[0..<footer]
    }

    /// The value of a DUMP payload (version and checksum checked first).
    package static func restore(_ payload: [UInt8]) throws(Failure) -> Value {
        var reader = Reader(data: try body(of: payload))
        do {
            let value = try reader.value()
            guard reader.data.isEmpty else { throw Failure.badFormat }
            return value
        } catch {
            throw .badFormat
        }
    }

    struct Reader {
        var data: ArraySlice<UInt8>

        mutating func byte() throws(Failure) -> UInt8 {
            guard let first = data.first else { throw .badFormat }
            data = data.dropFirst()
            return first
        }

        mutating func take(_ count: Int) throws(Failure) -> ArraySlice<UInt8> {
            guard count >= 0, data.count >= count else { throw .badFormat }
            defer { data = data.dropFirst(count) }
            return data.prefix(count)
        }

        /// A length, or (`encoded`) a special string encoding's number.
        mutating func length() throws(Failure) -> (value: Int, encoded: Bool) {
            let first = try byte()
            switch first >> 6 {
            case 0: return (Int(first & 0x3F), false)
            case 1: return (Int(first & 0x3F) << 8 | Int(try byte()), false)
            case 3: return (Int(first & 0x3F), true)
            default:
                let width = first == 0x80 ? 4 : first == 0x81 ? 8 : 0
                guard width > 0 else { throw .badFormat }
                var value: UInt64 = 0
                for byte in try take(width) { value = value << 8 | UInt64(byte) }
                guard value <= UInt64(Int.max) else { throw .badFormat }
                return (Int(value), false)
            }
        }

        mutating func count() throws(Failure) -> Int {
            let (value, encoded) = try length()
            // Each item takes at least a byte: a larger count is corruption.
            guard !encoded, value <= data.count else { throw .badFormat }
            return value
        }

        mutating func string() throws(Failure) -> [UInt8] {
            let (value, encoded) = try length()
            guard encoded else { return Array(try take(value)) }
            switch value {
            case 0: return Array(String(Int8(bitPattern: try byte())).utf8)
            case 1:
                let bytes = try take(2)
                return Array(String(Int16(bitPattern: UInt16(bytes.first!) | UInt16(bytes.last!) << 8)).utf8)
            case 2:
                var raw: UInt32 = 0
                for (index, byte) in try take(4).enumerated() { raw |= UInt32(byte) << UInt32(8 * index) }
                return Array(String(Int32(bitPattern: raw)).utf8)
            case 3:
                let compressed = try length()
                let original = try length()
                guard !compressed.encoded, !original.encoded, original.value <= 1 << 30 else { throw .badFormat }
                return try RedisDump.lzfDecompress(Array(try take(compressed.value)), length: original.value)
            default:
                throw .badFormat
            }
        }

        mutating func value() throws(Failure) -> Value {
            let type = try byte()
            switch type {
            case 0:
                return .string(try string())
            case 1:
                let count = try count()
                guard count > 0 else { throw .badFormat }
                return .list(try (0..<count).map { _ throws(Failure) in try string() })
            case 2:
                let count = try count()
                guard count > 0 else { throw .badFormat }
                return .set(try (0..<count).map { _ throws(Failure) in try string() })
            case 3, 5:
                let count = try count()
                guard count > 0 else { throw .badFormat }
                var members: [(member: [UInt8], score: Double)] = []
                for _ in 0..<count {
                    let member = try string()
                    let score: Double
                    if type == 5 {
                        var bits: UInt64 = 0
                        for (index, byte) in try take(8).enumerated() { bits |= UInt64(byte) << UInt64(8 * index) }
                        score = Double(bitPattern: bits)
                    } else {
                        let length = try byte()
                        switch length {
                        case 253: score = .nan
                        case 254: score = .infinity
                        case 255: score = -.infinity
                        default:
                            guard let parsed = Double(String(decoding: try take(Int(length)), as: UTF8.self)) else {
                                throw .badFormat
                            }
                            score = parsed
                        }
                    }
                    guard !score.isNaN else { throw .badFormat }
                    members.append((member, score))
                }
                return .sortedSet(members)
            case 4:
                let count = try count()
                guard count > 0 else { throw .badFormat }
                var fields: [(field: [UInt8], value: [UInt8])] = []
                for _ in 0..<count { fields.append((try string(), try string())) }
                return .hash(fields)
            case 11:
                let members = try RedisDump.intset(try string())
                guard !members.isEmpty else { throw .badFormat }
                return .set(members)
            case 16, 17, 12, 13:
                let blob = try string()
                let entries = type >= 16 ? try RedisDump.listpack(blob) : try RedisDump.ziplist(blob)
                let pairs = try RedisDump.pairs(entries)
                if type == 16 || type == 13 { return .hash(pairs.map { (field: $0.0, value: $0.1) }) }
                return .sortedSet(try RedisDump.scored(pairs))
            case 9:
                let pairs = try RedisDump.zipmap(try string())
                guard !pairs.isEmpty else { throw .badFormat }
                return .hash(pairs)
            case 10:
                let elements = try RedisDump.ziplist(try string())
                guard !elements.isEmpty else { throw .badFormat }
                return .list(elements)
            case 14:
                let nodes = try count()
                guard nodes > 0 else { throw .badFormat }
                var elements: [[UInt8]] = []
                for _ in 0..<nodes {
                    let entries = try RedisDump.ziplist(try string())
                    guard !entries.isEmpty else { throw .badFormat }
                    elements += entries
                }
                return .list(elements)
            case 15, 19:
                return .stream(try stream(current: type == 19))
            case 18:
                let nodes = try count()
                guard nodes > 0 else { throw .badFormat }
                var elements: [[UInt8]] = []
                for _ in 0..<nodes {
                    let (container, encoded) = try length()
                    guard !encoded else { throw .badFormat }
                    let blob = try string()
                    switch container {
                    case 1: elements.append(blob)
                    case 2:
                        let entries = try RedisDump.listpack(blob)
                        guard !entries.isEmpty else { throw .badFormat }
                        elements += entries
                    default: throw .badFormat
                    }
                }
                return .list(elements)
            default:
                throw .badFormat
            }
        }
    }

    // MARK: Compact encodings

    /// LZF (liblzf's format): literal runs and back references.
    static func lzfDecompress(_ input: [UInt8], length: Int) throws(Failure) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(length)
        var index = 0
        while index < input.count {
            let control = Int(input[index])
            index += 1
            if control < 32 {
                let run = control + 1
                guard index + run <= input.count, output.count + run <= length else { throw .badFormat }
                output += input[index..<(index + run)]
                index += run
            } else {
                var run = control >> 5
                if run == 7 {
                    guard index < input.count else { throw .badFormat }
                    run += Int(input[index])
                    index += 1
                }
                guard index < input.count else { throw .badFormat }
                let back = ((control & 0x1F) << 8) + Int(input[index]) + 1
                index += 1
                let start = output.count - back
                guard start >= 0, output.count + run + 2 <= length else { throw .badFormat }
                for offset in 0..<(run + 2) { output.append(output[start + offset]) }
            }
        }
        guard output.count == length else { throw .badFormat }
        return output
    }

    /// An intset's members as decimal strings.
    static func intset(_ blob: [UInt8]) throws(Failure) -> [[UInt8]] {
        guard blob.count >= 8 else { throw .badFormat }
        func le(_ offset: Int, _ width: Int) -> UInt64 {
            var value: UInt64 = 0
            for index in 0..<width { value |= UInt64(blob[offset + index]) << UInt64(8 * index) }
            return value
        }
        let width = Int(le(0, 4))
        let count = Int(le(4, 4))
        guard [2, 4, 8].contains(width), blob.count == 8 + width * count else { throw .badFormat }
        return (0..<count).map { index in
            let raw = le(8 + index * width, width)
            let value: Int64 =
                switch width {
                case 2: Int64(Int16(truncatingIfNeeded: raw))
                case 4: Int64(Int32(truncatingIfNeeded: raw))
                default: Int64(bitPattern: raw)
                }
            return Array(String(value).utf8)
        }
    }

    /// A listpack's entries (integers as decimal strings).
    static func listpack(_ blob: [UInt8]) throws(Failure) -> [[UInt8]] {
        guard blob.count >= 7, blob.last == 0xFF else { throw .badFormat }
        let total = Int(blob[0]) | Int(blob[1]) << 8 | Int(blob[2]) << 16 | Int(blob[3]) << 24
        guard total == blob.count else { throw .badFormat }
        var offset = 6
        var entries: [[UInt8]] = []
        func need(_ count: Int) throws(Failure) {
            guard offset + count <= blob.count - 1 else { throw .badFormat }
        }
        func integer(_ start: Int, _ width: Int) -> Int64 {
            var raw: UInt64 = 0
            for index in 0..<width { raw |= UInt64(blob[start + index]) << UInt64(8 * index) }
            let shift = UInt64(64 - width * 8)
            return Int64(bitPattern: raw << shift) >> Int64(shift)
        }
        while offset < blob.count - 1 {
            let first = blob[offset]
            let entryStart = offset
            var element: [UInt8]
            if first & 0x80 == 0 {
                element = Array(String(first & 0x7F).utf8)
                offset += 1
            } else if first & 0xC0 == 0x80 {
                let length = Int(first & 0x3F)
                try need(1 + length)
                element = Array(blob[(offset + 1)..<(offset + 1 + length)])
                offset += 1 + length
            } else if first & 0xE0 == 0xC0 {
                try need(2)
                var value = Int64(first & 0x1F) << 8 | Int64(blob[offset + 1])
                if value >= 1 << 12 { value -= 1 << 13 }
                element = Array(String(value).utf8)
                offset += 2
            } else if first & 0xF0 == 0xE0 {
                try need(2)
                let length = Int(first & 0x0F) << 8 | Int(blob[offset + 1])
                try need(2 + length)
                element = Array(blob[(offset + 2)..<(offset + 2 + length)])
                offset += 2 + length
            } else if first == 0xF0 {
                try need(5)
                let length = Int(integer(offset + 1, 4) & 0xFFFF_FFFF)
                try need(5 + length)
                element = Array(blob[(offset + 5)..<(offset + 5 + length)])
                offset += 5 + length
            } else if (0xF1...0xF4).contains(first) {
                let width = [0xF1: 2, 0xF2: 3, 0xF3: 4, 0xF4: 8][Int(first)]!
                try need(1 + width)
                element = Array(String(integer(offset + 1, width)).utf8)
                offset += 1 + width
            } else {
                throw .badFormat
            }
            // The back-length after each entry: 1 to 5 bytes, by the entry's size.
            let size = offset - entryStart
            let backLength = size < 128 ? 1 : size < 16384 ? 2 : size < 2_097_152 ? 3 : size < 268_435_456 ? 4 : 5
            try need(backLength)
            offset += backLength
            entries.append(element)
        }
        let declared = Int(blob[4]) | Int(blob[5]) << 8
        guard declared == 65535 || declared == entries.count else { throw .badFormat }
        return entries
    }
}
