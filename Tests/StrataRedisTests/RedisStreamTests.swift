internal import Foundation
internal import StrataTestSupport
internal import Testing

/// Streams end to end: blocking reads served by another client's XADD, consumer groups sharing work, and a
/// pending-entries list of 100,000 entries read, summarized, claimed and acknowledged (the random differential
/// compares every stream command's replies with redis-server's; these cover what needs several clients or size).
@Suite("Redis streams")
struct RedisStreamTests {
    static func bulk(_ text: String) -> RESPReply { .bulk(Array(text.utf8)) }

    /// Waits until the server counts `count` blocked clients (a sleep would race a loaded machine).
    static func waitForBlocked(_ client: RESPClient, _ count: Int) throws {
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if case .bulk(let bytes?) = try client.call("INFO", "clients"),
                String(decoding: bytes, as: UTF8.self).contains("blocked_clients:\(count)\r\n")
            {
                return
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        throw RedisTestFailure("never \(count) blocked clients")
    }

    @Test func blockingReadsAreServedByAnotherClientsWrites() throws {
        let strata = try RedisTestServer(sync: "none")
        let writer = try strata.client()
        _ = try writer.call("XADD", "events", "1-1", "old", "x")
        let reader = try strata.client()
        // `$`: only what arrives after the read blocked.
        try reader.send(["XREAD", "BLOCK", "0", "STREAMS", "events", "$"])
        try Self.waitForBlocked(writer, 1)
        _ = try writer.call("XADD", "events", "2-1", "new", "y")
        #expect(
            try reader.read().reply
                == .array([
                    .array([
                        Self.bulk("events"),
                        .array([.array([Self.bulk("2-1"), .array([Self.bulk("new"), Self.bulk("y")])])]),
                    ])
                ])
        )
        // A timeout answers with a null array.
        #expect(try reader.call("XREAD", "BLOCK", "100", "STREAMS", "events", "$") == .array(nil))

        // Two consumers of one group share new entries; each entry goes to exactly one.
        _ = try writer.call("XGROUP", "CREATE", "jobs", "workers", "$", "MKSTREAM")
        let alice = try strata.client()
        let bob = try strata.client()
        try alice.send([
            "XREADGROUP", "GROUP", "workers", "alice", "COUNT", "1", "BLOCK", "10000", "STREAMS", "jobs", ">",
        ])
        try bob.send(["XREADGROUP", "GROUP", "workers", "bob", "COUNT", "1", "BLOCK", "0", "STREAMS", "jobs", ">"])
        try Self.waitForBlocked(writer, 2)
        _ = try writer.call("XADD", "jobs", "1-1", "job", "a")
        _ = try writer.call("XADD", "jobs", "1-2", "job", "b")
        var delivered: [String] = []
        for client in [alice, bob] {
            guard case .array(let streams?) = try client.read().reply, case .array(let pair?) = streams.first,
                case .array(let entries?) = pair.last, case .array(let item?) = entries.first,
                case .bulk(let id?) = item.first
            else {
                Issue.record("no entry delivered")
                continue
            }
            delivered.append(String(decoding: id, as: UTF8.self))
        }
        #expect(delivered.sorted() == ["1-1", "1-2"])
        guard case .array(let summary?) = try writer.call("XPENDING", "jobs", "workers") else {
            Issue.record("no XPENDING summary")
            return
        }
        #expect(summary.first == .integer(2))
        #expect(try writer.call("XACK", "jobs", "workers", "1-1", "1-2") == .integer(2))
        #expect(
            try writer.call("XPENDING", "jobs", "workers")
                == .array([.integer(0), .bulk(nil), .bulk(nil), .array(nil)])
        )
        // Destroying the group ends a blocked read with NOGROUP.
        try alice.send(["XREADGROUP", "GROUP", "workers", "alice", "BLOCK", "0", "STREAMS", "jobs", ">"])
        try Self.waitForBlocked(writer, 1)
        #expect(try writer.call("XGROUP", "DESTROY", "jobs", "workers") == .integer(1))
        guard case .error(let message) = try alice.read().reply else {
            Issue.record("the blocked read did not end")
            return
        }
        #expect(message.hasPrefix("NOGROUP"))
    }

    @Test func aPendingListOfOneHundredThousandEntries() throws {
        let strata = try RedisTestServer(sync: "none")
        let client = try strata.client()
        let count = 100_000
        var pipeline: [UInt8] = []
        for index in 1...count {
            pipeline += RESPClient.encode(
                ["XADD", "big", "\(index)-0", "n", "\(index)"].map { Array($0.utf8) }
            )
        }
        try client.send(raw: pipeline)
        for _ in 0..<count { _ = try client.read() }
        #expect(try client.call("XLEN", "big") == .integer(Int64(count)))
        #expect(try client.call("XGROUP", "CREATE", "big", "g", "0") == .simple("OK"))
        guard case .array(let read?) = try client.call("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "big", ">"),
            case .array(let pair?) = read.first, case .array(let entries?) = pair.last
        else {
            Issue.record("XREADGROUP returned nothing")
            return
        }
        #expect(entries.count == count)
        #expect(
            try client.call("XPENDING", "big", "g")
                == .array([
                    .integer(Int64(count)), Self.bulk("1-0"), Self.bulk("\(count)-0"),
                    .array([.array([Self.bulk("c1"), Self.bulk("\(count)")])]),
                ])
        )
        // The tail of the list by range, one seek.
        guard case .array(let tail?) = try client.call("XPENDING", "big", "g", "(99990", "+", "100") else {
            Issue.record("no XPENDING range")
            return
        }
        #expect(tail.count == 10)
        // Half goes to another consumer, then everything is acknowledged.
        guard
            case .array(let claimed?) = try client.call(
                "XAUTOCLAIM",
                "big",
                "g",
                "c2",
                "0",
                "0",
                "COUNT",
                "50000",
                "JUSTID"
            ), claimed.count == 3, case .array(let ids?) = claimed[1]
        else {
            Issue.record("XAUTOCLAIM failed")
            return
        }
        #expect(ids.count == 50_000)
        #expect(claimed[0] == Self.bulk("50001-0"))
        guard case .array(let consumers?) = try client.call("XINFO", "CONSUMERS", "big", "g") else {
            Issue.record("no XINFO CONSUMERS")
            return
        }
        #expect(consumers.count == 2)
        var acknowledged: Int64 = 0
        for start in stride(from: 1, through: count, by: 10_000) {
            let batch = (start..<(start + 10_000)).map { "\($0)-0" }
            if case .integer(let n) = try client.call(["XACK", "big", "g"] + batch) { acknowledged += n }
        }
        #expect(acknowledged == Int64(count))
        #expect(try client.call("XPENDING", "big", "g") == .array([.integer(0), .bulk(nil), .bulk(nil), .array(nil)]))
        // Approximate trimming removes whole nodes, at most 100 of them (10,000 entries) a call, as Redis does;
        // exact trimming has no bound.
        #expect(try client.call("XTRIM", "big", "MAXLEN", "~", "1000") == .integer(10_000))
        #expect(try client.call("XTRIM", "big", "MAXLEN", "1000") == .integer(89_000))
        #expect(try client.call("XLEN", "big") == .integer(1000))
        #expect(
            try client.call("XRANGE", "big", "-", "+", "COUNT", "1")
                == .array([.array([Self.bulk("99001-0"), .array([Self.bulk("n"), Self.bulk("99001")])])])
        )
    }
}
