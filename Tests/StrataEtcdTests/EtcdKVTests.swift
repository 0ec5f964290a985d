import StrataEtcd
import StrataMVCC
import StrataRocksDB
import StrataTestSupport
import Testing

@Suite("etcd KV over the core")
struct EtcdKVTests {
    @Test func putOptions() async throws {
        let f = try StoreFixture.etcd()
        try await f.etcdPut("k", "v1")
        var request = PutRequest(key: b("k"), value: [])
        request.ignoreValue = true
        request.prevKV = true
        let result = try await f.kv.put(request)
        #expect(result.prevKV.map { s($0.value) } == "v1")
        #expect(try f.etcdGet("k").map { s($0.value) } == "v1")
        #expect(try f.etcdGet("k")?.version == 2)

        var missing = PutRequest(key: b("nope"), value: [])
        missing.ignoreValue = true
        await #expect(throws: EtcdKVError.keyNotFound) { try await f.kv.put(missing) }
        var both = PutRequest(key: b("k"), value: b("x"))
        both.ignoreValue = true
        await #expect(throws: EtcdKVError.valueProvided) { try await f.kv.put(both) }
        await #expect(throws: EtcdKVError.emptyKey) { try await f.kv.put(PutRequest(key: [], value: b("x"))) }
        await #expect(throws: EtcdKVError.core(.leaseNotFound)) {
            try await f.kv.put(PutRequest(key: b("k"), value: b("x"), lease: 42))
        }
    }

    @Test func rangeOptions() async throws {
        let f = try StoreFixture.etcd()
        for (i, key) in ["a", "b", "c", "d", "e"].enumerated() {
            try await f.etcdPut(key, String(repeating: "x", count: 5 - i))
        }
        try await f.etcdPut("b", "bb")  // b: version 2, mod 7

        var request = RangeRequest(key: b("b"), end: b("e"))
        #expect(try f.etcdKeys(request) == ["b", "c", "d"])
        request.limit = 2
        var result = try f.kv.range(request)
        #expect(result.kvs.map { s($0.key) } == ["b", "c"] && result.more && result.count == 3)
        #expect(result.revision == 7)

        request = RangeRequest(key: b("c"), end: [0])  // from-key
        #expect(try f.etcdKeys(request) == ["c", "d", "e"])
        request = RangeRequest(range: .prefix(b("")))
        request.range = KeyRange(key: [0], end: [0])
        #expect(try f.etcdKeys(request).count == 5)

        request = RangeRequest(key: b("a"), end: b("z"))
        request.countOnly = true
        result = try f.kv.range(request)
        #expect(result.kvs.isEmpty && result.count == 5 && !result.more)

        request = RangeRequest(key: b("a"), end: b("z"))
        request.keysOnly = true
        #expect(try f.kv.range(request).kvs.allSatisfy { $0.value.isEmpty })

        request = RangeRequest(key: b("a"), end: b("z"))
        request.sortOrder = .descending
        #expect(try f.etcdKeys(request) == ["e", "d", "c", "b", "a"])
        request.sortTarget = .value
        request.sortOrder = .ascending
        #expect(try f.etcdKeys(request) == ["b", "e", "d", "c", "a"])
        request.sortTarget = .mod
        request.sortOrder = .descending
        request.limit = 2
        result = try f.kv.range(request)
        #expect(result.kvs.map { s($0.key) } == ["b", "e"] && result.more && result.count == 5)
        request.sortTarget = .version
        request.sortOrder = .none  // target other than key with order none means ascending
        request.limit = 0
        #expect(try f.etcdKeys(request).last == "b")

        request = RangeRequest(key: b("a"), end: b("z"))
        request.minModRevision = 4
        request.maxModRevision = 6
        #expect(try f.etcdKeys(request) == ["c", "d", "e"])
        request = RangeRequest(key: b("a"), end: b("z"))
        request.maxCreateRevision = 3
        #expect(try f.etcdKeys(request) == ["a", "b"])
        request.limit = 1
        result = try f.kv.range(request)
        #expect(result.kvs.count == 1 && result.more && result.count == 5)

        #expect(throws: EtcdKVError.emptyKey) { _ = try f.kv.range(RangeRequest(key: [])) }
    }

    @Test func compareSelectsBranchAndWholeTxnIsOneRevision() async throws {
        let f = try StoreFixture.etcd()
        try await f.etcdPut("k", "v")  // rev 2
        let txn = TxnRequest(
            compares: [Compare(key: b("k"), .equal, .value(b("v"))), Compare(key: b("k"), .equal, .version(1))],
            success: [
                .put(PutRequest(key: b("a"), value: b("1"))),
                .put(PutRequest(key: b("b"), value: b("2"))),
                .range(RangeRequest(key: b("a"), end: b("c"))),
            ],
            failure: [.put(PutRequest(key: b("failed"), value: b("x")))]
        )
        let result = try await f.kv.txn(txn)
        #expect(result.succeeded && result.revision == 3)
        guard case .put(let put) = result.results[0], case .range(let range) = result.results[2] else {
            Issue.record("unexpected results \(result.results)")
            return
        }
        #expect(put.revision == 3)
        // Reads inside the transaction see its own earlier writes, and report the new revision.
        #expect(range.kvs.map { s($0.key) } == ["a", "b"] && range.revision == 3)
        #expect(try f.etcdGet("a")?.modRevision == 3 && f.etcdGet("b")?.modRevision == 3)

        let failing = try await f.kv.txn(
            TxnRequest(
                compares: [Compare(key: b("k"), .greater, .mod(100))],
                success: [.put(PutRequest(key: b("x"), value: b("x")))],
                failure: [.range(RangeRequest(key: b("k")))]
            )
        )
        #expect(!failing.succeeded && failing.revision == 3)  // read-only branch: no new revision
    }

    @Test func missingKeysCompareAsZeroExceptValue() async throws {
        let f = try StoreFixture.etcd()
        let create = try await f.kv.txn(
            TxnRequest(
                compares: [Compare(key: b("lock"), .equal, .create(0))],
                success: [.put(PutRequest(key: b("lock"), value: b("me")))]
            )
        )
        #expect(create.succeeded)
        let again = try await f.kv.txn(
            TxnRequest(
                compares: [Compare(key: b("lock"), .equal, .create(0))],
                success: [.put(PutRequest(key: b("lock"), value: b("other")))]
            )
        )
        #expect(!again.succeeded)
        let value = try await f.kv.txn(
            TxnRequest(compares: [Compare(key: b("missing"), .notEqual, .value(b("x")))])
        )
        #expect(!value.succeeded)
        // A range compare: every key in the range must satisfy it.
        try await f.etcdPut("r/1", "a")
        try await f.etcdPut("r/2", "b")
        let all = try await f.kv.txn(
            TxnRequest(compares: [
                Compare(range: .prefix(b("r/")), result: .greater, target: .mod(1))
            ])
        )
        #expect(all.succeeded)
        let some = try await f.kv.txn(
            TxnRequest(compares: [
                Compare(range: .prefix(b("r/")), result: .equal, target: .value(b("a")))
            ])
        )
        #expect(!some.succeeded)
    }

    @Test func nestedTxnAndDeleteInsideTxn() async throws {
        let f = try StoreFixture.etcd()
        try await f.etcdPut("a", "1")
        try await f.etcdPut("b", "2")
        let result = try await f.kv.txn(
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
        let f = try StoreFixture.etcd()
        let twice = TxnRequest(success: [
            .put(PutRequest(key: b("k"), value: b("1"))), .put(PutRequest(key: b("k"), value: b("2"))),
        ])
        await #expect(throws: EtcdKVError.duplicateKey) { try await f.kv.txn(twice) }
        let putAndDelete = TxnRequest(success: [
            .deleteRange(DeleteRangeRequest(range: KeyRange(key: b("a"), end: b("m")))),
            .put(PutRequest(key: b("b"), value: b("1"))),
        ])
        await #expect(throws: EtcdKVError.duplicateKey) { try await f.kv.txn(putAndDelete) }
        // Then/else of a nested txn may put the same key: only one runs.
        let branches = TxnRequest(success: [
            .txn(
                TxnRequest(
                    success: [.put(PutRequest(key: b("k"), value: b("1")))],
                    failure: [.put(PutRequest(key: b("k"), value: b("2")))]
                )
            )
        ])
        _ = try await f.kv.txn(branches)
        let nestedDuplicate = TxnRequest(success: [
            .put(PutRequest(key: b("k"), value: b("1"))),
            .txn(TxnRequest(success: [.put(PutRequest(key: b("k"), value: b("2")))])),
        ])
        await #expect(throws: EtcdKVError.duplicateKey) { try await f.kv.txn(nestedDuplicate) }
        #expect(f.store.currentRevision == 2)
    }

    @Test func validationErrors() async throws {
        let f = try StoreFixture.etcd()
        let tooMany = TxnRequest(success: (0..<129).map { .put(PutRequest(key: b("k\($0)"), value: [])) })
        await #expect(throws: EtcdKVError.tooManyOperations) { try await f.kv.txn(tooMany) }
        await #expect(throws: EtcdKVError.emptyKey) {
            try await f.kv.txn(TxnRequest(compares: [Compare(key: [], .equal, .version(0))]))
        }
        await #expect(throws: EtcdKVError.keyNotFound) { try await f.kv.txn(TxnRequest(success: [.empty])) }
        try await f.etcdPut("k", "v")
        var future = RangeRequest(key: b("k"))
        future.revision = 99
        await #expect(throws: EtcdKVError.core(.futureRevision)) {
            try await f.kv.txn(TxnRequest(success: [.range(future)]))
        }
        // A failing check leaves nothing behind, even with earlier writes in the same branch.
        var badLease = PutRequest(key: b("x"), value: b("x"))
        badLease.lease = 7
        await #expect(throws: EtcdKVError.core(.leaseNotFound)) {
            try await f.kv.txn(
                TxnRequest(success: [.put(PutRequest(key: b("y"), value: b("y"))), .put(badLease)])
            )
        }
        #expect(try f.etcdGet("y") == nil && f.store.currentRevision == 2)
    }
}

extension StoreFixture {
    /// A store with etcd's keyspace, for the KV layer's tests.
    static func etcd(sync: SyncMode = .none) throws -> StoreFixture {
        try StoreFixture(sync: sync, keyspaces: [.etcd])
    }

    var kv: EtcdKV { EtcdKV(store: store) }

    @discardableResult
    func etcdPut(_ key: String, _ value: String, lease: Int64 = 0) async throws -> PutResult {
        try await kv.put(PutRequest(key: b(key), value: b(value), lease: lease))
    }

    @discardableResult
    func etcdDelete(_ key: String, end: String = "") async throws -> DeleteRangeResult {
        try await kv.deleteRange(DeleteRangeRequest(range: KeyRange(key: b(key), end: b(end)), prevKV: true))
    }

    func etcdGet(_ key: String, revision: Revision = 0) throws -> KeyValue? {
        var request = RangeRequest(key: b(key))
        request.revision = revision
        return try kv.range(request).kvs.first
    }

    func etcdKeys(_ request: RangeRequest) throws -> [String] {
        try kv.range(request).kvs.map { s($0.key) }
    }
}
