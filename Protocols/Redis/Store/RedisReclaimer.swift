package import StrataMVCC

/// Deletes what dropped collections and flushed databases left behind (their `g` and `G` records), in bounded
/// transactions so that no writer waits long: DEL, UNLINK, FLUSHDB and FLUSHALL return at once, and the space comes
/// back in the background.
package struct RedisReclaimer: Sendable {
    package let store: MVCCStore
    /// Entries deleted per transaction.
    package var batch = 1000
    /// How long an idle reclaimer waits before looking again.
    package var idleInterval: Duration = .milliseconds(200)

    package init(store: MVCCStore) {
        self.store = store
    }

    /// Reclaims until cancelled.
    package func run() async throws {
        while !Task.isCancelled {
            let more = try await step()
            if !more { try await Task.sleep(for: idleInterval) }
        }
    }

    /// One bounded transaction; true when more work is waiting.
    @discardableResult
    package func step() async throws(MVCCError) -> Bool {
        let batch = batch
        return try await store.update(.redis, durability: .os) { txn throws(MVCCError) -> Bool in
            let dropped = try txn.range(.prefix([RedisLayout.droppedTag]), RangeOptions(limit: 1, keysOnly: true))
            if let record = dropped.kvs.first {
                let version = RedisLayout.readUInt64(record.key, at: 1)
                var left = batch
                for prefix in [RedisLayout.memberPrefix(version), RedisLayout.scorePrefix(version)] where left > 0 {
                    let members = try txn.range(.prefix(prefix), RangeOptions(limit: left, keysOnly: true))
                    for member in members.kvs { try txn.delete(member.key, event: .none) }
                    left -= members.kvs.count
                }
                if left > 0 { try txn.delete(record.key, event: .none) }
                return true
            }
            let flushed = try txn.range(.prefix([RedisLayout.flushedTag]), RangeOptions(limit: 1, keysOnly: true))
            guard let record = flushed.kvs.first else { return false }
            let space = RedisLayout.readUInt32(record.key, at: 1)
            let keys = try txn.range(.prefix(RedisLayout.metadataPrefix(space: space)), RangeOptions(limit: batch))
            for kv in keys.kvs {
                if let metadata = try? RedisMetadata(decoding: kv.value), metadata.type != .string {
                    try txn.put(RedisLayout.droppedKey(metadata.version), [], event: .none)
                }
                try txn.delete(kv.key, event: .none)
            }
            if keys.kvs.count < batch { try txn.delete(record.key, event: .none) }
            return true
        }
    }
}
