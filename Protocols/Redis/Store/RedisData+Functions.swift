internal import StrataMVCC

/// FUNCTION LOAD's libraries: `F` name → code, next to the databases (docs/storage-format.md).
extension RedisData {
    /// Every stored library: (name, code), by name.
    package mutating func libraries() throws(RedisError) -> [(name: [UInt8], code: [UInt8])] {
        var found: [(name: [UInt8], code: [UInt8])] = []
        let prefix = [RedisLayout.libraryTag]
        try scan(KeyRange.prefix(prefix)) { kv throws(RedisError) in
            found.append((Array(kv.key.dropFirst()), kv.value))
            return true
        }
        return found
    }

    package mutating func storeLibrary(_ name: [UInt8], code: [UInt8]) throws(RedisError) {
        try write([RedisLayout.libraryTag] + name, code)
        changes += 1
    }

    package mutating func deleteLibrary(_ name: [UInt8]) throws(RedisError) {
        try remove([RedisLayout.libraryTag] + name)
        changes += 1
    }
}
