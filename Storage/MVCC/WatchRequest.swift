/// What a watcher asks for.
package struct WatchRequest: Sendable, Hashable {
    package var keyspace: Keyspace
    package var range: KeyRange
    /// 0 = from the next revision; otherwise replay history from this revision first (negative: below every revision
    /// kept, so the watch ends at once as compacted).
    package var startRevision: Revision = 0
    package var prevKV = false
    package var noPut = false
    package var noDelete = false
    /// Periodic progress notifications while idle and caught up.
    package var progressNotify = false

    package init(keyspace: Keyspace, range: KeyRange) {
        self.keyspace = keyspace
        self.range = range
    }
}

/// One item a watcher receives.
package enum WatchUpdate: Sendable, Hashable {
    /// The watcher's events of one revision, in order.
    case events(revision: Revision, events: [Event])
    /// Caught up: nothing for this watcher up to `revision`.
    case progress(revision: Revision)
    /// The watch cannot continue: it needs history below the compaction revision. Last item.
    case compacted(compactRevision: Revision)
    /// The watch cannot continue: its consumer fell more than the buffer behind in a latest-only keyspace, which
    /// has no log to catch up from. Last item; `revision` is the first revision it missed.
    case overflowed(revision: Revision)
}
