internal import Foundation
internal import Synchronization

/// The thread scripts sent by clients run on, one after another: a long script holds neither an event loop nor its
/// other connections (they still get BUSY, and SCRIPT KILL gets through). Started on first use, it lives as long as
/// the process.
final class RedisScriptThread: Sendable {
    private let queue = Mutex<(jobs: [@Sendable () -> Void], started: Bool)>(([], false))
    private let ready = NSCondition()

    func submit(_ job: @escaping @Sendable () -> Void) {
        let start = queue.withLock { state -> Bool in
            state.jobs.append(job)
            defer { state.started = true }
            return !state.started
        }
        if start {
            let thread = Thread { [self] in run() }
            thread.name = "strata-lua"
            // Deeply nested replies and tables are converted recursively.
            thread.stackSize = 64 << 20
            thread.start()
        }
        ready.lock()
        ready.signal()
        ready.unlock()
    }

    private func run() {
        while true {
            ready.lock()
            var jobs = queue.withLock { state in
                defer { state.jobs = [] }
                return state.jobs
            }
            while jobs.isEmpty {
                ready.wait()
                jobs = queue.withLock { state in
                    defer { state.jobs = [] }
                    return state.jobs
                }
            }
            ready.unlock()
            for job in jobs { job() }
        }
    }
}
