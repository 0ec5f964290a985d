internal import Foundation

/// Numbers as Redis 7.0 reads and writes them.
package enum RedisNumber {
    /// `string2ll`: an optional `-`, then `0` or digits without a leading zero; no `+`, no spaces, no `-0`; the
    /// whole of `bytes`, within 64 bits.
    package static func parseInteger<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Int64? {
        guard !bytes.isEmpty, bytes.count <= 20 else { return nil }
        var index = bytes.startIndex
        if bytes.count == 1 && bytes[index] == UInt8(ascii: "0") { return 0 }
        var negative = false
        if bytes[index] == UInt8(ascii: "-") {
            negative = true
            index = bytes.index(after: index)
            guard index != bytes.endIndex else { return nil }
        }
        guard bytes[index] >= UInt8(ascii: "1") && bytes[index] <= UInt8(ascii: "9") else { return nil }
        var magnitude: UInt64 = 0
        while index != bytes.endIndex {
            let byte = bytes[index]
            guard byte >= 48 && byte <= 57 else { return nil }
            let (times, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(UInt64(byte - 48))
            if overflow1 || overflow2 { return nil }
            magnitude = sum
            index = bytes.index(after: index)
        }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { return nil }
        return Int64(magnitude)
    }

    /// `strtoull` as SCAN reads its cursor: digits (a leading `-` wraps, as C's does); nil when not all digits.
    package static func parseCursor(_ bytes: [UInt8]) -> UInt64? {
        var digits = bytes[...]
        var negative = false
        if digits.first == UInt8(ascii: "-") {
            negative = true
            digits = digits.dropFirst()
        } else if digits.first == UInt8(ascii: "+") {
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty else { return nil }
        var value: UInt64 = 0
        for byte in digits {
            guard byte >= 48 && byte <= 57 else { return nil }
            let (times, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times.addingReportingOverflow(UInt64(byte - 48))
            if o1 || o2 { return nil }
            value = sum
        }
        return negative ? 0 &- value : value
    }

    /// `strtod` over the whole argument, as scores and float arguments are read: no spaces, `nan` refused; `inf`,
    /// `+inf`, `-inf`, hex (`0x10`) and `1.` accepted.
    package static func parseDouble(_ bytes: [UInt8]) -> Double? {
        guard !bytes.isEmpty else { return nil }
        if let first = bytes.first, first == 32 || (first >= 9 && first <= 13) { return nil }
        return bytes.withUnsafeBufferPointer { buffer -> Double? in
            var terminated = Array(buffer)
            terminated.append(0)
            return terminated.withUnsafeBufferPointer { pointer -> Double? in
                let start = UnsafeRawPointer(pointer.baseAddress!).assumingMemoryBound(to: CChar.self)
                var end: UnsafeMutablePointer<CChar>? = nil
                errno = 0
                let value = strtod(start, &end)
                guard let end, end - UnsafeMutablePointer(mutating: start) == bytes.count else { return nil }
                if value.isNaN { return nil }
                // As Redis's string2d: out of range (overflow to ±inf, underflow to 0) is refused, subnormals pass.
                if errno == ERANGE && (value.isInfinite || value == 0) { return nil }
                return value
            }
        }
    }

    /// `strtold` over the whole argument (INCRBYFLOAT): x87 long double where the platform has it.
    package static func parseLongDouble(_ bytes: [UInt8]) -> LongDouble? {
        guard !bytes.isEmpty, bytes.count < 5000 else { return nil }
        if let first = bytes.first, first == 32 || (first >= 9 && first <= 13) { return nil }
        var terminated = bytes
        terminated.append(0)
        return terminated.withUnsafeBufferPointer { pointer -> LongDouble? in
            let start = UnsafeRawPointer(pointer.baseAddress!).assumingMemoryBound(to: CChar.self)
            var end: UnsafeMutablePointer<CChar>? = nil
            errno = 0
            let value = LongDouble.parse(start, &end)
            guard let end, end - UnsafeMutablePointer(mutating: start) == bytes.count else { return nil }
            if value.isNaN { return nil }
            if errno == ERANGE && !value.isInfinite && value != 0 { return nil }
            return value
        }
    }

    /// `ld2string(…, LD_STR_HUMAN)`: `%.17Lf`, trailing zeros and a trailing `.` removed, `-0` → `0`; nil for
    /// infinity or NaN.
    package static func humanString(_ value: LongDouble) -> String? {
        guard value.isFinite else { return nil }
        var text = LongDouble.format17f(value)
        if text.contains(".") {
            while text.hasSuffix("0") { text.removeLast() }
            if text.hasSuffix(".") { text.removeLast() }
        }
        if text == "-0" { text = "0" }
        return text
    }
}

#if arch(x86_64) && !os(Windows)
    /// INCRBYFLOAT's arithmetic type: x87 80-bit on x86-64, as Redis's `long double`.
    package typealias LongDouble = Float80
#else
    package typealias LongDouble = Double
#endif

extension LongDouble {
    static func parse(_ start: UnsafePointer<CChar>, _ end: inout UnsafeMutablePointer<CChar>?) -> LongDouble {
        #if arch(x86_64) && !os(Windows)
            return strtold(start, &end)
        #else
            return strtod(start, &end)
        #endif
    }

    /// `%.17Lf` through the C library (glibc prints long doubles exactly).
    static func format17f(_ value: LongDouble) -> String {
        var buffer = [CChar](repeating: 0, count: 5200)
        let count = withVaList([value]) { arguments in
            buffer.withUnsafeMutableBufferPointer {
                vsnprintf($0.baseAddress, $0.count, MemoryLayout<LongDouble>.size > 8 ? "%.17Lf" : "%.17f", arguments)
            }
        }
        return String(decoding: buffer.prefix(Int(max(0, count))).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
