import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import StrataEtcdAPI
import StrataTestSupport
import SwiftProtobuf
import Testing

/// Watch responses of one stream, compared between etcd 3.4 and Strata response by response: which watch, created /
/// canceled / fragment flags, compact revision, header revision and the events themselves.
@Suite("Differential: watch streams, strata vs etcd 3.4", .serialized)
struct WatchDifferentialTests {
    /// The comparable part of a watch response (cluster/member id and Raft term legitimately differ).
    struct Shape: Equatable, CustomStringConvertible {
        var watchID: Int64
        var revision: Int64
        var created: Bool
        var canceled: Bool
        var fragment: Bool
        var compactRevision: Int64
        var events: [Mvccpb_Event]

        init(_ response: Etcdserverpb_WatchResponse) {
            watchID = response.watchID
            revision = response.header.revision
            created = response.created
            canceled = response.canceled
            fragment = response.fragment
            compactRevision = response.compactRevision
            events = response.events
        }

        var description: String {
            "watch \(watchID) rev \(revision)\(created ? " created" : "")\(canceled ? " canceled" : "")"
                + "\(fragment ? " fragment" : "") events \(events.map { "\($0.type) \(String(decoding: $0.kv.key, as: UTF8.self))" })"
        }
    }

    static func create(
        _ key: String,
        prefix: Bool = false,
        prevKV: Bool = false,
        fragment: Bool = false,
        filters: [Etcdserverpb_WatchCreateRequest.FilterType] = []
    ) -> Etcdserverpb_WatchRequest {
        .with {
            $0.createRequest = .with {
                $0.key = Data(key.utf8)
                if prefix { $0.rangeEnd = prefixEnd(key) }
                $0.prevKv = prevKV
                $0.fragment = fragment
                $0.filters = filters
            }
        }
    }

    /// Sends a put to both servers; the answers must agree.
    static func put(_ pair: Pair, _ request: Etcdserverpb_PutRequest) async {
        await same(pair) { kv, _ in
            var response = try await kv.put(request)
            response.header = normalized(response.header)
            return .put(response)
        }
    }

    static func delete(_ pair: Pair, _ request: Etcdserverpb_DeleteRangeRequest) async {
        await same(pair) { kv, _ in
            var response = try await kv.deleteRange(request)
            response.header = normalized(response.header)
            return .delete(response)
        }
    }

    static func same(_ pair: Pair, _ operation: @escaping Pair.Operation) async {
        let (etcd, strata) = await pair.both(operation)
        #expect(etcd == strata)
    }

    /// A revision whose events exceed the request size limit plus 512 KiB (etcd's threshold) is split into fragments
    /// exactly where etcd splits it (each piece as many events as fit, `fragment` on all but the last); a watcher
    /// that did not ask for fragments gets it whole.
    @Test func largeRevisionsAreFragmentedLikeEtcd() async throws {
        try await withEtcdAndStrata(
            etcdArguments: ["--max-request-bytes", "4096"],
            strataConfig: "max_request_bytes = \"4KiB\""
        ) { pair, etcdClient, strataClient in
            let value = Data(repeating: 0x76, count: 3900)
            for i in 0..<150 {
                let put = Etcdserverpb_PutRequest.with {
                    $0.key = Data("frag/\(i)".utf8)
                    $0.value = value
                }
                await Self.put(pair, put)
            }
            let sessions = [
                WatchSession(WatchClient(wrapping: etcdClient)),
                WatchSession(WatchClient(wrapping: strataClient)),
            ]
            for session in sessions {
                session.send(Self.create("frag/", prefix: true, prevKV: true, fragment: true))
                session.send(Self.create("frag/", prefix: true, prevKV: true))
                let arrived = try await session.wait { $0.filter(\.created).count == 2 }
                #expect(arrived)
            }
            // One revision, 150 delete events each carrying its 3900-byte previous value: ~585 KB of events.
            let delete = Etcdserverpb_DeleteRangeRequest.with {
                $0.key = Data("frag/".utf8)
                $0.rangeEnd = prefixEnd("frag/")
            }
            await Self.delete(pair, delete)
            for session in sessions {
                let arrived = try await session.wait { $0.flatMap(\.events).count == 300 }
                #expect(arrived)
            }
            let (etcd, strata) = (sessions[0].responses.map(Shape.init), sessions[1].responses.map(Shape.init))
            // Responses of the two watches may interleave differently; per watch they must be identical.
            for id: Int64 in [0, 1] {
                let (ours, theirs) = (strata.filter { $0.watchID == id }, etcd.filter { $0.watchID == id })
                #expect(ours == theirs, "watch \(id)\netcd:   \(theirs)\nstrata: \(ours)")
            }
            let pieces = strata.filter { $0.watchID == 0 && !$0.created }
            #expect(pieces.count == 2 && pieces.dropLast().allSatisfy(\.fragment) && !pieces.last!.fragment)
            #expect(strata.filter { $0.watchID == 1 && !$0.created }.map(\.events.count) == [150])
            for session in sessions { session.close() }
        }
    }

    /// A client that sends its create request and half-closes the stream keeps receiving events, as from etcd.
    @Test func halfClosedStreamKeepsWatching() async throws {
        try await withEtcdAndStrata { pair, etcdClient, strataClient in
            let sessions = [
                WatchSession(WatchClient(wrapping: etcdClient)), WatchSession(WatchClient(wrapping: strataClient)),
            ]
            for session in sessions {
                session.send(Self.create("half/", prefix: true))
                let created = try await session.wait { $0.contains(where: \.created) }
                #expect(created)
                session.finishSending()
            }
            try await Task.sleep(for: .milliseconds(200))
            for i in 0..<3 {
                await Self.put(
                    pair,
                    .with {
                        $0.key = Data("half/\(i)".utf8)
                        $0.value = Data("v".utf8)
                    }
                )
            }
            for session in sessions {
                let arrived = try await session.wait { $0.flatMap(\.events).count == 3 }
                #expect(arrived)
            }
            let (etcd, strata) = (sessions[0].responses.map(Shape.init), sessions[1].responses.map(Shape.init))
            #expect(strata.flatMap(\.events) == etcd.flatMap(\.events))
            #expect(strata.flatMap(\.events).count == 3)
            for session in sessions { session.close() }
        }
    }

    /// Creating with a future start revision and with `range_end = "\0"` (every key from `key` on), then cancelling:
    /// the same responses as etcd's, watch by watch (created headers, events, the canceled response).
    @Test func futureStartAllKeysAndCancelLikeEtcd() async throws {
        try await withEtcdAndStrata { pair, etcdClient, strataClient in
            func put(_ key: String) async {
                await Self.put(
                    pair,
                    .with {
                        $0.key = Data(key.utf8)
                        $0.value = Data("v".utf8)
                    }
                )
            }
            await put("c/seed")
            let current = try await Etcdserverpb_KV.Client(wrapping: strataClient).range(
                .with { $0.key = Data("x".utf8) }
            )
            .header.revision
            let sessions = [
                WatchSession(WatchClient(wrapping: etcdClient)), WatchSession(WatchClient(wrapping: strataClient)),
            ]
            for session in sessions {
                session.send(Self.create("c/a"))
                var future = Self.create("c/", prefix: true)
                future.createRequest.startRevision = current + 2
                session.send(future)
                var fromKey = Self.create("c/")
                fromKey.createRequest.rangeEnd = Data([0])
                session.send(fromKey)
                let created = try await session.wait { $0.filter(\.created).count == 3 }
                #expect(created)
            }
            await put("c/a")
            await put("c/b")
            await put("d/after")  // only the "\0" watcher sees keys past the prefix
            for session in sessions {
                session.send(.with { $0.cancelRequest = .with { $0.watchID = 0 } })
                let canceled = try await session.wait { $0.contains { $0.canceled && $0.watchID == 0 } }
                #expect(canceled)
            }
            await put("c/a")
            for session in sessions {
                let arrived = try await session.wait { $0.filter { $0.watchID == 2 }.flatMap(\.events).count == 4 }
                #expect(arrived)
            }
            let (etcd, strata) = (sessions[0].responses.map(Shape.init), sessions[1].responses.map(Shape.init))
            for id: Int64 in [0, 1, 2] {
                let (ours, theirs) = (strata.filter { $0.watchID == id }, etcd.filter { $0.watchID == id })
                #expect(ours == theirs, "watch \(id)\netcd:   \(theirs)\nstrata: \(ours)")
            }
            for session in sessions { session.close() }
        }
    }

    /// Many watchers on one stream (keys, prefixes, previous values, filters): every watcher's `created` comes
    /// before its events, and each receives exactly etcd's events, in etcd's order.
    @Test func manyWatchersOnOneStreamGetEtcdsEvents() async throws {
        try await withEtcdAndStrata { pair, etcdClient, strataClient in
            let sessions = [
                WatchSession(WatchClient(wrapping: etcdClient)),
                WatchSession(WatchClient(wrapping: strataClient)),
            ]
            var creates: [Etcdserverpb_WatchRequest] = []
            for i in 0..<40 {
                switch i % 4 {
                case 0: creates.append(Self.create("m/\(i % 8)"))
                case 1: creates.append(Self.create("m/", prefix: true, prevKV: true))
                case 2: creates.append(Self.create("m/", prefix: true, filters: [.nodelete]))
                default: creates.append(Self.create("m/\(i % 8)", prevKV: true, filters: [.noput]))
                }
            }
            for (index, session) in sessions.enumerated() {
                for create in creates { session.send(create) }
                // Generous: on a loaded CI machine (many servers fsyncing at once) 10 s were once not enough.
                let arrived = try await session.wait(seconds: 30) { $0.filter(\.created).count == creates.count }
                #expect(
                    arrived,
                    "\(index == 0 ? "etcd" : "strata"): \(session.responses.filter(\.created).count) created"
                )
            }
            var random = SeededRandom(seed: 7)
            for step in 0..<60 {
                let key = Data("m/\(Int.random(in: 0..<8, using: &random))".utf8)
                if step % 5 == 4 {
                    let delete = Etcdserverpb_DeleteRangeRequest.with { $0.key = key }
                    await Self.delete(pair, delete)
                } else {
                    let put = Etcdserverpb_PutRequest.with {
                        $0.key = key
                        $0.value = Data("v\(step)".utf8)
                    }
                    await Self.put(pair, put)
                }
            }
            // The last write reaches every prefix watcher without filters: wait for it on both.
            let marker = Etcdserverpb_PutRequest.with {
                $0.key = Data("m/end".utf8)
                $0.value = Data("end".utf8)
            }
            await Self.put(pair, marker)
            for (index, session) in sessions.enumerated() {
                let arrived = try await session.wait(seconds: 30) {
                    $0.flatMap(\.events).filter { $0.kv.key == marker.key }.count == 20
                }
                #expect(arrived, "\(index == 0 ? "etcd" : "strata")")
            }
            func byWatch(_ responses: [Etcdserverpb_WatchResponse]) -> [Int64: [Shape]] {
                Dictionary(grouping: responses.map(Shape.init), by: \.watchID)
            }
            let (etcd, strata) = (byWatch(sessions[0].responses), byWatch(sessions[1].responses))
            #expect(etcd.count == creates.count)
            for (id, shapes) in strata {
                #expect(shapes.first?.created == true, "watch \(id) got events before its created response")
                // Responses may batch revisions differently; the event sequence per watcher must be identical.
                #expect(shapes.flatMap(\.events) == (etcd[id] ?? []).flatMap(\.events), "watch \(id)")
            }
            for session in sessions { session.close() }
        }
    }

    /// Watch ids are assigned exactly as etcd assigns them: on one stream, nine watches created one after another
    /// (prefix and single-key watches, filters, `prev_kv`, start revisions in the past, one ~25 revisions in the
    /// future), then the future one canceled. Clients match responses by id, so every created id and the canceled
    /// echo must be etcd's. Run against Strata started as harnesses start etcd (`strata etcd`).
    @Test func watchIDsAreAssignedAsEtcdAssignsThem() async throws {
        try await withEtcdAndStrata(launch: .etcdPersonality) { pair, etcdClient, strataClient in
            for i in 0..<6 {
                await Self.put(
                    pair,
                    .with {
                        $0.key = Data("ids/\(i % 3)".utf8)
                        $0.value = Data("v\(i)".utf8)
                    }
                )
            }
            let current = try await Etcdserverpb_KV.Client(wrapping: strataClient).range(
                .with { $0.key = Data("ids/0".utf8) }
            )
            .header.revision
            var creates: [Etcdserverpb_WatchRequest] = [
                Self.create("ids/", prefix: true),
                Self.create("ids/0"),
                Self.create("ids/", prefix: true, filters: [.nodelete]),
                Self.create("ids/1", prevKV: true),
                Self.create("ids/", prefix: true, prevKV: true, filters: [.noput]),
            ]
            var past = Self.create("ids/", prefix: true)
            past.createRequest.startRevision = 2
            creates.append(past)
            var recent = Self.create("ids/2", prevKV: true)
            recent.createRequest.startRevision = current - 2
            creates.append(recent)
            var empty = Self.create("ids/z")
            empty.createRequest.rangeEnd = Data("ids/a".utf8)  // key >= end: refused, with no id
            creates.append(empty)
            var negative = Self.create("ids/0")
            negative.createRequest.startRevision = -3
            creates.append(negative)
            var future = Self.create("ids/", prefix: true)
            future.createRequest.startRevision = current + 25
            creates.append(future)
            let sessions = [
                WatchSession(WatchClient(wrapping: etcdClient)), WatchSession(WatchClient(wrapping: strataClient)),
            ]
            for (index, session) in sessions.enumerated() {
                for create in creates {
                    let before = session.responses.filter(\.created).count
                    session.send(create)
                    // One at a time, as the issue's client did: ids depend on the order of creation.
                    let created = try await session.wait { $0.filter(\.created).count == before + 1 }
                    #expect(created, "\(index == 0 ? "etcd" : "strata") did not answer a create")
                }
            }
            let createdIDs = sessions.map { $0.responses.filter(\.created).map(\.watchID) }
            #expect(createdIDs[1] == createdIDs[0], "created ids: etcd \(createdIDs[0]), strata \(createdIDs[1])")
            let futureID = createdIDs[0].last ?? -1
            for i in 0..<4 {
                await Self.put(
                    pair,
                    .with {
                        $0.key = Data("ids/\(i)".utf8)
                        $0.value = Data("w\(i)".utf8)
                    }
                )
            }
            for session in sessions {
                session.send(.with { $0.cancelRequest = .with { $0.watchID = futureID } })
                let canceled = try await session.wait { $0.contains { $0.canceled && $0.watchID == futureID } }
                #expect(canceled)
                let arrived = try await session.wait { $0.filter { $0.watchID == 0 }.flatMap(\.events).count == 4 }
                #expect(arrived)
            }
            let (etcd, strata) = (sessions[0].responses.map(Shape.init), sessions[1].responses.map(Shape.init))
            for id in Set(etcd.map(\.watchID)).sorted() where id >= 0 {
                let (ours, theirs) = (strata.filter { $0.watchID == id }, etcd.filter { $0.watchID == id })
                // Responses may batch revisions differently; the flags and the event sequence must be etcd's.
                #expect(ours.map(\.created) == theirs.map(\.created), "watch \(id)\netcd:   \(theirs)\nstrata: \(ours)")
                #expect(ours.flatMap(\.events) == theirs.flatMap(\.events), "watch \(id)")
                #expect(ours.map(\.canceled) == theirs.map(\.canceled), "watch \(id)")
            }
            for session in sessions { session.close() }
        }
    }
}
