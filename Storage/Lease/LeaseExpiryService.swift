/// Revokes expired leases: one task for all leases, woken by the earliest deadline (never a task per lease).
///
/// `revoke` is the storage's "delete the lease and its keys in one revision" (etcd's `RangeDeleter`): this module
/// cannot know how keys are stored. Revocations are rate-limited per tick, like etcd's `leaseRevokeRate`.
package struct LeaseExpiryService: Sendable {
    package let lessor: Lessor
    /// Upper bound on how long the loop sleeps, so leases granted while it sleeps are noticed in time.
    package var maximumSleepNanoseconds: Int64 = 500_000_000
    /// Maximum revocations per tick.
    package var revocationsPerTick = 1000
    private let revoke: @Sendable (Int64) async -> Void

    package init(lessor: Lessor, revoke: @escaping @Sendable (Int64) async -> Void) {
        self.lessor = lessor
        self.revoke = revoke
    }

    /// Revokes whatever is due now; returns how many.
    @discardableResult
    package func runOnce() async -> Int {
        let due = lessor.expired(limit: revocationsPerTick)
        for id in due { await revoke(id) }
        return due.count
    }

    /// Loops until cancelled.
    package func run() async throws {
        let clock = lessor.clock
        while !Task.isCancelled {
            let revoked = await runOnce()
            if revoked == revocationsPerTick { continue }  // more may be due right away
            let now = clock.now()
            let next = lessor.nextExpiry() ?? (now + maximumSleepNanoseconds)
            try await clock.sleep(until: min(max(next, now), now + maximumSleepNanoseconds))
        }
    }
}
