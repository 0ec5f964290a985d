internal import StrataCommon

/// The on-disk encoding (docs/storage-format.md). Every byte layout here is part of format version 3: change it only
/// together with the version and a migration.
enum StorageEncoding {
    /// 1: fixed-width record fields (never released); 2: varint record fields; 3: compact records and the expiry
    /// index (a version-2 database is a valid version-3 one: opening it rewrites the marker).
    static let formatVersion: UInt32 = 3
    static let readableFormatVersions: Set<UInt32> = [2, 3]

    // Column families.
    static let latestFamily = "latest"
    static let historyFamily = "history"
    static let logFamily = "log"
    static let leaseFamily = "lease"
    static let leaseKeysFamily = "leasekeys"
    static let expiryFamily = "expiry"
    static let families = [latestFamily, historyFamily, logFamily, leaseFamily, leaseKeysFamily, expiryFamily]
    // (`history` holds only versions the revision log no longer can: see docs/storage-format.md.)

    // Meta keys in the default column family.
    static let formatKey = Array("strata/format".utf8)
    static let revisionKey = Array("strata/revision".utf8)
    static let compactRevisionKey = Array("strata/compact".utf8)
    static let compactDoneKey = Array("strata/compact-done".utf8)

    /// `strata/keyspace/<id>` → `name/history/format`: the keyspace that owns an id, so a build that declares another
    /// keyspace with it refuses the directory instead of misreading it.
    static func keyspaceKey(_ id: UInt8) -> [UInt8] { Array("strata/keyspace/".utf8) + [id] }

    static func keyspaceDeclaration(_ keyspace: Keyspace) -> [UInt8] {
        let history = keyspace.keepsHistory ? "full" : "latest-only"
        let format = keyspace.format == .versioned ? "versioned" : "compact"
        return Array("\(keyspace.name)/\(history)/\(format)".utf8)
    }

    // MARK: Integers

    @inline(__always)
    static func append(_ value: UInt64, to bytes: inout [UInt8]) {
        var be = value.bigEndian
        withUnsafeBytes(of: &be) { bytes.append(contentsOf: $0) }
    }

    @inline(__always)
    static func append(_ value: Int64, to bytes: inout [UInt8]) {
        append(UInt64(bitPattern: value), to: &bytes)
    }

    @inline(__always)
    static func readUInt64<C: Collection<UInt8>>(_ bytes: C, at offset: C.Index) -> UInt64 {
        var value: UInt64 = 0
        var index = offset
        for _ in 0..<8 {
            value = value << 8 | UInt64(bytes[index])
            index = bytes.index(after: index)
        }
        return value
    }

    static func encode(_ value: Int64) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(8)
        append(value, to: &bytes)
        return bytes
    }

    static func decodeInt64(_ bytes: [UInt8]) -> Int64? {
        guard bytes.count == 8 else { return nil }
        return Int64(bitPattern: readUInt64(bytes, at: 0))
    }

    // MARK: latest: [keyspace][key] -> record

    @inline(__always)
    static func latestKey(_ keyspace: Keyspace, _ key: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(key.count + 1)
        bytes.append(keyspace.id)
        bytes.append(contentsOf: key)
        return bytes
    }

    /// Bounds of `range` inside the latest family (upper nil = end of keyspace).
    static func latestBounds(_ keyspace: Keyspace, _ range: KeyRange) -> (lower: [UInt8], upper: [UInt8]) {
        let lower = latestKey(keyspace, range.key)
        let upper = range.upperBound.map { latestKey(keyspace, $0) } ?? [keyspace.id + 1]
        return (lower, upper)
    }

    // MARK: history: [keyspace][escaped key][0x00 0x01][~revision] -> record

    /// Escapes 0x00 as 0x00 0xFF and ends with 0x00 0x01, so escaped keys sort like the raw keys and no key's
    /// entries interleave with another's.
    static func appendEscaped(_ key: [UInt8], to bytes: inout [UInt8]) {
        for byte in key {
            bytes.append(byte)
            if byte == 0 { bytes.append(0xFF) }
        }
    }

    static func historyPrefix(_ keyspace: Keyspace, _ key: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = [keyspace.id]
        bytes.reserveCapacity(key.count + 12)
        appendEscaped(key, to: &bytes)
        bytes.append(0x00)
        bytes.append(0x01)
        return bytes
    }

    static func historyKey(_ keyspace: Keyspace, _ key: [UInt8], _ revision: Revision) -> [UInt8] {
        var bytes = historyPrefix(keyspace, key)
        append(UInt64.max - UInt64(revision), to: &bytes)
        return bytes
    }

    /// A bound in the history family that sorts just before every entry of keys `>= key`.
    static func historyLowerBound(_ keyspace: Keyspace, _ key: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = [keyspace.id]
        appendEscaped(key, to: &bytes)
        return bytes
    }

    /// Splits a history entry's key into the raw user key and revision.
    static func decodeHistoryKey(_ bytes: UnsafeRawBufferPointer) -> (key: [UInt8], revision: Revision)? {
        guard bytes.count >= 1 + 2 + 8 else { return nil }
        var key: [UInt8] = []
        key.reserveCapacity(bytes.count - 11)
        var index = 1
        let end = bytes.count - 8
        while index < end {
            let byte = bytes[index]
            if byte == 0 {
                guard index + 1 < end + 8 else { return nil }
                let next = bytes[index + 1]
                if next == 0xFF {
                    key.append(0)
                    index += 2
                    continue
                }
                if next == 0x01 && index + 2 == end { break }
                return nil
            }
            key.append(byte)
            index += 1
        }
        var inverted: UInt64 = 0
        for offset in end..<bytes.count { inverted = inverted << 8 | UInt64(bytes[offset]) }
        return (key, Revision(bitPattern: UInt64.max - inverted))
    }

    // MARK: Records (latest, history and log values)

    /// Versioned: `[0][create][mod][version][lease][prev][value]` for a live version, `[1][mod][prev]` for a
    /// deletion, each number a LEB128 varint (a record costs ~12 bytes more than its value; every write of a keyspace
    /// with history stores it twice, in `latest` and in the revision log). `prev` is the revision of the key's
    /// previous version (live or deletion), 0 if none: versions form a chain through the revision log, so history
    /// costs no extra write.
    static func encodeRecord(_ kv: KeyValue, previous: Revision) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24 + kv.value.count)
        bytes.append(0)
        Varint.append(UInt64(bitPattern: kv.createRevision), to: &bytes)
        Varint.append(UInt64(bitPattern: kv.modRevision), to: &bytes)
        Varint.append(UInt64(bitPattern: kv.version), to: &bytes)
        Varint.append(UInt64(bitPattern: kv.lease), to: &bytes)
        Varint.append(UInt64(bitPattern: previous), to: &bytes)
        bytes.append(contentsOf: kv.value)
        return bytes
    }

    static func encodeTombstone(_ revision: Revision, previous: Revision) -> [UInt8] {
        var bytes: [UInt8] = [1]
        bytes.reserveCapacity(12)
        Varint.append(UInt64(bitPattern: revision), to: &bytes)
        Varint.append(UInt64(bitPattern: previous), to: &bytes)
        return bytes
    }

    /// Compact (latest-only keyspaces): `[2][flags][mod][expires_at if flags & 1][value]`.
    static func encodeCompactRecord(_ kv: KeyValue) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16 + kv.value.count)
        bytes.append(2)
        bytes.append(kv.expiresAt != 0 ? 1 : 0)
        Varint.append(UInt64(bitPattern: kv.modRevision), to: &bytes)
        if kv.expiresAt != 0 { Varint.append(UInt64(bitPattern: kv.expiresAt), to: &bytes) }
        bytes.append(contentsOf: kv.value)
        return bytes
    }

    static func encode(_ kv: KeyValue, in keyspace: Keyspace, previous: Revision) -> [UInt8] {
        switch keyspace.format {
        case .versioned: encodeRecord(kv, previous: keyspace.keepsHistory ? previous : 0)
        case .compact: encodeCompactRecord(kv)
        }
    }

    /// Reads one varint of a record at `offset`, advancing it; nil when the bytes end inside it or it overflows.
    @inline(__always)
    static func readVarint(_ bytes: UnsafeRawBufferPointer, _ offset: inout Int) -> Int64? {
        Varint.read(bytes, &offset).map { Int64(bitPattern: $0) }
    }

    /// A decoded version: live or a deletion, with the revision of the version before it.
    enum Record {
        case live(KeyValue, previous: Revision)
        case tombstone(Revision, previous: Revision)

        var modRevision: Revision {
            switch self {
            case .live(let kv, _): kv.modRevision
            case .tombstone(let revision, _): revision
            }
        }

        var previous: Revision {
            switch self {
            case .live(_, let previous), .tombstone(_, let previous): previous
            }
        }

        var live: KeyValue? {
            if case .live(let kv, _) = self { return kv }
            return nil
        }

        func encoded() -> [UInt8] {
            switch self {
            case .live(let kv, let previous): StorageEncoding.encodeRecord(kv, previous: previous)
            case .tombstone(let revision, let previous): StorageEncoding.encodeTombstone(revision, previous: previous)
            }
        }
    }

    /// Whether stored record bytes are a live value (not a deletion) without decoding them.
    @inline(__always)
    static func isLive(_ bytes: UnsafeRawBufferPointer) -> Bool { bytes.first != 1 }

    static func decodeRecord(key: [UInt8], _ bytes: UnsafeRawBufferPointer, keysOnly: Bool = false) throws(MVCCError)
        -> Record
    {
        guard let kind = bytes.first else { throw .storage("empty record for key \(key)") }
        var offset = 1
        func value() -> [UInt8] { keysOnly ? [] : [UInt8](UnsafeRawBufferPointer(rebasing: bytes[offset...])) }
        switch kind {
        case 0:
            guard let create = readVarint(bytes, &offset), let mod = readVarint(bytes, &offset),
                let version = readVarint(bytes, &offset), let lease = readVarint(bytes, &offset),
                let previous = readVarint(bytes, &offset)
            else { break }
            let kv = KeyValue(
                key: key,
                createRevision: create,
                modRevision: mod,
                version: version,
                lease: lease,
                value: value()
            )
            return .live(kv, previous: previous)
        case 1:
            guard let revision = readVarint(bytes, &offset), let previous = readVarint(bytes, &offset) else { break }
            return .tombstone(revision, previous: previous)
        case 2:
            guard bytes.count >= 2 else { break }
            let flags = bytes[1]
            offset = 2
            guard let mod = readVarint(bytes, &offset) else { break }
            var expiresAt: Int64 = 0
            if flags & 1 != 0 {
                guard let at = readVarint(bytes, &offset) else { break }
                expiresAt = at
            }
            let kv = KeyValue(
                key: key,
                createRevision: 0,
                modRevision: mod,
                version: 0,
                expiresAt: expiresAt,
                value: value()
            )
            return .live(kv, previous: 0)
        default:
            break
        }
        throw .storage("corrupt record (kind \(kind), \(bytes.count) bytes)")
    }

    static func decodeRecord(key: [UInt8], _ bytes: [UInt8], keysOnly: Bool = false) throws(MVCCError) -> Record {
        let record: Result<Record, MVCCError> = bytes.withUnsafeBytes { buffer in
            Result { () throws(MVCCError) in try decodeRecord(key: key, buffer, keysOnly: keysOnly) }
        }
        return try record.get()
    }

    // MARK: log: [revision] -> every change of that revision, with full records

    struct LogChange {
        var keyspace: UInt8
        var key: [UInt8]
        var record: [UInt8]
    }

    static func logKey(_ revision: Revision) -> [UInt8] { encode(revision) }

    /// `varint count`, then per change `[keyspace][varint key length][key][varint record length][record]`.
    static func encodeLogEntry(_ changes: [LogChange]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(changes.reduce(4) { $0 + $1.key.count + $1.record.count + 8 })
        Varint.append(UInt64(changes.count), to: &bytes)
        for change in changes {
            bytes.append(change.keyspace)
            Varint.append(UInt64(change.key.count), to: &bytes)
            bytes.append(contentsOf: change.key)
            Varint.append(UInt64(change.record.count), to: &bytes)
            bytes.append(contentsOf: change.record)
        }
        return bytes
    }

    static func decodeLogEntry(_ bytes: [UInt8]) throws(MVCCError) -> [LogChange] {
        let decoded: [LogChange]? = bytes.withUnsafeBytes { buffer in
            var offset = 0
            func slice() -> [UInt8]? {
                guard let length = readVarint(buffer, &offset), length >= 0, offset + Int(length) <= buffer.count
                else { return nil }
                defer { offset += Int(length) }
                return Array(buffer[offset..<(offset + Int(length))])
            }
            guard let count = readVarint(buffer, &offset), count >= 0 else { return nil }
            var changes: [LogChange] = []
            changes.reserveCapacity(min(Int(count), 1024))
            for _ in 0..<count {
                guard offset < buffer.count else { return nil }
                let keyspace = buffer[offset]
                offset += 1
                guard let key = slice(), let record = slice() else { return nil }
                changes.append(LogChange(keyspace: keyspace, key: key, record: record))
            }
            return changes
        }
        guard let decoded else { throw .storage("corrupt revision log entry") }
        return decoded
    }

    // MARK: leases: [id] -> ttl; leasekeys: [id][keyspace][key] -> ()

    static func leaseKey(_ id: Int64) -> [UInt8] { encode(id) }

    static func leaseKeysKey(_ id: Int64, _ keyspace: Keyspace, _ key: [UInt8]) -> [UInt8] {
        var bytes = encode(id)
        bytes.append(keyspace.id)
        bytes.append(contentsOf: key)
        return bytes
    }

    // MARK: expiry: [BE64 deadline ms][keyspace][key] -> ()

    /// The expiry index orders keys by deadline, so the expirer reads only what is due and start-up reads nothing.
    static func expiryKey(_ deadline: Int64, _ keyspace: Keyspace, _ key: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(9 + key.count)
        append(deadline, to: &bytes)
        bytes.append(keyspace.id)
        bytes.append(contentsOf: key)
        return bytes
    }

    static func decodeExpiryKey(_ bytes: [UInt8]) -> (deadline: Int64, keyspace: UInt8, key: [UInt8])? {
        guard bytes.count >= 9 else { return nil }
        return (Int64(bitPattern: readUInt64(bytes, at: 0)), bytes[8], Array(bytes[9...]))
    }
}
