internal import StrataRedisStore

extension RedisCommands {
    static let lists: [(String, RedisCommand.Access, RedisCommandTable.Handler)] = [
        ("lpush", .write, { c throws(RedisError) in try push(&c, left: true, onlyExisting: false) }),
        ("rpush", .write, { c throws(RedisError) in try push(&c, left: false, onlyExisting: false) }),
        ("lpushx", .write, { c throws(RedisError) in try push(&c, left: true, onlyExisting: true) }),
        ("rpushx", .write, { c throws(RedisError) in try push(&c, left: false, onlyExisting: true) }),
        ("lpop", .write, { c throws(RedisError) in try pop(&c, left: true) }),
        ("rpop", .write, { c throws(RedisError) in try pop(&c, left: false) }),
        (
            "llen", .read,
            { c throws(RedisError) in
                .integer(Int(try c.data.lookup(c.db, c[1], as: .list)?.metadata.size ?? 0))
            }
        ),
        (
            "lindex", .read,
            { c throws(RedisError) in
                guard let entry = try c.data.lookup(c.db, c[1], as: .list) else { return .null }
                let index = try c.integer(2)
                guard let value = try c.data.listElement(entry, at: Int(index)) else { return .null }
                return .bulk(value)
            }
        ),
        (
            "lset", .write,
            { c throws(RedisError) in
                guard let entry = try c.data.lookup(c.db, c[1], as: .list) else { throw .noSuchKey }
                let index = try c.integer(2)
                guard try c.data.setListElement(entry, at: Int(index), c[3]) else { throw .indexOutOfRange }
                try c.data.finish(c.db, c[1], entry)
                c.notify("lset", .list, c[1])
                return .ok
            }
        ),
        (
            "lrange", .read,
            { c throws(RedisError) in
                let start = try c.integer(2)
                let stop = try c.integer(3)
                guard let entry = try c.data.lookup(c.db, c[1], as: .list) else { return .array([]) }
                let (from, through) = clampRange(start, stop, size: entry.metadata.size)
                return .array(try c.data.listRange(entry, from: from, through: through).map { .bulk($0) })
            }
        ),
        (
            "ltrim", .write,
            { c throws(RedisError) in
                let start = try c.integer(2)
                let stop = try c.integer(3)
                guard var entry = try c.data.lookup(c.db, c[1], as: .list) else { return .ok }
                let size = entry.metadata.size
                var first = start < 0 ? size + start : start
                var last = stop < 0 ? size + stop : stop
                if first < 0 { first = 0 }
                if first > last || first >= size {
                    first = size
                    last = size - 1
                }
                if last >= size { last = size - 1 }
                try c.data.trimList(&entry, keeping: first, through: last)
                let exists = try c.data.finish(c.db, c[1], entry)
                c.notify("ltrim", .list, c[1])
                if !exists { c.notify("del", .generic, c[1]) }
                return .ok
            }
        ),
        (
            "lrem", .write,
            { c throws(RedisError) in
                let count = try c.integer(2)
                guard var entry = try c.data.lookup(c.db, c[1], as: .list) else { return .integer(0) }
                var elements = try c.data.listAll(entry)
                var removed = 0
                if count >= 0 {
                    var kept: [[UInt8]] = []
                    for element in elements {
                        if element == c[3] && (count == 0 || removed < count) {
                            removed += 1
                        } else {
                            kept.append(element)
                        }
                    }
                    elements = kept
                } else {
                    var kept: [[UInt8]] = []
                    for element in elements.reversed() {
                        if element == c[3] && UInt64(removed) < count.magnitude {
                            removed += 1
                        } else {
                            kept.append(element)
                        }
                    }
                    elements = kept.reversed()
                }
                guard removed > 0 else { return .integer(0) }
                try c.data.rewriteList(&entry, elements)
                let exists = try c.data.finish(c.db, c[1], entry)
                c.notify("lrem", .list, c[1])
                if !exists { c.notify("del", .generic, c[1]) }
                return .integer(removed)
            }
        ),
        (
            "linsert", .write,
            { c throws(RedisError) in
                let after: Bool
                switch c.option(2) {
                case "AFTER": after = true
                case "BEFORE": after = false
                default: throw .syntax
                }
                guard var entry = try c.data.lookup(c.db, c[1], as: .list) else { return .integer(0) }
                var elements = try c.data.listAll(entry)
                guard let position = elements.firstIndex(of: c[3]) else { return .integer(-1) }
                elements.insert(c[4], at: after ? position + 1 : position)
                try c.data.rewriteList(&entry, elements)
                try c.data.finish(c.db, c[1], entry)
                c.notify("linsert", .list, c[1])
                return .integer(elements.count)
            }
        ),
        ("lpos", .read, { c throws(RedisError) in try listPosition(&c) }),
        (
            "lmove", .write,
            { c throws(RedisError) in
                try move(&c, from: try side(c, 3), to: try side(c, 4), blockingTimeout: nil)
            }
        ),
        ("rpoplpush", .write, { c throws(RedisError) in try move(&c, from: false, to: true, blockingTimeout: nil) }),
        (
            "blmove", .write,
            { c throws(RedisError) in
                let from = try side(c, 3)
                let to = try side(c, 4)
                return try move(&c, from: from, to: to, blockingTimeout: try timeout(c, 5))
            }
        ),
        (
            "brpoplpush", .write,
            { c throws(RedisError) in
                try move(&c, from: false, to: true, blockingTimeout: try timeout(c, 3))
            }
        ),
        ("lmpop", .write, { c throws(RedisError) in try multiPop(&c, numkeysIndex: 1, blocking: false) }),
        ("blmpop", .write, { c throws(RedisError) in try multiPop(&c, numkeysIndex: 2, blocking: true) }),
        ("blpop", .write, { c throws(RedisError) in try blockingPop(&c, left: true) }),
        ("brpop", .write, { c throws(RedisError) in try blockingPop(&c, left: false) }),
    ]

    /// Redis's range clamping for LRANGE / ZRANGE by rank: nil-free (start > stop means empty).
    static func clampRange(_ start: Int64, _ stop: Int64, size: Int64) -> (Int64, Int64) {
        var first = start < 0 ? size + start : start
        var last = stop < 0 ? size + stop : stop
        if first < 0 { first = 0 }
        if first > last || first >= size { return (1, 0) }
        if last >= size { last = size - 1 }
        return (first, last)
    }

    /// LEFT / RIGHT (true for LEFT).
    static func side(_ c: RedisInvocation, _ index: Int) throws(RedisError) -> Bool {
        switch c.option(index) {
        case "LEFT": return true
        case "RIGHT": return false
        default: throw .syntax
        }
    }

    /// A blocking command's timeout in seconds (float; 0 = forever).
    static func timeout(_ c: RedisInvocation, _ index: Int) throws(RedisError) -> Double {
        guard let value = RedisNumber.parseLongDouble(c[index]) else {
            throw .err("timeout is not a float or out of range")
        }
        let milliseconds = (Double(value) * 1000).rounded(.up)
        guard milliseconds.isFinite, milliseconds < 9.2e18 else { throw .err("timeout is not a float or out of range") }
        if milliseconds < 0 { throw .err("timeout is negative") }
        return milliseconds / 1000
    }

    private static func push(_ c: inout RedisInvocation, left: Bool, onlyExisting: Bool) throws(RedisError)
        -> RESPValue
    {
        var entry: RedisData.Entry
        if let existing = try c.data.lookup(c.db, c[1], as: .list) {
            entry = existing
        } else {
            if onlyExisting { return .integer(0) }
            entry = c.data.newCollection(.list)
        }
        for index in 2..<c.count { try c.data.push(&entry, c[index], left: left) }
        try c.data.finish(c.db, c[1], entry)
        c.notify(left ? "lpush" : "rpush", .list, c[1])
        return .integer(Int(entry.metadata.size))
    }

    private static func pop(_ c: inout RedisInvocation, left: Bool) throws(RedisError) -> RESPValue {
        if c.count > 3 { throw .err("wrong number of arguments for '\(left ? "lpop" : "rpop")' command") }
        let hasCount = c.count == 3
        let count = hasCount ? try c.positiveCount(2) : 0
        guard var entry = try c.data.lookup(c.db, c[1], as: .list) else { return hasCount ? .nullArray : .null }
        if hasCount && count == 0 { return .array([]) }
        var values: [RESPValue] = []
        for _ in 0..<(hasCount ? count : 1) {
            guard let value = try c.data.pop(&entry, left: left) else { break }
            values.append(.bulk(value))
        }
        try elementsRemoved(&c, c[1], entry, left: left)
        return hasCount ? .array(values) : values[0]
    }

    /// Stores a list after pops and announces them (with `del` when it emptied).
    private static func elementsRemoved(
        _ c: inout RedisInvocation,
        _ key: [UInt8],
        _ entry: RedisData.Entry,
        left: Bool
    )
        throws(RedisError)
    {
        let exists = try c.data.finish(c.db, key, entry)
        c.notify(left ? "lpop" : "rpop", .list, key)
        if !exists { c.notify("del", .generic, key) }
    }

    private static func move(_ c: inout RedisInvocation, from: Bool, to: Bool, blockingTimeout: Double?)
        throws(RedisError) -> RESPValue
    {
        guard var source = try c.data.lookup(c.db, c[1], as: .list) else {
            if let timeout = blockingTimeout, !c.inTransaction {
                c.block = RedisBlockRequest(keys: [c[1]], timeout: timeout)
            }
            return .null
        }
        let destination = try c.data.lookup(c.db, c[2], as: .list)
        guard let value = try c.data.pop(&source, left: from) else { return .null }
        if c[1] == c[2] {
            try c.data.push(&source, value, left: to)
            try c.data.finish(c.db, c[1], source)
            c.notify(to ? "lpush" : "rpush", .list, c[2])
            c.notify(from ? "lpop" : "rpop", .list, c[1])
            return .bulk(value)
        }
        var target = destination ?? c.data.newCollection(.list)
        try c.data.push(&target, value, left: to)
        try c.data.finish(c.db, c[2], target)
        c.notify(to ? "lpush" : "rpush", .list, c[2])
        try elementsRemoved(&c, c[1], source, left: from)
        return .bulk(value)
    }

    /// LMPOP / BLMPOP numkeys key… LEFT|RIGHT [COUNT n].
    private static func multiPop(_ c: inout RedisInvocation, numkeysIndex: Int, blocking: Bool) throws(RedisError)
        -> RESPValue
    {
        let blockTimeout = blocking ? try timeout(c, 1) : 0
        let (keys, left, count) = try multiPopArguments(c, numkeysIndex: numkeysIndex, sides: ("LEFT", "RIGHT"))
        for key in keys {
            guard var entry = try c.data.lookup(c.db, key, as: .list) else { continue }
            var values: [RESPValue] = []
            for _ in 0..<count {
                guard let value = try c.data.pop(&entry, left: left) else { break }
                values.append(.bulk(value))
            }
            try elementsRemoved(&c, key, entry, left: left)
            return .array([.bulk(key), .array(values)])
        }
        if blocking && !c.inTransaction { c.block = RedisBlockRequest(keys: keys, timeout: blockTimeout) }
        return .nullArray
    }

    /// numkeys, the keys, the side keyword and COUNT of LMPOP/ZMPOP and their blocking forms.
    static func multiPopArguments(_ c: RedisInvocation, numkeysIndex: Int, sides: (String, String))
        throws(RedisError) -> (keys: [[UInt8]], first: Bool, count: Int)
    {
        guard let numkeys = RedisNumber.parseInteger(c[numkeysIndex]) else {
            throw .err("numkeys should be greater than 0")
        }
        guard numkeys >= 1 else { throw .err("numkeys should be greater than 0") }
        guard numkeys < Int64(c.count) else { throw .syntax }
        let whereIndex = numkeysIndex + Int(numkeys) + 1
        guard whereIndex < c.count else { throw .syntax }
        let first: Bool
        switch c.option(whereIndex) {
        case sides.0: first = true
        case sides.1: first = false
        default: throw .syntax
        }
        var count = -1
        var index = whereIndex + 1
        while index < c.count {
            guard count == -1, c.option(index) == "COUNT", index + 1 < c.count else { throw .syntax }
            guard let value = RedisNumber.parseInteger(c[index + 1]) else {
                throw .err("count should be greater than 0")
            }
            guard value >= 1 else { throw .err("count should be greater than 0") }
            count = Int(clamping: value)
            index += 2
        }
        return (Array(c.arguments[(numkeysIndex + 1)..<whereIndex]), first, count == -1 ? 1 : count)
    }

    private static func blockingPop(_ c: inout RedisInvocation, left: Bool) throws(RedisError) -> RESPValue {
        let blockTimeout = try timeout(c, c.count - 1)
        let keys = Array(c.arguments[1..<(c.count - 1)])
        for key in keys {
            guard var entry = try c.data.lookup(c.db, key, as: .list),
                let value = try c.data.pop(&entry, left: left)
            else { continue }
            try elementsRemoved(&c, key, entry, left: left)
            return .array([.bulk(key), .bulk(value)])
        }
        if !c.inTransaction { c.block = RedisBlockRequest(keys: keys, timeout: blockTimeout) }
        return .nullArray
    }

    /// LPOS key element [RANK r] [COUNT n] [MAXLEN m].
    private static func listPosition(_ c: inout RedisInvocation) throws(RedisError) -> RESPValue {
        var rank: Int64 = 1
        var count: Int64 = -1
        var maxLength: Int64 = 0
        var index = 3
        while index < c.count {
            let more = index + 1 < c.count
            switch c.option(index) {
            case "RANK" where more:
                rank = try c.integer(index + 1)
                if rank == 0 {
                    throw .err(
                        "RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use "
                            + "negative to start from the end of the list"
                    )
                }
            case "COUNT" where more:
                count = try c.integer(index + 1)
                if count < 0 { throw .err("COUNT can't be negative") }
            case "MAXLEN" where more:
                maxLength = try c.integer(index + 1)
                if maxLength < 0 { throw .err("MAXLEN can't be negative") }
            default:
                throw .syntax
            }
            index += 2
        }
        let fromTail = rank < 0
        // (Redis negates in C: the most negative rank stays negative, so the first match is taken.)
        if fromTail { rank = 0 &- rank }
        guard let entry = try c.data.lookup(c.db, c[1], as: .list) else {
            return count != -1 ? .array([]) : .null
        }
        let elements = try c.data.listAll(entry)
        let size = elements.count
        var matches = 0
        var found: [RESPValue] = []
        var position = 0
        while position < size && (maxLength == 0 || position < maxLength) {
            let actual = fromTail ? size - position - 1 : position
            if elements[actual] == c[2] {
                matches += 1
                if matches >= rank {
                    if count == -1 { return .integer(actual) }
                    found.append(.integer(actual))
                    if count != 0 && Int64(matches) - rank + 1 >= count { break }
                }
            }
            position += 1
        }
        return count == -1 ? .null : .array(found)
    }
}
