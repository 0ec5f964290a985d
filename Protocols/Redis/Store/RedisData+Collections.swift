package import StrataMVCC

/// Members of hashes, sets and sorted sets (`s` version hash member → value), shared by the three types.
extension RedisData {
    /// A new, empty collection (not stored until the command's first member lands and ``finish(_:_:_:)`` runs).
    package mutating func newCollection(_ type: RedisType) -> Entry {
        Entry(metadata: .collection(type, version: newVersion()), modRevision: 0, expiresAt: 0)
    }

    /// The collection at `key` of `type`, or a new empty one (`created` tells which).
    package mutating func collection(_ db: Int, _ key: [UInt8], _ type: RedisType) throws(RedisError)
        -> (entry: Entry, created: Bool)
    {
        if let entry = try lookup(db, key, as: type) { return (entry, false) }
        return (newCollection(type), true)
    }

    package mutating func member(_ entry: Entry, _ member: [UInt8]) throws(RedisError) -> [UInt8]? {
        try read(RedisLayout.memberKey(entry.metadata.version, member))?.value
    }

    /// Sets a member's value; true when it is new (the size grows).
    @discardableResult
    package mutating func putMember(_ entry: inout Entry, _ member: [UInt8], _ value: [UInt8]) throws(RedisError)
        -> Bool
    {
        let key = RedisLayout.memberKey(entry.metadata.version, member)
        let existed = try read(key) != nil
        try write(key, value)
        if !existed { entry.metadata.size += 1 }
        return !existed
    }

    /// Removes a member; true when it existed.
    @discardableResult
    package mutating func removeMember(_ entry: inout Entry, _ member: [UInt8]) throws(RedisError) -> Bool {
        let key = RedisLayout.memberKey(entry.metadata.version, member)
        guard try read(key) != nil else { return false }
        try remove(key)
        entry.metadata.size -= 1
        return true
    }

    /// Every member and its value, in storage order (by member hash).
    package mutating func members(_ entry: Entry) throws(RedisError) -> [(member: [UInt8], value: [UInt8])] {
        var found: [(member: [UInt8], value: [UInt8])] = []
        found.reserveCapacity(Int(clamping: entry.metadata.size))
        try scan(KeyRange.prefix(RedisLayout.memberPrefix(entry.metadata.version))) { kv throws(RedisError) in
            found.append((RedisLayout.parseMemberKey(kv.key).member, kv.value))
            return true
        }
        return found
    }

    /// A page of members from hash position `cursor` on (HSCAN/SSCAN/ZSCAN): at least `count` members unless the
    /// collection ends, always whole hash buckets; the next cursor, 0 at the end.
    package mutating func memberPage(_ entry: Entry, cursor: UInt64, count: Int) throws(RedisError)
        -> (members: [(member: [UInt8], value: [UInt8])], next: UInt64)
    {
        let version = entry.metadata.version
        let start = RedisLayout.memberKey(version, hashAtLeast: UInt32(clamping: cursor))
        let range = KeyRange(key: start, end: KeyRange.prefixEnd(RedisLayout.memberPrefix(version)))
        var found: [(member: [UInt8], value: [UInt8])] = []
        var lastHash: UInt32? = nil
        var next: UInt64 = 0
        try scan(range) { kv throws(RedisError) in
            let (hash, member) = RedisLayout.parseMemberKey(kv.key)
            if found.count >= count, hash != lastHash {
                next = UInt64(hash)
                return false
            }
            found.append((member, kv.value))
            lastHash = hash
            return true
        }
        // A cursor of 0 means "done", so a page that stops at hash 0 cannot happen (hash 0 is the first page's).
        return (found, next)
    }

    /// Stores a collection's metadata after a command changed it, or deletes the key when it became empty (an
    /// empty collection does not exist). Returns false when it was deleted.
    @discardableResult
    package mutating func finish(_ db: Int, _ key: [UInt8], _ entry: Entry) throws(RedisError) -> Bool {
        if entry.metadata.size > 0 {
            try store(db, key, entry.metadata, expiry: .keep)
            return true
        }
        // Never stored (a command that added nothing to a new collection) or emptied.
        if entry.modRevision != 0 { try drop(db, key, entry) }
        return false
    }

    /// Replaces whatever `key` holds with `entry` (a new collection or string), dropping the old value's members;
    /// the key loses its expiry unless `expiry` says otherwise. An empty collection deletes the key (not a stream:
    /// Redis keeps empty streams). `previous` is what the key holds now, when the caller has looked it up already.
    package mutating func replace(
        _ db: Int,
        _ key: [UInt8],
        with entry: Entry,
        expiry: Expiry = .none,
        previous: Entry?? = nil
    ) throws(RedisError) {
        let old: Entry?
        if let previous { old = previous } else { old = try lookup(db, key) }
        if let old, old.type != .string, old.metadata.version != entry.metadata.version {
            try discardMembers(of: old)
            if old.type == .stream { readied.append(RedisKeyName(db: db, key: key)) }
        }
        if entry.type != .string && entry.type != .stream && entry.metadata.size == 0 {
            if old != nil {
                try remove(RedisLayout.metadataKey(space: spaces.space(db), key))
                changes += 1
                if trackModified { modified.append(key) }
            }
            return
        }
        try store(db, key, entry.metadata, expiry: expiry)
    }

    /// Sets `key` to the string `value`, replacing whatever it held.
    package mutating func setString(
        _ db: Int,
        _ key: [UInt8],
        _ value: [UInt8],
        expiry: Expiry = .none,
        previous: Entry?? = nil
    ) throws(RedisError) {
        try replace(
            db,
            key,
            with: Entry(metadata: .string(value), modRevision: 0, expiresAt: 0),
            expiry: expiry,
            previous: previous
        )
    }
}
