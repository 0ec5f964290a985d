// `make bench` etcd comparison: one load generator, pointed at Strata and then at etcd 3.4, so both get exactly the
// same client and the same load (unary calls on RawClient.swift, watches on grpc-swift). Prints one JSON object per scenario on stdout; Bench/etcd_compare.py
// starts the servers, runs this against each and writes the table.
//
//   StrataEtcdBench --endpoint 127.0.0.1:2379 [--scale 1.0] [--scenario NAME]...
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import StrataEtcdAPI
import SwiftProtobuf
import Synchronization

typealias Transport = HTTP2ClientTransport.Posix
typealias KVClient = Etcdserverpb_KV.Client<Transport>

struct Options {
    var host = "127.0.0.1"
    var port = 2379
    var scale = 1.0
    var scenarios: [String] = []
    var connections = 8

    init(_ arguments: [String]) {
        var iterator = arguments.dropFirst().makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--endpoint":
                let parts = (iterator.next() ?? "").split(separator: ":")
                if parts.count == 2, let port = Int(parts[1]) {
                    host = String(parts[0])
                    self.port = port
                }
            case "--scale": scale = Double(iterator.next() ?? "") ?? 1.0
            case "--scenario": scenarios.append(iterator.next() ?? "")
            case "--connections": connections = Int(iterator.next() ?? "") ?? 8
            default:
                FileHandle.standardError.write(Data("unknown argument \(argument)\n".utf8))
                exit(2)
            }
        }
    }
}

func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

/// Latencies of one scenario, merged from every client.
final class Recorder: Sendable {
    private let samples = Mutex<[UInt64]>([])
    private let failures = Mutex<[String: Int]>([:])

    func record(_ nanoseconds: [UInt64]) { samples.withLock { $0.append(contentsOf: nanoseconds) } }
    func fail(_ error: any Error) {
        let text = (error as? RPCError).map { "\($0.code): \($0.message)" } ?? "\(error)"
        failures.withLock { $0[text, default: 0] += 1 }
    }

    func report(_ name: String, clients: Int, seconds: Double, operations: Int? = nil) -> String {
        let sorted = samples.withLock { $0.sorted() }
        func percentile(_ p: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            return Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1e6
        }
        let count = operations ?? sorted.count
        let errors = failures.withLock { $0 }
        var object: [String: Any] = [
            "name": name, "clients": clients, "operations": count, "seconds": seconds,
            "ops_per_second": Double(count) / seconds, "p50_ms": percentile(0.50), "p99_ms": percentile(0.99),
            "errors": errors.values.reduce(0, +),
        ]
        if let first = errors.first { object["first_error"] = first.key }
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}

/// Calls that fail because the connection dropped (grpc-go and grpc-swift occasionally disagree about a
/// connection) are retried and counted as errors; the latency includes the retry.
func attempt<T: Sendable>(_ recorder: Recorder, _ body: () async throws -> T) async throws -> T {
    var tries = 0
    while true {
        do {
            return try await body()
        } catch let error as RPCError where error.code == .unavailable && tries < 5 {
            recorder.fail(error)
            tries += 1
            try await Task.sleep(for: .milliseconds(2))
        }
    }
}

let options = Options(CommandLine.arguments)
let value = Data(repeating: 0x76, count: 256)
func key(_ prefix: String, _ index: Int) -> Data { Data("\(prefix)/\(String(format: "%08d", index))".utf8) }
func scaled(_ count: Int) -> Int { max(1, Int(Double(count) * options.scale)) }

func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

func serialized(_ message: some SwiftProtobuf.Message) -> [UInt8] { try! message.serializedBytes() }

/// The unary scenarios run on the raw client (RawClient.swift): the same bytes on the wire for both servers, at a
/// small fraction of grpc-swift's client cost.
func raw(
    _ clients: Int,
    perClient: Int,
    recorder: Recorder,
    next: @escaping @Sendable (_ client: Int, _ index: Int) -> RawCall,
    check: @escaping @Sendable (_ client: Int, _ index: Int, _ response: [UInt8]) throws -> Void = { _, _, _ in }
) throws -> Double {
    try runRaw(
        host: options.host,
        port: options.port,
        clients: clients,
        connections: options.connections,
        perClient: perClient,
        recorder: recorder,
        next: next,
        check: check
    )
}

func put(_ key: Data) -> RawCall {
    RawCall(
        path: "/etcdserverpb.KV/Put",
        message: serialized(
            Etcdserverpb_PutRequest.with {
                $0.key = key; $0.value = value
            }
        )
    )
}

func sequentialPut() throws {
    let recorder = Recorder()
    let seconds = try raw(1, perClient: scaled(1000), recorder: recorder) { _, index in put(key("seq", index)) }
    emit(recorder.report("put, sequential", clients: 1, seconds: seconds))
}

func concurrentPut() throws {
    let recorder = Recorder()
    let perClient = scaled(300)
    let seconds = try raw(64, perClient: perClient, recorder: recorder) { client, index in
        put(key("put", client * perClient + index))
    }
    emit(recorder.report("put, 64 clients", clients: 64, seconds: seconds))
}

func linearizableGet() throws {
    // Reads the keys the concurrent put wrote (or empty keys if it was skipped: the read costs the same).
    let recorder = Recorder()
    let perClient = scaled(600)
    let written = 64 * scaled(300)
    let seconds = try raw(64, perClient: perClient, recorder: recorder) { client, index in
        let request = Etcdserverpb_RangeRequest.with {
            $0.key = key("put", (client * 7919 + index * 104_729) % written)
        }
        return RawCall(path: "/etcdserverpb.KV/Range", message: serialized(request))
    } check: { _, _, response in
        let decoded = try Etcdserverpb_RangeResponse(serializedBytes: response)
        if decoded.kvs.count > 1 { throw RPCError(code: .internalError, message: "more than one key") }
    }
    emit(recorder.report("get, linearizable, 64 clients", clients: 64, seconds: seconds))
}

func rangeOf1000() throws {
    _ = try raw(16, perClient: 1000 / 16 + 1, recorder: Recorder()) { client, index in
        put(key("range", min(999, client * (1000 / 16 + 1) + index)))
    }
    let recorder = Recorder()
    let request = serialized(
        Etcdserverpb_RangeRequest.with {
            $0.key = Data("range/".utf8)
            $0.rangeEnd = Data("range0".utf8)
        }
    )
    let seconds = try raw(8, perClient: scaled(100), recorder: recorder) { _, _ in
        RawCall(path: "/etcdserverpb.KV/Range", message: request)
    } check: { _, _, response in
        let decoded = try Etcdserverpb_RangeResponse(serializedBytes: response)
        if decoded.kvs.count != 1000 {
            throw RPCError(code: .internalError, message: "range returned \(decoded.kvs.count) keys")
        }
    }
    emit(recorder.report("range of 1000 keys, 8 clients", clients: 8, seconds: seconds))
}

func transactionCAS() throws {
    // kube-apiserver's optimistic update: if mod_revision(key) == last seen then put, else read.
    let recorder = Recorder()
    let seen = Mutex<[Int64]>(Array(repeating: 0, count: 16))
    let conflicts = Atomic<Int>(0)
    let seconds = try raw(16, perClient: scaled(250), recorder: recorder) { client, _ in
        let target = key("cas", client)
        let expected = seen.withLock { $0[client] }
        let request = Etcdserverpb_TxnRequest.with {
            $0.compare = [
                .with {
                    $0.key = target
                    $0.target = .mod
                    $0.result = .equal
                    $0.modRevision = expected
                }
            ]
            $0.success = [
                .with {
                    $0.requestPut = .with {
                        $0.key = target; $0.value = value
                    }
                }
            ]
            $0.failure = [.with { $0.requestRange = .with { $0.key = target } }]
        }
        return RawCall(path: "/etcdserverpb.KV/Txn", message: serialized(request))
    } check: { client, _, bytes in
        let response = try Etcdserverpb_TxnResponse(serializedBytes: bytes)
        if response.succeeded {
            seen.withLock { $0[client] = response.header.revision }
        } else {
            conflicts.add(1, ordering: .relaxed)
            let current = response.responses.first?.responseRange.kvs.first?.modRevision ?? 0
            seen.withLock { $0[client] = current }
        }
    }
    emit(recorder.report("txn CAS, 16 clients", clients: 16, seconds: seconds))
    // Each client's first txn fails (it has not seen the key yet); anything more means lost updates.
    if conflicts.load(ordering: .relaxed) > 16 {
        FileHandle.standardError.write(Data("txn CAS: \(conflicts.load(ordering: .relaxed)) conflicts\n".utf8))
    }
}

/// Shared by the watch streams and writers of the fan-out scenario.
final class FanOut: Sendable {
    let expected: Int
    let received = Atomic<Int>(0)
    let created = Atomic<Int>(0)
    let start = Atomic<UInt64>(0)
    let end = Atomic<UInt64>(0)
    init(expected: Int) { self.expected = expected }
}

func watchFanOut(_ clients: [GRPCClient<Transport>], _ kv: [KVClient]) async throws {
    // 500 watchers on one key over 10 streams; 8 writers put to it; every event's latency is from its put's send
    // time (carried in the value) to its arrival.
    let watchers = 500
    let streams = 10
    let writers = 8
    let putsPerWriter = scaled(50)
    let state = FanOut(expected: watchers * writers * putsPerWriter)
    let target = Data("fanout/key".utf8)
    let recorder = Recorder()

    func watch(_ client: Etcdserverpb_Watch.Client<Transport>) async throws {
        try await client.watch(
            requestProducer: { writer in
                for _ in 0..<(watchers / streams) {
                    try await writer.write(.with { $0.createRequest = .with { $0.key = target } })
                }
                // Keep the stream open until every event has arrived.
                while state.received.load(ordering: .relaxed) < state.expected {
                    try await Task.sleep(for: .milliseconds(20))
                }
            },
            onResponse: { responses in
                var latencies: [UInt64] = []
                for try await response in responses.messages {
                    if response.created { state.created.add(1, ordering: .relaxed) }
                    guard !response.events.isEmpty else { continue }
                    let arrival = now()
                    for event in response.events {
                        if let sent = UInt64(
                            String(decoding: event.kv.value.prefix(20), as: UTF8.self).trimmingCharacters(
                                in: .whitespaces
                            )
                        ) {
                            latencies.append(arrival - sent)
                        }
                    }
                    let total = state.received.add(response.events.count, ordering: .relaxed).newValue
                    if total >= state.expected { state.end.store(arrival, ordering: .relaxed) }
                    if latencies.count >= state.expected / streams || total >= state.expected { break }
                }
                recorder.record(latencies)
            }
        )
    }

    func load() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for stream in 0..<streams {
                let client = Etcdserverpb_Watch.Client(wrapping: clients[stream % clients.count])
                group.addTask { try await watch(client) }
            }
            while state.created.load(ordering: .relaxed) < watchers { try await Task.sleep(for: .milliseconds(10)) }
            state.start.store(now(), ordering: .relaxed)
            for writer in 0..<writers {
                let connection = kv[writer % kv.count]
                group.addTask {
                    for _ in 0..<putsPerWriter {
                        let stamp = String(now()).padding(toLength: 20, withPad: " ", startingAt: 0)
                        _ = try await attempt(recorder) {
                            try await connection.put(
                                .with {
                                    $0.key = target; $0.value = Data(stamp.utf8) + value
                                }
                            )
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await load() }
        group.addTask {
            try await Task.sleep(for: .seconds(180))
            let received = state.received.load(ordering: .relaxed)
            throw RPCError(
                code: .deadlineExceeded,
                message: "watch fan-out: \(received) of \(state.expected) events after 180 s"
            )
        }
        try await group.next()
        group.cancelAll()
    }
    let seconds = Double(state.end.load(ordering: .relaxed) - state.start.load(ordering: .relaxed)) / 1e9
    emit(
        recorder.report(
            "watch fan-out, 500 watchers (events)",
            clients: watchers,
            seconds: seconds,
            operations: state.received.load(ordering: .relaxed)
        )
    )
}

let all = ["seq-put", "put", "get", "range", "txn", "watch"]
let selected = options.scenarios.isEmpty ? all : options.scenarios
try await withThrowingTaskGroup(of: Void.self) { group in
    var clients: [GRPCClient<Transport>] = []
    for _ in 0..<options.connections {
        let client = GRPCClient(
            transport: try .http2NIOPosix(
                target: .ipv4(address: options.host, port: options.port),
                transportSecurity: .plaintext
            )
        )
        clients.append(client)
        group.addTask { try await client.runConnections() }
    }
    let kv = clients.map { KVClient(wrapping: $0) }
    // Wait until the server answers (etcd elects itself first).
    for _ in 0..<400 {
        if (try? await kv[0].range(.with { $0.key = Data("probe".utf8) })) != nil { break }
        try await Task.sleep(for: .milliseconds(25))
    }
    for scenario in selected {
        switch scenario {
        case "seq-put": try sequentialPut()
        case "put": try concurrentPut()
        case "get": try linearizableGet()
        case "range": try rangeOf1000()
        case "txn": try transactionCAS()
        case "watch": try await watchFanOut(clients, kv)
        default: FileHandle.standardError.write(Data("unknown scenario \(scenario)\n".utf8))
        }
    }
    for client in clients { client.beginGracefulShutdown() }
    try await group.waitForAll()
}
