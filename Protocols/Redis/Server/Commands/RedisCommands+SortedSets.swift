internal import Foundation
internal import StrataRedisStore

/// One end of a score range (`1.5`, `(1.5`, `-inf`).
struct ScoreBound {
    var value: Double
    var exclusive: Bool

    /// Redis's `zslParseRange` item: `strtod` (leading spaces allowed), `(` for exclusive; nil for NaN or junk.
    init?(_ bytes: [UInt8]) {
        var digits = bytes[...]
        exclusive = digits.first == UInt8(ascii: "(")
        if exclusive { digits = digits.dropFirst() }
        var text = Array(digits)
        text.append(0)
        var parsed: Double? = nil
        text.withUnsafeBufferPointer { buffer in
            let start = UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self)
            var end: UnsafeMutablePointer<CChar>? = nil
            let value = strtod(start, &end)
            if let end, end.pointee == 0, !value.isNaN { parsed = value }
        }
        guard let parsed else { return nil }
        value = parsed
    }

    func admitsAsMinimum(_ score: Double) -> Bool { exclusive ? score > value : score >= value }
    func admitsAsMaximum(_ score: Double) -> Bool { exclusive ? score < value : score <= value }
}

/// One end of a lexicographic range (`[a`, `(a`, `-`, `+`).
enum LexBound {
    case minimum, maximum
    case inclusive([UInt8]), exclusive([UInt8])

    init?(_ bytes: [UInt8]) {
        switch bytes.first {
        case UInt8(ascii: "+") where bytes.count == 1: self = .maximum
        case UInt8(ascii: "-") where bytes.count == 1: self = .minimum
        case UInt8(ascii: "["): self = .inclusive(Array(bytes.dropFirst()))
        case UInt8(ascii: "("): self = .exclusive(Array(bytes.dropFirst()))
        default: return nil
        }
    }

    /// Whether a range from `minimum` to `maximum` can hold anything (Redis's first test in `zzlIsInLexRange`).
    static func mayContain(_ minimum: LexBound, _ maximum: LexBound) -> Bool {
        func rank(_ bound: LexBound) -> (Int, [UInt8], Bool) {
            switch bound {
            case .minimum: (0, [], false)
            case .maximum: (2, [], false)
            case .inclusive(let value): (1, value, false)
            case .exclusive(let value): (1, value, true)
            }
        }
        let (lowRank, low, lowExclusive) = rank(minimum)
        let (highRank, high, highExclusive) = rank(maximum)
        if lowRank != highRank { return lowRank < highRank }
        if lowRank != 1 { return true }
        if high.lexicographicallyPrecedes(low) { return false }
        if low == high && (lowExclusive || highExclusive) { return false }
        return true
    }

    func admitsAsMinimum(_ member: [UInt8]) -> Bool {
        switch self {
        case .minimum: true
        case .maximum: false
        case .inclusive(let bound): !member.lexicographicallyPrecedes(bound)
        case .exclusive(let bound): bound.lexicographicallyPrecedes(member)
        }
    }

    func admitsAsMaximum(_ member: [UInt8]) -> Bool {
        switch self {
        case .minimum: false
        case .maximum: true
        case .inclusive(let bound): !bound.lexicographicallyPrecedes(member)
        case .exclusive(let bound): member.lexicographicallyPrecedes(bound)
        }
    }
}

extension RedisCommands {
    static let sortedSets: [(String, RedisCommand.Access, RedisCommandTable.Handler)] = [
        ("zadd", .write, { c throws(RedisError) in try sortedSetAdd(&c, incrementOnly: false) }),
        ("zincrby", .write, { c throws(RedisError) in try sortedSetAdd(&c, incrementOnly: true) }),
        (
            "zrem", .write,
            { c throws(RedisError) in
                guard var entry = try c.data.lookup(c.db, c[1], as: .zset) else { return .integer(0) }
                var removed = 0
                for index in 2..<c.count where try c.data.removeScored(&entry, c[index]) { removed += 1 }
                guard removed > 0 else { return .integer(0) }
                let exists = try c.data.finish(c.db, c[1], entry)
                c.notify("zrem", .zset, c[1])
                if !exists { c.notify("del", .generic, c[1]) }
                return .integer(removed)
            }
        ),
        (
            "zcard", .read,
            { c throws(RedisError) in
                .integer(Int(try c.data.lookup(c.db, c[1], as: .zset)?.metadata.size ?? 0))
            }
        ),
        (
            "zscore", .read,
            { c throws(RedisError) in
                guard let entry = try c.data.lookup(c.db, c[1], as: .zset), let score = try c.data.score(entry, c[2])
                else { return .null }
                return .double(score)
            }
        ),
        (
            "zmscore", .read,
            { c throws(RedisError) in
                let entry = try c.data.lookup(c.db, c[1], as: .zset)
                var scores: [RESPValue] = []
                for index in 2..<c.count {
                    if let entry, let score = try c.data.score(entry, c[index]) {
                        scores.append(.double(score))
                    } else {
                        scores.append(.null)
                    }
                }
                return .array(scores)
            }
        ),
        ("zrank", .read, { c throws(RedisError) in try sortedSetRank(&c, reverse: false) }),
        ("zrevrank", .read, { c throws(RedisError) in try sortedSetRank(&c, reverse: true) }),
        (
            "zcount", .read,
            { c throws(RedisError) in
                guard let minimum = ScoreBound(c[2]), let maximum = ScoreBound(c[3]) else {
                    throw .err("min or max is not a float")
                }
                guard let entry = try c.data.lookup(c.db, c[1], as: .zset) else { return .integer(0) }
                return .integer(try scored(&c, entry, .score(minimum, maximum), reverse: false).count)
            }
        ),
        (
            "zlexcount", .read,
            { c throws(RedisError) in
                guard let minimum = LexBound(c[2]), let maximum = LexBound(c[3]) else {
                    throw .err("min or max not valid string range item")
                }
                guard let entry = try c.data.lookup(c.db, c[1], as: .zset) else { return .integer(0) }
                return .integer(try scored(&c, entry, .lex(minimum, maximum), reverse: false).count)
            }
        ),
        ("zrange", .read, { c throws(RedisError) in try sortedSetRange(&c, .auto, reverse: nil, store: false) }),
        ("zrangestore", .write, { c throws(RedisError) in try sortedSetRange(&c, .auto, reverse: nil, store: true) }),
        ("zrevrange", .read, { c throws(RedisError) in try sortedSetRange(&c, .rank, reverse: true, store: false) }),
        (
            "zrangebyscore", .read,
            { c throws(RedisError) in
                try sortedSetRange(&c, .byScore, reverse: false, store: false)
            }
        ),
        (
            "zrevrangebyscore", .read,
            { c throws(RedisError) in
                try sortedSetRange(&c, .byScore, reverse: true, store: false)
            }
        ),
        (
            "zrangebylex", .read,
            { c throws(RedisError) in try sortedSetRange(&c, .byLex, reverse: false, store: false) }
        ),
        (
            "zrevrangebylex", .read,
            { c throws(RedisError) in
                try sortedSetRange(&c, .byLex, reverse: true, store: false)
            }
        ),
        (
            "zremrangebyrank", .write,
            { c throws(RedisError) in
                let start = try c.integer(2)
                let stop = try c.integer(3)
                return try removeRange(&c, event: "zremrangebyrank") { c, entry throws(RedisError) in
                    let (from, through) = clampRange(start, stop, size: entry.metadata.size)
                    guard from <= through else { return [] }
                    return Array(try scored(&c, entry, .all, reverse: false)[Int(from)...Int(through)])
                }
            }
        ),
        (
            "zremrangebyscore", .write,
            { c throws(RedisError) in
                guard let minimum = ScoreBound(c[2]), let maximum = ScoreBound(c[3]) else {
                    throw .err("min or max is not a float")
                }
                return try removeRange(&c, event: "zremrangebyscore") { c, entry throws(RedisError) in
                    try scored(&c, entry, .score(minimum, maximum), reverse: false)
                }
            }
        ),
        (
            "zremrangebylex", .write,
            { c throws(RedisError) in
                guard let minimum = LexBound(c[2]), let maximum = LexBound(c[3]) else {
                    throw .err("min or max not valid string range item")
                }
                return try removeRange(&c, event: "zremrangebylex") { c, entry throws(RedisError) in
                    try scored(&c, entry, .lex(minimum, maximum), reverse: false)
                }
            }
        ),
        ("zpopmin", .write, { c throws(RedisError) in try sortedSetPop(&c, max: false) }),
        ("zpopmax", .write, { c throws(RedisError) in try sortedSetPop(&c, max: true) }),
        ("bzpopmin", .write, { c throws(RedisError) in try blockingSortedSetPop(&c, max: false) }),
        ("bzpopmax", .write, { c throws(RedisError) in try blockingSortedSetPop(&c, max: true) }),
        ("zmpop", .write, { c throws(RedisError) in try sortedSetMultiPop(&c, numkeysIndex: 1, blocking: false) }),
        ("bzmpop", .write, { c throws(RedisError) in try sortedSetMultiPop(&c, numkeysIndex: 2, blocking: true) }),
        ("zrandmember", .read, { c throws(RedisError) in try sortedSetRandomMember(&c) }),
        ("zunion", .read, { c throws(RedisError) in try sortedSetAlgebra(&c, .union, store: false) }),
        ("zinter", .read, { c throws(RedisError) in try sortedSetAlgebra(&c, .inter, store: false) }),
        ("zdiff", .read, { c throws(RedisError) in try sortedSetAlgebra(&c, .diff, store: false) }),
        ("zunionstore", .write, { c throws(RedisError) in try sortedSetAlgebra(&c, .union, store: true) }),
        ("zinterstore", .write, { c throws(RedisError) in try sortedSetAlgebra(&c, .inter, store: true) }),
        ("zdiffstore", .write, { c throws(RedisError) in try sortedSetAlgebra(&c, .diff, store: true) }),
        (
            "zintercard", .read,
            { c throws(RedisError) in try sortedSetAlgebra(&c, .inter, store: false, cardinality: true) }
        ),
        (
            "zscan", .read,
            { c throws(RedisError) in
                try scanCollection(&c, .zset) { member, value in
                    let score = value.count == 8 ? RedisData.decodeScore(value) : 0
                    return [.bulk(member), .bulk(RESPValue.format(score))]
                }
            }
        ),
    ]

    enum ScoredRange {
        case all
        case score(ScoreBound, ScoreBound)
        case lex(LexBound, LexBound)
    }

    /// Members of `entry` in `range`, in score order (reversed with `reverse`).
    static func scored(_ c: inout RedisInvocation, _ entry: RedisData.Entry, _ range: ScoredRange, reverse: Bool)
        throws(RedisError) -> [(member: [UInt8], score: Double)]
    {
        var found: [(member: [UInt8], score: Double)] = []
        switch range {
        case .all:
            try c.data.forEachScored(entry, reverse: reverse) { member, score throws(RedisError) in
                found.append((member, score))
                return true
            }
        case .score(let minimum, let maximum):
            if minimum.value > maximum.value { return [] }
            try c.data.forEachScored(entry, reverse: reverse, from: minimum.value, through: maximum.value) {
                member,
                score throws(RedisError) in
                if minimum.admitsAsMinimum(score) && maximum.admitsAsMaximum(score) { found.append((member, score)) }
                return true
            }
        case .lex(let minimum, let maximum):
            // Lexicographic ranges assume every member has the same score; with mixed scores Redis answers what
            // its walk finds (in score order: the first member past the start bound, then members while the end
            // bound holds), and so does Strata.
            var all: [(member: [UInt8], score: Double)] = []
            try c.data.forEachScored(entry) { member, score throws(RedisError) in
                all.append((member, score))
                return true
            }
            guard LexBound.mayContain(minimum, maximum), let first = all.first, let last = all.last,
                minimum.admitsAsMinimum(last.member), maximum.admitsAsMaximum(first.member)
            else { return [] }
            if reverse {
                guard let start = all.lastIndex(where: { maximum.admitsAsMaximum($0.member) }),
                    minimum.admitsAsMinimum(all[start].member)
                else { return [] }
                for item in all[...start].reversed() {
                    guard minimum.admitsAsMinimum(item.member) else { break }
                    found.append(item)
                }
            } else {
                guard let start = all.firstIndex(where: { minimum.admitsAsMinimum($0.member) }),
                    maximum.admitsAsMaximum(all[start].member)
                else { return [] }
                for item in all[start...] {
                    guard maximum.admitsAsMaximum(item.member) else { break }
                    found.append(item)
                }
            }
        }
        return found
    }

    /// Members with scores, as WITHSCORES replies carry them (RESP3: [member, score] pairs).
    static func withScores(_ c: RedisInvocation, _ items: [(member: [UInt8], score: Double)]) -> RESPValue {
        if c.session.resp == 3 { return .array(items.map { .array([.bulk($0.member), .double($0.score)]) }) }
        return .array(items.flatMap { [RESPValue.bulk($0.member), .double($0.score)] })
    }

    private static func sortedSetAdd(_ c: inout RedisInvocation, incrementOnly: Bool) throws(RedisError) -> RESPValue {
        var nx = false
        var xx = false
        var gt = false
        var lt = false
        var ch = false
        var increment = incrementOnly
        var index = 2
        if !incrementOnly {
            scanning: while index < c.count {
                switch c.option(index) {
                case "NX": nx = true
                case "XX": xx = true
                case "GT": gt = true
                case "LT": lt = true
                case "CH": ch = true
                case "INCR": increment = true
                default: break scanning
                }
                index += 1
            }
        }
        let elements = c.count - index
        if elements % 2 != 0 || elements == 0 { throw .syntax }
        if nx && xx { throw .err("XX and NX options at the same time are not compatible") }
        if (gt && nx) || (lt && nx) || (gt && lt) {
            throw .err("GT, LT, and/or NX options at the same time are not compatible")
        }
        if increment && elements > 2 { throw .err("INCR option supports a single increment-element pair") }
        var scores: [Double] = []
        for pair in stride(from: index, to: c.count, by: 2) { scores.append(try c.double(pair)) }
        let existing = try c.data.lookup(c.db, c[1], as: .zset)
        if existing == nil && xx { return increment ? .null : .integer(0) }
        var entry = existing ?? c.data.newCollection(.zset)
        var added = 0
        var updated = 0
        var processed = 0
        var lastScore = 0.0
        for (offset, pair) in stride(from: index, to: c.count, by: 2).enumerated() {
            let member = c[pair + 1]
            var score = scores[offset]
            if let current = try c.data.score(entry, member) {
                if nx { continue }
                if increment {
                    score += current
                    if score.isNaN { throw .notANumberScore }
                }
                if (lt && score >= current) || (gt && score <= current) { continue }
                processed += 1
                lastScore = score
                if score != current {
                    try c.data.setScore(&entry, member, score, old: current)
                    updated += 1
                }
            } else {
                if xx { continue }
                if score.isNaN { throw .notANumberScore }
                try c.data.setScore(&entry, member, score, old: nil)
                added += 1
                processed += 1
                lastScore = score
            }
        }
        if added + updated > 0 {
            try c.data.finish(c.db, c[1], entry)
            c.notify(increment ? "zincr" : "zadd", .zset, c[1])
        }
        if increment { return processed > 0 ? .double(lastScore) : .null }
        return .integer(ch ? added + updated : added)
    }

    private static func sortedSetRank(_ c: inout RedisInvocation, reverse: Bool) throws(RedisError) -> RESPValue {
        guard let entry = try c.data.lookup(c.db, c[1], as: .zset),
            let (rank, _) = try c.data.rank(entry, c[2], reverse: reverse)
        else { return .null }
        return .integer(rank)
    }

    enum RangeKind { case auto, rank, byScore, byLex }

    /// ZRANGE and its older forms (ZREVRANGE, ZRANGEBYSCORE, …), and ZRANGESTORE (`store`: argument 1 is the
    /// destination).
    private static func sortedSetRange(
        _ c: inout RedisInvocation,
        _ kind: RangeKind,
        reverse fixedReverse: Bool?,
        store: Bool
    )
        throws(RedisError) -> RESPValue
    {
        let keyIndex = store ? 2 : 1
        var kind = kind
        var reverse = fixedReverse
        var withScoresOption = false
        var offset = 0
        var limit = -1
        var index = keyIndex + 3
        while index < c.count {
            let left = c.count - index - 1
            switch c.option(index) {
            case "WITHSCORES" where !store: withScoresOption = true
            case "LIMIT" where left >= 2:
                offset = Int(try c.integer(index + 1))
                limit = Int(try c.integer(index + 2))
                index += 2
            case "REV" where fixedReverse == nil: reverse = true
            case "BYLEX" where kind == .auto: kind = .byLex
            case "BYSCORE" where kind == .auto: kind = .byScore
            default: throw .syntax
            }
            index += 1
        }
        let descending = reverse ?? false
        if kind == .auto { kind = .rank }
        if limit != -1 && kind == .rank {
            throw .err("syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
        }
        if withScoresOption && kind == .byLex {
            throw .err("syntax error, WITHSCORES not supported in combination with BYLEX")
        }
        var minIndex = keyIndex + 1
        var maxIndex = keyIndex + 2
        if descending && kind != .rank { swap(&minIndex, &maxIndex) }
        var range = ScoredRange.all
        var start: Int64 = 0
        var stop: Int64 = 0
        switch kind {
        case .rank, .auto:
            start = try c.integer(minIndex)
            stop = try c.integer(maxIndex)
        case .byScore:
            guard let minimum = ScoreBound(c[minIndex]), let maximum = ScoreBound(c[maxIndex]) else {
                throw .err("min or max is not a float")
            }
            range = .score(minimum, maximum)
        case .byLex:
            guard let minimum = LexBound(c[minIndex]), let maximum = LexBound(c[maxIndex]) else {
                throw .err("min or max not valid string range item")
            }
            range = .lex(minimum, maximum)
        }
        var items: [(member: [UInt8], score: Double)] = []
        if let entry = try c.data.lookup(c.db, c[keyIndex], as: .zset) {
            if kind == .rank {
                let (from, through) = clampRange(start, stop, size: entry.metadata.size)
                if from <= through {
                    items = Array(try scored(&c, entry, .all, reverse: descending)[Int(from)...Int(through)])
                }
            } else {
                items = try scored(&c, entry, range, reverse: descending)
                if offset < 0 {
                    items = []
                } else {
                    items = Array(items.dropFirst(offset))
                    if limit >= 0 { items = Array(items.prefix(limit)) }
                }
            }
        }
        if store {
            var target = c.data.newCollection(.zset)
            for item in items { try c.data.setScore(&target, item.member, item.score, old: nil) }
            let existed = try c.data.lookup(c.db, c[1]) != nil
            try c.data.replace(c.db, c[1], with: target)
            if !items.isEmpty {
                c.notify("zrangestore", .zset, c[1])
            } else if existed {
                c.notify("del", .generic, c[1])
            }
            return .integer(items.count)
        }
        return withScoresOption ? withScores(c, items) : .array(items.map { .bulk($0.member) })
    }

    private static func removeRange(
        _ c: inout RedisInvocation,
        event: String,
        _ select: (inout RedisInvocation, RedisData.Entry) throws(RedisError) -> [(member: [UInt8], score: Double)]
    ) throws(RedisError) -> RESPValue {
        guard var entry = try c.data.lookup(c.db, c[1], as: .zset) else { return .integer(0) }
        let doomed = try select(&c, entry)
        guard !doomed.isEmpty else { return .integer(0) }
        for item in doomed { _ = try c.data.removeScored(&entry, item.member) }
        let exists = try c.data.finish(c.db, c[1], entry)
        c.notify(event, .zset, c[1])
        if !exists { c.notify("del", .generic, c[1]) }
        return .integer(doomed.count)
    }

    /// Pops up to `count` members from one end; the popped members with scores.
    static func popScored(_ c: inout RedisInvocation, _ key: [UInt8], _ entry: RedisData.Entry, max: Bool, count: Int)
        throws(RedisError) -> [(member: [UInt8], score: Double)]
    {
        var entry = entry
        var popped: [(member: [UInt8], score: Double)] = []
        try c.data.forEachScored(entry, reverse: max) { member, score throws(RedisError) in
            popped.append((member, score))
            return popped.count < count
        }
        for item in popped { _ = try c.data.removeScored(&entry, item.member) }
        let exists = try c.data.finish(c.db, key, entry)
        c.notify(max ? "zpopmax" : "zpopmin", .zset, key)
        if !exists { c.notify("del", .generic, key) }
        return popped
    }

    private static func sortedSetPop(_ c: inout RedisInvocation, max: Bool) throws(RedisError) -> RESPValue {
        if c.count > 3 { throw .syntax }
        let hasCount = c.count == 3
        let count = hasCount ? try c.positiveCount(2) : 1
        guard let entry = try c.data.lookup(c.db, c[1], as: .zset), count > 0 else { return .array([]) }
        let popped = try popScored(&c, c[1], entry, max: max, count: count)
        if !hasCount || c.session.resp == 2 {
            return .array(popped.flatMap { [RESPValue.bulk($0.member), .double($0.score)] })
        }
        return withScores(c, popped)
    }

    private static func blockingSortedSetPop(_ c: inout RedisInvocation, max: Bool) throws(RedisError) -> RESPValue {
        let blockTimeout = try timeout(c, c.count - 1)
        let keys = Array(c.arguments[1..<(c.count - 1)])
        for key in keys {
            guard let entry = try c.data.lookup(c.db, key, as: .zset) else { continue }
            let popped = try popScored(&c, key, entry, max: max, count: 1)
            guard let item = popped.first else { continue }
            return .array([.bulk(key), .bulk(item.member), .double(item.score)])
        }
        if !c.inTransaction { c.block = RedisBlockRequest(keys: keys, timeout: blockTimeout) }
        return .nullArray
    }

    private static func sortedSetMultiPop(_ c: inout RedisInvocation, numkeysIndex: Int, blocking: Bool)
        throws(RedisError) -> RESPValue
    {
        let blockTimeout = blocking ? try timeout(c, 1) : 0
        let (keys, min, count) = try multiPopArguments(c, numkeysIndex: numkeysIndex, sides: ("MIN", "MAX"))
        for key in keys {
            guard let entry = try c.data.lookup(c.db, key, as: .zset) else { continue }
            let popped = try popScored(&c, key, entry, max: !min, count: count)
            return .array([.bulk(key), .array(popped.map { .array([.bulk($0.member), .double($0.score)]) })])
        }
        if blocking && !c.inTransaction { c.block = RedisBlockRequest(keys: keys, timeout: blockTimeout) }
        return .nullArray
    }

    private static func sortedSetRandomMember(_ c: inout RedisInvocation) throws(RedisError) -> RESPValue {
        if c.count >= 3 {
            let count = try randomCount(c, 2)
            var scoresWanted = false
            if c.count > 4 || (c.count == 4 && c.option(3) != "WITHSCORES") { throw .syntax }
            if c.count == 4 {
                scoresWanted = true
                if count < -Int64.max / 2 || count > Int64.max / 2 { throw .err("value is out of range") }
            }
            guard let entry = try c.data.lookup(c.db, c[1], as: .zset), count != 0 else { return .array([]) }
            let picks = randomPicks(try scored(&c, entry, .all, reverse: false), count: count)
            return scoresWanted ? withScores(c, picks) : .array(picks.map { .bulk($0.member) })
        }
        guard let entry = try c.data.lookup(c.db, c[1], as: .zset),
            let pick = try scored(&c, entry, .all, reverse: false).randomElement()
        else { return .null }
        return .bulk(pick.member)
    }

    /// ZUNION/ZINTER/ZDIFF (and STORE, and ZINTERCARD): numkeys key… [WEIGHTS w…] [AGGREGATE SUM|MIN|MAX]
    /// [WITHSCORES] / [LIMIT n]. Plain sets count as members with score 1.
    private static func sortedSetAlgebra(
        _ c: inout RedisInvocation,
        _ operation: SetOperation,
        store: Bool,
        cardinality: Bool = false
    ) throws(RedisError) -> RESPValue {
        let numkeysIndex = store ? 2 : 1
        let name = c.text(0).lowercased()
        let numkeys = try c.integer(numkeysIndex)
        if numkeys < 1 { throw .err("at least 1 input key is needed for '\(name)' command") }
        if numkeys > Int64(c.count - numkeysIndex - 1) { throw .syntax }
        let keys = Array(c.arguments[(numkeysIndex + 1)...(numkeysIndex + Int(numkeys))])
        var sources: [RedisData.Entry?] = []
        for key in keys {
            let entry = try c.data.lookup(c.db, key)
            if let entry, entry.type != .zset && entry.type != .set { throw .wrongType }
            sources.append(entry)
        }
        var weights = [Double](repeating: 1, count: keys.count)
        var aggregate = "SUM"
        var withScoresOption = false
        var limit: Int64 = 0
        var index = numkeysIndex + Int(numkeys) + 1
        while index < c.count {
            let remaining = c.count - index
            let option = c.option(index)
            if operation != .diff && !cardinality && remaining >= keys.count + 1 && option == "WEIGHTS" {
                for offset in 0..<keys.count {
                    guard let weight = RedisNumber.parseDouble(c[index + 1 + offset]) else {
                        throw .err("weight value is not a float")
                    }
                    weights[offset] = weight
                }
                index += keys.count + 1
            } else if operation != .diff && !cardinality && remaining >= 2 && option == "AGGREGATE" {
                aggregate = c.option(index + 1)
                guard ["SUM", "MIN", "MAX"].contains(aggregate) else { throw .syntax }
                index += 2
            } else if remaining >= 1 && !store && !cardinality && option == "WITHSCORES" {
                withScoresOption = true
                index += 1
            } else if cardinality && remaining >= 2 && option == "LIMIT" {
                // Redis answers a LIMIT that is not a number like a negative one.
                guard let value = RedisNumber.parseInteger(c[index + 1]), value >= 0 else {
                    throw .err("LIMIT can't be negative")
                }
                limit = value
                index += 2
            } else {
                throw .syntax
            }
        }
        func members(_ entry: RedisData.Entry?, _ c: inout RedisInvocation) throws(RedisError) -> [(
            member: [UInt8], score: Double
        )] {
            guard let entry else { return [] }
            if entry.type == .set { return try c.data.members(entry).map { ($0.member, 1.0) } }
            return try scored(&c, entry, .all, reverse: false)
        }
        func combine(_ total: Double, _ value: Double) -> Double {
            switch aggregate {
            case "MIN": return min(total, value)
            case "MAX": return max(total, value)
            default:
                let sum = total + value
                return sum.isNaN ? 0 : sum
            }
        }
        func weighted(_ score: Double, _ weight: Double) -> Double {
            let value = score * weight
            return value.isNaN ? 0 : value
        }
        var result: [[UInt8]: Double] = [:]
        switch operation {
        case .union:
            for (offset, source) in sources.enumerated() {
                for (member, score) in try members(source, &c) {
                    let value = weighted(score, weights[offset])
                    result[member] = result[member].map { combine($0, value) } ?? value
                }
            }
        case .inter:
            if !sources.contains(where: { $0 == nil }) {
                let order = sources.indices.sorted { sources[$0]!.metadata.size < sources[$1]!.metadata.size }
                let first = order[0]
                candidates: for (member, score) in try members(sources[first], &c) {
                    var total = weighted(score, weights[first])
                    for other in order.dropFirst() {
                        let entry = sources[other]!
                        let otherScore: Double?
                        if entry.type == .set {
                            otherScore = try c.data.member(entry, member) == nil ? nil : 1
                        } else {
                            otherScore = try c.data.score(entry, member)
                        }
                        guard let otherScore else { continue candidates }
                        total = combine(total, weighted(otherScore, weights[other]))
                    }
                    result[member] = total
                    if cardinality && limit > 0 && Int64(result.count) >= limit { break }
                }
            }
        case .diff:
            for (member, score) in try members(sources[0], &c) {
                var elsewhere = false
                for source in sources.dropFirst() {
                    guard let source else { continue }
                    let present =
                        source.type == .set
                        ? try c.data.member(source, member) != nil
                        : try c.data.score(source, member) != nil
                    if present {
                        elsewhere = true
                        break
                    }
                }
                if !elsewhere { result[member] = score }
            }
        }
        if cardinality { return .integer(result.count) }
        let ordered = result.map { (member: $0.key, score: $0.value) }.sorted {
            $0.score != $1.score ? $0.score < $1.score : $0.member.lexicographicallyPrecedes($1.member)
        }
        if store {
            var target = c.data.newCollection(.zset)
            for item in ordered { try c.data.setScore(&target, item.member, item.score, old: nil) }
            let existed = try c.data.lookup(c.db, c[1]) != nil
            try c.data.replace(c.db, c[1], with: target)
            if !ordered.isEmpty {
                c.notify(name, .zset, c[1])
            } else if existed {
                c.notify("del", .generic, c[1])
            }
            return .integer(ordered.count)
        }
        return withScoresOption ? withScores(c, ordered) : .array(ordered.map { .bulk($0.member) })
    }
}
