import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import StrataEtcdAPI
import StrataTestSupport
import SwiftProtobuf
import Testing

/// Debian's etcd 3.4 started on free loopback ports with a temp data dir.
final class ReferenceEtcd: @unchecked Sendable {
    let process = ChildProcess()
    let port = TestNetwork.freePort()
    let directory = TemporaryDirectory(prefix: "etcd-reference")

    init(extraArguments: [String] = []) throws {
        let peer = TestNetwork.freePort()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/etcd")
        process.arguments =
            [
                "--name", "default", "--data-dir", directory.appending("data"),
                "--listen-client-urls", "http://127.0.0.1:\(port)", "--advertise-client-urls",
                "http://127.0.0.1:\(port)",
                "--listen-peer-urls", "http://127.0.0.1:\(peer)", "--initial-advertise-peer-urls",
                "http://127.0.0.1:\(peer)",
                "--initial-cluster", "default=http://127.0.0.1:\(peer)", "--log-level", "error",
            ] + extraArguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    /// Waits (up to 10 s) until etcd answers `/health` on its client port, which it does once it elected itself.
    func waitUntilReady() async -> Bool {
        for _ in 0..<200 {
            if await TestNetwork.fetch(port: port, path: "/health")?.status == 200 { return true }
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
        return false
    }

    deinit {
        process.terminate()
        // What SIGTERM has not stopped by then, the process's own deinit kills.
        _ = process.wait(timeoutSeconds: 10)
    }
}

/// A response or the wire error, with the fields that legitimately differ (cluster and member IDs, Raft term) zeroed.
enum Outcome: Equatable, CustomStringConvertible {
    case range(Etcdserverpb_RangeResponse)
    case put(Etcdserverpb_PutResponse)
    case delete(Etcdserverpb_DeleteRangeResponse)
    case txn(Etcdserverpb_TxnResponse)
    case compact(Etcdserverpb_CompactionResponse)
    case grant(Etcdserverpb_LeaseGrantResponse)
    case revoke(Etcdserverpb_LeaseRevokeResponse)
    case timeToLive(Etcdserverpb_LeaseTimeToLiveResponse)
    case error(code: RPCError.Code, message: String)

    var description: String {
        switch self {
        case .range(let r): "range \(r)"
        case .put(let r): "put \(r)"
        case .delete(let r): "delete \(r)"
        case .txn(let r): "txn \(r)"
        case .compact(let r): "compact \(r)"
        case .grant(let r): "grant \(r)"
        case .revoke(let r): "revoke \(r)"
        case .timeToLive(let r): "ttl \(r)"
        case .error(let code, let message): "error \(code) \(message)"
        }
    }
}

func normalized(_ header: Etcdserverpb_ResponseHeader) -> Etcdserverpb_ResponseHeader {
    var header = header
    header.clusterID = 0
    header.memberID = 0
    header.raftTerm = 0
    return header
}

/// etcd sorts by version/create/mod/value with Go's sort: an insertion sort, stable, up to 12 elements (Strata keeps
/// ties in key order too, so those are compared exactly), an unstable pdqsort above, where the order of ties is
/// unspecified (and with a limit, which of the tied keys make the cut). For those, compare the sorted values; keep
/// the key-values only when no tie could have reordered them.
func tiesNormalized(_ response: Etcdserverpb_RangeResponse, _ request: Etcdserverpb_RangeRequest)
    -> Etcdserverpb_RangeResponse
{
    let sorted = request.sortOrder != .none || request.sortTarget != .key
    guard sorted, request.sortTarget != .key, response.count > 12 else { return response }
    func target(_ kv: Mvccpb_KeyValue) -> String {
        switch request.sortTarget {
        case .version: "\(kv.version)"
        case .create: "\(kv.createRevision)"
        case .mod: "\(kv.modRevision)"
        case .value: kv.value.base64EncodedString()
        default: ""
        }
    }
    var normalized = response
    let targets = response.kvs.map(target)
    if Set(targets).count != targets.count {
        normalized.kvs = targets.map { value in Mvccpb_KeyValue.with { $0.value = Data(value.utf8) } }
    }
    return normalized
}

/// Only the top-level header carries cluster and member IDs; the inner headers are compared as sent.
func normalized(_ txn: Etcdserverpb_TxnResponse) -> Etcdserverpb_TxnResponse {
    var txn = txn
    txn.header = normalized(txn.header)
    return txn
}

/// One client per server; every operation goes to both and the outcomes must be identical.
struct Pair {
    let etcdKV: Etcdserverpb_KV.Client<HTTP2ClientTransport.Posix>
    let strataKV: Etcdserverpb_KV.Client<HTTP2ClientTransport.Posix>
    let etcdLease: Etcdserverpb_Lease.Client<HTTP2ClientTransport.Posix>
    let strataLease: Etcdserverpb_Lease.Client<HTTP2ClientTransport.Posix>

    static func outcome(_ body: () async throws -> Outcome) async -> Outcome {
        do {
            return try await body()
        } catch let error as RPCError {
            return .error(code: error.code, message: error.message)
        } catch {
            return .error(code: .unknown, message: "\(error)")
        }
    }

    typealias Operation =
        @Sendable (
            Etcdserverpb_KV.Client<HTTP2ClientTransport.Posix>, Etcdserverpb_Lease.Client<HTTP2ClientTransport.Posix>
        ) async throws -> Outcome

    /// The last operation sent, to replay it on etcd when a dropped connection left its outcome unknown.
    final class Last: @unchecked Sendable {
        var operation: Operation?
    }
    let last = Last()

    func both(_ operation: @escaping Operation) async -> (etcd: Outcome, strata: Outcome) {
        last.operation = operation
        let etcd = await Self.outcome { try await operation(etcdKV, etcdLease) }
        let strata = await Self.outcome { try await operation(strataKV, strataLease) }
        return (etcd, strata)
    }
}

@Suite("Differential: strata vs etcd 3.4", .serialized)
struct DifferentialTests {
    static let operations = Int(ProcessInfo.processInfo.environment["STRATA_DIFF_OPS"] ?? "") ?? 1500

    /// The second seed runs against Strata started as a harness starts etcd (`strata etcd` with etcd's flags), the
    /// third with the KV fast path off (every call through grpc-swift's server): the same answers each way.
    @Test(arguments: [
        (UInt64(0xE7CD_0001), StrataLaunch.config), (0xE7CD_0002, .etcdPersonality), (0xE7CD_0003, .withoutFastPath),
    ])
    func sameOperationsSameResponses(seed: UInt64, launch: StrataLaunch) async throws {
        try await withEtcdAndStrata(launch: launch) { pair, _, _ in try await run(pair, seed: seed) }
    }

    func run(_ pair: Pair, seed: UInt64) async throws {
        var random = SeededRandom(seed: seed)
        let keys = (0..<12).map { "k\($0)" } + (0..<6).map { "p/\($0)" }
        func key() -> Data { Data(keys[Int.random(in: 0..<keys.count, using: &random)].utf8) }
        var revision: Int64 = 1
        var nextLease: Int64 = 1000
        var leases: [Int64] = []
        var mismatches = 0
        var transportDrops = 0
        defer { #expect(transportDrops * 50 < Self.operations, "too many dropped reference calls: \(transportDrops)") }
        for step in 0..<Self.operations {
            let choice = Int.random(in: 0..<100, using: &random)
            let isCompaction = (55..<58).contains(choice)
            let (etcdOutcome, strataOutcome): (Outcome, Outcome)
            switch choice {
            case 0..<30:
                let k = key()
                let value = Data("v\(step)".utf8)
                let prev = Bool.random(using: &random)
                let ignoreValue = Int.random(in: 0..<12, using: &random) == 0
                let lease =
                    leases.isEmpty || Int.random(in: 0..<4, using: &random) != 0
                    ? 0 : leases.randomElement(using: &random)!
                (etcdOutcome, strataOutcome) = await pair.both { kv, _ in
                    var put = Etcdserverpb_PutRequest()
                    put.key = k
                    put.prevKv = prev
                    if ignoreValue { put.ignoreValue = true } else { put.value = value }
                    put.lease = lease
                    var response = try await kv.put(put)
                    response.header = normalized(response.header)
                    return .put(response)
                }
            case 30..<40:
                let k = key()
                let prefix = Bool.random(using: &random)
                let prev = Bool.random(using: &random)
                (etcdOutcome, strataOutcome) = await pair.both { kv, _ in
                    var delete = Etcdserverpb_DeleteRangeRequest()
                    delete.key = prefix ? Data("p/".utf8) : k
                    if prefix { delete.rangeEnd = Data("p0".utf8) }
                    delete.prevKv = prev
                    var response = try await kv.deleteRange(delete)
                    response.header = normalized(response.header)
                    return .delete(response)
                }
            case 40..<55:
                let compareKey = key()
                let target = key()
                let other = key()
                let version = Int64.random(in: 0..<3, using: &random)
                let nested = Bool.random(using: &random)
                (etcdOutcome, strataOutcome) = await pair.both { kv, _ in
                    var txn = Etcdserverpb_TxnRequest()
                    var compare = Etcdserverpb_Compare()
                    compare.key = compareKey
                    compare.target = .version
                    compare.result = .equal
                    compare.version = version
                    txn.compare = [compare]
                    var put = Etcdserverpb_RequestOp()
                    put.requestPut = .with {
                        $0.key = target; $0.value = Data("t\(step)".utf8); $0.prevKv = true
                    }
                    var range = Etcdserverpb_RequestOp()
                    range.requestRange = .with {
                        $0.key = Data("k".utf8); $0.rangeEnd = Data("l".utf8)
                    }
                    var delete = Etcdserverpb_RequestOp()
                    delete.requestDeleteRange = .with {
                        $0.key = other; $0.prevKv = true
                    }
                    txn.success = [put, range]
                    if nested {
                        var inner = Etcdserverpb_RequestOp()
                        inner.requestTxn = .with { $0.success = [delete] }
                        txn.failure = [inner, range]
                    } else {
                        txn.failure = [delete, range]
                    }
                    return .txn(normalized(try await kv.txn(txn)))
                }
            case 55..<58:
                let at = Int64.random(in: max(revision - 30, 1)...(revision + 1), using: &random)
                (etcdOutcome, strataOutcome) = await pair.both { kv, _ in
                    var response = try await kv.compact(
                        .with {
                            $0.revision = at; $0.physical = true
                        }
                    )
                    response.header = normalized(response.header)
                    return .compact(response)
                }
            case 58..<62:
                let id = nextLease
                nextLease += 1
                // Long enough that no lease expires during the run: expiry timing differs between two servers.
                let ttl = Int64.random(in: 600...3600, using: &random)
                (etcdOutcome, strataOutcome) = await pair.both { _, lease in
                    var response = try await lease.leaseGrant(
                        .with {
                            $0.id = id; $0.ttl = ttl
                        }
                    )
                    response.header = normalized(response.header)
                    return .grant(response)
                }
                if case .grant = strataOutcome { leases.append(id) }
            case 62..<64:
                guard !leases.isEmpty else { continue }
                let id = Bool.random(using: &random) ? leases.removeFirst() : 999_999
                (etcdOutcome, strataOutcome) = await pair.both { _, lease in
                    var response = try await lease.leaseRevoke(.with { $0.id = id })
                    response.header = normalized(response.header)
                    return .revoke(response)
                }
            case 64..<66:
                let id = leases.randomElement(using: &random) ?? 424_242
                (etcdOutcome, strataOutcome) = await pair.both { _, lease in
                    var response = try await lease.leaseTimeToLive(
                        .with {
                            $0.id = id; $0.keys = true
                        }
                    )
                    response.header = normalized(response.header)
                    // The remaining time is a clock read: compare the granted TTL instead.
                    response.ttl = response.ttl > 0 ? response.grantedTtl : response.ttl
                    response.keys.sort { $0.lexicographicallyPrecedes($1) }
                    return .timeToLive(response)
                }
            default:
                var request = Etcdserverpb_RangeRequest()
                switch Int.random(in: 0..<4, using: &random) {
                case 0: request.key = key()
                case 1: (request.key, request.rangeEnd) = (Data("p/".utf8), Data("p0".utf8))
                case 2: (request.key, request.rangeEnd) = (key(), Data([0]))
                default: (request.key, request.rangeEnd) = (Data([0]), Data([0]))
                }
                request.limit = Int64.random(in: 0..<4, using: &random)
                if Bool.random(using: &random) {
                    request.revision = Int64.random(in: 0...(revision + 2), using: &random)
                }
                request.keysOnly = Int.random(in: 0..<5, using: &random) == 0
                request.countOnly = Int.random(in: 0..<8, using: &random) == 0
                switch Int.random(in: 0..<6, using: &random) {
                case 0: (request.sortOrder, request.sortTarget) = (.descend, .key)
                case 1: (request.sortOrder, request.sortTarget) = (.ascend, .mod)
                case 2: (request.sortOrder, request.sortTarget) = (.none, .version)
                case 3: request.minModRevision = max(revision - 10, 1)
                case 4: request.maxCreateRevision = revision / 2
                default: break
                }
                let rangeRequest = request
                (etcdOutcome, strataOutcome) = await pair.both { kv, _ in
                    var response = try await kv.range(rangeRequest)
                    response.header = normalized(response.header)
                    return .range(tiesNormalized(response, rangeRequest))
                }
            }
            if case .error(.unavailable, let message) = etcdOutcome, message == "Stream unexpectedly closed." {
                // The Swift gRPC client and Debian's etcd (grpc-go) drop a connection every couple of hundred calls.
                // Whether etcd applied the request is unknown: compare revisions, replay it on etcd if it did not,
                // and do not compare this step (the following ones are).
                transportDrops += 1
                let probe = Etcdserverpb_RangeRequest.with { $0.key = Data("probe".utf8) }
                var replayedCompaction = false
                for _ in 0..<5 {
                    // The reconnection itself can lose a call too: the probes retry. Lease grants take no revision,
                    // so the lease lists are compared as well; a compaction changes neither, so it is replayed once
                    // (at worst etcd answers "already compacted").
                    let etcdRevision = try await retrying { try await pair.etcdKV.range(probe).header.revision }
                    let strataRevision = try await retrying { try await pair.strataKV.range(probe).header.revision }
                    let etcdLeases = try await retrying {
                        try await pair.etcdLease.leaseLeases(.init()).leases.map(\.id).sorted()
                    }
                    let strataLeases = try await retrying {
                        try await pair.strataLease.leaseLeases(.init()).leases.map(\.id).sorted()
                    }
                    let needsReplay =
                        etcdRevision < strataRevision || etcdLeases != strataLeases
                        || (isCompaction && !replayedCompaction)
                    guard needsReplay, let replay = pair.last.operation else { break }
                    replayedCompaction = true
                    _ = await Pair.outcome { try await replay(pair.etcdKV, pair.etcdLease) }
                }
                continue
            }
            if etcdOutcome != strataOutcome {
                mismatches += 1
                Issue.record(
                    "seed 0x\(String(seed, radix: 16)) step \(step):\n etcd:   \(etcdOutcome)\n strata: \(strataOutcome)"
                )
                if mismatches > 5 { return }
            }
            if case .put(let r) = etcdOutcome { revision = r.header.revision }
            if case .txn(let r) = etcdOutcome { revision = r.header.revision }
            if case .delete(let r) = etcdOutcome { revision = r.header.revision }
            if case .revoke(let r) = etcdOutcome { revision = r.header.revision }
        }
    }
}

/// Debian's etcd 3.4 (with `etcdArguments`) and Strata (with `strataConfig` under `[etcd]`) on free loopback ports,
/// one gRPC client each; `body` runs once etcd has elected itself, and Strata must then stop cleanly.
func withEtcdAndStrata(
    etcdArguments: [String] = [],
    strataConfig: String = "",
    launch: StrataLaunch = .config,
    _ body: (Pair, GRPCClient<HTTP2ClientTransport.Posix>, GRPCClient<HTTP2ClientTransport.Posix>) async throws -> Void
) async throws {
    let etcd = try ReferenceEtcd(extraArguments: etcdArguments)
    let strataPort = TestNetwork.freePort()
    let directory = TemporaryDirectory()
    let strata = try launch.start(directory: directory, port: strataPort, etcdConfig: strataConfig)
    #expect(strata.waitUntilHealthy(), "output:\n\(strata.output)")
    try await withGRPCClient(
        transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: etcd.port), transportSecurity: .plaintext)
    ) { etcdClient in
        try await withGRPCClient(
            transport: .http2NIOPosix(
                target: .ipv4(address: "127.0.0.1", port: strataPort),
                transportSecurity: .plaintext
            )
        ) { strataClient in
            let pair = Pair(
                etcdKV: Etcdserverpb_KV.Client(wrapping: etcdClient),
                strataKV: Etcdserverpb_KV.Client(wrapping: strataClient),
                etcdLease: Etcdserverpb_Lease.Client(wrapping: etcdClient),
                strataLease: Etcdserverpb_Lease.Client(wrapping: strataClient)
            )
            #expect(await etcd.waitUntilReady(), "etcd did not start")
            try await body(pair, etcdClient, strataClient)
        }
    }
    #expect(strata.stop() == 0)
}

/// How a test starts Strata's etcd front-end: from a config file (`strata serve`), or as test harnesses start etcd
/// (`strata etcd` with etcd's command line; `[etcd]` lines then cannot be given).
enum StrataLaunch: Sendable, CustomTestStringConvertible {
    case config
    case etcdPersonality
    /// From a config file with `fast_path = false`.
    case withoutFastPath

    func start(directory: TemporaryDirectory, port: Int, etcdConfig: String = "") throws -> StrataProcess {
        switch self {
        case .config:
            return try StrataProcess(
                dataDirectory: directory.appending("data"),
                etcdConfig: "[etcd]\nenabled = true\nlisten = \"127.0.0.1:\(port)\"\n\(etcdConfig)"
            )
        case .etcdPersonality:
            precondition(etcdConfig.isEmpty, "the etcd personality takes flags, not [etcd] lines")
            return try StrataProcess(etcdPersonality: directory.appending("data"), clientPort: port)
        case .withoutFastPath:
            return try StrataLaunch.config.start(
                directory: directory,
                port: port,
                etcdConfig: "fast_path = false\n\(etcdConfig)"
            )
        }
    }

    var testDescription: String {
        switch self {
        case .config: "strata serve"
        case .etcdPersonality: "strata etcd"
        case .withoutFastPath: "strata serve, fast_path = false"
        }
    }
}

/// Starts Strata with its etcd front-end on a free port (plus `etcdConfig` lines for `[etcd]`), runs `body` with a
/// gRPC client connected to it, then expects a clean stop.
func withStrata(
    etcdConfig: String = "",
    _ body: (StrataProcess, GRPCClient<HTTP2ClientTransport.Posix>) async throws -> Void
) async throws {
    try await withStrata(etcdConfig: etcdConfig) { strata, port in
        try await withGRPCClient(
            transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
        ) { client in
            try await body(strata, client)
        }
    }
}

/// Strata with its etcd front-end on a free port, for tests that open their own connections to `port`.
func withStrata(
    etcdConfig: String = "",
    launch: StrataLaunch = .config,
    _ body: (StrataProcess, _ port: Int) async throws -> Void
) async throws {
    let directory = TemporaryDirectory()
    let port = TestNetwork.freePort()
    let strata = try launch.start(directory: directory, port: port, etcdConfig: etcdConfig)
    #expect(strata.waitUntilHealthy(), "output:\n\(strata.output)")
    try await body(strata, port)
    #expect(strata.stop() == 0)
}

@Suite("grpc.health.v1 on the etcd port")
struct GRPCHealthTests {
    @Test func checkReportsServingAndUnknownServices() async throws {
        try await withStrata { _, client in
            let health = Grpc_Health_V1_Health.Client(wrapping: client)
            let response = try await health.check(.with { $0.service = "" })
            #expect(response.status == .serving)
            await #expect {
                _ = try await health.check(.with { $0.service = "no.such.Service" })
            } throws: { error in
                (error as? RPCError)?.code == .notFound
            }
        }
    }
}

/// Retries a read-only call that failed because the connection dropped.
func retrying<T: Sendable>(_ body: () async throws -> T) async throws -> T {
    for _ in 0..<9 {
        do {
            return try await body()
        } catch let error as RPCError where error.code == .unavailable {
            try await Task.sleep(nanoseconds: 50_000_000)
        }
    }
    return try await body()
}
