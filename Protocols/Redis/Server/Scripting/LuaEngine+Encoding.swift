/// The tagged encoding replies cross the C boundary in (both ways): one tag byte, then
/// `i` i64 · `$` `+` `-` `(` `=` u32 length + bytes · `_` nothing · `*` `~` u32 count + items · `%` u32 pairs + items ·
/// `,` f64 · `#` u8 — little-endian. `_` is a null: false for a RESP2 script, nil for RESP3; `=` is verbatim text.
extension LuaEngine {
    /// `value` as a script using RESP `resp` sees it: RESP2 folds RESP3's types as a RESP2 connection would.
    static func encode(_ value: RESPValue, resp: Int, into bytes: inout [UInt8]) {
        func text(_ tag: Character, _ content: some Collection<UInt8>) {
            bytes.append(tag.asciiValue!)
            count(content.count)
            bytes.append(contentsOf: content)
        }
        func count(_ n: Int) {
            let value = UInt32(truncatingIfNeeded: n)
            for shift in stride(from: 0, through: 24, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> shift)) }
        }
        func sixtyFour(_ value: UInt64) {
            for shift in stride(from: 0, through: 56, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> shift)) }
        }
        func items(_ tag: Character, _ values: [RESPValue], _ header: Int) {
            bytes.append(tag.asciiValue!)
            count(header)
            for item in values { encode(item, resp: resp, into: &bytes) }
        }
        switch value {
        case .simple(let status): text("+", status.utf8)
        case .error(let message): text("-", message.utf8)
        case .integer(let number):
            bytes.append(UInt8(ascii: "i"))
            sixtyFour(UInt64(bitPattern: number))
        case .bulk(let content): text("$", content)
        case .null, .nullArray: bytes.append(UInt8(ascii: "_"))
        case .array(let values), .push(let values), .sequence(let values): items("*", values, values.count)
        case .map(let values): resp == 3 ? items("%", values, values.count / 2) : items("*", values, values.count)
        case .set(let values): items(resp == 3 ? "~" : "*", values, values.count)
        case .double(let number):
            if resp == 3 {
                bytes.append(UInt8(ascii: ","))
                sixtyFour(number.bitPattern)
            } else {
                text("$", RESPValue.format(number).utf8)
            }
        case .formattedDouble(let formatted):
            if resp == 3 {
                bytes.append(UInt8(ascii: ","))
                sixtyFour((RedisNumber.parseDouble(Array(formatted.utf8)) ?? 0).bitPattern)
            } else {
                text("$", formatted.utf8)
            }
        case .bool(let flag):
            if resp == 3 {
                bytes.append(UInt8(ascii: "#"))
                bytes.append(flag ? 1 : 0)
            } else {
                bytes.append(UInt8(ascii: "i"))
                sixtyFour(flag ? 1 : 0)
            }
        case .verbatim(let content): text(resp == 3 ? "=" : "$", content.utf8)
        case .bigNumber(let digits): text(resp == 3 ? "(" : "$", digits.utf8)
        }
    }

    /// Reads the tagged encoding.
    struct Reader {
        let bytes: UnsafeRawBufferPointer
        var position = 0

        init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        var atEnd: Bool { position >= bytes.count }

        mutating func u8() -> UInt8? {
            guard position < bytes.count else { return nil }
            defer { position += 1 }
            return bytes[position]
        }

        mutating func u32() -> UInt32? {
            guard bytes.count - position >= 4 else { return nil }
            var value: UInt32 = 0
            for index in (0..<4).reversed() { value = value << 8 | UInt32(bytes[position + index]) }
            position += 4
            return value
        }

        mutating func u64() -> UInt64? {
            guard bytes.count - position >= 8 else { return nil }
            var value: UInt64 = 0
            for index in (0..<8).reversed() { value = value << 8 | UInt64(bytes[position + index]) }
            position += 8
            return value
        }

        mutating func bytes(_ count: Int) -> [UInt8]? {
            guard count >= 0, bytes.count - position >= count else { return nil }
            defer { position += count }
            return Array(bytes[position..<position + count])
        }

        mutating func text() -> String? {
            guard let length = u32(), let content = bytes(Int(length)) else { return nil }
            return String(decoding: content, as: UTF8.self)
        }

        /// One value; nil when the encoding is malformed.
        mutating func value(depth: Int = 0) -> RESPValue? {
            guard depth < 20_000, let tag = u8() else { return nil }
            switch tag {
            case UInt8(ascii: "i"): return u64().map { .integer(Int64(bitPattern: $0)) }
            case UInt8(ascii: "$"):
                guard let length = u32(), let content = bytes(Int(length)) else { return nil }
                return .bulk(content)
            case UInt8(ascii: "_"): return .null
            case UInt8(ascii: "+"): return text().map { .simple($0) }
            case UInt8(ascii: "-"): return text().map { .error($0) }
            case UInt8(ascii: "("): return text().map { .bigNumber($0) }
            case UInt8(ascii: "="): return text().map { .verbatim($0) }
            case UInt8(ascii: ","): return u64().map { .double(Double(bitPattern: $0)) }
            case UInt8(ascii: "#"): return u8().map { .bool($0 != 0) }
            case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: "%"):
                guard let header = u32() else { return nil }
                let count = tag == UInt8(ascii: "%") ? Int(header) * 2 : Int(header)
                guard count <= bytes.count - position else { return nil }
                var values: [RESPValue] = []
                values.reserveCapacity(count)
                for _ in 0..<count {
                    guard let item = value(depth: depth + 1) else { return nil }
                    values.append(item)
                }
                switch tag {
                case UInt8(ascii: "*"): return .array(values)
                case UInt8(ascii: "~"): return .set(values)
                default: return .map(values)
                }
            default: return nil
            }
        }
    }
}
