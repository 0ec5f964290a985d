import StrataMVCC
import StrataRocksDB
import StrataTestSupport
import Testing

/// Collects `.events` updates until `count` events arrived (or the stream ends).
func collectEvents(_ watcher: Watcher, count: Int) async throws -> [(Revision, Event)] {
    var events: [(Revision, Event)] = []
    while events.count < count, let update = try await watcher.next() {
        if case .events(let revision, let batch) = update { events += batch.map { (revision, $0) } }
    }
    return events
}

@Suite("Watch")
struct WatchTests {
    @Test func liveEventsWithFiltersAndPrevKV() async throws {
        let f = try StoreFixture()
        try await f.put("p/a", "0")
        var request = WatchRequest(keyspace: .history, range: .prefix(b("p/")))
        request.prevKV = true
        let watcher = try f.store.watch(request)
        var noDelete = WatchRequest(keyspace: .history, range: .prefix(b("p/")))
        noDelete.noDelete = true
        let putsOnly = try f.store.watch(noDelete)
        try await f.put("p/a", "1")
        try await f.put("other", "x")
        try await f.delete("p/a")
        let events = try await collectEvents(watcher, count: 2)
        #expect(events.map(\.0) == [3, 5])
        #expect(
            events[0].1.kind == .put && s(events[0].1.kv.value) == "1" && events[0].1.prevKV.map { s($0.value) } == "0"
        )
        #expect(events[1].1.kind == .delete && events[1].1.kv.modRevision == 5 && events[1].1.kv.value.isEmpty)
        #expect(events[1].1.prevKV.map { s($0.value) } == "1")
        let puts = try await collectEvents(putsOnly, count: 1)
        #expect(puts.map(\.0) == [3] && puts[0].1.prevKV == nil)
        #expect(f.store.watchHub.recentEventBytesKept > 0)
        putsOnly.cancel()
        #expect(f.store.watchHub.recentEventBytesKept > 0)
        watcher.cancel()
        #expect(try await watcher.next() == nil)
        // No watch open: the recent events kept for catch-ups are released at once, not at the next write.
        #expect(f.store.watchHub.recentEventBytesKept == 0)
    }

    @Test func replayFromHistoryThenLiveWithoutGapsOrDuplicates() async throws {
        let f = try StoreFixture(sync: .always)
        for i in 0..<50 { try await f.put("k\(i % 5)", "\(i)") }  // revisions 2...51
        var request = WatchRequest(keyspace: .history, range: KeyRange(key: [0], end: [0]))
        request.startRevision = 10
        request.prevKV = true
        let watcher = try f.store.watch(request)
        // Keep writing while the watcher replays.
        async let writes: Void = {
            for i in 50..<150 { try await f.put("k\(i % 5)", "\(i)") }
        }()
        let events = try await collectEvents(watcher, count: 142)  // revisions 10...151
        try await writes
        #expect(events.map(\.0) == Array(10...151))
        #expect(events.allSatisfy { $0.1.kv.modRevision == $0.0 })
        #expect(events.first.map { s($0.1.kv.value) } == "8")
        #expect(events.first?.1.prevKV.map { s($0.value) } == "3")
    }

    /// Catch-up from the log only (no recent events kept), from the recent events, and from both (the first steps
    /// reach back past the recent events, the later ones do not).
    @Test(arguments: [(0, 1000), (4 << 20, 1000), (2_000, 10)])
    func slowWatcherFallsBackToLogAndLosesNothing(recentEventBytes: Int, revisionsPerStep: Int) async throws {
        let f = try StoreFixture {
            $0.watch.bufferedUpdatesPerWatcher = 4
            $0.watch.recentEventBytes = recentEventBytes
            $0.watch.maxRevisionsPerCatchUp = revisionsPerStep
        }
        let watcher = try f.store.watch(WatchRequest(keyspace: .history, range: .prefix(b("s/"))))
        for i in 0..<100 { try await f.put("s/\(i % 3)", "\(i)") }  // nobody reads meanwhile
        #expect(f.store.watchHub.counts.unsynced == 1)
        let events = try await collectEvents(watcher, count: 100)
        #expect(events.map(\.0) == Array(2...101))
        #expect(events.map { s($0.1.kv.value) } == (0..<100).map { "\($0)" })
        try await f.put("s/live", "after")
        let live = try await collectEvents(watcher, count: 1)
        #expect(live.map(\.0) == [102])
        #expect(f.store.watchHub.counts.unsynced == 0)
    }

    /// Lagging watchers caught up from the recent events get exactly what the log replay gives them: the same
    /// revisions, events, previous values and filters.
    @Test func catchUpFromRecentEventsMatchesTheLog() async throws {
        func run(recentEventBytes: Int) async throws -> [[WatchUpdate]] {
            let f = try StoreFixture {
                $0.watch.bufferedUpdatesPerWatcher = 2
                $0.watch.recentEventBytes = recentEventBytes
            }
            try await f.put("r/a", "seed")
            var requests: [WatchRequest] = []
            for (prevKV, noPut, noDelete) in [
                (true, false, false), (false, false, false), (true, true, false),
                (true, false, true),
            ] {
                var request = WatchRequest(keyspace: .history, range: .prefix(b("r/")))
                request.prevKV = prevKV
                request.noPut = noPut
                request.noDelete = noDelete
                requests.append(request)
            }
            let watchers = try requests.map { try f.store.watch($0) }
            for i in 0..<60 {
                switch i % 4 {
                case 3: try await f.delete("r/\(i % 3 == 0 ? "a" : "b")")
                case 2: try await f.put("other/\(i)", "x")
                default: try await f.put("r/\(i % 2 == 0 ? "a" : "b")", "\(i)")
                }
            }
            #expect(f.store.watchHub.counts.unsynced == watchers.count)
            // The end marker: a put (for watchers without noPut) and a delete (for the noPut one).
            try await f.put("r/end", "done")
            try await f.delete("r/end")
            var all: [[WatchUpdate]] = []
            for watcher in watchers {
                var updates: [WatchUpdate] = []
                var done = false
                while !done, let update = try await watcher.next() {
                    updates.append(update)
                    if case .events(_, let events) = update, events.contains(where: { $0.kv.key == b("r/end") }) {
                        done = true
                    }
                }
                all.append(updates)
            }
            #expect(f.store.watchHub.counts.unsynced == 0)
            return all
        }
        let fromLog = try await run(recentEventBytes: 0)
        let fromRecent = try await run(recentEventBytes: 4 << 20)
        #expect(fromLog.map(\.count).allSatisfy { $0 > 10 })
        #expect(fromRecent == fromLog)
    }

    /// One consumer serving many watchers through a group: woken with the ready ones, it polls each without
    /// waiting; a watcher that overflowed its buffer is caught up by further polls; cancel and close end it all.
    @Test func groupConsumerPollsReadyWatchers() async throws {
        let f = try StoreFixture { $0.watch.bufferedUpdatesPerWatcher = 3 }
        let group = WatchGroup()
        let a = try f.store.watch(WatchRequest(keyspace: .history, range: .prefix(b("g/a"))), group: group)
        let b2 = try f.store.watch(WatchRequest(keyspace: .history, range: .prefix(b("g/"))), group: group)
        let unrelated = try f.store.watch(WatchRequest(keyspace: .history, range: KeyRange(key: b("z"))), group: group)
        for i in 0..<20 { try await f.put("g/\(i % 2 == 0 ? "a" : "b")", "\(i)") }  // revisions 2...21
        var revisions: [Int: [Revision]] = [:]
        let watchers = [a.id: a, b2.id: b2, unrelated.id: unrelated]
        while (revisions[a.id]?.count ?? 0) < 10 || (revisions[b2.id]?.count ?? 0) < 20 {
            guard let ready = await group.next() else { break }
            #expect(!ready.contains(unrelated.id))
            var again: [Int] = []
            for id in ready {
                let (updates, more) = try #require(try watchers[id]!.poll(upTo: 4))
                #expect(updates.count <= 4)
                for case .events(let revision, _) in updates { revisions[id, default: []].append(revision) }
                if more { again.append(id) }
            }
            group.markReady(again)
        }
        #expect(revisions[a.id] == Array(stride(from: 2, through: 20, by: 2)))
        #expect(revisions[b2.id] == Array(2...21))
        #expect(try unrelated.poll(upTo: 4)?.updates == [])
        a.cancel()
        #expect(try a.poll(upTo: 4) == nil)
        group.close()
        #expect(await group.next() == nil)
    }

    @Test func compactedStartEndsTheWatch() async throws {
        let f = try StoreFixture()
        for i in 0..<10 { try await f.put("k", "\(i)") }
        try await f.store.compact(6, physical: true)
        var request = WatchRequest(keyspace: .history, range: KeyRange(key: b("k")))
        request.startRevision = 3
        let watcher = try f.store.watch(request)
        #expect(try await watcher.next() == .compacted(compactRevision: 6))
        #expect(try await watcher.next() == nil)
        request.startRevision = 6
        let ok = try f.store.watch(request)
        #expect(try await collectEvents(ok, count: 6).map(\.0) == Array(6...11))
    }

    @Test func progressNotifications() async throws {
        let f = try StoreFixture()
        var request = WatchRequest(keyspace: .history, range: KeyRange(key: b("quiet")))
        request.progressNotify = true
        let watcher = try f.store.watch(request)
        try await f.put("elsewhere", "x")
        #expect(watcher.requestProgress())
        #expect(try await watcher.next() == .progress(revision: 2))
        f.store.watchHub.tickProgress()
        #expect(try await watcher.next() == .progress(revision: 2))
        try await f.put("quiet", "now")
        f.store.watchHub.tickProgress()  // it received an event this interval: no progress
        #expect(try await collectEvents(watcher, count: 1).map(\.0) == [3])
        f.store.watchHub.tickProgress()
        #expect(try await watcher.next() == .progress(revision: 3))
    }

    @Test func emptyRangeIsRejectedAndFutureStartWaits() async throws {
        let f = try StoreFixture()
        #expect(throws: MVCCError.emptyWatchRange) {
            _ = try f.store.watch(WatchRequest(keyspace: .history, range: KeyRange(key: b("b"), end: b("a"))))
        }
        var request = WatchRequest(keyspace: .history, range: KeyRange(key: b("k")))
        request.startRevision = 4
        let watcher = try f.store.watch(request)
        try await f.put("k", "2")
        try await f.put("k", "3")
        try await f.put("k", "4")
        #expect(try await collectEvents(watcher, count: 1).map(\.0) == [4])
    }

    @Test func cancellingTheConsumerTaskEndsAWaitingNext() async throws {
        let f = try StoreFixture()
        let watcher = try f.store.watch(WatchRequest(keyspace: .history, range: KeyRange(key: b("never"))))
        let consumer = Task { try await watcher.next() }
        while f.store.watchHub.counts.watchers == 0 { await Task.yield() }
        try await Task.sleep(nanoseconds: 20_000_000)  // let it park
        consumer.cancel()
        #expect(try await consumer.value == nil)
    }

    @Test func blockedWatcherDoesNotBlockWriters() async throws {
        let f = try StoreFixture { $0.watch.bufferedUpdatesPerWatcher = 8 }
        let watchers = try (0..<50).map { _ in
            try f.store.watch(WatchRequest(keyspace: .history, range: .prefix(b(""))))
        }
        // Nobody consumes; writes must still complete (the test would hang otherwise).
        for i in 0..<500 { try await f.put("key\(i)", "v") }
        #expect(f.store.currentRevision == 501)
        #expect(f.store.watchHub.counts.unsynced == 50)
        _ = watchers
    }
}

@Suite("Watcher index")
struct WatcherIndexTests {
    @Test func intervalIndexMatchesBruteForce() {
        var random = SeededRandom(seed: 42)
        var index = IntervalIndexProbe()
        var intervals: [Int: ([UInt8], [UInt8])] = [:]
        func randomKey() -> [UInt8] {
            (0..<Int.random(in: 1...3, using: &random)).map { _ in UInt8.random(in: 97...100, using: &random) }
        }
        for id in 0..<300 {
            let a = randomKey()
            let b = randomKey()
            let (start, end) = a.lexicographicallyPrecedes(b) ? (a, b) : (b, a + [0])
            intervals[id] = (start, end)
            index.insert(id, start: start, end: end)
            if id % 7 == 0, let victim = intervals.keys.randomElement(using: &random) {
                intervals[victim] = nil
                index.remove(victim)
            }
        }
        for _ in 0..<500 {
            let key = randomKey()
            let expected = Set(
                intervals.filter {
                    !key.lexicographicallyPrecedes($0.value.0) && key.lexicographicallyPrecedes($0.value.1)
                }.keys
            )
            #expect(index.matches(key) == expected, "key \(key)")
        }
    }

    @Test func arbitraryRangeWatchersReceiveOnlyTheirKeys() async throws {
        let f = try StoreFixture()
        let middle = try f.store.watch(WatchRequest(keyspace: .history, range: KeyRange(key: b("c"), end: b("f"))))
        let fromKey = try f.store.watch(WatchRequest(keyspace: .history, range: KeyRange(key: b("e"), end: [0])))
        for key in ["a", "c", "d", "e", "g"] { try await f.put(key, "v") }
        #expect(try await collectEvents(middle, count: 3).map { s($0.1.kv.key) } == ["c", "d", "e"])
        #expect(try await collectEvents(fromKey, count: 2).map { s($0.1.kv.key) } == ["e", "g"])
    }
}

@Suite("Watch in latest-only keyspaces")
struct LatestOnlyWatchTests {
    @Test func eventsCarryOperationNamesAndSilentWritesSendNone() async throws {
        let f = try StoreFixture(sync: .always)
        let watcher = try f.store.watch(WatchRequest(keyspace: .latest, range: .prefix(b("user:"))))
        try await f.store.update(.latest, durability: .os) { txn throws(MVCCError) in
            try txn.put(b("user:1"), b("meta"), event: .named("hset"))
            try txn.put(b("user:1/field"), b("x"), event: .none)
        }
        try await f.put("user:2", "v", keyspace: .latest)
        try await f.store.update(.latest) { txn throws(MVCCError) in
            _ = try txn.delete(b("user:2"), event: .named("del"))
        }
        let events = try await collectEvents(watcher, count: 3)
        #expect(
            events.map { s($0.1.kv.key) + ":" + ($0.1.operation ?? "-") } == ["user:1:hset", "user:2:-", "user:2:del"]
        )
        // Live only: no watch from a revision.
        var past = WatchRequest(keyspace: .latest, range: .all)
        past.startRevision = 1
        #expect(throws: MVCCError.self) { _ = try f.store.watch(past) }
    }

    @Test func anOverflowingWatcherEndsWithItsOwnReason() async throws {
        let f = try StoreFixture { $0.watch.bufferedUpdatesPerWatcher = 4 }
        let watcher = try f.store.watch(WatchRequest(keyspace: .latest, range: .all))
        for i in 0..<10 { try await f.put("k\(i)", "v", keyspace: .latest) }
        var updates: [WatchUpdate] = []
        while let update = try await watcher.next() { updates.append(update) }
        #expect(updates.count == 5)
        #expect(updates.last == .overflowed(revision: 6))
        // Writers never waited for it.
        #expect(f.store.currentRevision == 11)
    }
}
