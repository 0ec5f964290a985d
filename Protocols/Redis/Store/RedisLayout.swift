package import StrataMVCC

/// Where Redis's data lives inside the `redis` keyspace (docs/storage-format.md describes it; every tag and field
/// here is on disk: never change one, add new ones).
///
/// - `m` space(u32) hash(u32) key → ``RedisMetadata``: one record per user key, carrying its expiry in the core's
///   record. Keys are ordered by a hash of the user key inside each space, so a SCAN cursor is just a position in
///   that order (a 64-bit number, as clients expect) and survives restarts and concurrent writes.
/// - `s` version(u64) hash(u32) member → value: hash fields, set members, sorted-set member → score. Lists use
///   `s` version(u64) index(u64) → element instead.
/// - `z` version(u64) score(u64, order-preserving) member → empty: the sorted-set score index.
/// - `g` version(u64) → empty: a dropped collection whose members the reclaimer still has to delete.
/// - `G` space(u32) → empty: a flushed database whose keys the reclaimer still has to delete.
/// - `D` → the database table (``RedisSpaces``).
/// - `F` library name → the library's code: FUNCTION LOAD's libraries (FLUSHALL keeps them, as Redis does).
///
/// A collection's members are keyed by its version, not its name: deleting or overwriting a collection rewrites
/// only its metadata (the next one gets a new version), RENAME, MOVE and SWAPDB move metadata alone, and the
/// reclaimer deletes the members in the background.
package enum RedisLayout {
    static let metadataTag = UInt8(ascii: "m")
    static let memberTag = UInt8(ascii: "s")
    static let scoreTag = UInt8(ascii: "z")
    static let droppedTag = UInt8(ascii: "g")
    static let flushedTag = UInt8(ascii: "G")
    static let notificationTag = UInt8(ascii: "n")
    static let databasesKey: [UInt8] = [UInt8(ascii: "D")]
    static let libraryTag = UInt8(ascii: "F")

    /// FNV-1a, 32 bits: stable forever (it orders keys on disk), cheap for short keys.
    @inline(__always)
    package static func hash(_ bytes: [UInt8]) -> UInt32 {
        var value: UInt32 = 0x811C_9DC5
        for byte in bytes {
            value ^= UInt32(byte)
            value &*= 0x0100_0193
        }
        return value
    }

    @inline(__always)
    static func append(_ value: UInt32, to bytes: inout [UInt8]) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 24))
        bytes.append(UInt8(truncatingIfNeeded: value >> 16))
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    @inline(__always)
    static func append(_ value: UInt64, to bytes: inout [UInt8]) {
        for shift in stride(from: 56, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
        }
    }

    @inline(__always)
    static func readUInt32<C: Collection<UInt8>>(_ bytes: C, at offset: Int) -> UInt32 where C.Index == Int {
        var value: UInt32 = 0
        for index in offset..<offset + 4 { value = value << 8 | UInt32(bytes[index]) }
        return value
    }

    @inline(__always)
    static func readUInt64<C: Collection<UInt8>>(_ bytes: C, at offset: Int) -> UInt64 where C.Index == Int {
        var value: UInt64 = 0
        for index in offset..<offset + 8 { value = value << 8 | UInt64(bytes[index]) }
        return value
    }

    // MARK: Metadata

    static func metadataPrefix(space: UInt32) -> [UInt8] {
        var key: [UInt8] = [metadataTag]
        append(space, to: &key)
        return key
    }

    static func metadataKey(space: UInt32, _ userKey: [UInt8]) -> [UInt8] {
        var key = [UInt8]()
        key.reserveCapacity(9 + userKey.count)
        key.append(metadataTag)
        append(space, to: &key)
        append(hash(userKey), to: &key)
        key.append(contentsOf: userKey)
        return key
    }

    /// The first metadata key at or after hash position `hash` in `space`.
    static func metadataKey(space: UInt32, hashAtLeast hash: UInt32) -> [UInt8] {
        var key = metadataPrefix(space: space)
        append(hash, to: &key)
        return key
    }

    /// (space, hash, user key) of a metadata key.
    package static func parseMetadataKey(_ key: [UInt8]) -> (space: UInt32, hash: UInt32, userKey: [UInt8])? {
        guard key.count >= 9, key[0] == metadataTag else { return nil }
        return (readUInt32(key, at: 1), readUInt32(key, at: 5), Array(key[9...]))
    }

    // MARK: Members

    static func memberPrefix(_ version: UInt64) -> [UInt8] {
        var key: [UInt8] = [memberTag]
        append(version, to: &key)
        return key
    }

    /// A hash field, set member or sorted-set member.
    static func memberKey(_ version: UInt64, _ member: [UInt8]) -> [UInt8] {
        var key = [UInt8]()
        key.reserveCapacity(13 + member.count)
        key.append(memberTag)
        append(version, to: &key)
        append(hash(member), to: &key)
        key.append(contentsOf: member)
        return key
    }

    static func memberKey(_ version: UInt64, hashAtLeast hash: UInt32) -> [UInt8] {
        var key = memberPrefix(version)
        append(hash, to: &key)
        return key
    }

    /// (hash, member) of a hashed member key.
    static func parseMemberKey(_ key: [UInt8]) -> (hash: UInt32, member: [UInt8]) {
        (readUInt32(key, at: 9), Array(key[13...]))
    }

    /// A list element.
    static func elementKey(_ version: UInt64, _ index: UInt64) -> [UInt8] {
        var key = memberPrefix(version)
        append(index, to: &key)
        return key
    }

    static func parseElementIndex(_ key: [UInt8]) -> UInt64 { readUInt64(key, at: 9) }

    // MARK: Sorted-set scores

    static func scorePrefix(_ version: UInt64) -> [UInt8] {
        var key: [UInt8] = [scoreTag]
        append(version, to: &key)
        return key
    }

    static func scoreKey(_ version: UInt64, _ score: Double, _ member: [UInt8]) -> [UInt8] {
        var key = scorePrefix(version)
        append(SortableDouble.encode(score), to: &key)
        key.append(contentsOf: member)
        return key
    }

    static func scoreKey(_ version: UInt64, score: Double) -> [UInt8] {
        var key = scorePrefix(version)
        append(SortableDouble.encode(score), to: &key)
        return key
    }

    static func parseScoreKey(_ key: [UInt8]) -> (score: Double, member: [UInt8]) {
        (SortableDouble.decode(readUInt64(key, at: 9)), Array(key[17...]))
    }

    // MARK: Reclamation

    static func droppedKey(_ version: UInt64) -> [UInt8] {
        var key: [UInt8] = [droppedTag]
        append(version, to: &key)
        return key
    }

    static func flushedKey(_ space: UInt32) -> [UInt8] {
        var key: [UInt8] = [flushedTag]
        append(space, to: &key)
        return key
    }

    // MARK: Notifications

    /// The key keyspace notifications are announced under (nothing is stored there): database and user key.
    static func notificationKey(db: Int, _ userKey: [UInt8]) -> [UInt8] {
        var key: [UInt8] = [notificationTag]
        append(UInt32(db), to: &key)
        key.append(contentsOf: userKey)
        return key
    }

    /// (db, user key) of a notification key.
    package static func parseNotificationKey(_ key: [UInt8]) -> (db: Int, key: [UInt8])? {
        guard key.count >= 5, key[0] == notificationTag else { return nil }
        return (Int(readUInt32(key, at: 1)), Array(key[5...]))
    }

    /// Metadata keys and notification keys: what the notifier watches (`m` … `n`).
    package static var notifiedKeyRange: KeyRange { KeyRange(key: [metadataTag], end: [notificationTag + 1]) }
}

/// Doubles as 64-bit integers whose unsigned order is the numeric order (−inf < … < −0 = 0 < … < +inf).
enum SortableDouble {
    static func encode(_ value: Double) -> UInt64 {
        let value = value == 0 ? 0 : value  // −0 and 0 are one score
        let bits = value.bitPattern
        return bits & (1 << 63) != 0 ? ~bits : bits | (1 << 63)
    }

    static func decode(_ encoded: UInt64) -> Double {
        let bits = encoded & (1 << 63) != 0 ? encoded & ~(1 << 63) : ~encoded
        return Double(bitPattern: bits)
    }
}
