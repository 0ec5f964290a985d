internal import Foundation
internal import StrataMVCC
internal import StrataRedisStore

extension RedisCommands {
    static let sort: [(String, RedisCommand.Access, RedisCommandTable.Handler)] = [
        ("sort", .write, { c throws(RedisError) in try sortCommand(&c, readOnly: false) }),
        ("sort_ro", .read, { c throws(RedisError) in try sortCommand(&c, readOnly: true) }),
    ]

    /// Whether the user may read any key through this command: BY and GET patterns name keys ACLs cannot check.
    private static func readsEveryKey(_ c: RedisInvocation) -> Bool {
        if c.session.isUnrestricted(c.server.acl) { return true }
        guard let user = c.session.currentUser(c.server.acl) else { return false }
        guard let id = RedisACLCatalog.shared.byName[c.arguments[0].isEmpty ? "" : c.text(0).lowercased()] else {
            return true
        }
        return RedisACL.readsEveryKey(user, id: id, c.arguments)
    }

    /// SORT key [BY pattern] [LIMIT offset count] [GET pattern …] [ASC|DESC] [ALPHA] [STORE destination], as
    /// Redis 7.0 sorts: numbers by value then bytes, ALPHA by bytes, missing BY values first.
    private static func sortCommand(_ c: inout RedisInvocation, readOnly: Bool) throws(RedisError) -> RESPValue {
        var descending = false
        var alpha = false
        var limitStart: Int64 = 0
        var limitCount: Int64 = -1
        var by: [UInt8]? = nil
        var dontSort = false
        var gets: [[UInt8]] = []
        var store: [UInt8]? = nil
        var index = 2
        while index < c.count {
            let left = c.count - index - 1
            switch c.option(index) {
            case "ASC": descending = false
            case "DESC": descending = true
            case "ALPHA": alpha = true
            case "LIMIT" where left >= 2:
                limitStart = try c.integer(index + 1)
                limitCount = try c.integer(index + 2)
                index += 2
            case "STORE" where !readOnly && left >= 1:
                store = c[index + 1]
                index += 1
            case "BY" where left >= 1:
                by = c[index + 1]
                dontSort = !c[index + 1].contains(UInt8(ascii: "*"))
                if !dontSort && !readsEveryKey(c) {
                    throw .err("BY option of SORT denied due to insufficient ACL permissions.")
                }
                index += 1
            case "GET" where left >= 1:
                if !readsEveryKey(c) { throw .err("GET option of SORT denied due to insufficient ACL permissions.") }
                gets.append(c[index + 1])
                index += 1
            default:
                throw .syntax
            }
            index += 1
        }
        let source = try c.data.lookup(c.db, c[1])
        if let source, ![.list, .set, .zset].contains(source.type) { throw .wrongType }
        if dontSort && source?.type == .set && store != nil {
            dontSort = false
            alpha = true
            by = nil
        }
        var elements: [[UInt8]] = []
        if let source {
            switch source.type {
            case .list: elements = try c.data.listAll(source)
            case .set: elements = try c.data.members(source).map(\.member)
            default: elements = try scored(&c, source, .all, reverse: false).map(\.member)
            }
        }
        let count = Int64(elements.count)
        var start = min(max(limitStart, 0), count)
        let clampedCount = min(max(limitCount, -1), count)
        var end = clampedCount < 0 ? count - 1 : start + clampedCount - 1
        if start >= count {
            start = count - 1
            end = count - 2
        }
        if end >= count { end = count - 1 }
        if dontSort {
            if descending && source?.type != .set { elements.reverse() }
        } else {
            var keyed: [(element: [UInt8], score: Double, compare: [UInt8]?)] = []
            var conversionError = false
            for element in elements {
                var score = 0.0
                var compare: [UInt8]? = nil
                let value: [UInt8]?
                if let by {
                    value = try lookupByPattern(&c, by, element)
                } else {
                    value = element
                }
                if let value {
                    if alpha {
                        if by != nil { compare = value }
                    } else if let number = strtodWhole(value) {
                        score = number
                    } else {
                        conversionError = true
                    }
                }
                keyed.append((element, score, compare))
            }
            if conversionError { throw .err("One or more scores can't be converted into double") }
            keyed.sort { a, b in
                var order: Int
                if !alpha {
                    order = a.score > b.score ? 1 : a.score < b.score ? -1 : compareBytes(a.element, b.element)
                } else if by != nil {
                    switch (a.compare, b.compare) {
                    case (nil, nil): order = 0
                    case (nil, _): order = -1
                    case (_, nil): order = 1
                    case (let x?, let y?): order = compareBytes(x, y)
                    }
                } else {
                    order = compareBytes(a.element, b.element)
                }
                return descending ? order > 0 : order < 0
            }
            elements = keyed.map(\.element)
        }
        let selected = start <= end && end >= 0 ? Array(elements[Int(start)...Int(end)]) : []
        var output: [[UInt8]?] = []
        for element in selected {
            if gets.isEmpty {
                output.append(element)
                continue
            }
            for pattern in gets { output.append(try lookupByPattern(&c, pattern, element)) }
        }
        guard let store else { return .array(output.map { $0.map { .bulk($0) } ?? .null }) }
        var list = c.data.newCollection(.list)
        for value in output { try c.data.push(&list, value ?? [], left: false) }
        let existed = try c.data.lookup(c.db, store) != nil
        try c.data.replace(c.db, store, with: list)
        if !output.isEmpty {
            c.notify("sortstore", .list, store)
        } else if existed {
            c.notify("del", .generic, store)
        }
        return .integer(output.count)
    }

    private static func compareBytes(_ a: [UInt8], _ b: [UInt8]) -> Int {
        if a == b { return 0 }
        return a.lexicographicallyPrecedes(b) ? -1 : 1
    }

    /// `strtod` over the whole value (SORT's numeric conversion).
    private static func strtodWhole(_ bytes: [UInt8]) -> Double? {
        var text = bytes
        text.append(0)
        return text.withUnsafeBufferPointer { buffer -> Double? in
            let start = UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self)
            var end: UnsafeMutablePointer<CChar>? = nil
            errno = 0
            let value = strtod(start, &end)
            guard let end, end.pointee == 0, errno != ERANGE, !value.isNaN else { return nil }
            return value
        }
    }

    /// SORT's BY/GET pattern: `#` is the element; else the first `*` replaced by it, then `->field` reads a hash.
    private static func lookupByPattern(_ c: inout RedisInvocation, _ pattern: [UInt8], _ element: [UInt8])
        throws(RedisError) -> [UInt8]?
    {
        if pattern == [UInt8(ascii: "#")] { return element }
        guard let star = pattern.firstIndex(of: UInt8(ascii: "*")) else { return nil }
        var field: [UInt8]? = nil
        var keyEnd = pattern.endIndex
        var search = star + 1
        while search + 1 < pattern.count {
            if pattern[search] == UInt8(ascii: "-") && pattern[search + 1] == UInt8(ascii: ">") {
                if search + 2 < pattern.count {
                    field = Array(pattern[(search + 2)...])
                    keyEnd = search
                }
                break
            }
            search += 1
        }
        let key = Array(pattern[..<star]) + element + Array(pattern[(star + 1)..<keyEnd])
        guard let entry = try c.data.lookup(c.db, key) else { return nil }
        if let field {
            guard entry.type == .hash else { return nil }
            return try c.data.member(entry, field)
        }
        return entry.type == .string ? entry.metadata.value : nil
    }
}
