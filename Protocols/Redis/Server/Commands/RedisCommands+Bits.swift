internal import StrataMVCC
internal import StrataRedisStore

extension RedisCommands {
    static let bits: [(String, RedisCommand.Access, RedisCommandTable.Handler)] = [
        (
            "setbit", .write,
            { c throws(RedisError) in
                let offset = try bitOffset(c, 2, hashAllowed: false, width: 0)
                guard let on = RedisNumber.parseInteger(c[3]), on == 0 || on == 1 else {
                    throw .err("bit is not an integer or out of range")
                }
                let existing = try c.data.lookup(c.db, c[1], as: .string)
                var value = existing?.metadata.value ?? []
                let byte = Int(offset >> 3)
                var grown = existing == nil
                if value.count < byte + 1 {
                    value.append(contentsOf: [UInt8](repeating: 0, count: byte + 1 - value.count))
                    grown = true
                }
                let mask = UInt8(1 << (7 - Int(offset & 7)))
                let old = value[byte] & mask != 0
                if grown || old != (on == 1) {
                    if on == 1 { value[byte] |= mask } else { value[byte] &= ~mask }
                    try c.data.setString(c.db, c[1], value, expiry: .keep, previous: .some(existing))
                    c.notify("setbit", .string, c[1])
                }
                return .integer(old ? 1 : 0)
            }
        ),
        (
            "getbit", .read,
            { c throws(RedisError) in
                let offset = try bitOffset(c, 2, hashAllowed: false, width: 0)
                guard let entry = try c.data.lookup(c.db, c[1], as: .string) else { return .integer(0) }
                let value = entry.metadata.value
                let byte = Int(offset >> 3)
                guard byte < value.count else { return .integer(0) }
                return .integer(value[byte] & UInt8(1 << (7 - Int(offset & 7))) != 0 ? 1 : 0)
            }
        ),
        (
            "bitcount", .read,
            { c throws(RedisError) in
                guard let entry = try c.data.lookup(c.db, c[1], as: .string) else { return .integer(0) }
                let value = entry.metadata.value
                guard c.count == 2 || c.count == 4 || c.count == 5 else { throw .syntax }
                guard c.count > 2 else { return .integer(popcount(value[...])) }
                guard let range = try bitRange(c, startIndex: 2, endIndex: 3, unitIndex: 4, length: value.count)
                else { return .integer(0) }
                if !range.bits {
                    return .integer(range.start > range.end ? 0 : popcount(value[range.start...range.end]))
                }
                var count = 0
                if range.start <= range.end {
                    for bit in range.start...range.end where value[bit >> 3] & UInt8(1 << (7 - bit & 7)) != 0 {
                        count += 1
                    }
                }
                return .integer(count)
            }
        ),
        (
            "bitpos", .read,
            { c throws(RedisError) in
                guard let bit = RedisNumber.parseInteger(c[2]) else { throw .notInteger }
                guard bit == 0 || bit == 1 else { throw .err("The bit argument must be 1 or 0.") }
                guard let entry = try c.data.lookup(c.db, c[1], as: .string) else { return .integer(bit == 1 ? -1 : 0) }
                let value = entry.metadata.value
                guard c.count >= 3 && c.count <= 6 else { throw .syntax }
                var first = 0
                var last = value.count * 8 - 1
                let endGiven = c.count >= 5
                if c.count >= 4 {
                    var bits = false
                    if c.count == 6 {
                        switch c.option(5) {
                        case "BIT": bits = true
                        case "BYTE": bits = false
                        default: throw .syntax
                        }
                    }
                    let total = bits ? value.count * 8 : value.count
                    var start = try c.integer(3)
                    var end = endGiven ? try c.integer(4) : Int64(total - 1)
                    if start < 0 { start += Int64(total) }
                    if end < 0 { end += Int64(total) }
                    if start < 0 { start = 0 }
                    if end < 0 { end = 0 }
                    if end >= Int64(total) { end = Int64(total - 1) }
                    if start > end { return .integer(-1) }
                    first = bits ? Int(start) : Int(start) * 8
                    last = bits ? Int(end) : Int(end) * 8 + 7
                }
                if value.isEmpty || first > last { return .integer(-1) }
                for position in first...last
                where (value[position >> 3] & UInt8(1 << (7 - position & 7)) != 0) == (bit == 1) {
                    return .integer(position)
                }
                // Looking for a clear bit past the end of the string finds the padding, unless a range was given.
                if bit == 0 && !endGiven { return .integer(last + 1) }
                return .integer(-1)
            }
        ),
        (
            "bitop", .write,
            { c throws(RedisError) in
                let operation = c.option(1)
                guard ["AND", "OR", "XOR", "NOT"].contains(operation) else { throw .syntax }
                if operation == "NOT" && c.count != 4 {
                    throw .err("BITOP NOT must be called with a single source key.")
                }
                var sources: [[UInt8]] = []
                for index in 3..<c.count {
                    sources.append(try c.data.lookup(c.db, c[index], as: .string)?.metadata.value ?? [])
                }
                let length = sources.map(\.count).max() ?? 0
                guard length > 0 else {
                    if let existing = try c.data.lookup(c.db, c[2]) {
                        try c.data.drop(c.db, c[2], existing)
                        c.notify("del", .generic, c[2])
                    }
                    return .integer(0)
                }
                var result = [UInt8](repeating: 0, count: length)
                for index in 0..<length {
                    var output: UInt8 = index < sources[0].count ? sources[0][index] : 0
                    if operation == "NOT" { output = ~output }
                    for source in sources.dropFirst() {
                        let byte: UInt8 = index < source.count ? source[index] : 0
                        switch operation {
                        case "AND": output &= byte
                        case "OR": output |= byte
                        default: output ^= byte
                        }
                    }
                    result[index] = output
                }
                try c.data.setString(c.db, c[2], result)
                c.notify("set", .string, c[2])
                return .integer(length)
            }
        ),
        ("bitfield", .write, { c throws(RedisError) in try bitfield(&c, readOnly: false) }),
        ("bitfield_ro", .read, { c throws(RedisError) in try bitfield(&c, readOnly: true) }),
    ]

    private static func popcount(_ bytes: ArraySlice<UInt8>) -> Int {
        bytes.reduce(0) { $0 + $1.nonzeroBitCount }
    }

    /// A bit offset argument (`#n` multiplies by the field width for BITFIELD), below proto-max-bulk-len bytes.
    private static func bitOffset(_ c: RedisInvocation, _ index: Int, hashAllowed: Bool, width: Int) throws(RedisError)
        -> UInt64
    {
        var text = c[index]
        let hash = hashAllowed && text.first == UInt8(ascii: "#") && width > 0
        if hash { text.removeFirst() }
        guard var offset = RedisNumber.parseInteger(text) else {
            throw .err("bit offset is not an integer or out of range")
        }
        if hash { offset = offset.multipliedReportingOverflow(by: Int64(width)).partialValue }
        guard offset >= 0, (offset >> 3) < Int64(c.server.config.effective.maxBulkLength) else {
            throw .err("bit offset is not an integer or out of range")
        }
        return UInt64(offset)
    }

    /// BITCOUNT's start/end [BYTE|BIT] as an inclusive range of bytes or bits; nil for Redis's early 0.
    private static func bitRange(
        _ c: RedisInvocation,
        startIndex: Int,
        endIndex: Int,
        unitIndex: Int,
        length: Int
    ) throws(RedisError) -> (start: Int, end: Int, bits: Bool)? {
        var start = try c.integer(startIndex)
        var end = try c.integer(endIndex)
        if start < 0 && end < 0 && start > end { return nil }
        var bits = false
        if c.count > unitIndex {
            switch c.option(unitIndex) {
            case "BIT": bits = true
            case "BYTE": bits = false
            default: throw .syntax
            }
        }
        let total = Int64(bits ? length * 8 : length)
        if start < 0 { start += total }
        if end < 0 { end += total }
        if start < 0 { start = 0 }
        if end < 0 { end = 0 }
        if end >= total { end = total - 1 }
        return (Int(start), Int(end), bits)
    }

    private enum Overflow { case wrap, sat, fail }

    private struct FieldOperation {
        enum Kind { case get, set, incrby }
        let kind: Kind
        let signed: Bool
        let width: Int
        let offset: UInt64
        let value: Int64
        let overflow: Overflow
    }

    /// BITFIELD / BITFIELD_RO: GET, SET, INCRBY and OVERFLOW WRAP|SAT|FAIL over signed and unsigned fields.
    private static func bitfield(_ c: inout RedisInvocation, readOnly: Bool) throws(RedisError) -> RESPValue {
        var operations: [FieldOperation] = []
        var overflow = Overflow.wrap
        var index = 2
        var writes = false
        var highest: UInt64 = 0
        while index < c.count {
            let remaining = c.count - index - 1
            let name = c.option(index)
            let kind: FieldOperation.Kind
            switch name {
            case "GET" where remaining >= 2: kind = .get
            case "SET" where remaining >= 3: kind = .set
            case "INCRBY" where remaining >= 3: kind = .incrby
            case "OVERFLOW" where remaining >= 1:
                switch c.option(index + 1) {
                case "WRAP": overflow = .wrap
                case "SAT": overflow = .sat
                case "FAIL": overflow = .fail
                default: throw .err("Invalid OVERFLOW type specified")
                }
                index += 2
                continue
            default:
                throw .syntax
            }
            let type = c[index + 1]
            let typeError = RedisError.err(
                "Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."
            )
            guard let sign = type.first, sign == UInt8(ascii: "i") || sign == UInt8(ascii: "u"),
                let width = RedisNumber.parseInteger(type.dropFirst()), width >= 1,
                width <= (sign == UInt8(ascii: "i") ? 64 : 63)
            else { throw typeError }
            let offset = try bitOffset(c, index + 2, hashAllowed: true, width: Int(width))
            var value: Int64 = 0
            if kind != .get {
                writes = true
                highest = max(highest, offset + UInt64(width) - 1)
                value = try c.integer(index + 3)
            }
            operations.append(
                FieldOperation(
                    kind: kind,
                    signed: sign == UInt8(ascii: "i"),
                    width: Int(width),
                    offset: offset,
                    value: value,
                    overflow: overflow
                )
            )
            index += kind == .get ? 3 : 4
        }
        if writes && readOnly { throw .err("BITFIELD_RO only supports the GET subcommand") }
        let existing = try c.data.lookup(c.db, c[1], as: .string)
        var bytes = existing?.metadata.value ?? []
        var grown = false
        if writes && bytes.count < Int(highest >> 3) + 1 {
            bytes.append(contentsOf: [UInt8](repeating: 0, count: Int(highest >> 3) + 1 - bytes.count))
            grown = true
        }
        var replies: [RESPValue] = []
        var changed = false
        for operation in operations {
            let old = readField(bytes, operation.offset, operation.width)
            switch operation.kind {
            case .get:
                replies.append(.integer(operation.signed ? signExtend(old, operation.width) : Int64(bitPattern: old)))
            case .set, .incrby:
                let result =
                    operation.signed
                    ? signedUpdate(old, operation) : unsignedUpdate(old, operation)
                guard let (newValue, reply) = result else {
                    replies.append(.null)
                    continue
                }
                replies.append(.integer(reply))
                writeField(&bytes, operation.offset, operation.width, newValue)
                if newValue != old || grown { changed = true }
            }
        }
        // Redis grows the string before running the operations: it stays grown even when OVERFLOW FAIL refused
        // every write.
        if writes && (changed || grown) {
            try c.data.setString(c.db, c[1], bytes, expiry: .keep, previous: .some(existing))
            if changed || existing == nil { c.notify("setbit", .string, c[1]) }
        }
        return .array(replies)
    }

    private static func readField(_ bytes: [UInt8], _ offset: UInt64, _ width: Int) -> UInt64 {
        var value: UInt64 = 0
        for position in offset..<(offset + UInt64(width)) {
            let byte = Int(position >> 3)
            let bit: UInt64 = byte < bytes.count ? UInt64((bytes[byte] >> (7 - UInt8(position & 7))) & 1) : 0
            value = value << 1 | bit
        }
        return value
    }

    private static func writeField(_ bytes: inout [UInt8], _ offset: UInt64, _ width: Int, _ value: UInt64) {
        for index in 0..<width {
            let position = offset + UInt64(index)
            let bit = (value >> UInt64(width - 1 - index)) & 1
            let mask = UInt8(1 << (7 - Int(position & 7)))
            if bit == 1 { bytes[Int(position >> 3)] |= mask } else { bytes[Int(position >> 3)] &= ~mask }
        }
    }

    private static func signExtend(_ raw: UInt64, _ width: Int) -> Int64 {
        guard width < 64, raw & (1 << UInt64(width - 1)) != 0 else { return Int64(bitPattern: raw) }
        return Int64(bitPattern: raw | (UInt64.max << UInt64(width)))
    }

    /// A signed SET/INCRBY: the field's new raw bits and the reply, or nil when OVERFLOW FAIL refuses it.
    private static func signedUpdate(_ raw: UInt64, _ operation: FieldOperation) -> (UInt64, Int64)? {
        let width = operation.width
        let maximum: Int64 = width == 64 ? Int64.max : (Int64(1) << Int64(width - 1)) - 1
        let minimum = -maximum - 1
        let old = signExtend(raw, width)
        let (base, increment) = operation.kind == .incrby ? (old, operation.value) : (operation.value, Int64(0))
        let (sum, overflowed) = base.addingReportingOverflow(increment)
        var result = sum
        if overflowed || sum > maximum || sum < minimum {
            switch operation.overflow {
            case .fail: return nil
            case .sat: result = (overflowed ? increment > 0 : sum > maximum) ? maximum : minimum
            case .wrap: result = signExtend(UInt64(bitPattern: base &+ increment) & mask(width), width)
            }
        }
        let bits = UInt64(bitPattern: result) & mask(width)
        return (bits, operation.kind == .incrby ? result : old)
    }

    /// An unsigned SET/INCRBY, as ``signedUpdate(_:_:)``.
    private static func unsignedUpdate(_ raw: UInt64, _ operation: FieldOperation) -> (UInt64, Int64)? {
        let width = operation.width
        let maximum = mask(width)
        let base: UInt64 = operation.kind == .incrby ? raw : UInt64(bitPattern: operation.value)
        let increment: Int64 = operation.kind == .incrby ? operation.value : 0
        var result: UInt64
        let tooBig: Bool
        let tooSmall: Bool
        if operation.kind == .set {
            tooBig = operation.value < 0 || UInt64(operation.value) > maximum
            tooSmall = false
            result = base
        } else {
            tooBig = increment > 0 && UInt64(increment) > maximum - base
            tooSmall = increment < 0 && increment.magnitude > base
            result = base &+ UInt64(bitPattern: increment)
        }
        if tooBig || tooSmall {
            switch operation.overflow {
            case .fail: return nil
            case .sat:
                result = (tooBig && !(operation.kind == .set && operation.value < 0)) ? maximum : 0
            case .wrap: result &= maximum
            }
        }
        return (result, operation.kind == .incrby ? Int64(result) : Int64(raw))
    }

    private static func mask(_ width: Int) -> UInt64 { width == 64 ? UInt64.max : (UInt64(1) << UInt64(width)) - 1 }
}
