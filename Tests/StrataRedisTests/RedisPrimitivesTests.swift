internal import NIOCore
internal import StrataRedis
internal import StrataRedisStore
internal import Testing

/// Numbers, glob patterns and replies as Redis 7.0 writes and reads them.
@Suite("Redis primitives")
struct RedisPrimitivesTests {
    /// The percentiles INFO latencystats reports are the bounds of Redis's HdrHistogram buckets (1 ns…1 s, two
    /// significant digits), from the calls' microseconds.
    @Test func latencyHistogramReportsRedisBucketBounds() {
        var histogram = RedisLatencyHistogram()
        for microseconds: Int64 in [1, 1, 1, 2, 250, 1_000, 2_000_000] {
            histogram.record(nanoseconds: microseconds * 1000)
        }
        histogram.record(nanoseconds: 0)
        #expect(histogram.total == 8)
        // 1 ns (0 clamped up) is exact; 1000 ns falls in a 4 ns wide bucket, 250 µs in a 1024 ns one.
        #expect(histogram.value(atPercentile: 0) == 1)
        #expect(histogram.value(atPercentile: 10) == 1)
        #expect(histogram.value(atPercentile: 50) == 1003)
        #expect(histogram.value(atPercentile: 60) == 2007)
        #expect(histogram.value(atPercentile: 70) == 250_879)
        #expect(histogram.value(atPercentile: 80) == 250_879)
        #expect(histogram.value(atPercentile: 90) == 1_003_519)
        // 2 s counts as 1 s, the histogram's top, in a bucket 4 Mi ns wide.
        #expect(histogram.value(atPercentile: 100) == 1_002_438_655)
        #expect(RedisLatencyHistogram().value(atPercentile: 50) == 0)
    }

    @Test func integersParseLikeString2ll() {
        func parse(_ text: String) -> Int64? { RedisNumber.parseInteger(Array(text.utf8)) }
        #expect(parse("0") == 0)
        #expect(parse("-9223372036854775808") == Int64.min)
        #expect(parse("9223372036854775807") == Int64.max)
        for bad in [" 1", "1 ", "+1", "01", "-0", "1.0", "", "9223372036854775808", "-"] {
            #expect(parse(bad) == nil, "\(bad)")
        }
    }

    @Test func floatsParseLikeStrtod() {
        func parse(_ text: String) -> Double? { RedisNumber.parseDouble(Array(text.utf8)) }
        #expect(parse("1.5") == 1.5)
        #expect(parse("0x10") == 16)
        #expect(parse("1.") == 1)
        #expect(parse("+inf") == .infinity)
        #expect(parse("-inf") == -.infinity)
        for bad in ["1e", " 1", "nan", "", "abc", "1 "] { #expect(parse(bad) == nil, "\(bad)") }
    }

    @Test func doublesPrintWithSeventeenDigits() {
        #expect(RESPValue.format(1.5) == "1.5")
        #expect(RESPValue.format(0.1) == "0.10000000000000001")
        #expect(RESPValue.format(1e3) == "1000")
        #expect(RESPValue.format(1e20) == "1e+20")
        #expect(RESPValue.format(1e-7) == "9.9999999999999995e-08")
        #expect(RESPValue.format(.infinity) == "inf")
        #expect(RESPValue.format(-.infinity) == "-inf")
    }

    @Test func incrbyfloatPrintsLikeLongDoubleHumanStrings() {
        func add(_ a: String, _ b: String) -> String? {
            guard let x = RedisNumber.parseLongDouble(Array(a.utf8)), let y = RedisNumber.parseLongDouble(Array(b.utf8))
            else { return nil }
            return RedisNumber.humanString(x + y)
        }
        #expect(add("10.50", "0.1") == "10.6")
        #expect(add("5.0e3", "2.0e2") == "5200")
        #expect(add("0", "1e-5") == "0.00001")
        #expect(add("0", "5e-20") == "0")
        #expect(add("-1", "1") == "0")
    }

    @Test func globPatterns() {
        func match(_ pattern: String, _ text: String, nocase: Bool = false) -> Bool {
            GlobPattern(Array(pattern.utf8), ignoreCase: nocase).matches(Array(text.utf8))
        }
        #expect(match("*", ""))
        #expect(match("h?llo", "hello"))
        #expect(match("h*llo", "heeeello"))
        #expect(match("h[ae]llo", "hallo"))
        #expect(!match("h[^e]llo", "hello"))
        #expect(match("h[a-b]llo", "hbllo"))
        #expect(match("h[b-a]llo", "hallo"))
        #expect(match("a\\*b", "a*b"))
        #expect(!match("a\\*b", "axb"))
        #expect(match("*b", "ab"))
        #expect(!match("*b", ""))
        #expect(match("a*", "a"))
        #expect(match("HELLO", "hello", nocase: true))
        #expect(!match("[", "["))  // an unterminated class matches nothing, as in Redis
        #expect(match("a*b*c", "aXbYc"))
        #expect(!match("*a*b", "ba"))
        #expect(match("*a*b", "xaxxb"))
        // Redis's suite: many stars against a long run that cannot match (exponential without giving up early).
        let stars = String(repeating: "a*", count: 20) + "b"
        #expect(!match(stars, String(repeating: "a", count: 40)))
        #expect(match(stars, String(repeating: "a", count: 40) + "b"))
    }

    @Test func repliesFoldIntoRESP2() {
        func encode(_ value: RESPValue, _ version: Int) -> String {
            var buffer = ByteBufferAllocator().buffer(capacity: 64)
            buffer.writeRESP(value, version: version)
            return String(decoding: buffer.readableBytesView, as: UTF8.self)
        }
        #expect(encode(.null, 2) == "$-1\r\n")
        #expect(encode(.nullArray, 2) == "*-1\r\n")
        #expect(encode(.null, 3) == "_\r\n")
        #expect(encode(.map([.bulk("a"), .integer(1)]), 2) == "*2\r\n$1\r\na\r\n:1\r\n")
        #expect(encode(.map([.bulk("a"), .integer(1)]), 3) == "%1\r\n$1\r\na\r\n:1\r\n")
        #expect(encode(.double(1.5), 2) == "$3\r\n1.5\r\n")
        #expect(encode(.double(1.5), 3) == ",1.5\r\n")
        #expect(encode(.bool(true), 2) == ":1\r\n")
        #expect(encode(.verbatim("x"), 3) == "=5\r\ntxt:x\r\n")
        #expect(encode(.integer(-42), 2) == ":-42\r\n")
        #expect(encode(.integer(Int64.min), 2) == ":-9223372036854775808\r\n")
    }

    @Test func notifyFlagsNormalizeAsConfigGetShowsThem() {
        #expect(RedisNotifyFlags(letters: "KEA")?.letters == "AKE")
        #expect(RedisNotifyFlags(letters: "Kg$lshzxetdmn")?.letters == "AKm")
        #expect(RedisNotifyFlags(letters: "El")?.letters == "lE")
        #expect(RedisNotifyFlags(letters: "Kq") == nil)
    }

    @Test func everyImplementedCommandIsInRedisTable() {
        // Building the table checks every name against Redis 7.0's (a missing one would stop the server).
        #expect(RedisCommandTable.commands.count > 200)
        for name in RedisCommandTable.commands.keys { #expect(RedisCommandSpec.byName[name] != nil, "\(name)") }
        #expect(RedisCommandSpec.documentation.info["get"] != nil)
        #expect(RedisCommandSpec.documentation.docs["set"] != nil)
    }
}
