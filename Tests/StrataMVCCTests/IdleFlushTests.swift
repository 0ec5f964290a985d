import Foundation
import StrataLease
import StrataMVCC
import StrataRocksDB
import StrataTestSupport
import Testing

@Suite struct IdleFlushTests {
    static func fixture(minimumBytes: UInt64 = 64 << 10) throws -> StoreFixture {
        try StoreFixture { configuration in
            var policy = MVCCStore.IdleFlush.defaults
            policy.after = .seconds(10)
            policy.minimumBytes = minimumBytes
            configuration.idleFlush = policy
        }
    }

    static let value = String(repeating: "v", count: 1024)

    func memtableBytes(_ fixture: StoreFixture) -> UInt64 { fixture.database.totalProperty(.memtablesSize) }
    func sstBytes(_ fixture: StoreFixture) -> UInt64 { fixture.database.totalProperty(.totalSSTFilesSize) }

    @Test func flushesOnlyAfterTheIdlePeriodAndKeepsEveryVersion() async throws {
        let fixture = try Self.fixture()
        for i in 0..<200 { try await fixture.put("key/\(i % 50)", "\(i) \(Self.value)") }
        let before = memtableBytes(fixture)
        #expect(before > 200 << 10)

        #expect(try !fixture.store.flushIfIdle())  // first look: idle since now
        fixture.clock.advance(bySeconds: 9)
        #expect(try !fixture.store.flushIfIdle())
        // A write restarts the idle period.
        try await fixture.put("key/late", "late")
        fixture.clock.advance(bySeconds: 5)
        #expect(try !fixture.store.flushIfIdle())
        fixture.clock.advance(bySeconds: 9)
        #expect(try !fixture.store.flushIfIdle())
        #expect(sstBytes(fixture) == 0)
        fixture.clock.advance(bySeconds: 1)
        #expect(try fixture.store.flushIfIdle())

        #expect(memtableBytes(fixture) < before / 4)
        #expect(sstBytes(fixture) > 0)
        // Once flushed, nothing more to do until the next write.
        fixture.clock.advance(bySeconds: 60)
        #expect(try !fixture.store.flushIfIdle())

        // Latest and historical reads, from SST files now.
        #expect(try fixture.get("key/7").map { s($0.value) } == "157 \(Self.value)")
        #expect(try fixture.get("key/7", revision: 9).map { s($0.value) } == "7 \(Self.value)")
        #expect(try fixture.get("key/late")?.version == 1)
        try fixture.reopen()
        #expect(try fixture.get("key/49", revision: 100).map { s($0.value) } == "49 \(Self.value)")
        #expect(fixture.store.currentRevision == 202)
    }

    @Test func smallMemtablesStayAndNilDisables() async throws {
        let small = try Self.fixture(minimumBytes: MVCCStore.IdleFlush.defaults.minimumBytes)
        try await small.put("a", Self.value)
        #expect(try !small.store.flushIfIdle())
        small.clock.advance(bySeconds: 30)
        #expect(try !small.store.flushIfIdle())
        #expect(sstBytes(small) == 0)

        let disabled = try StoreFixture { $0.idleFlush = nil }
        for i in 0..<300 { try await disabled.put("k\(i)", Self.value) }
        #expect(try !disabled.store.flushIfIdle())
        disabled.clock.advance(bySeconds: 3600)
        #expect(try !disabled.store.flushIfIdle())
        #expect(sstBytes(disabled) == 0)
    }

    /// The background task (``MVCCStore/runBackgroundTasks()``) does it on its own as the clock moves.
    @Test func backgroundTaskFlushesAnIdleStore() async throws {
        let fixture = try Self.fixture()
        for i in 0..<300 { try await fixture.put("k\(i)", Self.value) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await fixture.store.runBackgroundTasks() }
            var flushed = false
            for _ in 0..<500 where !flushed {
                fixture.clock.advance(bySeconds: 1)
                try await Task.sleep(for: .milliseconds(20))
                flushed = sstBytes(fixture) > 0
            }
            group.cancelAll()
            #expect(flushed)
        }
        #expect(memtableBytes(fixture) < 64 << 10)
        #expect(try fixture.get("k299").map { s($0.value) } == Self.value)
    }
}
