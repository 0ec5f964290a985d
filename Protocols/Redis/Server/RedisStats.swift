package import Synchronization

/// INFO's counters (stats, commandstats, errorstats, persistence).
package final class RedisStats: Sendable {
    package struct CommandStat: Sendable {
        package var calls = 0
        package var microseconds: Int64 = 0
        package var rejected = 0
        package var failed = 0
        /// nil until the command runs with `latency-tracking` on (INFO latencystats lists only those).
        package var latency: RedisLatencyHistogram? = nil
    }

    package let connectionsReceived = Atomic<Int>(0)
    package let connectionsRejected = Atomic<Int>(0)
    package let commandsProcessed = Atomic<Int>(0)
    package let keyspaceHits = Atomic<Int>(0)
    package let keyspaceMisses = Atomic<Int>(0)
    package let expiredKeys = Atomic<Int>(0)
    package let errorReplies = Atomic<Int>(0)
    package let inputBytes = Atomic<Int>(0)
    package let outputBytes = Atomic<Int>(0)
    /// Writes since the last SAVE (INFO `rdb_changes_since_last_save`).
    package let dirty = Atomic<Int>(0)
    package let lastSave: Atomic<Int64>
    package let pubsubMessages = Atomic<Int>(0)
    private let commands = Mutex<[String: CommandStat]>([:])
    private let errors = Mutex<[String: Int]>([:])

    /// (monotonic ms, commands) samples for `instantaneous_ops_per_sec`.
    private let samples = Mutex<[(Int64, Int)]>([])

    /// Commands per second over the last few seconds.
    package func instantaneousOpsPerSecond(now: Int64) -> Int {
        let processed = commandsProcessed.load(ordering: .relaxed)
        return samples.withLock { samples in
            samples.append((now, processed))
            samples.removeAll { now - $0.0 > 5000 }
            guard let first = samples.first, now - first.0 > 0 else { return 0 }
            return Int(Double(processed - first.1) * 1000 / Double(now - first.0))
        }
    }

    package init(now: Int64) {
        lastSave = Atomic(now / 1000)
    }

    /// One call of `command`; `trackLatency` (`latency-tracking`) also puts it in the command's latency histogram, in
    /// nanoseconds at microsecond resolution as Redis does.
    package func record(_ command: String, microseconds: Int64, failed: Bool, trackLatency: Bool) {
        commands.withLock { table in
            Self.count(&table[command, default: CommandStat()], microseconds, failed, trackLatency)
        }
    }

    private static func count(_ stat: inout CommandStat, _ microseconds: Int64, _ failed: Bool, _ trackLatency: Bool) {
        stat.calls += 1
        stat.microseconds += microseconds
        if failed { stat.failed += 1 }
        if trackLatency {
            if stat.latency == nil { stat.latency = RedisLatencyHistogram() }
            stat.latency!.record(nanoseconds: microseconds * 1000)
        }
    }

    /// A blocked command that ended with an error (its call was counted when it blocked).
    package func failedAfterBlocking(_ command: String) {
        commands.withLock { table in table[command, default: CommandStat()].failed += 1 }
    }

    package func rejected(_ command: String) {
        commands.withLock { table in table[command, default: CommandStat()].rejected += 1 }
    }

    /// Counts an error reply by its first word (`ERR`, `WRONGTYPE`, …).
    package func recordError(_ message: String) {
        errorReplies.wrappingAdd(1, ordering: .relaxed)
        let code = String(message.prefix { $0 != " " })
        errors.withLock { $0[code, default: 0] += 1 }
    }

    package var commandTable: [String: CommandStat] { commands.withLock { $0 } }
    package var errorTable: [String: Int] { errors.withLock { $0 } }

    /// CONFIG RESETSTAT.
    package func reset() {
        connectionsReceived.store(0, ordering: .relaxed)
        connectionsRejected.store(0, ordering: .relaxed)
        commandsProcessed.store(0, ordering: .relaxed)
        keyspaceHits.store(0, ordering: .relaxed)
        keyspaceMisses.store(0, ordering: .relaxed)
        expiredKeys.store(0, ordering: .relaxed)
        errorReplies.store(0, ordering: .relaxed)
        inputBytes.store(0, ordering: .relaxed)
        outputBytes.store(0, ordering: .relaxed)
        pubsubMessages.store(0, ordering: .relaxed)
        commands.withLock { $0 = [:] }
        errors.withLock { $0 = [:] }
    }
}
