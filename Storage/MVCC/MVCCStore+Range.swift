internal import CoreMetrics
internal import StrataLease
package import StrataRocksDB
internal import Synchronization

extension MVCCStore {
    /// A range read at the latest or a historical revision, with etcd's options and semantics.
    package func range(_ keyspace: Keyspace, _ request: RangeRequest) throws(MVCCError) -> RangeResult {
        metrics.ranges.increment()
        guard !request.range.key.isEmpty else { throw .emptyKey }
        let (view, snapshot) = try openReadView()
        let revision = request.revision <= 0 ? view.revision : request.revision
        guard revision <= view.revision else { throw .futureRevision }
        guard revision >= view.compactRevision else { throw .compacted(compactRevision: view.compactRevision) }
        let source = ReadSource(snapshot: snapshot, latestRevision: view.revision)
        return try executeRange(
            keyspace,
            request,
            at: revision,
            source: source,
            overlay: nil,
            headerRevision: view.revision
        )
    }

    /// The latest state of one key, or nil.
    package func get(_ keyspace: Keyspace, _ key: [UInt8]) throws(MVCCError) -> KeyValue? {
        let (_, snapshot) = try openReadView()
        return try latestRecord(keyspace, key, snapshot: snapshot)?.live
    }

    /// The newest record of a key in the latest family (a deletion not yet compacted away shows as a tombstone).
    func latestRecord(_ keyspace: Keyspace, _ key: [UInt8], snapshot: RocksDB.Snapshot?) throws(MVCCError)
        -> StorageEncoding.Record?
    {
        let bytes = try Self.storage {
            try database.get(StorageEncoding.latestKey(keyspace, key), in: latest, snapshot: snapshot)
        }
        guard let bytes else { return nil }
        return try StorageEncoding.decodeRecord(key: key, bytes)
    }

    /// Where reads come from: a published snapshot, or (inside a write transaction) the live database.
    struct ReadSource {
        var snapshot: RocksDB.Snapshot?
        /// Reads at this revision use the latest family directly; older ones walk each key's version chain.
        var latestRevision: Revision
    }

    /// Applies etcd's range pipeline: fetch (limit+1 when the order allows), filter, sort, truncate.
    func executeRange(
        _ keyspace: Keyspace,
        _ request: RangeRequest,
        at revision: Revision,
        source: ReadSource,
        overlay: TxnOverlay?,
        headerRevision: Revision
    ) throws(MVCCError) -> RangeResult {
        var fetchLimit = 0
        if request.isDefaultOrdering && !request.hasRevisionFilters && request.limit > 0 && request.limit < Int64.max {
            fetchLimit = Int(request.limit) + 1
        }
        var (kvs, count) = try collect(
            keyspace,
            request.range,
            at: revision,
            source: source,
            overlay: overlay,
            limit: fetchLimit,
            keysOnly: request.keysOnly,
            countOnly: request.countOnly
        )

        if request.maxModRevision != 0 { kvs.removeAll { $0.modRevision > request.maxModRevision } }
        if request.minModRevision != 0 { kvs.removeAll { $0.modRevision < request.minModRevision } }
        if request.maxCreateRevision != 0 { kvs.removeAll { $0.createRevision > request.maxCreateRevision } }
        if request.minCreateRevision != 0 { kvs.removeAll { $0.createRevision < request.minCreateRevision } }

        var order = request.sortOrder
        if request.sortTarget != .key && order == .none { order = .ascending }
        if !(order == .none || (request.sortTarget == .key && order == .ascending)) {
            let ascending: (KeyValue, KeyValue) -> Bool
            switch request.sortTarget {
            case .key: ascending = { $0.key.lexicographicallyPrecedes($1.key) }
            case .version: ascending = { $0.version < $1.version }
            case .create: ascending = { $0.createRevision < $1.createRevision }
            case .mod: ascending = { $0.modRevision < $1.modRevision }
            case .value: ascending = { $0.value.lexicographicallyPrecedes($1.value) }
            }
            // Ties keep key order in both directions: what etcd's Go sort (insertion sort up to 12 elements, stable
            // also under sort.Reverse) gives for small results; for larger ones Go's order of ties is unspecified.
            let indexed = kvs.enumerated().map { ($0.offset, $0.element) }
            let sorted = indexed.sorted { a, b in
                if order == .descending {
                    if ascending(b.1, a.1) { return true }
                    if ascending(a.1, b.1) { return false }
                } else {
                    if ascending(a.1, b.1) { return true }
                    if ascending(b.1, a.1) { return false }
                }
                return a.0 < b.0
            }
            kvs = sorted.map(\.1)
        }

        var more = false
        if request.limit > 0 && kvs.count > Int(request.limit) {
            kvs.removeLast(kvs.count - Int(request.limit))
            more = true
        }
        return RangeResult(kvs: kvs, more: more, count: Int64(count), revision: headerRevision)
    }

    /// Keys in `range` at `revision`: up to `limit` key-values (0 = all) and the total count.
    func collect(
        _ keyspace: Keyspace,
        _ range: KeyRange,
        at revision: Revision,
        source: ReadSource,
        overlay: TxnOverlay?,
        limit: Int,
        keysOnly: Bool,
        countOnly: Bool
    ) throws(MVCCError) -> (kvs: [KeyValue], count: Int) {
        if let overlay, overlay.touches(range) {
            // Inside a transaction that already wrote in this range: merge its writes over the stored state.
            var merged: [[UInt8]: KeyValue] = [:]
            let (stored, _) = try collect(
                keyspace,
                range,
                at: revision,
                source: source,
                overlay: nil,
                limit: 0,
                keysOnly: keysOnly,
                countOnly: false
            )
            for kv in stored { merged[kv.key] = kv }
            overlay.apply(to: &merged, in: range, keysOnly: keysOnly)
            let sorted = merged.values.sorted { $0.key.lexicographicallyPrecedes($1.key) }
            let kvs = countOnly ? [] : (limit > 0 ? Array(sorted.prefix(limit)) : sorted)
            return (kvs, sorted.count)
        }
        let historical = revision < source.latestRevision
        if historical && !keyspace.keepsHistory {
            throw .unsupported("historical reads in the \(keyspace) keyspace")
        }
        if range.isSingleKey {
            guard let record = try latestRecord(keyspace, range.key, snapshot: source.snapshot) else { return ([], 0) }
            let version =
                historical
                ? try walk(keyspace, range.key, from: record, to: revision, snapshot: source.snapshot) : record.live
            guard var kv = version else { return ([], 0) }
            if countOnly { return ([], 1) }
            if keysOnly { kv.value = [] }
            return ([kv], 1)
        }
        let (lower, upper) = StorageEncoding.latestBounds(keyspace, range)
        let iterator = try Self.storage {
            try database.makeIterator(latest, lowerBound: lower, upperBound: upper, snapshot: source.snapshot)
        }
        var kvs: [KeyValue] = []
        var count = 0
        iterator.seekToFirst()
        while iterator.isValid {
            defer { iterator.next() }
            let wanted = !countOnly && (limit == 0 || kvs.count < limit)
            if !historical {
                // Tombstones (deletions not yet compacted) are skipped: their first byte is 1.
                guard iterator.withValue({ $0.first == 0 }) else { continue }
                count += 1
                guard wanted else { continue }
            }
            let key = iterator.withKey { [UInt8]($0.dropFirst()) }
            let record = try iterator.withValue { value throws(MVCCError) in
                try StorageEncoding.decodeRecord(key: key, value, keysOnly: keysOnly && !historical)
            }
            var version = record.live
            if historical {
                version = try walk(keyspace, key, from: record, to: revision, snapshot: source.snapshot)
                guard version != nil else { continue }
                count += 1
                guard wanted else { continue }
            }
            if var kv = version {
                if keysOnly { kv.value = [] }
                kvs.append(kv)
            }
        }
        try Self.storage { try iterator.checkError() }
        return (kvs, count)
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
