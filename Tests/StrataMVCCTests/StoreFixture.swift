import StrataLease
import StrataMVCC
import StrataRocksDB
import StrataTestSupport

func b(_ s: String) -> [UInt8] { Array(s.utf8) }
func s(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

/// A store over a temp RocksDB directory, reopenable to test restarts.
final class StoreFixture: @unchecked Sendable {
    let directory = TemporaryDirectory()
    let clock: ManualClock
    var configuration: MVCCStore.Configuration
    private(set) var database: RocksDB
    private(set) var store: MVCCStore

    init(sync: SyncMode = .none, configure: (inout MVCCStore.Configuration) -> Void = { _ in }) throws {
        var configuration = MVCCStore.Configuration.defaults
        configuration.sync = sync
        configure(&configuration)
        self.configuration = configuration
        self.clock = ManualClock()
        (database, store) = try Self.open(directory.appending("db"), configuration, clock)
    }

    static func open(_ path: String, _ configuration: MVCCStore.Configuration, _ clock: ManualClock) throws -> (
        RocksDB, MVCCStore
    ) {
        var rocks = RocksDB.Configuration.defaults
        rocks.prepareForMVCCStore()
        let database = try RocksDB(path: path, configuration: rocks)
        let store = try MVCCStore(database: database, configuration: configuration, clock: clock)
        return (database, store)
    }

    /// Closes and reopens the same directory (a clean restart).
    func reopen() throws {
        store.close()
        try database.close()
        (database, store) = try Self.open(directory.appending("db"), configuration, clock)
    }

    deinit {
        store.close()
        try? database.close()
    }

    @discardableResult
    func put(_ key: String, _ value: String, lease: Int64 = 0, keyspace: Keyspace = .etcd) async throws -> PutResult {
        try await store.put(keyspace, PutRequest(key: b(key), value: b(value), lease: lease))
    }

    @discardableResult
    func delete(_ key: String, end: String = "", keyspace: Keyspace = .etcd) async throws -> DeleteRangeResult {
        try await store.deleteRange(
            keyspace,
            DeleteRangeRequest(range: KeyRange(key: b(key), end: b(end)), prevKV: true)
        )
    }

    func get(_ key: String, revision: Revision = 0, keyspace: Keyspace = .etcd) throws -> KeyValue? {
        var request = RangeRequest(key: b(key))
        request.revision = revision
        return try store.range(keyspace, request).kvs.first
    }

    func keys(_ request: RangeRequest, keyspace: Keyspace = .etcd) throws -> [String] {
        try store.range(keyspace, request).kvs.map { s($0.key) }
    }
}
