/// Streams in Redis's RDB encoding (`RDB_TYPE_STREAM_LISTPACKS_2`, and the older `RDB_TYPE_STREAM_LISTPACKS` for
/// RESTORE): the entries as listpack nodes delta-encoded from each node's master ID, then the stream's IDs and
/// counters, then every consumer group with its pending entries and consumers.
extension RedisDump {
    package struct Stream: Sendable, Equatable {
        package struct Entry: Sendable, Equatable {
            package var id: RedisStreamID
            /// Fields and values, alternating.
            package var fields: [[UInt8]]
            /// Entries of one node are written to one listpack (Strata's record of Redis's nodes).
            package var node: UInt64

            package init(id: RedisStreamID, fields: [[UInt8]], node: UInt64) {
                self.id = id
                self.fields = fields
                self.node = node
            }
        }

        package struct Consumer: Sendable, Equatable {
            package var name: [UInt8]
            package var seenTime: Int64

            package init(name: [UInt8], seenTime: Int64) {
                self.name = name
                self.seenTime = seenTime
            }
        }

        package struct Group: Sendable, Equatable {
            package var name: [UInt8]
            package var lastDelivered: RedisStreamID
            /// -1: unknown.
            package var entriesRead: Int64
            package var pending: [RedisStreamPending]
            package var consumers: [Consumer]

            package init(
                name: [UInt8],
                lastDelivered: RedisStreamID,
                entriesRead: Int64,
                pending: [RedisStreamPending],
                consumers: [Consumer]
            ) {
                self.name = name
                self.lastDelivered = lastDelivered
                self.entriesRead = entriesRead
                self.pending = pending
                self.consumers = consumers
            }
        }

        package var entries: [Entry] = []
        package var lastID = RedisStreamID.zero
        package var firstID = RedisStreamID.zero
        package var maxDeletedID = RedisStreamID.zero
        package var entriesAdded: UInt64 = 0
        package var groups: [Group] = []

        package init() {}
    }

    // MARK: Writing

    static func appendLength(_ value: UInt64, to out: inout [UInt8]) {
        if value <= UInt64(Int.max) {
            appendLength(Int(value), to: &out)
        } else {
            out.append(0x81)
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8((value >> UInt64(shift)) & 0xFF)) }
        }
    }

    static func appendMilliseconds(_ time: Int64, to out: inout [UInt8]) {
        let bits = UInt64(bitPattern: time)
        for shift in stride(from: 0, through: 56, by: 8) { out.append(UInt8((bits >> UInt64(shift)) & 0xFF)) }
    }

    static func appendStream(_ stream: Stream, to out: inout [UInt8]) {
        out.append(19)
        var nodes: [[Stream.Entry]] = []
        for entry in stream.entries {
            if let last = nodes.last?.last, last.node == entry.node {
                nodes[nodes.count - 1].append(entry)
            } else {
                nodes.append([entry])
            }
        }
        appendLength(nodes.count, to: &out)
        for node in nodes {
            let master = node[0].id
            appendString(master.bytes, to: &out)
            appendString(streamNode(node, master: master), to: &out)
        }
        appendLength(stream.entries.count, to: &out)
        for value in [
            stream.lastID.ms, stream.lastID.seq, stream.firstID.ms, stream.firstID.seq, stream.maxDeletedID.ms,
            stream.maxDeletedID.seq, stream.entriesAdded,
        ] {
            appendLength(value, to: &out)
        }
        let groups = stream.groups.sorted { $0.name.lexicographicallyPrecedes($1.name) }
        appendLength(groups.count, to: &out)
        for group in groups {
            appendString(group.name, to: &out)
            appendLength(group.lastDelivered.ms, to: &out)
            appendLength(group.lastDelivered.seq, to: &out)
            appendLength(UInt64(bitPattern: group.entriesRead), to: &out)
            let pending = group.pending.sorted { $0.id < $1.id }
            appendLength(pending.count, to: &out)
            for entry in pending {
                out += entry.id.bytes
                appendMilliseconds(entry.deliveryTime, to: &out)
                appendLength(entry.deliveryCount, to: &out)
            }
            let consumers = group.consumers.sorted { $0.name.lexicographicallyPrecedes($1.name) }
            appendLength(consumers.count, to: &out)
            for consumer in consumers {
                appendString(consumer.name, to: &out)
                appendMilliseconds(consumer.seenTime, to: &out)
                let owned = pending.filter { $0.consumer == consumer.name }
                appendLength(owned.count, to: &out)
                for entry in owned { out += entry.id.bytes }
            }
        }
    }

    /// One node's listpack: the master entry (counts, the first entry's field names), then each entry as flags,
    /// ID deltas, values (fields too when they differ from the master's) and its element count.
    static func streamNode(_ entries: [Stream.Entry], master: RedisStreamID) -> [UInt8] {
        let masterFields = stride(from: 0, to: entries[0].fields.count, by: 2).map { entries[0].fields[$0] }
        var elements: [[UInt8]] = []
        func integer(_ value: Int64) { elements.append(Array(String(value).utf8)) }
        integer(Int64(entries.count))
        integer(0)
        integer(Int64(masterFields.count))
        elements += masterFields
        integer(0)
        for entry in entries {
            let names = stride(from: 0, to: entry.fields.count, by: 2).map { entry.fields[$0] }
            let same = names == masterFields
            integer(same ? 2 : 0)
            integer(Int64(bitPattern: entry.id.ms &- master.ms))
            integer(Int64(bitPattern: entry.id.seq &- master.seq))
            if same {
                for index in stride(from: 1, to: entry.fields.count, by: 2) { elements.append(entry.fields[index]) }
                integer(Int64(names.count + 3))
            } else {
                integer(Int64(names.count))
                elements += entry.fields
                integer(Int64(names.count * 2 + 4))
            }
        }
        return listpackEncode(elements)
    }

    /// A listpack of `elements`; those that are canonical 64-bit integers get integer encodings, as Redis's
    /// lpAppend gives them.
    static func listpackEncode(_ elements: [[UInt8]]) -> [UInt8] {
        var body: [UInt8] = []
        for element in elements {
            let start = body.count
            if let value = canonicalInteger(element) {
                switch value {
                case 0...127: body.append(UInt8(value))
                case -4096...4095:
                    let raw = value < 0 ? (1 << 13) + value : value
                    body += [UInt8(raw >> 8) | 0xC0, UInt8(raw & 0xFF)]
                case -32768...32767: appendLittle(value, width: 2, tag: 0xF1, to: &body)
                case -8_388_608...8_388_607: appendLittle(value, width: 3, tag: 0xF2, to: &body)
                case Int64(Int32.min)...Int64(Int32.max): appendLittle(value, width: 4, tag: 0xF3, to: &body)
                default: appendLittle(value, width: 8, tag: 0xF4, to: &body)
                }
            } else if element.count < 64 {
                body.append(0x80 | UInt8(element.count))
                body += element
            } else if element.count < 4096 {
                body += [0xE0 | UInt8(element.count >> 8), UInt8(element.count & 0xFF)]
                body += element
            } else {
                body.append(0xF0)
                for shift in stride(from: 0, through: 24, by: 8) { body.append(UInt8((element.count >> shift) & 0xFF)) }
                body += element
            }
            body += backLength(body.count - start)
        }
        let total = body.count + 7
        var out: [UInt8] = []
        for shift in stride(from: 0, through: 24, by: 8) { out.append(UInt8((total >> shift) & 0xFF)) }
        let count = min(elements.count, 65535)
        out += [UInt8(count & 0xFF), UInt8(count >> 8)]
        return out + body + [0xFF]
    }

    private static func appendLittle(_ value: Int64, width: Int, tag: UInt8, to out: inout [UInt8]) {
        out.append(tag)
        let bits = UInt64(bitPattern: value)
        for index in 0..<width { out.append(UInt8((bits >> UInt64(8 * index)) & 0xFF)) }
    }

    /// Redis's lpEncodeBacklen: the entry's size, most significant 7-bit group first.
    private static func backLength(_ length: Int) -> [UInt8] {
        if length <= 127 { return [UInt8(length)] }
        var groups: [UInt8] = []
        var rest = length
        let count = length < 16383 ? 2 : length < 2_097_151 ? 3 : length < 268_435_455 ? 4 : 5
        for _ in 0..<count {
            groups.insert(UInt8(rest & 127), at: 0)
            rest >>= 7
        }
        for index in 1..<groups.count { groups[index] |= 128 }
        return groups
    }

    /// The value of `bytes` if it is the canonical text of a 64-bit integer (no sign on 0, no leading zeros).
    static func canonicalInteger(_ bytes: [UInt8]) -> Int64? {
        guard !bytes.isEmpty, bytes.count <= 20, let value = Int64(String(decoding: bytes, as: UTF8.self)),
            Array(String(value).utf8) == bytes
        else { return nil }
        return value
    }
}

extension RedisDump.Reader {
    /// A length that may use all 64 bits (entries-read of -1 is written as its two's complement).
    mutating func wideLength() throws(RedisDump.Failure) -> UInt64 {
        let first = try byte()
        switch first >> 6 {
        case 0: return UInt64(first & 0x3F)
        case 1: return UInt64(first & 0x3F) << 8 | UInt64(try byte())
        case 2:
            let width = first == 0x80 ? 4 : first == 0x81 ? 8 : 0
            guard width > 0 else { throw .badFormat }
            var value: UInt64 = 0
            for byte in try take(width) { value = value << 8 | UInt64(byte) }
            return value
        default: throw .badFormat
        }
    }

    mutating func milliseconds() throws(RedisDump.Failure) -> Int64 {
        var bits: UInt64 = 0
        for (index, byte) in try take(8).enumerated() { bits |= UInt64(byte) << UInt64(8 * index) }
        return Int64(bitPattern: bits)
    }

    mutating func rawID() throws(RedisDump.Failure) -> RedisStreamID {
        let bytes = Array(try take(16))
        return RedisStreamID(decoding: bytes, at: 0)
    }

    /// A stream (`current`: the 7.0 encoding with first ID, tombstone ID, entries added and groups' read counts).
    mutating func stream(current: Bool) throws(RedisDump.Failure) -> RedisDump.Stream {
        var stream = RedisDump.Stream()
        let nodes = try count()
        var node: UInt64 = 0
        for _ in 0..<nodes {
            let key = try string()
            guard key.count == 16 else { throw .badFormat }
            let master = RedisStreamID(decoding: key, at: 0)
            node += 1
            let entries = try RedisDump.streamEntries(RedisDump.listpack(try string()), master: master, node: node)
            if let previous = stream.entries.last, let first = entries.first, first.id <= previous.id {
                throw .badFormat
            }
            stream.entries += entries
        }
        let length = try wideLength()
        guard length == UInt64(stream.entries.count) else { throw .badFormat }
        stream.lastID = RedisStreamID(ms: try wideLength(), seq: try wideLength())
        if let last = stream.entries.last, last.id > stream.lastID { throw .badFormat }
        if current {
            stream.firstID = RedisStreamID(ms: try wideLength(), seq: try wideLength())
            stream.maxDeletedID = RedisStreamID(ms: try wideLength(), seq: try wideLength())
            stream.entriesAdded = try wideLength()
        } else {
            stream.firstID = stream.entries.first?.id ?? .zero
            stream.entriesAdded = length
        }
        let groups = try count()
        for _ in 0..<groups {
            let name = try string()
            guard !stream.groups.contains(where: { $0.name == name }) else { throw .badFormat }
            let lastDelivered = RedisStreamID(ms: try wideLength(), seq: try wideLength())
            let entriesRead =
                current ? Int64(bitPattern: try wideLength()) : RedisDump.estimatedEntriesRead(stream, lastDelivered)
            var pending: [RedisStreamPending] = []
            var seen = Set<RedisStreamID>()
            for _ in 0..<(try count()) {
                let id = try rawID()
                guard seen.insert(id).inserted else { throw .badFormat }
                pending.append(
                    RedisStreamPending(
                        id: id,
                        consumer: [],
                        deliveryTime: try milliseconds(),
                        deliveryCount: try wideLength()
                    )
                )
            }
            var consumers: [RedisDump.Stream.Consumer] = []
            var owned = Set<RedisStreamID>()
            for _ in 0..<(try count()) {
                let consumer = try string()
                guard !consumers.contains(where: { $0.name == consumer }) else { throw .badFormat }
                consumers.append(RedisDump.Stream.Consumer(name: consumer, seenTime: try milliseconds()))
                for _ in 0..<(try count()) {
                    let id = try rawID()
                    guard let index = pending.firstIndex(where: { $0.id == id }), owned.insert(id).inserted else {
                        throw .badFormat
                    }
                    pending[index].consumer = consumer
                }
            }
            // Every pending entry must belong to a consumer.
            guard owned.count == pending.count else { throw .badFormat }
            stream.groups.append(
                RedisDump.Stream.Group(
                    name: name,
                    lastDelivered: lastDelivered,
                    entriesRead: entriesRead,
                    pending: pending,
                    consumers: consumers
                )
            )
        }
        return stream
    }
}

extension RedisDump {
    /// The live entries of one node's listpack (deleted ones are skipped).
    static func streamEntries(_ elements: [[UInt8]], master: RedisStreamID, node: UInt64) throws(Failure)
        -> [Stream.Entry]
    {
        var index = 0
        func integer() throws(Failure) -> Int64 {
            guard index < elements.count, let value = Int64(String(decoding: elements[index], as: UTF8.self)) else {
                throw .badFormat
            }
            index += 1
            return value
        }
        func element() throws(Failure) -> [UInt8] {
            guard index < elements.count else { throw .badFormat }
            defer { index += 1 }
            return elements[index]
        }
        let live = try integer()
        let deleted = try integer()
        let fieldCount = try integer()
        guard live >= 0, deleted >= 0, fieldCount >= 0, fieldCount < Int64(elements.count) else { throw .badFormat }
        let masterFields = try (0..<Int(fieldCount)).map { _ throws(Failure) in try element() }
        guard try integer() == 0 else { throw .badFormat }
        var entries: [Stream.Entry] = []
        var removed: Int64 = 0
        while index < elements.count {
            let flags = try integer()
            let id = RedisStreamID(
                ms: master.ms &+ UInt64(bitPattern: try integer()),
                seq: master.seq &+ UInt64(bitPattern: try integer())
            )
            var fields: [[UInt8]] = []
            if flags & 2 != 0 {
                for name in masterFields {
                    fields.append(name)
                    fields.append(try element())
                }
            } else {
                let count = try integer()
                guard count >= 0, count <= Int64(elements.count) else { throw .badFormat }
                for _ in 0..<(count * 2) { fields.append(try element()) }
            }
            _ = try integer()  // the entry's element count
            if flags & 1 != 0 {
                removed += 1
                continue
            }
            if let last = entries.last, id <= last.id { throw .badFormat }
            entries.append(Stream.Entry(id: id, fields: fields, node: node))
        }
        guard Int64(entries.count) == live, removed == deleted else { throw .badFormat }
        return entries
    }

    /// Redis's streamEstimateDistanceFromFirstEverEntry, for groups of payloads older than 7.0.
    static func estimatedEntriesRead(_ stream: Stream, _ id: RedisStreamID) -> Int64 {
        let added = Int64(bitPattern: stream.entriesAdded)
        let length = Int64(stream.entries.count)
        if added == 0 { return 0 }
        if length == 0 && id <= stream.lastID { return added }
        if id == stream.lastID { return added }
        if id > stream.lastID { return -1 }
        if stream.maxDeletedID.isZero || stream.maxDeletedID < stream.firstID {
            if id < stream.firstID { return added - length }
            if id == stream.firstID { return added - length + 1 }
        }
        return -1
    }
}
