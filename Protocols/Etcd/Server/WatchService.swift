internal import Foundation
package import GRPCCore
internal import GRPCProtobuf
internal import StrataEtcdAPI
package import StrataMVCC
internal import Synchronization

/// etcd's Watch service: one bidirectional stream carries many watchers (create / cancel / progress requests).
///
/// One task per stream pumps all its watchers: the core wakes it through a ``WatchGroup`` with the set of watchers
/// that have updates, and it writes their responses together. A slow client only holds up its own stream (the core
/// buffers per watcher, bounded, and falls back to the revision log). A `created` response is always written before
/// any event of that watch.
///
/// Responses leave in wire form (``WatchResponseBytes``): an event going to many watchers is encoded once
/// (``WatchEventCache``), and each watcher's response is its own header and id followed by the shared event bytes.
package struct WatchService: RegistrableRPCService {
    let store: MVCCStore
    let configuration: EtcdFrontEnd.Configuration
    let events = WatchEventCache()

    package init(store: MVCCStore, configuration: EtcdFrontEnd.Configuration) {
        self.store = store
        self.configuration = configuration
    }

    package func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        router.registerHandler(
            forMethod: Etcdserverpb_Watch.Method.Watch.descriptor,
            deserializer: ProtobufDeserializer<Etcdserverpb_WatchRequest>(),
            serializer: WatchResponseBytes.Serializer(),
            handler: { request, context in
                StreamingServerResponse(metadata: [:]) { writer in
                    try await watch(request: request.messages, response: writer)
                    return [:]
                }
            }
        )
    }

    func watch(
        request: RPCAsyncSequence<Etcdserverpb_WatchRequest, any Error>,
        response: RPCWriter<WatchResponseBytes>
    ) async throws {
        let stream = WatchStream(store: store, configuration: configuration, events: events, writer: response)
        defer { stream.cancelAll() }
        // The stream closing (client reset, connection gone, server shutdown) cancels the RPC, not this task: end
        // the watches then, which ends the pump.
        try await withRPCCancellationHandler {
            try await serve(stream, request: request)
        } onCancelRPC: {
            stream.cancelAll()
        }
    }

    private func serve(
        _ stream: WatchStream,
        request: RPCAsyncSequence<Etcdserverpb_WatchRequest, any Error>
    ) async throws {
        // Both halves are child tasks: if either fails (the pump on a storage error), the group cancels the other
        // and the call ends with the error, rather than leaving a stream whose watchers are never served.
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await stream.pump() }
            group.addTask {
                for try await message in request {
                    switch message.requestUnion {
                    case .createRequest(let create):
                        try await stream.create(create)
                    case .cancelRequest(let cancel):
                        try await stream.cancel(cancel.watchID)
                    case .progressRequest:
                        try await stream.requestProgress()
                    case nil:
                        break  // etcd ignores requests of unknown type without closing the stream
                    }
                }
                // The client closed its sending side. Like etcd, keep the stream and its watches until the client
                // cancels the call or the connection goes (the RPC's cancellation then ends the watches and the
                // pump): a client that sends its create requests and half-closes still gets its events.
            }
        }
    }
}

/// The state of one Watch stream.
final class WatchStream: Sendable {
    /// Strata's own limit (`max_watchers_per_stream`); etcd has none, so this reason has no etcd original.
    static let tooManyWatchers = "etcdserver: too many watchers on this stream"

    private struct State {
        var watchers: [Int64: Watcher] = [:]
        /// Watch ids by the core's watcher id, for watchers whose `created` response is queued (only those are
        /// pumped, so no event overtakes it).
        var announced: [Int: Int64] = [:]
        var nextID: Int64 = 0
        var fragment: Set<Int64> = []
    }

    let store: MVCCStore
    let configuration: EtcdFrontEnd.Configuration
    private let events: WatchEventCache
    private let outbox: WatchOutbox
    private let group = WatchGroup()
    private let state = Mutex(State())

    init(
        store: MVCCStore,
        configuration: EtcdFrontEnd.Configuration,
        events: WatchEventCache,
        writer: RPCWriter<WatchResponseBytes>
    ) {
        self.store = store
        self.configuration = configuration
        self.events = events
        self.outbox = WatchOutbox(writer: writer)
    }

    func send(_ response: Etcdserverpb_WatchResponse) async throws {
        try await outbox.send([WatchResponseBytes(response)])
    }

    /// Creates a watcher and writes its `created` response (a canceled one when creation failed).
    func create(_ create: Etcdserverpb_WatchCreateRequest) async throws {
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
        // A negative start revision is below anything the store keeps: etcd 3.4 creates the watch (using up an id)
        // and then cancels it as compacted; the core does the same.
        let requestedID = create.watchID
        let full = state.withLock { $0.watchers.count >= configuration.maxWatchersPerStream }
        if full {
            created.watchID = -1
            created.canceled = true
            created.cancelReason = Self.tooManyWatchers
            try await send(created)
            return
        }
        // etcd refuses an empty range before it assigns an id (mvcc's watchStream.Watch): no id is used up.
        guard !range.isEmpty else {
            created.watchID = -1
            created.canceled = true
            created.cancelReason = "mvcc: watcher range is empty"
            try await send(created)
            return
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
            return
        }
        let watcher: Watcher
        do {
            watcher = try store.watch(request, group: group)
        } catch {
            created.watchID = -1
            created.canceled = true
            created.cancelReason =
                error == .emptyWatchRange ? "mvcc: watcher range is empty" : EtcdError.map(error).message
            try await send(created)
            return
        }
        state.withLock { state in
            state.watchers[id] = watcher
            if create.fragment { state.fragment.insert(id) }
        }
        created.watchID = id
        created.header = configuration.header(max(watcher.createdRevision, store.currentRevision))
        try await send(created)
        let announced = state.withLock { state -> Bool in
            guard state.watchers[id] === watcher else { return false }  // canceled meanwhile
            state.announced[watcher.id] = id
            return true
        }
        // Whatever the core queued for it before now is picked up by the pump.
        if announced { group.markReady([watcher.id]) }
    }

    /// Writes the updates of every watcher of the stream until the stream ends. Each round takes the watchers the
    /// core marked ready and writes all their responses in one go; a watcher that fell behind gets its buffered
    /// revisions merged into few responses (as etcd does for unsynced watchers): per-message cost, not event count,
    /// is what limits a busy stream.
    func pump() async throws {
        while let ready = await group.next() {
            var responses: [WatchResponseBytes] = []
            var again: [Int] = []
            var headers = HeaderFields()
            for coreID in ready {
                let entry = state.withLock { state -> (Int64, Watcher, Bool)? in
                    guard let id = state.announced[coreID], let watcher = state.watchers[id] else { return nil }
                    return (id, watcher, state.fragment.contains(id))
                }
                guard let (id, watcher, fragment) = entry else { continue }
                guard
                    let (updates, more) = try EtcdError.wireSync({ () throws(MVCCError) in
                        try watcher.poll(upTo: Self.maxUpdatesPerWrite)
                    })
                else {
                    remove(id, watcher)
                    continue
                }
                if try encode(updates, of: id, fragment: fragment, headers: &headers, into: &responses) {
                    remove(id, watcher)
                    watcher.cancel()
                } else if more {
                    again.append(coreID)
                }
            }
            if !again.isEmpty { group.markReady(again) }
            if !responses.isEmpty { try await outbox.send(responses) }
            // A busy stream (many watchers on hot keys) waits a moment before its next round, so that round merges
            // the revisions published meanwhile into one response per watcher: per-message cost, not event count,
            // limits it (etcd batches its lagging watchers the same way, with far longer delays).
            if responses.count >= Self.coalescingThreshold { try await Task.sleep(for: Self.coalescingDelay) }
        }
    }

    /// Responses in one round from which the stream coalesces, and for how long. The delay must stay well below what
    /// the core buffers per watcher (128 revisions): a watcher that overflows falls back to catching up, which costs
    /// more than it saves (with Go's clientv3 and 500 watchers on one key: 35 ms was unstable, 15–25 ms not).
    static let coalescingThreshold = 32
    static let coalescingDelay = Duration.milliseconds(15)

    private func remove(_ id: Int64, _ watcher: Watcher) {
        state.withLock { state in
            if state.watchers[id] === watcher { state.watchers[id] = nil }
            state.announced[watcher.id] = nil
        }
    }

    /// Appends the responses for one watcher's updates; true when they end the watch (compacted).
    private func encode(
        _ updates: [WatchUpdate],
        of id: Int64,
        fragment: Bool,
        headers: inout HeaderFields,
        into responses: inout [WatchResponseBytes]
    ) throws -> Bool {
        var pending: (revision: Revision, events: [[UInt8]], bytes: Int)?
        func response(at revision: Revision) -> Etcdserverpb_WatchResponse {
            var response = Etcdserverpb_WatchResponse()
            response.watchID = id
            response.header = configuration.header(revision)
            return response
        }
        func flush() throws {
            guard let batch = pending else { return }
            let header = try headers.field(batch.revision, configuration)
            try append(header, id, events: batch.events, fragment: fragment, to: &responses)
            pending = nil
        }
        for update in updates {
            switch update {
            case .events(let revision, let events):
                let encoded = try headers.encoded(events, revision: revision, cache: self.events)
                let bytes = encoded.reduce(0) { $0 + $1.count }
                if var batch = pending, batch.events.count + encoded.count <= Self.maxEventsPerResponse,
                    batch.bytes + bytes <= configuration.maxRequestBytes
                {
                    batch.revision = revision
                    batch.events.append(contentsOf: encoded)
                    batch.bytes += bytes
                    pending = batch
                } else {
                    try flush()
                    pending = (revision, encoded, bytes)
                }
            case .progress(let revision):
                try flush()
                responses.append(try WatchResponseBytes(response(at: revision)))
            case .compacted(let compactRevision):
                try flush()
                // etcd's compaction cancel carries no revision in its header (the watcher never read one).
                var canceled = response(at: 0)
                canceled.compactRevision = compactRevision
                canceled.canceled = true
                responses.append(try WatchResponseBytes(canceled))
                return true
            case .overflowed:
                // The etcd keyspace keeps history, so its watchers catch up instead of overflowing.
                try flush()
                var canceled = response(at: 0)
                canceled.canceled = true
                canceled.cancelReason = "etcdserver: watcher fell behind"
                responses.append(try WatchResponseBytes(canceled))
                return true
            }
        }
        try flush()
        return false
    }

    /// Updates taken from a watcher per write, and events merged into one response (etcd: 1000 revisions per batch).
    static let maxUpdatesPerWrite = 256
    static let maxEventsPerResponse = 1000

    /// Appends one response with `events`, or — for watchers that asked for fragments, when it reaches the request
    /// size limit plus 512 KiB — the pieces etcd's `sendFragments` would send: each piece as many events as fit under the limit
    /// (at least one), `fragment = true` on all but the last.
    private func append(
        _ header: [UInt8],
        _ id: Int64,
        events: [[UInt8]],
        fragment: Bool,
        to responses: inout [WatchResponseBytes]
    ) throws {
        let whole = WatchResponseBytes(headerField: header, watchID: id, fragment: false, events: events[...])
        // etcd's threshold: its max request size plus the 512 KiB of gRPC overhead it allows on receive.
        let limit = configuration.maxRequestBytes + 512 * 1024
        guard fragment, whole.bytes.count >= limit, events.count >= 2 else {
            responses.append(whole)
            return
        }
        let pieceBase = WatchResponseBytes(headerField: header, watchID: id, fragment: true, events: []).bytes.count
        var start = 0
        while start < events.count {
            var end = start
            var size = pieceBase
            while end < events.count {
                let next = size + events[end].count
                if end > start && next >= limit { break }
                size = next
                end += 1
            }
            responses.append(
                WatchResponseBytes(
                    headerField: header,
                    watchID: id,
                    fragment: end < events.count,
                    events: events[start..<end]
                )
            )
            start = end
        }
    }

    func cancel(_ id: Int64) async throws {
        guard let watcher = state.withLock({ $0.watchers[id] }) else { return }
        remove(id, watcher)
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
            defer {
                state.watchers = [:]
                state.announced = [:]
            }
            return Array(state.watchers.values)
        }
        for watcher in watchers { watcher.cancel() }
        group.close()
    }
}

/// What one pump round encodes once for all its watchers: the header field of the revision last asked for (most
/// responses of a round carry the same revision), and the encoded events of each event list the core handed out —
/// watchers with the same filters share one list, so a revision going to hundreds of watchers is looked up in the
/// shared cache once per list, not once per watcher.
struct HeaderFields {
    private var last: (revision: Revision, field: [UInt8])?
    private var lists: [ListIdentity: [[UInt8]]] = [:]

    /// A list of events by the address of its storage, valid while the round holds the updates that own it.
    private struct ListIdentity: Hashable {
        let revision: Revision
        let storage: UInt
    }

    mutating func encoded(_ events: [Event], revision: Revision, cache: WatchEventCache) throws -> [[UInt8]] {
        let identity = ListIdentity(
            revision: revision,
            storage: events.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
        )
        if identity.storage != 0, let known = lists[identity] { return known }
        let encoded = try events.map { event in try cache.encoded(event, revision: revision) }
        if identity.storage != 0 { lists[identity] = encoded }
        return encoded
    }

    mutating func field(_ revision: Revision, _ configuration: EtcdFrontEnd.Configuration) throws -> [UInt8] {
        if let last, last.revision == revision { return last.field }
        let field = try WatchResponseBytes.headerField(configuration.header(revision))
        last = (revision, field)
        return field
    }
}

/// Responses of one Watch stream on their way to the client, from its pump and its request loop (created, canceled,
/// progress). A sender that finds no write in progress writes everything queued in one call (one flush) and goes on
/// until the queue is empty; one that finds more than `limitBytes` queued waits for that writer. A slow client thus
/// holds up only its own stream, whose watchers' buffers in the core fill and fall back to the revision log.
final class WatchOutbox: Sendable {
    private struct State {
        var queued: [WatchResponseBytes] = []
        var queuedBytes = 0
        var writing = false
        var failure: (any Error)?
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    private enum Role {
        case writer
        case queued
        case wait
    }

    static let limitBytes = 1 << 20
    private let state = Mutex(State())
    private let writer: RPCWriter<WatchResponseBytes>

    init(writer: RPCWriter<WatchResponseBytes>) {
        self.writer = writer
    }

    func send(_ responses: [WatchResponseBytes]) async throws {
        let role = try state.withLock { state throws -> Role in
            if let failure = state.failure { throw failure }
            state.queued.append(contentsOf: responses)
            state.queuedBytes += responses.reduce(0) { $0 + $1.bytes.count }
            if !state.writing {
                state.writing = true
                return .writer
            }
            return state.queuedBytes > Self.limitBytes ? .wait : .queued
        }
        switch role {
        case .queued:
            return
        case .wait:
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    guard state.writing, state.failure == nil, state.queuedBytes > Self.limitBytes else { return true }
                    state.waiting.append(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
            if let failure = state.withLock({ $0.failure }) { throw failure }
        case .writer:
            try await drain()
        }
    }

    private func drain() async throws {
        while true {
            let (batch, waiting) = state.withLock {
                state -> ([WatchResponseBytes], [CheckedContinuation<Void, Never>]) in
                defer {
                    state.queued = []
                    state.queuedBytes = 0
                    state.waiting = []
                }
                if state.queued.isEmpty { state.writing = false }
                return (state.queued, state.waiting)
            }
            // The queue is taken: waiting pumps may queue again while this batch is written.
            for continuation in waiting { continuation.resume() }
            if batch.isEmpty { return }
            do {
                try await writer.write(contentsOf: batch)
            } catch {
                let waiting = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                    defer { state.waiting = [] }
                    state.failure = error
                    state.writing = false
                    state.queued = []
                    state.queuedBytes = 0
                    return state.waiting
                }
                for continuation in waiting { continuation.resume() }
                throw error
            }
        }
    }
}
