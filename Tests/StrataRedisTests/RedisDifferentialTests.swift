internal import Foundation
internal import StrataTestSupport
internal import Testing

/// The same commands sent to Strata and to Debian's redis-server 7.0, reply by reply, byte for byte (RESP2 and
/// RESP3). Replies whose order Redis does not define (KEYS, SMEMBERS, HGETALL, …) are compared as sorted multisets.
@Suite("Redis differential (Strata vs redis-server 7.0)")
struct RedisDifferentialTests {
    /// Seeds per protocol version; `STRATA_REDIS_DIFF_SEEDS` runs more.
    static let seeds = Int(ProcessInfo.processInfo.environment["STRATA_REDIS_DIFF_SEEDS"] ?? "") ?? 25
    static let commandsPerSeed = 160

    @Test("random command sequences over every family", arguments: [2, 3])
    func randomSequences(resp: Int) throws {
        let servers = try RedisSideBySide(resp: resp)
        let (expected, actual, strata) = (servers.expected, servers.actual, servers.strata)
        var mismatches: [String] = []
        var compared = 0
        var scripts = 0
        for seed in 0..<Self.seeds {
            var random = SeededRandom(seed: UInt64(seed * 7919 + resp))
            // A seed may end inside MULTI: leave it, then start from empty data in db 0.
            for client in [expected, actual] {
                _ = try client.call("DISCARD")
                _ = try client.call("FLUSHALL")
                _ = try client.call("SELECT", "0")
            }
            var generator = RedisCommandGenerator()
            var history: [String] = []
            for index in 0..<Self.commandsPerSeed {
                let step = generator.next(&random)
                history.append("#\(index) \(step.command.joined(separator: " "))")
                if step.command.first == "EVAL" { scripts += 1 }
                try expected.send(step.command)
                try actual.send(step.command)
                let want = try expected.read()
                let got: (reply: RESPReply, bytes: [UInt8])
                do {
                    got = try actual.read()
                } catch {
                    Issue.record(
                        "strata failed at seed \(seed) #\(index) \(step.command): \(error)\n\(strata.strata.output.suffix(3000))"
                    )
                    return
                }
                compared += 1
                if !Self.same(want, got, step.comparison) {
                    // The earlier commands that named this command's keys: where the two may have diverged.
                    let related = history.dropLast().filter { line in
                        step.command.dropFirst().contains {
                            RedisCommandGenerator.keys.contains($0) && line.contains($0)
                        }
                    }
                    mismatches.append(
                        "seed \(seed) #\(index) resp\(resp) \(step.command.joined(separator: " "))\n"
                            + "  redis:  \(Self.show(want.bytes))\n  strata: \(Self.show(got.bytes))\n"
                            + "  after: \(related.suffix(8).joined(separator: " | "))"
                    )
                }
            }
        }
        #expect(compared == Self.seeds * Self.commandsPerSeed)
        #expect(scripts > Self.seeds, "random scripts were generated")
        #expect(
            mismatches.isEmpty,
            "\(mismatches.count) of \(compared) replies differ:\n\(mismatches.prefix(25).joined(separator: "\n"))"
        )
    }

    static func show(_ bytes: [UInt8]) -> String {
        String(String(decoding: bytes.prefix(300), as: UTF8.self).replacingOccurrences(of: "\r\n", with: "⏎"))
    }

    static func same(
        _ expected: (reply: RESPReply, bytes: [UInt8]),
        _ actual: (reply: RESPReply, bytes: [UInt8]),
        _ comparison: RedisCommandGenerator.Comparison
    ) -> Bool {
        switch comparison {
        case .exact:
            return expected.bytes == actual.bytes
        case .unordered:
            return normalized(expected.reply) == normalized(actual.reply)
        case .shape:
            return shape(expected.reply) == shape(actual.reply)
        case .nearInteger:
            if case .integer(let a) = expected.reply, case .integer(let b) = actual.reply { return abs(a - b) <= 1 }
            return expected.bytes == actual.bytes
        case .transaction(let steps):
            guard case .array(let wanted?) = expected.reply, case .array(let got?) = actual.reply,
                wanted.count == steps.count, got.count == steps.count
            else { return expected.bytes == actual.bytes }
            return zip(zip(wanted, got), steps).allSatisfy { pair, step in
                switch step {
                case .unordered: normalized(pair.0) == normalized(pair.1)
                case .shape: shape(pair.0) == shape(pair.1)
                default: pair.0 == pair.1
                }
            }
        }
    }

    /// Items sorted (maps by pair), recursively one level: the reply's content without its order.
    static func normalized(_ reply: RESPReply) -> RESPReply {
        switch reply {
        case .array(let items?): return .array(items.sorted { $0.description < $1.description })
        case .set(let items): return .set(items.sorted { $0.description < $1.description })
        case .map(let items):
            var pairs: [[RESPReply]] = []
            var index = 0
            while index + 1 < items.count {
                pairs.append([items[index], items[index + 1]])
                index += 2
            }
            pairs.sort { $0[0].description < $1[0].description }
            return .map(pairs.flatMap { $0 })
        default: return reply
        }
    }

    /// The reply's type and size, not its content (random picks).
    static func shape(_ reply: RESPReply) -> String {
        switch reply {
        case .array(let items?): "array \(items.count)"
        case .set(let items): "set \(items.count)"
        case .map(let items): "map \(items.count)"
        case .bulk(let bytes): bytes == nil ? "nil" : "bulk"
        case .error(let text): "error \(text)"
        default: reply.description
        }
    }
}

/// Random Redis commands over a few keys of every type, so types collide (WRONGTYPE), collections empty out and
/// options combine.
struct RedisCommandGenerator {
    indirect enum Comparison {
        case exact, unordered, shape, nearInteger
        /// EXEC: each queued command's reply compared its own way.
        case transaction([Comparison])
    }

    struct Step {
        let command: [String]
        let comparison: Comparison
    }

    private var inMulti = false
    private var queued: [Comparison] = []

    static let keys = ["k0", "k1", "k2", "k3", "k4", "{t}a", "{t}b"]
    static let members = ["a", "b", "c", "d", "e", "1", "2", "10", "-3", "", "x y", "ü"]
    static let values = ["v", "1", "10", "-5", "3.5", "", "0", "abc", "9223372036854775807", "1e3", " 1", "01"]
    static let scores = ["1", "2", "-1", "1.5", "0", "+inf", "-inf", "3", "10", "1e2", "0x10", "abc"]
    static let bounds = ["-inf", "+inf", "0", "1", "(1", "2", "(2", "1.5", "10", "(10", "x"]
    static let lexBounds = ["-", "+", "[a", "(a", "[c", "(c", "[e", "b", "[", "(x"]
    static let indexes = ["0", "1", "-1", "2", "-2", "5", "-100", "100", "x"]

    mutating func next(_ random: inout SeededRandom) -> Step {
        func pick(_ items: [String]) -> String { items.randomElement(using: &random)! }
        func key() -> String { pick(Self.keys) }
        func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &random) < percent }
        func some(_ items: [String], _ range: ClosedRange<Int>) -> [String] {
            (0..<Int.random(in: range, using: &random)).map { _ in pick(items) }
        }
        if inMulti && (queued.count > 4 || chance(15)) {
            inMulti = false
            defer { queued = [] }
            return chance(85)
                ? Step(command: ["EXEC"], comparison: .transaction(queued))
                : Step(command: ["DISCARD"], comparison: .exact)
        }
        if !inMulti && chance(3) {
            inMulti = true
            return Step(command: ["MULTI"], comparison: .exact)
        }
        let family = Int.random(in: 0..<100, using: &random)
        var comparison = Comparison.exact
        let command: [String]
        switch family {
        case 0..<16:
            switch Int.random(in: 0..<22, using: &random) {
            case 0:
                var set = ["SET", key(), pick(Self.values)]
                if chance(30) { set.append(pick(["NX", "XX"])) }
                if chance(20) { set.append("GET") }
                if chance(20) {
                    set +=
                        pick(["EX", "PX", "KEEPTTL", "EXAT"]) == "KEEPTTL"
                        ? ["KEEPTTL"] : ["EX", pick(["1000", "0", "-1", "x"])]
                }
                command = set
            case 1: command = ["GET", key()]
            case 2: command = ["GETSET", key(), pick(Self.values)]
            case 3: command = ["GETDEL", key()]
            case 4: command = ["APPEND", key(), pick(Self.values)]
            case 5: command = ["STRLEN", key()]
            case 6: command = ["INCR", key()]
            case 7: command = ["DECR", key()]
            case 8: command = ["INCRBY", key(), pick(["1", "-2", "100", "x", "9223372036854775807"])]
            case 9: command = ["DECRBY", key(), pick(["1", "-9223372036854775808", "5"])]
            case 10: command = ["INCRBYFLOAT", key(), pick(["1.5", "0.1", "-3", "x", "inf", "5e3", "1e-5"])]
            case 11: command = ["SETNX", key(), pick(Self.values)]
            case 12: command = ["MSET", key(), pick(Self.values), key(), pick(Self.values)]
            case 13: command = ["MSETNX", key(), pick(Self.values), key(), pick(Self.values)]
            case 14: command = ["MGET"] + some(Self.keys, 1...4)
            case 15: command = ["SETRANGE", key(), pick(["0", "2", "5", "-1"]), pick(Self.values)]
            case 16: command = ["GETRANGE", key(), pick(Self.indexes), pick(Self.indexes)]
            case 17:
                command = ["GETEX", key()] + (chance(50) ? [pick(["PERSIST", "EX"])] + [pick(["1000", "0"])] : [])
            case 18: command = ["LCS", key(), key()] + (chance(40) ? [pick(["LEN", "IDX", "IDX WITHMATCHLEN"])] : [])
            case 19: command = ["SETEX", key(), pick(["1000", "0", "x"]), pick(Self.values)]
            case 20: command = ["PSETEX", key(), pick(["100000", "-1"]), pick(Self.values)]
            default: command = ["SUBSTR", key(), pick(Self.indexes), pick(Self.indexes)]
            }
        case 16..<30:
            switch Int.random(in: 0..<19, using: &random) {
            case 0: command = ["DEL"] + some(Self.keys, 1...3)
            case 1: command = ["EXISTS"] + some(Self.keys, 1...3)
            case 2: command = ["TYPE", key()]
            case 3: command = ["RENAME", key(), key()]
            case 4: command = ["RENAMENX", key(), key()]
            case 5:
                let options = chance(40) ? [pick(["NX", "XX", "GT", "LT", "NX XX", "BAD"])] : []
                command = ["EXPIRE", key(), pick(["1000", "2000", "-1", "0", "x"])] + options
                // GT/LT against a deadline set a moment earlier with the same number of seconds compare deadlines
                // a millisecond or two apart, on each server its own: 0 and 1 are both right.
                if options == ["GT"] || options == ["LT"] { comparison = .nearInteger }
            case 6: command = ["PERSIST", key()]
            case 7:
                command = ["TTL", key()]
                comparison = .nearInteger
            case 8: command = ["COPY", key(), key()] + (chance(50) ? ["REPLACE"] : [])
            case 9: command = ["DBSIZE"]
            case 10:
                command = ["KEYS", pick(["*", "k*", "k[0-2]", "?1", "{t}*", "*[^0]"])]
                comparison = .unordered
            case 11: command = ["TOUCH"] + some(Self.keys, 1...3)
            case 12: command = ["UNLINK"] + some(Self.keys, 1...3)
            case 13: command = ["PEXPIRE", key(), pick(["1000000", "-5"])]
            case 14: command = ["EXPIREAT", key(), pick(["1", "99999999999"])]
            case 15: command = ["MOVE", key(), pick(["1", "0", "16", "x"])]
            case 16: command = ["SELECT", pick(["0", "1", "0", "16"])]
            case 17:
                var sort = [pick(["SORT", "SORT_RO"]), key()]
                if chance(40) { sort += ["BY", pick(["k*", "nosort", "{t}*", "k*->a"])] }
                if chance(30) { sort += ["LIMIT", pick(["0", "1", "-1"]), pick(["2", "-1", "0"])] }
                if chance(30) { sort += ["GET", pick(["#", "k*", "k*->b"])] }
                if chance(30) { sort.append(pick(["ASC", "DESC"])) }
                if chance(50) { sort.append("ALPHA") }
                // Ties keep the input order, and a set has none: which elements a LIMIT keeps is not defined.
                let limited = sort.contains("BY") && sort.contains("LIMIT")
                if chance(20) && !limited { sort += ["STORE", key()] }
                command = sort
                if sort.contains("BY") { comparison = limited ? .shape : .unordered }
            default: command = ["OBJECT", "ENCODING", "nokey"]
            }
        case 30..<46:
            switch Int.random(in: 0..<14, using: &random) {
            case 0:
                command =
                    ["HSET", key()]
                    + (0..<Int.random(in: 1...3, using: &random)).flatMap { _ in
                        [pick(Self.members), pick(Self.values)]
                    }
            case 1: command = ["HGET", key(), pick(Self.members)]
            case 2: command = ["HMGET", key()] + some(Self.members, 1...3)
            case 3: command = ["HDEL", key()] + some(Self.members, 1...3)
            case 4: command = ["HLEN", key()]
            case 5: command = ["HEXISTS", key(), pick(Self.members)]
            case 6: command = ["HINCRBY", key(), pick(Self.members), pick(["1", "-5", "x", "9223372036854775807"])]
            case 7: command = ["HINCRBYFLOAT", key(), pick(Self.members), pick(["1.5", "x", "inf", "-0.25"])]
            case 8: command = ["HSETNX", key(), pick(Self.members), pick(Self.values)]
            case 9: command = ["HSTRLEN", key(), pick(Self.members)]
            case 10:
                command = ["HGETALL", key()]
                comparison = .unordered
            case 11:
                command = ["HKEYS", key()]
                comparison = .unordered
            case 12:
                command = ["HVALS", key()]
                comparison = .unordered
            default: command = ["HMSET", key(), pick(Self.members), pick(Self.values)]
            }
        case 46..<56:
            switch Int.random(in: 0..<19, using: &random) {
            case 0: command = [pick(["LPUSH", "RPUSH"]), key()] + some(Self.members, 1...3)
            case 1: command = [pick(["LPUSHX", "RPUSHX"]), key()] + some(Self.members, 1...2)
            case 2:
                command = [pick(["LPOP", "RPOP"]), key()] + (chance(40) ? [pick(["0", "1", "2", "5", "-1"])] : [])
            case 3: command = ["LLEN", key()]
            case 4: command = ["LINDEX", key(), pick(Self.indexes)]
            case 5: command = ["LSET", key(), pick(Self.indexes), pick(Self.members)]
            case 6: command = ["LRANGE", key(), pick(Self.indexes), pick(Self.indexes)]
            case 7: command = ["LTRIM", key(), pick(Self.indexes), pick(Self.indexes)]
            case 8: command = ["LREM", key(), pick(["0", "1", "-1", "2"]), pick(Self.members)]
            case 9:
                command = ["LINSERT", key(), pick(["BEFORE", "AFTER", "X"]), pick(Self.members), pick(Self.members)]
            case 10:
                var lpos = ["LPOS", key(), pick(Self.members)]
                if chance(40) { lpos += ["RANK", pick(["1", "-1", "2", "0"])] }
                if chance(40) { lpos += ["COUNT", pick(["0", "1", "2", "-1"])] }
                if chance(20) { lpos += ["MAXLEN", pick(["0", "2"])] }
                command = lpos
            case 11: command = ["LMOVE", key(), key(), pick(["LEFT", "RIGHT"]), pick(["LEFT", "RIGHT", "UP"])]
            case 12: command = ["RPOPLPUSH", key(), key()]
            case 13:
                command =
                    ["LMPOP", pick(["1", "2", "0"]), key(), key(), pick(["LEFT", "RIGHT"])]
                    + (chance(40) ? ["COUNT", pick(["1", "3", "0"])] : [])
            case 14: command = [pick(["BLPOP", "BRPOP"]), key(), key(), "0.01"]
            case 15: command = ["BLMOVE", key(), key(), "LEFT", "RIGHT", "0.01"]
            case 16: command = ["BLMPOP", "0.01", "2", key(), key(), "LEFT"]
            case 17: command = ["BRPOPLPUSH", key(), key(), "0.01"]
            default: command = ["LRANGE", key(), "0", "-1"]
            }
        case 59..<64:
            // HyperLogLog: the values (GET) must match byte for byte, sparse and dense.
            switch Int.random(in: 0..<9, using: &random) {
            case 0, 1: command = ["PFADD", key()] + some(Self.members, 0...4)
            case 2:
                let base = Int.random(in: 0..<1_000_000, using: &random)
                command = ["PFADD", key()] + (0..<300).map { String(base + $0 * 7) }
            case 3: command = ["PFCOUNT"] + some(Self.keys, 1...3)
            case 4: command = ["PFMERGE", key()] + some(Self.keys, 0...3)
            case 5: command = ["PFDEBUG", pick(["ENCODING", "DECODE", "TODENSE", "GETREG", "NOPE"]), key()]
            case 6: command = ["PFDEBUG", "ENCODING"]
            default: command = ["GET", key()]
            }
        case 56..<59:
            // Geo: scores, positions, distances and searches as Redis computes and formats them.
            let places = [
                ("13.361389", "38.115556"), ("15.087269", "37.502669"), ("-122.27", "37.8"), ("0", "0"),
                ("179.99", "85"), ("-73.98", "40.75"), ("200", "10"),
            ]
            let (lon, lat) = places.randomElement(using: &random)!
            let unit = pick(["m", "km", "mi", "ft", "au"])
            let radius = pick(["0", "50", "200", "5000", "-1", "x", "1000000"])
            var options: [String] = []
            if chance(40) { options.append(pick(["WITHDIST", "WITHHASH", "WITHCOORD"])) }
            if chance(40) { options.append(pick(["ASC", "DESC"])) }
            if chance(30) { options += ["COUNT", pick(["1", "3", "0"])] + (chance(30) ? ["ANY"] : []) }
            switch Int.random(in: 0..<8, using: &random) {
            case 0, 1:
                command =
                    ["GEOADD", key()] + (chance(20) ? [pick(["NX", "XX", "CH"])] : [])
                    + (0..<Int.random(in: 1...3, using: &random)).flatMap { _ in
                        let (x, y) = places.randomElement(using: &random)!
                        return [x, y, pick(Self.members)]
                    }
            case 2:
                command = ["GEODIST", key(), pick(Self.members), pick(Self.members)] + (chance(50) ? [unit] : [])
            case 3: command = [pick(["GEOPOS", "GEOHASH"]), key()] + some(Self.members, 1...3)
            case 4: command = [pick(["GEORADIUS", "GEORADIUS_RO"]), key(), lon, lat, radius, unit] + options
            case 5: command = ["GEORADIUSBYMEMBER", key(), pick(Self.members), radius, unit] + options
            case 6:
                let from = chance(50) ? ["FROMLONLAT", lon, lat] : ["FROMMEMBER", pick(Self.members)]
                let by = chance(50) ? ["BYRADIUS", radius, unit] : ["BYBOX", radius, pick(["10", "300"]), unit]
                command = ["GEOSEARCH", key()] + from + by + options
            default:
                command =
                    ["GEOSEARCHSTORE", key(), key(), "FROMLONLAT", lon, lat, "BYRADIUS", radius, unit]
                    + (chance(50) ? ["STOREDIST"] : []) + (chance(30) ? ["COUNT", "2"] : [])
            }
        case 64..<76:
            switch Int.random(in: 0..<14, using: &random) {
            case 0: command = ["SADD", key()] + some(Self.members, 1...4)
            case 1: command = ["SREM", key()] + some(Self.members, 1...3)
            case 2: command = ["SISMEMBER", key(), pick(Self.members)]
            case 3: command = ["SMISMEMBER", key()] + some(Self.members, 1...3)
            case 4: command = ["SCARD", key()]
            case 5:
                command = ["SMEMBERS", key()]
                comparison = .unordered
            case 6: command = ["SMOVE", key(), key(), pick(Self.members)]
            case 7:
                command = [pick(["SINTER", "SUNION", "SDIFF"])] + some(Self.keys, 1...3)
                comparison = .unordered
            case 8: command = [pick(["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]), key()] + some(Self.keys, 1...3)
            case 9:
                command =
                    ["SINTERCARD", pick(["1", "2", "0", "5"]), key(), key()]
                    + (chance(40) ? ["LIMIT", pick(["0", "1", "-1"])] : [])
            case 10:
                // Random picks would make the two data sets diverge: pop everything (or nothing).
                command = ["SPOP", key(), pick(["100", "0", "-1"])]
                comparison = .unordered
            case 11:
                command = ["SRANDMEMBER", key()] + (chance(70) ? [pick(["0", "1", "10", "-3"])] : [])
                comparison = .shape
            case 12: command = ["SMEMBERS", key(), "extra"]
            default: command = ["SCARD", key()]
            }
        case 92..<100:
            let bitIndexes = ["0", "1", "7", "8", "15", "23", "100", "-1", "x"]
            switch Int.random(in: 0..<8, using: &random) {
            case 0: command = ["SETBIT", key(), pick(bitIndexes), pick(["0", "1", "2"])]
            case 1: command = ["GETBIT", key(), pick(bitIndexes)]
            case 2:
                command =
                    ["BITCOUNT", key()]
                    + (chance(60)
                        ? [pick(Self.indexes), pick(Self.indexes)] + (chance(40) ? [pick(["BIT", "BYTE", "X"])] : [])
                        : [])
            case 3:
                command =
                    ["BITPOS", key(), pick(["0", "1", "2"])]
                    + (chance(60)
                        ? [pick(Self.indexes)]
                            + (chance(50) ? [pick(Self.indexes)] + (chance(40) ? [pick(["BIT", "BYTE"])] : []) : [])
                        : [])
            case 4: command = ["BITOP", pick(["AND", "OR", "XOR", "NOT", "NAND"]), key()] + some(Self.keys, 1...3)
            case 5:
                var field = [pick(["BITFIELD", "BITFIELD_RO"]), key()]
                for _ in 0..<Int.random(in: 1...3, using: &random) {
                    if chance(25) { field += ["OVERFLOW", pick(["WRAP", "SAT", "FAIL", "BAD"])] }
                    let type = pick(["u8", "i8", "u4", "i16", "i64", "u63", "u64", "x3"])
                    let offset = pick(["0", "4", "#1", "13", "-1"])
                    switch Int.random(in: 0..<3, using: &random) {
                    case 0: field += ["GET", type, offset]
                    case 1:
                        field += [
                            "SET", type, offset, pick(["0", "1", "127", "-128", "300", "-1", "9223372036854775807"]),
                        ]
                    default:
                        field += ["INCRBY", type, offset, pick(["1", "-1", "100", "-200", "9223372036854775807"])]
                    }
                }
                command = field
            case 6: command = ["SET", key(), pick(["\u{ff}", "abc", "\u{0}\u{1}", "foobar"])]
            default: command = ["GET", key()]
            }
        case 88..<92:
            command = ["EVAL", Self.randomScript(&random), "0"]
        case 84..<88:
            // Streams with explicit IDs (`*` IDs are the clock's): entries, trimming, groups and their PELs.
            let ids = ["1-1", "2", "2-1", "3-*", "5-0", "0-1", "7", "10-5", "0-0", "x", "18446744073709551615-0"]
            let bounds = ["-", "+", "0", "2", "(2", "3-1", "(5", "10", "x"]
            let groups = ["g1", "g2"]
            let consumers = ["alice", "bob"]
            let fields = ["f", "v", "f2", "v2"]
            switch Int.random(in: 0..<20, using: &random) {
            case 0, 1, 2:
                var xadd = ["XADD", key()]
                if chance(15) { xadd.append("NOMKSTREAM") }
                if chance(20) {
                    xadd += [pick(["MAXLEN", "MINID"]), pick(["=", "~", "="]), pick(["0", "2", "3", "3-0"])]
                }
                command = xadd + [pick(ids)] + Array(fields.prefix(chance(70) ? 2 : 4))
            case 3:
                command =
                    [pick(["XRANGE", "XREVRANGE"]), key(), pick(bounds), pick(bounds)]
                    + (chance(40) ? ["COUNT", pick(["1", "2", "0", "-1"])] : [])
            case 4: command = ["XLEN", key()]
            case 5: command = ["XDEL", key()] + some(ids, 1...2)
            case 6:
                command =
                    ["XTRIM", key(), pick(["MAXLEN", "MINID"]), pick(["=", "~"]), pick(["0", "1", "3", "2-1"])]
                    + (chance(20) ? ["LIMIT", pick(["1", "0"])] : [])
            case 7:
                command =
                    ["XREAD"] + (chance(50) ? ["COUNT", pick(["1", "2"])] : []) + [
                        "STREAMS", key(), pick(["0", "2-0", "$"]),
                    ]
            case 8, 9:
                command =
                    ["XGROUP", "CREATE", key(), pick(groups), pick(["0", "$", "2-0"])]
                    + (chance(40) ? ["MKSTREAM"] : [])
                    + (chance(20) ? ["ENTRIESREAD", pick(["0", "1", "-1", "-5"])] : [])
            case 10:
                command =
                    ["XREADGROUP", "GROUP", pick(groups), pick(consumers)] + (chance(50) ? ["COUNT", "1"] : [])
                    + (chance(20) ? ["NOACK"] : []) + ["STREAMS", key(), pick([">", ">", "0", "2-0"])]
            case 11, 12:
                command =
                    ["XREADGROUP", "GROUP", pick(groups), pick(consumers), "STREAMS", key(), ">"]
            case 13: command = ["XACK", key(), pick(groups)] + some(ids, 1...2)
            case 14:
                command = ["XPENDING", key(), pick(groups)]
            case 15:
                command =
                    ["XPENDING", key(), pick(groups), "-", "+", pick(["10", "1"])]
                    + (chance(50) ? [pick(consumers)] : [])
                comparison = .shape
            case 16:
                command = ["XCLAIM", key(), pick(groups), pick(consumers), "0"] + some(ids, 1...2) + ["JUSTID"]
            case 17:
                command =
                    ["XAUTOCLAIM", key(), pick(groups), pick(consumers), "0", pick(["0", "2-0"])]
                    + (chance(50) ? ["COUNT", pick(["1", "5"])] : []) + ["JUSTID"]
            case 18: command = ["XINFO", "GROUPS", key()]
            default:
                command =
                    [
                        "XGROUP", pick(["SETID", "DESTROY", "CREATECONSUMER", "DELCONSUMER"]), key(), pick(groups),
                    ] + (chance(50) ? [pick(consumers)] : [pick(["0", "$"])])
            }
        default:
            switch Int.random(in: 0..<26, using: &random) {
            case 0:
                var zadd = ["ZADD", key()]
                if chance(25) { zadd.append(pick(["NX", "XX", "GT", "LT", "CH", "INCR"])) }
                if chance(15) { zadd.append(pick(["CH", "GT", "NX"])) }
                zadd += (0..<Int.random(in: 1...3, using: &random)).flatMap { _ in
                    [pick(Self.scores), pick(Self.members)]
                }
                command = zadd
            case 1: command = ["ZINCRBY", key(), pick(Self.scores), pick(Self.members)]
            case 2: command = ["ZREM", key()] + some(Self.members, 1...3)
            case 3: command = ["ZCARD", key()]
            case 4: command = ["ZSCORE", key(), pick(Self.members)]
            case 5: command = ["ZMSCORE", key()] + some(Self.members, 1...3)
            case 6: command = [pick(["ZRANK", "ZREVRANK"]), key(), pick(Self.members)]
            case 7: command = ["ZCOUNT", key(), pick(Self.bounds), pick(Self.bounds)]
            case 8: command = ["ZLEXCOUNT", key(), pick(Self.lexBounds), pick(Self.lexBounds)]
            case 9:
                command =
                    ["ZRANGE", key(), pick(Self.indexes), pick(Self.indexes)] + (chance(40) ? ["WITHSCORES"] : [])
                    + (chance(20) ? ["REV"] : [])
            case 10:
                command =
                    ["ZRANGE", key(), pick(Self.bounds), pick(Self.bounds), "BYSCORE"] + (chance(30) ? ["REV"] : [])
                    + (chance(30) ? ["LIMIT", pick(["0", "1", "-1"]), pick(["1", "2", "-1"])] : [])
                    + (chance(30) ? ["WITHSCORES"] : [])
            case 11:
                command =
                    ["ZRANGE", key(), pick(Self.lexBounds), pick(Self.lexBounds), "BYLEX"] + (chance(30) ? ["REV"] : [])
                    + (chance(20) ? ["LIMIT", "0", "2"] : []) + (chance(10) ? ["WITHSCORES"] : [])
            case 12:
                command =
                    [pick(["ZRANGEBYSCORE", "ZREVRANGEBYSCORE"]), key(), pick(Self.bounds), pick(Self.bounds)]
                    + (chance(30) ? ["WITHSCORES"] : []) + (chance(20) ? ["LIMIT", "1", "2"] : [])
            case 13:
                command = [pick(["ZRANGEBYLEX", "ZREVRANGEBYLEX"]), key(), pick(Self.lexBounds), pick(Self.lexBounds)]
            case 14:
                command =
                    ["ZREVRANGE", key(), pick(Self.indexes), pick(Self.indexes)] + (chance(40) ? ["WITHSCORES"] : [])
            case 15: command = ["ZREMRANGEBYRANK", key(), pick(Self.indexes), pick(Self.indexes)]
            case 16: command = ["ZREMRANGEBYSCORE", key(), pick(Self.bounds), pick(Self.bounds)]
            case 17: command = ["ZREMRANGEBYLEX", key(), pick(Self.lexBounds), pick(Self.lexBounds)]
            case 18:
                command = [pick(["ZPOPMIN", "ZPOPMAX"]), key()] + (chance(50) ? [pick(["0", "1", "2", "-1"])] : [])
            case 19:
                command =
                    ["ZMPOP", pick(["1", "2"]), key(), key(), pick(["MIN", "MAX"])]
                    + (chance(40) ? ["COUNT", pick(["1", "3"])] : [])
            case 20:
                command =
                    [pick(["ZUNION", "ZINTER", "ZDIFF"]), pick(["1", "2", "3", "0"]), key(), key(), key()]
                    + (chance(30) ? ["WITHSCORES"] : [])
            case 21:
                command =
                    [pick(["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]), key(), "2", key(), key()]
                    + (chance(30) ? ["WEIGHTS", pick(["2", "x", "-1"]), "1"] : [])
                    + (chance(30) ? ["AGGREGATE", pick(["SUM", "MIN", "MAX", "AVG"])] : [])
            case 22:
                command =
                    ["ZINTERCARD", pick(["1", "2"]), key(), key()] + (chance(30) ? ["LIMIT", pick(["1", "0"])] : [])
            case 23: command = ["ZRANGESTORE", key(), key(), pick(Self.indexes), pick(Self.indexes)]
            case 24: command = [pick(["BZPOPMIN", "BZPOPMAX"]), key(), "0.01"]
            default: command = ["BZMPOP", "0.01", "1", key(), pick(["MIN", "MAX"])]
            }
        }
        if inMulti { queued.append(comparison) }
        if command.first == "EVAL" { return Step(command: command, comparison: comparison) }
        return Step(
            command: command.flatMap {
                $0.contains(" ") && !Self.members.contains($0) ? $0.split(separator: " ").map(String.init) : [$0]
            },
            comparison: comparison
        )
    }

    /// A small random script: a few random commands through redis.call or redis.pcall (replies Redis does not
    /// order are reduced to their Lua type), sometimes in RESP3 mode, returning one of a few shapes.
    static func randomScript(_ random: inout SeededRandom) -> String {
        var inner = RedisCommandGenerator()
        var lines = ["local r = {}"]
        if Int.random(in: 0..<5, using: &random) == 0 { lines.insert("redis.setresp(3)", at: 0) }
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            var step = inner.next(&random)
            while ["MULTI", "EXEC", "DISCARD"].contains(step.command[0]) { step = inner.next(&random) }
            let function = Int.random(in: 0..<4, using: &random) == 0 ? "redis.call" : "redis.pcall"
            let call = "\(function)(\(step.command.map(luaQuoted).joined(separator: ", ")))"
            if case .exact = step.comparison {
                lines.append("r[#r + 1] = \(call)")
            } else {
                lines.append("r[#r + 1] = type(\(call))")
            }
        }
        lines.append(
            ["return r", "return r[#r]", "return {#r, type(r[1])}", "return redis.status_reply(tostring(#r))"]
                .randomElement(using: &random)!
        )
        return lines.joined(separator: "\n")
    }

    /// A Lua string literal of `text`'s bytes.
    static func luaQuoted(_ text: String) -> String {
        var quoted = "\""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): quoted += "\\\\"
            case UInt8(ascii: "\""): quoted += "\\\""
            case 32..<127: quoted.append(Character(UnicodeScalar(byte)))
            default: quoted += "\\" + String(format: "%03d", byte)
            }
        }
        return quoted + "\""
    }
}
