internal import StrataRedisStore

extension RedisCommands {
    /// XADD, XRANGE, XREVRANGE, XLEN, XDEL, XTRIM, XREAD, XSETID and consumer groups (XGROUP, XREADGROUP, XACK,
    /// XPENDING, XCLAIM, XAUTOCLAIM, XINFO).
    static let streams: [(String, RedisCommand.Access, RedisCommandTable.Handler)] = [
        ("xadd", .write, { c throws(RedisError) in try xadd(&c) }),
        ("xrange", .read, { c throws(RedisError) in try xrange(&c, reverse: false) }),
        ("xrevrange", .read, { c throws(RedisError) in try xrange(&c, reverse: true) }),
        (
            "xlen", .read,
            { c throws(RedisError) in .integer(Int(try c.data.lookup(c.db, c[1], as: .stream)?.metadata.size ?? 0)) }
        ),
        ("xdel", .write, { c throws(RedisError) in try xdel(&c) }),
        ("xtrim", .write, { c throws(RedisError) in try xtrim(&c) }),
        ("xread", .read, { c throws(RedisError) in try xread(&c, group: false) }),
        ("xreadgroup", .write, { c throws(RedisError) in try xread(&c, group: true) }),
        ("xsetid", .write, { c throws(RedisError) in try xsetid(&c) }),
        ("xgroup|create", .write, { c throws(RedisError) in try xgroup(&c) }),
        ("xgroup|setid", .write, { c throws(RedisError) in try xgroup(&c) }),
        ("xgroup|destroy", .write, { c throws(RedisError) in try xgroup(&c) }),
        ("xgroup|createconsumer", .write, { c throws(RedisError) in try xgroup(&c) }),
        ("xgroup|delconsumer", .write, { c throws(RedisError) in try xgroup(&c) }),
        (
            "xgroup|help", .control,
            { _ throws(RedisError) in
                help(
                    "XGROUP",
                    [
                        "CREATE <key> <groupname> <id|$> [option]",
                        "    Create a new consumer group. Options are:", "    * MKSTREAM",
                        "      Create the empty stream if it does not exist.", "    * ENTRIESREAD entries_read",
                        "      Set the group's entries_read counter (internal use).",
                        "CREATECONSUMER <key> <groupname> <consumer>",
                        "    Create a new consumer in the specified group.",
                        "DELCONSUMER <key> <groupname> <consumer>", "    Remove the specified consumer.",
                        "DESTROY <key> <groupname>", "    Remove the specified group.",
                        "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
                        "    Set the current group ID and entries_read counter.",
                    ]
                )
            }
        ),
        ("xack", .write, { c throws(RedisError) in try xack(&c) }),
        ("xpending", .read, { c throws(RedisError) in try xpending(&c) }),
        ("xclaim", .write, { c throws(RedisError) in try xclaim(&c) }),
        ("xautoclaim", .write, { c throws(RedisError) in try xautoclaim(&c) }),
        ("xinfo|stream", .read, { c throws(RedisError) in try xinfoStream(&c) }),
        ("xinfo|groups", .read, { c throws(RedisError) in try xinfoGroups(&c) }),
        ("xinfo|consumers", .read, { c throws(RedisError) in try xinfoConsumers(&c) }),
        (
            "xinfo|help", .control,
            { _ throws(RedisError) in
                help(
                    "XINFO",
                    [
                        "CONSUMERS <key> <groupname>", "    Show consumers of <groupname>.",
                        "GROUPS <key>", "    Show the stream consumer groups.",
                        "STREAM <key> [FULL [COUNT <count>]", "    Show information about the stream.",
                    ]
                )
            }
        ),
    ]

    // MARK: IDs

    static let invalidID = RedisError.err("Invalid stream ID specified as stream command argument")

    /// Redis's `string2ull`: decimal digits, or what strtoull accepts whole (never a negative number).
    static func unsignedNumber(_ bytes: ArraySlice<UInt8>) -> UInt64? {
        var digits = bytes[...]
        while let first = digits.first, first == 32 || (first >= 9 && first <= 13) { digits = digits.dropFirst() }
        if digits.first == UInt8(ascii: "+") {
            digits = digits.dropFirst()
        } else if digits.first == UInt8(ascii: "-") {
            // strtoull negates: only "-0" forms stay in range.
            digits = digits.dropFirst()
            guard !digits.isEmpty, digits.allSatisfy({ $0 == UInt8(ascii: "0") }) else { return nil }
            return 0
        }
        guard !digits.isEmpty else { return nil }
        var value: UInt64 = 0
        for byte in digits {
            guard byte >= 48 && byte <= 57 else { return nil }
            let (times, overflow) = value.multipliedReportingOverflow(by: 10)
            let (sum, carry) = times.addingReportingOverflow(UInt64(byte - 48))
            guard !overflow && !carry else { return nil }
            value = sum
        }
        return value
    }

    /// `ms-seq`, `ms` (seq: `missing`), `-` and `+` (unless `strict`), `ms-*` (when `autoSequence`: seq not given).
    static func streamID(
        _ bytes: [UInt8],
        missing: UInt64 = 0,
        strict: Bool = false,
        autoSequence: Bool = false
    ) throws(RedisError) -> (id: RedisStreamID, sequenceGiven: Bool) {
        guard bytes.count <= 127 else { throw invalidID }
        if bytes == [UInt8(ascii: "-")] || bytes == [UInt8(ascii: "+")] {
            if strict { throw invalidID }
            return (bytes[0] == UInt8(ascii: "-") ? .zero : .max, true)
        }
        // (C string semantics: a NUL ends the argument)
        let text = bytes.prefix { $0 != 0 }
        if let dash = text.firstIndex(of: UInt8(ascii: "-")) {
            guard let ms = unsignedNumber(text[..<dash]) else { throw invalidID }
            let rest = text[(dash + 1)...]
            if autoSequence && rest.elementsEqual([UInt8(ascii: "*")]) { return (RedisStreamID(ms: ms, seq: 0), false) }
            guard let seq = unsignedNumber(rest) else { throw invalidID }
            return (RedisStreamID(ms: ms, seq: seq), true)
        }
        guard let ms = unsignedNumber(text) else { throw invalidID }
        return (RedisStreamID(ms: ms, seq: missing), true)
    }

    /// A range bound: `(` excludes it.
    static func intervalID(_ bytes: [UInt8], missing: UInt64, start: Bool) throws(RedisError) -> RedisStreamID {
        if bytes.count > 1 && bytes[0] == UInt8(ascii: "(") {
            let id = try streamID(Array(bytes.dropFirst()), missing: missing, strict: true).id
            if start {
                guard let next = id.next else { throw .err("invalid start ID for the interval") }
                return next
            }
            guard let previous = id.previous else { throw .err("invalid end ID for the interval") }
            return previous
        }
        return try streamID(bytes, missing: missing).id
    }

    static func reply(_ entry: RedisStreamEntry) -> RESPValue {
        .array([.bulk(entry.id.description), .bulks(entry.fields)])
    }

    static func reply(_ id: RedisStreamID) -> RESPValue { .bulk(id.description) }

    // MARK: XADD, XTRIM

    struct TrimArguments {
        var strategy: RedisStreamTrim? = nil
        var approximate = false
        var limit: Int64 = 0
        var noMakeStream = false
        var id: RedisStreamID? = nil
        var sequenceGiven = true
        /// XADD: where the ID is.
        var idIndex = 0
    }

    /// XADD's and XTRIM's options, as Redis parses them.
    static func trimArguments(_ c: RedisInvocation, xadd: Bool) throws(RedisError) -> TrimArguments {
        var arguments = TrimArguments()
        var limitGiven = false
        var index = 2
        while index < c.count {
            let more = c.count - 1 - index
            let option = c.option(index)
            if xadd && c[index] == [UInt8(ascii: "*")] {
                break
            } else if (option == "MAXLEN" || option == "MINID") && more > 0 {
                if arguments.strategy != nil {
                    throw .err("syntax error, MAXLEN and MINID options at the same time are not compatible")
                }
                arguments.approximate = false
                if more >= 2 && c[index + 1] == [UInt8(ascii: "~")] {
                    arguments.approximate = true
                    index += 1
                } else if more >= 2 && c[index + 1] == [UInt8(ascii: "=")] {
                    index += 1
                }
                if option == "MAXLEN" {
                    let length = try c.integer(index + 1)
                    if length < 0 { throw .err("The MAXLEN argument must be >= 0.") }
                    arguments.strategy = .maxLength(length)
                } else {
                    arguments.strategy = .minID(try streamID(c[index + 1], strict: true).id)
                }
                index += 2
            } else if option == "LIMIT" && more > 0 {
                arguments.limit = try c.integer(index + 1)
                if arguments.limit < 0 { throw .err("The LIMIT argument must be >= 0.") }
                limitGiven = true
                index += 2
            } else if xadd && option == "NOMKSTREAM" {
                arguments.noMakeStream = true
                index += 1
            } else if xadd {
                let (id, sequenceGiven) = try streamID(c[index], strict: true, autoSequence: true)
                arguments.id = id
                arguments.sequenceGiven = sequenceGiven
                break
            } else {
                throw .syntax
            }
        }
        arguments.idIndex = index
        if arguments.limit != 0 && arguments.strategy == nil {
            throw .err("syntax error, LIMIT cannot be used without specifying a trimming strategy")
        }
        if !xadd && arguments.strategy == nil {
            throw .err("syntax error, XTRIM must be called with a trimming strategy")
        }
        if limitGiven {
            if !arguments.approximate {
                throw .err("syntax error, LIMIT cannot be used without the special ~ option")
            }
        } else if arguments.approximate {
            let nodeEntries = Int64(c.server.config.effective.streamNodeMaxEntries)
            arguments.limit = min(max(nodeEntries > 0 ? 100 * nodeEntries : 10_000, 1), 1_000_000)
        }
        return arguments
    }

    private static func xadd(_ c: inout RedisInvocation) throws(RedisError) -> RESPValue {
        let arguments = try trimArguments(c, xadd: true)
        let fieldsStart = arguments.idIndex + 1
        guard c.count - fieldsStart >= 2, (c.count - fieldsStart) % 2 == 0 else {
            throw .err("wrong number of arguments for 'xadd' command")
        }
        if let id = arguments.id, arguments.sequenceGiven, id.isZero {
            throw .err("The ID specified in XADD must be greater than 0-0")
        }
        var entry: RedisData.Entry
        if let existing = try c.data.lookup(c.db, c[1], as: .stream) {
            entry = existing
        } else {
            if arguments.noMakeStream { return .null }
            entry = c.data.newStream()
        }
        let state = entry.metadata.stream
        if state.lastID == .max {
            throw .err("The stream has exhausted the last possible ID, unable to add more items")
        }
        let id: RedisStreamID
        if let given = arguments.id {
            if arguments.sequenceGiven {
                id = given
            } else if given.ms == state.lastID.ms {
                guard state.lastID.seq < .max else { throw Self.idTooSmall }
                id = RedisStreamID(ms: given.ms, seq: state.lastID.seq + 1)
            } else {
                id = given
            }
        } else {
            let now = UInt64(max(0, c.data.now))
            id = now > state.lastID.ms ? RedisStreamID(ms: now, seq: 0) : (state.lastID.next ?? .zero)
        }
        guard id > state.lastID else { throw Self.idTooSmall }
        let effective = c.server.config.effective
        try c.data.streamAppend(
            &entry,
            id: id,
            fields: c.arguments[fieldsStart...],
            nodeMaxEntries: effective.streamNodeMaxEntries,
            nodeMaxBytes: effective.streamNodeMaxBytes
        )
        c.notify("xadd", .stream, c[1])
        if let strategy = arguments.strategy {
            let trimmed = try c.data.streamTrim(
                &entry,
                strategy,
                approximate: arguments.approximate,
                limit: arguments.limit
            )
            if trimmed > 0 { c.notify("xtrim", .stream, c[1]) }
        }
        try c.data.store(c.db, c[1], entry.metadata)
        return reply(id)
    }

    static let idTooSmall = RedisError.err(
        "The ID specified in XADD is equal or smaller than the target stream top item"
    )

    private static func xtrim(_ c: inout RedisInvocation) throws(RedisError) -> RESPValue {
        let arguments = try trimArguments(c, xadd: false)
        guard var entry = try c.data.lookup(c.db, c[1], as: .stream) else { return .integer(0) }
        let before = entry.metadata.stream
        let trimmed = try c.data.streamTrim(
            &entry,
            arguments.strategy!,
            approximate: arguments.approximate,
            limit: arguments.limit
        )
        // (A trim of nothing may still have given an old stream its node records.)
        if trimmed > 0 || entry.metadata.stream != before { try c.data.store(c.db, c[1], entry.metadata) }
        if trimmed > 0 { c.notify("xtrim", .stream, c[1]) }
        return .integer(Int(trimmed))
    }

    private static func xdel(_ c: inout RedisInvocation) throws(RedisError) -> RESPValue {
        guard var entry = try c.data.lookup(c.db, c[1], as: .stream) else { return .integer(0) }
        var ids: [RedisStreamID] = []
        for index in 2..<c.count { ids.append(try streamID(c[index], strict: true).id) }
        var deleted = 0
        var firstGone = false
        for id in ids where try c.data.streamDelete(&entry, id) {
            if id == entry.metadata.stream.firstID { firstGone = true }
            if id > entry.metadata.stream.maxDeletedID { entry.metadata.stream.maxDeletedID = id }
            deleted += 1
        }
        if deleted > 0 {
            if entry.metadata.size == 0 {
                entry.metadata.stream.firstID = .zero
            } else if firstGone, let first = try c.data.streamEdge(entry, last: false) {
                entry.metadata.stream.firstID = first.id
            }
            try c.data.store(c.db, c[1], entry.metadata)
            c.notify("xdel", .stream, c[1])
        }
        return .integer(deleted)
    }

    private static func xsetid(_ c: inout RedisInvocation) throws(RedisError) -> RESPValue {
        let id = try streamID(c[2], strict: true).id
        var entriesAdded: Int64 = -1
        var maxDeleted = RedisStreamID.zero
        var index = 3
        while index < c.count {
            let more = c.count - 1 - index
            switch c.option(index) {
            case "ENTRIESADDED" where more > 0:
                entriesAdded = try c.integer(index + 1)
                if entriesAdded < 0 { throw .err("entries_added must be positive") }
            case "MAXDELETEDID" where more > 0:
                maxDeleted = try streamID(c[index + 1], strict: true).id
                if id < maxDeleted {
                    throw .err("The ID specified in XSETID is smaller than the provided max_deleted_entry_id")
                }
            default:
                throw .syntax
            }
            index += 2
        }
        guard var entry = try c.data.lookup(c.db, c[1], as: .stream) else { throw .noSuchKey }
        if entry.metadata.size > 0 {
            if let last = try c.data.streamEdge(entry, last: true), id < last.id {
                throw .err("The ID specified in XSETID is smaller than the target stream top item")
            }
            if entriesAdded != -1 && entry.metadata.size > entriesAdded {
                throw .err("The entries_added specified in XSETID is smaller than the target stream length")
            }
        }
        entry.metadata.stream.lastID = id
        if entriesAdded != -1 { entry.metadata.stream.entriesAdded = UInt64(entriesAdded) }
        if !maxDeleted.isZero { entry.metadata.stream.maxDeletedID = maxDeleted }
        try c.data.store(c.db, c[1], entry.metadata)
        c.notify("xsetid", .stream, c[1])
        return .ok
    }

    // MARK: Reading

    private static func xrange(_ c: inout RedisInvocation, reverse: Bool) throws(RedisError) -> RESPValue {
        let start = try intervalID(reverse ? c[3] : c[2], missing: 0, start: true)
        let end = try intervalID(reverse ? c[2] : c[3], missing: .max, start: false)
        var count: Int64 = -1
        var index = 4
        while index < c.count {
            guard c.option(index) == "COUNT", index + 1 < c.count else { throw .syntax }
            count = max(0, try c.integer(index + 1))
            index += 2
        }
        guard let entry = try c.data.lookup(c.db, c[1], as: .stream) else { return .array([]) }
        if count == 0 { return .nullArray }
        let entries = try c.data.streamRange(
            entry,
            from: start,
            to: end,
            reverse: reverse,
            count: count < 0 ? 0 : Int(clamping: count)
        )
        return .array(entries.map(reply))
    }

    /// XREAD and XREADGROUP.
    private static func xread(_ c: inout RedisInvocation, group readGroup: Bool) throws(RedisError) -> RESPValue {
        let name = readGroup ? "XREADGROUP" : "XREAD"
        var timeout: Int64 = -1
        var count: Int64 = 0
        var streamsIndex = 0
        var groupName: [UInt8]? = nil
        var consumerName: [UInt8] = []
        var noAck = false
        var index = 1
        while index < c.count {
            let more = c.count - index - 1
            let option = c.option(index)
            if option == "BLOCK" && more > 0 {
                if c.session.isScript {
                    throw .err("\(RedisText.cString(c[0])) command is not allowed with BLOCK option from scripts")
                }
                index += 1
                guard let milliseconds = RedisNumber.parseInteger(c[index]) else {
                    throw .err("timeout is not an integer or out of range")
                }
                if milliseconds < 0 { throw .err("timeout is negative") }
                timeout = milliseconds
            } else if option == "COUNT" && more > 0 {
                index += 1
                count = max(0, try c.integer(index))
            } else if option == "STREAMS" && more > 0 {
                streamsIndex = index + 1
                if (c.count - streamsIndex) % 2 != 0 {
                    throw .err(
                        "Unbalanced \(name) list of streams: for each stream key an ID or '$' must be specified."
                    )
                }
                break
            } else if option == "GROUP" && more >= 2 {
                guard readGroup else {
                    throw .err("The GROUP option is only supported by XREADGROUP. You called XREAD instead.")
                }
                groupName = c[index + 1]
                consumerName = c[index + 2]
                index += 2
            } else if option == "NOACK" {
                guard readGroup else {
                    throw .err("The NOACK option is only supported by XREADGROUP. You called XREAD instead.")
                }
                noAck = true
            } else {
                throw .syntax
            }
            index += 1
        }
        guard streamsIndex > 0 else { throw .syntax }
        if readGroup && groupName == nil { throw .err("Missing GROUP option for XREADGROUP") }
        let streams = (c.count - streamsIndex) / 2
        let keys = Array(c.arguments[streamsIndex..<(streamsIndex + streams)])
        // The ID each stream's entries must follow; nil: ">" (the group's next).
        var after: [RedisStreamID?] = []
        var groups: [RedisStreamGroup?] = []
        for (offset, key) in keys.enumerated() {
            let argument = c[streamsIndex + streams + offset]
            let entry: RedisData.Entry?
            do throws(RedisError) {
                entry = try c.data.lookup(c.db, key, as: .stream)
            } catch .wrongType where readGroup && c.retryingBlocked {
                throw .reply("UNBLOCKED the stream key no longer exists")
            }
            if readGroup && c.retryingBlocked && entry == nil {
                throw .reply("UNBLOCKED the stream key no longer exists")
            }
            if let groupName {
                guard let entry, let group = try c.data.streamGroup(entry, groupName) else {
                    throw .reply(
                        "NOGROUP No such key '\(RedisText.cString(key))' or consumer group '\(RedisText.cString(groupName))' "
                            + "in XREADGROUP with GROUP option"
                    )
                }
                groups.append(group)
            } else {
                groups.append(nil)
            }
            if argument == [UInt8(ascii: "$")] {
                if readGroup {
                    throw .err(
                        "The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this "
                            + "consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would "
                            + "just return an empty result set."
                    )
                }
                after.append(entry?.metadata.stream.lastID ?? .zero)
            } else if argument == [UInt8(ascii: ">")] {
                guard readGroup else {
                    throw .err(
                        "The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> "
                            + "option."
                    )
                }
                after.append(nil)
            } else {
                after.append(try streamID(argument, strict: true).id)
            }
        }
        var served: [(key: [UInt8], entries: [RESPValue])] = []
        for (offset, key) in keys.enumerated() {
            guard let entry = try c.data.lookup(c.db, key, as: .stream) else { continue }
            if var group = groups[offset] {
                if let history = after[offset] {
                    // The consumer's own pending entries after `history`.
                    let (consumer, created) = try c.data.streamConsumer(
                        entry,
                        &group,
                        creating: consumerName,
                        now: c.data.now,
                        refresh: true
                    )
                    if created { c.notify("xgroup-createconsumer", .stream, key) }
                    var items: [RESPValue] = []
                    if let start = history.next {
                        for var pending in try c.data.streamPendingRange(
                            entry,
                            group,
                            from: start,
                            to: .max,
                            count: Int(clamping: count),
                            consumer: consumer.name
                        ) {
                            if let found = try c.data.streamEntry(entry, pending.id) {
                                items.append(reply(found))
                                let previous = pending
                                pending.deliveryTime = c.data.now
                                pending.deliveryCount += 1
                                try c.data.putStreamPending(entry, &group, pending, previous: previous)
                            } else {
                                items.append(.array([reply(pending.id), .nullArray]))
                            }
                        }
                    }
                    try c.data.storeStreamGroup(entry, group)
                    served.append((key, items))
                    continue
                }
                guard entry.metadata.size > 0, let last = try c.data.streamEdge(entry, last: true),
                    last.id > group.lastDelivered, let start = group.lastDelivered.next
                else { continue }
                let (consumer, created) = try c.data.streamConsumer(
                    entry,
                    &group,
                    creating: consumerName,
                    now: c.data.now,
                    refresh: true
                )
                if created { c.notify("xgroup-createconsumer", .stream, key) }
                let entries = try c.data.streamRange(entry, from: start, to: .max, count: Int(clamping: count))
                for item in entries {
                    if item.id > group.lastDelivered {
                        advance(&group, to: item.id, in: entry.metadata)
                    }
                    if !noAck {
                        let previous = try c.data.streamPending(entry, group, item.id)
                        let pending = RedisStreamPending(
                            id: item.id,
                            consumer: consumer.name,
                            deliveryTime: c.data.now,
                            deliveryCount: 1
                        )
                        try c.data.putStreamPending(entry, &group, pending, previous: previous)
                    }
                }
                try c.data.storeStreamGroup(entry, group)
                // (the metadata is rewritten so WATCH sees the group change)
                try c.data.store(c.db, key, entry.metadata)
                served.append((key, entries.map(reply)))
            } else {
                guard entry.metadata.size > 0, let last = try c.data.streamEdge(entry, last: true),
                    let threshold = after[offset], last.id > threshold, let start = threshold.next
                else { continue }
                let entries = try c.data.streamRange(entry, from: start, to: .max, count: Int(clamping: count))
                served.append((key, entries.map(reply)))
            }
        }
        if !served.isEmpty {
            if c.session.resp == 3 { return .map(served.flatMap { [.bulk($0.key), .array($0.entries)] }) }
            return .array(served.map { .array([.bulk($0.key), .array($0.entries)]) })
        }
        if timeout >= 0 {
            if c.inTransaction { return .nullArray }
            // Blocked: served later by running again, with `$` resolved now and a bounded COUNT as Redis does.
            var again: [[UInt8]] = [Array(name.utf8)]
            if let groupName { again += [Array("GROUP".utf8), groupName, consumerName] }
            again += [Array("COUNT".utf8), Array("\(count > 0 ? count : 1000)".utf8)]
            // (BLOCK stays: a run that finds nothing again keeps the client waiting)
            again += [Array("BLOCK".utf8), Array("\(timeout)".utf8)]
            if noAck { again.append(Array("NOACK".utf8)) }
            again.append(Array("STREAMS".utf8))
            again += keys
            again += after.map { $0.map { Array($0.description.utf8) } ?? [UInt8(ascii: ">")] }
            c.block = RedisBlockRequest(keys: keys, timeout: Double(timeout) / 1000, arguments: again)
        }
        return .nullArray
    }

    /// Moves a group's last-delivered ID to `id`, keeping its entries-read counter as Redis does.
    static func advance(_ group: inout RedisStreamGroup, to id: RedisStreamID, in metadata: RedisMetadata) {
        let state = metadata.stream
        if group.entriesRead != -1 && !hasTombstones(metadata, from: id) {
            group.entriesRead += 1
        } else if state.entriesAdded > 0 {
            group.entriesRead = estimatedEntriesRead(metadata, id)
        }
        group.lastDelivered = id
    }

    /// Whether an entry deleted by XDEL lies at or after `start` (Redis's `streamRangeHasTombstones`).
    static func hasTombstones(_ metadata: RedisMetadata, from start: RedisStreamID) -> Bool {
        let state = metadata.stream
        if metadata.size == 0 || state.maxDeletedID.isZero { return false }
        if state.firstID > state.maxDeletedID { return false }
        return start <= state.maxDeletedID
    }

    /// How many entries were added up to `id`, when that can be known (-1 otherwise).
    static func estimatedEntriesRead(_ metadata: RedisMetadata, _ id: RedisStreamID) -> Int64 {
        let state = metadata.stream
        let added = Int64(state.entriesAdded)
        if added == 0 { return 0 }
        if metadata.size == 0 && id <= state.lastID { return added }
        if id == state.lastID { return added }
        if id > state.lastID { return -1 }
        if state.maxDeletedID.isZero || state.maxDeletedID < state.firstID {
            if id < state.firstID { return added - metadata.size }
            if id == state.firstID { return added - metadata.size + 1 }
        }
        return -1
    }

    /// A group's lag (nil when it cannot be known).
    static func lag(_ group: RedisStreamGroup, _ metadata: RedisMetadata) -> Int64? {
        let added = Int64(metadata.stream.entriesAdded)
        if added == 0 { return 0 }
        if group.entriesRead != -1 && !hasTombstones(metadata, from: group.lastDelivered) {
            return added - group.entriesRead
        }
        let read = estimatedEntriesRead(metadata, group.lastDelivered)
        return read == -1 ? nil : added - read
    }

    // MARK: Groups

    private static func noGroup(_ key: [UInt8], _ group: [UInt8]) -> RedisError {
        .reply("NOGROUP No such key '\(RedisText.cString(key))' or consumer group '\(RedisText.cString(group))'")
    }

    private static func xgroup(_ c: inout RedisInvocation) throws(RedisError) -> RESPValue {
        let subcommand = c.option(1)
        var makeStream = false
        var entriesRead: Int64 = -1
        var index = 5
        while index < c.count {
            if subcommand == "CREATE" && c.option(index) == "MKSTREAM" {
                makeStream = true
                index += 1
            } else if (subcommand == "CREATE" || subcommand == "SETID") && c.option(index) == "ENTRIESREAD"
                && index + 1 < c.count
            {
                entriesRead = try c.integer(index + 1)
                if entriesRead < 0 && entriesRead != -1 {
                    throw .err("value for ENTRIESREAD must be positive or -1")
                }
                index += 2
            } else {
                throw subcommandSyntax(c)
            }
        }
        let key = c[2]
        let name = c[3]
        var entry = try c.data.lookup(c.db, key, as: .stream)
        var group: RedisStreamGroup? = nil
        if !makeStream {
            guard let existing = entry else {
                throw .err(
                    "The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the "
                        + "MKSTREAM option to create an empty stream automatically."
                )
            }
            group = try c.data.streamGroup(existing, name)
            if group == nil && ["SETID", "CREATECONSUMER", "DELCONSUMER"].contains(subcommand) {
                throw .reply(
                    "NOGROUP No such consumer group '\(RedisText.cString(name))' for key name '\(RedisText.cString(key))'"
                )
            }
        }
        switch subcommand {
        case "CREATE" where c.count >= 5 && c.count <= 8:
            let id: RedisStreamID
            if c[4] == [UInt8(ascii: "$")] {
                id = entry?.metadata.stream.lastID ?? .zero
            } else {
                id = try streamID(c[4], strict: true).id
            }
            var stream = entry ?? c.data.newStream()
            guard try c.data.createStreamGroup(&stream, name: name, lastDelivered: id, entriesRead: entriesRead) != nil
            else { throw .reply("BUSYGROUP Consumer Group name already exists") }
            try c.data.store(c.db, key, stream.metadata)
            c.notify("xgroup-create", .stream, key)
            return .ok
        case "SETID" where c.count == 5 || c.count == 7:
            let id: RedisStreamID
            if c[4] == [UInt8(ascii: "$")] {
                id = entry!.metadata.stream.lastID
            } else {
                id = try streamID(c[4]).id
            }
            group!.lastDelivered = id
            group!.entriesRead = entriesRead
            try c.data.storeStreamGroup(entry!, group!)
            try c.data.store(c.db, key, entry!.metadata)
            c.notify("xgroup-setid", .stream, key)
            return .ok
        case "DESTROY" where c.count == 4:
            guard let group else { return .integer(0) }
            try c.data.destroyStreamGroup(&entry!, group)
            try c.data.store(c.db, key, entry!.metadata)
            c.notify("xgroup-destroy", .stream, key)
            return .integer(1)
        case "CREATECONSUMER" where c.count == 5:
            let (_, created) = try c.data.streamConsumer(
                entry!,
                &group!,
                creating: c[4],
                now: c.data.now,
                refresh: false
            )
            if created {
                try c.data.store(c.db, key, entry!.metadata)
                c.notify("xgroup-createconsumer", .stream, key)
            }
            return .integer(created ? 1 : 0)
        case "DELCONSUMER" where c.count == 5:
            guard let consumer = try c.data.streamConsumer(entry!, group!, c[4]) else { return .integer(0) }
            let pending = try c.data.deleteStreamConsumer(entry!, &group!, consumer)
            try c.data.store(c.db, key, entry!.metadata)
            c.notify("xgroup-delconsumer", .stream, key)
            return .integer(Int(pending))
        default:
            throw subcommandSyntax(c)
        }
    }

    private static func xack(_ c: inout RedisInvocation) throws(RedisError) -> RESPValue {
        guard let entry = try c.data.lookup(c.db, c[1], as: .stream), var group = try c.data.streamGroup(entry, c[2])
        else { return .integer(0) }
        var ids: [RedisStreamID] = []
        for index in 3..<c.count { ids.append(try streamID(c[index], strict: true).id) }
        var acknowledged = 0
        for id in ids {
            guard let pending = try c.data.streamPending(entry, group, id) else { continue }
            try c.data.removeStreamPending(entry, &group, pending)
            acknowledged += 1
        }
        if acknowledged > 0 {
            try c.data.storeStreamGroup(entry, group)
            try c.data.store(c.db, c[1], entry.metadata)
        }
        return .integer(acknowledged)
    }

    private static func xpending(_ c: inout RedisInvocation) throws(RedisError) -> RESPValue {
        let summary = c.count == 3
        guard summary || (c.count >= 6 && c.count <= 9) else { throw .syntax }
        var start = RedisStreamID.zero
        var end = RedisStreamID.max
        var count: Int64 = 0
        var minimumIdle: Int64 = 0
        var consumerName: [UInt8]? = nil
        if !summary {
            var first = 3
            if c.option(3) == "IDLE" {
                minimumIdle = try c.integer(4)
                guard c.count >= 8 else { throw .syntax }
                first += 2
            }
            count = max(0, try c.integer(first + 2))
            start = try intervalID(c[first], missing: 0, start: true)
            end = try intervalID(c[first + 1], missing: .max, start: false)
            if first + 3 < c.count { consumerName = c[first + 3] }
        }
        guard let entry = try c.data.lookup(c.db, c[1], as: .stream), let group = try c.data.streamGroup(entry, c[2])
        else { throw noGroup(c[1], c[2]) }
        if summary {
            guard group.pending > 0 else { return .array([.integer(0), .null, .null, .nullArray]) }
            let first = try c.data.streamPendingRange(entry, group, from: .zero, to: .max, count: 1).first!
            let last = try c.data.streamPendingRange(entry, group, from: .zero, to: .max, count: 1, reverse: true)
                .first!
            let consumers = try c.data.streamConsumers(entry, group).filter { $0.pending > 0 }
            return .array([
                .integer(Int64(group.pending)), reply(first.id), reply(last.id),
                .array(consumers.map { .array([.bulk($0.name), .bulk("\($0.pending)")]) }),
            ])
        }
        if let consumerName, try c.data.streamConsumer(entry, group, consumerName) == nil { return .array([]) }
        guard count > 0 else { return .array([]) }
        var replies: [RESPValue] = []
        let now = c.data.now
        var cursor: RedisStreamID? = start
        // Idle filtering may skip entries: read in pages until COUNT replies or the range ends.
        while let from = cursor, replies.count < count {
            let page = try c.data.streamPendingRange(
                entry,
                group,
                from: from,
                to: end,
                count: 512,
                consumer: consumerName
            )
            for pending in page where replies.count < count {
                let idle = now - pending.deliveryTime
                if minimumIdle > 0 && idle < minimumIdle { continue }
                replies.append(
                    .array([
                        reply(pending.id), .bulk(pending.consumer), .integer(max(0, idle)),
                        .integer(Int64(pending.deliveryCount)),
                    ])
                )
            }
            cursor = page.count == 512 ? page.last!.id.next : nil
        }
        return .array(replies)
    }

    private static func xclaim(_ c: inout RedisInvocation) throws(RedisError) -> RESPValue {
        guard let entry = try c.data.lookup(c.db, c[1], as: .stream), var group = try c.data.streamGroup(entry, c[2])
        else { throw noGroup(c[1], c[2]) }
        guard var minimumIdle = RedisNumber.parseInteger(c[4]) else {
            throw .err("Invalid min-idle-time argument for XCLAIM")
        }
        if minimumIdle < 0 { minimumIdle = 0 }
        var ids: [RedisStreamID] = []
        var index = 5
        while index < c.count, let id = try? streamID(c[index], strict: true).id {
            ids.append(id)
            index += 1
        }
        let now = c.data.now
        var deliveryTime: Int64 = -1
        var retryCount: Int64 = -1
        var force = false
        var justID = false
        var lastID = RedisStreamID.zero
        while index < c.count {
            let more = c.count - 1 - index
            switch c.option(index) {
            case "FORCE": force = true
            case "JUSTID": justID = true
            case "IDLE" where more > 0:
                index += 1
                guard let idle = RedisNumber.parseInteger(c[index]) else {
                    throw .err("Invalid IDLE option argument for XCLAIM")
                }
                deliveryTime = now - idle
            case "TIME" where more > 0:
                index += 1
                guard let time = RedisNumber.parseInteger(c[index]) else {
                    throw .err("Invalid TIME option argument for XCLAIM")
                }
                deliveryTime = time
            case "RETRYCOUNT" where more > 0:
                index += 1
                guard let retries = RedisNumber.parseInteger(c[index]) else {
                    throw .err("Invalid RETRYCOUNT option argument for XCLAIM")
                }
                retryCount = retries
            case "LASTID" where more > 0:
                index += 1
                lastID = try streamID(c[index], strict: true).id
            default:
                throw .err("Unrecognized XCLAIM option '\(RedisText.cString(c[index]))'")
            }
            index += 1
        }
        if lastID > group.lastDelivered { group.lastDelivered = lastID }
        if deliveryTime != -1 {
            if deliveryTime < 0 || deliveryTime > now { deliveryTime = now }
        } else {
            deliveryTime = now
        }
        var consumer: RedisStreamConsumer? = nil
        var replies: [RESPValue] = []
        for id in ids {
            let existing = try c.data.streamPending(entry, group, id)
            guard let found = try c.data.streamEntry(entry, id) else {
                if let existing { try c.data.removeStreamPending(entry, &group, existing) }
                continue
            }
            if existing == nil && !force { continue }
            if let existing, minimumIdle > 0, now - existing.deliveryTime < minimumIdle { continue }
            if consumer == nil {
                let (claimer, created) = try c.data.streamConsumer(
                    entry,
                    &group,
                    creating: c[3],
                    now: now,
                    refresh: true
                )
                if created { c.notify("xgroup-createconsumer", .stream, c[1]) }
                consumer = claimer
            }
            var pending =
                existing ?? RedisStreamPending(id: id, consumer: c[3], deliveryTime: now, deliveryCount: 0)
            pending.consumer = c[3]
            pending.deliveryTime = deliveryTime
            if retryCount >= 0 {
                pending.deliveryCount = UInt64(retryCount)
            } else if !justID {
                pending.deliveryCount += 1
            }
            try c.data.putStreamPending(entry, &group, pending, previous: existing)
            replies.append(justID ? reply(id) : reply(found))
        }
        try c.data.storeStreamGroup(entry, group)
        try c.data.store(c.db, c[1], entry.metadata)
        return .array(replies)
    }

    private static func xautoclaim(_ c: inout RedisInvocation) throws(RedisError) -> RESPValue {
        guard var minimumIdle = RedisNumber.parseInteger(c[4]) else {
            throw .err("Invalid min-idle-time argument for XAUTOCLAIM")
        }
        if minimumIdle < 0 { minimumIdle = 0 }
        let start = try intervalID(c[5], missing: 0, start: true)
        var count: Int64 = 100
        var justID = false
        var index = 6
        while index < c.count {
            let more = c.count - 1 - index
            switch c.option(index) {
            case "COUNT" where more > 0:
                guard let value = RedisNumber.parseInteger(c[index + 1]), value >= 1, value <= Int64.max / 16 else {
                    throw .err("COUNT must be > 0")
                }
                count = value
                index += 1
            case "JUSTID": justID = true
            default: throw .syntax
            }
            index += 1
        }
        guard let entry = try c.data.lookup(c.db, c[1], as: .stream), var group = try c.data.streamGroup(entry, c[2])
        else { throw noGroup(c[1], c[2]) }
        let now = c.data.now
        var attempts = count * 10
        var consumer: RedisStreamConsumer? = nil
        var replies: [RESPValue] = []
        var deleted: [RESPValue] = []
        var pendingEntries = PendingCursor(from: start)
        // As Redis's loop: attempts and count bound it; the cursor is the entry after the last one looked at.
        while attempts > 0 && count > 0, let pending = try pendingEntries.next(&c, entry, group) {
            attempts -= 1
            guard let found = try c.data.streamEntry(entry, pending.id) else {
                try c.data.removeStreamPending(entry, &group, pending)
                deleted.append(reply(pending.id))
                count -= 1
                continue
            }
            if minimumIdle > 0 && now - pending.deliveryTime < minimumIdle { continue }
            if consumer == nil {
                let (claimer, created) = try c.data.streamConsumer(
                    entry,
                    &group,
                    creating: c[3],
                    now: now,
                    refresh: true
                )
                if created { c.notify("xgroup-createconsumer", .stream, c[1]) }
                consumer = claimer
            }
            var claimed = pending
            claimed.consumer = c[3]
            claimed.deliveryTime = now
            if !justID { claimed.deliveryCount += 1 }
            try c.data.putStreamPending(entry, &group, claimed, previous: pending)
            replies.append(justID ? reply(pending.id) : reply(found))
            count -= 1
        }
        let next = try pendingEntries.next(&c, entry, group)?.id ?? .zero
        try c.data.storeStreamGroup(entry, group)
        try c.data.store(c.db, c[1], entry.metadata)
        return .array([reply(next), .array(replies), .array(deleted)])
    }

    /// A group's pending entries in ID order, read a page at a time.
    private struct PendingCursor {
        var from: RedisStreamID?
        var buffer: [RedisStreamPending] = []

        init(from: RedisStreamID) { self.from = from }

        mutating func next(_ c: inout RedisInvocation, _ entry: RedisData.Entry, _ group: RedisStreamGroup)
            throws(RedisError) -> RedisStreamPending?
        {
            if buffer.isEmpty, let start = from {
                buffer = try c.data.streamPendingRange(entry, group, from: start, to: .max, count: 256)
                from = buffer.count == 256 ? buffer.last!.id.next : nil
                buffer.reverse()
            }
            return buffer.popLast()
        }
    }

    // MARK: XINFO

    private static func xinfoStream(_ c: inout RedisInvocation) throws(RedisError) -> RESPValue {
        var full = false
        var count: Int64 = 10
        if c.count > 3 {
            guard c.count == 4 || c.count == 6, c.option(3) == "FULL" else { throw subcommandSyntax(c) }
            full = true
            if c.count == 6 {
                guard c.option(4) == "COUNT" else { throw subcommandSyntax(c) }
                count = try c.integer(5)
                if count < 0 { count = 10 }
            }
        }
        guard let entry = try c.data.lookup(c.db, c[2], as: .stream) else { throw .noSuchKey }
        let state = entry.metadata.stream
        var fields: [RESPValue] = [
            .bulk("length"), .integer(entry.metadata.size), .bulk("radix-tree-keys"), .integer(Int64(state.nodes)),
            .bulk("radix-tree-nodes"), .integer(Int64(state.nodes == 0 ? 1 : state.nodes + 1)),
            .bulk("last-generated-id"), reply(state.lastID), .bulk("max-deleted-entry-id"), reply(state.maxDeletedID),
            .bulk("entries-added"), .integer(Int64(state.entriesAdded)), .bulk("recorded-first-entry-id"),
            reply(state.firstID),
        ]
        if !full {
            fields += [.bulk("groups"), .integer(Int64(state.groups))]
            fields += [.bulk("first-entry"), try c.data.streamEdge(entry, last: false).map(reply) ?? .null]
            fields += [.bulk("last-entry"), try c.data.streamEdge(entry, last: true).map(reply) ?? .null]
            return .map(fields)
        }
        let limit = Int(clamping: count)
        fields += [
            .bulk("entries"), .array(try c.data.streamRange(entry, from: .zero, to: .max, count: limit).map(reply)),
        ]
        var groups: [RESPValue] = []
        for group in try c.data.streamGroups(entry) {
            let pending = try c.data.streamPendingRange(entry, group, from: .zero, to: .max, count: limit)
            var consumers: [RESPValue] = []
            for consumer in try c.data.streamConsumers(entry, group) {
                let own = try c.data.streamPendingRange(
                    entry,
                    group,
                    from: .zero,
                    to: .max,
                    count: limit,
                    consumer: consumer.name
                )
                consumers.append(
                    .map([
                        .bulk("name"), .bulk(consumer.name), .bulk("seen-time"), .integer(consumer.seenTime),
                        .bulk("pel-count"), .integer(Int64(consumer.pending)), .bulk("pending"),
                        .array(
                            own.map {
                                .array([reply($0.id), .integer($0.deliveryTime), .integer(Int64($0.deliveryCount))])
                            }
                        ),
                    ])
                )
            }
            groups.append(
                .map([
                    .bulk("name"), .bulk(group.name), .bulk("last-delivered-id"), reply(group.lastDelivered),
                    .bulk("entries-read"), group.entriesRead == -1 ? .null : .integer(group.entriesRead),
                    .bulk("lag"), lag(group, entry.metadata).map { .integer($0) } ?? .null,
                    .bulk("pel-count"), .integer(Int64(group.pending)), .bulk("pending"),
                    .array(
                        pending.map {
                            .array([
                                reply($0.id), .bulk($0.consumer), .integer($0.deliveryTime),
                                .integer(Int64($0.deliveryCount)),
                            ])
                        }
                    ),
                    .bulk("consumers"), .array(consumers),
                ])
            )
        }
        fields += [.bulk("groups"), .array(groups)]
        return .map(fields)
    }

    private static func xinfoGroups(_ c: inout RedisInvocation) throws(RedisError) -> RESPValue {
        guard c.count == 3 else { throw subcommandSyntax(c) }
        guard let entry = try c.data.lookup(c.db, c[2], as: .stream) else { throw .noSuchKey }
        return .array(
            try c.data.streamGroups(entry).map { group in
                .map([
                    .bulk("name"), .bulk(group.name), .bulk("consumers"), .integer(Int64(group.consumers)),
                    .bulk("pending"), .integer(Int64(group.pending)), .bulk("last-delivered-id"),
                    reply(group.lastDelivered), .bulk("entries-read"),
                    group.entriesRead == -1 ? .null : .integer(group.entriesRead), .bulk("lag"),
                    lag(group, entry.metadata).map { .integer($0) } ?? .null,
                ])
            }
        )
    }

    private static func xinfoConsumers(_ c: inout RedisInvocation) throws(RedisError) -> RESPValue {
        guard c.count == 4 else { throw subcommandSyntax(c) }
        guard let entry = try c.data.lookup(c.db, c[2], as: .stream) else { throw .noSuchKey }
        guard let group = try c.data.streamGroup(entry, c[3]) else {
            throw .reply(
                "NOGROUP No such consumer group '\(RedisText.cString(c[3]))' for key name '\(RedisText.cString(c[2]))'"
            )
        }
        let now = c.data.now
        return .array(
            try c.data.streamConsumers(entry, group).map { consumer in
                .map([
                    .bulk("name"), .bulk(consumer.name), .bulk("pending"), .integer(Int64(consumer.pending)),
                    .bulk("idle"), .integer(max(0, now - consumer.seenTime)),
                ])
            }
        )
    }
}
