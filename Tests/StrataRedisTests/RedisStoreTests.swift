internal import StrataLease
internal import StrataMVCC
internal import StrataRedisStore
internal import StrataTestSupport
internal import Testing

/// StrataRedisStore on a real store: what DEL, FLUSHDB, SWAPDB and expiry leave behind, and that the reclaimer
/// deletes exactly that, in bounded steps.
@Suite("Redis store: layout, spaces and reclamation")
struct RedisStoreTests {
    let fixture: StoreFixture
    let spaces: RedisSpaces

    init() async throws {
        fixture = try StoreFixture(keyspaces: [.redis])
        spaces = try await RedisSpaces(store: fixture.store, databases: 16)
    }

    /// Runs `body` as one write transaction on `RedisData`.
    @discardableResult
    func write<T: Sendable>(_ body: (inout RedisData) throws(RedisError) -> T) throws -> T {
        var result: T?
        var failure: RedisError?
        _ = try fixture.store.applyUpdate(.redis) { txn throws(MVCCError) -> Void in
            var data = RedisData(store: fixture.store, spaces: spaces, transaction: txn, notify: [])
            do throws(RedisError) {
                result = try body(&data)
            } catch {
                failure = error
                throw .rejected(Rejection(code: 0, message: error.message))
            }
            txn = data.txn!
        }
        if let failure { throw failure }
        return result!
    }

    func read<T>(_ body: (inout RedisData) throws(RedisError) -> T) throws -> T {
        var data = RedisData(store: fixture.store, spaces: spaces)
        return try body(&data)
    }

    /// Entries in the keyspace whose key starts with `tag`.
    func count(_ tag: String) throws -> Int {
        try fixture.store.range(.redis, .prefix(Array(tag.utf8)), RangeOptions(keysOnly: true)).kvs.count
    }

    func makeHash(_ db: Int, _ key: String, fields: Int) throws {
        try write { data throws(RedisError) in
            var (entry, _) = try data.collection(db, b(key), .hash)
            for index in 0..<fields { try data.putMember(&entry, b("f\(index)"), b("v\(index)")) }
            _ = try data.finish(db, b(key), entry)
        }
    }

    func reclaimAll() async throws -> Int {
        var steps = 0
        var reclaimer = RedisReclaimer(store: fixture.store)
        reclaimer.batch = 100
        while try await reclaimer.step() { steps += 1 }
        return steps
    }

    /// A stream written before node records (metadata without them, no `z…n` records) gets them at its first change,
    /// from its entries, and then trims by whole nodes as any other.
    @Test func aStreamFromBeforeNodeRecordsGetsThemAtItsFirstChange() throws {
        let key = b("events")
        try write { data throws(RedisError) in
            var entry = data.newStream()
            for seq in 1...20 {
                let id = RedisStreamID(ms: 1, seq: UInt64(seq))
                try data.streamAppend(&entry, id: id, fields: [b("f"), b("v")], nodeMaxEntries: 4, nodeMaxBytes: 0)
            }
            // Nodes of 4: 1-1…1-4 (the last deleted), 1-5…1-8, …, 1-17…1-20 (the tail).
            #expect(try data.streamDelete(&entry, RedisStreamID(ms: 1, seq: 4)))
            try data.store(0, key, entry.metadata)
        }
        #expect(try count("z") == 4, "the four closed nodes have records")
        // What an older Strata wrote: no records, and the metadata's 15th field 0.
        _ = try fixture.store.applyUpdate(.redis) { txn throws(MVCCError) -> Void in
            try txn.deleteRange(.prefix(Array("z".utf8)))
        }
        try write { data throws(RedisError) in
            guard var entry = try data.lookup(0, key, as: .stream) else { throw .noSuchKey }
            entry.metadata.stream.nodeRecords = false
            try data.store(0, key, entry.metadata)
        }
        #expect(try count("z") == 0)
        let legacy = try read { data throws(RedisError) in try data.lookup(0, key, as: .stream) }
        #expect(legacy?.metadata.stream.nodeRecords == false)

        let deleted = try write { data throws(RedisError) -> Int64 in
            guard var entry = try data.lookup(0, key, as: .stream) else { throw .noSuchKey }
            // 19 entries: the first node (3 live) and the second go whole; the third would leave 8 < 10.
            let deleted = try data.streamTrim(&entry, .maxLength(10), approximate: true, limit: 0)
            try data.store(0, key, entry.metadata)
            return deleted
        }
        #expect(deleted == 7)
        let after = try #require(try read { data throws(RedisError) in try data.lookup(0, key, as: .stream) })
        #expect(after.metadata.size == 12)
        #expect(after.metadata.stream.nodeRecords)
        #expect(after.metadata.stream.nodes == 3)
        #expect(after.metadata.stream.firstID == RedisStreamID(ms: 1, seq: 9))
        #expect(try count("z") == 2, "records of the two closed nodes left")
    }

    @Test func deletingABigHashRewritesMetadataOnlyAndTheReclaimerDeletesTheRest() async throws {
        try makeHash(0, "big", fields: 2500)
        #expect(try count("m") == 1)
        #expect(try count("s") == 2500)
        let deleted = try write { data throws(RedisError) -> Bool in
            guard let entry = try data.lookup(0, b("big")) else { return false }
            try data.drop(0, b("big"), entry)
            return true
        }
        #expect(deleted)
        // DEL returned having written the metadata deletion and one reclaimer record: members are still there.
        #expect(try count("m") == 0)
        #expect(try count("g") == 1)
        #expect(try count("s") == 2500)
        #expect(try read { data throws(RedisError) in try data.lookup(0, b("big")) } == nil)
        let steps = try await reclaimAll()
        #expect(steps >= 25, "2500 members in batches of 100 take at least 25 steps, took \(steps)")
        #expect(try count("s") == 0)
        #expect(try count("g") == 0)
    }

    @Test func flushdbSwitchesSpacesAndTheOldSpaceIsReclaimed() async throws {
        try makeHash(3, "h", fields: 10)
        try write { data throws(RedisError) in try data.setString(3, b("s"), b("x")) }
        try write { data throws(RedisError) in try data.setString(4, b("keep"), b("y")) }
        #expect(try read { data throws(RedisError) in try data.keyCount(3).keys } == 2)
        let spaceBefore = spaces.space(3)
        try write { data throws(RedisError) in try data.flush([3]) }
        #expect(spaces.space(3) != spaceBefore)
        #expect(try read { data throws(RedisError) in try data.keyCount(3).keys } == 0)
        #expect(try read { data throws(RedisError) in try data.keyCount(4).keys } == 1)
        #expect(try count("G") == 1)
        _ = try await reclaimAll()
        #expect(try count("G") == 0)
        #expect(try count("g") == 0)
        #expect(try count("s") == 0, "the flushed hash's members are reclaimed too")
        #expect(try count("m") == 1)
    }

    @Test func swapdbSwapsWholeDatabasesAndSurvivesARestart() async throws {
        try write { data throws(RedisError) in try data.setString(0, b("a"), b("zero")) }
        try write { data throws(RedisError) in try data.setString(1, b("a"), b("one")) }
        try write { data throws(RedisError) in try data.swapDatabases(0, 1) }
        func value(_ db: Int, spaces: RedisSpaces) throws -> String? {
            var data = RedisData(store: fixture.store, spaces: spaces)
            return try data.lookup(db, b("a")).map { s($0.metadata.value) }
        }
        #expect(try value(0, spaces: spaces) == "one")
        #expect(try value(1, spaces: spaces) == "zero")
        try fixture.reopen()
        let reopened = try await RedisSpaces(store: fixture.store, databases: 16)
        #expect(try value(0, spaces: reopened) == "one")
        #expect(try value(1, spaces: reopened) == "zero")
    }

    @Test func anExpiredCollectionLeavesItsMembersToTheReclaimer() async throws {
        try makeHash(0, "session", fields: 50)
        let deadline = fixture.clock.wallMilliseconds() + 1000
        try write { data throws(RedisError) in
            let entry = try data.lookup(0, b("session"))!
            try data.setExpiry(0, b("session"), entry, deadline)
        }
        fixture.clock.advance(bySeconds: 2)
        #expect(try read { data throws(RedisError) in try data.lookup(0, b("session")) } == nil)
        #expect(try fixture.store.expireDueKeys() == 1)
        // The expiry hook recorded the members in the expiring transaction.
        #expect(try count("m") == 0)
        #expect(try count("g") == 1)
        _ = try await reclaimAll()
        #expect(try count("s") == 0)
        #expect(try count("g") == 0)
    }

    @Test func overwritingACollectionWithAStringDropsItsMembers() async throws {
        try makeHash(0, "k", fields: 20)
        try write { data throws(RedisError) in try data.setString(0, b("k"), b("now a string")) }
        #expect(try read { data throws(RedisError) in try data.lookup(0, b("k"))?.type } == .string)
        #expect(try count("g") == 1)
        _ = try await reclaimAll()
        #expect(try count("s") == 0)
        #expect(try count("m") == 1)
    }
}
