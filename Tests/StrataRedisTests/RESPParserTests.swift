internal import NIOCore
internal import StrataRedis
internal import Testing

/// The request parser against Redis 7.0's rules (inline and multibulk, limits, exact protocol errors).
@Suite("RESP request parser")
struct RESPParserTests {
    func parse(_ text: String, authenticated: Bool = true) -> [RESPRequestParser.Outcome] {
        var parser = RESPRequestParser(authenticated: authenticated)
        var buffer = ByteBuffer(bytes: Array(text.utf8))
        var outcomes: [RESPRequestParser.Outcome] = []
        while true {
            let outcome = parser.next(&buffer)
            outcomes.append(outcome)
            if case .needMore = outcome { break }
            if case .protocolError = outcome { break }
        }
        return outcomes
    }

    func words(_ items: String...) -> RESPRequestParser.Outcome { .command(items.map { Array($0.utf8) }) }

    @Test func multibulkAndInlineMix() {
        #expect(parse("*1\r\n$4\r\nPING\r\nPING\r\n") == [words("PING"), words("PING"), .needMore])
        #expect(parse("*2\r\n$3\r\nGET\r\n$0\r\n\r\n") == [words("GET", ""), .needMore])
    }

    @Test func emptyAndNonPositiveCountsAreIgnored() {
        #expect(parse("*0\r\nPING\r\n") == [.nothing, words("PING"), .needMore])
        #expect(parse("*-5\r\n") == [.nothing, .needMore])
        #expect(parse("\r\n") == [.nothing, .needMore])
    }

    @Test func bytesAfterABulkAreSkippedUnchecked() {
        #expect(parse("*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n") == [words("PING"), words("PING"), .needMore])
    }

    @Test func partialInputWaits() {
        var parser = RESPRequestParser()
        var buffer = ByteBuffer(bytes: Array("*2\r\n$3\r\nSET\r\n$5\r\nhel".utf8))
        #expect(parser.next(&buffer) == .needMore)
        buffer.writeBytes(Array("lo\r\n".utf8))
        #expect(parser.next(&buffer) == words("SET", "hello"))
    }

    @Test func protocolErrors() {
        #expect(parse("*x\r\n").last == .protocolError("invalid multibulk length"))
        #expect(parse("*2147483648\r\n").last == .protocolError("invalid multibulk length"))
        #expect(parse("*1\r\nx\r\n").last == .protocolError("expected '$', got 'x'"))
        #expect(parse("*1\r\n$-1\r\n").last == .protocolError("invalid bulk length"))
        #expect(parse("*1\r\n$536870913\r\n").last == .protocolError("invalid bulk length"))
        #expect(parse("*1\r\n$536870912\r\n").last == .needMore)
        #expect(parse("*11\r\n", authenticated: false).last == .protocolError("unauthenticated multibulk length"))
        #expect(parse("*1\r\n$16385\r\n", authenticated: false).last == .protocolError("unauthenticated bulk length"))
        #expect(parse("SET a \"b\r\n").last == .protocolError("unbalanced quotes in request"))
        #expect(parse(String(repeating: "a", count: 70_000)).last == .protocolError("too big inline request"))
        #expect(parse("*" + String(repeating: "1", count: 70_000)).last == .protocolError("too big mbulk count string"))
    }

    @Test func commandsBeforeABadOneStillParse() {
        #expect(parse("PING\r\n*1\r\nx\r\nPING\r\n") == [words("PING"), .protocolError("expected '$', got 'x'")])
    }

    @Test func inlineQuotingFollowsSdssplitargs() {
        func split(_ line: String) -> [String]? {
            RESPRequestParser.splitArguments(Array(line.utf8)).map { $0.map { String(decoding: $0, as: UTF8.self) } }
        }
        #expect(split("SET b 'x\\ny' ") == ["SET", "b", "x\\ny"])
        #expect(split("SET c \"\\x41\\n\"") == ["SET", "c", "A\n"])
        #expect(split("  a   b\tc  ") == ["a", "b", "c"])
        #expect(split("'it\\'s'") == ["it's"])
        #expect(split("a\"b c\"d") == nil)
        #expect(split("\"unterminated") == nil)
        #expect(split("x\"q r\"") == ["xq r"])
        #expect(split("") == [])
    }
}
