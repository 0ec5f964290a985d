package import StrataMVCC

/// What one Redis command reads and writes: the `redis` keyspace, live (read-only commands: one RocksDB read per
/// key, no lock) or inside a write transaction (every write command, and every command of a MULTI/EXEC block or
/// script: reads see the transaction's own writes). Typed operations live in `RedisData+<Type>.swift`.
///
/// Errors a command detects are thrown as ``RedisError`` before it writes anything, so a failed command leaves no
/// trace even inside EXEC.
package struct RedisData {
    package let store: MVCCStore
    package let spaces: RedisSpaces
    /// The transaction of a write command; nil for live reads.
    package var txn: WriteTransaction?
    /// Wall-clock milliseconds every expiry decision of this command uses.
    package let now: Int64
    /// Which keyspace notification classes to announce (nothing is announced with `[]`).
    package var notify: RedisNotifyFlags
    /// Keys that now hold a list or sorted set after a write: blocked clients waiting on them may be served.
    package var readied: [RedisKeyName] = []
    /// Keys written (`INFO` dirty counter).
    package var changes = 0
    /// Keys written or deleted, collected when ``trackModified`` (CLIENT TRACKING invalidates them after the commit),
    /// and whether databases were flushed.
    package var modified: [[UInt8]] = []
    package var trackModified = false
    package var flushed = false
    /// Key lookups of read commands that found the key, and that did not (INFO `keyspace_hits`/`misses`).
    package var hits = 0
    package var misses = 0
    private var versionsAllocated: UInt64 = 0

    /// Reads without a transaction.
    package init(store: MVCCStore, spaces: RedisSpaces, notify: RedisNotifyFlags = []) {
        self.store = store
        self.spaces = spaces
        self.txn = nil
        self.now = store.wallMilliseconds
        self.notify = notify
    }

    /// Reads and writes in `txn`.
    package init(store: MVCCStore, spaces: RedisSpaces, transaction: WriteTransaction, notify: RedisNotifyFlags) {
        self.store = store
        self.spaces = spaces
        self.txn = transaction
        self.now = transaction.now
        self.notify = notify
    }

    package var isWritable: Bool { txn != nil }

    // MARK: Raw access

    @inline(__always)
    mutating func read(_ key: [UInt8]) throws(RedisError) -> KeyValue? {
        do {
            if txn != nil { return try txn!.get(key) }
            return try store.get(.redis, key)
        } catch {
            throw .storage(error)
        }
    }

    /// Each live entry in `range` (ascending, or descending) until `body` returns false.
    mutating func scan(
        _ range: KeyRange,
        reverse: Bool = false,
        keysOnly: Bool = false,
        _ body: (KeyValue) throws(RedisError) -> Bool
    ) throws(RedisError) {
        var failure: RedisError?
        do {
            let visit = { (kv: KeyValue) throws(MVCCError) -> Bool in
                do throws(RedisError) {
                    return try body(kv)
                } catch {
                    failure = error
                    return false
                }
            }
            if txn != nil {
                try txn!.forEach(in: range, reverse: reverse, keysOnly: keysOnly, visit)
            } else {
                try store.forEachLatest(.redis, in: range, reverse: reverse, keysOnly: keysOnly, visit)
            }
        } catch {
            throw .storage(error)
        }
        if let failure { throw failure }
    }

    /// Writes one entry; true when the key did not exist (or had expired).
    @inline(__always)
    @discardableResult
    mutating func write(_ key: [UInt8], _ value: [UInt8], expiry: Expiry = .none) throws(RedisError) -> Bool {
        do {
            return try txn!.put(key, value, expiry: expiry, event: .none).previous == nil
        } catch {
            throw .storage(error)
        }
    }

    @inline(__always)
    mutating func remove(_ key: [UInt8]) throws(RedisError) {
        do {
            try txn!.delete(key, event: .none)
        } catch {
            throw .storage(error)
        }
    }

    /// A version no collection has had: the transaction's revision and a counter.
    mutating func newVersion() -> UInt64 {
        versionsAllocated += 1
        return UInt64(txn!.writeRevision) << 16 | versionsAllocated
    }

    // MARK: Keys

    /// A user key's state: its metadata and the core's record (mod revision, expiry).
    package struct Entry: Sendable {
        package var metadata: RedisMetadata
        package let modRevision: Revision
        /// Milliseconds since the epoch; 0 = no expiry.
        package let expiresAt: Int64
        package var type: RedisType { metadata.type }
    }

    /// The live (unexpired) key, or nil.
    package mutating func lookup(_ db: Int, _ key: [UInt8]) throws(RedisError) -> Entry? {
        guard let kv = try read(RedisLayout.metadataKey(space: spaces.space(db), key)) else { return nil }
        return Entry(
            metadata: try RedisMetadata(decoding: kv.value),
            modRevision: kv.modRevision,
            expiresAt: kv.expiresAt
        )
    }

    /// The live key if it holds `type`; WRONGTYPE if it holds another.
    package mutating func lookup(_ db: Int, _ key: [UInt8], as type: RedisType) throws(RedisError) -> Entry? {
        guard let entry = try lookup(db, key) else {
            if txn == nil { misses += 1 }
            return nil
        }
        if txn == nil { hits += 1 }
        guard entry.type == type else { throw .wrongType }
        return entry
    }

    /// Writes a key's metadata (a new key, or a changed one: every write rewrites it, so its mod revision — what
    /// WATCH compares — changes).
    package mutating func store(_ db: Int, _ key: [UInt8], _ metadata: RedisMetadata, expiry: Expiry = .keep)
        throws(RedisError)
    {
        let created = try write(
            RedisLayout.metadataKey(space: spaces.space(db), key),
            metadata.encoded(),
            expiry: expiry
        )
        if created { notify("new", .newKey, db, key) }
        changes += 1
        if trackModified { modified.append(key) }
        if metadata.type == .list || metadata.type == .zset || metadata.type == .stream {
            readied.append(RedisKeyName(db: db, key: key))
        }
    }

    /// Deletes a key; a collection's members go to the reclaimer.
    package mutating func drop(_ db: Int, _ key: [UInt8], _ entry: Entry) throws(RedisError) {
        if entry.type != .string { try write(RedisLayout.droppedKey(entry.metadata.version), []) }
        // Clients blocked reading a stream group learn it is gone.
        if entry.type == .stream { readied.append(RedisKeyName(db: db, key: key)) }
        try remove(RedisLayout.metadataKey(space: spaces.space(db), key))
        changes += 1
        if trackModified { modified.append(key) }
    }

    /// Records a replaced collection's members for the reclaimer (SET over a hash, RENAME over a key).
    package mutating func discardMembers(of entry: Entry?) throws(RedisError) {
        guard let entry, entry.type != .string else { return }
        try write(RedisLayout.droppedKey(entry.metadata.version), [])
    }

    // MARK: Notifications

    /// Announces keyspace event `event` of `eventClass` on `key` (delivered after the transaction commits, in
    /// order with every other event).
    package mutating func notify(_ event: String, _ eventClass: RedisNotifyFlags, _ db: Int, _ key: [UInt8]) {
        guard notify.contains(eventClass), notify.contains(.keyspace) || notify.contains(.keyevent), txn != nil else {
            return
        }
        try? txn!.announce(RedisLayout.notificationKey(db: db, key), event)
    }
}

/// A user key in a numbered database.
package struct RedisKeyName: Sendable, Hashable {
    package let db: Int
    package let key: [UInt8]
    package init(db: Int, key: [UInt8]) {
        self.db = db
        self.key = key
    }
}

/// `notify-keyspace-events` classes.
package struct RedisNotifyFlags: OptionSet, Sendable, Hashable {
    package let rawValue: UInt32
    package init(rawValue: UInt32) { self.rawValue = rawValue }

    package static let keyspace = Self(rawValue: 1 << 0)  // K
    package static let keyevent = Self(rawValue: 1 << 1)  // E
    package static let generic = Self(rawValue: 1 << 2)  // g
    package static let string = Self(rawValue: 1 << 3)  // $
    package static let list = Self(rawValue: 1 << 4)  // l
    package static let set = Self(rawValue: 1 << 5)  // s
    package static let hash = Self(rawValue: 1 << 6)  // h
    package static let zset = Self(rawValue: 1 << 7)  // z
    package static let expired = Self(rawValue: 1 << 8)  // x
    package static let evicted = Self(rawValue: 1 << 9)  // e
    package static let stream = Self(rawValue: 1 << 10)  // t
    package static let keyMiss = Self(rawValue: 1 << 11)  // m
    package static let module = Self(rawValue: 1 << 12)  // d
    package static let newKey = Self(rawValue: 1 << 13)  // n
    /// `A`: g$lshzxetd.
    package static let all: Self = [.generic, .string, .list, .set, .hash, .zset, .expired, .evicted, .stream, .module]

    private static let letters: [(Character, Self)] = [
        ("g", .generic), ("$", .string), ("l", .list), ("s", .set), ("h", .hash), ("z", .zset), ("x", .expired),
        ("e", .evicted), ("t", .stream), ("m", .keyMiss), ("d", .module), ("n", .newKey), ("K", .keyspace),
        ("E", .keyevent),
    ]

    /// Parses Redis's letters; nil on an unknown one.
    package init?(letters: String) {
        var flags: Self = []
        for letter in letters {
            if letter == "A" {
                flags.formUnion(.all)
            } else if let flag = Self.letters.first(where: { $0.0 == letter })?.1 {
                flags.formUnion(flag)
            } else {
                return nil
            }
        }
        self = flags
    }

    /// As CONFIG GET shows them (Redis's normalized form: `A` for all of it, else each class letter; then `K`, `E`
    /// and `m`).
    package var letters: String {
        var text = ""
        if isSuperset(of: .all) {
            text = "A"
        } else {
            let order: [(Character, Self)] = [
                ("g", .generic), ("$", .string), ("l", .list), ("s", .set), ("h", .hash), ("z", .zset),
                ("x", .expired), ("e", .evicted), ("t", .stream), ("d", .module), ("n", .newKey),
            ]
            for (letter, flag) in order where contains(flag) { text.append(letter) }
        }
        if contains(.keyspace) { text.append("K") }
        if contains(.keyevent) { text.append("E") }
        if contains(.keyMiss) { text.append("m") }
        return text
    }
}
