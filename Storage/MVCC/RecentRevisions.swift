/// The events of the most recently published revisions of keyspaces with history, bounded in bytes, so a watcher
/// that fell behind by a little catches up without reading the log.
///
/// Every revision in `[from, through]` is covered: the ones without an entry had no such events (latest-only
/// writes). Coverage starts again after ``removeAll()`` (no watch open), and its start moves up as old entries are
/// dropped for space.
struct RecentRevisions {
    private var entries: [(revision: Revision, changes: [(Keyspace, Event)], bytes: Int)] = []
    private var head = 0
    private var bytes = 0
    private var from: Revision?
    private var through: Revision = 0

    var byteCount: Int { bytes }

    mutating func removeAll() {
        from = nil
        guard !entries.isEmpty else { return }
        entries.removeAll()
        head = 0
        bytes = 0
    }

    /// Revisions up to `revision` are published without events of keyspaces with history.
    mutating func advance(to revision: Revision) {
        guard from != nil, revision > through else { return }
        through = revision
    }

    mutating func append(_ revision: Revision, _ changes: [(Keyspace, Event)], limit: Int) {
        if from == nil { from = revision }
        through = max(through, revision)
        guard !changes.isEmpty else { return }
        var size = 64
        for (_, event) in changes {
            size +=
                96 + event.kv.key.count + event.kv.value.count
                + (event.prevKV.map { $0.key.count + $0.value.count } ?? 0)
        }
        entries.append((revision, changes, size))
        bytes += size
        while bytes > limit, head < entries.count {
            bytes -= entries[head].bytes
            from = entries[head].revision + 1
            head += 1
        }
        if head > 64 && head * 2 > entries.count {
            entries.removeFirst(head)
            head = 0
        }
    }

    /// The updates `request` gets for revisions `[first, last]`, exactly as a log replay would give them; nil unless
    /// all of them are covered here.
    func updates(for request: WatchRequest, from first: Revision, through last: Revision) -> [WatchUpdate]? {
        guard let from, first >= from, last <= through else { return nil }
        // The first entry at or after `first`.
        var low = head
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if entries[middle].revision < first { low = middle + 1 } else { high = middle }
        }
        var updates: [WatchUpdate] = []
        for index in low..<entries.count {
            let entry = entries[index]
            if entry.revision > last { break }
            var events: [Event] = []
            for (keyspace, event) in entry.changes
            where keyspace.id == request.keyspace.id && request.range.contains(event.kv.key) {
                events.append(event)
            }
            let delivered = WatchHub.filter(events, for: request)
            if !delivered.isEmpty { updates.append(.events(revision: entry.revision, events: delivered)) }
        }
        return updates
    }
}
