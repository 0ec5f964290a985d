extension RedisData {
    /// A stream as a DUMP payload holds it: entries with their nodes, IDs and counters, groups.
    package mutating func streamDump(_ entry: Entry) throws(RedisError) -> RedisDump.Stream {
        let state = entry.metadata.stream
        var stream = RedisDump.Stream()
        stream.entries = try streamRange(entry, from: .zero, to: .max).map {
            RedisDump.Stream.Entry(id: $0.id, fields: $0.fields, node: $0.node)
        }
        stream.lastID = state.lastID
        stream.firstID = state.firstID
        stream.maxDeletedID = state.maxDeletedID
        stream.entriesAdded = state.entriesAdded
        for group in try streamGroups(entry) {
            let pending = try streamPendingRange(entry, group, from: .zero, to: .max, count: 0)
            let consumers = try streamConsumers(entry, group).map {
                RedisDump.Stream.Consumer(name: $0.name, seenTime: $0.seenTime)
            }
            stream.groups.append(
                RedisDump.Stream.Group(
                    name: group.name,
                    lastDelivered: group.lastDelivered,
                    entriesRead: group.entriesRead,
                    pending: pending,
                    consumers: consumers
                )
            )
        }
        return stream
    }

    /// A new stream holding `stream` (stored by the caller); entries go into nodes by this server's limits.
    package mutating func restoreStream(
        _ stream: RedisDump.Stream,
        nodeMaxEntries: Int,
        nodeMaxBytes: Int
    ) throws(RedisError) -> Entry {
        var entry = newStream()
        for item in stream.entries {
            try streamAppend(
                &entry,
                id: item.id,
                fields: item.fields,
                nodeMaxEntries: nodeMaxEntries,
                nodeMaxBytes: nodeMaxBytes
            )
        }
        entry.metadata.stream.lastID = stream.lastID
        entry.metadata.stream.firstID = stream.firstID
        entry.metadata.stream.maxDeletedID = stream.maxDeletedID
        entry.metadata.stream.entriesAdded = stream.entriesAdded
        for saved in stream.groups {
            guard
                var group = try createStreamGroup(
                    &entry,
                    name: saved.name,
                    lastDelivered: saved.lastDelivered,
                    entriesRead: saved.entriesRead
                )
            else { throw .err("Bad data format") }
            for consumer in saved.consumers {
                _ = try streamConsumer(entry, &group, creating: consumer.name, now: consumer.seenTime, refresh: false)
            }
            for pending in saved.pending { try putStreamPending(entry, &group, pending, previous: nil) }
            try storeStreamGroup(entry, group)
        }
        return entry
    }
}
