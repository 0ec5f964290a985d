internal import CoreMetrics
internal import StrataLease
internal import StrataRocksDB
internal import Synchronization

/// Where reads come from: a published snapshot (nil: the live database), or a write transaction's batch read
/// through to the live database.
enum ReadSource {
    case snapshot(RocksDB.Snapshot?)
    case batch(RocksDB.IndexedBatch)

    /// What revision-log reads use: the snapshot, or the live database (a transaction's own log entry is not
    /// written yet, and older entries never change).
    var logSnapshot: RocksDB.Snapshot? {
        if case .snapshot(let snapshot) = self { return snapshot }
        return nil
    }
}

struct ReadContext {
    var source: ReadSource
    /// Reads at this revision use the latest family directly; older ones walk each key's version chain.
    var latestRevision: Revision
    /// Wall-clock milliseconds that expiry times are compared with.
    var now: Int64
}

extension MVCCStore {
    /// A range read: at the latest revision, or (keyspaces with history) at an older one that compaction kept.
    /// Latest-only keyspaces read the live database (RocksDB's iterator is a consistent view of it).
    package func range(_ keyspace: Keyspace, _ range: KeyRange, _ options: RangeOptions = RangeOptions())
        throws(MVCCError) -> RangeRead
    {
        try checkRegistered(keyspace)
        metrics.reads.increment()
        var budget = ReadBudget.unlimited
        guard keyspace.keepsHistory else {
            if isClosed.load(ordering: .acquiring) { throw .closed }
            if options.revision > 0 { throw .unsupported("reads at a revision in the \(keyspace) keyspace") }
            let revision = writtenRevision
            let context = ReadContext(source: .snapshot(nil), latestRevision: revision, now: clock.wallMilliseconds())
            return try collect(keyspace, range, at: revision, context: context, options: options, budget: &budget)
        }
        let (view, snapshot) = try openReadView()
        let revision = options.revision <= 0 ? view.revision : options.revision
        guard revision <= view.revision else { throw .futureRevision }
        guard revision >= view.compactRevision else { throw .compacted(compactRevision: view.compactRevision) }
        let context = ReadContext(source: .snapshot(snapshot), latestRevision: view.revision, now: 0)
        return try collect(keyspace, range, at: revision, context: context, options: options, budget: &budget)
    }

    /// The latest value of one key, or nil. A latest-only keyspace's key is one RocksDB read of the live database,
    /// no snapshot.
    package func get(_ keyspace: Keyspace, _ key: [UInt8]) throws(MVCCError) -> KeyValue? {
        try checkRegistered(keyspace)
        metrics.reads.increment()
        guard keyspace.keepsHistory else {
            if isClosed.load(ordering: .acquiring) { throw .closed }
            guard let kv = try latestRecord(keyspace, key, source: .snapshot(nil))?.live,
                !kv.isExpired(at: clock.wallMilliseconds())
            else { return nil }
            return kv
        }
        let (_, snapshot) = try openReadView()
        return try latestRecord(keyspace, key, source: .snapshot(snapshot))?.live
    }

    /// Calls `body` with each live key of a latest-only keyspace in `range` (ascending, or descending with `reverse`)
    /// until it returns false: one iterator over the live database, nothing collected (a front-end paging through a
    /// large collection). Expired keys are skipped.
    package func forEachLatest(
        _ keyspace: Keyspace,
        in range: KeyRange,
        reverse: Bool = false,
        keysOnly: Bool = false,
        _ body: (KeyValue) throws(MVCCError) -> Bool
    ) throws(MVCCError) {
        try checkRegistered(keyspace)
        guard !keyspace.keepsHistory else { throw .unsupported("live iteration of the \(keyspace) keyspace") }
        if isClosed.load(ordering: .acquiring) { throw .closed }
        metrics.reads.increment()
        var budget = ReadBudget.unlimited
        let now = clock.wallMilliseconds()
        try iterateLatest(keyspace, range, source: .snapshot(nil), reverse: reverse, budget: &budget) {
            key,
            value throws(MVCCError) -> Bool in
            guard StorageEncoding.isLive(value) else { return true }
            guard let kv = try StorageEncoding.decodeRecord(key: key(), value, keysOnly: keysOnly).live,
                !kv.isExpired(at: now)
            else { return true }
            return try body(kv)
        }
    }

    /// Wall-clock milliseconds by the store's clock (what expiry times are compared with).
    package var wallMilliseconds: Int64 { clock.wallMilliseconds() }

    /// The last revision written (possibly not yet published): what latest-only reads report.
    var writtenRevision: Revision { written.load(ordering: .acquiring) }

    /// The newest record of a key in the latest family (a deletion not yet compacted away shows as a tombstone).
    func latestRecord(_ keyspace: Keyspace, _ key: [UInt8], source: ReadSource, keysOnly: Bool = false)
        throws(MVCCError) -> StorageEncoding.Record?
    {
        let storageKey = StorageEncoding.latestKey(keyspace, key)
        let bytes: [UInt8]?
        switch source {
        case .snapshot(let snapshot):
            bytes = try Self.storage { try database.get(storageKey, in: latest, snapshot: snapshot) }
        case .batch(let batch):
            bytes = try Self.storage { try database.get(storageKey, in: latest, through: batch) }
        }
        guard let bytes else { return nil }
        return try StorageEncoding.decodeRecord(key: key, bytes, keysOnly: keysOnly)
    }

    /// Calls `body` with each stored record in `range` of the latest family (deletions not yet compacted and expired
    /// keys included), ascending or descending, until it returns false. `key()` copies the user key out.
    func iterateLatest(
        _ keyspace: Keyspace,
        _ range: KeyRange,
        source: ReadSource,
        reverse: Bool,
        budget: inout ReadBudget,
        _ body: (_ key: () -> [UInt8], _ value: UnsafeRawBufferPointer) throws(MVCCError) -> Bool
    ) throws(MVCCError) {
        let (lower, upper) = StorageEncoding.latestBounds(keyspace, range)
        let iterator = try Self.storage { () throws -> RocksDB.Iterator in
            switch source {
            case .snapshot(let snapshot):
                try database.makeIterator(latest, lowerBound: lower, upperBound: upper, snapshot: snapshot)
            case .batch(let batch):
                try database.makeIterator(latest, lowerBound: lower, upperBound: upper, through: batch)
            }
        }
        // A transaction's merged iterator honours the bounds on the database side only: check every key.
        if reverse { iterator.seekForPrev(upper) } else { iterator.seek(lower) }
        while iterator.isValid {
            let position = iterator.withKey { key -> Int in
                if key.lexicographicallyPrecedes(lower) { return -1 }
                return key.lexicographicallyPrecedes(upper) ? 0 : 1
            }
            if position != 0 {
                // Past the range in the direction of travel ends it; a key on the other side is skipped.
                if (position > 0) != reverse { break }
                if reverse { iterator.previous() } else { iterator.next() }
                continue
            }
            try budget.charge()
            let more = try iterator.withValue { value throws(MVCCError) -> Bool in
                try body({ iterator.withKey { [UInt8]($0.dropFirst()) } }, value)
            }
            if !more { break }
            if reverse { iterator.previous() } else { iterator.next() }
        }
        try Self.storage { try iterator.checkError() }
    }

    /// Keys in `range` at `revision`, as `options` asks.
    func collect(
        _ keyspace: Keyspace,
        _ range: KeyRange,
        at revision: Revision,
        context: ReadContext,
        options: RangeOptions,
        budget: inout ReadBudget
    ) throws(MVCCError) -> RangeRead {
        let historical = revision < context.latestRevision
        if historical && !keyspace.keepsHistory {
            throw .unsupported("historical reads in the \(keyspace) keyspace")
        }
        let limit = max(options.limit, 0)
        let countAll = options.countAll || options.countOnly
        if range.isSingleKey {
            try budget.charge()
            guard
                let record = try latestRecord(
                    keyspace,
                    range.key,
                    source: context.source,
                    keysOnly: options.keysOnly && !historical
                )
            else { return RangeRead(kvs: [], count: 0, more: false, revision: context.latestRevision) }
            let version =
                historical
                ? try walk(keyspace, range.key, from: record, to: revision, snapshot: context.source.logSnapshot)
                : record.live
            guard var kv = version, !kv.isExpired(at: context.now) else {
                return RangeRead(kvs: [], count: 0, more: false, revision: context.latestRevision)
            }
            if options.countOnly { return RangeRead(kvs: [], count: 1, more: false, revision: context.latestRevision) }
            if options.keysOnly { kv.value = [] }
            return RangeRead(kvs: [kv], count: 1, more: false, revision: context.latestRevision)
        }
        var kvs: [KeyValue] = []
        var count = 0
        var more = false
        let compact = keyspace.format == .compact
        try iterateLatest(keyspace, range, source: context.source, reverse: options.reverse, budget: &budget) {
            key,
            value throws(MVCCError) -> Bool in
            // A key that exists at the revision: counted, and returned while the limit allows; past the limit, the
            // read ends at once unless every key must be counted.
            func found(_ make: () throws(MVCCError) -> KeyValue?) throws(MVCCError) -> Bool {
                let wanted = !options.countOnly && (limit == 0 || kvs.count < limit)
                if !wanted && !countAll {
                    more = true
                    return false
                }
                count += 1
                guard wanted else {
                    if limit > 0 && kvs.count >= limit { more = true }
                    return true
                }
                if var kv = try make() {
                    if options.keysOnly { kv.value = [] }
                    kvs.append(kv)
                }
                return true
            }
            if !historical {
                // Deletions not yet compacted are skipped without decoding.
                guard StorageEncoding.isLive(value) else { return true }
                if compact {
                    guard let header = try StorageEncoding.decodeRecord(key: [], value, keysOnly: true).live,
                        !header.isExpired(at: context.now)
                    else { return true }
                }
                return try found { () throws(MVCCError) in
                    try StorageEncoding.decodeRecord(key: key(), value, keysOnly: options.keysOnly).live
                }
            }
            let name = key()
            let record = try StorageEncoding.decodeRecord(key: name, value)
            guard let kv = try walk(keyspace, name, from: record, to: revision, snapshot: context.source.logSnapshot)
            else { return true }
            return try found { () throws(MVCCError) in kv }
        }
        return RangeRead(kvs: kvs, count: count, more: more, revision: context.latestRevision)
    }

    /// The version of `key` visible at `revision`, walking back from `record` (its newest) through the revision log,
    /// and to the history family for versions compaction moved out of the log. nil if absent or deleted then.
    func walk(
        _ keyspace: Keyspace,
        _ key: [UInt8],
        from record: StorageEncoding.Record,
        to revision: Revision,
        snapshot: RocksDB.Snapshot?
    ) throws(MVCCError) -> KeyValue? {
        var current = record
        while current.modRevision > revision {
            let previous = current.previous
            guard previous > 0 else { return nil }
            if let older = try logRecord(keyspace, key, at: previous, snapshot: snapshot) {
                current = older
            } else {
                return try historyRecord(keyspace, key, atOrBelow: revision, snapshot: snapshot)?.live
            }
        }
        return current.live
    }

    /// The record `key` got at `revision`, from the revision log (nil when that entry was compacted away).
    func logRecord(_ keyspace: Keyspace, _ key: [UInt8], at revision: Revision, snapshot: RocksDB.Snapshot?)
        throws(MVCCError) -> StorageEncoding.Record?
    {
        let bytes = try Self.storage { try database.get(StorageEncoding.logKey(revision), in: log, snapshot: snapshot) }
        guard let bytes else { return nil }
        for change in try StorageEncoding.decodeLogEntry(bytes)
        where change.keyspace == keyspace.id && change.key == key {
            return try StorageEncoding.decodeRecord(key: key, change.record)
        }
        throw .storage("revision \(revision) does not record key \(key)")
    }

    /// The newest record of `key` at or below `revision` kept in the history family.
    func historyRecord(_ keyspace: Keyspace, _ key: [UInt8], atOrBelow revision: Revision, snapshot: RocksDB.Snapshot?)
        throws(MVCCError) -> StorageEncoding.Record?
    {
        let prefix = StorageEncoding.historyPrefix(keyspace, key)
        let iterator = try Self.storage {
            try database.makeIterator(
                history,
                lowerBound: prefix,
                upperBound: prefix + [UInt8](repeating: 0xFF, count: 9),
                snapshot: snapshot
            )
        }
        iterator.seek(StorageEncoding.historyKey(keyspace, key, revision))
        guard iterator.isValid else {
            try Self.storage { try iterator.checkError() }
            return nil
        }
        return try iterator.withValue { value throws(MVCCError) in try StorageEncoding.decodeRecord(key: key, value) }
    }
}
