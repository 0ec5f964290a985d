internal import CRocksDB

extension RocksDB {
    /// Writes a consistent, openable copy of the database to `directory` (which must not exist), hard-linking SST
    /// files where the file system allows. Used for backups and snapshots.
    package func checkpoint(to directory: String) throws {
        try enter()
        defer { leave() }
        guard !configuration.inMemory else {
            throw RocksDBError(code: .notSupported, message: "checkpoints need an on-disk database")
        }
        let checkpoint = try withRocksDBError { err in rocksdb_checkpoint_object_create(db, err) }
        guard let checkpoint else { throw RocksDBError(code: .unknown, message: "could not create checkpoint object") }
        defer { rocksdb_checkpoint_object_destroy(checkpoint) }
        // log_size_for_flush = 0: always flush memtables first, so the copy needs no WAL replay.
        try withRocksDBError { err in rocksdb_checkpoint_create(checkpoint, directory, 0, err) }
    }
}
