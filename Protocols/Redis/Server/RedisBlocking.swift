package import StrataMVCC
package import StrataRedisStore
internal import Synchronization

/// What a blocking command (BLPOP, BLMOVE, BZPOPMIN, …) that found nothing waits for.
package struct RedisBlockRequest: Sendable {
    package let keys: [[UInt8]]
    /// Seconds; 0 waits forever.
    package let timeout: Double
    /// The command line to run when a key is ready, when not the one given (XREAD's `$` is resolved at once).
    package let arguments: [[UInt8]]?
    package init(keys: [[UInt8]], timeout: Double, arguments: [[UInt8]]? = nil) {
        self.keys = keys
        self.timeout = timeout
        self.arguments = arguments
    }
}

/// Clients blocked on keys, first blocked first served. A write that leaves a list or sorted set behind signals
/// its keys (``RedisData/readied``); the signalling thread retries the blocked commands in order, each as its own
/// transaction, and hands each served reply to its connection. A blocked client costs a queue entry and a timer,
/// no thread.
package final class RedisBlocking: Sendable {
    package final class Waiter: Sendable {
        enum State { case waiting, serving, done }

        package let clientID: Int64
        let db: Int
        let keys: [[UInt8]]
        let command: RedisCommand
        let arguments: [[UInt8]]
        nonisolated(unsafe) let session: RedisSession
        /// Monotonic milliseconds; 0: never.
        let deadline: Int64
        let state = Mutex(State.waiting)
        /// Hands the served reply (the pending write's durability, and the keys it changed, for client-side caching)
        /// to the connection's loop.
        let served: @Sendable (RESPValue, RedisDurabilityWait?, [[UInt8]]) -> Void
        /// Ends the wait with the timeout reply (or an error) on the connection's loop.
        let ended: @Sendable (RESPValue) -> Void

        init(
            session: RedisSession,
            db: Int,
            request: RedisBlockRequest,
            command: RedisCommand,
            arguments: [[UInt8]],
            deadline: Int64,
            served: @escaping @Sendable (RESPValue, RedisDurabilityWait?, [[UInt8]]) -> Void,
            ended: @escaping @Sendable (RESPValue) -> Void
        ) {
            self.clientID = session.client.id
            self.session = session
            self.db = db
            self.keys = request.keys
            self.command = command
            self.arguments = request.arguments ?? arguments
            self.deadline = deadline
            self.served = served
            self.ended = ended
        }
    }

    private let queues = Mutex<[RedisKeyName: [Waiter]]>([:])
    private let waiters = Mutex<[Int64: Waiter]>([:])

    package init() {}

    package var blockedCount: Int { waiters.withLock { $0.count } }

    /// Keys of database `db` that clients wait on.
    package func blockedKeys(in db: Int) -> [RedisKeyName] {
        queues.withLock { queues in queues.keys.filter { $0.db == db } }
    }

    /// Keys with at least one waiter (INFO `blocking_keys`).
    package var blockedKeyCount: Int { queues.withLock { $0.count } }

    func add(_ waiter: Waiter) {
        queues.withLock { queues in
            for key in waiter.keys { queues[RedisKeyName(db: waiter.db, key: key), default: []].append(waiter) }
        }
        waiters.withLock { $0[waiter.clientID] = waiter }
    }

    private func remove(_ waiter: Waiter) {
        queues.withLock { queues in
            for key in waiter.keys {
                let name = RedisKeyName(db: waiter.db, key: key)
                queues[name]?.removeAll { $0 === waiter }
                if queues[name]?.isEmpty == true { queues[name] = nil }
            }
        }
        waiters.withLock { if $0[waiter.clientID] === waiter { $0[waiter.clientID] = nil } }
    }

    /// Ends client `id`'s wait with `reply` (timeout, CLIENT UNBLOCK, disconnect); false when it is not waiting.
    @discardableResult
    package func end(_ id: Int64, with reply: RESPValue?) -> Bool {
        guard let waiter = waiters.withLock({ $0[id] }) else { return false }
        let taken = waiter.state.withLock { state -> Bool in
            guard state == .waiting else { return false }
            state = .done
            return true
        }
        guard taken else { return false }
        remove(waiter)
        if let reply { waiter.ended(reply) }
        return true
    }

    /// Serves clients blocked on `keys` (written by a transaction that just committed), in blocking order, and
    /// whatever their own writes make ready.
    package func signal(_ keys: [RedisKeyName], server: RedisServer) {
        var pending = keys
        var seen = Set<RedisKeyName>()
        while let key = pending.popLast() {
            if !seen.insert(key).inserted { continue }
            while let waiter = queues.withLock({ $0[key]?.first(where: { $0.state.withLock { $0 == .waiting } }) }) {
                let taken = waiter.state.withLock { state -> Bool in
                    guard state == .waiting else { return false }
                    state = .serving
                    return true
                }
                guard taken else { continue }
                guard let (reply, readied, durability, modified) = serve(waiter, server: server) else {
                    // Not servable (the key holds another type, or emptied again): keep waiting, in place.
                    waiter.state.withLock { $0 = .waiting }
                    break
                }
                waiter.state.withLock { $0 = .done }
                remove(waiter)
                waiter.served(reply, durability, modified)
                seen.remove(key)
                pending.append(contentsOf: readied)
            }
        }
    }

    /// Runs the waiter's command again in a write transaction; nil when it would still block.
    private func serve(_ waiter: Waiter, server: RedisServer)
        -> (RESPValue, [RedisKeyName], RedisDurabilityWait?, [[UInt8]])?
    {
        var reply: RESPValue = .null
        var readied: [RedisKeyName] = []
        var modified: [[UInt8]] = []
        var wouldBlock = false
        do throws(MVCCError) {
            let pending = try server.update { data throws(MVCCError) -> Void in
                var invocation = RedisInvocation(
                    server: server,
                    session: waiter.session,
                    arguments: waiter.arguments,
                    data: data,
                    inTransaction: false
                )
                invocation.retryingBlocked = true
                do throws(RedisError) {
                    reply = try waiter.command.run(&invocation)
                } catch .wrongType {
                    // A key waited on that holds another type now keeps the client blocked; a source list that is
                    // ready but a destination of another type ends the wait with the error (the element stays), as
                    // in Redis.
                    let ready =
                        ["blmove", "brpoplpush"].contains(waiter.command.name) && waiter.keys.count == 1
                        && (try? invocation.data.lookup(waiter.db, waiter.keys[0], as: .list)) != nil
                    if ready {
                        reply = .error(RedisError.wrongType.message)
                    } else {
                        invocation.block = RedisBlockRequest(keys: waiter.keys, timeout: 0)
                    }
                } catch {
                    reply = .error(error.message)
                }
                if invocation.block != nil {
                    wouldBlock = true
                    throw .rejected(Rejection(code: 0, message: "still blocked"))
                }
                data = invocation.data
                readied = invocation.data.readied
                modified = invocation.data.modified
                server.stats.dirty.wrappingAdd(invocation.data.changes, ordering: .relaxed)
            }
            return (reply, readied, RedisDurabilityWait(store: server.store, pending: pending), modified)
        } catch {
            if wouldBlock { return nil }
            return (.error(RedisError.storage(error).message), [], nil, [])
        }
    }
}

/// A committed write whose reply waits for its fsync (`appendfsync always`).
package struct RedisDurabilityWait: Sendable {
    let wait: @Sendable (@escaping @Sendable (MVCCError?) -> Void) -> Void

    package init<T: Sendable>(store: MVCCStore, pending: PendingWrite<T>) {
        wait = { completion in
            store.whenDurable(pending) { result in
                if case .failure(let error) = result { completion(error) } else { completion(nil) }
            }
        }
    }

    package func whenDurable(_ completion: @escaping @Sendable (MVCCError?) -> Void) { wait(completion) }
}
