/// Redis's glob patterns (KEYS, SCAN MATCH, PSUBSCRIBE, CONFIG GET): `*`, `?`, `[abc]`, `[^a-z]`, `\x` escapes,
/// over bytes.
package struct GlobPattern: Sendable, Hashable {
    package let pattern: [UInt8]
    package let ignoreCase: Bool

    package init(_ pattern: [UInt8], ignoreCase: Bool = false) {
        self.pattern = pattern
        self.ignoreCase = ignoreCase
    }

    /// True when the pattern is `*` (matches everything: callers skip the check).
    package var matchesAll: Bool { pattern == [UInt8(ascii: "*")] }

    package func matches(_ string: [UInt8]) -> Bool {
        pattern.withUnsafeBufferPointer { p in
            string.withUnsafeBufferPointer { s in
                var giveUp = false
                return Self.match(p[...], s[...], ignoreCase, depth: 0, giveUp: &giveUp)
            }
        }
    }

    private static func lower(_ byte: UInt8, _ ignoreCase: Bool) -> UInt8 {
        ignoreCase && byte >= 65 && byte <= 90 ? byte + 32 : byte
    }

    // Recursion is bounded by the number of `*` in the pattern (each level consumes one) and capped, as in Redis
    // 7.0's matcher. `giveUp`: once the rest of the pattern after a star matched nowhere in the rest of the string,
    // no earlier star can help by matching more (that would only start the rest later), so every level stops —
    // without it `a*a*a*…b` against a long run of `a` takes exponential time.
    private static func match(
        _ pattern: Slice<UnsafeBufferPointer<UInt8>>,
        _ string: Slice<UnsafeBufferPointer<UInt8>>,
        _ ignoreCase: Bool,
        depth: Int,
        giveUp: inout Bool
    ) -> Bool {
        var p = pattern.startIndex
        var s = string.startIndex
        let pEnd = pattern.endIndex
        let sEnd = string.endIndex
        if depth > 1000 { return false }
        while p < pEnd && s < sEnd {
            switch pattern[p] {
            case UInt8(ascii: "*"):
                while p + 1 < pEnd && pattern[p + 1] == UInt8(ascii: "*") { p += 1 }
                if p + 1 == pEnd { return true }
                var start = s
                while start < sEnd {
                    if match(pattern[(p + 1)...], string[start...], ignoreCase, depth: depth + 1, giveUp: &giveUp) {
                        return true
                    }
                    if giveUp { return false }
                    start += 1
                }
                giveUp = true
                return false
            case UInt8(ascii: "?"):
                s += 1
            case UInt8(ascii: "["):
                p += 1
                let negate = p < pEnd && pattern[p] == UInt8(ascii: "^")
                if negate { p += 1 }
                var matched = false
                while true {
                    if p >= pEnd {
                        p -= 1
                        break
                    }
                    let c = pattern[p]
                    if c == UInt8(ascii: "\\") && p + 1 < pEnd {
                        p += 1
                        if pattern[p] == string[s] { matched = true }
                    } else if c == UInt8(ascii: "]") {
                        break
                    } else if p + 2 < pEnd && pattern[p + 1] == UInt8(ascii: "-") {
                        var start = lower(pattern[p], ignoreCase)
                        var end = lower(pattern[p + 2], ignoreCase)
                        let ch = lower(string[s], ignoreCase)
                        if start > end { swap(&start, &end) }
                        p += 2
                        if ch >= start && ch <= end { matched = true }
                    } else if lower(c, ignoreCase) == lower(string[s], ignoreCase) {
                        matched = true
                    }
                    p += 1
                }
                if negate { matched.toggle() }
                if !matched { return false }
                s += 1
            case UInt8(ascii: "\\") where p + 1 < pEnd:
                p += 1
                if lower(pattern[p], ignoreCase) != lower(string[s], ignoreCase) { return false }
                s += 1
            default:
                if lower(pattern[p], ignoreCase) != lower(string[s], ignoreCase) { return false }
                s += 1
            }
            p += 1
        }
        // The string ended: only stars may remain.
        if s == sEnd {
            while p < pEnd && pattern[p] == UInt8(ascii: "*") { p += 1 }
        }
        return p == pEnd && s == sEnd
    }
}
