internal import StrataMVCC

/// Whole-database reads: KEYS, SCAN, RANDOMKEY, DBSIZE.
extension RedisData {
    /// Each live key of database `db` with its state, in storage order, until `body` returns false.
    package mutating func forEachKey(_ db: Int, _ body: (_ key: [UInt8], _ entry: Entry) throws(RedisError) -> Bool)
        throws(RedisError)
    {
        let range = KeyRange.prefix(RedisLayout.metadataPrefix(space: spaces.space(db)))
        try scan(range) { kv throws(RedisError) in
            let entry = Entry(
                metadata: try RedisMetadata(decoding: kv.value),
                modRevision: kv.modRevision,
                expiresAt: kv.expiresAt
            )
            return try body(RedisLayout.parseMetadataKey(kv.key)?.userKey ?? [], entry)
        }
    }

    /// A SCAN page: keys from hash position `cursor` on, at least `count` unless the database ends, always whole
    /// hash buckets (so no key is skipped between pages); the next cursor, 0 at the end.
    package mutating func keyPage(_ db: Int, cursor: UInt64, count: Int) throws(RedisError)
        -> (keys: [(key: [UInt8], entry: Entry)], next: UInt64)
    {
        let space = spaces.space(db)
        guard cursor <= UInt64(UInt32.max) else { return ([], 0) }
        let range = KeyRange(
            key: RedisLayout.metadataKey(space: space, hashAtLeast: UInt32(cursor)),
            end: KeyRange.prefixEnd(RedisLayout.metadataPrefix(space: space))
        )
        var found: [(key: [UInt8], entry: Entry)] = []
        var lastHash: UInt32? = nil
        var next: UInt64 = 0
        try scan(range) { kv throws(RedisError) in
            guard let (_, hash, key) = RedisLayout.parseMetadataKey(kv.key) else { return true }
            if found.count >= count, hash != lastHash {
                next = UInt64(hash)
                return false
            }
            let metadata = try RedisMetadata(decoding: kv.value)
            found.append((key, Entry(metadata: metadata, modRevision: kv.modRevision, expiresAt: kv.expiresAt)))
            lastHash = hash
            return true
        }
        return (found, next)
    }

    /// The number of live keys in `db`.
    package mutating func keyCount(_ db: Int) throws(RedisError) -> (keys: Int, expiring: Int) {
        var keys = 0
        var expiring = 0
        let range = KeyRange.prefix(RedisLayout.metadataPrefix(space: spaces.space(db)))
        try scan(range, keysOnly: true) { kv throws(RedisError) in
            keys += 1
            if kv.expiresAt != 0 { expiring += 1 }
            return true
        }
        return (keys, expiring)
    }

    /// A key chosen at random (the first at or after a random hash position), or nil for an empty database.
    package mutating func randomKey(_ db: Int) throws(RedisError) -> [UInt8]? {
        let space = spaces.space(db)
        let end = KeyRange.prefixEnd(RedisLayout.metadataPrefix(space: space))
        let start = RedisLayout.metadataKey(space: space, hashAtLeast: UInt32.random(in: 0...UInt32.max))
        for range in [KeyRange(key: start, end: end), KeyRange.prefix(RedisLayout.metadataPrefix(space: space))] {
            var found: [UInt8]? = nil
            try scan(range, keysOnly: true) { kv throws(RedisError) in
                found = RedisLayout.parseMetadataKey(kv.key)?.userKey
                return false
            }
            if let found { return found }
        }
        return nil
    }

    /// Gives databases `dbs` fresh, empty spaces (FLUSHDB, FLUSHALL): the last step of the transaction.
    package mutating func flush(_ dbs: [Int]) throws(RedisError) {
        do {
            try spaces.flush(dbs, in: &txn!)
        } catch {
            throw .storage(error)
        }
        changes += 1
        flushed = true
    }

    /// Swaps two databases (SWAPDB): the last step of the transaction.
    package mutating func swapDatabases(_ a: Int, _ b: Int) throws(RedisError) {
        do {
            try spaces.swap(a, b, in: &txn!)
        } catch {
            throw .storage(error)
        }
        changes += 1
    }

    /// Moves `entry` from `key` in `db` to `target` in `targetDB` (RENAME, MOVE), replacing what is there; members
    /// stay where they are (they are keyed by version). The expiry moves with it.
    package mutating func move(
        _ db: Int,
        _ key: [UInt8],
        _ entry: Entry,
        to targetDB: Int,
        _ target: [UInt8]
    ) throws(RedisError) {
        try remove(RedisLayout.metadataKey(space: spaces.space(db), key))
        if trackModified { modified.append(key) }
        if let existing = try lookup(targetDB, target) { try discardMembers(of: existing) }
        try store(targetDB, target, entry.metadata, expiry: entry.expiresAt == 0 ? .none : .at(entry.expiresAt))
    }

    /// Changes a key's expiry (0: none), rewriting its metadata as it is.
    package mutating func setExpiry(_ db: Int, _ key: [UInt8], _ entry: Entry, _ expiresAt: Int64) throws(RedisError) {
        try store(db, key, entry.metadata, expiry: expiresAt == 0 ? .none : .at(expiresAt))
    }

    /// Copies every member of `entry` into a new collection (COPY).
    package mutating func copyCollection(_ entry: Entry) throws(RedisError) -> Entry {
        var copy = newCollection(entry.type)
        copy.metadata.size = entry.metadata.size
        copy.metadata.head = entry.metadata.head
        // A stream's IDs, counters, group numbering and node bookkeeping go with it.
        copy.metadata.stream = entry.metadata.stream
        let version = copy.metadata.version
        var written: [([UInt8], [UInt8])] = []
        for prefix in [
            RedisLayout.memberPrefix(entry.metadata.version), RedisLayout.scorePrefix(entry.metadata.version),
        ] {
            try scan(.prefix(prefix)) { kv throws(RedisError) in
                var key = kv.key
                // Same layout, other version: bytes 1...8.
                RedisLayout.replaceVersion(in: &key, with: version)
                written.append((key, kv.value))
                return true
            }
        }
        for (key, value) in written { try write(key, value) }
        return copy
    }
}

extension RedisLayout {
    static func replaceVersion(in key: inout [UInt8], with version: UInt64) {
        for index in 0..<8 { key[1 + index] = UInt8(truncatingIfNeeded: version >> UInt64(56 - 8 * index)) }
    }
}
