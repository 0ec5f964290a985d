internal import Foundation
package import GRPCCore
package import StrataEtcdAPI
package import StrataMVCC
internal import Synchronization

/// etcd's Watch service: one bidirectional stream carries many watchers (create / cancel / progress requests).
///
/// Each watcher is pumped by its own child task of the stream's task group; writes to the stream are serialized by
/// an async lock, so a slow client only holds up its own stream (the core buffers per watcher, bounded, and falls
/// back to the revision log). A `created` response is always written before any event of that watch.
package struct WatchService: Etcdserverpb_Watch.SimpleServiceProtocol {
    let store: MVCCStore
    let configuration: EtcdFrontEnd.Configuration

    package init(store: MVCCStore, configuration: EtcdFrontEnd.Configuration) {
        self.store = store
        self.configuration = configuration
    }

    package func watch(
        request: RPCAsyncSequence<Etcdserverpb_WatchRequest, any Error>,
        response: RPCWriter<Etcdserverpb_WatchResponse>,
        context: ServerContext
    ) async throws {
        let stream = WatchStream(store: store, configuration: configuration, writer: response)
        try await withThrowingDiscardingTaskGroup { group in
            for try await message in request {
                switch message.requestUnion {
                case .createRequest(let create):
                    if let watcher = try await stream.create(create) {
                        group.addTask { try await stream.pump(watcher) }
                    }
                case .cancelRequest(let cancel):
                    try await stream.cancel(cancel.watchID)
                case .progressRequest:
                    try await stream.requestProgress()
                case nil:
                    break  // etcd ignores requests of unknown type without closing the stream
                }
            }
            // The client closed its side: end every watch, which ends the pumps.
            stream.cancelAll()
        }
    }
}

/// The state of one Watch stream.
final class WatchStream: Sendable {
    /// Strata's own limit (`max_watchers_per_stream`); etcd has none, so this reason has no etcd original.
    static let tooManyWatchers = "etcdserver: too many watchers on this stream"

    private struct State {
        var watchers: [Int64: Watcher] = [:]
        var nextID: Int64 = 0
        var fragment: Set<Int64> = []
    }

    let store: MVCCStore
    let configuration: EtcdFrontEnd.Configuration
    private let writer: RPCWriter<Etcdserverpb_WatchResponse>
    private let writeLock = AsyncLock()
    private let state = Mutex(State())

    init(store: MVCCStore, configuration: EtcdFrontEnd.Configuration, writer: RPCWriter<Etcdserverpb_WatchResponse>) {
        self.store = store
        self.configuration = configuration
        self.writer = writer
    }

    func send(_ response: Etcdserverpb_WatchResponse) async throws {
        try await writeLock.withLock { try await writer.write(response) }
    }

    /// Creates a watcher and writes its `created` response; returns it for pumping (nil when creation failed).
    func create(_ create: Etcdserverpb_WatchCreateRequest) async throws -> (id: Int64, watcher: Watcher)? {
        var key = [UInt8](create.key)
        if key.isEmpty { key = [0] }
        let range = KeyRange(key: key, end: [UInt8](create.rangeEnd))
        var request = WatchRequest(keyspace: .etcd, range: range)
        request.startRevision = create.startRevision
        request.prevKV = create.prevKv
        request.progressNotify = create.progressNotify
        for filter in create.filters {
            switch filter {
            case .noput: request.noPut = true
            case .nodelete: request.noDelete = true
            case .UNRECOGNIZED: break
            }
        }

        var created = Etcdserverpb_WatchResponse()
        created.header = configuration.header(store.currentRevision)
        created.created = true
        if create.startRevision < 0 {
            created.watchID = -1
            created.canceled = true
            created.cancelReason = EtcdError.compacted.message
            try await send(created)
            return nil
        }
        let requestedID = create.watchID
        let full = state.withLock { $0.watchers.count >= configuration.maxWatchersPerStream }
        if full {
            created.watchID = -1
            created.canceled = true
            created.cancelReason = Self.tooManyWatchers
            try await send(created)
            return nil
        }
        let id: Int64? = state.withLock { state in
            if requestedID != 0 {
                return state.watchers[requestedID] == nil ? requestedID : nil
            }
            while state.watchers[state.nextID] != nil { state.nextID += 1 }
            defer { state.nextID += 1 }
            return state.nextID
        }
        guard let id else {
            created.watchID = -1
            created.canceled = true
            created.cancelReason = "mvcc: duplicate watch ID provided on the WatchStream"
            try await send(created)
            return nil
        }
        let watcher: Watcher
        do {
            watcher = try store.watch(request)
        } catch {
            created.watchID = -1
            created.canceled = true
            created.cancelReason =
                error == .emptyWatchRange ? "mvcc: watcher range is empty" : EtcdError.map(error).message
            try await send(created)
            return nil
        }
        state.withLock { state in
            state.watchers[id] = watcher
            if create.fragment { state.fragment.insert(id) }
        }
        created.watchID = id
        created.header = configuration.header(max(watcher.createdRevision, store.currentRevision))
        try await send(created)
        return (id, watcher)
    }

    /// Writes the watcher's updates until it ends. A watcher that fell behind gets its buffered revisions merged
    /// into few responses (as etcd does for unsynced watchers), written together: per-message cost, not event
    /// count, is what limits a busy stream.
    func pump(_ entry: (id: Int64, watcher: Watcher)) async throws {
        let (id, watcher) = entry
        while let updates = try await EtcdError.wire({ () throws(MVCCError) in
            try await watcher.next(upTo: Self.maxUpdatesPerWrite)
        }) {
            let fragment = state.withLock { $0.fragment.contains(id) }
            var responses: [Etcdserverpb_WatchResponse] = []
            var pending: (revision: Revision, events: [Mvccpb_Event], bytes: Int)?
            func response(at revision: Revision) -> Etcdserverpb_WatchResponse {
                var response = Etcdserverpb_WatchResponse()
                response.watchID = id
                response.header = configuration.header(revision)
                return response
            }
            func flush() {
                guard let batch = pending else { return }
                responses.append(
                    contentsOf: pieces(response(at: batch.revision), events: batch.events, fragment: fragment)
                )
                pending = nil
            }
            var ended = false
            for update in updates {
                switch update {
                case .events(let revision, let events):
                    let converted = events.map(Self.proto)
                    let bytes = converted.reduce(0) { $0 + Self.size($1) }
                    if var batch = pending, batch.events.count + converted.count <= Self.maxEventsPerResponse,
                        batch.bytes + bytes <= configuration.maxRequestBytes
                    {
                        batch.revision = revision
                        batch.events.append(contentsOf: converted)
                        batch.bytes += bytes
                        pending = batch
                    } else {
                        flush()
                        pending = (revision, converted, bytes)
                    }
                case .progress(let revision):
                    flush()
                    responses.append(response(at: revision))
                case .compacted(let compactRevision):
                    flush()
                    var canceled = response(at: store.currentRevision)
                    canceled.compactRevision = compactRevision
                    canceled.canceled = true
                    responses.append(canceled)
                    ended = true
                }
                if ended { break }
            }
            flush()
            try await writeLock.withLock { try await writer.write(contentsOf: responses) }
            if ended {
                _ = state.withLock { $0.watchers.removeValue(forKey: id) }
                watcher.cancel()
                return
            }
        }
    }

    /// Updates taken from a watcher per write, and events merged into one response (etcd: 1000 revisions per batch).
    static let maxUpdatesPerWrite = 256
    static let maxEventsPerResponse = 1000

    static func size(_ event: Mvccpb_Event) -> Int {
        event.kv.key.count + event.kv.value.count + event.prevKv.key.count + event.prevKv.value.count + 64
    }

    /// Events in one response, or — for watchers that asked for fragments — split so no piece exceeds the request
    /// size limit (`fragment = true` on all but the last piece).
    private func pieces(_ base: Etcdserverpb_WatchResponse, events: [Mvccpb_Event], fragment: Bool)
        -> [Etcdserverpb_WatchResponse]
    {
        guard fragment else {
            var response = base
            response.events = events
            return [response]
        }
        var pieces: [[Mvccpb_Event]] = [[]]
        var size = 0
        for event in events {
            let eventSize = Self.size(event)
            if size + eventSize > configuration.maxRequestBytes && !pieces[pieces.count - 1].isEmpty {
                pieces.append([])
                size = 0
            }
            pieces[pieces.count - 1].append(event)
            size += eventSize
        }
        return pieces.enumerated().map { index, piece in
            var response = base
            response.events = piece
            response.fragment = index < pieces.count - 1
            return response
        }
    }

    static func proto(_ event: Event) -> Mvccpb_Event {
        var proto = Mvccpb_Event()
        proto.type = event.kind == .put ? .put : .delete
        proto.kv = event.kv.proto
        if let prev = event.prevKV { proto.prevKv = prev.proto }
        return proto
    }

    func cancel(_ id: Int64) async throws {
        guard let watcher = state.withLock({ $0.watchers.removeValue(forKey: id) }) else { return }
        watcher.cancel()
        var response = Etcdserverpb_WatchResponse()
        response.header = configuration.header(store.currentRevision)
        response.watchID = id
        response.canceled = true
        try await send(response)
    }

    /// etcd answers RequestProgress with `watch_id = -1` and the current revision only when every watcher of the
    /// stream is caught up; otherwise it sends nothing.
    func requestProgress() async throws {
        let watchers = state.withLock { Array($0.watchers.values) }
        guard watchers.allSatisfy({ $0.isSynced }) else { return }
        var response = Etcdserverpb_WatchResponse()
        response.header = configuration.header(store.currentRevision)
        response.watchID = -1
        try await send(response)
    }

    func cancelAll() {
        let watchers = state.withLock { state -> [Watcher] in
            defer { state.watchers = [:] }
            return Array(state.watchers.values)
        }
        for watcher in watchers { watcher.cancel() }
    }
}

/// A FIFO async mutex: serializes writes to one gRPC stream across tasks without blocking threads.
final class AsyncLock: Sendable {
    private struct State {
        var locked = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    func withLock<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        await lock()
        defer { unlock() }
        return try await body()
    }

    private func lock() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let acquired = state.withLock { state -> Bool in
                if !state.locked {
                    state.locked = true
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if acquired { continuation.resume() }
        }
    }

    private func unlock() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.locked = false
                return nil
            }
            return state.waiters.removeFirst()  // ownership passes straight to the next waiter
        }
        next?.resume()
    }
}
