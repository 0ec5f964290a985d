/// One command's latencies for INFO latencystats, in nanoseconds from 1 ns to 1 s with two significant digits, bucketed
/// exactly as the HdrHistogram Redis keeps per command, so a percentile reports the bound Redis would report.
///
/// Sparse: only buckets that saw a call take memory (a command runs in a few dozen buckets, not the ~2,900 of the range).
package struct RedisLatencyHistogram: Sendable {
    static let lowest: Int64 = 1
    static let highest: Int64 = 1_000_000_000

    /// Calls per bucket, keyed by the bucket's lowest value.
    private var counts: [Int64: Int64] = [:]
    private(set) package var total: Int64 = 0

    package init() {}

    package mutating func record(nanoseconds: Int64) {
        let value = min(max(nanoseconds, Self.lowest), Self.highest)
        counts[Self.bucket(value).lowest, default: 0] += 1
        total += 1
    }

    /// Redis's `hdr_value_at_percentile`: the highest value of the bucket holding the call at `percentile` (the lowest
    /// value for percentile 0).
    package func value(atPercentile percentile: Double) -> Int64 {
        let requested = min(percentile, 100)
        let rank = max(Int64((requested / 100 * Double(total)) + 0.5), 1)
        var seen: Int64 = 0
        for lowest in counts.keys.sorted() {
            seen += counts[lowest] ?? 0
            if seen >= rank {
                return percentile == 0 ? lowest : lowest + Self.bucket(lowest).width - 1
            }
        }
        return 0
    }

    /// 256 exact values, then ranges of 128 sub-buckets each twice as wide as the last (2 significant digits).
    private static func bucket(_ value: Int64) -> (lowest: Int64, width: Int64) {
        let magnitude = (64 - (value | 255).leadingZeroBitCount) - 8
        return ((value >> magnitude) << magnitude, 1 << magnitude)
    }
}
