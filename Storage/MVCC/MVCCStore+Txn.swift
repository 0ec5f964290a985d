internal import CoreMetrics
internal import StrataLease
package import StrataRocksDB
internal import Synchronization

/// This transaction's own writes in one keyspace, so its later reads see them.
struct TxnOverlay {
    var keyspace: Keyspace
    var entries: [[UInt8]: StorageEncoding.Record] = [:]

    func touches(_ range: KeyRange) -> Bool {
        entries.keys.contains { range.contains($0) }
    }

    func lookup(_ key: [UInt8]) -> StorageEncoding.Record? { entries[key] }

    func apply(to merged: inout [[UInt8]: KeyValue], in range: KeyRange, keysOnly: Bool) {
        for (key, record) in entries where range.contains(key) {
            if var kv = record.live {
                if keysOnly { kv.value = [] }
                merged[key] = kv
            } else {
                merged[key] = nil
            }
        }
    }
}

/// State of one write transaction while it executes under the writer lock.
struct TxnContext {
    let beginRevision: Revision
    let compactRevision: Revision
    var overlays: [UInt8: TxnOverlay] = [:]
    var changes: [(keyspace: Keyspace, event: Event, record: [UInt8])] = []
    /// The writer's reusable batch (cleared for each transaction; only used under the writer lock).
    let batch: RocksDB.WriteBatch
    /// Whether writes are remembered for later reads of the same transaction; a plain put has no later reads.
    var recordsOverlay = true

    var hasChanges: Bool { !changes.isEmpty }
    var writeRevision: Revision { beginRevision + 1 }
    /// The revision a read inside the transaction reports and treats as "latest".
    var readRevision: Revision { hasChanges ? beginRevision + 1 : beginRevision }

    func overlay(_ keyspace: Keyspace) -> TxnOverlay? { overlays[keyspace.id] }
}

extension MVCCStore {
    // MARK: Public write operations

    /// A plain put: the same semantics as a transaction holding just this put, without the transaction machinery
    /// (this is the hot path of every front-end).
    package func put(_ keyspace: Keyspace, _ request: PutRequest) async throws(MVCCError) -> PutResult {
        try await durable(applyPut(keyspace, request))
    }

    package func deleteRange(_ keyspace: Keyspace, _ request: DeleteRangeRequest) async throws(MVCCError)
        -> DeleteRangeResult
    {
        try await durable(applyDeleteRange(keyspace, request))
    }

    /// An etcd transaction: compares, then the success or failure branch, atomically at one revision.
    package func txn(_ keyspace: Keyspace, _ request: TxnRequest) async throws(MVCCError) -> TxnResult {
        try await durable(applyTxn(keyspace, request))
    }

    // MARK: Two-stage writes (apply now, acknowledge when durable)

    /// Applies a put and returns it pending: with `sync = always` it is neither visible nor acknowledged until the
    /// committer's next fsync. Front-ends on an event loop use this with `whenDurable` instead of awaiting.
    package func applyPut(_ keyspace: Keyspace, _ request: PutRequest) throws(MVCCError) -> PendingWrite<PutResult> {
        if request.key.isEmpty { throw .emptyKey }
        if request.ignoreValue && !request.value.isEmpty { throw .valueProvided }
        if request.ignoreLease && request.lease != 0 { throw .leaseProvided }
        let started = lessor.clock.now()
        let (result, revision) = try write { context throws(MVCCError) -> PutResult in
            if request.lease != 0 && !lessor.contains(request.lease) { throw .leaseNotFound }
            context.recordsOverlay = false
            return try executePut(keyspace, request, context: &context)
        }
        metrics.puts.increment()
        return PendingWrite(value: result, revision: revision, started: started)
    }

    package func applyDeleteRange(_ keyspace: Keyspace, _ request: DeleteRangeRequest) throws(MVCCError)
        -> PendingWrite<DeleteRangeResult>
    {
        let pending = try applyTxn(keyspace, TxnRequest(success: [.deleteRange(request)]))
        guard case .deleteRange(let delete) = pending.value.results.first else {
            throw .storage("delete produced no result")
        }
        return PendingWrite(value: delete, revision: pending.revision, started: pending.started)
    }

    package func applyTxn(_ keyspace: Keyspace, _ request: TxnRequest) throws(MVCCError) -> PendingWrite<TxnResult> {
        try validate(request, maxOperations: configuration.maxTxnOperations)
        if request.success.count + request.failure.count > 1 {
            // A single operation cannot write a key twice; skip the interval check on the plain put/delete path.
            _ = try Self.checkIntervals(request.success)
            _ = try Self.checkIntervals(request.failure)
        }
        let started = lessor.clock.now()
        var (result, revision) = try write { context throws(MVCCError) -> TxnResult in
            let path = try comparePath(keyspace, request)
            try check(keyspace, request, path: path, context: context)
            var remainingPath = path[...]
            return try execute(keyspace, request, path: &remainingPath, context: &context)
        }
        countOperations(request, path: result)
        result.revision = revision ?? result.revision
        return PendingWrite(value: result, revision: revision, started: started)
    }

    /// Waits until a pending write is durable and published, then returns its result.
    package func durable<Value>(_ pending: PendingWrite<Value>) async throws(MVCCError) -> Value {
        if let revision = pending.revision { try await waitUntilDurable(revision) }
        metrics.commitLatency.recordNanoseconds(lessor.clock.now() - pending.started)
        return pending.value
    }

    /// Calls `completion` once a pending write is durable and published: at once when it already is (or changed
    /// nothing), otherwise from the committer thread after its fsync. The completion must not block.
    package func whenDurable<Value: Sendable>(
        _ pending: PendingWrite<Value>,
        _ completion: @escaping @Sendable (Result<Value, MVCCError>) -> Void
    ) {
        let finish: @Sendable (MVCCError?) -> Void = { [metrics, lessor] error in
            if let error { return completion(.failure(error)) }
            metrics.commitLatency.recordNanoseconds(lessor.clock.now() - pending.started)
            completion(.success(pending.value))
        }
        guard let revision = pending.revision, let committer, committer.mode == .always else { return finish(nil) }
        committer.whenPublished(revision, finish)
    }

    private func countOperations(_ request: TxnRequest, path result: TxnResult) {
        if request.compares.isEmpty && result.results.count == 1 {
            switch result.results[0] {
            case .put: metrics.puts.increment()
            case .deleteRange: metrics.deletes.increment()
            default: metrics.txns.increment()
            }
        } else {
            metrics.txns.increment()
        }
    }

    // MARK: The write path

    /// Runs `body` under the writer lock with a fresh context; if it changed anything, commits one revision:
    /// one atomic RocksDB batch (history, latest, revision log, meta), then publishes or queues it for the committer.
    /// Returns the body's result and the new revision (nil when nothing changed).
    func write<T>(_ body: (inout TxnContext) throws(MVCCError) -> T) throws(MVCCError) -> (T, Revision?) {
        if let failure = fatalError { throw .storage(failure) }
        if isClosed.load(ordering: .acquiring) { throw .closed }
        return try writer.withLock { state throws(MVCCError) -> (T, Revision?) in
            let batch = state.batch.batch
            batch.clear()
            var context = TxnContext(
                beginRevision: state.revision,
                compactRevision: state.compactRevision,
                batch: batch
            )
            let result = try body(&context)
            guard context.hasChanges else { return (result, nil) }
            let revision = context.writeRevision
            try commit(&context, revision: revision)
            state.revision = revision
            if let committer, committer.mode == .always {
                state.unpublished.append((revision, context.changes.map { ($0.keyspace, $0.event) }))
            } else {
                // Published without a snapshot: the first reader takes it (openReadView), so write bursts pay none.
                publish(revision: revision, compactRevision: state.compactRevision, snapshot: nil)
                let changes = context.changes
                watchHub.publish(revision: revision) { changes.map { ($0.keyspace, $0.event) } }
            }
            return (result, revision)
        }
    }

    private func commit(_ context: inout TxnContext, revision: Revision) throws(MVCCError) {
        var logChanges: [StorageEncoding.LogChange] = []
        for change in context.changes where change.keyspace.keepsHistory {
            logChanges.append(
                StorageEncoding.LogChange(keyspace: change.keyspace.id, key: change.event.kv.key, record: change.record)
            )
        }
        if !logChanges.isEmpty {
            // The log entry is the history: every version, reachable by revision and chained per key.
            context.batch.put(StorageEncoding.logKey(revision), StorageEncoding.encodeLogEntry(logChanges), in: log)
        } else {
            // No log entry records this revision (latest-only keyspaces): keep it in the meta key instead. On open
            // the revision is the larger of the two.
            context.batch.put(
                StorageEncoding.revisionKey,
                StorageEncoding.encode(revision),
                in: database.defaultColumnFamily
            )
        }
        // The WAL write happens here; fsync (sync = always) is shared by the committer's group commit.
        try Self.storage { try database.write(context.batch, sync: false) }
    }

    func waitUntilDurable(_ revision: Revision) async throws(MVCCError) {
        guard let committer, committer.mode == .always else { return }
        try await committer.waitUntilPublished(revision)
    }

    // MARK: Reads inside a transaction

    /// The current state of `key` as the transaction sees it (its own writes included).
    func current(_ keyspace: Keyspace, _ key: [UInt8], context: TxnContext) throws(MVCCError) -> KeyValue? {
        try currentRecord(keyspace, key, context: context)?.live
    }

    /// The newest record of `key` (live or a not-yet-compacted deletion), as the transaction sees it.
    func currentRecord(_ keyspace: Keyspace, _ key: [UInt8], context: TxnContext) throws(MVCCError) -> StorageEncoding
        .Record?
    {
        if let overlay = context.overlay(keyspace), let record = overlay.lookup(key) { return record }
        return try latestRecord(keyspace, key, snapshot: nil)
    }

    func liveSource(_ context: TxnContext) -> ReadSource {
        ReadSource(snapshot: nil, latestRevision: context.readRevision)
    }

    /// Keys (all of them, ascending) currently in `range`, as the transaction sees them.
    func currentKeys(_ keyspace: Keyspace, _ range: KeyRange, context: TxnContext) throws(MVCCError) -> [KeyValue] {
        try collect(
            keyspace,
            range,
            at: context.readRevision,
            source: liveSource(context),
            overlay: context.overlay(keyspace),
            limit: 0,
            keysOnly: false,
            countOnly: false
        ).kvs
    }

    // MARK: Mutations (record into the context; nothing is visible until commit)

    func recordPut(_ keyspace: Keyspace, _ kv: KeyValue, previous: StorageEncoding.Record?, context: inout TxnContext) {
        let previousRevision = keyspace.keepsHistory ? (previous?.modRevision ?? 0) : 0
        let record = StorageEncoding.encodeRecord(kv, previous: previousRevision)
        context.batch.put(StorageEncoding.latestKey(keyspace, kv.key), record, in: latest)
        if let previous { preserveIfCompacted(keyspace, kv.key, previous, context: &context) }
        let previousLease = previous?.live?.lease ?? 0
        if previousLease != 0, previousLease != kv.lease {
            context.batch.delete(StorageEncoding.leaseKeysKey(previousLease, keyspace, kv.key), in: leaseKeys)
        }
        if kv.lease != 0 {
            context.batch.put(StorageEncoding.leaseKeysKey(kv.lease, keyspace, kv.key), [], in: leaseKeys)
        }
        if context.recordsOverlay {
            context.overlays[keyspace.id, default: TxnOverlay(keyspace: keyspace)].entries[kv.key] = .live(
                kv,
                previous: previousRevision
            )
        }
        context.changes.append((keyspace, Event(kind: .put, kv: kv, prevKV: previous?.live), record))
    }

    func recordDelete(_ keyspace: Keyspace, _ previous: KeyValue, context: inout TxnContext) throws(MVCCError) {
        let storageKey = StorageEncoding.latestKey(keyspace, previous.key)
        let revision = context.writeRevision
        let record = StorageEncoding.encodeTombstone(revision, previous: previous.modRevision)
        if keyspace.keepsHistory {
            // The tombstone stays in the latest family until compaction passes it, so historical reads find the key.
            context.batch.put(storageKey, record, in: latest)
            if previous.modRevision < context.compactRevision,
                let full = try currentRecord(keyspace, previous.key, context: context)
            {
                preserveIfCompacted(keyspace, previous.key, full, context: &context)
            }
        } else {
            context.batch.delete(storageKey, in: latest)
        }
        if previous.lease != 0 {
            context.batch.delete(StorageEncoding.leaseKeysKey(previous.lease, keyspace, previous.key), in: leaseKeys)
        }
        context.overlays[keyspace.id, default: TxnOverlay(keyspace: keyspace)].entries[previous.key] =
            .tombstone(revision, previous: previous.modRevision)
        let tombstone = KeyValue(key: previous.key, createRevision: 0, modRevision: revision, version: 0, value: [])
        context.changes.append((keyspace, Event(kind: .delete, kv: tombstone, prevKV: previous), record))
    }

    /// A version about to be superseded whose revision log entry compaction may already have removed: keep it in
    /// the history family, where reads between the compaction point and the new version find it.
    private func preserveIfCompacted(
        _ keyspace: Keyspace,
        _ key: [UInt8],
        _ previous: StorageEncoding.Record,
        context: inout TxnContext
    ) {
        guard keyspace.keepsHistory, previous.modRevision < context.compactRevision else { return }
        context.batch.put(
            StorageEncoding.historyKey(keyspace, key, previous.modRevision),
            previous.encoded(),
            in: history
        )
    }

    // MARK: Execution

    /// Evaluates every compare of the transaction tree against the state before it runs (as etcd does), producing
    /// the branch taken at each transaction in execution order.
    func comparePath(_ keyspace: Keyspace, _ request: TxnRequest) throws(MVCCError) -> [Bool] {
        var succeeded = true
        for compare in request.compares where !(try evaluate(keyspace, compare)) {
            succeeded = false
            break
        }
        var path = [succeeded]
        for operation in succeeded ? request.success : request.failure {
            if case .txn(let nested) = operation { path += try comparePath(keyspace, nested) }
        }
        return path
    }

    private func evaluate(_ keyspace: Keyspace, _ compare: Compare) throws(MVCCError) -> Bool {
        let kvs: [KeyValue]
        if compare.range.isSingleKey {
            kvs = try latestRecord(keyspace, compare.range.key, snapshot: nil)?.live.map { [$0] } ?? []
        } else {
            kvs = try collect(
                keyspace,
                compare.range,
                at: .max,
                source: ReadSource(snapshot: nil, latestRevision: .max),
                overlay: nil,
                limit: 0,
                keysOnly: false,
                countOnly: false
            ).kvs
        }
        if kvs.isEmpty {
            if case .value = compare.target { return false }
            return Self.compare(KeyValue(key: [], createRevision: 0, modRevision: 0, version: 0, value: []), compare)
        }
        return kvs.allSatisfy { Self.compare($0, compare) }
    }

    static func compare(_ kv: KeyValue, _ compare: Compare) -> Bool {
        let order: Int
        func cmp<T: Comparable>(_ a: T, _ b: T) -> Int { a < b ? -1 : (a > b ? 1 : 0) }
        switch compare.target {
        case .version(let v): order = cmp(kv.version, v)
        case .create(let v): order = cmp(kv.createRevision, v)
        case .mod(let v): order = cmp(kv.modRevision, v)
        case .lease(let v): order = cmp(kv.lease, v)
        case .value(let v):
            order = kv.value == v ? 0 : (kv.value.lexicographicallyPrecedes(v) ? -1 : 1)
        }
        switch compare.result {
        case .equal: return order == 0
        case .notEqual: return order != 0
        case .greater: return order > 0
        case .less: return order < 0
        }
    }

    /// etcd's `checkTxn`: on the chosen path, range revisions must be servable, ignore_* puts need an existing key,
    /// and leases must exist — all checked before anything is written.
    func check(_ keyspace: Keyspace, _ request: TxnRequest, path: [Bool], context: TxnContext) throws(MVCCError) {
        var remaining = path[...]
        try check(keyspace, request, path: &remaining, context: context)
    }

    private func check(_ keyspace: Keyspace, _ request: TxnRequest, path: inout ArraySlice<Bool>, context: TxnContext)
        throws(MVCCError)
    {
        let succeeded = path.removeFirst()
        for operation in succeeded ? request.success : request.failure {
            switch operation {
            case .range(let range):
                if range.revision > context.beginRevision { throw .futureRevision }
                if range.revision > 0 && range.revision < context.compactRevision {
                    throw .compacted(compactRevision: context.compactRevision)
                }
            case .put(let put):
                if put.ignoreValue || put.ignoreLease {
                    guard try current(keyspace, put.key, context: context) != nil else { throw .keyNotFound }
                }
                if put.lease != 0 && !lessor.contains(put.lease) { throw .leaseNotFound }
            case .txn(let nested):
                try check(keyspace, nested, path: &path, context: context)
            case .deleteRange, .empty:
                break
            }
        }
    }

    func execute(
        _ keyspace: Keyspace,
        _ request: TxnRequest,
        path: inout ArraySlice<Bool>,
        context: inout TxnContext
    ) throws(MVCCError) -> TxnResult {
        let succeeded = path.removeFirst()
        var results: [TxnOperationResult] = []
        for operation in succeeded ? request.success : request.failure {
            switch operation {
            case .range(let range):
                let revision = range.revision <= 0 ? context.readRevision : range.revision
                let overlay = context.overlay(keyspace)
                let result = try executeRange(
                    keyspace,
                    range,
                    at: revision,
                    source: liveSource(context),
                    overlay: revision == context.readRevision ? overlay : nil,
                    headerRevision: context.readRevision
                )
                results.append(.range(result))
            case .put(let put):
                results.append(.put(try executePut(keyspace, put, context: &context)))
            case .deleteRange(let delete):
                let previous = try currentKeys(keyspace, delete.range, context: context)
                for kv in previous { try recordDelete(keyspace, kv, context: &context) }
                results.append(
                    .deleteRange(
                        DeleteRangeResult(
                            revision: context.readRevision,
                            deleted: Int64(previous.count),
                            prevKVs: delete.prevKV ? previous : []
                        )
                    )
                )
            case .txn(let nested):
                results.append(.txn(try execute(keyspace, nested, path: &path, context: &context)))
            case .empty:
                throw .keyNotFound
            }
        }
        return TxnResult(succeeded: succeeded, results: results, revision: context.readRevision)
    }

    func executePut(_ keyspace: Keyspace, _ put: PutRequest, context: inout TxnContext) throws(MVCCError)
        -> PutResult
    {
        let previousRecord = try currentRecord(keyspace, put.key, context: context)
        let previous = previousRecord?.live
        if (put.ignoreValue || put.ignoreLease) && previous == nil { throw .keyNotFound }
        let revision = context.writeRevision
        let kv = KeyValue(
            key: put.key,
            createRevision: previous?.createRevision ?? revision,
            modRevision: revision,
            version: (previous?.version ?? 0) + 1,
            lease: put.ignoreLease ? previous!.lease : put.lease,
            value: put.ignoreValue ? previous!.value : put.value
        )
        recordPut(keyspace, kv, previous: previousRecord, context: &context)
        return PutResult(revision: revision, prevKV: put.prevKV ? previous : nil)
    }

    // MARK: Static validation (etcd's checkTxnRequest / checkIntervals)

    func validate(_ request: TxnRequest, maxOperations: Int) throws(MVCCError) {
        let operations = max(request.compares.count, request.success.count, request.failure.count)
        if operations > maxOperations { throw .tooManyOperations }
        for compare in request.compares where compare.range.key.isEmpty { throw .emptyKey }
        for operation in [request.success, request.failure].joined() {
            switch operation {
            case .range(let range): if range.range.key.isEmpty { throw .emptyKey }
            case .put(let put):
                if put.key.isEmpty { throw .emptyKey }
                if put.ignoreValue && !put.value.isEmpty { throw .valueProvided }
                if put.ignoreLease && put.lease != 0 { throw .leaseProvided }
            case .deleteRange(let delete): if delete.range.key.isEmpty { throw .emptyKey }
            case .txn(let nested): try validate(nested, maxOperations: maxOperations - operations)
            case .empty: throw .keyNotFound
            }
        }
    }

    /// Interval of a delete as etcd's check sees it: `[key, end)` compared as strings; a single key is a point.
    private struct DeleteInterval {
        var start: [UInt8]
        var end: [UInt8]?

        func contains(_ key: [UInt8]) -> Bool {
            guard let end else { return key == start }
            return !key.lexicographicallyPrecedes(start) && key.lexicographicallyPrecedes(end)
        }
    }

    /// Rejects transactions that write a key twice, or put a key a delete in the same branch covers.
    private static func checkIntervals(_ operations: [TxnOperation]) throws(MVCCError) -> (
        puts: Set<[UInt8]>, deletes: [DeleteInterval]
    ) {
        var deletes: [DeleteInterval] = []
        for case .deleteRange(let delete) in operations {
            deletes.append(
                DeleteInterval(start: delete.range.key, end: delete.range.end.isEmpty ? nil : delete.range.end)
            )
        }
        var puts = Set<[UInt8]>()
        for case .txn(let nested) in operations {
            let (putsThen, deletesThen) = try checkIntervals(nested.success)
            let (putsElse, deletesElse) = try checkIntervals(nested.failure)
            for key in putsThen {
                if puts.contains(key) || deletes.contains(where: { $0.contains(key) }) { throw .duplicateKey }
                puts.insert(key)
            }
            for key in putsElse {
                if puts.contains(key) && !putsThen.contains(key) { throw .duplicateKey }
                if deletes.contains(where: { $0.contains(key) }) { throw .duplicateKey }
                puts.insert(key)
            }
            deletes += deletesThen + deletesElse
        }
        for case .put(let put) in operations {
            if puts.contains(put.key) || deletes.contains(where: { $0.contains(put.key) }) { throw .duplicateKey }
            puts.insert(put.key)
        }
        return (puts, deletes)
    }
}
