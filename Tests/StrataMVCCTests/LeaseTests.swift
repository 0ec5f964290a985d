import StrataLease
import StrataMVCC
import StrataRocksDB
import StrataTestSupport
import Testing

@Suite("Leases in the store")
struct StoreLeaseTests {
    @Test func grantAttachRevokeDeletesKeysInOneRevision() async throws {
        let f = try StoreFixture()
        let lease = try await f.store.grantLease(id: 0, ttl: 1)
        #expect(lease.id > 0 && lease.ttl == 2)  // raised to the 2 s minimum
        try await f.put("a", "1", lease: lease.id)
        try await f.put("b", "2", lease: lease.id)
        try await f.put("c", "3")
        var request = WatchRequest(keyspace: .history, range: KeyRange(key: [0], end: [0]))
        request.prevKV = true
        let watcher = try f.store.watch(request)
        let ttl = try #require(try f.store.timeToLive(lease.id, keys: true))
        #expect(ttl.granted == 2 && ttl.keys.map(s).sorted() == ["a", "b"])
        let revision = try await f.store.revokeLease(lease.id)
        #expect(revision == 5)  // granting takes no revision; the three puts took 2...4
        #expect(try f.get("a") == nil && f.get("b") == nil && f.get("c") != nil)
        let events = try await collectEvents(watcher, count: 2)
        #expect(events.allSatisfy { $0.0 == 5 && $0.1.kind == .delete && $0.1.prevKV != nil })
        #expect(try f.store.timeToLive(lease.id, keys: false) == nil)
        await #expect(throws: MVCCError.leaseNotFound) { try await f.store.revokeLease(lease.id) }
    }

    @Test func grantErrors() async throws {
        let f = try StoreFixture()
        _ = try await f.store.grantLease(id: 7, ttl: 10)
        await #expect(throws: MVCCError.leaseAlreadyExists) { _ = try await f.store.grantLease(id: 7, ttl: 10) }
        await #expect(throws: MVCCError.leaseTTLTooLarge) {
            _ = try await f.store.grantLease(id: 8, ttl: 9_000_000_001)
        }
        #expect(f.store.leases() == [7])
    }

    @Test func expiryDeletesKeysWithInjectedClock() async throws {
        let f = try StoreFixture()
        let lease = try await f.store.grantLease(id: 5, ttl: 10)
        try await f.put("session", "x", lease: lease.id)
        let expiry = f.store.leaseExpiry
        f.clock.advance(bySeconds: 9)
        #expect(await expiry.runOnce() == 0)
        #expect(f.store.keepAlive(lease.id) == 10)  // renewed to the full TTL
        f.clock.advance(bySeconds: 9.5)
        #expect(await expiry.runOnce() == 0)
        // 0.5 s left: whole seconds, truncated as etcd reports them.
        #expect(try f.store.timeToLive(lease.id, keys: false)?.remaining == 0)
        f.clock.advance(bySeconds: 1)
        #expect(await expiry.runOnce() == 1)
        #expect(try f.get("session") == nil)
        #expect(f.store.keepAlive(lease.id) == nil)
        #expect(f.store.currentRevision == 3)
    }

    @Test func restartReArmsLeasesWithFullTTL() async throws {
        let f = try StoreFixture(sync: .always)
        _ = try await f.store.grantLease(id: 9, ttl: 30)
        try await f.put("k", "v", lease: 9)
        f.clock.advance(bySeconds: 25)
        try f.reopen()
        #expect(f.store.leases() == [9])
        #expect(try f.store.timeToLive(9, keys: true)?.remaining == 30)
        #expect(try f.store.timeToLive(9, keys: true)?.keys.map(s) == ["k"])
        f.clock.advance(bySeconds: 31)
        #expect(await f.store.leaseExpiry.runOnce() == 1)
        #expect(try f.get("k") == nil)
    }

    @Test func reattachingMovesKeyBetweenLeases() async throws {
        let f = try StoreFixture()
        _ = try await f.store.grantLease(id: 1, ttl: 10)
        _ = try await f.store.grantLease(id: 2, ttl: 10)
        try await f.put("k", "v", lease: 1)
        try await f.put("k", "v", lease: 2)
        try await f.store.revokeLease(1)
        #expect(try f.get("k")?.lease == 2)
        try await f.store.revokeLease(2)
        #expect(try f.get("k") == nil)
    }
}

@Suite("Expiry queue and clock")
struct ExpiryQueueTests {
    @Test func popsInDeadlineOrderAndHonoursReschedule() {
        var queue = ExpiryQueue<Int>()
        for id in 0..<1000 { queue.schedule(id, at: Int64(1000 - id)) }
        queue.schedule(0, at: 5000)  // moved later
        queue.cancel(1)
        #expect(queue.count == 999)
        let first = queue.popExpired(now: 10)
        #expect(first == [999, 998, 997, 996, 995, 994, 993, 992, 991, 990])
        let rest = queue.popExpired(now: 4999)
        #expect(rest.count == 988 && !rest.contains(0) && !rest.contains(1))
        #expect(queue.nextDeadline() == 5000)
        #expect(queue.popExpired(now: 5000) == [0])
        #expect(queue.count == 0)
    }

    @Test func millionsOfRescheduledKeysStayBounded() {
        var queue = ExpiryQueue<Int>()
        for round in 0..<5 {
            for id in 0..<20_000 { queue.schedule(id, at: Int64(round * 100_000 + id)) }
        }
        #expect(queue.count == 20_000)
        #expect(queue.popExpired(now: .max).count == 20_000)
    }

    @Test func manualClockWakesSleepers() async throws {
        let clock = ManualClock()
        let start = clock.now()
        async let slept: Void = clock.sleep(until: start + 1_000)
        while clock.sleeperCount == 0 { await Task.yield() }
        clock.advance(by: 1_000)
        try await slept
        #expect(clock.now() == start + 1_000)
    }
}
