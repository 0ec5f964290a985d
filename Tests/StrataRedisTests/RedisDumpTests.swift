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

    /// Streams (several nodes, deleted entries, entries whose fields differ from their node's first, an empty
    /// stream, consumer groups with pending entries, idle consumers and unknown read counts) dumped by Redis restore
    /// in Strata with the same XINFO STREAM FULL (delivery times and seen times included), and back.
    @Test func streamPayloadsMoveBothWays() throws {
        let reference = try ReferenceRedis(directory: directory.appending("redis"))
        let server = try RedisTestServer(sync: "none")
        let redis = try RESPClient(port: reference.port)
        let strata = try server.client()
        var random = SeededRandom(seed: 5)
        _ = try call(redis, "CONFIG", "SET", "stream-node-max-entries", "7")
        for index in 0..<60 {
            var command = ["XADD", "s", "\(index + 1)-\(Int.random(in: 0...3, using: &random))"]
            if Int.random(in: 0..<4, using: &random) == 0 {
                command += ["other", String(repeating: "z", count: Int.random(in: 0...300, using: &random))]
            } else {
                command += ["a", String(Int.random(in: -1_000_000...1_000_000, using: &random)), "b", "v\(index)"]
            }
            _ = try redis.call(command)
        }
        for id in ["3-0", "3-1", "3-2", "3-3", "10-0", "10-1", "10-2", "10-3", "60-0", "60-1", "60-2", "60-3"] {
            _ = try call(redis, "XDEL", "s", id)
        }
        _ = try call(redis, "XGROUP", "CREATE", "s", "g1", "0")
        _ = try call(redis, "XGROUP", "CREATE", "s", "g2", "$")
        _ = try call(redis, "XGROUP", "CREATE", "s", "g3", "20-0")
        _ = try call(redis, "XREADGROUP", "GROUP", "g1", "alice", "COUNT", "4", "STREAMS", "s", ">")
        _ = try call(redis, "XREADGROUP", "GROUP", "g1", "bob", "COUNT", "3", "STREAMS", "s", ">")
        _ = try call(redis, "XREADGROUP", "GROUP", "g3", "carol", "COUNT", "2", "STREAMS", "s", ">")
        _ = try call(redis, "XCLAIM", "s", "g1", "bob", "0", "1-0", "2-0")
        _ = try call(redis, "XGROUP", "CREATECONSUMER", "s", "g1", "idle")
        _ = try call(redis, "XADD", "empty", "1-1", "f", "v")
        _ = try call(redis, "XDEL", "empty", "1-1")
        _ = try call(redis, "XGROUP", "CREATE", "empty", "g", "$")
        func info(_ client: RESPClient, _ key: String) throws -> String {
            var text = try call(client, "XINFO", "STREAM", key, "FULL").description
            // Node counts are each server's own bookkeeping.
            for field in ["radix-tree-keys", "radix-tree-nodes"] {
                text = text.replacingOccurrences(
                    of: "\"\(field)\", :[0-9]+",
                    with: "\"\(field)\", _",
                    options: .regularExpression
                )
            }
            return text
        }
        for key in ["s", "empty"] {
            let expected = try info(redis, key)
            guard case .bulk(let payload?) = try call(redis, "DUMP", key) else { throw RedisTestFailure("no DUMP") }
            let restored = try call(strata, [Array("RESTORE".utf8), Array(key.utf8), Array("0".utf8), payload])
            #expect(restored == .simple("OK"), "\(key): \(restored)")
            #expect(try info(strata, key) == expected, "\(key) into Strata")
            guard case .bulk(let back?) = try call(strata, "DUMP", key) else { throw RedisTestFailure("no DUMP") }
            let again = try call(redis, [Array("RESTORE".utf8), Array("back".utf8), Array("0".utf8), back])
            #expect(again == .simple("OK"), "\(key) back into Redis: \(again)")
            #expect(try info(redis, "back") == expected, "\(key) back")
            _ = try call(redis, "DEL", "back")
            // What the groups do next is the same too (after a COPY, which keeps groups, IDs and counters).
            if key == "s" {
                _ = try call(strata, "COPY", "s", "copied")
                _ = try call(redis, "COPY", "s", "copied")
                #expect(try info(strata, "copied") == info(redis, "copied"))
                for client in [redis, strata] { _ = try call(client, "XADD", key, "100-0", "a", "1") }
                let command = ["XREADGROUP", "GROUP", "g2", "dave", "STREAMS", key, ">"]
                #expect(try redis.call(command) == strata.call(command))
                let pending = ["XPENDING", key, "g1"]  // (the extended form shows idle times)
                #expect(try redis.call(pending) == strata.call(pending))
            }
        }
    }

    /// Payloads of Redis 6 and older (ziplists, a zipmap, a quicklist of ziplists), built here byte by byte, restore
    /// in Strata as Redis 7.0 restores them.
    @Test func legacyPayloadsRestore() throws {
        let reference = try ReferenceRedis(directory: directory.appending("redis"))
        let server = try RedisTestServer(sync: "none")
        let redis = try RESPClient(port: reference.port)
        let strata = try server.client()
        func ziplist(_ entries: [String]) -> [UInt8] {
            var body: [UInt8] = []
            var previous = 0
            var last = 0
            for entry in entries {
                let start = body.count
                last = start
                body.append(UInt8(previous))
                if let value = Int(entry), String(value) == entry, (-32768...32767).contains(value) {
                    if (0...12).contains(value) {
                        body.append(0xF1 + UInt8(value))
                    } else {
                        body.append(0xC0)
                        let bits = UInt16(bitPattern: Int16(value))
                        body += [UInt8(bits & 0xFF), UInt8(bits >> 8)]
                    }
                } else {
                    body.append(UInt8(entry.utf8.count))
                    body += Array(entry.utf8)
                }
                previous = body.count - start
            }
            let total = body.count + 11
            var blob: [UInt8] = []
            for shift in stride(from: 0, through: 24, by: 8) { blob.append(UInt8((total >> shift) & 0xFF)) }
            let tail = 10 + last
            blob += [UInt8(tail & 0xFF), UInt8(tail >> 8), 0, 0, UInt8(entries.count), 0] + body + [0xFF]
            return blob
        }
        func payload(_ type: UInt8, _ blobs: [[UInt8]], count: Bool = false) -> [UInt8] {
            var out: [UInt8] = [type]
            if count { out.append(UInt8(blobs.count)) }
            for blob in blobs {
                out += [0x40 | UInt8(blob.count >> 8), UInt8(blob.count & 0xFF)]
                out += blob
            }
            out += [9, 0]
            let crc = RedisDump.crc64(out)
            for shift in stride(from: 0, through: 56, by: 8) { out.append(UInt8((crc >> UInt64(shift)) & 0xFF)) }
            return out
        }
        let zipmap: [UInt8] =
            [2, 1] + Array("a".utf8) + [2, 0] + Array("xy".utf8) + [3] + Array("key".utf8) + [1, 2]
            + Array("v".utf8) + [0, 0, 0xFF]
        let payloads: [(String, [UInt8])] = [
            ("list ziplist", payload(10, [ziplist(["a", "7", "-300", "hello", "12"])])),
            ("zset ziplist", payload(12, [ziplist(["m1", "1.5", "m2", "3", "m3", "inf"])])),
            ("hash ziplist", payload(13, [ziplist(["f1", "v1", "f2", "200"])])),
            ("quicklist", payload(14, [ziplist(["a", "b"]), ziplist(["1", "c", "-5"])], count: true)),
            ("zipmap", payload(9, [zipmap])),
        ]
        for (name, bytes) in payloads {
            for client in [redis, strata] {
                _ = try call(client, "DEL", "k")
                let reply = try call(client, [Array("RESTORE".utf8), Array("k".utf8), Array("0".utf8), bytes])
                #expect(reply == .simple("OK"), "\(name): \(reply)")
            }
            #expect(try contents(strata, "k") == contents(redis, "k"), "\(name)")
        }
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
        // The same for a stream with a group (listpack nodes, IDs, PEL, consumers): every truncation is an error,
        // every flipped byte an error or a value.
        var stream = RedisDump.Stream()
        for index in 0..<12 {
            let id = RedisStreamID(ms: UInt64(index / 3 + 1), seq: UInt64(index % 3))
            let fields =
                index % 4 == 0 ? [Array("x".utf8), Array("1".utf8)] : [Array("a".utf8), Array("v\(index)".utf8)]
            stream.entries.append(RedisDump.Stream.Entry(id: id, fields: fields, node: UInt64(index / 5 + 1)))
        }
        stream.lastID = stream.entries.last!.id
        stream.firstID = stream.entries.first!.id
        stream.entriesAdded = 12
        stream.groups = [
            RedisDump.Stream.Group(
                name: Array("g".utf8),
                lastDelivered: stream.entries[3].id,
                entriesRead: -1,
                pending: [
                    RedisStreamPending(
                        id: stream.entries[1].id,
                        consumer: Array("c".utf8),
                        deliveryTime: 5,
                        deliveryCount: 2
                    )
                ],
                consumers: [RedisDump.Stream.Consumer(name: Array("c".utf8), seenTime: 7)]
            )
        ]
        let streamPayload = RedisDump.dump(.stream(stream))
        #expect(try RedisDump.restore(streamPayload) == .stream(stream))
        for length in 0..<streamPayload.count {
            #expect(throws: RedisDump.Failure.self) { try RedisDump.restore(Array(streamPayload.prefix(length))) }
        }
        for index in 0..<(streamPayload.count - 10) {
            for mask: UInt8 in [0xFF, 0x01, 0x80] {
                var flipped = Array(streamPayload.prefix(streamPayload.count - 8))
                flipped[index] ^= mask
                let crc = RedisDump.crc64(flipped)
                for shift in stride(from: 0, through: 56, by: 8) {
                    flipped.append(UInt8((crc >> UInt64(shift)) & 0xFF))
                }
                _ = try? RedisDump.restore(flipped)
            }
        }
    }
}
