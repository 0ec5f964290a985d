import StrataEtcd
import StrataMVCC
import StrataTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The reference: every version of every key, kept forever, and the rules written as plainly as possible.
struct ReferenceModel {
    var revision: Revision = 1
    var compactRevision: Revision = 0
    /// key -> versions in revision order; nil value = deleted at that revision.
    var versions: [[UInt8]: [(revision: Revision, kv: KeyValue?)]] = [:]

    func state(at revision: Revision) -> [[UInt8]: KeyValue] {
        var result: [[UInt8]: KeyValue] = [:]
        for (key, list) in versions {
            if let last = list.last(where: { $0.revision <= revision }), let kv = last.kv { result[key] = kv }
        }
        return result
    }

    func latest(_ key: [UInt8]) -> KeyValue? { state(at: revision)[key] }

    func range(_ request: RangeRequest) throws(MVCCError) -> RangeResult {
        let at = request.revision <= 0 ? revision : request.revision
        if at > revision { throw .futureRevision }
        if at < compactRevision { throw .compacted(compactRevision: compactRevision) }
        var kvs = state(at: at).values.filter { request.range.contains($0.key) }.sorted {
            $0.key.lexicographicallyPrecedes($1.key)
        }
        let count = kvs.count
        if request.maxModRevision != 0 { kvs.removeAll { $0.modRevision > request.maxModRevision } }
        if request.minModRevision != 0 { kvs.removeAll { $0.modRevision < request.minModRevision } }
        if request.sortOrder == .descending && request.sortTarget == .key { kvs.reverse() }
        if request.sortTarget == .create && request.sortOrder != .none {
            let sorted = kvs.enumerated().sorted { a, b in
                if a.element.createRevision != b.element.createRevision {
                    return request.sortOrder == .descending
                        ? a.element.createRevision > b.element.createRevision
                        : a.element.createRevision < b.element.createRevision
                }
                return request.sortOrder == .descending ? a.offset > b.offset : a.offset < b.offset
            }
            kvs = sorted.map(\.element)
        }
        if request.countOnly { kvs = [] }  // etcd fetches no key-values at all, so `more` stays false
        var more = false
        if request.limit > 0 && kvs.count > Int(request.limit) {
            kvs = Array(kvs.prefix(Int(request.limit)))
            more = true
        }
        if request.keysOnly {
            kvs = kvs.map {
                var kv = $0; kv.value = []; return kv
            }
        }
        return RangeResult(kvs: kvs, more: more, count: Int64(count), revision: revision)
    }

    mutating func apply(puts: [(key: [UInt8], value: [UInt8])], deletes: [KeyRange]) -> Revision {
        var changed: [([UInt8], KeyValue?)] = []
        let next = revision + 1
        for range in deletes {
            for (key, _) in state(at: revision) where range.contains(key) { changed.append((key, nil)) }
        }
        for (key, value) in puts {
            let previous = latest(key)
            changed.append(
                (
                    key,
                    KeyValue(
                        key: key,
                        createRevision: previous?.createRevision ?? next,
                        modRevision: next,
                        version: (previous?.version ?? 0) + 1,
                        value: value
                    )
                )
            )
        }
        guard !changed.isEmpty else { return revision }
        revision = next
        for (key, kv) in changed { versions[key, default: []].append((next, kv)) }
        return revision
    }
}

@Suite("Model-based randomized test")
struct ModelTests {
    static let operations = Int(getenv("STRATA_MODEL_OPS").map { String(cString: $0) } ?? "") ?? 3000

    @Test(arguments: [UInt64(0x5EED_0001), 0x5EED_0002, 0x5EED_0003])
    func storeMatchesModel(seed: UInt64) async throws {
        var random = SeededRandom(seed: seed)
        let f = try StoreFixture.etcd()
        var model = ReferenceModel()
        let keys = (0..<24).map { b($0 < 10 ? "k0\($0)" : "k\($0)") }
        func randomKey() -> [UInt8] { keys[Int.random(in: 0..<keys.count, using: &random)] }
        func randomRange() -> KeyRange {
            switch Int.random(in: 0..<4, using: &random) {
            case 0: return KeyRange(key: randomKey())
            case 1: return .prefix(b("k1"))
            case 2: return KeyRange(key: randomKey(), end: [0])
            default:
                let a = randomKey()
                let c = randomKey()
                return a.lexicographicallyPrecedes(c) ? KeyRange(key: a, end: c) : KeyRange(key: c, end: a + [0])
            }
        }
        let context = "seed 0x\(String(seed, radix: 16)) (rerun with this seed to reproduce)"

        for step in 0..<Self.operations {
            let choice = Int.random(in: 0..<100, using: &random)
            let where_ = "\(context), step \(step)"
            switch choice {
            case 0..<35:
                let key = randomKey()
                let value = b("v\(step)")
                let result = try await f.kv.put(PutRequest(key: key, value: value))
                let expected = model.apply(puts: [(key, value)], deletes: [])
                #expect(result.revision == expected, "\(where_)")
            case 35..<45:
                let range = randomRange()
                let result = try await f.kv.deleteRange(DeleteRangeRequest(range: range))
                let before = model.state(at: model.revision).keys.filter(range.contains).count
                let expected = model.apply(puts: [], deletes: [range])
                #expect(result.revision == expected && result.deleted == Int64(before), "\(where_)")
            case 45..<60:
                let key = randomKey()
                let version = Int64.random(in: 0..<3, using: &random)
                let target = randomKey()
                let txn = TxnRequest(
                    compares: [Compare(key: key, .equal, .version(version))],
                    success: [.put(PutRequest(key: target, value: b("t\(step)")))],
                    failure: [.deleteRange(DeleteRangeRequest(range: KeyRange(key: target)))]
                )
                let result = try await f.kv.txn(txn)
                let succeeded = (model.latest(key)?.version ?? 0) == version
                let expected =
                    succeeded
                    ? model.apply(puts: [(target, b("t\(step)"))], deletes: [])
                    : model.apply(puts: [], deletes: [KeyRange(key: target)])
                #expect(result.succeeded == succeeded && result.revision == expected, "\(where_)")
            case 60..<63:
                guard model.revision > model.compactRevision + 1 else { continue }
                let revision = Revision.random(in: (model.compactRevision + 1)...model.revision, using: &random)
                try await f.store.compact(revision, physical: Bool.random(using: &random))
                model.compactRevision = revision
            case 63..<64:
                try f.reopen()
                #expect(f.store.currentRevision == model.revision, "\(where_) after reopen")
            default:
                var request = RangeRequest(range: randomRange())
                let low = max(model.compactRevision - 2, 0)
                request.revision =
                    Bool.random(using: &random) ? 0 : Revision.random(in: low...(model.revision + 1), using: &random)
                request.limit = Int64.random(in: 0..<4, using: &random)
                request.keysOnly = Int.random(in: 0..<5, using: &random) == 0
                request.countOnly = Int.random(in: 0..<8, using: &random) == 0
                switch Int.random(in: 0..<4, using: &random) {
                case 0: request.sortOrder = .descending
                case 1: (request.sortTarget, request.sortOrder) = (.create, .ascending)
                case 2: request.minModRevision = max(model.revision - 20, 1)
                default: break
                }
                let expected = Result { () throws(EtcdKVError) in
                    do throws(MVCCError) { return try model.range(request) } catch { throw EtcdKVError.core(error) }
                }
                let actual = Result { () throws(EtcdKVError) in try f.kv.range(request) }
                #expect(actual == expected, "\(where_): \(request)")
            }
        }
        #expect(f.store.currentRevision == model.revision, "\(context)")
    }
}
