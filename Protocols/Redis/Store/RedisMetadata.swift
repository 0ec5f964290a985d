internal import StrataMVCC

/// The Redis types. The raw values are stored in every metadata record: never renumber one.
package enum RedisType: UInt8, Sendable, Hashable, CaseIterable {
    case string = 1
    case hash = 2
    case list = 3
    case set = 4
    case zset = 5
    case stream = 6

    /// What TYPE answers.
    package var name: String {
        switch self {
        case .string: "string"
        case .hash: "hash"
        case .list: "list"
        case .set: "set"
        case .zset: "zset"
        case .stream: "stream"
        }
    }

    package init?(name: String) {
        guard let type = Self.allCases.first(where: { $0.name == name.lowercased() }) else { return nil }
        self = type
    }
}

/// One user key's metadata record (the value of its `m` key). Strings carry their value; collections their
/// version (what their members are keyed by), their size and, for lists, the index of the first element.
package struct RedisMetadata: Sendable, Hashable {
    package var type: RedisType
    /// A string's value.
    package var value: [UInt8]
    package var version: UInt64
    package var size: Int64
    /// A list's first element's index (elements are `head ..< head + size`).
    package var head: UInt64
    /// A stream's IDs, counters and node bookkeeping.
    package var stream = RedisStreamState()

    /// Lists start in the middle of the index space, so both ends can grow 2^63 elements.
    static let listOrigin: UInt64 = 1 << 63

    package static func string(_ value: [UInt8]) -> Self {
        Self(type: .string, value: value, version: 0, size: 0, head: 0)
    }

    static func collection(_ type: RedisType, version: UInt64) -> Self {
        Self(type: type, value: [], version: version, size: 0, head: type == .list ? listOrigin : 0)
    }

    func encoded() -> [UInt8] {
        var bytes: [UInt8] = [type.rawValue]
        if type == .string {
            bytes.reserveCapacity(1 + value.count)
            bytes.append(contentsOf: value)
            return bytes
        }
        RedisLayout.append(version, to: &bytes)
        RedisLayout.append(UInt64(bitPattern: size), to: &bytes)
        if type == .list { RedisLayout.append(head, to: &bytes) }
        if type == .stream { stream.encode(into: &bytes) }
        return bytes
    }

    init(type: RedisType, value: [UInt8], version: UInt64, size: Int64, head: UInt64) {
        self.type = type
        self.value = value
        self.version = version
        self.size = size
        self.head = head
    }

    /// Decodes a metadata record; a malformed one is a storage error (never written by Strata).
    init(decoding bytes: [UInt8]) throws(RedisError) {
        guard let tag = bytes.first, let type = RedisType(rawValue: tag) else {
            throw .storage(.storage("unknown Redis type tag in a metadata record"))
        }
        self.type = type
        if type == .string {
            self.value = Array(bytes[1...])
            self.version = 0
            self.size = 0
            self.head = 0
            return
        }
        let needed = type == .list ? 25 : type == .stream ? 17 + RedisStreamState.encodedSize : 17
        guard bytes.count >= needed else { throw .storage(.storage("truncated Redis metadata record")) }
        self.value = []
        self.version = RedisLayout.readUInt64(bytes, at: 1)
        self.size = Int64(bitPattern: RedisLayout.readUInt64(bytes, at: 9))
        self.head = type == .list ? RedisLayout.readUInt64(bytes, at: 17) : 0
        if type == .stream { self.stream = RedisStreamState(decoding: bytes, at: 17) }
    }
}
