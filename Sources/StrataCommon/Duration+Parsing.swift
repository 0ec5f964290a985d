extension Duration {
    /// Parses a configuration duration: a number with a unit (`"250ms"`, `"30s"`, `"10m"`, `"1h"`), or a bare
    /// number of seconds. Nil for anything else, including negative values.
    package init?(parsing text: String) {
        let trimmed = text.filter { $0 != " " && $0 != "_" }
        let digits = trimmed.prefix { $0.isNumber || $0 == "." }
        let unit = trimmed.dropFirst(digits.count).lowercased()
        guard !digits.isEmpty, let number = Double(digits), number.isFinite, number >= 0 else { return nil }
        let seconds: [String: Double] = ["": 1, "ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600]
        guard let scale = seconds[unit] else { return nil }
        let milliseconds = (number * scale * 1000).rounded()
        guard milliseconds < 1e15 else { return nil }
        self = .milliseconds(Int64(milliseconds))
    }

    /// Seconds as a `Double`, for APIs that take one.
    package var secondsValue: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// Whole nanoseconds, for monotonic clocks and metrics that count in them.
    package var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
