internal import Foundation
internal import StrataRedisStore
internal import StrataTestSupport
internal import Testing

/// DUMP and RESTORE across the two servers: every type in Redis's compact encodings (integer and LZF strings,
/// intsets, listpacks, quicklists) and its large ones, dumped by redis-server 7.0 and restored in Strata, then
/// dumped by Strata and restored in redis-server, with the same contents each way; RESTORE's errors as Redis's.
@Suite("Redis DUMP/RESTORE against redis-server 7.0")
final class RedisDumpTests {
    let directory = TemporaryDirectory()

    func call(_ client: RESPClient, _ arguments: [[UInt8]]) throws -> RESPReply {
        try client.send(bytes: arguments)
        return try client.read().reply
    }

    func call(_ client: RESPClient, _ arguments: String...) throws -> RESPReply {
        try client.call(arguments)
    }

    /// A value's contents, independent of its encoding.
    func contents(_ client: RESPClient, _ key: String) throws -> String {
        let type = try call(client, "TYPE", key)
        let reply: RESPReply
        switch type {
        case .simple("string"): reply = try call(client, "GET", key)
        case .simple("list"): reply = try call(client, "LRANGE", key, "0", "-1")
        case .simple("set"): reply = try call(client, "SORT", key, "ALPHA")
        case .simple("zset"): reply = try call(client, "ZRANGE", key, "0", "-1", "WITHSCORES")
        case .simple("hash"):
            guard case .array(let items?) = try call(client, "HGETALL", key) else { return "bad hash" }
            return stride(from: 0, to: items.count, by: 2).map { "\(items[$0])=\(items[$0 + 1])" }.sorted()
                .joined(separator: ",")
        default: reply = type
        }
        return "\(type) \(reply)"
    }

    @Test func payloadsMoveBothWays() throws {
        let reference = try ReferenceRedis(directory: directory.appending("redis"))
        let server = try RedisTestServer(sync: "none")
        let redis = try RESPClient(port: reference.port)
        let strata = try server.client()
        var random = SeededRandom(seed: 11)
        let long = String(repeating: "a", count: 5000) + String(repeating: "b", count: 100)
        let fills: [(String, [String])] = [
            ("string", ["SET", "src", "12345"]), ("string", ["SET", "src", "-70000"]),
            ("string", ["SET", "src", String(repeating: "xy", count: 40)]), ("string", ["SET", "src", long]),
            ("string", ["SET", "src", "3.5"]),
        ]
        var commands = fills.map(\.1)
        for size in [1, 5, 200, 900] {
            commands.append(
                ["RPUSH", "src"]
                    + (0..<size).map { index in
                        Int.random(in: 0..<3, using: &random) == 0
                            ? String(Int.random(in: -100_000...100_000, using: &random))
                            : "v\(index)" + String(repeating: "x", count: Int.random(in: 0...80, using: &random))
                    }
            )
            commands.append(
                ["SADD", "src"] + (0..<size).map { _ in String(Int.random(in: -30_000...30_000, using: &random)) }
            )
            commands.append(["SADD", "src"] + (0..<size).map { "m\($0)" })
            commands.append(
                ["ZADD", "src"]
                    + (0..<size).flatMap { index in
                        [["1", "2.5", "-inf", "1e10", "0.1"].randomElement(using: &random)!, "z\(index)"]
                    }
            )
            commands.append(
                ["HSET", "src"]
                    + (0..<size).flatMap { index in
                        [
                            "f\(index)",
                            ["1", "-500", "x", String(repeating: "y", count: 90), "4611686018427387904"]
                                .randomElement(using: &random)!,
                        ]
                    }
            )
        }
        for command in commands {
            _ = try call(redis, "DEL", "src")
            _ = try redis.call(command)
            let expected = try contents(redis, "src")
            guard case .bulk(let payload?) = try call(redis, "DUMP", "src") else {
                Issue.record("no DUMP for \(command.prefix(2))")
                continue
            }
            let restored = try call(
                strata,
                [
                    Array("RESTORE".utf8), Array("k".utf8), Array("0".utf8), payload,
                    Array("REPLACE".utf8),
                ]
            )
            #expect(restored == .simple("OK"), "\(command.prefix(2)): \(restored)")
            #expect(try contents(strata, "k") == expected, "\(command.prefix(2)) into Strata")
            guard case .bulk(let back?) = try call(strata, "DUMP", "k") else {
                Issue.record("no DUMP from Strata")
                continue
            }
            let again = try call(
                redis,
                [
                    Array("RESTORE".utf8), Array("back".utf8), Array("0".utf8), back,
                    Array("REPLACE".utf8),
                ]
            )
            #expect(again == .simple("OK"), "\(command.prefix(2)) back into Redis: \(again)")
            #expect(try contents(redis, "back") == expected, "\(command.prefix(2)) back into Redis")
        }
        // Errors, TTLs and options, the same on both.
        _ = try call(redis, "SET", "busy", "1")
        _ = try call(strata, "SET", "busy", "1")
        guard case .bulk(let payload?) = try call(redis, "DUMP", "back") else { throw RedisTestFailure("no DUMP") }
        var corrupted = payload
        corrupted[corrupted.count - 1] ^= 1
        let cases: [[[UInt8]]] = [
            [Array("RESTORE".utf8), Array("busy".utf8), Array("0".utf8), payload],
            [Array("RESTORE".utf8), Array("n1".utf8), Array("-1".utf8), payload],
            [Array("RESTORE".utf8), Array("n1".utf8), Array("0".utf8), Array("garbage".utf8)],
            [Array("RESTORE".utf8), Array("n1".utf8), Array("0".utf8), corrupted],
            [
                Array("RESTORE".utf8), Array("n1".utf8), Array("0".utf8), payload, Array("IDLETIME".utf8),
                Array("-1".utf8),
            ],
            [
                Array("RESTORE".utf8), Array("n1".utf8), Array("0".utf8), payload, Array("FREQ".utf8),
                Array("300".utf8),
            ],
            [Array("RESTORE".utf8), Array("n1".utf8), Array("0".utf8), payload, Array("NOPE".utf8)],
            [Array("RESTORE".utf8), Array("n2".utf8), Array("1".utf8), payload, Array("ABSTTL".utf8)],
            [Array("EXISTS".utf8), Array("n2".utf8)],
            [
                Array("RESTORE".utf8), Array("n3".utf8), Array("100000".utf8), payload, Array("IDLETIME".utf8),
                Array("5".utf8),
            ],
            [Array("EXISTS".utf8), Array("n3".utf8)],
            [Array("DUMP".utf8), Array("missing".utf8)],
        ]
        for arguments in cases {
            let expected = try call(redis, arguments)
            let actual = try call(strata, arguments)
            #expect(expected == actual, "\(String(decoding: arguments[0], as: UTF8.self)) \(arguments.count)")
        }
        #expect(try call(strata, "PTTL", "n3") != .integer(-1))
    }

    @Test func corruptPayloadsAreErrorsNeverCrashes() throws {
        let payload = RedisDump.dump(.hash([(Array("f".utf8), Array("v".utf8)), (Array("g".utf8), Array("w".utf8))]))
        #expect(
            try RedisDump.restore(payload)
                == .hash([(Array("f".utf8), Array("v".utf8)), (Array("g".utf8), Array("w".utf8))])
        )
        for length in 0..<payload.count {
            #expect(throws: RedisDump.Failure.self) { try RedisDump.restore(Array(payload.prefix(length))) }
        }
        // Flipped bytes with a recomputed checksum reach the decoder: an error or a value, never a crash.
        for index in 0..<(payload.count - 10) {
            var flipped = Array(payload.prefix(payload.count - 8))
            flipped[index] ^= 0xFF
            let crc = RedisDump.crc64(flipped)
            for shift in stride(from: 0, through: 56, by: 8) { flipped.append(UInt8((crc >> UInt64(shift)) & 0xFF)) }
            _ = try? RedisDump.restore(flipped)
        }
        #expect(RedisDump.crc64(Array("123456789".utf8)) == 0xE9C6_D914_C4B8_D9CA)
    }
}
