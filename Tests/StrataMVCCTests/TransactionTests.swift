import StrataLease
import StrataMVCC
import StrataRocksDB
import StrataTestSupport
import Testing

/// The general write transaction every front-end builds on.
@Suite("Write transactions")
struct TransactionTests {
    @Test func readsSeeOwnWritesAndTheWholeBodyIsOneRevision() async throws {
        let f = try StoreFixture()
        try await f.put("a", "1")
        try await f.put("c", "3")
        let seen = try await f.store.update(.history) { txn throws(MVCCError) -> [String] in
            #expect(txn.readRevision == 3 && !txn.hasChanges)
            try txn.put(b("b"), b("2"))
            #expect(txn.readRevision == 4 && txn.writeRevision == 4)
            try txn.put(b("a"), b("1'"))
            try txn.delete(b("c"))
            #expect(try txn.get(b("a")).map { s($0.value) } == "1'")
            #expect(try txn.get(b("c")) == nil)
            var keys: [String] = []
            try txn.forEach(in: .all) { kv throws(MVCCError) in
                keys.append(s(kv.key) + "=" + s(kv.value))
                return true
            }
            var reversed: [String] = []
            try txn.forEach(in: .all, reverse: true) { kv throws(MVCCError) in
                reversed.append(s(kv.key))
                return reversed.count < 1
            }
            let range = try txn.range(KeyRange(key: b("a"), end: b("c")), RangeOptions(countAll: true))
            #expect(range.count == 2 && range.revision == 4)
            return keys + reversed
        }
        #expect(seen == ["a=1'", "b=2", "b"])
        #expect(f.store.currentRevision == 4)
        #expect(try f.keys() == ["a", "b"])
        let a = try #require(try f.get("a"))
        #expect((a.createRevision, a.modRevision, a.version) == (2, 4, 2))
        // Both versions before it stay readable.
        #expect(try f.get("c", revision: 3).map { s($0.value) } == "3")
        #expect(try f.get("a", revision: 3).map { s($0.value) } == "1")
    }

    @Test func aThrowingBodyWritesNothingAndNoChangeTakesNoRevision() async throws {
        let f = try StoreFixture()
        try await f.put("a", "1")
        let reason = Rejection(code: 7, message: "changed my mind")
        await #expect(throws: MVCCError.rejected(reason)) {
            try await f.store.update(.history) { txn throws(MVCCError) in
                try txn.put(b("a"), b("2"))
                try txn.put(b("new"), b("x"))
                throw .rejected(reason)
            }
        }
        #expect(try f.get("a").map { s($0.value) } == "1")
        #expect(try f.get("new") == nil)
        #expect(f.store.currentRevision == 2)
        // Reads only: no revision.
        let value = try await f.store.update(.history) { txn throws(MVCCError) in try txn.get(b("a"))?.value }
        #expect(value.map(s) == "1")
        #expect(f.store.currentRevision == 2)
        // A later write is unaffected by the abandoned batch.
        try await f.put("b", "2")
        #expect(try f.keys() == ["a", "b"])
        #expect(f.store.currentRevision == 3)
    }

    @Test func deleteRangeInsideATransaction() async throws {
        let f = try StoreFixture()
        for key in ["p/1", "p/2", "p/3", "q"] { try await f.put(key, key) }
        let deleted = try await f.store.update(.history) { txn throws(MVCCError) -> [String] in
            try txn.put(b("p/4"), b("new"))
            let deleted = try txn.deleteRange(.prefix(b("p/")))
            #expect(try txn.range(.prefix(b("p/"))).kvs.isEmpty)
            try txn.put(b("p/5"), b("after"))
            return deleted.map { s($0.key) }
        }
        #expect(deleted == ["p/1", "p/2", "p/3", "p/4"])
        #expect(try f.keys() == ["p/5", "q"])
        #expect(try f.keys(.all, RangeOptions(revision: 5)) == ["p/1", "p/2", "p/3", "q"])
    }

    @Test func aTransactionThatReadsTooMuchFailsClearly() async throws {
        let f = try StoreFixture { $0.transactionLimits.maxEntriesRead = 50 }
        try await f.store.update(.history) { txn throws(MVCCError) in
            for i in 0..<40 { try txn.put(b("k\(i)"), b("v")) }
        }
        let error = await #expect(throws: MVCCError.self) {
            try await f.store.update(.history) { txn throws(MVCCError) in
                _ = try txn.deleteRange(.all)
                _ = try txn.deleteRange(.all)
            }
        }
        guard case .transactionTooLarge(let what) = error else {
            Issue.record("\(String(describing: error))")
            return
        }
        #expect(what.contains("50"))
        #expect(try f.keys().count == 40)  // nothing of it was written
        // Small transactions still run.
        try await f.put("after", "v")
    }

    @Test func latestOnlyKeyspaceStoresCompactRecords() async throws {
        let f = try StoreFixture()
        let first = try await f.put("k", "v1", keyspace: .latest)
        #expect((first.createRevision, first.version, first.modRevision) == (0, 0, 2))
        let (kv, previous) = try await f.store.update(.latest) { txn throws(MVCCError) in
            try txn.put(b("k"), b("v2"))
        }
        #expect(kv.modRevision == 3 && previous?.modRevision == 2)
        #expect(try f.get("k", keyspace: .latest).map { s($0.value) } == "v2")
        // No history, no leases, no watch from the past.
        #expect(throws: MVCCError.self) {
            _ = try f.store.range(.latest, .all, RangeOptions(revision: 2))
        }
        let lease = try await f.store.grantLease(id: 5, ttl: 60)
        await #expect(throws: MVCCError.self) { try await f.put("l", "v", lease: lease.id, keyspace: .latest) }
        // Latest-only with versioned records keeps etcd's header.
        let versioned = try await f.put("k", "v", keyspace: .latestVersioned)
        #expect((versioned.createRevision, versioned.version) == (4, 1))
        #expect(try await f.put("k", "w", keyspace: .latestVersioned).version == 2)
        // Silent writes are for latest-only keyspaces.
        await #expect(throws: MVCCError.self) { try await f.put("k", "v", keyspace: .history, event: .none) }
    }

    @Test func perWriteDurability() async throws {
        let f = try StoreFixture(sync: .always)
        // Acknowledged only after the committer's fsync.
        let synced = try f.store.applyUpdate(.latest, durability: .fsync) { txn throws(MVCCError) in
            try txn.put(b("a"), b("1")).kv
        }
        _ = try await f.store.durable(synced)
        // Acknowledged at once, and readable at once (latest-only reads are live).
        for durability in [Durability.fsyncWithin(milliseconds: 50), .os] {
            let pending = try f.store.applyUpdate(.latest, durability: durability) { txn throws(MVCCError) in
                try txn.put(b("b"), b("\(durability)")).kv
            }
            let kv = try await f.store.durable(pending)
            #expect(try f.get("b", keyspace: .latest)?.modRevision == kv.modRevision)
        }
        // The periodic sync happens by itself and publishes the revision.
        var waited = 0
        while f.store.currentRevision < 4 && waited < 500 {
            try await Task.sleep(for: .milliseconds(10))
            waited += 1
        }
        #expect(f.store.currentRevision == 4)
        // Keyspaces with history follow [storage] sync.
        await #expect(throws: MVCCError.self) {
            try await f.store.update(.history, durability: .os) { txn throws(MVCCError) in
                try txn.put(b("h"), b("v"))
            }
        }
    }
}
