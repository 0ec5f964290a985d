package import StrataLease
package import StrataMVCC
package import StrataRocksDB

package func b(_ s: String) -> [UInt8] { Array(s.utf8) }
package func s(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

extension Keyspace {
    /// Keyspaces of the core's own tests (front-ends declare theirs).
    package static let history = Keyspace(id: 10, name: "history", history: .full)
    package static let otherHistory = Keyspace(id: 11, name: "other-history", history: .full)
    package static let latest = Keyspace(id: 12, name: "latest", history: .latestOnly)
    package static let latestVersioned = Keyspace(
        id: 13,
        name: "latest-versioned",
        history: .latestOnly,
        format: .versioned
    )
}

/// A store over a temp RocksDB directory, reopenable to test restarts, with a manual clock.
package final class StoreFixture: @unchecked Sendable {
    package let directory = TemporaryDirectory()
    package let clock: ManualClock
    package var configuration: MVCCStore.Configuration
    package let keyspaces: [Keyspace]
    package private(set) var database: RocksDB
    package private(set) var store: MVCCStore

    package init(
        sync: SyncMode = .none,
        keyspaces: [Keyspace] = [.history, .otherHistory, .latest, .latestVersioned],
        configure: (inout MVCCStore.Configuration) -> Void = { _ in }
    ) throws {
        var configuration = MVCCStore.Configuration.defaults
        configuration.sync = sync
        configure(&configuration)
        self.configuration = configuration
        self.keyspaces = keyspaces
        self.clock = ManualClock()
        (database, store) = try Self.open(directory.appending("db"), configuration, keyspaces, clock)
    }

    package static func open(
        _ path: String,
        _ configuration: MVCCStore.Configuration,
        _ keyspaces: [Keyspace],
        _ clock: ManualClock
    ) throws -> (RocksDB, MVCCStore) {
        var rocks = RocksDB.Configuration.defaults
        rocks.prepareForMVCCStore()
        rocks.manualWALFlush = configuration.sync == .always
        let database = try RocksDB(path: path, configuration: rocks)
        let store = try MVCCStore(database: database, keyspaces: keyspaces, configuration: configuration, clock: clock)
        return (database, store)
    }

    /// Closes and reopens the same directory (a clean restart).
    package func reopen() throws {
        store.close()
        try database.close()
        (database, store) = try Self.open(directory.appending("db"), configuration, keyspaces, clock)
    }

    deinit {
        store.close()
        try? database.close()
    }

    /// Puts one key in its own transaction; returns the new state.
    @discardableResult
    package func put(
        _ key: String,
        _ value: String,
        lease: Int64 = 0,
        expiry: Expiry = .none,
        keyspace: Keyspace = .history,
        event: WriteEvent = .standard
    ) async throws -> KeyValue {
        try await store.update(keyspace) { transaction throws(MVCCError) in
            try transaction.put(b(key), b(value), lease: lease, expiry: expiry, event: event).kv
        }
    }

    /// Deletes a key (or, with `end`, a range) in one transaction; returns what it deleted.
    @discardableResult
    package func delete(_ key: String, end: String = "", keyspace: Keyspace = .history) async throws -> [KeyValue] {
        try await store.update(keyspace) { transaction throws(MVCCError) in
            let range = KeyRange(key: b(key), end: b(end))
            if range.isSingleKey { return try transaction.delete(b(key)).map { [$0] } ?? [] }
            return try transaction.deleteRange(range)
        }
    }

    package func get(_ key: String, revision: Revision = 0, keyspace: Keyspace = .history) throws -> KeyValue? {
        if revision == 0 { return try store.get(keyspace, b(key)) }
        return try store.range(keyspace, KeyRange(key: b(key)), RangeOptions(revision: revision)).kvs.first
    }

    package func keys(
        _ range: KeyRange = .all,
        _ options: RangeOptions = RangeOptions(),
        keyspace: Keyspace = .history
    ) throws -> [String] {
        try store.range(keyspace, range, options).kvs.map { s($0.key) }
    }
}
