internal import Foundation
internal import Synchronization

/// `oom-score-adj` and `oom-score-adj-values` for a process that is a Redis server (the `redis-server`
/// personality): the kernel's OOM score of this process is set from the first value (the primary's class), on top of
/// the score the process had before (`yes`/`relative`) or as is (`absolute`), and given back when turned off.
/// `strata serve` leaves its score alone: the process also serves etcd and the Iceberg catalog.
package final class RedisOOMScore: Sendable {
    private struct State {
        /// Whether this process's score is ours; `base` is what it was before.
        var adjusted = false
        var base = 0
    }

    private let state = Mutex(State())
    private let path: String

    package init(path: String = "/proc/self/oom_score_adj") {
        self.path = path
    }

    /// Applies `config`'s `oom-score-adj` and `oom-score-adj-values`.
    package func apply(_ config: RedisConfig) -> Bool {
        apply(mode: config.value("oom-score-adj") ?? "no", values: config.value("oom-score-adj-values") ?? "")
    }

    /// Applies `mode` (no, yes, relative, absolute) with `values` (three numbers); false when the score could not be
    /// read or written (lowering it needs privileges).
    package func apply(mode: String, values: String) -> Bool {
        state.withLock { state in
            let value: Int
            if mode != "no" {
                if !state.adjusted {
                    guard let text = try? String(contentsOfFile: path, encoding: .utf8),
                        let base = Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
                    else { return false }
                    state.base = base
                    state.adjusted = true
                }
                let primary = values.split(separator: " ").first.flatMap { Int($0) } ?? 0
                value = min(1000, max(-1000, mode == "absolute" ? primary : primary + state.base))
            } else if state.adjusted {
                state.adjusted = false
                value = state.base
            } else {
                return true
            }
            guard let handle = FileHandle(forWritingAtPath: path) else { return false }
            defer { try? handle.close() }
            do {
                try handle.write(contentsOf: Data("\(value)\n".utf8))
            } catch {
                return false
            }
            return true
        }
    }
}
