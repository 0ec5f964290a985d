internal import StrataMVCC
internal import StrataRedisStore

/// SET's and GETEX's options (Redis's `parseExtendedStringArgumentsOrReply`).
struct StringOptions {
    var nx = false
    var xx = false
    var get = false
    var keepTTL = false
    var persist = false
    /// EX / PX / EXAT / PXAT and its argument.
    var expireKind: String? = nil
    var expireArgument: [UInt8] = []

    init(_ invocation: RedisInvocation, from start: Int, forGet: Bool) throws(RedisError) {
        var index = start
        while index < invocation.count {
            let option = invocation.option(index)
            let hasNext = index + 1 < invocation.count
            let expireSet = expireKind != nil
            switch option {
            case "NX" where !xx && !forGet: nx = true
            case "XX" where !nx && !forGet: xx = true
            case "GET" where !forGet: get = true
            case "KEEPTTL" where !persist && !expireSet && !forGet: keepTTL = true
            case "PERSIST" where forGet && !expireSet && !keepTTL: persist = true
            case let kind
            where ["EX", "PX", "EXAT", "PXAT"].contains(kind) && !keepTTL && !persist
                && (expireKind == nil || expireKind == kind) && hasNext:
                expireKind = option
                expireArgument = invocation[index + 1]
                index += 1
            default:
                throw .syntax
            }
            index += 1
        }
    }

    /// The absolute expiry in milliseconds, or nil without one; Redis's errors for bad values.
    func deadline(now: Int64, command: String) throws(RedisError) -> Int64? {
        guard let kind = expireKind else { return nil }
        guard let value = RedisNumber.parseInteger(expireArgument) else { throw .notInteger }
        let seconds = kind == "EX" || kind == "EXAT"
        if value <= 0 || (seconds && value > Int64.max / 1000) { throw .invalidExpireTime(command: command) }
        var milliseconds = seconds ? value * 1000 : value
        if kind == "EX" || kind == "PX" {
            let (sum, overflow) = milliseconds.addingReportingOverflow(now)
            if overflow { throw .invalidExpireTime(command: command) }
            milliseconds = sum
        }
        if milliseconds <= 0 { throw .invalidExpireTime(command: command) }
        return milliseconds
    }
}

extension RedisCommands {
    static let strings: [(String, RedisCommand.Access, RedisCommandTable.Handler)] = [
        (
            "get", .read,
            { c throws(RedisError) in
                guard let entry = try c.data.lookup(c.db, c[1], as: .string) else { return .null }
                return .bulk(entry.metadata.value)
            }
        ),
        (
            "set", .write,
            { c throws(RedisError) in
                let options = try StringOptions(c, from: 3, forGet: false)
                let deadline = try options.deadline(now: c.data.now, command: "set")
                let existing = try c.data.lookup(c.db, c[1])
                var reply: RESPValue = .ok
                if options.get {
                    if let existing, existing.type != .string { throw .wrongType }
                    reply = existing.map { .bulk($0.metadata.value) } ?? .null
                }
                if (options.nx && existing != nil) || (options.xx && existing == nil) {
                    return options.get ? reply : .null
                }
                let expiry: Expiry = deadline.map { .at($0) } ?? (options.keepTTL ? .keep : .none)
                try c.data.setString(c.db, c[1], c[2], expiry: expiry, previous: .some(existing))
                c.notify("set", .string, c[1])
                if deadline != nil { c.notify("expire", .generic, c[1]) }
                return reply
            }
        ),
        (
            "setnx", .write,
            { c throws(RedisError) in
                if try c.data.lookup(c.db, c[1]) != nil { return .integer(0) }
                try c.data.setString(c.db, c[1], c[2], previous: .some(nil))
                c.notify("set", .string, c[1])
                return .integer(1)
            }
        ),
        ("setex", .write, { c throws(RedisError) in try setWithExpiry(&c, seconds: true, name: "setex") }),
        ("psetex", .write, { c throws(RedisError) in try setWithExpiry(&c, seconds: false, name: "psetex") }),
        (
            "getset", .write,
            { c throws(RedisError) in
                let existing = try c.data.lookup(c.db, c[1])
                if let existing, existing.type != .string { throw .wrongType }
                try c.data.setString(c.db, c[1], c[2], previous: .some(existing))
                c.notify("set", .string, c[1])
                return existing.map { .bulk($0.metadata.value) } ?? .null
            }
        ),
        (
            "getdel", .write,
            { c throws(RedisError) in
                guard let entry = try c.data.lookup(c.db, c[1], as: .string) else { return .null }
                try c.data.drop(c.db, c[1], entry)
                c.notify("del", .generic, c[1])
                return .bulk(entry.metadata.value)
            }
        ),
        (
            "getex", .write,
            { c throws(RedisError) in
                let options = try StringOptions(c, from: 2, forGet: true)
                guard let entry = try c.data.lookup(c.db, c[1], as: .string) else { return .null }
                let deadline = try options.deadline(now: c.data.now, command: "getex")
                let reply = RESPValue.bulk(entry.metadata.value)
                if let deadline {
                    if (options.expireKind == "EXAT" || options.expireKind == "PXAT") && deadline <= c.data.now {
                        try c.data.drop(c.db, c[1], entry)
                        c.notify("del", .generic, c[1])
                    } else {
                        try c.data.setExpiry(c.db, c[1], entry, deadline)
                        c.notify("expire", .generic, c[1])
                    }
                } else if options.persist && entry.expiresAt != 0 {
                    try c.data.setExpiry(c.db, c[1], entry, 0)
                    c.notify("persist", .generic, c[1])
                }
                return reply
            }
        ),
        (
            "mget", .read,
            { c throws(RedisError) in
                var values: [RESPValue] = []
                values.reserveCapacity(c.count - 1)
                for index in 1..<c.count {
                    if let entry = try c.data.lookup(c.db, c[index]), entry.type == .string {
                        c.data.hits += 1
                        values.append(.bulk(entry.metadata.value))
                    } else {
                        values.append(.null)
                    }
                }
                return .array(values)
            }
        ),
        (
            "mset", .write,
            { c throws(RedisError) in
                guard c.count % 2 == 1 else { throw .err("wrong number of arguments for 'mset' command") }
                for index in stride(from: 1, to: c.count, by: 2) {
                    try c.data.setString(c.db, c[index], c[index + 1])
                    c.notify("set", .string, c[index])
                }
                return .ok
            }
        ),
        (
            "msetnx", .write,
            { c throws(RedisError) in
                guard c.count % 2 == 1 else { throw .err("wrong number of arguments for 'msetnx' command") }
                for index in stride(from: 1, to: c.count, by: 2) where try c.data.lookup(c.db, c[index]) != nil {
                    return .integer(0)
                }
                for index in stride(from: 1, to: c.count, by: 2) {
                    try c.data.setString(c.db, c[index], c[index + 1], previous: .some(nil))
                    c.notify("set", .string, c[index])
                }
                return .integer(1)
            }
        ),
        (
            "strlen", .read,
            { c throws(RedisError) in
                .integer(try c.data.lookup(c.db, c[1], as: .string)?.metadata.value.count ?? 0)
            }
        ),
        (
            "append", .write,
            { c throws(RedisError) in
                let entry = try c.data.lookup(c.db, c[1], as: .string)
                var value = entry?.metadata.value ?? []
                try checkStringLength(c, value.count + c[2].count)
                value.append(contentsOf: c[2])
                try c.data.setString(c.db, c[1], value, expiry: .keep, previous: .some(entry))
                c.notify("append", .string, c[1])
                return .integer(value.count)
            }
        ),
        ("getrange", .read, { c throws(RedisError) in try getRange(&c) }),
        ("substr", .read, { c throws(RedisError) in try getRange(&c) }),
        (
            "setrange", .write,
            { c throws(RedisError) in
                let offset = try c.integer(2)
                guard offset >= 0 else { throw .err("offset is out of range") }
                let entry = try c.data.lookup(c.db, c[1], as: .string)
                let patch = c[3]
                guard let entry else {
                    if patch.isEmpty { return .integer(0) }
                    try checkStringLength(c, Int(offset), plus: patch.count)
                    var value = [UInt8](repeating: 0, count: Int(offset))
                    value.append(contentsOf: patch)
                    try c.data.setString(c.db, c[1], value, previous: .some(nil))
                    c.notify("setrange", .string, c[1])
                    return .integer(value.count)
                }
                var value = entry.metadata.value
                if patch.isEmpty { return .integer(value.count) }
                try checkStringLength(c, Int(offset), plus: patch.count)
                let end = Int(offset) + patch.count
                if value.count < end { value.append(contentsOf: [UInt8](repeating: 0, count: end - value.count)) }
                value.replaceSubrange(Int(offset)..<end, with: patch)
                try c.data.setString(c.db, c[1], value, expiry: .keep, previous: .some(entry))
                c.notify("setrange", .string, c[1])
                return .integer(value.count)
            }
        ),
        ("incr", .write, { c throws(RedisError) in try incrementBy(&c, 1) }),
        ("decr", .write, { c throws(RedisError) in try incrementBy(&c, -1) }),
        ("incrby", .write, { c throws(RedisError) in try incrementBy(&c, try c.integer(2)) }),
        (
            "decrby", .write,
            { c throws(RedisError) in
                let amount = try c.integer(2)
                guard amount != Int64.min else { throw .err("decrement would overflow") }
                return try incrementBy(&c, -amount)
            }
        ),
        (
            "incrbyfloat", .write,
            { c throws(RedisError) in
                let entry = try c.data.lookup(c.db, c[1], as: .string)
                let current: LongDouble
                if let entry {
                    guard let value = RedisNumber.parseLongDouble(entry.metadata.value) else { throw .notFloat }
                    current = value
                } else {
                    current = 0
                }
                guard let increment = RedisNumber.parseLongDouble(c[2]) else { throw .notFloat }
                let result = current + increment
                guard result.isFinite, let text = RedisNumber.humanString(result) else {
                    throw .err("increment would produce NaN or Infinity")
                }
                let bytes = Array(text.utf8)
                try c.data.setString(c.db, c[1], bytes, expiry: .keep, previous: .some(entry))
                c.notify("incrbyfloat", .string, c[1])
                return .bulk(bytes)
            }
        ),
        ("lcs", .read, { c throws(RedisError) in try longestCommonSubsequence(&c) }),
    ]

    private static func setWithExpiry(_ c: inout RedisInvocation, seconds: Bool, name: String) throws(RedisError)
        -> RESPValue
    {
        guard let value = RedisNumber.parseInteger(c[2]) else { throw .notInteger }
        if value <= 0 || (seconds && value > Int64.max / 1000) { throw .invalidExpireTime(command: name) }
        let (deadline, overflow) = (seconds ? value * 1000 : value).addingReportingOverflow(c.data.now)
        if overflow || deadline <= 0 { throw .invalidExpireTime(command: name) }
        try c.data.setString(c.db, c[1], c[3], expiry: .at(deadline))
        c.notify("set", .string, c[1])
        c.notify("expire", .generic, c[1])
        return .ok
    }

    static func checkStringLength(_ c: RedisInvocation, _ length: Int, plus extra: Int = 0) throws(RedisError) {
        let (total, overflow) = length.addingReportingOverflow(extra)
        if overflow || total > c.server.config.effective.maxBulkLength { throw .stringTooLong }
    }

    private static func getRange(_ c: inout RedisInvocation) throws(RedisError) -> RESPValue {
        var start = try c.integer(2)
        var end = try c.integer(3)
        guard let entry = try c.data.lookup(c.db, c[1], as: .string) else { return .bulk([]) }
        let value = entry.metadata.value
        let length = Int64(value.count)
        if start < 0 && end < 0 && start > end { return .bulk([]) }
        if start < 0 { start = length + start }
        if end < 0 { end = length + end }
        if start < 0 { start = 0 }
        if end < 0 { end = 0 }
        if end >= length { end = length - 1 }
        if start > end || length == 0 { return .bulk([]) }
        return .bulk(Array(value[Int(start)...Int(end)]))
    }

    private static func incrementBy(_ c: inout RedisInvocation, _ amount: Int64) throws(RedisError) -> RESPValue {
        let entry = try c.data.lookup(c.db, c[1], as: .string)
        var current: Int64 = 0
        if let entry {
            guard let value = RedisNumber.parseInteger(entry.metadata.value) else { throw .notInteger }
            current = value
        }
        let (result, overflow) = current.addingReportingOverflow(amount)
        if overflow { throw .overflow }
        try c.data.setString(c.db, c[1], Array(String(result).utf8), expiry: .keep, previous: .some(entry))
        c.notify("incrby", .string, c[1])
        return .integer(result)
    }

    /// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]: the classic dynamic-programming table, walked
    /// back from the end as Redis does, so the matches come out in Redis's order.
    private static func longestCommonSubsequence(_ c: inout RedisInvocation) throws(RedisError) -> RESPValue {
        let first = try c.data.lookup(c.db, c[1])
        let second = try c.data.lookup(c.db, c[2])
        if (first != nil && first!.type != .string) || (second != nil && second!.type != .string) {
            throw .err("The specified keys must contain string values")
        }
        var wantLength = false
        var wantIndexes = false
        var withMatchLength = false
        var minimumMatch = 0
        var index = 3
        while index < c.count {
            switch c.option(index) {
            case "IDX": wantIndexes = true
            case "LEN": wantLength = true
            case "WITHMATCHLEN": withMatchLength = true
            case "MINMATCHLEN" where index + 1 < c.count:
                minimumMatch = Int(max(0, try c.integer(index + 1)))
                index += 1
            default: throw .syntax
            }
            index += 1
        }
        if wantIndexes && wantLength { throw .err("If you want both the length and indexes, please just use IDX.") }
        let a = first?.metadata.value ?? []
        let b = second?.metadata.value ?? []
        let width = b.count + 1
        let cells = (a.count + 1).multipliedReportingOverflow(by: width)
        if cells.overflow || cells.partialValue * 4 > c.server.config.effective.maxBulkLength {
            throw .err("Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")
        }
        var table = [UInt32](repeating: 0, count: cells.partialValue)
        if !a.isEmpty && !b.isEmpty {
            for i in 1...a.count {
                for j in 1...b.count {
                    table[i * width + j] =
                        a[i - 1] == b[j - 1]
                        ? table[(i - 1) * width + j - 1] + 1
                        : max(table[(i - 1) * width + j], table[i * width + j - 1])
                }
            }
        }
        let length = Int(table[a.count * width + b.count])
        if wantLength { return .integer(length) }
        var result = [UInt8](repeating: 0, count: length)
        var matches: [RESPValue] = []
        let unset = a.count
        var startA = unset
        var endA = 0
        var startB = 0
        var endB = 0
        var position = length
        var i = a.count
        var j = b.count
        while i > 0 && j > 0 {
            var emit = false
            if a[i - 1] == b[j - 1] {
                result[position - 1] = a[i - 1]
                if startA == unset {
                    (startA, endA, startB, endB) = (i - 1, i - 1, j - 1, j - 1)
                } else if startA == i && startB == j {
                    startA -= 1
                    startB -= 1
                } else {
                    emit = true
                }
                if startA == 0 || startB == 0 { emit = true }
                position -= 1
                i -= 1
                j -= 1
            } else {
                if table[(i - 1) * width + j] > table[i * width + j - 1] { i -= 1 } else { j -= 1 }
                if startA != unset { emit = true }
            }
            if emit {
                let matchLength = endA - startA + 1
                if wantIndexes && (minimumMatch == 0 || matchLength >= minimumMatch) {
                    var match: [RESPValue] = [
                        .array([.integer(startA), .integer(endA)]), .array([.integer(startB), .integer(endB)]),
                    ]
                    if withMatchLength { match.append(.integer(matchLength)) }
                    matches.append(.array(match))
                }
                startA = unset
            }
        }
        if wantIndexes { return .map([.bulk("matches"), .array(matches), .bulk("len"), .integer(length)]) }
        return .bulk(result)
    }
}
