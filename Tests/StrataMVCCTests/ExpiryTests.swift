import StrataLease
import StrataMVCC
import StrataRocksDB
import StrataTestSupport
import Testing

/// Per-key expiry in latest-only keyspaces: invisible once due, deleted by the expirer as `expired` events.
@Suite("Key expiry")
struct ExpiryTests {
    func deadline(_ f: StoreFixture, in milliseconds: Int64) -> Expiry {
        .at(f.clock.wallMilliseconds() + milliseconds)
    }

    @Test func expiredKeysAreInvisibleToEveryRead() async throws {
        let f = try StoreFixture()
        try await f.put("ttl", "v", expiry: deadline(f, in: 1000), keyspace: .latest)
        try await f.put("forever", "v", keyspace: .latest)
        #expect(try f.get("ttl", keyspace: .latest)?.expiresAt == f.clock.wallMilliseconds() + 1000)
        f.clock.advance(bySeconds: 0.999)
        #expect(try f.get("ttl", keyspace: .latest) != nil)
        f.clock.advance(bySeconds: 0.001)
        #expect(try f.get("ttl", keyspace: .latest) == nil)
        #expect(try f.keys(.all, keyspace: .latest) == ["forever"])
        #expect(try f.store.range(.latest, .all, RangeOptions(countOnly: true)).count == 1)
        let inside = try await f.store.update(.latest) { txn throws(MVCCError) in
            (try txn.get(b("ttl")), try txn.range(.all).kvs.map { s($0.key) })
        }
        #expect(inside.0 == nil && inside.1 == ["forever"])
        // Expiry needs a latest-only keyspace with compact records.
        await #expect(throws: MVCCError.self) { try await f.put("x", "v", expiry: deadline(f, in: 10)) }
    }

    @Test func theExpirerDeletesDueKeysAsExpiredEvents() async throws {
        let f = try StoreFixture()
        let watcher = try f.store.watch(WatchRequest(keyspace: .latest, range: .all))
        try await f.put("a", "1", expiry: deadline(f, in: 100), keyspace: .latest, event: .named("set"))
        try await f.put("b", "2", expiry: deadline(f, in: 300), keyspace: .latest, event: .named("set"))
        #expect(try f.store.expireDueKeys() == 0)
        f.clock.advance(bySeconds: 0.2)
        #expect(try f.store.expireDueKeys() == 1)
        #expect(try f.store.expireDueKeys() == 0)
        f.clock.advance(bySeconds: 0.2)
        #expect(try f.store.expireDueKeys() == 1)
        let events = try await collectEvents(watcher, count: 4)
        #expect(
            events.map { s($0.1.kv.key) + ":" + ($0.1.operation ?? "-") } == [
                "a:set", "b:set", "a:expired", "b:expired",
            ]
        )
        #expect(events[2].1.kind == .delete && events[2].0 == 4)
        #expect(f.store.currentRevision == 5)  // each expiry is its own revision
    }

    @Test func writesKeepOrClearTheExpiryAndMoveTheIndex() async throws {
        let f = try StoreFixture()
        try await f.put("set", "v", expiry: deadline(f, in: 100), keyspace: .latest)
        try await f.put("set", "v2", keyspace: .latest)  // SET without KEEPTTL: no expiry any more
        try await f.put("keep", "v", expiry: deadline(f, in: 100), keyspace: .latest)
        try await f.put("keep", "v2", expiry: .keep, keyspace: .latest)
        try await f.put("moved", "v", expiry: deadline(f, in: 100), keyspace: .latest)
        let moved = try await f.store.update(.latest) { txn throws(MVCCError) in
            try txn.setExpiry(b("moved"), deadline(f, in: 5000), event: .named("expire"))
        }
        #expect(moved?.modRevision == 7 && moved.map { s($0.value) } == "v")
        let missing = try await f.store.update(.latest) { txn throws(MVCCError) in
            try txn.setExpiry(b("missing"), .none)
        }
        #expect(missing == nil)
        f.clock.advance(bySeconds: 1)
        #expect(try f.store.expireDueKeys() == 1)
        #expect(try f.keys(.all, keyspace: .latest) == ["moved", "set"])
        f.clock.advance(bySeconds: 5)
        #expect(try f.store.expireDueKeys() == 1)
        #expect(try f.keys(.all, keyspace: .latest) == ["set"])
    }

    @Test func aWriteToAnExpiredKeyDeletesItFirst() async throws {
        let f = try StoreFixture()
        let watcher = try f.store.watch(WatchRequest(keyspace: .latest, range: .all))
        try await f.put("k", "old", expiry: deadline(f, in: 10), keyspace: .latest)
        f.clock.advance(bySeconds: 1)
        let previous = try await f.store.update(.latest) { txn throws(MVCCError) in
            try txn.put(b("k"), b("new")).previous
        }
        #expect(previous == nil)
        let events = try await collectEvents(watcher, count: 3)
        #expect(events.map { "\($0.1.kind)/\($0.1.operation ?? "-")" } == ["put/-", "delete/expired", "put/-"])
        #expect(events[1].0 == events[2].0)  // one revision
        #expect(try f.store.expireDueKeys() == 0)  // the index entry went with it
        #expect(try f.get("k", keyspace: .latest).map { s($0.value) } == "new")
        let deleted = try await f.store.update(.latest) { txn throws(MVCCError) in try txn.delete(b("k")) }
        #expect(deleted != nil)
    }

    @Test func theIndexSurvivesARestartAndIsReadInBoundedSteps() async throws {
        let f = try StoreFixture(sync: .always)
        try await f.store.update(.latest) { txn throws(MVCCError) in
            for i in 0..<2500 { try txn.put(b("k\(i)"), b("v"), expiry: .at(txn.now + Int64(1 + i % 50))) }
        }
        try await f.put("late", "v", expiry: deadline(f, in: 60_000), keyspace: .latest)
        try f.reopen()
        f.clock.advance(bySeconds: 1)
        #expect(try f.store.expireDueKeys(limit: 1000) == 1000)
        #expect(try f.store.expireDueKeys(limit: 1000) == 1000)
        #expect(try f.store.expireDueKeys(limit: 1000) == 500)
        #expect(try f.store.expireDueKeys(limit: 1000) == 0)
        #expect(try f.keys(.all, keyspace: .latest) == ["late"])
        // A write with an earlier deadline than the expirer's position is still found.
        try await f.put("early", "v", expiry: .at(f.clock.wallMilliseconds() - 5), keyspace: .latest)
        #expect(try f.store.expireDueKeys() == 1)
    }

    @Test func theBackgroundExpirerRunsOnItsOwn() async throws {
        let f = try StoreFixture { $0.expiry.interval = .milliseconds(100) }
        try await f.put("k", "v", expiry: deadline(f, in: 50), keyspace: .latest)
        let background = Task { try await f.store.runBackgroundTasks() }
        defer { background.cancel() }
        let watcher = try f.store.watch(WatchRequest(keyspace: .latest, range: .all))
        while f.clock.sleeperCount < 3 { await Task.yield() }
        f.clock.advance(bySeconds: 0.2)
        let events = try await collectEvents(watcher, count: 1)
        #expect(events.first?.1.operation == Event.expired)
        #expect(try f.store.range(.latest, .all, RangeOptions(countOnly: true)).count == 0)
    }
}
