internal import CRocksDB

extension RocksDB {
    /// A consistent point-in-time view of the database. Released when the last reference goes.
    package final class Snapshot: @unchecked Sendable {
        // Immutable after init; RocksDB snapshots may be read from any thread.
        let database: RocksDB
        let snapshot: OpaquePointer
        let readOptions: OpaquePointer

        /// The caller has already entered `database` (see ``RocksDB/enter()``); the snapshot leaves on deinit.
        init(database: RocksDB) {
            self.database = database
            self.snapshot = rocksdb_create_snapshot(database.db)!
            self.readOptions = rocksdb_readoptions_create()!
            rocksdb_readoptions_set_snapshot(readOptions, snapshot)
        }

        deinit {
            rocksdb_readoptions_destroy(readOptions)
            rocksdb_release_snapshot(database.db, snapshot)
            database.leave()
        }

        /// The value of `key` as of this snapshot.
        package func get(_ key: [UInt8], in family: ColumnFamily? = nil) throws -> [UInt8]? {
            try database.get(key, in: family, snapshot: self)
        }
    }

    /// Takes a snapshot: reads through it see the database as it is now, whatever is written later.
    package func snapshot() throws -> Snapshot {
        try enter()
        return Snapshot(database: self)
    }
}
