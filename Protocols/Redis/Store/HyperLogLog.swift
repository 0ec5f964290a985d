internal import Foundation

/// Redis's HyperLogLog as the string value Redis stores, byte for byte: a 16-byte header ("HYLL", encoding, three
/// zero bytes, the cached cardinality little-endian with its top bit meaning "stale"), then either the sparse
/// opcodes (ZERO, XZERO, VAL runs) or 16384 dense 6-bit registers. Every operation follows Redis 7.0's
/// hyperloglog.c step for step — the same sparse splits and merges, the same promotion to dense, the same estimator —
/// so a value written here reads the same in Redis and the reverse.
package struct HyperLogLog: Sendable, Hashable {
    package private(set) var bytes: [UInt8]

    static let precision = 14
    package static let registerCount = 1 << precision
    /// Bits of the hash left after the register index: runs of zeroes are counted in them.
    static let q = 64 - precision
    static let headerSize = 16
    static let denseSize = headerSize + (registerCount * 6 + 7) / 8
    static let registerMax: UInt8 = 63
    static let sparseValueMax = 32
    static let sparseValueMaxLength = 4
    static let sparseZeroMaxLength = 64
    static let sparseXZeroMaxLength = 16384

    package enum Encoding: UInt8, Sendable {
        case dense = 0
        case sparse = 1
    }

    /// Corrupted sparse data (Redis's `INVALIDOBJ`).
    package struct Corrupted: Error {}

    /// An empty HyperLogLog: sparse, XZERO opcodes covering every register.
    package init() {
        var bytes = Array("HYLL".utf8) + [Encoding.sparse.rawValue, 0, 0, 0] + [UInt8](repeating: 0, count: 8)
        var left = Self.registerCount
        while left > 0 {
            let run = min(left, Self.sparseXZeroMaxLength)
            bytes += Self.xzero(run)
            left -= run
        }
        self.bytes = bytes
    }

    /// A string that passes Redis's checks for an HLL value (magic, known encoding, exact dense size); nil otherwise.
    package init?(validating bytes: [UInt8]) {
        guard bytes.count >= Self.headerSize, bytes[0] == 0x48, bytes[1] == 0x59, bytes[2] == 0x4C, bytes[3] == 0x4C,
            let encoding = Encoding(rawValue: bytes[4])
        else { return nil }
        if encoding == .dense && bytes.count != Self.denseSize { return nil }
        self.bytes = bytes
    }

    package var encoding: Encoding { Encoding(rawValue: bytes[4]) ?? .dense }

    // MARK: Cached cardinality

    package var cachedCardinality: UInt64? {
        guard bytes[15] & 0x80 == 0 else { return nil }
        var value: UInt64 = 0
        for index in 0..<8 { value |= UInt64(bytes[8 + index]) << (8 * UInt64(index)) }
        return value
    }

    package mutating func cache(_ cardinality: UInt64) {
        for index in 0..<8 { bytes[8 + index] = UInt8(truncatingIfNeeded: cardinality >> (8 * UInt64(index))) }
    }

    package mutating func invalidateCache() { bytes[15] |= 0x80 }

    // MARK: Hashing

    /// MurmurHash64A as Redis uses it (little-endian words, seed 0xadc83b19).
    static func murmur64A(_ key: [UInt8], seed: UInt64 = 0xadc8_3b19) -> UInt64 {
        let m: UInt64 = 0xc6a4_a793_5bd1_e995
        let r: UInt64 = 47
        var h = seed ^ (UInt64(key.count) &* m)
        let whole = key.count - key.count % 8
        var offset = 0
        while offset < whole {
            var k: UInt64 = 0
            for byte in 0..<8 { k |= UInt64(key[offset + byte]) << (8 * UInt64(byte)) }
            k = k &* m
            k ^= k >> r
            k = k &* m
            h ^= k
            h = h &* m
            offset += 8
        }
        let rest = key.count % 8
        if rest > 0 {
            for byte in stride(from: rest - 1, through: 0, by: -1) {
                h ^= UInt64(key[whole + byte]) << (8 * UInt64(byte))
            }
            h = h &* m
        }
        h ^= h >> r
        h = h &* m
        h ^= h >> r
        return h
    }

    /// The register an element falls in and the length of its hash's `0…01` run (1 to 51).
    static func pattern(_ element: [UInt8]) -> (index: Int, count: UInt8) {
        var hash = murmur64A(element)
        let index = Int(hash & UInt64(registerCount - 1))
        hash >>= UInt64(precision)
        hash |= 1 << UInt64(q)
        var count: UInt8 = 1
        var bit: UInt64 = 1
        while hash & bit == 0 {
            count += 1
            bit <<= 1
        }
        return (index, count)
    }

    // MARK: Dense registers

    static func denseRegister(_ bytes: [UInt8], _ index: Int) -> UInt8 {
        let byte = headerSize + index * 6 / 8
        let shift = index * 6 & 7
        let b0 = UInt(bytes[byte])
        // The byte after the last register is the string's terminator in Redis: zero.
        let b1 = byte + 1 < bytes.count ? UInt(bytes[byte + 1]) : 0
        return UInt8(((b0 >> shift) | (b1 << (8 - shift))) & UInt(registerMax))
    }

    static func setDenseRegister(_ bytes: inout [UInt8], _ index: Int, _ value: UInt8) {
        let byte = headerSize + index * 6 / 8
        let shift = index * 6 & 7
        let v = UInt(value)
        bytes[byte] &= ~UInt8(truncatingIfNeeded: UInt(registerMax) << shift)
        bytes[byte] |= UInt8(truncatingIfNeeded: v << shift)
        if byte + 1 < bytes.count {
            bytes[byte + 1] &= ~UInt8(truncatingIfNeeded: UInt(registerMax) >> (8 - shift))
            bytes[byte + 1] |= UInt8(truncatingIfNeeded: v >> (8 - shift))
        }
    }

    /// Raises a dense register to `count`; whether it changed.
    mutating func denseSet(_ index: Int, _ count: UInt8) -> Bool {
        guard count > Self.denseRegister(bytes, index) else { return false }
        Self.setDenseRegister(&bytes, index, count)
        return true
    }

    // MARK: Sparse opcodes

    static func isZero(_ byte: UInt8) -> Bool { byte & 0xC0 == 0 }
    static func isXZero(_ byte: UInt8) -> Bool { byte & 0xC0 == 0x40 }
    static func isValue(_ byte: UInt8) -> Bool { byte & 0x80 != 0 }
    static func zeroLength(_ byte: UInt8) -> Int { Int(byte & 0x3F) + 1 }
    static func valueOf(_ byte: UInt8) -> Int { Int((byte >> 2) & 0x1F) + 1 }
    static func valueLength(_ byte: UInt8) -> Int { Int(byte & 0x3) + 1 }
    static func value(_ value: Int, length: Int) -> UInt8 { UInt8(((value - 1) << 2) | (length - 1)) | 0x80 }
    static func zero(_ length: Int) -> UInt8 { UInt8(length - 1) }
    static func xzero(_ length: Int) -> [UInt8] { [UInt8((length - 1) >> 8) | 0x40, UInt8((length - 1) & 0xFF)] }

    func xzeroLength(at offset: Int) -> Int {
        let low = offset + 1 < bytes.count ? Int(bytes[offset + 1]) : 0
        return ((Int(bytes[offset]) & 0x3F) << 8 | low) + 1
    }

    /// A sparse opcode: a run of zero registers (ZERO or XZERO) or of registers holding one value (VAL).
    enum Run {
        /// `extended`: an XZERO opcode (two bytes) rather than a ZERO (one).
        case zeroes(Int, extended: Bool)
        case values(value: Int, count: Int)
    }

    /// Calls `body` with each sparse opcode in order, until it returns false.
    func forEachRun(_ body: (Run) -> Bool) {
        var offset = Self.headerSize
        while offset < bytes.count {
            let byte = bytes[offset]
            let run: Run
            if Self.isZero(byte) {
                run = .zeroes(Self.zeroLength(byte), extended: false)
                offset += 1
            } else if Self.isXZero(byte) {
                run = .zeroes(xzeroLength(at: offset), extended: true)
                offset += 2
            } else {
                run = .values(value: Self.valueOf(byte), count: Self.valueLength(byte))
                offset += 1
            }
            guard body(run) else { return }
        }
    }

    /// Calls `body` with each register a sparse HLL sets (index, value); false when the opcodes do not cover
    /// exactly every register (Redis stops at a run that would overflow).
    func forEachSparseRegister(_ body: (Int, UInt8) -> Void) -> Bool {
        var index = 0
        forEachRun { run in
            switch run {
            case .zeroes(let count, _):
                index += count
            case .values(let value, let count):
                if count + index > Self.registerCount { return false }
                for _ in 0..<count {
                    body(index, UInt8(value))
                    index += 1
                }
            }
            return true
        }
        return index == Self.registerCount
    }

    /// The sparse form made dense (the header and cached cardinality kept); fails on corrupted opcodes.
    package mutating func makeDense() throws(Corrupted) {
        guard encoding == .sparse else { return }
        var dense = Array(bytes[0..<Self.headerSize]) + [UInt8](repeating: 0, count: Self.denseSize - Self.headerSize)
        dense[4] = Encoding.dense.rawValue
        guard forEachSparseRegister({ Self.setDenseRegister(&dense, $0, $1) }) else { throw Corrupted() }
        bytes = dense
    }

    /// Raises a sparse register to `count`, splitting and re-merging opcodes as Redis does, or promoting to dense
    /// when the value does not fit a VAL opcode or the string would outgrow `sparseMaxBytes`. Whether it changed.
    mutating func sparseSet(_ index: Int, _ count: UInt8, sparseMaxBytes: Int) throws(Corrupted) -> Bool {
        if Int(count) > Self.sparseValueMax { return try promote(index, count) }
        var end = bytes.count
        var offset = Self.headerSize
        var first = 0
        var previous: Int? = nil
        var span = 0
        while offset < end {
            var length = 1
            let byte = bytes[offset]
            if Self.isZero(byte) {
                span = Self.zeroLength(byte)
            } else if Self.isValue(byte) {
                span = Self.valueLength(byte)
            } else {
                span = xzeroLength(at: offset)
                length = 2
            }
            if index <= first + span - 1 { break }
            previous = offset
            offset += length
            first += span
        }
        guard span != 0, offset < end else { throw Corrupted() }
        let byte = bytes[offset]
        let zero = Self.isZero(byte)
        let xzero = Self.isXZero(byte)
        let run = zero ? Self.zeroLength(byte) : xzero ? xzeroLength(at: offset) : Self.valueLength(byte)
        var simple = false
        if !zero && !xzero {
            if Self.valueOf(byte) >= Int(count) { return false }
            if run == 1 {
                bytes[offset] = Self.value(Int(count), length: 1)
                simple = true
            }
        }
        if zero && run == 1 {
            bytes[offset] = Self.value(Int(count), length: 1)
            simple = true
        }
        if !simple {
            // Split the opcode around the register: at most XZERO-VAL-XZERO, five bytes.
            var sequence: [UInt8] = []
            let last = first + span - 1
            func zeroes(_ length: Int) -> [UInt8] {
                length > Self.sparseZeroMaxLength ? Self.xzero(length) : [Self.zero(length)]
            }
            if zero || xzero {
                if index != first { sequence += zeroes(index - first) }
                sequence.append(Self.value(Int(count), length: 1))
                if index != last { sequence += zeroes(last - index) }
            } else {
                let current = Self.valueOf(byte)
                if index != first { sequence.append(Self.value(current, length: index - first)) }
                sequence.append(Self.value(Int(count), length: 1))
                if index != last { sequence.append(Self.value(current, length: last - index)) }
            }
            let oldLength = xzero ? 2 : 1
            let delta = sequence.count - oldLength
            if delta > 0 && bytes.count + delta > sparseMaxBytes { return try promote(index, count) }
            bytes.replaceSubrange(offset..<(offset + oldLength), with: sequence)
            end += delta
        }
        // Merge adjacent VAL opcodes of equal value, scanning up to five opcodes from the one before.
        var scan = previous ?? Self.headerSize
        var budget = 5
        while scan < end {
            guard budget > 0 else { break }
            budget -= 1
            let current = bytes[scan]
            if Self.isXZero(current) {
                scan += 2
                continue
            }
            if Self.isZero(current) {
                scan += 1
                continue
            }
            if scan + 1 < end, Self.isValue(bytes[scan + 1]) {
                let value = Self.valueOf(current)
                if value == Self.valueOf(bytes[scan + 1]) {
                    let length = Self.valueLength(current) + Self.valueLength(bytes[scan + 1])
                    if length <= Self.sparseValueMaxLength {
                        bytes[scan + 1] = Self.value(value, length: length)
                        bytes.remove(at: scan)
                        end -= 1
                        continue
                    }
                }
            }
            scan += 1
        }
        invalidateCache()
        return true
    }

    private mutating func promote(_ index: Int, _ count: UInt8) throws(Corrupted) -> Bool {
        try makeDense()
        _ = denseSet(index, count)
        return true
    }

    // MARK: Operations

    /// Adds an element (PFADD): whether the estimate may have changed.
    package mutating func add(_ element: [UInt8], sparseMaxBytes: Int) throws(Corrupted) -> Bool {
        let (index, count) = Self.pattern(element)
        return try set(index, count, sparseMaxBytes: sparseMaxBytes)
    }

    /// Raises register `index` to `count` in either encoding.
    package mutating func set(_ index: Int, _ count: UInt8, sparseMaxBytes: Int) throws(Corrupted) -> Bool {
        switch encoding {
        case .dense: return denseSet(index, count)
        case .sparse: return try sparseSet(index, count, sparseMaxBytes: sparseMaxBytes)
        }
    }

    /// Folds this HLL's registers into `registers` (element-wise maximum), as PFCOUNT of several keys and PFMERGE do.
    package func merge(into registers: inout [UInt8]) throws(Corrupted) {
        switch encoding {
        case .dense:
            for index in 0..<Self.registerCount {
                registers[index] = max(registers[index], Self.denseRegister(bytes, index))
            }
        case .sparse:
            guard forEachSparseRegister({ registers[$0] = max(registers[$0], $1) }) else { throw Corrupted() }
        }
    }

    /// The estimate from the registers (the cache is neither read nor written); corrupted sparse data throws.
    package func count() throws(Corrupted) -> UInt64 {
        var histogram = [Int](repeating: 0, count: 64)
        switch encoding {
        case .dense:
            for index in 0..<Self.registerCount { histogram[Int(Self.denseRegister(bytes, index))] += 1 }
        case .sparse:
            // The histogram counts every run, even past the last register (then the HLL is reported corrupted).
            var index = 0
            forEachRun { run in
                switch run {
                case .zeroes(let count, _):
                    index += count
                    histogram[0] += count
                case .values(let value, let count):
                    index += count
                    histogram[value] += count
                }
                return true
            }
            guard index == Self.registerCount else { throw Corrupted() }
        }
        return Self.estimate(histogram)
    }

    /// The estimate of raw 8-bit registers (PFCOUNT of several keys).
    package static func count(registers: [UInt8]) -> UInt64 {
        var histogram = [Int](repeating: 0, count: 64)
        for value in registers { histogram[Int(value & 63)] += 1 }
        return estimate(histogram)
    }

    /// Ertl's estimator ("New cardinality estimation algorithms for HyperLogLog sketches"), as Redis computes it.
    static func estimate(_ histogram: [Int]) -> UInt64 {
        let m = Double(registerCount)
        var z = m * tau((m - Double(histogram[q + 1])) / m)
        for j in stride(from: q, through: 1, by: -1) {
            z += Double(histogram[j])
            z *= 0.5
        }
        z += m * sigma(Double(histogram[0]) / m)
        let alpha = 0.721347520444481703680
        return UInt64((alpha * m * m / z).rounded(.toNearestOrAwayFromZero))
    }

    static func sigma(_ value: Double) -> Double {
        if value == 1 { return .infinity }
        var x = value
        var y = 1.0
        var z = x
        var previous: Double
        repeat {
            x *= x
            previous = z
            z += x * y
            y += y
        } while previous != z
        return z
    }

    static func tau(_ value: Double) -> Double {
        if value == 0 || value == 1 { return 0 }
        var x = value
        var y = 1.0
        var z = 1 - x
        var previous: Double
        repeat {
            x = x.squareRoot()
            previous = z
            y *= 0.5
            z -= pow(1 - x, 2) * y
        } while previous != z
        return z / 3
    }

    // MARK: Debugging (PFDEBUG)

    /// Every register's value (the HLL must be dense).
    package var registers: [UInt8] { (0..<Self.registerCount).map { Self.denseRegister(bytes, $0) } }

    /// PFDEBUG DECODE's text of the sparse opcodes.
    package var decodedOpcodes: String {
        var parts: [String] = []
        forEachRun { run in
            switch run {
            case .zeroes(let count, let extended): parts.append(extended ? "Z:\(count)" : "z:\(count)")
            case .values(let value, let count): parts.append("v:\(value),\(count)")
            }
            return true
        }
        return parts.joined(separator: " ")
    }

    /// PFSELFTEST: dense registers keep every value without touching neighbours, and dense and sparse agree and
    /// stay within six standard errors up to 10,000,000 elements. Nil on success, else Redis's failure text.
    package static func selfTest(sparseMaxBytes: Int) -> String? {
        var generator = SystemRandomNumberGenerator()
        var dense = HyperLogLog()
        dense.bytes = Array(dense.bytes[0..<headerSize]) + [UInt8](repeating: 0, count: denseSize - headerSize)
        dense.bytes[4] = Encoding.dense.rawValue
        var expected = [UInt8](repeating: 0, count: registerCount)
        for _ in 0..<1000 {
            for index in 0..<registerCount {
                let value = UInt8.random(in: 0...registerMax, using: &generator)
                expected[index] = value
                setDenseRegister(&dense.bytes, index, value)
            }
            for index in 0..<registerCount where denseRegister(dense.bytes, index) != expected[index] {
                return
                    "TESTFAILED Register \(index) should be \(expected[index]) but is \(denseRegister(dense.bytes, index))"
            }
        }
        for index in headerSize..<denseSize { dense.bytes[index] = 0 }
        var sparse = HyperLogLog()
        let relativeError = 1.04 / Double(registerCount).squareRoot()
        var checkpoint = 1
        let seed = UInt64.random(in: 0...UInt64.max, using: &generator)
        for j in 1...10_000_000 {
            var element = UInt64(j) ^ seed
            let bytes = withUnsafeBytes(of: &element) { Array($0) }
            let (index, count) = pattern(bytes)
            _ = dense.denseSet(index, count)
            guard (try? sparse.set(index, count, sparseMaxBytes: sparseMaxBytes)) != nil else {
                return "TESTFAILED sparse representation corrupted"
            }
            guard j == checkpoint else { continue }
            if j < sparseMaxBytes / 2 && sparse.encoding != .sparse { return "TESTFAILED sparse encoding not used" }
            let denseCount = (try? dense.count()) ?? 0
            if denseCount != (try? sparse.count()) { return "TESTFAILED dense/sparse disagree" }
            let error = abs(Int64(checkpoint) - Int64(denseCount))
            var maxError = UInt64((relativeError * 6 * Double(checkpoint)).rounded(.up))
            if j == 10 { maxError = 1 }
            if error > Int64(maxError) { return "TESTFAILED Too big error. card:\(checkpoint) abserr:\(error)" }
            checkpoint *= 10
        }
        return nil
    }
}
