private import Synchronization

#if canImport(Glibc)
    private import Glibc
#endif

/// Monotonic time in nanoseconds, and the wall clock, injectable so lease and TTL tests never sleep for real.
package protocol StrataClock: Sendable {
    /// Nanoseconds on a monotonic scale (only differences mean anything).
    func now() -> Int64
    /// Milliseconds since the Unix epoch: what absolute expiry times (Redis's `PEXPIREAT`) are compared with.
    func wallMilliseconds() -> Int64
    /// Suspends until `now() >= deadline` or the task is cancelled (then throws `CancellationError`).
    func sleep(until deadline: Int64) async throws
}

extension StrataClock {
    package func sleep(for nanoseconds: Int64) async throws {
        try await sleep(until: now() + nanoseconds)
    }
}

/// The real monotonic clock (`CLOCK_MONOTONIC`).
package struct SystemClock: StrataClock {
    package init() {}

    package func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    package func wallMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    package func sleep(until deadline: Int64) async throws {
        let remaining = deadline - now()
        if remaining > 0 { try await Task.sleep(nanoseconds: UInt64(remaining)) }
        try Task.checkCancellation()
    }
}

/// A clock that only moves when a test calls ``advance(by:)``; sleepers wake when their deadline is reached.
package final class ManualClock: StrataClock {
    private struct Sleeper {
        let deadline: Int64
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now: Int64
        var sleepers: [Int: Sleeper] = [:]
        var nextID = 0
    }

    private let state: Mutex<State>
    private let start: Int64
    private let wallStart: Int64

    /// `wallStart`: the wall clock at `start`, in milliseconds since the epoch (moves with ``advance(by:)``).
    package init(start: Int64 = 1_000_000_000, wallStart: Int64 = 1_767_225_600_000) {
        state = Mutex(State(now: start))
        self.start = start
        self.wallStart = wallStart
    }

    package func now() -> Int64 { state.withLock { $0.now } }

    package func wallMilliseconds() -> Int64 { wallStart + (now() - start) / 1_000_000 }

    /// Number of tasks currently sleeping on this clock (tests wait for a service to park before advancing).
    package var sleeperCount: Int { state.withLock { $0.sleepers.count } }

    package func advance(by nanoseconds: Int64) {
        let woken: [CheckedContinuation<Void, any Error>] = state.withLock { state in
            state.now += nanoseconds
            let due = state.sleepers.filter { $0.value.deadline <= state.now }
            for id in due.keys { state.sleepers[id] = nil }
            return due.values.map(\.continuation)
        }
        for continuation in woken { continuation.resume() }
    }

    package func advance(bySeconds seconds: Double) {
        advance(by: Int64(seconds * 1e9))
    }

    package func sleep(until deadline: Int64) async throws {
        let id = state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow: Bool = state.withLock { state in
                    if state.now >= deadline || Task.isCancelled { return true }
                    state.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let sleeper = state.withLock { $0.sleepers.removeValue(forKey: id) }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
        try Task.checkCancellation()
    }
}
