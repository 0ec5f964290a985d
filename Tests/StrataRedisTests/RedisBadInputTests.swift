internal import Foundation
internal import StrataTestSupport
internal import Testing

/// Hostile and broken clients against the real binary: each gets Redis's error or a disconnect, the server keeps
/// serving everyone else, and its memory stays bounded.
@Suite("Redis: bad input and bad clients", .serialized)
final class RedisBadInputTests {
    let server: RedisTestServer

    init() throws { server = try RedisTestServer(sync: "none") }

    /// Resident memory of the server process, in bytes.
    func residentBytes() -> Int {
        let status =
            (try? String(contentsOfFile: "/proc/\(server.strata.process.processIdentifier)/status", encoding: .utf8))
            ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
    }

    func assertServing(_ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(try server.client().call("PING") == .simple("PONG"), comment, sourceLocation: sourceLocation)
    }

    /// Declared lengths are checked before anything is allocated for them; allowed ones allocate as bytes arrive.
    @Test func hugeDeclaredLengthsAllocateNothingUpFront() throws {
        let before = residentBytes()
        let cases: [(String, String)] = [
            ("*-99999999999999999999\r\n", "-ERR Protocol error: invalid multibulk length\r\n"),
            ("*1\r\n$99999999999999999999\r\n", "-ERR Protocol error: invalid bulk length\r\n"),
            ("*1\r\n$536870913\r\n", "-ERR Protocol error: invalid bulk length\r\n"),
            ("*99999999999999999999\r\n", "-ERR Protocol error: invalid multibulk length\r\n"),
            ("*1\r\n*1\r\n*1\r\n", "-ERR Protocol error: expected '$', got '*'\r\n"),
        ]
        for (input, reply) in cases {
            let client = try server.client()
            try client.send(raw: Array(input.utf8))
            #expect(String(decoding: client.drain(milliseconds: 300), as: UTF8.self) == reply, "\(input)")
            #expect(client.isClosed(timeoutSeconds: 2), "\(input): still open")
        }
        // Allowed sizes, announced and never sent, by many connections at once.
        var idle: [RESPClient] = []
        for _ in 0..<50 {
            let client = try server.client()
            try client.send(raw: Array("*2147483647\r\n$536870912\r\nabc".utf8))
            idle.append(client)
        }
        try assertServing("after 50 connections announcing 512 MB arguments")
        let grown = residentBytes() - before
        #expect(grown < 200 << 20, "resident memory grew by \(grown >> 20) MiB")
        _ = idle
    }

    @Test func randomGarbageNeverCrashesOrHangs() throws {
        var random = SeededRandom(seed: 42)
        let alphabet = Array("*$+-:\r\n0123456789-abcSETGET ".utf8)
        for round in 0..<300 {
            let client = try server.client()
            let length = Int(random.next() % 200) + 1
            let bytes = (0..<length).map { _ in
                random.next() % 4 == 0
                    ? UInt8(truncatingIfNeeded: random.next()) : alphabet[Int(random.next() % UInt64(alphabet.count))]
            }
            try? client.send(raw: bytes)
            _ = client.drain(milliseconds: 5)
            if round % 50 == 0 { try assertServing("after garbage round \(round)") }
        }
        try assertServing()
    }

    /// Redis's `timeout`: an idle client is closed; a subscriber is not.
    @Test func idleClientsAreClosedAfterTheTimeout() throws {
        let admin = try server.client()
        let idle = try server.client()
        let subscriber = try server.client()
        _ = try subscriber.call("SUBSCRIBE", "news")
        _ = try admin.call("CONFIG", "SET", "timeout", "1")
        #expect(idle.isClosed(timeoutSeconds: 5), "an idle client outlived timeout")
        #expect(admin.isClosed(timeoutSeconds: 1), "an idle client outlived timeout")
        let next = try server.client()
        #expect(try next.call("CONFIG", "SET", "timeout", "0") == .simple("OK"))
        #expect(try next.call("PUBLISH", "news", "still here") == .integer(1))
    }

    /// A subscriber that stops reading goes once it has stayed over the pubsub soft limit for its time, even when
    /// nothing more is published (Redis's client cron): publishing stops as soon as it is over the limit.
    @Test func subscriberOverTheSoftLimitGoesWhenTrafficStops() throws {
        let admin = try server.client()
        _ = try admin.call("CONFIG", "SET", "client-output-buffer-limit", "pubsub 0 100000 2")
        defer { _ = try? admin.call("CONFIG", "SET", "client-output-buffer-limit", "pubsub 32mb 8mb 60") }
        let subscriber = try server.client()
        _ = try subscriber.call("CLIENT", "SETNAME", "slow_reader")
        try subscriber.send(["SUBSCRIBE", "firehose"])
        _ = try subscriber.read()
        func line() throws -> Substring? {
            (try admin.call("CLIENT", "LIST").text ?? "").split(separator: "\n").first {
                $0.contains("name=slow_reader")
            }
        }
        let message = String(repeating: "x", count: 1000)
        var overLimit = false
        for _ in 0..<200_000 where !overLimit {
            _ = try admin.call("PUBLISH", "firehose", message)
            guard let current = try line() else { break }
            let omem =
                current.split(separator: " ").first { $0.hasPrefix("omem=") }.flatMap { Int($0.dropFirst(5)) } ?? 0
            overLimit = omem > 100_000
        }
        #expect(overLimit, "the subscriber's unsent output never passed the soft limit")
        let started = Date()
        var gone = false
        while !gone && Date().timeIntervalSince(started) < 10 {
            gone = try line() == nil
            if !gone { usleep(100_000) }
        }
        #expect(gone, "the subscriber over its soft limit stayed connected with no traffic")
    }

    /// A client that pipelines reads of a big value and never reads the replies: the server stops reading from it
    /// (memory stays bounded) and, once `client-output-buffer-limit` gives normal clients a limit, disconnects it.
    @Test func clientThatNeverReadsIsBoundedThenDisconnected() throws {
        let admin = try server.client()
        _ = try admin.call("SET", "big", String(repeating: "x", count: 1 << 20))
        let before = residentBytes()
        let greedy = try server.client()
        let request = RESPClient.encode([Array("GET".utf8), Array("big".utf8)])
        // 3,000 × 1 MiB of replies requested, none read.
        try greedy.send(raw: Array((0..<3000).map { _ in request }.joined()))
        usleep(1_000_000)
        try assertServing("while a client does not read")
        let grown = residentBytes() - before
        #expect(grown < 300 << 20, "resident memory grew by \(grown >> 20) MiB with a client that never reads")

        _ = try admin.call("CONFIG", "SET", "client-output-buffer-limit", "normal 8mb 4mb 1")
        let limited = try server.client()
        try limited.send(raw: Array((0..<3000).map { _ in request }.joined()))
        usleep(300_000)
        var closed = false
        for _ in 0..<50 where !closed {
            let list = try admin.call("CLIENT", "LIST").text ?? ""
            closed = list.split(separator: "\n").count <= 2  // the admin and the first greedy client
            if !closed { usleep(100_000) }
        }
        #expect(closed, "the client over its output limit was not disconnected")
        _ = greedy
    }
}
