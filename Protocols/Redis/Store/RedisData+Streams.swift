internal import StrataMVCC

/// A stream entry ID.
package struct RedisStreamID: Comparable, Hashable, Sendable, CustomStringConvertible {
    package var ms: UInt64
    package var seq: UInt64

    package init(ms: UInt64, seq: UInt64) {
        self.ms = ms
        self.seq = seq
    }

    package static let zero = Self(ms: 0, seq: 0)
    package static let max = Self(ms: .max, seq: .max)

    package var description: String { "\(ms)-\(seq)" }
    package var isZero: Bool { ms == 0 && seq == 0 }

    package static func < (lhs: Self, rhs: Self) -> Bool { (lhs.ms, lhs.seq) < (rhs.ms, rhs.seq) }

    /// The ID after this one; nil after the last possible ID.
    package var next: Self? {
        if seq < .max { return Self(ms: ms, seq: seq + 1) }
        return ms < .max ? Self(ms: ms + 1, seq: 0) : nil
    }

    /// The ID before this one; nil before 0-0.
    package var previous: Self? {
        if seq > 0 { return Self(ms: ms, seq: seq - 1) }
        return ms > 0 ? Self(ms: ms - 1, seq: .max) : nil
    }

    var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(16)
        RedisLayout.append(ms, to: &out)
        RedisLayout.append(seq, to: &out)
        return out
    }

    init<C: Collection<UInt8>>(decoding bytes: C, at offset: Int) where C.Index == Int {
        self.init(ms: RedisLayout.readUInt64(bytes, at: offset), seq: RedisLayout.readUInt64(bytes, at: offset + 8))
    }
}

/// A stream's state in its metadata record: IDs and counters XINFO shows, and the bookkeeping that reproduces
/// Redis's listpack nodes (approximate trimming with `~` removes whole nodes, so the counts it leaves are Redis's).
package struct RedisStreamState: Sendable, Hashable {
    package var lastID = RedisStreamID.zero
    package var maxDeletedID = RedisStreamID.zero
    /// `recorded-first-entry-id`.
    package var firstID = RedisStreamID.zero
    package var entriesAdded: UInt64 = 0
    package var groups: UInt64 = 0
    package var nextGroup: UInt64 = 1
    /// The node entries are appended to (0: none: the next entry starts a new one).
    package var tailNode: UInt64 = 0
    /// Entries appended to the tail node (deleted ones count, as in Redis) and its estimated listpack bytes.
    package var tailNodeEntries: UInt64 = 0
    package var tailNodeBytes: UInt64 = 0
    /// Nodes holding at least one entry (`radix-tree-keys`).
    package var nodes: UInt64 = 0
    package var nextNode: UInt64 = 1
    /// Whether the nodes before the tail have records (live entries, last ID) — every stream written since they
    /// exist; older ones get them at their first change (``RedisData/upgradeStreamNodes(_:)``).
    package var nodeRecords = true
    /// The tail node's live entries and the last ID appended to it (deleted or not), as Redis's listpack has them.
    package var tailNodeLive: UInt64 = 0
    package var tailNodeLastID = RedisStreamID.zero
    /// No node record is older than this node (where finding the oldest starts, past trimmed nodes' tombstones).
    package var oldestNode: UInt64 = 0

    package init() {}

    /// The size of the oldest records (15 fields); records with node records have 19.
    static let encodedSize = 15 * 8

    func encode(into bytes: inout [UInt8]) {
        for value in [
            lastID.ms, lastID.seq, maxDeletedID.ms, maxDeletedID.seq, firstID.ms, firstID.seq, entriesAdded, groups,
            nextGroup, tailNode, tailNodeEntries, tailNodeBytes, nodes, nextNode, nodeRecords ? 1 : 0, tailNodeLive,
            tailNodeLastID.ms, tailNodeLastID.seq, oldestNode,
        ] {
            RedisLayout.append(value, to: &bytes)
        }
    }

    init(decoding bytes: [UInt8], at offset: Int) {
        func field(_ index: Int) -> UInt64 { RedisLayout.readUInt64(bytes, at: offset + 8 * index) }
        lastID = RedisStreamID(ms: field(0), seq: field(1))
        maxDeletedID = RedisStreamID(ms: field(2), seq: field(3))
        firstID = RedisStreamID(ms: field(4), seq: field(5))
        entriesAdded = field(6)
        groups = field(7)
        nextGroup = field(8)
        tailNode = field(9)
        tailNodeEntries = field(10)
        tailNodeBytes = field(11)
        nodes = field(12)
        nextNode = field(13)
        // The 15th field was a spare (0) before node records.
        nodeRecords = field(14) == 1 && bytes.count >= offset + 19 * 8
        if nodeRecords {
            tailNodeLive = field(15)
            tailNodeLastID = RedisStreamID(ms: field(16), seq: field(17))
            oldestNode = field(18)
        }
    }
}

/// One stream entry: its ID and its fields and values, alternating.
package struct RedisStreamEntry: Sendable, Hashable {
    package let id: RedisStreamID
    package let fields: [[UInt8]]
    let node: UInt64
}

/// A consumer group.
package struct RedisStreamGroup: Sendable, Hashable {
    package let name: [UInt8]
    let id: UInt64
    package var lastDelivered: RedisStreamID
    /// -1: unknown.
    package var entriesRead: Int64
    package var pending: UInt64
    package var consumers: UInt64
}

package struct RedisStreamConsumer: Sendable, Hashable {
    package let name: [UInt8]
    package var seenTime: Int64
    package var pending: UInt64
}

/// An entry of a group's pending entries list.
package struct RedisStreamPending: Sendable, Hashable {
    package let id: RedisStreamID
    package var consumer: [UInt8]
    package var deliveryTime: Int64
    package var deliveryCount: UInt64

    package init(id: RedisStreamID, consumer: [UInt8], deliveryTime: Int64, deliveryCount: UInt64) {
        self.id = id
        self.consumer = consumer
        self.deliveryTime = deliveryTime
        self.deliveryCount = deliveryCount
    }
}

/// Trimming: to a length or to a first ID.
package enum RedisStreamTrim: Sendable {
    case maxLength(Int64)
    case minID(RedisStreamID)
}

/// Streams: entries at `s` version ms seq (an append is one write, a range read one seek); consumer groups, their
/// consumers and pending entries under the stream's `z` version prefix (docs/storage-format.md), so dropping the
/// stream hands everything to the reclaimer at once.
extension RedisData {
    // MARK: Keys

    private static let groupTag = UInt8(ascii: "g")
    private static let consumerTag = UInt8(ascii: "c")
    private static let pendingTag = UInt8(ascii: "p")
    private static let consumerPendingTag = UInt8(ascii: "q")

    private static func entryKey(_ version: UInt64, _ id: RedisStreamID) -> [UInt8] {
        RedisLayout.memberPrefix(version) + id.bytes
    }

    private static func groupKey(_ version: UInt64, _ name: [UInt8]) -> [UInt8] {
        RedisLayout.scorePrefix(version) + [groupTag] + name
    }

    private static func groupScoped(_ version: UInt64, _ tag: UInt8, _ group: UInt64) -> [UInt8] {
        var key = RedisLayout.scorePrefix(version) + [tag]
        RedisLayout.append(group, to: &key)
        return key
    }

    private static func consumerKey(_ version: UInt64, _ group: UInt64, _ name: [UInt8]) -> [UInt8] {
        groupScoped(version, consumerTag, group) + name
    }

    private static func pendingKey(_ version: UInt64, _ group: UInt64, _ id: RedisStreamID) -> [UInt8] {
        groupScoped(version, pendingTag, group) + id.bytes
    }

    private static func consumerPendingPrefix(_ version: UInt64, _ group: UInt64, _ consumer: [UInt8]) -> [UInt8] {
        var key = groupScoped(version, consumerPendingTag, group)
        RedisLayout.append(UInt32(truncatingIfNeeded: consumer.count), to: &key)
        return key + consumer
    }

    // MARK: Entries

    static func encodeEntry(node: UInt64, fields: some Collection<[UInt8]>) -> [UInt8] {
        var value: [UInt8] = []
        RedisLayout.append(node, to: &value)
        RedisLayout.append(UInt32(fields.count), to: &value)
        for field in fields {
            RedisLayout.append(UInt32(field.count), to: &value)
            value += field
        }
        return value
    }

    static func decodeEntry(_ key: [UInt8], _ value: [UInt8]) throws(RedisError) -> RedisStreamEntry {
        guard key.count == 25, value.count >= 12 else { throw .storage(.storage("malformed stream entry")) }
        let id = RedisStreamID(decoding: key, at: 9)
        let node = RedisLayout.readUInt64(value, at: 0)
        let count = Int(RedisLayout.readUInt32(value, at: 8))
        var fields: [[UInt8]] = []
        fields.reserveCapacity(count)
        var offset = 12
        for _ in 0..<count {
            guard offset + 4 <= value.count else { throw .storage(.storage("malformed stream entry")) }
            let length = Int(RedisLayout.readUInt32(value, at: offset))
            offset += 4
            guard offset + length <= value.count else { throw .storage(.storage("malformed stream entry")) }
            fields.append(Array(value[offset..<offset + length]))
            offset += length
        }
        return RedisStreamEntry(id: id, fields: fields, node: node)
    }

    /// A new, empty stream (stored by the caller).
    package mutating func newStream() -> Entry { newCollection(.stream) }

    /// Appends an entry. Like Redis, an entry starts a new node when the tail node holds `nodeMaxEntries` entries
    /// or its bytes would reach `nodeMaxBytes` (listpack bytes are estimated).
    package mutating func streamAppend(
        _ entry: inout Entry,
        id: RedisStreamID,
        fields: some Collection<[UInt8]>,
        nodeMaxEntries: Int,
        nodeMaxBytes: Int
    ) throws(RedisError) {
        try upgradeStreamNodes(&entry)
        var state = entry.metadata.stream
        let payload = fields.reduce(0) { $0 + $1.count }
        let elementBytes = UInt64(fields.reduce(0) { $0 + $1.count + 2 } + 8)
        var newNode = state.tailNode == 0
        if !newNode {
            let maxBytes = nodeMaxBytes <= 0 ? Int.max : nodeMaxBytes
            if Int(state.tailNodeBytes) + payload >= maxBytes {
                newNode = true
            } else if nodeMaxEntries > 0 && state.tailNodeEntries >= UInt64(nodeMaxEntries) {
                newNode = true
            }
        }
        if newNode {
            // The tail becomes an ordinary node: its record now holds what the metadata held.
            if state.tailNode != 0 {
                try writeStreamNode(
                    entry.metadata.version,
                    StreamNode(number: state.tailNode, live: state.tailNodeLive, lastID: state.tailNodeLastID)
                )
            }
            state.tailNode = state.nextNode
            state.tailNodeLive = 0
            state.nextNode += 1
            state.tailNodeEntries = 0
            // The master entry: its fields, counters and terminator.
            let masterFields = fields.enumerated().reduce(0) { $0 + ($1.offset % 2 == 0 ? $1.element.count + 2 : 0) }
            state.tailNodeBytes = UInt64(masterFields) + 16
            state.nodes += 1
        }
        state.tailNodeEntries += 1
        state.tailNodeBytes += elementBytes
        state.tailNodeLive += 1
        state.tailNodeLastID = id
        try write(Self.entryKey(entry.metadata.version, id), Self.encodeEntry(node: state.tailNode, fields: fields))
        entry.metadata.size += 1
        if entry.metadata.size == 1 { state.firstID = id }
        state.lastID = id
        state.entriesAdded += 1
        entry.metadata.stream = state
    }

    /// Entries from `start` to `end` (inclusive), ascending or descending, at most `count` (0: all).
    package mutating func streamRange(
        _ entry: Entry,
        from start: RedisStreamID,
        to end: RedisStreamID,
        reverse: Bool = false,
        count: Int = 0
    ) throws(RedisError) -> [RedisStreamEntry] {
        // Nothing lives before the first entry: starting there skips the tombstones trimming left (a stream used
        // as a queue deletes at its head all the time).
        let start = entry.metadata.size > 0 ? max(start, entry.metadata.stream.firstID) : start
        guard start <= end else { return [] }
        let version = entry.metadata.version
        let endKey =
            end.next.map { Self.entryKey(version, $0) } ?? KeyRange.prefixEnd(RedisLayout.memberPrefix(version))
        var found: [RedisStreamEntry] = []
        try scan(KeyRange(key: Self.entryKey(version, start), end: endKey), reverse: reverse) { kv throws(RedisError) in
            found.append(try Self.decodeEntry(kv.key, kv.value))
            return count == 0 || found.count < count
        }
        return found
    }

    package mutating func streamEntry(_ entry: Entry, _ id: RedisStreamID) throws(RedisError) -> RedisStreamEntry? {
        let key = Self.entryKey(entry.metadata.version, id)
        guard let kv = try read(key) else { return nil }
        return try Self.decodeEntry(key, kv.value)
    }

    /// The first (or last) entry.
    package mutating func streamEdge(_ entry: Entry, last: Bool) throws(RedisError) -> RedisStreamEntry? {
        try streamRange(entry, from: .zero, to: .max, reverse: last, count: 1).first
    }

    /// Deletes one entry; false when there is none. Node bookkeeping follows (a node left empty is gone).
    package mutating func streamDelete(_ entry: inout Entry, _ id: RedisStreamID) throws(RedisError) -> Bool {
        guard let existing = try streamEntry(entry, id) else { return false }
        try upgradeStreamNodes(&entry)
        try remove(Self.entryKey(entry.metadata.version, id))
        entry.metadata.size -= 1
        // As in Redis, a node whose last live entry goes is gone (the tail too: the next append starts a new one).
        if var node = try streamNode(entry, existing.node) {
            node.live -= 1
            if node.live == 0 {
                try dropStreamNode(&entry, node, oldest: false)
            } else {
                try keepStreamNode(&entry, node)
            }
        }
        return true
    }

    /// XTRIM and XADD's trimming, as Redis's `streamTrim`: from the oldest node, each goes whole while it can (MAXLEN:
    /// the length without its live entries stays at or above the bound; MINID: the last ID appended to it is below
    /// the minimum); with `approximate` it stops at the first node that cannot go whole, otherwise it deletes that
    /// node's entries one by one (the node stays, even with none left, as Redis's listpack does). `limit` (0: none)
    /// stops before a node whose entries would exceed it. Returns how many went. Decisions come from node records, so
    /// `XADD … MAXLEN ~ n` reads one record, as Redis reads a listpack header.
    package mutating func streamTrim(
        _ entry: inout Entry,
        _ strategy: RedisStreamTrim,
        approximate: Bool,
        limit: Int64
    ) throws(RedisError) -> Int64 {
        try upgradeStreamNodes(&entry)
        var deleted: Int64 = 0
        while let node = try oldestStreamNode(entry) {
            if case .maxLength(let length) = strategy, entry.metadata.size <= length { break }
            let live = Int64(node.live)
            if limit > 0 && deleted + live > limit { break }
            let whole: Bool
            switch strategy {
            case .maxLength(let length): whole = entry.metadata.size - live >= length
            case .minID(let minimum): whole = node.lastID < minimum
            }
            if whole {
                let ids = try streamNodeIDs(entry, node.number)
                for id in ids { try remove(Self.entryKey(entry.metadata.version, id)) }
                // The next node's entries start past these (reads start at the first ID, past the tombstones).
                if let next = ids.last?.next { entry.metadata.stream.firstID = next }
                entry.metadata.size -= live
                deleted += live
                try dropStreamNode(&entry, node, oldest: true)
                continue
            }
            if approximate { break }
            var remaining = node
            for id in try streamNodeIDs(entry, node.number) {
                if case .maxLength(let length) = strategy, entry.metadata.size <= length { break }
                if case .minID(let minimum) = strategy, id >= minimum { break }
                try remove(Self.entryKey(entry.metadata.version, id))
                entry.metadata.size -= 1
                remaining.live -= 1
                deleted += 1
            }
            try keepStreamNode(&entry, remaining)
            break
        }
        if entry.metadata.size == 0 {
            entry.metadata.stream.firstID = .zero
        } else if deleted > 0, let first = try streamEdge(entry, last: false) {
            entry.metadata.stream.firstID = first.id
        }
        return deleted
    }

    // MARK: Nodes

    /// A listpack node as Redis would have it: live entries and the last ID appended to it.
    struct StreamNode: Sendable, Hashable {
        var number: UInt64
        var live: UInt64
        var lastID: RedisStreamID
    }

    private static let nodeTag = UInt8(ascii: "n")

    private mutating func writeStreamNode(_ version: UInt64, _ node: StreamNode) throws(RedisError) {
        var value: [UInt8] = []
        RedisLayout.append(node.live, to: &value)
        value += node.lastID.bytes
        try write(Self.groupScoped(version, Self.nodeTag, node.number), value)
    }

    private static func decodeStreamNode(_ number: UInt64, _ value: [UInt8]) throws(RedisError) -> StreamNode {
        guard value.count == 24 else { throw .storage(.storage("malformed stream node record")) }
        return StreamNode(
            number: number,
            live: RedisLayout.readUInt64(value, at: 0),
            lastID: RedisStreamID(decoding: value, at: 8)
        )
    }

    /// Node `number`: the tail from the metadata, another from its record.
    private mutating func streamNode(_ entry: Entry, _ number: UInt64) throws(RedisError) -> StreamNode? {
        let state = entry.metadata.stream
        if number == state.tailNode {
            return StreamNode(number: number, live: state.tailNodeLive, lastID: state.tailNodeLastID)
        }
        guard let kv = try read(Self.groupScoped(entry.metadata.version, Self.nodeTag, number)) else { return nil }
        return try Self.decodeStreamNode(number, kv.value)
    }

    /// The oldest node: the first record, else the tail.
    private mutating func oldestStreamNode(_ entry: Entry) throws(RedisError) -> StreamNode? {
        let version = entry.metadata.version
        let prefix = RedisLayout.scorePrefix(version) + [Self.nodeTag]
        var found: StreamNode?
        let range = KeyRange(
            key: Self.groupScoped(version, Self.nodeTag, entry.metadata.stream.oldestNode),
            end: KeyRange.prefixEnd(prefix)
        )
        try scan(range) { kv throws(RedisError) in
            found = try Self.decodeStreamNode(RedisLayout.readUInt64(kv.key, at: prefix.count), kv.value)
            return false
        }
        if let found { return found }
        let state = entry.metadata.stream
        guard state.tailNode != 0 else { return nil }
        return StreamNode(number: state.tailNode, live: state.tailNodeLive, lastID: state.tailNodeLastID)
    }

    /// Stores a node's changed count.
    private mutating func keepStreamNode(_ entry: inout Entry, _ node: StreamNode) throws(RedisError) {
        if node.number == entry.metadata.stream.tailNode {
            entry.metadata.stream.tailNodeLive = node.live
        } else {
            try writeStreamNode(entry.metadata.version, node)
        }
    }

    /// A node is gone (its entries are, or go, with it). Past the `oldest`, the next search for the oldest starts.
    private mutating func dropStreamNode(_ entry: inout Entry, _ node: StreamNode, oldest: Bool) throws(RedisError) {
        entry.metadata.stream.nodes -= 1
        if node.number == entry.metadata.stream.tailNode {
            entry.metadata.stream.tailNode = 0
            entry.metadata.stream.tailNodeLive = 0
        } else {
            try remove(Self.groupScoped(entry.metadata.version, Self.nodeTag, node.number))
            if oldest { entry.metadata.stream.oldestNode = node.number + 1 }
        }
    }

    /// The IDs of a node's live entries, from the keys and node numbers alone (nodes hold entries in ID order, and
    /// none of an older node is left before it).
    private mutating func streamNodeIDs(_ entry: Entry, _ number: UInt64) throws(RedisError) -> [RedisStreamID] {
        let version = entry.metadata.version
        var ids: [RedisStreamID] = []
        let range = KeyRange(
            key: Self.entryKey(version, entry.metadata.stream.firstID),
            end: KeyRange.prefixEnd(RedisLayout.memberPrefix(version))
        )
        try scanEntryNodes(range) { id, node in
            // Older nodes' entries are gone; a newer node's entry ends this one.
            if node < number { return true }
            guard node == number else { return false }
            ids.append(id)
            return true
        }
        return ids
    }

    /// Entries in `range` as their IDs and node numbers, read from the keys and the values' first bytes alone.
    private mutating func scanEntryNodes(
        _ range: KeyRange,
        _ body: (RedisStreamID, UInt64) throws(RedisError) -> Bool
    ) throws(RedisError) {
        try scan(range) { kv throws(RedisError) in
            guard kv.key.count == 25, kv.value.count >= 8 else { throw .storage(.storage("malformed stream entry")) }
            return try body(RedisStreamID(decoding: kv.key, at: 9), RedisLayout.readUInt64(kv.value, at: 0))
        }
    }

    /// Gives a stream written before node records its records: one pass over its entries, at its first change.
    /// (The last ID of a node is its last live entry's: which deleted entries it held is not known.)
    package mutating func upgradeStreamNodes(_ entry: inout Entry) throws(RedisError) {
        guard !entry.metadata.stream.nodeRecords else { return }
        let version = entry.metadata.version
        var nodes: [StreamNode] = []
        try scanEntryNodes(.prefix(RedisLayout.memberPrefix(version))) { id, number in
            if nodes.last?.number == number {
                nodes[nodes.count - 1].live += 1
                nodes[nodes.count - 1].lastID = id
            } else {
                nodes.append(StreamNode(number: number, live: 1, lastID: id))
            }
            return true
        }
        var state = entry.metadata.stream
        state.tailNodeLive = 0
        state.tailNodeLastID = state.lastID
        for node in nodes {
            if node.number == state.tailNode {
                state.tailNodeLive = node.live
            } else {
                try writeStreamNode(version, node)
            }
        }
        state.nodes =
            UInt64(nodes.count) + (state.tailNode != 0 && !nodes.contains { $0.number == state.tailNode } ? 1 : 0)
        state.oldestNode = nodes.first?.number ?? 0
        state.nodeRecords = true
        entry.metadata.stream = state
    }

    // MARK: Consumer groups

    private static func encodeGroup(_ group: RedisStreamGroup) -> [UInt8] {
        var value: [UInt8] = []
        for field in [
            group.id, group.lastDelivered.ms, group.lastDelivered.seq, UInt64(bitPattern: group.entriesRead),
            group.pending, group.consumers,
        ] {
            RedisLayout.append(field, to: &value)
        }
        return value
    }

    private static func decodeGroup(_ name: [UInt8], _ value: [UInt8]) throws(RedisError) -> RedisStreamGroup {
        guard value.count >= 48 else { throw .storage(.storage("malformed stream group")) }
        func field(_ index: Int) -> UInt64 { RedisLayout.readUInt64(value, at: 8 * index) }
        return RedisStreamGroup(
            name: name,
            id: field(0),
            lastDelivered: RedisStreamID(ms: field(1), seq: field(2)),
            entriesRead: Int64(bitPattern: field(3)),
            pending: field(4),
            consumers: field(5)
        )
    }

    package mutating func streamGroup(_ entry: Entry, _ name: [UInt8]) throws(RedisError) -> RedisStreamGroup? {
        guard let kv = try read(Self.groupKey(entry.metadata.version, name)) else { return nil }
        return try Self.decodeGroup(name, kv.value)
    }

    /// Every group, by name.
    package mutating func streamGroups(_ entry: Entry) throws(RedisError) -> [RedisStreamGroup] {
        let prefix = Self.groupKey(entry.metadata.version, [])
        var found: [RedisStreamGroup] = []
        try scan(.prefix(prefix)) { kv throws(RedisError) in
            found.append(try Self.decodeGroup(Array(kv.key[prefix.count...]), kv.value))
            return true
        }
        return found
    }

    package mutating func storeStreamGroup(_ entry: Entry, _ group: RedisStreamGroup) throws(RedisError) {
        try write(Self.groupKey(entry.metadata.version, group.name), Self.encodeGroup(group))
    }

    /// Creates a group; nil when one of that name exists.
    package mutating func createStreamGroup(
        _ entry: inout Entry,
        name: [UInt8],
        lastDelivered: RedisStreamID,
        entriesRead: Int64
    ) throws(RedisError) -> RedisStreamGroup? {
        if try streamGroup(entry, name) != nil { return nil }
        let group = RedisStreamGroup(
            name: name,
            id: entry.metadata.stream.nextGroup,
            lastDelivered: lastDelivered,
            entriesRead: entriesRead,
            pending: 0,
            consumers: 0
        )
        entry.metadata.stream.nextGroup += 1
        entry.metadata.stream.groups += 1
        try storeStreamGroup(entry, group)
        return group
    }

    /// Deletes a group with its consumers and pending entries.
    package mutating func destroyStreamGroup(_ entry: inout Entry, _ group: RedisStreamGroup) throws(RedisError) {
        let version = entry.metadata.version
        try remove(Self.groupKey(version, group.name))
        for tag in [Self.consumerTag, Self.pendingTag, Self.consumerPendingTag] {
            var keys: [[UInt8]] = []
            try scan(.prefix(Self.groupScoped(version, tag, group.id)), keysOnly: true) { kv throws(RedisError) in
                keys.append(kv.key)
                return true
            }
            for key in keys { try remove(key) }
        }
        entry.metadata.stream.groups -= 1
    }

    // MARK: Consumers

    package mutating func streamConsumer(_ entry: Entry, _ group: RedisStreamGroup, _ name: [UInt8])
        throws(RedisError) -> RedisStreamConsumer?
    {
        guard let kv = try read(Self.consumerKey(entry.metadata.version, group.id, name)), kv.value.count >= 16 else {
            return nil
        }
        return RedisStreamConsumer(
            name: name,
            seenTime: Int64(bitPattern: RedisLayout.readUInt64(kv.value, at: 0)),
            pending: RedisLayout.readUInt64(kv.value, at: 8)
        )
    }

    /// The group's consumers, by name.
    package mutating func streamConsumers(_ entry: Entry, _ group: RedisStreamGroup) throws(RedisError)
        -> [RedisStreamConsumer]
    {
        let prefix = Self.groupScoped(entry.metadata.version, Self.consumerTag, group.id)
        var found: [RedisStreamConsumer] = []
        try scan(.prefix(prefix)) { kv throws(RedisError) in
            guard kv.value.count >= 16 else { throw .storage(.storage("malformed stream consumer")) }
            found.append(
                RedisStreamConsumer(
                    name: Array(kv.key[prefix.count...]),
                    seenTime: Int64(bitPattern: RedisLayout.readUInt64(kv.value, at: 0)),
                    pending: RedisLayout.readUInt64(kv.value, at: 8)
                )
            )
            return true
        }
        return found
    }

    package mutating func storeStreamConsumer(
        _ entry: Entry,
        _ group: RedisStreamGroup,
        _ consumer: RedisStreamConsumer
    ) throws(RedisError) {
        var value: [UInt8] = []
        RedisLayout.append(UInt64(bitPattern: consumer.seenTime), to: &value)
        RedisLayout.append(consumer.pending, to: &value)
        try write(Self.consumerKey(entry.metadata.version, group.id, consumer.name), value)
    }

    /// The consumer, created (seen now) if it does not exist; `created` tells which.
    package mutating func streamConsumer(
        _ entry: Entry,
        _ group: inout RedisStreamGroup,
        creating name: [UInt8],
        now: Int64,
        refresh: Bool
    ) throws(RedisError) -> (consumer: RedisStreamConsumer, created: Bool) {
        if var consumer = try streamConsumer(entry, group, name) {
            if refresh {
                consumer.seenTime = now
                try storeStreamConsumer(entry, group, consumer)
            }
            return (consumer, false)
        }
        let consumer = RedisStreamConsumer(name: name, seenTime: now, pending: 0)
        group.consumers += 1
        try storeStreamConsumer(entry, group, consumer)
        try storeStreamGroup(entry, group)
        return (consumer, true)
    }

    /// Deletes a consumer and its pending entries; how many it had.
    package mutating func deleteStreamConsumer(
        _ entry: Entry,
        _ group: inout RedisStreamGroup,
        _ consumer: RedisStreamConsumer
    ) throws(RedisError) -> UInt64 {
        let version = entry.metadata.version
        let prefix = Self.consumerPendingPrefix(version, group.id, consumer.name)
        var keys: [[UInt8]] = []
        try scan(.prefix(prefix), keysOnly: true) { kv throws(RedisError) in
            keys.append(kv.key)
            return true
        }
        for key in keys {
            let id = RedisStreamID(decoding: key, at: key.count - 16)
            try remove(Self.pendingKey(version, group.id, id))
            try remove(key)
        }
        try remove(Self.consumerKey(version, group.id, consumer.name))
        group.pending -= UInt64(keys.count)
        group.consumers -= 1
        try storeStreamGroup(entry, group)
        return UInt64(keys.count)
    }

    // MARK: Pending entries

    private static func decodePending(_ id: RedisStreamID, _ value: [UInt8]) throws(RedisError) -> RedisStreamPending {
        guard value.count >= 16 else { throw .storage(.storage("malformed pending entry")) }
        return RedisStreamPending(
            id: id,
            consumer: Array(value[16...]),
            deliveryTime: Int64(bitPattern: RedisLayout.readUInt64(value, at: 0)),
            deliveryCount: RedisLayout.readUInt64(value, at: 8)
        )
    }

    package mutating func streamPending(_ entry: Entry, _ group: RedisStreamGroup, _ id: RedisStreamID)
        throws(RedisError) -> RedisStreamPending?
    {
        guard let kv = try read(Self.pendingKey(entry.metadata.version, group.id, id)) else { return nil }
        return try Self.decodePending(id, kv.value)
    }

    /// Pending entries from `start` to `end`, at most `count` (0: all); only `consumer`'s when given.
    package mutating func streamPendingRange(
        _ entry: Entry,
        _ group: RedisStreamGroup,
        from start: RedisStreamID,
        to end: RedisStreamID,
        count: Int,
        consumer: [UInt8]? = nil,
        reverse: Bool = false
    ) throws(RedisError) -> [RedisStreamPending] {
        guard start <= end else { return [] }
        let version = entry.metadata.version
        var found: [RedisStreamPending] = []
        if let consumer {
            let prefix = Self.consumerPendingPrefix(version, group.id, consumer)
            let endKey = end.next.map { prefix + $0.bytes } ?? KeyRange.prefixEnd(prefix)
            var ids: [RedisStreamID] = []
            try scan(KeyRange(key: prefix + start.bytes, end: endKey), keysOnly: true) { kv throws(RedisError) in
                ids.append(RedisStreamID(decoding: kv.key, at: kv.key.count - 16))
                return count == 0 || ids.count < count
            }
            for id in ids { if let pending = try streamPending(entry, group, id) { found.append(pending) } }
            return found
        }
        let prefix = Self.groupScoped(version, Self.pendingTag, group.id)
        let endKey = end.next.map { prefix + $0.bytes } ?? KeyRange.prefixEnd(prefix)
        try scan(KeyRange(key: prefix + start.bytes, end: endKey), reverse: reverse) { kv throws(RedisError) in
            found.append(try Self.decodePending(RedisStreamID(decoding: kv.key, at: prefix.count), kv.value))
            return count == 0 || found.count < count
        }
        return found
    }

    /// Records `pending` (new, or changed: another consumer, time or count). Counts follow: the group's (in
    /// `group`, stored by the caller) and the consumers' (stored here).
    package mutating func putStreamPending(
        _ entry: Entry,
        _ group: inout RedisStreamGroup,
        _ pending: RedisStreamPending,
        previous: RedisStreamPending?
    ) throws(RedisError) {
        let version = entry.metadata.version
        if let previous, previous.consumer != pending.consumer {
            try remove(Self.consumerPendingPrefix(version, group.id, previous.consumer) + previous.id.bytes)
            if var old = try streamConsumer(entry, group, previous.consumer) {
                old.pending -= 1
                try storeStreamConsumer(entry, group, old)
            }
        }
        if previous == nil { group.pending += 1 }
        if previous == nil || previous!.consumer != pending.consumer {
            try write(Self.consumerPendingPrefix(version, group.id, pending.consumer) + pending.id.bytes, [])
            if var new = try streamConsumer(entry, group, pending.consumer) {
                new.pending += 1
                try storeStreamConsumer(entry, group, new)
            }
        }
        var value: [UInt8] = []
        RedisLayout.append(UInt64(bitPattern: pending.deliveryTime), to: &value)
        RedisLayout.append(pending.deliveryCount, to: &value)
        value += pending.consumer
        try write(Self.pendingKey(version, group.id, pending.id), value)
    }

    /// Removes a pending entry (XACK, or an entry that no longer exists).
    package mutating func removeStreamPending(
        _ entry: Entry,
        _ group: inout RedisStreamGroup,
        _ pending: RedisStreamPending
    ) throws(RedisError) {
        let version = entry.metadata.version
        try remove(Self.pendingKey(version, group.id, pending.id))
        try remove(Self.consumerPendingPrefix(version, group.id, pending.consumer) + pending.id.bytes)
        group.pending -= 1
        if var consumer = try streamConsumer(entry, group, pending.consumer) {
            consumer.pending -= 1
            try storeStreamConsumer(entry, group, consumer)
        }
    }
}
