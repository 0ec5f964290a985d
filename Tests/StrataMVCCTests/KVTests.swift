import StrataLease
import StrataMVCC
import StrataRocksDB
import StrataTestSupport
import Testing

@Suite("MVCC key-value semantics")
struct KVTests {
    @Test func revisionsVersionsAndDeletes() async throws {
        let f = try StoreFixture()
        #expect(f.store.currentRevision == 1)
        let first = try await f.put("a", "1")
        #expect(first.modRevision == 2)
        var kv = try #require(try f.get("a"))
        #expect((kv.createRevision, kv.modRevision, kv.version, s(kv.value)) == (2, 2, 1, "1"))

        try await f.put("a", "2")
        kv = try #require(try f.get("a"))
        #expect((kv.createRevision, kv.modRevision, kv.version) == (2, 3, 2))

        let deleted = try await f.delete("a")
        #expect(deleted.map { s($0.value) } == ["2"])
        #expect(f.store.currentRevision == 4)
        #expect(try f.get("a") == nil)

        // A delete matching nothing does not take a revision.
        #expect(try await f.delete("a").isEmpty)
        #expect(f.store.currentRevision == 4)

        try await f.put("a", "3")
        kv = try #require(try f.get("a"))
        #expect((kv.createRevision, kv.modRevision, kv.version) == (5, 5, 1))
    }

    @Test func rangeOptions() async throws {
        let f = try StoreFixture()
        for (i, key) in ["a", "b", "c", "d", "e"].enumerated() {
            try await f.put(key, String(repeating: "x", count: 5 - i))
        }
        try await f.put("b", "bb")  // rev 7

        #expect(try f.keys(KeyRange(key: b("b"), end: b("e"))) == ["b", "c", "d"])
        var result = try f.store.range(.history, KeyRange(key: b("b"), end: b("e")), RangeOptions(limit: 2))
        #expect(result.kvs.map { s($0.key) } == ["b", "c"] && result.more && result.count == 2)
        #expect(result.revision == 7)
        result = try f.store.range(.history, KeyRange(key: b("b"), end: b("e")), RangeOptions(limit: 2, countAll: true))
        #expect(result.kvs.count == 2 && result.more && result.count == 3)
        result = try f.store.range(.history, KeyRange(key: b("b"), end: b("e")), RangeOptions(limit: 3))
        #expect(result.kvs.count == 3 && !result.more)

        #expect(try f.keys(KeyRange(key: b("c"), end: [0])) == ["c", "d", "e"])  // from-key
        #expect(try f.keys(.all).count == 5)
        #expect(try f.keys(.all, RangeOptions(reverse: true)) == ["e", "d", "c", "b", "a"])
        #expect(try f.keys(KeyRange(key: b("b"), end: b("e")), RangeOptions(limit: 2, reverse: true)) == ["d", "c"])

        result = try f.store.range(.history, .all, RangeOptions(countOnly: true))
        #expect(result.kvs.isEmpty && result.count == 5 && !result.more)
        #expect(try f.store.range(.history, .all, RangeOptions(keysOnly: true)).kvs.allSatisfy { $0.value.isEmpty })
        // Empty keys are the front-end's business (etcd refuses them; Redis allows them).
        try await f.put("", "empty")
        #expect(try f.get("").map { s($0.value) } == "empty")
    }

    @Test func historicalReadsAndRevisionErrors() async throws {
        let f = try StoreFixture()
        try await f.put("k", "v2")  // rev 2
        try await f.put("k", "v3")  // rev 3
        try await f.put("other", "o")  // rev 4
        try await f.delete("k")  // rev 5
        try await f.put("k", "v6")  // rev 6
        #expect(try f.get("k", revision: 2).map { s($0.value) } == "v2")
        #expect(try f.get("k", revision: 4).map { s($0.value) } == "v3")
        #expect(try f.get("k", revision: 5) == nil)
        #expect(try f.get("k", revision: 1) == nil)
        let historical = try f.store.range(.history, .all, RangeOptions(revision: 4, countAll: true))
        #expect(historical.kvs.map { s($0.key) } == ["k", "other"] && historical.count == 2)
        #expect(historical.revision == 6)  // the header shows the current revision
        let page = try f.store.range(.history, .all, RangeOptions(revision: 4, limit: 1, countAll: true))
        #expect(page.kvs.count == 1 && page.more && page.count == 2)
        #expect(try f.keys(.all, RangeOptions(revision: 4, reverse: true)) == ["other", "k"])

        #expect(throws: MVCCError.futureRevision) { _ = try f.get("k", revision: 7) }
        try await f.store.compact(3, physical: true)
        #expect(throws: MVCCError.compacted(compactRevision: 3)) { _ = try f.get("k", revision: 2) }
        #expect(try f.get("k", revision: 3).map { s($0.value) } == "v3")  // at the compaction revision is fine
        #expect(try f.get("k", revision: 4).map { s($0.value) } == "v3")
        await #expect(throws: MVCCError.compacted(compactRevision: 3)) { try await f.store.compact(3) }
        await #expect(throws: MVCCError.futureRevision) { try await f.store.compact(99) }
    }

    /// etcd's compaction point starts below every revision: one compaction at 0 is accepted on a store never
    /// compacted (also after a restart), any later one at 0 is "compacted", and negative revisions always are.
    @Test func compactionAtZeroOnlyBeforeAnyCompaction() async throws {
        let f = try StoreFixture()
        try await f.put("k", "v")
        await #expect(throws: MVCCError.compacted(compactRevision: 0)) { try await f.store.compact(-1) }
        try f.reopen()
        try await f.store.compact(0)
        #expect(f.store.compactRevision == 0)
        #expect(try f.get("k").map { s($0.value) } == "v")
        await #expect(throws: MVCCError.compacted(compactRevision: 0)) { try await f.store.compact(0) }
        try f.reopen()
        await #expect(throws: MVCCError.compacted(compactRevision: 0)) { try await f.store.compact(0) }
        try await f.store.compact(1)
        await #expect(throws: MVCCError.compacted(compactRevision: 1)) { try await f.store.compact(1) }
    }

    /// With sync = always a write reaches RocksDB before its fsync and publication, so a read in between must use
    /// the published view's own snapshot — also the view the store opened with, before its first write (it once had
    /// none, and a read then failed with a storage error: a watch from revision 1 created during the first writes
    /// died that way). Compactions, published from outside the committer, must not take the view back.
    @Test func readsDuringSyncedCommitsSeeThePublishedView() async throws {
        for round in 0..<10 {
            let f = try StoreFixture(sync: .always)
            let writer = Task {
                for i in 0..<20 { try await f.put("k\(i)", "v") }
            }
            var reads = 0
            var last: Revision = 0
            do {
                while last < 21 {
                    await Task.yield()
                    let result = try f.store.range(.history, .prefix(b("k")), RangeOptions(countAll: true))
                    #expect(result.revision >= last, "round \(round): the view went back")
                    #expect(
                        result.count == result.revision - 1,
                        "round \(round): \(result.count) at \(result.revision)"
                    )
                    last = result.revision
                    reads += 1
                    if round % 2 == 1 && last >= 5 && f.store.compactRevision == 0 {
                        try await f.store.compact(last - 1)
                    }
                }
            } catch {
                Issue.record("round \(round): \(error)")
            }
            try await writer.value  // before the fixture closes the database
            #expect(reads > 1)
            if round % 2 == 1 { #expect(f.store.compactRevision > 0) }
        }
    }

    @Test func compactionKeepsNewestAtOrBelowUnlessDeleted() async throws {
        let f = try StoreFixture()
        try await f.put("live", "1")  // 2
        try await f.put("live", "2")  // 3
        try await f.put("dead", "x")  // 4
        try await f.delete("dead")  // 5
        try await f.put("live", "3")  // 6
        try await f.store.compact(5, physical: true)
        #expect(try f.get("live", revision: 5).map { s($0.value) } == "2")
        #expect(try f.get("dead", revision: 5) == nil)
        #expect(try f.get("live").map { s($0.value) } == "3")
        #expect(try f.keys(.all, RangeOptions(revision: 5)) == ["live"])
        // Survives a restart with the compaction point.
        try f.reopen()
        #expect(f.store.compactRevision == 5)
        #expect(throws: MVCCError.compacted(compactRevision: 5)) { _ = try f.get("live", revision: 4) }
        #expect(try f.get("live", revision: 5).map { s($0.value) } == "2")
    }

    @Test func keyspacesAreIsolated() async throws {
        let f = try StoreFixture()
        try await f.put("k", "history")
        try await f.put("k", "other", keyspace: .otherHistory)
        try await f.put("k", "latest", keyspace: .latest)
        #expect(try f.get("k").map { s($0.value) } == "history")
        #expect(try f.get("k", keyspace: .otherHistory).map { s($0.value) } == "other")
        #expect(try f.get("k", keyspace: .latest).map { s($0.value) } == "latest")
        #expect(f.store.currentRevision == 4)  // one revision sequence
        #expect(try f.keys(.all) == ["k"])
        // Latest-only keyspaces keep no history.
        #expect(throws: MVCCError.self) { _ = try f.get("k", revision: 2, keyspace: .latest) }
        // A keyspace the store was not opened with is refused.
        let stranger = Keyspace(id: 99, name: "stranger", history: .full)
        await #expect(throws: MVCCError.self) { try await f.put("k", "v", keyspace: stranger) }
        #expect(throws: MVCCError.self) { _ = try f.store.get(stranger, b("k")) }
    }

    @Test func keyspaceIdsKeepTheirOwner() throws {
        let directory = TemporaryDirectory()
        let clock = ManualClock()
        do {
            let (database, store) = try StoreFixture.open(directory.appending("db"), .defaults, [.history], clock)
            store.close()
            try database.close()
        }
        let renamed = Keyspace(id: Keyspace.history.id, name: "renamed", history: .full)
        let error = #expect(throws: (any Error).self) {
            _ = try StoreFixture.open(directory.appending("db"), .defaults, [renamed], clock)
        }
        #expect("\(error!)".contains("keyspace id 10 holds 'history/full/versioned' data"))
        // The owner itself reopens fine.
        let (database, store) = try StoreFixture.open(directory.appending("db"), .defaults, [.history], clock)
        store.close()
        try database.close()
    }

    @Test func restartKeepsRevisionAndData() async throws {
        let f = try StoreFixture(sync: .always)
        try await f.put("a", "1")
        try await f.put("b", "2")
        try await f.delete("a")
        try await f.put("x", "latest", keyspace: .latest)
        try f.reopen()
        #expect(f.store.currentRevision == 5)
        #expect(try f.get("a") == nil)
        #expect(try f.get("b").map { s($0.value) } == "2")
        #expect(try f.get("a", revision: 3).map { s($0.value) } == "1")
        #expect(try f.get("x", keyspace: .latest)?.modRevision == 5)
        #expect(try await f.put("c", "3").modRevision == 6)
    }

    @Test func unknownFormatVersionIsAClearError() throws {
        let directory = TemporaryDirectory()
        var rocks = RocksDB.Configuration.defaults
        rocks.prepareForMVCCStore()
        do {
            let database = try RocksDB(path: directory.appending("db"), configuration: rocks)
            try database.put(Array("strata/format".utf8), [0, 0, 0, 9])
            try database.close()
        }
        let database = try RocksDB(path: directory.appending("db"), configuration: rocks)
        let error = #expect(throws: MVCCError.self) { _ = try MVCCStore(database: database, keyspaces: [.history]) }
        #expect("\(error!)".contains("unsupported storage format version 9"))
    }

    @Test func concurrentWritersGetDistinctGaplessRevisions() async throws {
        let f = try StoreFixture(sync: .always)
        let revisions = try await withThrowingTaskGroup(of: [Revision].self) { group in
            for writer in 0..<16 {
                group.addTask {
                    var mine: [Revision] = []
                    for i in 0..<20 {
                        let keyspace: Keyspace = writer % 4 == 0 ? .latest : .history
                        mine.append(try await f.put("w\(writer)/\(i)", "v", keyspace: keyspace).modRevision)
                    }
                    return mine
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(revisions.sorted() == Array(2...321))
        #expect(f.store.currentRevision == 321)
    }
}
