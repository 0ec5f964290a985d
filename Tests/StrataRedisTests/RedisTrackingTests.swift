internal import Foundation
internal import StrataTestSupport
internal import Testing

/// Client-side caching (CLIENT TRACKING): the same sessions against Strata and redis-server 7.0, every reply and
/// invalidation message compared byte for byte — RESP3 pushes in default, OPTIN and BCAST modes, NOLOOP, a RESP2
/// client that invalidations are redirected to, flushes and the errors of bad option combinations.
@Suite("Redis client-side caching")
struct RedisTrackingTests {
    /// A step: which connection sends what, and how many frames it then reads (replies and pushes in order).
    struct Step {
        let client: Int
        let command: [String]
        let frames: Int
    }

    /// Connection 0: RESP3 tracker; 1: writer; 2: RESP2 redirect target (subscribed); 3: RESP2 tracker
    /// redirecting to 2.
    static let steps: [Step] = [
        Step(client: 2, command: ["SUBSCRIBE", "__redis__:invalidate"], frames: 1),
        Step(client: 0, command: ["CLIENT", "TRACKING", "ON"], frames: 1),
        Step(client: 0, command: ["CLIENT", "TRACKINGINFO"], frames: 1),
        Step(client: 0, command: ["CLIENT", "GETREDIR"], frames: 1),
        Step(client: 1, command: ["MSET", "a", "1", "b", "2", "c", "3"], frames: 1),
        Step(client: 0, command: ["MGET", "a", "b"], frames: 1),
        Step(client: 1, command: ["SET", "a", "10"], frames: 1),
        Step(client: 0, command: ["PING"], frames: 2),  // the invalidation of a, then PONG
        Step(client: 1, command: ["SET", "a", "11"], frames: 1),  // a was not read again: nothing
        Step(client: 1, command: ["DEL", "b", "c"], frames: 1),
        Step(client: 0, command: ["PING"], frames: 2),
        // The tracker's own write: the invalidation follows the reply.
        Step(client: 0, command: ["GET", "c"], frames: 1),
        Step(client: 0, command: ["SET", "c", "x"], frames: 2),
        Step(client: 0, command: ["CLIENT", "TRACKING", "OFF"], frames: 1),
        Step(client: 0, command: ["CLIENT", "TRACKING", "ON", "OPTIN"], frames: 1),
        Step(client: 0, command: ["GET", "a"], frames: 1),
        Step(client: 0, command: ["CLIENT", "CACHING", "YES"], frames: 1),
        Step(client: 0, command: ["GET", "b"], frames: 1),
        Step(client: 1, command: ["MSET", "a", "1", "b", "2"], frames: 1),
        Step(client: 0, command: ["PING"], frames: 2),  // only b (read after CACHING YES)
        Step(client: 0, command: ["CLIENT", "CACHING", "NO"], frames: 1),
        Step(client: 0, command: ["CLIENT", "TRACKING", "ON", "BCAST"], frames: 1),
        Step(client: 0, command: ["CLIENT", "TRACKING", "OFF"], frames: 1),
        Step(
            client: 0,
            command: ["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "user:", "PREFIX", "job:", "NOLOOP"],
            frames: 1
        ),
        Step(client: 0, command: ["CLIENT", "TRACKINGINFO"], frames: 1),
        Step(client: 1, command: ["MSET", "user:1", "x", "job:9", "y", "other", "z"], frames: 1),
        Step(client: 0, command: ["PING"], frames: 3),  // one message per prefix, then PONG
        Step(client: 0, command: ["SET", "user:2", "own"], frames: 1),  // NOLOOP: nothing
        Step(client: 0, command: ["PING"], frames: 1),
        Step(client: 0, command: ["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "us"], frames: 1),
        Step(client: 0, command: ["CLIENT", "TRACKING", "ON", "PREFIX", "x"], frames: 1),
        Step(client: 0, command: ["CLIENT", "TRACKING", "ON", "OPTIN", "OPTOUT"], frames: 1),
        Step(client: 0, command: ["CLIENT", "TRACKING", "ON", "REDIRECT", "999999"], frames: 1),
        Step(client: 0, command: ["CLIENT", "TRACKING", "MAYBE"], frames: 1),
        Step(client: 0, command: ["CLIENT", "TRACKING", "OFF"], frames: 1),
        // A RESP2 client redirecting to a subscribed RESP2 connection.
        Step(client: 3, command: ["CLIENT", "TRACKING", "ON", "REDIRECT", "$2"], frames: 1),
        Step(client: 3, command: ["GET", "k"], frames: 1),
        Step(client: 1, command: ["SET", "k", "v"], frames: 1),
        Step(client: 2, command: ["PING"], frames: 2),  // the message, then the subscribed-mode PONG
        Step(client: 3, command: ["GET", "k"], frames: 1),
        Step(client: 1, command: ["FLUSHALL"], frames: 1),
        Step(client: 2, command: ["PING"], frames: 2),  // the flush: a null key list
        Step(client: 0, command: ["CLIENT", "CACHING", "YES"], frames: 1),
    ]

    @Test func trackingSessionsMatchRedis() throws {
        let directory = TemporaryDirectory()
        let reference = try ReferenceRedis(directory: directory.appending("redis"))
        let strata = try RedisTestServer(sync: "none")
        var mismatches: [String] = []
        let redisClients = try (0..<4).map { _ in try RESPClient(port: reference.port) }
        let strataClients = try (0..<4).map { _ in try strata.client() }
        // `$2`: connection 2's client ID on each server.
        func id(_ clients: [RESPClient]) throws -> String {
            guard case .integer(let id) = try clients[2].call("CLIENT", "ID") else { return "0" }
            return String(id)
        }
        let redisID = try id(redisClients)
        let strataID = try id(strataClients)
        // (HELLO's reply shows the client ID, which differs between the servers.)
        for clients in [redisClients, strataClients] { _ = try clients[0].call("HELLO", "3") }
        // A PING collects the invalidations another connection's write caused: Redis's one thread has sent them
        // before it reads the PING; Strata's event loops may deliver them just after the PONG. Those steps compare
        // the frames as a set; every other step (the writer's own invalidation after its reply included) in order.
        func run(_ step: Step, _ clients: [RESPClient], _ own: String) throws -> [UInt8] {
            try clients[step.client].send(step.command.map { $0 == "$2" ? own : $0 })
            var frames: [[UInt8]] = []
            for _ in 0..<step.frames { frames.append(try clients[step.client].read().bytes) }
            if step.command == ["PING"] { frames.sort { $0.lexicographicallyPrecedes($1) } }
            return frames.flatMap { $0 }
        }
        for step in Self.steps {
            let want = try run(step, redisClients, redisID)
            let got = try run(step, strataClients, strataID)
            if want != got {
                mismatches.append(
                    "\(step.client): \(step.command.joined(separator: " "))\n  redis:  "
                        + "\(RedisDifferentialTests.show(want))\n  strata: \(RedisDifferentialTests.show(got))"
                )
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) steps differ:\n\(mismatches.joined(separator: "\n"))")
    }
}
