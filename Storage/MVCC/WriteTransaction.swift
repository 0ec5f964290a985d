internal import StrataLease
internal import StrataRocksDB

/// One write transaction in one keyspace, handed to the body of ``MVCCStore/update(_:durability:_:)``.
///
/// Reads see the transaction's own earlier writes (the batch is indexed and read through). Everything it writes
/// becomes one RocksDB batch and, if any key changed, one new revision (``writeRevision``), when the body returns;
/// if the body throws, nothing is written. The body runs under the store's writer lock, so every other writer waits
/// for it: keep it short, never block or await in it, and expect ``MVCCError/transactionTooLarge(_:)`` when it reads
/// or writes more than the store's ``MVCCStore/TransactionLimits`` allow.
///
/// Keys with an expiry time (latest-only keyspaces) are invisible to reads once it has passed; a write that finds one
/// deletes it first, as an `expired` event.
package struct WriteTransaction {
    let store: MVCCStore
    /// The keyspace read and written (lease revocation moves between keyspaces; front-ends never do).
    package internal(set) var keyspace: Keyspace
    /// Wall-clock milliseconds when the transaction started: every expiry decision in it uses this instant.
    package let now: Int64
    let beginRevision: Revision
    /// Reads below this revision fail (compacted).
    package let compactRevision: Revision
    let batch: RocksDB.IndexedBatch
    let limits: MVCCStore.TransactionLimits
    var changes: [TransactionChange] = []
    /// A put or expiry change happened (what the free-space guard refuses); deletions alone do not add data.
    var addsData = false
    var entriesRead = 0
    /// The smallest expiry-index key this transaction added (the expirer's cursor may need to move back to it).
    var lowestExpiryKey: [UInt8]?
    /// The last few records read with their values, until the key is written: a read-modify-write (Redis's SET
    /// reads a key's metadata, then `put` reads it again) costs one RocksDB read, not two.
    private var recentReads: [(keyspace: UInt8, key: [UInt8], record: StorageEncoding.Record?)] = []

    init(store: MVCCStore, keyspace: Keyspace, beginRevision: Revision, compactRevision: Revision, now: Int64) {
        self.store = store
        self.keyspace = keyspace
        self.beginRevision = beginRevision
        self.compactRevision = compactRevision
        self.now = now
        self.batch = store.writerBatch
        self.limits = store.configuration.transactionLimits
    }

    /// The revision this transaction's changes get.
    package var writeRevision: Revision { beginRevision + 1 }
    /// The revision reads inside the transaction report: the write revision once something changed.
    package var readRevision: Revision { changes.isEmpty ? beginRevision : beginRevision + 1 }
    /// Whether a key changed so far (the transaction will take a revision).
    package var hasChanges: Bool { !changes.isEmpty }

    /// The events for watchers, with the keyspace each happened in.
    var keyedEvents: [(Keyspace, Event)] { changes.compactMap { change in change.event.map { (change.keyspace, $0) } } }

    // MARK: Reads

    /// Whether lease `id` exists (a put with it would not fail for that reason).
    package func leaseExists(_ id: Int64) -> Bool { store.lessor.contains(id) }

    /// The current value of `key`, or nil when it does not exist (or has expired).
    package mutating func get(_ key: [UInt8], valueNeeded: Bool = true) throws(MVCCError) -> KeyValue? {
        guard let kv = try storedRecord(key, value: valueNeeded)?.live, !kv.isExpired(at: now) else { return nil }
        return kv
    }

    /// Keys in `range`, as ``MVCCStore/range(_:_:_:)`` reads them, including this transaction's writes; at an older
    /// revision (keyspaces with history) the stored versions, which this transaction has not changed.
    package mutating func range(_ range: KeyRange, _ options: RangeOptions = RangeOptions()) throws(MVCCError)
        -> RangeRead
    {
        let revision = options.revision <= 0 ? readRevision : options.revision
        if revision > readRevision { throw .futureRevision }
        if options.revision > 0 && revision < compactRevision { throw .compacted(compactRevision: compactRevision) }
        let context = ReadContext(source: .batch(batch), latestRevision: readRevision, now: now)
        var budget = ReadBudget(used: entriesRead, limit: limits.maxEntriesRead)
        defer { entriesRead = budget.used }
        var read = try store.collect(keyspace, range, at: revision, context: context, options: options, budget: &budget)
        read.revision = readRevision
        return read
    }

    /// Calls `body` with each live key in `range` (ascending, or descending with `reverse`) until it returns false.
    package mutating func forEach(
        in range: KeyRange,
        reverse: Bool = false,
        keysOnly: Bool = false,
        _ body: (KeyValue) throws(MVCCError) -> Bool
    ) throws(MVCCError) {
        var budget = ReadBudget(used: entriesRead, limit: limits.maxEntriesRead)
        defer { entriesRead = budget.used }
        let keyspace = keyspace
        let now = now
        try store.iterateLatest(keyspace, range, source: .batch(batch), reverse: reverse, budget: &budget) {
            key,
            value throws(MVCCError) -> Bool in
            guard StorageEncoding.isLive(value) else { return true }
            guard let kv = try StorageEncoding.decodeRecord(key: key(), value, keysOnly: keysOnly).live,
                !kv.isExpired(at: now)
            else { return true }
            return try body(kv)
        }
    }

    // MARK: Writes

    /// Sets `key` to `value`. Returns the new state and the previous one (nil if the key did not exist; in a
    /// latest-only keyspace without its value: read it first when it is needed).
    @discardableResult
    package mutating func put(
        _ key: [UInt8],
        _ value: [UInt8],
        lease: Int64 = 0,
        expiry: Expiry = .none,
        event: WriteEvent = .standard
    ) throws(MVCCError) -> (kv: KeyValue, previous: KeyValue?) {
        try checkEvent(event)
        let stored = try storedRecord(key, value: keyspace.keepsHistory)
        var previous = stored?.live
        if let expired = previous, expired.isExpired(at: now) {
            try recordDelete(expired, stored: stored!, event: .named(Event.expired))
            previous = nil
        }
        if lease != 0 {
            guard keyspace.format == .versioned else { throw .unsupported("leases in the \(keyspace) keyspace") }
            guard store.lessor.contains(lease) else { throw .leaseNotFound }
        }
        let expiresAt: Int64
        switch expiry {
        case .none: expiresAt = 0
        case .keep: expiresAt = previous?.expiresAt ?? 0
        case .at(let deadline): expiresAt = deadline
        }
        if expiresAt != 0 && keyspace.format != .compact {
            throw .unsupported("expiry times in the \(keyspace) keyspace")
        }
        let revision = writeRevision
        let versioned = keyspace.format == .versioned
        let kv = KeyValue(
            key: key,
            createRevision: versioned ? previous?.createRevision ?? revision : 0,
            modRevision: revision,
            version: versioned ? (previous?.version ?? 0) + 1 : 0,
            lease: lease,
            expiresAt: expiresAt,
            value: value
        )
        let record = StorageEncoding.encode(kv, in: keyspace, previous: stored?.modRevision ?? 0)
        forgetRead(key)
        batch.put(StorageEncoding.latestKey(keyspace, key), record, in: store.latest)
        if let stored { preserveIfCompacted(key, stored) }
        let previousLease = previous?.lease ?? 0
        if previousLease != 0, previousLease != lease {
            batch.delete(StorageEncoding.leaseKeysKey(previousLease, keyspace, key), in: store.leaseKeys)
        }
        if lease != 0, lease != previousLease {
            batch.put(StorageEncoding.leaseKeysKey(lease, keyspace, key), [], in: store.leaseKeys)
        }
        updateExpiryIndex(key, from: previous?.expiresAt ?? 0, to: expiresAt)
        addsData = true
        let announced = event == .none ? nil : Event(kind: .put, kv: kv, prevKV: previous, operation: event.operation)
        changes.append(
            TransactionChange(keyspace: keyspace, key: key, event: announced, logRecord: logged(record))
        )
        try checkBatchSize()
        return (kv, previous)
    }

    /// Deletes `key`; returns its previous state (nil when it did not exist or had expired).
    @discardableResult
    package mutating func delete(_ key: [UInt8], event: WriteEvent = .standard) throws(MVCCError) -> KeyValue? {
        try checkEvent(event)
        guard let stored = try storedRecord(key, value: keyspace.keepsHistory), let kv = stored.live else {
            return nil
        }
        if kv.isExpired(at: now) {
            try recordDelete(kv, stored: stored, event: .named(Event.expired))
            return nil
        }
        try recordDelete(kv, stored: stored, event: event)
        return kv
    }

    /// Deletes every live key in `range` at this revision; returns them (in a latest-only keyspace without values).
    @discardableResult
    package mutating func deleteRange(_ range: KeyRange, event: WriteEvent = .standard) throws(MVCCError)
        -> [KeyValue]
    {
        try checkEvent(event)
        var found: [(KeyValue, StorageEncoding.Record, Bool)] = []
        var budget = ReadBudget(used: entriesRead, limit: limits.maxEntriesRead)
        defer { entriesRead = budget.used }
        let keyspace = keyspace
        let now = now
        // Collected first: the batch must not change under its own iterator.
        try store.iterateLatest(keyspace, range, source: .batch(batch), reverse: false, budget: &budget) {
            key,
            value throws(MVCCError) -> Bool in
            guard StorageEncoding.isLive(value) else { return true }
            let record = try StorageEncoding.decodeRecord(key: key(), value, keysOnly: !keyspace.keepsHistory)
            if let kv = record.live { found.append((kv, record, kv.isExpired(at: now))) }
            return true
        }
        var deleted: [KeyValue] = []
        deleted.reserveCapacity(found.count)
        for (kv, record, expired) in found {
            try recordDelete(kv, stored: record, event: expired ? .named(Event.expired) : event)
            if !expired { deleted.append(kv) }
        }
        return deleted
    }

    /// Changes the expiry time of `key`, keeping its value; the key gets a new mod revision (a change, as for
    /// Redis's `WATCH`). Returns the new state, or nil when the key does not exist (or has expired).
    @discardableResult
    package mutating func setExpiry(_ key: [UInt8], _ expiry: Expiry, event: WriteEvent = .standard)
        throws(MVCCError) -> KeyValue?
    {
        guard keyspace.format == .compact else { throw .unsupported("expiry times in the \(keyspace) keyspace") }
        guard let current = try get(key) else {
            // A write that finds the key expired deletes it, as every other write does.
            if let stored = try storedRecord(key, value: false), let kv = stored.live {
                try recordDelete(kv, stored: stored, event: .named(Event.expired))
            }
            return nil
        }
        if case .keep = expiry { return current }
        return try put(key, current.value, expiry: expiry, event: event).kv
    }

    /// Tells watchers of `key` that `operation` happened to it in this transaction, without writing anything: for
    /// front-ends whose one command changes several entries, or one entry in several named steps (Redis keyspace
    /// notifications: `new`, `set`, `expire`). Delivered in order with the transaction's other events; the
    /// transaction takes a revision. Latest-only keyspaces only (the revision log would not replay it).
    package mutating func announce(_ key: [UInt8], _ operation: String, deletion: Bool = false) throws(MVCCError) {
        guard !keyspace.keepsHistory else {
            throw .unsupported("announcements in the \(keyspace) keyspace (its log replays every change)")
        }
        let kv = KeyValue(key: key, createRevision: 0, modRevision: writeRevision, version: 0, value: [])
        let event = Event(kind: deletion ? .delete : .put, kv: kv, operation: operation)
        changes.append(TransactionChange(keyspace: keyspace, key: key, event: event, logRecord: nil))
    }

    // MARK: Internals

    /// The stored record of `key` (live, expired or a deletion not yet compacted), read through the batch.
    mutating func storedRecord(_ key: [UInt8], value: Bool = true) throws(MVCCError) -> StorageEncoding.Record? {
        try charge(1)
        let id = keyspace.id
        if let recent = recentReads.last(where: { $0.keyspace == id && $0.key == key }) { return recent.record }
        let record = try store.latestRecord(keyspace, key, source: .batch(batch), keysOnly: !value)
        if value {
            if recentReads.count == 4 { recentReads.removeFirst() }
            recentReads.append((id, key, record))
        }
        return record
    }

    /// Forgets what was read of `key` (it is being written).
    private mutating func forgetRead(_ key: [UInt8]) {
        if !recentReads.isEmpty { recentReads.removeAll { $0.keyspace == keyspace.id && $0.key == key } }
    }

    mutating func charge(_ entries: Int) throws(MVCCError) {
        entriesRead += entries
        if entriesRead > limits.maxEntriesRead {
            throw .transactionTooLarge("read more than \(limits.maxEntriesRead) entries under the writer lock")
        }
    }

    private func checkBatchSize() throws(MVCCError) {
        if batch.byteSize > limits.maxBatchBytes {
            throw .transactionTooLarge("wrote more than \(limits.maxBatchBytes) bytes in one batch")
        }
    }

    private func checkEvent(_ event: WriteEvent) throws(MVCCError) {
        if event == .none && keyspace.keepsHistory {
            throw .unsupported("silent writes in the \(keyspace) keyspace (its log replays every change)")
        }
    }

    private func logged(_ record: [UInt8]) -> [UInt8]? { keyspace.keepsHistory ? record : nil }

    /// Records the deletion of live `kv` (its stored record `stored`).
    mutating func recordDelete(_ kv: KeyValue, stored: StorageEncoding.Record, event: WriteEvent) throws(MVCCError) {
        if let hook = keyspace.expiryHook, event.operation == Event.expired {
            // The hook sees the value, which latest-only deletions do not read otherwise.
            var last = kv
            if !keyspace.keepsHistory, let full = try storedRecord(kv.key, value: true)?.live { last = full }
            try hook.body(&self, last)
        }
        forgetRead(kv.key)
        let storageKey = StorageEncoding.latestKey(keyspace, kv.key)
        let revision = writeRevision
        var logRecord: [UInt8]? = nil
        if keyspace.keepsHistory {
            // The tombstone stays in the latest family until compaction passes it, so historical reads find the key.
            let tombstone = StorageEncoding.encodeTombstone(revision, previous: kv.modRevision)
            batch.put(storageKey, tombstone, in: store.latest)
            preserveIfCompacted(kv.key, stored)
            logRecord = tombstone
        } else {
            batch.delete(storageKey, in: store.latest)
        }
        if kv.lease != 0 {
            batch.delete(StorageEncoding.leaseKeysKey(kv.lease, keyspace, kv.key), in: store.leaseKeys)
        }
        if kv.expiresAt != 0 {
            batch.delete(StorageEncoding.expiryKey(kv.expiresAt, keyspace, kv.key), in: store.expiry)
        }
        var announced: Event? = nil
        if event != .none {
            let tombstone = KeyValue(key: kv.key, createRevision: 0, modRevision: revision, version: 0, value: [])
            announced = Event(kind: .delete, kv: tombstone, prevKV: kv, operation: event.operation)
        }
        changes.append(TransactionChange(keyspace: keyspace, key: kv.key, event: announced, logRecord: logRecord))
        try checkBatchSize()
    }

    private mutating func updateExpiryIndex(_ key: [UInt8], from old: Int64, to new: Int64) {
        guard old != new else { return }
        if old != 0 { batch.delete(StorageEncoding.expiryKey(old, keyspace, key), in: store.expiry) }
        if new != 0 {
            let indexKey = StorageEncoding.expiryKey(new, keyspace, key)
            batch.put(indexKey, [], in: store.expiry)
            if lowestExpiryKey.map({ indexKey.lexicographicallyPrecedes($0) }) ?? true { lowestExpiryKey = indexKey }
        }
    }

    /// A version about to be superseded whose revision log entry compaction may already have removed: keep it in
    /// the history family, where reads between the compaction point and the new version find it.
    private func preserveIfCompacted(_ key: [UInt8], _ previous: StorageEncoding.Record) {
        // (Records of keyspaces with history are always read with their values.)
        guard keyspace.keepsHistory, previous.modRevision < compactRevision else { return }
        batch.put(
            StorageEncoding.historyKey(keyspace, key, previous.modRevision),
            previous.encoded(),
            in: store.history
        )
    }

    /// Deletes `key` if its expiry index entry for `deadline` is due (the expirer's transaction); a stale entry (the
    /// key was rewritten without its index entry, which no write does) is dropped without a revision.
    mutating func expireIfDue(_ key: [UInt8], deadline: Int64) throws(MVCCError) -> Bool {
        guard let stored = try storedRecord(key, value: false), let kv = stored.live, kv.expiresAt == deadline else {
            batch.delete(StorageEncoding.expiryKey(deadline, keyspace, key), in: store.expiry)
            return false
        }
        guard kv.isExpired(at: now) else { return false }
        try recordDelete(kv, stored: stored, event: .named(Event.expired))
        return true
    }
}

/// One key changed by a transaction.
struct TransactionChange {
    let keyspace: Keyspace
    let key: [UInt8]
    /// What watchers get; nil for a silent write.
    let event: Event?
    /// The record for the revision log (keyspaces with history).
    let logRecord: [UInt8]?
}

/// How many entries reads may visit under the writer lock.
struct ReadBudget {
    var used: Int
    var limit: Int

    static var unlimited: ReadBudget { ReadBudget(used: 0, limit: .max) }

    mutating func charge() throws(MVCCError) {
        used += 1
        if used > limit { throw .transactionTooLarge("read more than \(limit) entries under the writer lock") }
    }
}
