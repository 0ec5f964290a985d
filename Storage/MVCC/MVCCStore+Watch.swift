internal import CoreMetrics
internal import StrataLease
internal import StrataRocksDB
internal import Synchronization

extension MVCCStore {
    /// Starts a watch (see ``WatchHub``); with a `group`, its consumer is woken through the group and reads it
    /// with ``Watcher/poll(upTo:)``.
    package func watch(_ request: WatchRequest, group: WatchGroup? = nil) throws(MVCCError) -> Watcher {
        try watchHub.watch(request, group: group)
    }

    /// Events for `request` in revisions `[from, through]`, read from the revision log and history through `view`.
    func replay(
        _ request: WatchRequest,
        from: Revision,
        through: Revision,
        view: ReadView
    ) throws(MVCCError) -> [(revision: Revision, events: [Event])] {
        guard from <= through else { return [] }
        let snapshot = view.snapshot
        let iterator = try Self.storage {
            try database.makeIterator(
                log,
                lowerBound: StorageEncoding.logKey(from),
                upperBound: StorageEncoding.logKey(through + 1),
                snapshot: snapshot
            )
        }
        var result: [(revision: Revision, events: [Event])] = []
        iterator.seekToFirst()
        while iterator.isValid {
            let revision = iterator.withKey { Revision(bitPattern: StorageEncoding.readUInt64($0, at: 0)) }
            var events: [Event] = []
            for change in try StorageEncoding.decodeLogEntry(iterator.value)
            where change.keyspace == request.keyspace.id && request.range.contains(change.key) {
                let record = try StorageEncoding.decodeRecord(key: change.key, change.record)
                var prevKV: KeyValue? = nil
                if request.prevKV && record.previous > 0 {
                    prevKV = try previousVersion(request.keyspace, change.key, before: record, snapshot: snapshot)
                }
                switch record {
                case .live(let kv, _):
                    if request.noPut { continue }
                    events.append(Event(kind: .put, kv: kv, prevKV: prevKV))
                case .tombstone:
                    if request.noDelete { continue }
                    let tombstone = KeyValue(
                        key: change.key,
                        createRevision: 0,
                        modRevision: revision,
                        version: 0,
                        value: []
                    )
                    events.append(Event(kind: .delete, kv: tombstone, prevKV: prevKV))
                }
            }
            if !events.isEmpty { result.append((revision, events)) }
            iterator.next()
        }
        try Self.storage { try iterator.checkError() }
        return result
    }

    /// The live version just before `record` (for `prev_kv`), or nil if it was a deletion or compacted away.
    private func previousVersion(
        _ keyspace: Keyspace,
        _ key: [UInt8],
        before record: StorageEncoding.Record,
        snapshot: RocksDB.Snapshot?
    ) throws(MVCCError) -> KeyValue? {
        let previous = record.previous
        if let older = try logRecord(keyspace, key, at: previous, snapshot: snapshot) { return older.live }
        return try historyRecord(keyspace, key, atOrBelow: previous, snapshot: snapshot)?.live
    }
}
