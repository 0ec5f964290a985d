/// The consumer's handle on one watch: an async sequence of updates, ended by `cancel()` or shutdown.
package final class Watcher: Sendable, AsyncSequence {
    package typealias Element = WatchUpdate
    package let id: Int
    /// The revision published when the watch was created: with start revision 0, every event after it is delivered
    /// and none at or before it (what etcd reports in the "created" response header).
    package let createdRevision: Revision
    private let hub: WatchHub

    init(id: Int, hub: WatchHub, createdRevision: Revision) {
        self.id = id
        self.hub = hub
        self.createdRevision = createdRevision
    }

    deinit { hub.cancel(id) }

    /// The next update; nil when the watch has ended.
    package func next() async throws(MVCCError) -> WatchUpdate? {
        try await hub.next(id, limit: 1)?.first
    }

    /// The next update and up to `limit - 1` more already buffered behind it, so a consumer that fell behind can
    /// send them together; nil when the watch has ended.
    package func next(upTo limit: Int) async throws(MVCCError) -> [WatchUpdate]? {
        try await hub.next(id, limit: Swift.max(1, limit))
    }

    /// Up to `limit` updates without waiting (for watchers created with a ``WatchGroup``): empty when there is
    /// nothing now, nil when the watch has ended; poll again when `more` is true.
    package func poll(upTo limit: Int) throws(MVCCError) -> (updates: [WatchUpdate], more: Bool)? {
        try hub.poll(id, limit: Swift.max(1, limit))
    }

    /// Asks for a progress notification now; false when the watcher is still catching up or has updates pending.
    @discardableResult
    package func requestProgress() -> Bool { hub.requestProgress(id) }

    package func cancel() { hub.cancel(id) }

    /// Caught up and nothing buffered (what etcd's RequestProgress requires of every watcher on a stream).
    package var isSynced: Bool { hub.isSynced(id) }

    package struct AsyncIterator: AsyncIteratorProtocol {
        let watcher: Watcher
        package mutating func next() async throws(MVCCError) -> WatchUpdate? { try await watcher.next() }
    }

    package func makeAsyncIterator() -> AsyncIterator { AsyncIterator(watcher: self) }
}
