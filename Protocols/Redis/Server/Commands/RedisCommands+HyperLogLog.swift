internal import StrataMVCC
internal import StrataRedisStore

/// PFADD, PFCOUNT, PFMERGE, PFDEBUG and PFSELFTEST: Redis's HyperLogLog on string values (``HyperLogLog`` keeps
/// the bytes exactly as Redis does, so GET/SET move them between the two servers unchanged).
extension RedisCommands {
    static let notHyperLogLog = RedisError.reply("WRONGTYPE Key is not a valid HyperLogLog string value.")
    static let corruptedHyperLogLog = RedisError.reply("INVALIDOBJ Corrupted HLL object detected")

    /// The key's HLL (nil when absent); Redis's errors for another type or a string that is not an HLL.
    static func hyperLogLog(_ c: inout RedisInvocation, _ key: [UInt8]) throws(RedisError)
        -> (entry: RedisData.Entry, hll: HyperLogLog)?
    {
        guard let entry = try c.data.lookup(c.db, key) else { return nil }
        guard entry.type == .string else { throw .wrongType }
        guard let hll = HyperLogLog(validating: entry.metadata.value) else { throw notHyperLogLog }
        return (entry, hll)
    }

    static let hyperLogLogs: [(String, RedisCommand.Access, RedisCommandTable.Handler)] = [
        (
            "pfadd", .write,
            { c throws(RedisError) in
                let found = try hyperLogLog(&c, c[1])
                var hll = found?.hll ?? HyperLogLog()
                var updated = found == nil
                let limit = c.server.config.effective.hllSparseMaxBytes
                for index in 2..<c.count {
                    do throws(HyperLogLog.Corrupted) {
                        if try hll.add(c[index], sparseMaxBytes: limit) { updated = true }
                    } catch {
                        throw corruptedHyperLogLog
                    }
                }
                guard updated else { return .integer(0) }
                hll.invalidateCache()
                try c.data.setString(c.db, c[1], hll.bytes, expiry: .keep, previous: .some(found?.entry))
                c.notify("pfadd", .string, c[1])
                return .integer(1)
            }
        ),
        (
            // A write: counting one key stores the estimate in the value's header, as Redis does.
            "pfcount", .write,
            { c throws(RedisError) in
                if c.count > 2 {
                    var registers = [UInt8](repeating: 0, count: HyperLogLog.registerCount)
                    for index in 1..<c.count {
                        guard let (_, hll) = try hyperLogLog(&c, c[index]) else { continue }
                        do throws(HyperLogLog.Corrupted) {
                            try hll.merge(into: &registers)
                        } catch {
                            throw corruptedHyperLogLog
                        }
                    }
                    return .integer(Int64(bitPattern: HyperLogLog.count(registers: registers)))
                }
                guard let (entry, found) = try hyperLogLog(&c, c[1]) else { return .integer(0) }
                if let cached = found.cachedCardinality { return .integer(Int64(bitPattern: cached)) }
                var hll = found
                let cardinality: UInt64
                do throws(HyperLogLog.Corrupted) {
                    cardinality = try hll.count()
                } catch {
                    throw corruptedHyperLogLog
                }
                hll.cache(cardinality)
                try c.data.setString(c.db, c[1], hll.bytes, expiry: .keep, previous: .some(entry))
                return .integer(Int64(bitPattern: cardinality))
            }
        ),
        (
            "pfmerge", .write,
            { c throws(RedisError) in
                var registers = [UInt8](repeating: 0, count: HyperLogLog.registerCount)
                var dense = false
                var destination: (entry: RedisData.Entry, hll: HyperLogLog)? = nil
                for index in 1..<c.count {
                    guard let found = try hyperLogLog(&c, c[index]) else { continue }
                    if index == 1 { destination = found }
                    if found.hll.encoding == .dense { dense = true }
                    do throws(HyperLogLog.Corrupted) {
                        try found.hll.merge(into: &registers)
                    } catch {
                        throw corruptedHyperLogLog
                    }
                }
                var hll = destination?.hll ?? HyperLogLog()
                let limit = c.server.config.effective.hllSparseMaxBytes
                do throws(HyperLogLog.Corrupted) {
                    if dense { try hll.makeDense() }
                    for (index, value) in registers.enumerated() where value != 0 {
                        _ = try hll.set(index, value, sparseMaxBytes: limit)
                    }
                } catch {
                    throw corruptedHyperLogLog
                }
                hll.invalidateCache()
                try c.data.setString(c.db, c[1], hll.bytes, expiry: .keep, previous: .some(destination?.entry))
                c.notify("pfadd", .string, c[1])
                return .ok
            }
        ),
        (
            "pfdebug", .write,
            { c throws(RedisError) in
                let subcommand = c.text(1)
                guard let (entry, found) = try hyperLogLog(&c, c[2]) else {
                    throw .err("The specified key does not exist")
                }
                var hll = found
                func arity() throws(RedisError) {
                    guard c.count == 3 else {
                        throw .err("Wrong number of arguments for the '\(subcommand)' subcommand")
                    }
                }
                func densify() throws(RedisError) -> Bool {
                    guard hll.encoding == .sparse else { return false }
                    do throws(HyperLogLog.Corrupted) {
                        try hll.makeDense()
                    } catch {
                        throw corruptedHyperLogLog
                    }
                    return true
                }
                switch subcommand.lowercased() {
                case "getreg":
                    try arity()
                    if try densify() {
                        try c.data.setString(c.db, c[2], hll.bytes, expiry: .keep, previous: .some(entry))
                    }
                    return .array(hll.registers.map { .integer(Int64($0)) })
                case "decode":
                    try arity()
                    guard hll.encoding == .sparse else { throw .err("HLL encoding is not sparse") }
                    return .bulk(Array(hll.decodedOpcodes.utf8))
                case "encoding":
                    try arity()
                    return .simple(hll.encoding == .sparse ? "sparse" : "dense")
                case "todense":
                    try arity()
                    guard try densify() else { return .integer(0) }
                    try c.data.setString(c.db, c[2], hll.bytes, expiry: .keep, previous: .some(entry))
                    return .integer(1)
                default:
                    throw .err("Unknown PFDEBUG subcommand '\(subcommand)'")
                }
            }
        ),
        (
            "pfselftest", .read,
            { c throws(RedisError) in
                if let failure = HyperLogLog.selfTest(sparseMaxBytes: c.server.config.effective.hllSparseMaxBytes) {
                    throw .reply("ERR " + failure)
                }
                return .ok
            }
        ),
    ]
}
