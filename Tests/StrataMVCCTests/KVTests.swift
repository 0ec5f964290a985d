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
        #expect(first.revision == 2)
        var kv = try #require(try f.get("a"))
        #expect((kv.createRevision, kv.modRevision, kv.version, s(kv.value)) == (2, 2, 1, "1"))

        try await f.put("a", "2")
        kv = try #require(try f.get("a"))
        #expect((kv.createRevision, kv.modRevision, kv.version) == (2, 3, 2))

        let deleted = try await f.delete("a")
        #expect(deleted.deleted == 1 && deleted.revision == 4)
        #expect(deleted.prevKVs.map { s($0.value) } == ["2"])
        #expect(try f.get("a") == nil)

        // A delete matching nothing does not take a revision.
        let noop = try await f.delete("a")
        #expect(noop.deleted == 0 && noop.revision == 4)
        #expect(f.store.currentRevision == 4)

        try await f.put("a", "3")
        kv = try #require(try f.get("a"))
        #expect((kv.createRevision, kv.modRevision, kv.version) == (5, 5, 1))
    }

    @Test func putOptions() async throws {
        let f = try StoreFixture()
        try await f.put("k", "v1")
        var request = PutRequest(key: b("k"), value: [])
        request.ignoreValue = true
        request.prevKV = true
        let result = try await f.store.put(.etcd, request)
        #expect(result.prevKV.map { s($0.value) } == "v1")
        #expect(try f.get("k").map { s($0.value) } == "v1")
        #expect(try f.get("k")?.version == 2)

        var missing = PutRequest(key: b("nope"), value: [])
        missing.ignoreValue = true
        await #expect(throws: MVCCError.keyNotFound) { try await f.store.put(.etcd, missing) }
        var both = PutRequest(key: b("k"), value: b("x"))
        both.ignoreValue = true
        await #expect(throws: MVCCError.valueProvided) { try await f.store.put(.etcd, both) }
        await #expect(throws: MVCCError.emptyKey) { try await f.store.put(.etcd, PutRequest(key: [], value: b("x"))) }
        await #expect(throws: MVCCError.leaseNotFound) {
            try await f.store.put(.etcd, PutRequest(key: b("k"), value: b("x"), lease: 42))
        }
    }

    @Test func rangeOptions() async throws {
        let f = try StoreFixture()
        for (i, key) in ["a", "b", "c", "d", "e"].enumerated() {
            try await f.put(key, String(repeating: "x", count: 5 - i))
        }
        try await f.put("b", "bb")  // b: version 2, mod 7

        var request = RangeRequest(key: b("b"), end: b("e"))
        #expect(try f.keys(request) == ["b", "c", "d"])
        request.limit = 2
        var result = try f.store.range(.etcd, request)
        #expect(result.kvs.map { s($0.key) } == ["b", "c"] && result.more && result.count == 3)
        #expect(result.revision == 7)

        request = RangeRequest(key: b("c"), end: [0])  // from-key
        #expect(try f.keys(request) == ["c", "d", "e"])
        request = RangeRequest(range: .prefix(b("")))
        request.range = KeyRange(key: [0], end: [0])
        #expect(try f.keys(request).count == 5)

        request = RangeRequest(key: b("a"), end: b("z"))
        request.countOnly = true
        result = try f.store.range(.etcd, request)
        #expect(result.kvs.isEmpty && result.count == 5 && !result.more)

        request = RangeRequest(key: b("a"), end: b("z"))
        request.keysOnly = true
        #expect(try f.store.range(.etcd, request).kvs.allSatisfy { $0.value.isEmpty })

        request = RangeRequest(key: b("a"), end: b("z"))
        request.sortOrder = .descending
        #expect(try f.keys(request) == ["e", "d", "c", "b", "a"])
        request.sortTarget = .value
        request.sortOrder = .ascending
        #expect(try f.keys(request) == ["b", "e", "d", "c", "a"])
        request.sortTarget = .mod
        request.sortOrder = .descending
        request.limit = 2
        result = try f.store.range(.etcd, request)
        #expect(result.kvs.map { s($0.key) } == ["b", "e"] && result.more && result.count == 5)
        request.sortTarget = .version
        request.sortOrder = .none  // target other than key with order none means ascending
        request.limit = 0
        #expect(try f.keys(request).last == "b")

        request = RangeRequest(key: b("a"), end: b("z"))
        request.minModRevision = 4
        request.maxModRevision = 6
        #expect(try f.keys(request) == ["c", "d", "e"])
        request = RangeRequest(key: b("a"), end: b("z"))
        request.maxCreateRevision = 3
        #expect(try f.keys(request) == ["a", "b"])
        request.limit = 1
        result = try f.store.range(.etcd, request)
        #expect(result.kvs.count == 1 && result.more && result.count == 5)

        #expect(throws: MVCCError.emptyKey) { _ = try f.store.range(.etcd, RangeRequest(key: [])) }
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
        let historical = try f.store.range(
            .etcd,
            {
                var r = RangeRequest(key: b("a"), end: b("z")); r.revision = 4; return r
            }()
        )
        #expect(historical.kvs.map { s($0.key) } == ["k", "other"] && historical.count == 2)
        #expect(historical.revision == 6)  // header shows the current revision
        var limited = RangeRequest(key: b("a"), end: b("z"))
        limited.revision = 4
        limited.limit = 1
        let page = try f.store.range(.etcd, limited)
        #expect(page.kvs.count == 1 && page.more && page.count == 2)

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
                for i in 0..<20 { _ = try await f.store.put(.etcd, PutRequest(key: b("k\(i)"), value: b("v"))) }
            }
            var reads = 0
            var last: Revision = 0
            do {
                while last < 21 {
                    await Task.yield()
                    let result = try f.store.range(.etcd, RangeRequest(range: .prefix(b("k"))))
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
        var all = RangeRequest(key: [0], end: [0])
        all.revision = 5
        #expect(try f.keys(all) == ["live"])
        // Survives a restart with the compaction point.
        try f.reopen()
        #expect(f.store.compactRevision == 5)
        #expect(throws: MVCCError.compacted(compactRevision: 5)) { _ = try f.get("live", revision: 4) }
        #expect(try f.get("live", revision: 5).map { s($0.value) } == "2")
    }

    @Test func keyspacesAreIsolated() async throws {
        let f = try StoreFixture()
        try await f.put("k", "etcd")
        try await f.put("k", "iceberg", keyspace: .iceberg)
        try await f.put("k", "redis", keyspace: .redis)
        #expect(try f.get("k").map { s($0.value) } == "etcd")
        #expect(try f.get("k", keyspace: .iceberg).map { s($0.value) } == "iceberg")
        #expect(try f.get("k", keyspace: .redis).map { s($0.value) } == "redis")
        #expect(f.store.currentRevision == 4)  // one revision sequence
        #expect(try f.keys(RangeRequest(key: [0], end: [0])) == ["k"])
        // Latest-only keyspaces keep no history.
        #expect(throws: MVCCError.self) { _ = try f.get("k", revision: 2, keyspace: .redis) }
    }

    @Test func restartKeepsRevisionAndData() async throws {
        let f = try StoreFixture(sync: .always)
        try await f.put("a", "1")
        try await f.put("b", "2")
        try await f.delete("a")
        try f.reopen()
        #expect(f.store.currentRevision == 4)
        #expect(try f.get("a") == nil)
        #expect(try f.get("b").map { s($0.value) } == "2")
        #expect(try f.get("a", revision: 3).map { s($0.value) } == "1")
        #expect(try await f.put("c", "3").revision == 5)
    }

    @Test func unknownFormatVersionIsAClearError() throws {
        let directory = StoreFixture.makeRawDirectory()
        var rocks = RocksDB.Configuration.defaults
        rocks.prepareForMVCCStore()
        do {
            let database = try RocksDB(path: directory.appending("db"), configuration: rocks)
            try database.put(Array("strata/format".utf8), [0, 0, 0, 9])
            try database.close()
        }
        let database = try RocksDB(path: directory.appending("db"), configuration: rocks)
        let error = #expect(throws: MVCCError.self) { _ = try MVCCStore(database: database) }
        #expect("\(error!)".contains("unsupported storage format version 9"))
    }

    @Test func concurrentWritersGetDistinctGaplessRevisions() async throws {
        let f = try StoreFixture(sync: .always)
        let revisions = try await withThrowingTaskGroup(of: [Revision].self) { group in
            for writer in 0..<16 {
                group.addTask {
                    var mine: [Revision] = []
                    for i in 0..<20 { mine.append(try await f.put("w\(writer)/\(i)", "v").revision) }
                    return mine
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(revisions.sorted() == Array(2...321))
        #expect(f.store.currentRevision == 321)
    }
}

extension StoreFixture {
    static func makeRawDirectory() -> TemporaryDirectory { TemporaryDirectory() }
}
