package import StrataMVCC
internal import Synchronization

/// Which storage space each numbered database (SELECT's 0…15) lives in. FLUSHDB gives a database a fresh, empty
/// space (one write; the reclaimer deletes the old one's keys in the background) and SWAPDB swaps two entries, so
/// both return at once whatever the databases hold.
///
/// Persisted as the `D` record: count(u32), next free space(u32), then one space(u32) per database. The table in
/// memory changes only inside write transactions (under the store's writer lock), as their last step.
package final class RedisSpaces: Sendable {
    struct Table: Sendable, Hashable {
        var spaces: [UInt32]
        var next: UInt32

        func encoded() -> [UInt8] {
            var bytes: [UInt8] = []
            RedisLayout.append(UInt32(spaces.count), to: &bytes)
            RedisLayout.append(next, to: &bytes)
            for space in spaces { RedisLayout.append(space, to: &bytes) }
            return bytes
        }

        init(databases: Int) {
            spaces = (0..<databases).map { UInt32($0) }
            next = UInt32(databases)
        }

        init?(decoding bytes: [UInt8]) {
            guard bytes.count >= 8 else { return nil }
            let count = Int(RedisLayout.readUInt32(bytes, at: 0))
            guard bytes.count == 8 + 4 * count else { return nil }
            next = RedisLayout.readUInt32(bytes, at: 4)
            spaces = (0..<count).map { RedisLayout.readUInt32(bytes, at: 8 + 4 * $0) }
        }
    }

    /// SELECT's range: 0 ..< databases.
    package let databases: Int
    private let table: Mutex<Table>

    /// Reads the table (creating it, or growing it to `databases`).
    package init(store: MVCCStore, databases: Int) async throws(RedisError) {
        self.databases = databases
        do {
            let table = try await store.update(.redis) { txn throws(MVCCError) -> Table in
                var table =
                    try txn.get(RedisLayout.databasesKey).flatMap { Table(decoding: $0.value) }
                    ?? Table(databases: 0)
                guard table.spaces.count < databases else { return table }
                // New databases take fresh spaces (a space is never reused: the reclaimer may still be busy in it).
                while table.spaces.count < databases {
                    table.spaces.append(table.next)
                    table.next += 1
                }
                try txn.put(RedisLayout.databasesKey, table.encoded(), event: .none)
                return table
            }
            self.table = Mutex(table)
        } catch {
            throw .storage(error)
        }
    }

    /// The space database `db` is in now.
    @inline(__always)
    package func space(_ db: Int) -> UInt32 { table.withLock { $0.spaces[db] } }

    /// Every database's space, in database order.
    package var all: [UInt32] { table.withLock { Array($0.spaces.prefix(databases)) } }

    /// The database a space belongs to now, or nil for a flushed one.
    package func database(of space: UInt32) -> Int? {
        table.withLock { table in table.spaces.prefix(databases).firstIndex(of: space) }
    }

    /// Gives `dbs` fresh spaces inside `txn` and records the old ones for reclamation. Call as the transaction's
    /// last step (the table in memory changes at once).
    func flush(_ dbs: [Int], in txn: inout WriteTransaction) throws(MVCCError) {
        var table = table.withLock { $0 }
        for db in dbs {
            try txn.put(RedisLayout.flushedKey(table.spaces[db]), [], event: .none)
            table.spaces[db] = table.next
            table.next += 1
        }
        try txn.put(RedisLayout.databasesKey, table.encoded(), event: .none)
        self.table.withLock { $0 = table }
    }

    /// Swaps two databases inside `txn` (its last step).
    func swap(_ a: Int, _ b: Int, in txn: inout WriteTransaction) throws(MVCCError) {
        var table = table.withLock { $0 }
        table.spaces.swapAt(a, b)
        try txn.put(RedisLayout.databasesKey, table.encoded(), event: .none)
        self.table.withLock { $0 = table }
    }

    /// Re-reads the table after a transaction that changed it failed to commit.
    package func reload(from store: MVCCStore) {
        guard let kv = try? store.get(.redis, RedisLayout.databasesKey), let stored = Table(decoding: kv.value) else {
            return
        }
        table.withLock { $0 = stored }
    }
}
