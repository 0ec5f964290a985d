internal import StrataRedisStore
internal import Synchronization

/// Client-side caching (`CLIENT TRACKING`): which clients may cache which keys, and the invalidation messages a
/// write sends them — RESP3 `invalidate` pushes, or `__redis__:invalidate` messages to a RESP2 client that a
/// tracking client redirects to. Default mode remembers the keys each client read; BCAST mode matches prefixes.
/// Keys are tracked by name alone (any database), as in Redis.
package final class RedisTracking: Sendable {
    package struct Mode: Sendable {
        /// The client invalidations go to instead (0: this one).
        package var redirect: Int64 = 0
        package var broadcast = false
        package var optIn = false
        package var optOut = false
        package var noLoop = false
        package var prefixes: [[UInt8]] = []
        package var brokenRedirect = false
    }

    private struct State {
        var modes: [Int64: Mode] = [:]
        /// Key → the default-mode clients that read it since their last invalidation for it.
        var keys: [[UInt8]: Set<Int64>] = [:]
    }

    private let state = Mutex(State())
    private let tracking = Atomic<Int>(0)

    package init() {}

    /// Whether any client tracks (writes collect their keys only then).
    package var isActive: Bool { tracking.load(ordering: .relaxed) > 0 }
    package var clientCount: Int { tracking.load(ordering: .relaxed) }

    package func mode(of client: Int64) -> Mode? { state.withLock { $0.modes[client] } }

    package func enable(_ client: Int64, _ mode: Mode) {
        state.withLock { state in
            if state.modes[client] == nil { tracking.wrappingAdd(1, ordering: .relaxed) }
            state.modes[client] = mode
        }
    }

    package func disable(_ client: Int64) {
        state.withLock { state in
            if state.modes.removeValue(forKey: client) != nil { tracking.wrappingSubtract(1, ordering: .relaxed) }
        }
    }

    /// After a read-only command of a default-mode tracking client: its keys are now cached there.
    package func remember(_ keys: [[UInt8]], client: Int64, caching: Bool) {
        guard !keys.isEmpty else { return }
        state.withLock { state in
            guard let mode = state.modes[client], !mode.broadcast else { return }
            if (mode.optIn && !caching) || (mode.optOut && caching) { return }
            for key in keys { state.keys[key, default: []].insert(client) }
        }
    }

    /// After a write committed: every client that may cache one of `keys` is told. `writer` is the client that
    /// wrote (NOLOOP clients are not told of their own writes); `ownSink` writes a message for the writer itself
    /// after its reply (nil: through its channel).
    package func invalidate(
        _ keys: [[UInt8]],
        flushed: Bool,
        writer: RedisClient?,
        server: RedisServer,
        ownSink: ((RESPValue) -> Void)? = nil
    ) {
        // (A flush empties the table even when nobody tracks now: keys read before tracking went off are gone too.)
        guard isActive || flushed, !keys.isEmpty || flushed else { return }
        var messages: [(target: Int64, keys: RESPValue)] = []
        state.withLock { state in
            if flushed {
                // Everything any client cached is gone: one message with a null key list, to every tracking client.
                state.keys = [:]
                for id in state.modes.keys.sorted() { messages.append((id, .null)) }
                return
            }
            func unique(_ keys: [[UInt8]]) -> [[UInt8]] {
                var seen: [[UInt8]] = []
                for key in keys where !seen.contains(key) { seen.append(key) }
                return seen
            }
            // Default mode: a message per key, to each client that read it, in the order the write changed them.
            for key in unique(keys) {
                guard let readers = state.keys.removeValue(forKey: key) else { continue }
                for id in readers.sorted() {
                    guard let mode = state.modes[id], !mode.broadcast else { continue }
                    if mode.noLoop && id == writer?.id { continue }
                    messages.append((id, .array([.bulk(key)])))
                }
            }
            // BCAST: one message per matching prefix, as Redis sends them.
            for (id, mode) in state.modes.sorted(by: { $0.key < $1.key }) where mode.broadcast {
                if mode.noLoop && id == writer?.id { continue }
                for prefix in mode.prefixes {
                    let matching = unique(keys.filter { $0.starts(with: prefix) })
                    if !matching.isEmpty { messages.append((id, .array(matching.map { .bulk($0) }))) }
                }
            }
        }
        for (id, keys) in messages { send(keys, to: id, writer: writer, server: server, ownSink: ownSink) }
    }

    private func send(
        _ keys: RESPValue,
        to id: Int64,
        writer: RedisClient?,
        server: RedisServer,
        ownSink: ((RESPValue) -> Void)?
    ) {
        guard let mode = mode(of: id), let tracker = server.clients.client(id) else { return }
        var target = tracker
        var redirected = false
        if mode.redirect != 0 {
            guard let other = server.clients.client(mode.redirect) else {
                state.withLock { $0.modes[id]?.brokenRedirect = true }
                if tracker.resp == 3 {
                    deliver(.push([.bulk("tracking-redir-broken"), .integer(mode.redirect)]), to: tracker, server)
                }
                return
            }
            target = other
            redirected = true
        }
        let message: RESPValue
        if target.resp == 3 {
            message = .push([.bulk("invalidate"), keys])
        } else if redirected && target.isSubscribed {
            message = .push([.bulk("message"), .bulk("__redis__:invalidate"), keys])
        } else {
            return
        }
        if target === writer, let ownSink {
            ownSink(message)
        } else {
            deliver(message, to: target, server)
        }
    }

    private func deliver(_ message: RESPValue, to client: RedisClient, _ server: RedisServer) {
        client.push(message, limit: server.config.effective.outputLimits[.normal])
    }

    /// Keys in the tracking table (INFO `tracking_total_keys`), and (key, client) pairs (`tracking_total_items`).
    package var totals: (keys: Int, items: Int, prefixes: Int) {
        state.withLock { state in
            let prefixes = Set(state.modes.values.filter(\.broadcast).flatMap(\.prefixes))
            return (state.keys.count, state.keys.values.reduce(0) { $0 + $1.count }, prefixes.count)
        }
    }

    /// Past `tracking-table-max-keys` (0: no limit), keys leave the table and their readers are told to forget
    /// them, as Redis evicts them.
    package func enforceLimit(_ server: RedisServer) {
        guard isActive else { return }
        let limit = Int(server.config.value("tracking-table-max-keys") ?? "") ?? 1_000_000
        guard limit > 0 else { return }
        var evicted: [(key: [UInt8], readers: Set<Int64>)] = []
        state.withLock { state in
            while state.keys.count > limit, let key = state.keys.keys.first {
                evicted.append((key, state.keys.removeValue(forKey: key)!))
            }
        }
        for (key, readers) in evicted {
            for id in readers.sorted() where mode(of: id).map({ !$0.broadcast }) ?? false {
                send(.array([.bulk(key)]), to: id, writer: nil, server: server, ownSink: nil)
            }
        }
    }

    /// CLIENT TRACKINGINFO's flags.
    package func flags(of client: Int64, caching: Bool) -> [String] {
        guard let mode = mode(of: client) else { return ["off"] }
        var flags = ["on"]
        if mode.broadcast { flags.append("bcast") }
        if mode.optIn {
            flags.append("optin")
            if caching { flags.append("caching-yes") }
        }
        if mode.optOut {
            flags.append("optout")
            if caching { flags.append("caching-no") }
        }
        if mode.noLoop { flags.append("noloop") }
        if mode.brokenRedirect { flags.append("broken_redirect") }
        return flags
    }
}
