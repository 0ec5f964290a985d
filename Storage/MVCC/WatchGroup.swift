internal import Synchronization

/// Wakes one consumer that serves many watchers (a Watch stream with many watches): instead of a task per watcher
/// waiting on its own buffer, the hub marks watchers ready here and the consumer takes every ready one in one go.
package final class WatchGroup: Sendable {
    private struct State {
        var ready: Set<Int> = []
        var waiting: CheckedContinuation<Void, Never>?
        var closed = false
    }

    private let state = Mutex(State())

    package init() {}

    /// Marks watchers (by ``Watcher/id``) as having something for their consumer.
    package func markReady(_ ids: some Sequence<Int>) {
        let waiting = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.ready.formUnion(ids)
            defer { state.waiting = nil }
            return state.waiting
        }
        waiting?.resume()
    }

    /// The watchers marked ready since the last call, waiting until there is one; nil once closed or cancelled.
    package func next() async -> Set<Int>? {
        while true {
            let taken = state.withLock { state -> Set<Int>? in
                if state.closed { return nil }
                defer { state.ready = [] }
                return state.ready
            }
            guard let taken else { return nil }
            if !taken.isEmpty { return taken }
            if Task.isCancelled { return nil }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = state.withLock { state -> Bool in
                        if state.closed || !state.ready.isEmpty || Task.isCancelled { return true }
                        state.waiting = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            } onCancel: {
                let waiting = state.withLock { state -> CheckedContinuation<Void, Never>? in
                    defer { state.waiting = nil }
                    return state.waiting
                }
                waiting?.resume()
            }
        }
    }

    /// Ends the consumer's loop: `next()` returns nil.
    package func close() {
        let waiting = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.closed = true
            defer { state.waiting = nil }
            return state.waiting
        }
        waiting?.resume()
    }

    /// Wakes consumers after the hub lock is released: per-watcher continuations resumed, group members marked ready
    /// once per group.
    static func wake(_ wakeups: [WatchHub.Wakeup]) {
        guard !wakeups.isEmpty else { return }
        var groups: [ObjectIdentifier: (WatchGroup, [Int])] = [:]
        for wakeup in wakeups {
            switch wakeup {
            case .continuation(let continuation): continuation.resume()
            case .group(let group, let id): groups[ObjectIdentifier(group), default: (group, [])].1.append(id)
            }
        }
        for (group, ids) in groups.values { group.markReady(ids) }
    }
}
