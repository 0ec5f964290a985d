package import StrataMVCC

extension Keyspace {
    /// Redis's data: latest-only, compact records with expiry times (docs/storage-format.md, ``RedisLayout``).
    package static let redis = Keyspace(
        id: 2,
        name: "redis",
        history: .latestOnly,
        format: .compact,
        expiryHook: Keyspace.ExpiryHook { txn, kv throws(MVCCError) in
            // An expired collection leaves its members behind: record them for the reclaimer, in the same
            // transaction as the deletion, so none is ever forgotten.
            guard kv.key.first == RedisLayout.metadataTag,
                let metadata = try? RedisMetadata(decoding: kv.value), metadata.type != .string
            else { return }
            try txn.put(RedisLayout.droppedKey(metadata.version), [], event: .none)
        }
    )
}
