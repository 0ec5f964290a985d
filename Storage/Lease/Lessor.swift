private import Synchronization

/// A lease's identity and timing, as the lease RPCs report it.
package struct Lease: Sendable, Hashable {
    package var id: Int64
    /// The TTL granted, in seconds (after raising to the minimum).
    package var ttl: Int64
    /// Monotonic nanoseconds at which it expires unless renewed.
    package var expiry: Int64
}

/// Lease errors in the domain; front-ends map them to wire errors.
package enum LeaseError: Error, Sendable, Hashable {
    case notFound
    case alreadyExists
    case ttlTooLarge
}

/// The in-memory lease table and its expiry schedule.
///
/// It knows nothing of keys or storage: the MVCC store persists leases, keeps the lease→keys index, and revokes
/// (deleting the attached keys in one revision); the expiry service asks ``expired(limit:)`` which leases are due
/// and hands them to that revoke function. etcd splits `lessor` and `mvcc` the same way.
package final class Lessor: Sendable {
    package struct Configuration: Sendable, Hashable {
        /// Shorter TTLs are raised to this (etcd: 1.5 × election timeout = 2 s by default).
        package var minimumTTLSeconds: Int64 = 2
        /// etcd's `MaxLeaseTTL`.
        package var maximumTTLSeconds: Int64 = 9_000_000_000
        /// An expired lease whose revocation failed is retried after this long.
        package var retryIntervalSeconds: Int64 = 3
        package init() {}
        package static var defaults: Self { Self() }
    }

    private struct State {
        var leases: [Int64: Lease] = [:]
        var queue = ExpiryQueue<Int64>()
        var random = SystemRandomNumberGenerator()
    }

    package let configuration: Configuration
    package let clock: any StrataClock
    private let state = Mutex(State())

    package init(configuration: Configuration = .defaults, clock: any StrataClock = SystemClock()) {
        self.configuration = configuration
        self.clock = clock
    }

    /// The TTL a grant of `requested` seconds receives.
    package func effectiveTTL(_ requested: Int64) -> Int64 {
        max(requested, configuration.minimumTTLSeconds)
    }

    /// Checks a grant without making it: a free ID (choosing a positive random one for 0) and an allowed TTL.
    package func prepareGrant(id: Int64, ttl: Int64) throws(LeaseError) -> Lease {
        guard ttl <= configuration.maximumTTLSeconds else { throw .ttlTooLarge }
        let granted = effectiveTTL(ttl)
        let now = clock.now()
        return try state.withLock { state throws(LeaseError) -> Lease in
            var chosen = id
            if chosen == 0 {
                repeat {
                    chosen = Int64.random(in: 1...Int64.max, using: &state.random)
                } while state.leases[chosen] != nil
            } else if state.leases[chosen] != nil {
                throw .alreadyExists
            }
            return Lease(id: chosen, ttl: granted, expiry: now + granted * 1_000_000_000)
        }
    }

    /// Adds a lease (after it is persisted); it expires `ttl` seconds from now.
    package func insert(_ lease: Lease) throws(LeaseError) {
        try state.withLock { state throws(LeaseError) in
            guard state.leases[lease.id] == nil else { throw .alreadyExists }
            state.leases[lease.id] = lease
            state.queue.schedule(lease.id, at: lease.expiry)
        }
    }

    /// Restores persisted leases at start-up: each gets its full TTL again (etcd's rule without checkpoints).
    package func restore(_ leases: [(id: Int64, ttl: Int64)]) {
        let now = clock.now()
        state.withLock { state in
            for (id, ttl) in leases {
                let lease = Lease(id: id, ttl: ttl, expiry: now + ttl * 1_000_000_000)
                state.leases[id] = lease
                state.queue.schedule(id, at: lease.expiry)
            }
        }
    }

    /// Renews to the full TTL; returns the TTL, or nil when the lease does not exist (or has expired).
    package func renew(_ id: Int64) -> Int64? {
        let now = clock.now()
        return state.withLock { state -> Int64? in
            guard var lease = state.leases[id], lease.expiry > now else { return nil }
            lease.expiry = now + lease.ttl * 1_000_000_000
            state.leases[id] = lease
            state.queue.schedule(id, at: lease.expiry)
            return lease.ttl
        }
    }

    /// Remaining whole seconds (truncated, as etcd reports: 59 right after a grant of 60) and the granted TTL; nil
    /// when unknown.
    package func timeToLive(_ id: Int64) -> (remaining: Int64, granted: Int64)? {
        let now = clock.now()
        return state.withLock { state in
            guard let lease = state.leases[id] else { return nil }
            let remaining = max(lease.expiry - now, 0) / 1_000_000_000
            return (remaining, lease.ttl)
        }
    }

    package func contains(_ id: Int64) -> Bool {
        state.withLock { $0.leases[id] != nil }
    }

    package func lease(_ id: Int64) -> Lease? {
        state.withLock { $0.leases[id] }
    }

    /// Every lease ID, ascending.
    package func leaseIDs() -> [Int64] {
        state.withLock { $0.leases.keys.sorted() }
    }

    package var count: Int { state.withLock { $0.leases.count } }

    /// Forgets a lease (after its keys were deleted and its record removed). Returns whether it existed.
    @discardableResult
    package func remove(_ id: Int64) -> Bool {
        state.withLock { state in
            state.queue.cancel(id)
            return state.leases.removeValue(forKey: id) != nil
        }
    }

    /// Leases whose expiry has passed, earliest first, at most `limit`. Each stays in the table (the revoke path
    /// removes it) but is rescheduled `retryIntervalSeconds` later, so a failed revocation is retried.
    package func expired(limit: Int = 1000) -> [Int64] {
        let now = clock.now()
        return state.withLock { state in
            let due = state.queue.popExpired(now: now, limit: limit)
            for id in due where state.leases[id] != nil {
                state.queue.schedule(id, at: now + configuration.retryIntervalSeconds * 1_000_000_000)
            }
            return due.filter { state.leases[$0] != nil }
        }
    }

    /// When the next lease expires (monotonic nanoseconds).
    package func nextExpiry() -> Int64? {
        state.withLock { $0.queue.nextDeadline() }
    }
}
