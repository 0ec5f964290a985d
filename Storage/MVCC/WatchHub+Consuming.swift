internal import CoreMetrics
internal import Synchronization

extension WatchHub {
    // MARK: Consuming

    enum NextStep {
        /// Updates to hand over; `more` when the watcher has further updates buffered or is catching up.
        case deliver([WatchUpdate], more: Bool)
        case end
        case catchUp(from: Revision, to: Revision)
        case wait
        /// Wait, after switching from catch-up back to live delivery (the unsynced gauge changes).
        case waitAfterRejoining
    }

    /// Takes up to `limit` buffered updates of watcher `id`, catching it up from the recent events or the log first
    /// when it is behind; never waits (`.wait` when there is nothing).
    private func advance(_ id: Int, limit: Int) throws(MVCCError) -> NextStep {
        while true {
            let step = state.withLock { state -> NextStep in
                // Mutated in place: a copy of the watcher would copy its whole buffer on every pop.
                let step =
                    state.watchers.mutate(id) { watcher -> NextStep in
                        if let update = watcher.popFirst() {
                            var updates = [update]
                            while updates.count < limit, let more = watcher.popFirst() { updates.append(more) }
                            var behind = false
                            if case .catchingUp = watcher.mode { behind = true }
                            return .deliver(updates, more: watcher.bufferedCount > 0 || behind || watcher.closed)
                        }
                        if watcher.closed { return .end }
                        if case .catchingUp(let next) = watcher.mode {
                            if next > state.published {
                                watcher.mode = .live
                                return .waitAfterRejoining
                            }
                            return .catchUp(from: next, to: state.published)
                        }
                        return .wait
                    } ?? .end
                if case .waitAfterRejoining = step { state.unsynced -= 1 }
                return step
            }
            switch step {
            case .deliver(let updates, _):
                var count = 0
                for case .events(_, let events) in updates { count += events.count }
                if count > 0 { metrics.eventsSent.increment(by: count) }
                return step
            case .end:
                if state.withLock({ $0.watchers[id]?.closed ?? false }) { cancel(id) }
                return .end
            case .catchUp(let from, let to):
                try catchUp(id, from: from, to: to)
            case .wait:
                return .wait
            case .waitAfterRejoining:
                // Gauges only change on a mode switch: recounting on every wait would cost O(watchers) per event.
                updateGauges()
                return .wait
            }
        }
    }

    /// The next updates of watcher `id` (at least one, at most `limit`; waiting for the first); nil when it ended.
    func next(_ id: Int, limit: Int) async throws(MVCCError) -> [WatchUpdate]? {
        while true {
            switch try advance(id, limit: limit) {
            case .deliver(let updates, _):
                return updates
            case .end:
                return nil
            case .catchUp, .wait, .waitAfterRejoining:
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                        let resumeNow = state.withLock { state -> Bool in
                            state.watchers.mutate(id) { watcher -> Bool in
                                if watcher.bufferedCount > 0 || watcher.closed || Task.isCancelled { return true }
                                if case .catchingUp = watcher.mode { return true }
                                watcher.waiting = continuation
                                return false
                            } ?? true
                        }
                        if resumeNow { continuation.resume() }
                    }
                } onCancel: {
                    // The consumer's task ended: wake it so `next()` returns instead of waiting for an event.
                    let waiting = state.withLock { state -> CheckedContinuation<Void, Never>? in
                        defer { state.watchers[id]?.waiting = nil }
                        return state.watchers[id]?.waiting
                    }
                    waiting?.resume()
                }
                if Task.isCancelled { return nil }
            }
        }
    }

    /// Up to `limit` updates of watcher `id` without waiting, for a consumer serving it through a ``WatchGroup``:
    /// empty when there is nothing now (the group is woken when there is), nil when the watch ended. `more` asks the
    /// consumer to poll again (more is buffered, or it is still catching up).
    func poll(_ id: Int, limit: Int) throws(MVCCError) -> (updates: [WatchUpdate], more: Bool)? {
        switch try advance(id, limit: limit) {
        case .deliver(let updates, let more): (updates, more)
        case .end: nil
        case .catchUp, .wait, .waitAfterRejoining: ([], false)
        }
    }

    /// Reads revisions `[from, to]` (at most `maxRevisionsPerCatchUp`) into the watcher's buffer: from the recent
    /// events when they still hold them (no log read, and every watcher behind on a busy key shares the events
    /// already in memory), else from the log.
    private func catchUp(_ id: Int, from: Revision, to: Revision) throws(MVCCError) {
        defer { updateGauges() }
        guard let store else { throw .closed }
        let last = min(to, from + Revision(configuration.maxRevisionsPerCatchUp) - 1)
        if from >= store.readView().compactRevision {
            let done = state.withLock { state -> Bool in
                guard let request = state.watchers[id]?.request,
                    let updates = state.recent.updates(for: request, from: from, through: last)
                else { return false }
                Self.finishCatchUp(&state, id, from: from, through: last, updates)
                return true
            }
            if done { return }
        }
        guard let request = state.withLock({ $0.watchers[id]?.request }) else { return }
        let (view, _) = try store.openReadView()
        let replayed = min(last, view.revision)
        let updates: [WatchUpdate]
        if from < view.compactRevision {
            updates = [.compacted(compactRevision: view.compactRevision)]
        } else {
            updates = try store.replay(request, from: from, through: replayed, view: view).map {
                .events(revision: $0.revision, events: $0.events)
            }
        }
        state.withLock { Self.finishCatchUp(&$0, id, from: from, through: replayed, updates) }
    }

    /// Appends a catch-up step's updates for revisions `[from, last]` and moves the watcher on: back to live delivery
    /// once it has everything published (atomically with publishers), ended when the step hit the compaction.
    private static func finishCatchUp(
        _ state: inout State,
        _ id: Int,
        from: Revision,
        through last: Revision,
        _ updates: [WatchUpdate]
    ) {
        let published = state.published
        let outcome = state.watchers.mutate(id) { watcher -> (rejoined: Bool, compacted: WatchRequest?)? in
            guard case .catchingUp(let next) = watcher.mode, next == from else { return nil }
            for update in updates { _ = watcher.append(update, id: id) }
            watcher.mode = last + 1 > published ? .live : .catchingUp(next: last + 1)
            var rejoined = false
            if case .live = watcher.mode { rejoined = true }
            guard updates.contains(where: { if case .compacted = $0 { true } else { false } }) else {
                return (rejoined, nil)
            }
            watcher.closed = true
            return (rejoined, watcher.request)
        }
        guard let outcome = outcome ?? nil else { return }
        if outcome.rejoined { state.unsynced -= 1 }
        if let request = outcome.compacted { state.index.remove(id, request.keyspace, request.range) }
    }
}
