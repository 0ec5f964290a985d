import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import StrataEtcdAPI
import StrataTestSupport
import SwiftProtobuf
import Synchronization
import Testing

/// Sends and receives message bytes as they are, so a test can put anything on the wire.
struct RawBytesSerializer: MessageSerializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
}

struct RawBytesDeserializer: MessageDeserializer {
    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
        serializedMessageBytes.withUnsafeBytes { Array($0) }
    }
}

/// One raw unary call; returns the response bytes or the error.
func rawCall(
    _ client: GRPCClient<HTTP2ClientTransport.Posix>,
    _ path: (service: String, method: String),
    _ bytes: [UInt8]
) async -> Result<[UInt8], RPCError> {
    do {
        let response = try await client.unary(
            request: ClientRequest(message: bytes),
            descriptor: MethodDescriptor(fullyQualifiedService: path.service, method: path.method),
            serializer: RawBytesSerializer(),
            deserializer: RawBytesDeserializer(),
            options: .defaults
        ) { try $0.message }
        return .success(response)
    } catch let error as RPCError {
        return .failure(error)
    } catch {
        return .failure(RPCError(code: .unknown, message: "\(error)"))
    }
}

/// Sends `bytes` as one message on a Watch stream; returns the error the stream ends with (or a made-up one when
/// it ends without error).
func rawWatch(_ client: GRPCClient<HTTP2ClientTransport.Posix>, _ bytes: [UInt8]) async -> RPCError {
    do {
        try await client.bidirectionalStreaming(
            request: StreamingClientRequest(of: [UInt8].self) { writer in
                try await writer.write(bytes)
                try await Task.sleep(for: .seconds(10))  // keep the stream open: the server must end it
            },
            descriptor: MethodDescriptor(fullyQualifiedService: "etcdserverpb.Watch", method: "Watch"),
            serializer: RawBytesSerializer(),
            deserializer: RawBytesDeserializer(),
            options: .defaults
        ) { response in
            for try await _ in response.messages {}
        }
        return RPCError(code: .unknown, message: "stream ended without error")
    } catch let error as RPCError {
        return error
    } catch {
        return RPCError(code: .unknown, message: "\(error)")
    }
}

/// What the etcd port does with input no well-behaved client sends, compared with etcd 3.4 where the answer is
/// grpc-go's: each case gets a clear gRPC error and the server keeps serving. Also: too many watchers on a stream,
/// and a client that stops reading its stream.
@Suite("etcd gRPC transport: bad input and bad clients", .serialized)
struct TransportTests {
    @Test func malformedAndOversizedRequestsGetEtcdsErrors() async throws {
        try await withEtcdAndStrata { pair, etcdClient, strataClient in
            // A request over the receive limit (etcd: --max-request-bytes 1.5 MiB + 512 KiB): grpc-go's exact text.
            var put = Etcdserverpb_PutRequest()
            put.key = Data("big".utf8)
            put.value = Data(repeating: 0x61, count: 2 * 1024 * 1024 + 100)
            let oversized: [UInt8] = try put.serializedBytes()
            for path in [("etcdserverpb.KV", "Put"), ("etcdserverpb.Lease", "LeaseGrant")] {
                let etcd = await rawCall(etcdClient, path, oversized)
                let strata = await rawCall(strataClient, path, oversized)
                guard case .failure(let etcdError) = etcd, case .failure(let strataError) = strata else {
                    Issue.record("\(path): expected errors, got etcd \(etcd) strata \(strata)")
                    continue
                }
                #expect(strataError.code == .resourceExhausted, "\(path)")
                #expect(strataError.code == etcdError.code, "\(path)")
                #expect(strataError.message == etcdError.message, "\(path)")
                #expect(strataError.message.hasPrefix("grpc: received message larger than max ("))
            }

            // Bytes that are not a protobuf message (a field with wire type 7): both refuse with INTERNAL; the text
            // names each implementation's parser, so only the prefix is etcd's.
            let garbage: [UInt8] = [0x0F, 0xFF, 0xFF, 0xFF, 0xFF, 0x07]
            for path in [
                ("etcdserverpb.KV", "Range"), ("etcdserverpb.KV", "Txn"), ("etcdserverpb.Lease", "LeaseGrant"),
            ] {
                let etcd = await rawCall(etcdClient, path, garbage)
                let strata = await rawCall(strataClient, path, garbage)
                guard case .failure(let etcdError) = etcd, case .failure(let strataError) = strata else {
                    Issue.record("\(path): expected errors, got etcd \(etcd) strata \(strata)")
                    continue
                }
                #expect(strataError.code == etcdError.code, "\(path): \(strataError) vs \(etcdError)")
                #expect(strataError.message.hasPrefix("grpc: error unmarshalling request"), "\(strataError)")
            }

            // The same bytes on a Watch stream (a streaming call): grpc-go's text for streams differs from unary.
            let etcdWatch = await rawWatch(etcdClient, garbage)
            let strataWatch = await rawWatch(strataClient, garbage)
            #expect(strataWatch.code == etcdWatch.code, "watch: \(strataWatch) vs \(etcdWatch)")
            let streamText = "grpc: failed to unmarshal the received message "
            #expect(etcdWatch.message.hasPrefix(streamText) && strataWatch.message.hasPrefix(streamText))

            // A method no service has.
            let etcdUnknown = await rawCall(etcdClient, ("etcdserverpb.KV", "NoSuchMethod"), [])
            let strataUnknown = await rawCall(strataClient, ("etcdserverpb.KV", "NoSuchMethod"), [])
            guard case .failure(let etcdError) = etcdUnknown, case .failure(let strataError) = strataUnknown else {
                Issue.record("unknown method: etcd \(etcdUnknown) strata \(strataUnknown)")
                return
            }
            #expect(strataError.code == .unimplemented)
            #expect(strataError.code == etcdError.code)

            // Both still serve, and agree.
            let etcdPut = try await pair.etcdKV.put(
                .with {
                    $0.key = Data("after".utf8); $0.value = Data("ok".utf8)
                }
            )
            let strataPut = try await pair.strataKV.put(
                .with {
                    $0.key = Data("after".utf8); $0.value = Data("ok".utf8)
                }
            )
            #expect(strataPut.header.revision == etcdPut.header.revision)
            let got = try await pair.strataKV.range(.with { $0.key = Data("after".utf8) })
            #expect(got.kvs.first?.value == Data("ok".utf8))
        }
    }

    /// Seeded random HTTP/2 frames after a valid preface: random types, flags, stream IDs and payloads — among them
    /// HEADERS with random HPACK bytes, DATA on unknown streams, bad SETTINGS and WINDOW_UPDATEs. Each connection is
    /// answered or closed, and the server keeps serving gRPC and stays healthy.
    @Test(arguments: [0xF2A3_0001 as UInt64, 0xF2A3_0002])
    func randomFramesNeverHurtTheServer(seed: UInt64) async throws {
        try await withStrata { strata, port in
            var random = SeededRandom(seed: seed)
            for round in 0..<60 {
                var bytes = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
                bytes += [0, 0, 0, 4, 0, 0, 0, 0, 0]  // an empty SETTINGS frame
                for _ in 0..<Int.random(in: 1...6, using: &random) {
                    let length = Int.random(in: 0...64, using: &random)
                    let type = UInt8.random(in: 0...10, using: &random)
                    let flags = UInt8.random(in: 0...255, using: &random)
                    let stream = UInt32.random(in: 0...9, using: &random)
                    bytes += [UInt8(length >> 16), UInt8((length >> 8) & 0xFF), UInt8(length & 0xFF), type, flags]
                    bytes += withUnsafeBytes(of: stream.bigEndian) { Array($0) }
                    bytes += (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
                }
                let answer = await TestNetwork.exchangeReportingCloseAsync(port: port, bytes, timeoutSeconds: 2)
                // The server speaks HTTP/2 back (its SETTINGS first) and ends broken connections with GOAWAY.
                #expect(answer.map { $0.bytes.count >= 9 && $0.bytes[3] == 4 } == true, "seed \(seed) round \(round)")
            }
            #expect(strata.waitUntilHealthy())
            let etcdctl = Etcdctl(port: port)
            let put = try etcdctl.ok("put", "after", "frames")
            let get = try etcdctl.ok("get", "after", "--print-value-only")
            #expect(put == "OK\n")
            #expect(get == "frames\n")
        }
    }

    /// Clients cancel calls at any moment (a reset can cross the answer on the wire): the connection and the other
    /// calls on it carry on.
    @Test func cancelledCallsLeaveTheConnectionAlone() async throws {
        try await withStrata { _, client in
            let kv = Etcdserverpb_KV.Client(wrapping: client)
            _ = try await kv.put(
                .with {
                    $0.key = Data("k".utf8); $0.value = Data("v".utf8)
                }
            )
            let failures = await withTaskGroup(of: Int.self) { group in
                for round in 0..<300 {
                    group.addTask {
                        // A call cancelled after 0–0.6 ms: before it is sent, in flight, or as its answer arrives.
                        await withTaskGroup(of: Void.self) { call in
                            call.addTask {
                                if round % 2 == 0 {
                                    _ = try? await kv.range(.with { $0.key = Data("k".utf8) })
                                } else {
                                    _ = try? await kv.put(
                                        .with {
                                            $0.key = Data("c/\(round)".utf8)
                                            $0.value = Data("x".utf8)
                                        }
                                    )
                                }
                            }
                            try? await Task.sleep(nanoseconds: UInt64(round % 7) * 100_000)
                            call.cancelAll()
                        }
                        return 0
                    }
                    group.addTask {
                        let response = try? await kv.range(.with { $0.key = Data("k".utf8) })
                        return response?.kvs.first?.value == Data("v".utf8) ? 0 : 1
                    }
                }
                return await group.reduce(0, +)
            }
            #expect(failures == 0)
        }
    }

    @Test func watchersPerStreamAreBoundedAndClosingTheStreamStopsThem() async throws {
        try await withStrata(etcdConfig: "max_watchers_per_stream = 5") { strata, client in
            let watch = Etcdserverpb_Watch.Client(wrapping: client)
            let created = Mutex<[Etcdserverpb_WatchResponse]>([])
            let task = Task {
                try await watch.watch { writer in
                    for index in 0..<6 {
                        try await writer.write(.with { $0.createRequest = .with { $0.key = Data("w\(index)".utf8) } })
                    }
                    try await Task.sleep(for: .seconds(60))
                } onResponse: { responses in
                    for try await response in responses.messages where response.created {
                        created.withLock { $0.append(response) }
                    }
                }
            }
            #expect(try await eventually(5) { try gauge(strata, "strata_watch_watchers") } == 5)
            #expect(try gauge(strata, "strata_etcd_watch_streams") == 1)
            for _ in 0..<100 where created.withLock({ $0.count }) < 6 { try await Task.sleep(for: .milliseconds(20)) }
            let responses = created.withLock { $0 }
            #expect(responses.count == 6)
            #expect(responses.prefix(5).allSatisfy { !$0.canceled && $0.watchID >= 0 })
            #expect(responses.last?.canceled == true)
            #expect(responses.last?.cancelReason == "etcdserver: too many watchers on this stream")
            // The client goes away mid-stream (RST_STREAM): the server must cancel the stream's watchers.
            task.cancel()
            _ = await task.result
            #expect(try await eventually(0) { try gauge(strata, "strata_watch_watchers") } == 0)
            #expect(try gauge(strata, "strata_etcd_watch_streams") == 0)
        }
    }

    /// A client that stops reading its Watch stream holds up only that stream: writes go on, a watcher on another
    /// connection gets every event as it happens, the stalled watcher falls back to catching up (the core's buffer is
    /// bounded) — and once its client reads again it receives every event, in order, none twice.
    @Test func stalledWatchStreamHoldsUpOnlyItself() async throws {
        try await withStrata { strata, port in try await stalledWatchStream(strata, port: port) }
    }

    func stalledWatchStream(_ strata: StrataProcess, port: Int) async throws {
        func connect(_ body: (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> Void) async throws {
            try await withGRPCClient(
                transport: .http2NIOPosix(
                    target: .ipv4(address: "127.0.0.1", port: port),
                    transportSecurity: .plaintext,
                    // HTTP/2's initial 64 KiB window instead of grpc-swift's 8 MiB: a client that stops reading
                    // stops the server's stream after 64 KiB, as a slow clientv3 on a busy stream would.
                    config: .defaults { $0.http2.targetWindowSize = 65535 }
                ),
                handleClient: body
            )
        }
        // Two connections, so HTTP/2 connection-level flow control of the stalled one cannot hold up the other.
        try await connect { client in
            let count = 3000
            let value = Data(repeating: 0x78, count: 2048)
            let (gate, open) = AsyncStream.makeStream(of: Void.self)
            let stalled = RevisionLog()
            let healthy = RevisionLog()
            let created = Tally()
            func watch(_ client: GRPCClient<HTTP2ClientTransport.Posix>, into log: RevisionLog, stall: Bool)
                async throws
            {
                try await Etcdserverpb_Watch.Client(wrapping: client).watch { writer in
                    try await writer.write(
                        .with {
                            $0.createRequest = .with {
                                $0.key = Data("s/".utf8)
                                $0.rangeEnd = prefixEnd("s/")
                            }
                        }
                    )
                    while log.count < count { try await Task.sleep(for: .milliseconds(20)) }
                } onResponse: { responses in
                    var waited = !stall
                    for try await response in responses.messages {
                        if response.created { created.increment() }
                        if !waited {
                            for await _ in gate { break }  // stop reading until the test opens the gate
                            waited = true
                        }
                        log.append(response.events.map(\.kv.modRevision))
                        if log.count >= count { break }
                    }
                }
            }
            try await connect { stalledClient in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await watch(stalledClient, into: stalled, stall: true) }
                    group.addTask { try await watch(client, into: healthy, stall: false) }
                    while created.value < 2 { try await Task.sleep(for: .milliseconds(10)) }
                    let kv = Etcdserverpb_KV.Client(wrapping: client)
                    var first: Int64 = 0
                    for index in 0..<count {
                        let put = try await kv.put(
                            .with {
                                $0.key = Data("s/\(index)".utf8)
                                $0.value = value
                            }
                        )
                        if index == 0 { first = put.header.revision }
                    }
                    let expected = Array(first..<(first + Int64(count)))
                    // ~6 MB of events: far more than the stalled stream's flow-control window and buffers hold.
                    for _ in 0..<500 where healthy.count < count {
                        try await Task.sleep(for: .milliseconds(20))
                    }
                    #expect(healthy.all == expected)
                    #expect(stalled.count < count)
                    #expect(try gauge(strata, "strata_watch_unsynced_watchers") == 1)
                    open.yield()
                    open.finish()
                    for _ in 0..<1000 where stalled.count < count {
                        try await Task.sleep(for: .milliseconds(20))
                    }
                    #expect(stalled.all == expected)
                    #expect(try gauge(strata, "strata_watch_unsynced_watchers") == 0)
                    try await group.waitForAll()
                }
            }
        }
    }
}

/// Revisions of received events, shared between a watch's response handler and the test.
final class RevisionLog: Sendable {
    private let revisions = Mutex<[Int64]>([])
    func append(_ more: [Int64]) { revisions.withLock { $0 += more } }
    var all: [Int64] { revisions.withLock { $0 } }
    var count: Int { revisions.withLock { $0.count } }
}

final class Tally: Sendable {
    private let count = Atomic<Int>(0)
    func increment() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}

/// A gauge's value from Strata's admin `/metrics`.
func gauge(_ strata: StrataProcess, _ name: String) throws -> Int? {
    let metrics = try #require(TestNetwork.get(port: strata.adminPort, path: "/metrics")).body
    return metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") }
        .flatMap { Double($0.split(separator: " ").last ?? "") }.map { Int($0) }
}

/// Reads `value` every 50 ms, for up to 5 s, until it is `expected`; returns the last reading.
func eventually<T: Equatable>(_ expected: T, _ value: () throws -> T) async throws -> T {
    var current = try value()
    for _ in 0..<100 where current != expected {
        try await Task.sleep(for: .milliseconds(50))
        current = try value()
    }
    return current
}
