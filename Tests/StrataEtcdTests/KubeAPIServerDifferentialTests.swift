import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import StrataEtcdAPI
import StrataTestSupport
import SwiftProtobuf
import Synchronization
import Testing

typealias WatchClient = Etcdserverpb_Watch.Client<HTTP2ClientTransport.Posix>

/// One Watch stream held open by a test: requests go in through `send`, responses collect in `responses`.
final class WatchSession: Sendable {
    private let requests: AsyncStream<Etcdserverpb_WatchRequest>.Continuation
    private let task: Task<Void, any Error>

    init(_ client: WatchClient) {
        let (stream, continuation) = AsyncStream.makeStream(of: Etcdserverpb_WatchRequest.self)
        requests = continuation
        let log = LogBox()
        task = Task {
            try await client.watch(
                requestProducer: { writer in
                    for await request in stream { try await writer.write(request) }
                },
                onResponse: { responses in
                    for try await message in responses.messages { log.append(message) }
                }
            )
        }
        box = log
    }
    private let box: LogBox

    var responses: [Etcdserverpb_WatchResponse] { box.all }

    func send(_ request: Etcdserverpb_WatchRequest) { requests.yield(request) }

    /// Half-closes the stream (no more requests) without cancelling it.
    func finishSending() { requests.finish() }

    /// Waits (up to `seconds`) until `condition` holds for the responses so far.
    func wait(seconds: Double = 10, until condition: ([Etcdserverpb_WatchResponse]) -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition(responses) { return true }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        return condition(responses)
    }

    func close() {
        requests.finish()
        task.cancel()
    }
}

final class LogBox: Sendable {
    private let items = Mutex<[Etcdserverpb_WatchResponse]>([])
    func append(_ item: Etcdserverpb_WatchResponse) { items.withLock { $0.append(item) } }
    var all: [Etcdserverpb_WatchResponse] { items.withLock { $0 } }
}

/// Events of a watch in order, with the header fields that legitimately differ removed.
func events(_ responses: [Etcdserverpb_WatchResponse]) -> [Mvccpb_Event] {
    responses.flatMap(\.events)
}

/// `prefix + 1` in the last byte: clientv3's `GetPrefixRangeEnd`.
func prefixEnd(_ prefix: String) -> Data {
    var bytes = Array(prefix.utf8)
    bytes[bytes.count - 1] += 1
    return Data(bytes)
}

/// The exact requests kube-apiserver 1.26 sends (docs/etcd.md, "What clients rely on"), to etcd 3.4 and to Strata, compared field by
/// field: the four transaction shapes, paged lists pinned to a revision, the compact_rev_key CAS followed by
/// Compact, a cacher-style watch from rev+1 with prev_kv and progress_notify, and lease expiry deleting keys.
@Suite("Differential: kube-apiserver's requests, strata vs etcd 3.4", .serialized)
struct KubeAPIServerDifferentialTests {
    @Test func kubeAPIServerRequestsGetEtcdsAnswers() async throws {
        // Progress notifications every second on both, so the test sees them (etcd's default is 10 minutes).
        try await withEtcdAndStrata(
            etcdArguments: ["--experimental-watch-progress-notify-interval", "1s"],
            strataConfig: "progress_notify_interval = \"1s\""
        ) { pair, etcdClient, strataClient in
            let kube = KubeSequence(
                pair: pair,
                etcdWatch: WatchClient(wrapping: etcdClient),
                strataWatch: WatchClient(wrapping: strataClient)
            )
            try await kube.run()
        }
    }
}

struct KubeSequence {
    let pair: Pair
    let etcdWatch: WatchClient
    let strataWatch: WatchClient

    /// Sends one request to both servers; the outcomes must be equal. Returns etcd's.
    @discardableResult
    func same(_ label: String, _ operation: @escaping Pair.Operation) async -> Outcome {
        let (etcd, strata) = await pair.both(operation)
        #expect(etcd == strata, "\(label):\n etcd:   \(etcd)\n strata: \(strata)")
        return etcd
    }

    func txn(_ label: String, _ request: Etcdserverpb_TxnRequest) async -> Etcdserverpb_TxnResponse? {
        let outcome = await same(label) { kv, _ in .txn(normalized(try await kv.txn(request))) }
        guard case .txn(let response) = outcome else { return nil }
        return response
    }

    func range(_ label: String, _ request: Etcdserverpb_RangeRequest) async -> Etcdserverpb_RangeResponse? {
        let outcome = await same(label) { kv, _ in
            var response = try await kv.range(request)
            response.header = normalized(response.header)
            return .range(response)
        }
        guard case .range(let response) = outcome else { return nil }
        return response
    }

    static func modEquals(_ key: String, _ revision: Int64) -> Etcdserverpb_Compare {
        .with {
            $0.key = Data(key.utf8)
            $0.target = .mod
            $0.result = .equal
            $0.modRevision = revision
        }
    }

    static func versionEquals(_ key: String, _ version: Int64) -> Etcdserverpb_Compare {
        .with {
            $0.key = Data(key.utf8)
            $0.target = .version
            $0.result = .equal
            $0.version = version
        }
    }

    static func put(_ key: String, _ value: String, lease: Int64 = 0) -> Etcdserverpb_RequestOp {
        .with {
            $0.requestPut = .with {
                $0.key = Data(key.utf8)
                $0.value = Data(value.utf8)
                $0.lease = lease
            }
        }
    }

    static func get(_ key: String) -> Etcdserverpb_RequestOp {
        .with { $0.requestRange = .with { $0.key = Data(key.utf8) } }
    }

    static func delete(_ key: String) -> Etcdserverpb_RequestOp {
        .with { $0.requestDeleteRange = .with { $0.key = Data(key.utf8) } }
    }

    /// store.Create: `If(mod == 0) Then(Put)`; the new object's RV is the inner put header's revision.
    func create(_ key: String, _ value: String, lease: Int64 = 0) async -> Int64? {
        let response = await txn(
            "create \(key)",
            .with {
                $0.compare = [Self.modEquals(key, 0)]
                $0.success = [Self.put(key, value, lease: lease)]
            }
        )
        guard let response, response.succeeded else { return nil }
        #expect(response.responses.first?.responsePut.hasHeader == true, "inner put header missing")
        return response.responses.first?.responsePut.header.revision
    }

    /// GuaranteedUpdate: `If(mod == R) Then(Put) Else(Get)`.
    func update(_ key: String, _ value: String, from revision: Int64) async -> Etcdserverpb_TxnResponse? {
        await txn(
            "update \(key) from \(revision)",
            .with {
                $0.compare = [Self.modEquals(key, revision)]
                $0.success = [Self.put(key, value)]
                $0.failure = [Self.get(key)]
            }
        )
    }

    /// Delete: `If(mod == R) Then(DeleteRange) Else(Get)`.
    func delete(_ key: String, from revision: Int64) async -> Etcdserverpb_TxnResponse? {
        await txn(
            "delete \(key) from \(revision)",
            .with {
                $0.compare = [Self.modEquals(key, revision)]
                $0.success = [Self.delete(key)]
                $0.failure = [Self.get(key)]
            }
        )
    }

    /// compact.go: `If(version(compact_rev_key) == t) Then(Put(compact_rev_key, rev)) Else(Get(compact_rev_key))`,
    /// then `Compact(rev)` when it won and rev != 0. Returns the new (t, rev).
    func compactionRound(version t: Int64, revision rev: Int64) async -> (Int64, Int64) {
        let response = await txn(
            "compact_rev_key CAS t=\(t)",
            .with {
                $0.compare = [Self.versionEquals("compact_rev_key", t)]
                $0.success = [Self.put("compact_rev_key", String(rev))]
                $0.failure = [Self.get("compact_rev_key")]
            }
        )
        guard let response else { return (t, rev) }
        let current = response.header.revision
        guard response.succeeded else {
            return (response.responses.first?.responseRange.kvs.first?.version ?? t, current)
        }
        if rev != 0 {
            await same("compact \(rev)") { kv, _ in
                var compacted = try await kv.compact(.with { $0.revision = rev })
                compacted.header = normalized(compacted.header)
                return .compact(compacted)
            }
        }
        return (t + 1, current)
    }

    func run() async throws {
        // 1. The four transaction shapes, each both ways.
        var pods: [String: Int64] = [:]
        for name in ["a", "b", "c", "d"] {
            let key = "/registry/pods/default/\(name)"
            pods[key] = await create(key, "pod-\(name)-v1")
            #expect(pods[key] != nil, "create \(key) failed")
        }
        #expect(await create("/registry/pods/default/a", "again") == nil, "a second create must fail")
        let podA = "/registry/pods/default/a"
        let updated = await update(podA, "pod-a-v2", from: pods[podA] ?? 0)
        #expect(updated?.succeeded == true)
        let stale = await update(podA, "pod-a-v3", from: pods[podA] ?? 0)
        #expect(stale?.succeeded == false)
        #expect(stale?.responses.first?.responseRange.kvs.first?.value == Data("pod-a-v2".utf8))
        let podB = "/registry/pods/default/b"
        let staleDelete = await delete(podB, from: 1)
        #expect(staleDelete?.succeeded == false)
        let deleted = await delete(podB, from: pods[podB] ?? 0)
        #expect(deleted?.succeeded == true)
        #expect(deleted?.responses.first?.responseDeleteRange.hasHeader == true, "inner delete header missing")
        #expect(deleted?.responses.first?.responseDeleteRange.deleted == 1)

        // 2. A resource listed in pages pinned to the first page's revision, while writes continue.
        for index in 0..<25 {
            _ = await create("/registry/configmaps/kube-system/cm-\(String(format: "%02d", index))", "data-\(index)")
        }
        let prefix = "/registry/configmaps/"
        var request = Etcdserverpb_RangeRequest.with {
            $0.key = Data(prefix.utf8)
            $0.rangeEnd = prefixEnd(prefix)
            $0.limit = 10
        }
        let first = await range("first page", request)
        #expect(first?.more == true && first?.count == 25 && first?.kvs.count == 10)
        let pinned = first?.header.revision ?? 0
        // Writes between pages must not show in later pages.
        _ = await update(
            "/registry/configmaps/kube-system/cm-15",
            "changed",
            from: await range("cm-15", .with { $0.key = Data("/registry/configmaps/kube-system/cm-15".utf8) })?
                .kvs.first?.modRevision ?? 0
        )
        _ = await create("/registry/configmaps/kube-system/cm-99", "late")
        var last = first?.kvs.last?.key ?? Data()
        var pages = 1
        while pages < 5 {
            request.key = last + Data([0])
            request.revision = pinned
            guard let page = await range("page \(pages + 1) at \(pinned)", request) else { break }
            pages += 1
            #expect(page.kvs.allSatisfy { $0.modRevision <= pinned })
            guard page.more, let next = page.kvs.last?.key else { break }
            last = next
        }
        #expect(pages == 3, "25 keys in pages of 10")
        // Count (apiserver_storage_objects), keys-only list, and a list at the pinned revision with no limit.
        _ = await range(
            "count",
            .with {
                $0.key = Data(prefix.utf8)
                $0.rangeEnd = prefixEnd(prefix)
                $0.countOnly = true
            }
        )
        _ = await range(
            "keys only",
            .with {
                $0.key = Data("/registry/".utf8)
                $0.rangeEnd = prefixEnd("/registry/")
                $0.keysOnly = true
            }
        )
        _ = await range("health probe", .with { $0.key = Data("/registry/health".utf8) })

        // 3. The compactor: bootstrap round (no compaction), then a round that compacts, then a stale round.
        var (t, rev) = await compactionRound(version: 0, revision: 0)
        for index in 0..<5 { _ = await create("/registry/events/default/e\(index)", "event") }
        (t, rev) = await compactionRound(version: t, revision: rev)
        #expect(t == 2)
        let staleRound = await txn(
            "stale compact_rev_key CAS",
            .with {
                $0.compare = [Self.versionEquals("compact_rev_key", 1)]
                $0.success = [Self.put("compact_rev_key", "0")]
                $0.failure = [Self.get("compact_rev_key")]
            }
        )
        #expect(staleRound?.succeeded == false)
        #expect(staleRound?.responses.first?.responseRange.kvs.first?.version == 2)
        // Reads and list pages below the compaction point now fail like etcd's.
        request.revision = pinned
        _ = await range("page below the compaction", request)

        // 4. The watch cache: list, then watch the prefix from rev+1 with prev_kv and progress_notify.
        let listed = await range(
            "list pods",
            .with {
                $0.key = Data("/registry/pods/".utf8)
                $0.rangeEnd = prefixEnd("/registry/pods/")
            }
        )
        let listRevision = listed?.header.revision ?? 0
        let etcdSession = WatchSession(etcdWatch)
        let strataSession = WatchSession(strataWatch)
        defer {
            etcdSession.close()
            strataSession.close()
        }
        let watchPods = Etcdserverpb_WatchRequest.with {
            $0.createRequest = .with {
                $0.key = Data("/registry/pods/".utf8)
                $0.rangeEnd = prefixEnd("/registry/pods/")
                $0.startRevision = listRevision + 1
                $0.prevKv = true
                $0.progressNotify = true
            }
        }
        etcdSession.send(watchPods)
        strataSession.send(watchPods)
        do {
            let podC = "/registry/pods/default/c"
            _ = await update(podC, "pod-c-v2", from: pods[podC] ?? 0)
            _ = await create("/registry/pods/default/e", "pod-e-v1")
            let podD = "/registry/pods/default/d"
            _ = await delete(podD, from: pods[podD] ?? 0)
        }
        let expectedEvents = 3
        for session in [etcdSession, strataSession] {
            #expect(try await session.wait { events($0).count >= expectedEvents })
        }
        let etcdEvents = events(etcdSession.responses)
        let strataEvents = events(strataSession.responses)
        #expect(etcdEvents == strataEvents, "watch events:\n etcd:   \(etcdEvents)\n strata: \(strataEvents)")
        let modifies = strataEvents.filter { $0.type == .put && $0.kv.createRevision != $0.kv.modRevision }
        let deletes = strataEvents.filter { $0.type == .delete }
        #expect(modifies.count == 1 && modifies.allSatisfy { $0.hasPrevKv }, "every modify carries prev_kv")
        #expect(deletes.count == 1 && deletes.allSatisfy { $0.hasPrevKv }, "every delete carries prev_kv")
        for (name, session) in [("etcd", etcdSession), ("strata", strataSession)] {
            let created = session.responses.first
            #expect(created?.created == true && created?.watchID == 0, "\(name): created response first")
        }
        // Idle: both send a progress notification (no events) at the current revision within a few seconds.
        let current = await range("current revision", .with { $0.key = Data("probe".utf8) })?.header.revision ?? 0
        for (name, session) in [("etcd", etcdSession), ("strata", strataSession)] {
            let notified = try await session.wait(seconds: 8) { responses in
                responses.contains { !$0.created && $0.events.isEmpty && $0.header.revision == current }
            }
            #expect(notified, "\(name): no progress notification at revision \(current)")
        }

        // 5. A master lease: granted, attached, never kept alive; expiry deletes the key with a DELETE event.
        let lease = await same("grant 2 s") { _, lease in
            var response = try await lease.leaseGrant(
                .with {
                    $0.ttl = 2; $0.id = 7001
                }
            )
            response.header = normalized(response.header)
            return .grant(response)
        }
        guard case .grant(let granted) = lease, granted.id == 7001, granted.ttl == 2 else {
            Issue.record("lease grant failed: \(lease)")
            return
        }
        let masterLease = "/registry/masterleases/127.0.0.1"
        let leaseWatch = Etcdserverpb_WatchRequest.with {
            $0.createRequest = .with {
                $0.key = Data("/registry/masterleases/".utf8)
                $0.rangeEnd = prefixEnd("/registry/masterleases/")
                $0.prevKv = true
            }
        }
        etcdSession.send(leaseWatch)
        strataSession.send(leaseWatch)
        #expect(await create(masterLease, "endpoint", lease: 7001) != nil)
        for (name, session) in [("etcd", etcdSession), ("strata", strataSession)] {
            let expired = try await session.wait(seconds: 15) { responses in
                responses.contains { $0.watchID == 1 && $0.events.contains { $0.type == .delete } }
            }
            #expect(expired, "\(name): no DELETE event after the lease expired")
        }
        let etcdDelete = etcdSession.responses.filter { $0.watchID == 1 }.flatMap(\.events).filter {
            $0.type == .delete
        }
        let strataDelete = strataSession.responses.filter { $0.watchID == 1 }.flatMap(\.events).filter {
            $0.type == .delete
        }
        #expect(etcdDelete == strataDelete, "lease expiry:\n etcd:   \(etcdDelete)\n strata: \(strataDelete)")
        #expect(strataDelete.first?.prevKv.value == Data("endpoint".utf8))
        _ = await range("master lease gone", .with { $0.key = Data(masterLease.utf8) })
        await same("lease gone") { _, lease in
            var response = try await lease.leaseTimeToLive(.with { $0.id = 7001 })
            response.header = normalized(response.header)
            return .timeToLive(response)
        }
    }
}
