internal import CoreMetrics
internal import StrataLease
internal import StrataRocksDB
internal import Synchronization
extension MVCCStore {
    /// Starts a watch (see ``WatchHub``).
    package func watch(_ request: WatchRequest) throws(MVCCError) -> Watcher {
        try watchHub.watch(request)
    }

    /// Events for `request` in revisions `[from, through]`, read from the revision log and history through `view`.
    func replay(
        _ request: WatchRequest,
        from: Revision,
        through: Revision,
        view: ReadView
    ) throws(MVCCError) -> [(revision: Revision, events: [Event])] {
        guard from <= through else { return [] }
        let iterator = try Self.storage {
            try database.makeIterator(
                log, lowerBound: StorageEncoding.logKey(from), upperBound: StorageEncoding.logKey(through + 1),
                snapshot: view.snapshot)
        }
        var result: [(revision: Revision, events: [Event])] = []
        iterator.seekToFirst()
        while iterator.isValid {
            let revision = iterator.withKey { Revision(bitPattern: StorageEncoding.readUInt64($0, at: 0)) }
            let changes = try StorageEncoding.decodeLogEntry(iterator.value)
            var events: [Event] = []
            for change in changes where change.keyspace == request.keyspace.id && request.range.contains(change.key) {
                if change.kind == .put && request.noPut { continue }
                if change.kind == .delete && request.noDelete { continue }
                var prevKV: KeyValue? = nil
                if request.prevKV && revision - 1 >= view.compactRevision {
                    prevKV = try historicalValue(request.keyspace, change.key, at: revision - 1, snapshot: view.snapshot)
                }
                switch change.kind {
                case .put:
                    guard let kv = try historicalValue(request.keyspace, change.key, at: revision, snapshot: view.snapshot),
                        kv.modRevision == revision
                    else { throw .storage("revision log entry \(revision) has no matching history") }
                    events.append(Event(kind: .put, kv: kv, prevKV: prevKV))
                case .delete:
                    let tombstone = KeyValue(key: change.key, createRevision: 0, modRevision: revision, version: 0, value: [])
                    events.append(Event(kind: .delete, kv: tombstone, prevKV: prevKV))
                }
            }
            if !events.isEmpty { result.append((revision, events)) }
            iterator.next()
        }
        try Self.storage { try iterator.checkError() }
        return result
    }
}
