internal import CoreMetrics
internal import StrataCommon
internal import StrataLease
internal import StrataRocksDB
internal import Synchronization

/// How the background expirer deletes keys whose expiry time has passed (reads already hide them).
package struct ExpiryConfiguration: Sendable, Hashable {
    /// How often the expirer looks for due keys (Redis's active expiry runs 10 times a second).
    package var interval: Duration = .milliseconds(100)
    /// Keys deleted per look at most; more due keys wait for the next one, so expiry never monopolizes the writer
    /// lock (each key is its own short transaction).
    package var keysPerTick = 2000
    package init() {}
    package static var defaults: Self { Self() }
}

/// Where the expirer resumes in the expiry index: everything before it has been expired or was never there. Writes
/// that add an earlier deadline move it back; `generation` tells the expirer its reading is stale.
struct ExpiryCursor {
    var position: [UInt8] = []
    var generation: UInt64 = 0

    mutating func lower(to key: [UInt8]) {
        guard key.lexicographicallyPrecedes(position) else { return }
        position = key
        generation &+= 1
    }
}

extension MVCCStore {
    /// Deletes up to `limit` keys whose expiry time has passed, each in its own transaction with an `expired` event;
    /// returns how many it deleted. Reads the index from the cursor to the current time only: the in-memory state is
    /// one key, whatever the number of keys with an expiry time, and start-up reads nothing.
    @discardableResult
    package func expireDueKeys(limit: Int? = nil) throws(MVCCError) -> Int {
        let limit = limit ?? configuration.expiry.keysPerTick
        let now = clock.wallMilliseconds()
        let (start, generation) = expiryCursor.withLock { ($0.position, $0.generation) }
        var upper: [UInt8] = []
        StorageEncoding.append(now + 1, to: &upper)
        guard start.lexicographicallyPrecedes(upper) else { return 0 }
        let due = try Self.storage {
            try database.scan(expiry, from: start.isEmpty ? nil : start, to: upper, limit: limit)
        }
        var expired = 0
        for row in due {
            guard let (deadline, id, key) = StorageEncoding.decodeExpiryKey(row.key), let keyspace = keyspace(id),
                !keyspace.keepsHistory
            else { continue }
            let pending = try applyUpdate(keyspace, durability: .fsyncWithin(milliseconds: 1000)) {
                transaction throws(MVCCError) -> Bool in
                try transaction.expireIfDue(key, deadline: deadline)
            }
            if pending.value { expired += 1 }
        }
        if expired > 0 { metrics.keysExpired.increment(by: expired) }
        // Resume after the last entry read; entries below it are gone unless a write added one meanwhile (which
        // moved the cursor back and changed the generation).
        let next = due.last.map { $0.key + [0] } ?? start
        expiryCursor.withLock { cursor in
            if cursor.generation == generation { cursor.position = next }
        }
        return expired
    }

    /// Runs the expirer until cancelled: a look every ``ExpiryConfiguration/interval``, at once again while a look
    /// finds a full batch.
    func runExpirer() async throws {
        let interval = configuration.expiry.interval.nanoseconds
        while !Task.isCancelled {
            let expired = (try? expireDueKeys()) ?? 0
            if expired < configuration.expiry.keysPerTick { try await clock.sleep(for: interval) }
            await Task.yield()
        }
    }
}
