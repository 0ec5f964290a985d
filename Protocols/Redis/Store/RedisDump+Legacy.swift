/// The encodings of payloads written by Redis before 7.0 (ziplists, zipmaps, quicklists of ziplists), which Redis
/// 7.0 still restores, and so does Strata.
extension RedisDump {
    /// A ziplist's entries (strings; integers as their decimal text).
    static func ziplist(_ blob: [UInt8]) throws(Failure) -> [[UInt8]] {
        guard blob.count >= 11, blob.last == 0xFF else { throw .badFormat }
        let total = Int(blob[0]) | Int(blob[1]) << 8 | Int(blob[2]) << 16 | Int(blob[3]) << 24
        guard total == blob.count else { throw .badFormat }
        var offset = 10
        var entries: [[UInt8]] = []
        func need(_ count: Int) throws(Failure) {
            guard count >= 0, offset + count <= blob.count - 1 else { throw .badFormat }
        }
        func little(_ start: Int, _ width: Int) -> Int64 {
            var raw: UInt64 = 0
            for index in 0..<width { raw |= UInt64(blob[start + index]) << UInt64(8 * index) }
            let shift = UInt64(64 - width * 8)
            return Int64(bitPattern: raw << shift) >> Int64(shift)
        }
        // Checked as Redis checks a ziplist it converts: each entry's record of the previous one's size, the offset
        // of the last entry, and the count.
        var previousSize = 0
        var lastStart = 10
        while offset < blob.count - 1 {
            let start = offset
            lastStart = start
            // The previous entry's length: one byte, or 0xFE and four.
            try need(1)
            var recorded = Int(blob[offset])
            if blob[offset] == 0xFE {
                try need(5)
                recorded = Int(little(offset + 1, 4) & 0xFFFF_FFFF)
            }
            guard recorded == previousSize else { throw .badFormat }
            offset += blob[offset] == 0xFE ? 5 : 1
            defer { previousSize = offset - start }
            try need(1)
            let encoding = blob[offset]
            switch encoding >> 6 {
            case 0:
                let length = Int(encoding & 0x3F)
                try need(1 + length)
                entries.append(Array(blob[(offset + 1)..<(offset + 1 + length)]))
                offset += 1 + length
            case 1:
                try need(2)
                let length = Int(encoding & 0x3F) << 8 | Int(blob[offset + 1])
                try need(2 + length)
                entries.append(Array(blob[(offset + 2)..<(offset + 2 + length)]))
                offset += 2 + length
            case 2:
                try need(5)
                var length = 0
                for index in 1...4 { length = length << 8 | Int(blob[offset + index]) }
                try need(5 + length)
                entries.append(Array(blob[(offset + 5)..<(offset + 5 + length)]))
                offset += 5 + length
            default:
                let width: Int
                switch encoding {
                case 0xC0: width = 2
                case 0xD0: width = 4
                case 0xE0: width = 8
                case 0xF0: width = 3
                case 0xFE: width = 1
                case 0xF1...0xFD:
                    entries.append(Array(String(Int(encoding & 0x0F) - 1).utf8))
                    offset += 1
                    continue
                default: throw .badFormat
                }
                try need(1 + width)
                entries.append(Array(String(little(offset + 1, width)).utf8))
                offset += 1 + width
            }
        }
        let tail = Int(blob[4]) | Int(blob[5]) << 8 | Int(blob[6]) << 16 | Int(blob[7]) << 24
        let count = Int(blob[8]) | Int(blob[9]) << 8
        guard tail == lastStart, count == 65535 || count == entries.count else { throw .badFormat }
        return entries
    }

    /// A zipmap's field-value pairs (Redis 2.x hashes).
    static func zipmap(_ blob: [UInt8]) throws(Failure) -> [(field: [UInt8], value: [UInt8])] {
        guard blob.count >= 2, blob.last == 0xFF else { throw .badFormat }
        var offset = 1
        func length() throws(Failure) -> Int {
            guard offset < blob.count - 1 else { throw .badFormat }
            let first = blob[offset]
            if first < 254 {
                offset += 1
                return Int(first)
            }
            guard first == 254, offset + 5 <= blob.count - 1 else { throw .badFormat }
            var value = 0
            for index in 1...4 { value |= Int(blob[offset + index]) << (8 * (index - 1)) }
            offset += 5
            return value
        }
        func take(_ count: Int) throws(Failure) -> [UInt8] {
            guard count >= 0, offset + count <= blob.count - 1 else { throw .badFormat }
            defer { offset += count }
            return Array(blob[offset..<(offset + count)])
        }
        var pairs: [(field: [UInt8], value: [UInt8])] = []
        while offset < blob.count - 1 {
            let field = try take(try length())
            let valueLength = try length()
            guard offset < blob.count - 1 else { throw .badFormat }
            let free = Int(blob[offset])
            offset += 1
            let value = try take(valueLength)
            _ = try take(free)
            pairs.append((field, value))
        }
        return pairs
    }

    /// Alternating entries as pairs (an odd count is corruption).
    static func pairs(_ entries: [[UInt8]]) throws(Failure) -> [([UInt8], [UInt8])] {
        guard !entries.isEmpty, entries.count % 2 == 0 else { throw .badFormat }
        return stride(from: 0, to: entries.count, by: 2).map { (entries[$0], entries[$0 + 1]) }
    }

    /// Sorted-set pairs (member, score text) as members and scores.
    static func scored(_ pairs: [([UInt8], [UInt8])]) throws(Failure) -> [(member: [UInt8], score: Double)] {
        var members: [(member: [UInt8], score: Double)] = []
        for (member, score) in pairs {
            guard let parsed = Double(String(decoding: score, as: UTF8.self)), !parsed.isNaN else {
                throw .badFormat
            }
            members.append((member, parsed))
        }
        return members
    }
}
