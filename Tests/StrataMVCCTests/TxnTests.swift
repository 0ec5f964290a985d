import StrataMVCC
import StrataRocksDB
import Testing

@Suite("MVCC transactions")
struct TxnTests {
    @Test func compareSelectsBranchAndWholeTxnIsOneRevision() async throws {
        let f = try StoreFixture()
        try await f.put("k", "v")  // rev 2
        let txn = TxnRequest(
            compares: [Compare(key: b("k"), .equal, .value(b("v"))), Compare(key: b("k"), .equal, .version(1))],
            success: [
                .put(PutRequest(key: b("a"), value: b("1"))),
                .put(PutRequest(key: b("b"), value: b("2"))),
                .range(RangeRequest(key: b("a"), end: b("c"))),
            ],
            failure: [.put(PutRequest(key: b("failed"), value: b("x")))]
        )
        let result = try await f.store.txn(.etcd, txn)
        #expect(result.succeeded && result.revision == 3)
        guard case .put(let put) = result.results[0], case .range(let range) = result.results[2] else {
            Issue.record("unexpected results \(result.results)")
            return
        }
        #expect(put.revision == 3)
        // Reads inside the transaction see its own earlier writes, and report the new revision.
        #expect(range.kvs.map { s($0.key) } == ["a", "b"] && range.revision == 3)
        #expect(try f.get("a")?.modRevision == 3 && f.get("b")?.modRevision == 3)

        let failing = try await f.store.txn(
            .etcd,
            TxnRequest(
                compares: [Compare(key: b("k"), .greater, .mod(100))],
                success: [.put(PutRequest(key: b("x"), value: b("x")))],
                failure: [.range(RangeRequest(key: b("k")))]
            )
        )
        #expect(!failing.succeeded && failing.revision == 3)  // read-only branch: no new revision
    }

    @Test func missingKeysCompareAsZeroExceptValue() async throws {
        let f = try StoreFixture()
        let create = try await f.store.txn(
            .etcd,
            TxnRequest(
                compares: [Compare(key: b("lock"), .equal, .create(0))],
                success: [.put(PutRequest(key: b("lock"), value: b("me")))]
            )
        )
        #expect(create.succeeded)
        let again = try await f.store.txn(
            .etcd,
            TxnRequest(
                compares: [Compare(key: b("lock"), .equal, .create(0))],
                success: [.put(PutRequest(key: b("lock"), value: b("other")))]
            )
        )
        #expect(!again.succeeded)
        let value = try await f.store.txn(
            .etcd,
            TxnRequest(compares: [Compare(key: b("missing"), .notEqual, .value(b("x")))])
        )
        #expect(!value.succeeded)
        // A range compare: every key in the range must satisfy it.
        try await f.put("r/1", "a")
        try await f.put("r/2", "b")
        let all = try await f.store.txn(
            .etcd,
            TxnRequest(compares: [
                Compare(range: .prefix(b("r/")), result: .greater, target: .mod(1))
            ])
        )
        #expect(all.succeeded)
        let some = try await f.store.txn(
            .etcd,
            TxnRequest(compares: [
                Compare(range: .prefix(b("r/")), result: .equal, target: .value(b("a")))
            ])
        )
        #expect(!some.succeeded)
    }

    @Test func nestedTxnAndDeleteInsideTxn() async throws {
        let f = try StoreFixture()
        try await f.put("a", "1")
        try await f.put("b", "2")
        let result = try await f.store.txn(
            .etcd,
            TxnRequest(
                success: [
                    .deleteRange(DeleteRangeRequest(range: KeyRange(key: b("a")), prevKV: true)),
                    .txn(
                        TxnRequest(
                            compares: [Compare(key: b("b"), .equal, .value(b("2")))],
                            success: [.put(PutRequest(key: b("c"), value: b("3")))]
                        )
                    ),
                    .range(RangeRequest(key: b("a"), end: b("z"))),
                ])
        )
        #expect(result.revision == 4)
        guard case .deleteRange(let delete) = result.results[0], case .txn(let nested) = result.results[1],
            case .range(let range) = result.results[2]
        else {
            Issue.record("unexpected \(result)")
            return
        }
        #expect(delete.deleted == 1 && delete.prevKVs.map { s($0.value) } == ["1"] && delete.revision == 4)
        #expect(nested.succeeded)
        #expect(range.kvs.map { s($0.key) } == ["b", "c"] && range.count == 2)
    }

    @Test func duplicateKeysAreRejected() async throws {
        let f = try StoreFixture()
        let twice = TxnRequest(success: [
            .put(PutRequest(key: b("k"), value: b("1"))), .put(PutRequest(key: b("k"), value: b("2"))),
        ])
        await #expect(throws: MVCCError.duplicateKey) { try await f.store.txn(.etcd, twice) }
        let putAndDelete = TxnRequest(success: [
            .deleteRange(DeleteRangeRequest(range: KeyRange(key: b("a"), end: b("m")))),
            .put(PutRequest(key: b("b"), value: b("1"))),
        ])
        await #expect(throws: MVCCError.duplicateKey) { try await f.store.txn(.etcd, putAndDelete) }
        // Then/else of a nested txn may put the same key: only one runs.
        let branches = TxnRequest(success: [
            .txn(
                TxnRequest(
                    success: [.put(PutRequest(key: b("k"), value: b("1")))],
                    failure: [.put(PutRequest(key: b("k"), value: b("2")))]
                )
            )
        ])
        _ = try await f.store.txn(.etcd, branches)
        let nestedDuplicate = TxnRequest(success: [
            .put(PutRequest(key: b("k"), value: b("1"))),
            .txn(TxnRequest(success: [.put(PutRequest(key: b("k"), value: b("2")))])),
        ])
        await #expect(throws: MVCCError.duplicateKey) { try await f.store.txn(.etcd, nestedDuplicate) }
        #expect(f.store.currentRevision == 2)
    }

    @Test func validationErrors() async throws {
        let f = try StoreFixture()
        let tooMany = TxnRequest(success: (0..<129).map { .put(PutRequest(key: b("k\($0)"), value: [])) })
        await #expect(throws: MVCCError.tooManyOperations) { try await f.store.txn(.etcd, tooMany) }
        await #expect(throws: MVCCError.emptyKey) {
            try await f.store.txn(.etcd, TxnRequest(compares: [Compare(key: [], .equal, .version(0))]))
        }
        await #expect(throws: MVCCError.keyNotFound) { try await f.store.txn(.etcd, TxnRequest(success: [.empty])) }
        try await f.put("k", "v")
        var future = RangeRequest(key: b("k"))
        future.revision = 99
        await #expect(throws: MVCCError.futureRevision) {
            try await f.store.txn(.etcd, TxnRequest(success: [.range(future)]))
        }
        // A failing check leaves nothing behind, even with earlier writes in the same branch.
        var badLease = PutRequest(key: b("x"), value: b("x"))
        badLease.lease = 7
        await #expect(throws: MVCCError.leaseNotFound) {
            try await f.store.txn(
                .etcd,
                TxnRequest(success: [.put(PutRequest(key: b("y"), value: b("y"))), .put(badLease)])
            )
        }
        #expect(try f.get("y") == nil && f.store.currentRevision == 2)
    }
}
