internal import Foundation
internal import StrataTestSupport
internal import Testing

/// `kill -9` of the real binary under a write load from several connections, then a restart on the same data:
/// whatever `appendfsync` says, every acknowledged write is there (the modes differ only for a machine crash: fsync
/// before the reply, within a second, or when the OS likes). Each writer appends 0, 1, 2, … to its
/// own list, so what survived must also be a gap-free prefix.
@Suite("Redis durability: kill -9 under load", .serialized)
struct RedisCrashTests {
    /// Acknowledgements (value, time) per writer, shared with the writer threads.
    final class Acknowledgements: @unchecked Sendable {
        private let lock = NSLock()
        private var times: [[Date]]
        private var failures: [String] = []

        init(writers: Int) { times = Array(repeating: [], count: writers) }

        func record(_ writer: Int, _ value: Int, at time: Date) -> Bool {
            lock.withLock {
                guard times[writer].count == value else {
                    failures.append("writer \(writer): value \(value) acknowledged out of order")
                    return false
                }
                times[writer].append(time)
                return true
            }
        }

        var snapshot: [[Date]] { lock.withLock { times } }
        var problems: [String] { lock.withLock { failures } }
    }

    static let writers = 4

    @Test(arguments: ["always", "everysec", "no"])
    func acknowledgedWritesSurviveKillNine(appendfsync: String) throws {
        let directory = TemporaryDirectory()
        let port = TestNetwork.freePort()
        let settings = "appendfsync = \"\(appendfsync)\""
        let first = try RedisTestServer(redisSettings: settings, directory: directory, port: port)
        let acknowledgements = Acknowledgements(writers: Self.writers)
        let finished = DispatchGroup()
        for writer in 0..<Self.writers {
            finished.enter()
            let thread = Thread {
                defer { finished.leave() }
                guard let client = try? RESPClient(port: port) else { return }
                var value = 0
                // Until the kill closes the connection.
                while let reply = try? client.call("RPUSH", "log:\(writer)", String(value)),
                    reply == .integer(Int64(value + 1)),
                    acknowledgements.record(writer, value, at: Date())
                {
                    value += 1
                }
            }
            thread.start()
        }
        usleep(1_500_000)
        #expect(first.strata.stop(signal: SIGKILL) != nil)
        #expect(finished.wait(timeout: .now() + 30) == .success, "writers did not stop after the kill")
        #expect(acknowledgements.problems.isEmpty, "\(acknowledgements.problems)")

        let second = try RedisTestServer(redisSettings: settings, directory: directory, port: port)
        let client = try second.client()
        var acknowledgedTotal = 0
        for (writer, times) in acknowledgements.snapshot.enumerated() {
            acknowledgedTotal += times.count
            let survived = try client.call("LRANGE", "log:\(writer)", "0", "-1").items ?? []
            #expect(survived == (0..<survived.count).map { .bulk(Array(String($0).utf8)) }, "writer \(writer)")
            // A write may be durable without its acknowledgement having arrived: never fewer, at most one more.
            let lost = times.dropFirst(survived.count)
            #expect(survived.count <= times.count + 1)
            // Every mode hands a write to the operating system before acknowledging it, so a process crash loses
            // none; the modes differ for a machine crash (fsync before the reply, within a second, or when the OS
            // likes), which a test cannot stage.
            #expect(
                lost.isEmpty,
                "writer \(writer): \(lost.count) acknowledged writes lost with appendfsync \(appendfsync)"
            )
        }
        #expect(acknowledgedTotal > 100, "too few writes to say anything: \(acknowledgedTotal)")
    }
}
