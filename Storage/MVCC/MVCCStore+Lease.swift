internal import CoreMetrics
package import StrataLease
internal import StrataRocksDB

extension MVCCStore {
    /// Grants a lease (ID 0 = chosen by the server) and persists it. TTLs below the minimum are raised.
    package func grantLease(id: Int64, ttl: Int64) async throws(MVCCError) -> Lease {
        let lease: Lease
        do {
            lease = try lessor.prepareGrant(id: id, ttl: ttl)
        } catch {
            throw Self.map(error)
        }
        try Self.storage {
            try database.put(
                StorageEncoding.leaseKey(lease.id),
                StorageEncoding.encode(lease.ttl),
                in: leaseFamily,
                sync: configuration.sync == .always
            )
        }
        do {
            try lessor.insert(lease)
        } catch {
            throw Self.map(error)
        }
        metrics.leases.record(lessor.count)
        return lease
    }

    /// Revokes a lease: its keys are deleted in one revision (DELETE events carry their previous values) and the
    /// lease is forgotten. Returns the revision after the revocation.
    @discardableResult
    package func revokeLease(_ id: Int64) async throws(MVCCError) -> Revision {
        guard lessor.contains(id) else { throw .leaseNotFound }
        let attached = try attachedKeys(id)
        guard let first = attached.first?.0 ?? keyspaces.values.first(where: { $0.format == .versioned }) else {
            // No keyspace takes leases: forget the lease record alone.
            try Self.storage {
                try database.delete(StorageEncoding.leaseKey(id), in: leaseFamily, sync: configuration.sync == .always)
            }
            lessor.remove(id)
            metrics.leases.record(lessor.count)
            return currentRevision
        }
        let pending = try applyUpdate(first) { transaction throws(MVCCError) in
            guard lessor.contains(id) else { throw .leaseNotFound }
            for (keyspace, key) in attached {
                transaction.keyspace = keyspace
                if let stored = try transaction.storedRecord(key), let kv = stored.live, kv.lease == id {
                    try transaction.recordDelete(kv, stored: stored, event: .standard)
                }
            }
            for (keyspace, key) in attached {
                transaction.batch.delete(StorageEncoding.leaseKeysKey(id, keyspace, key), in: leaseKeys)
            }
            // Without a key to delete, no revision: the lease record still goes, in the same batch.
            transaction.batch.delete(StorageEncoding.leaseKey(id), in: leaseFamily)
            lessor.remove(id)
        }
        metrics.leases.record(lessor.count)
        _ = try await durable(pending)
        return pending.revision ?? currentRevision
    }

    /// Renews a lease to its full TTL; nil when it does not exist.
    package func keepAlive(_ id: Int64) -> Int64? {
        lessor.renew(id)
    }

    /// Remaining and granted TTL (seconds) and, if asked, the attached keys; nil when the lease does not exist.
    package func timeToLive(_ id: Int64, keys: Bool) throws(MVCCError) -> (
        remaining: Int64, granted: Int64, keys: [[UInt8]]
    )? {
        guard let (remaining, granted) = lessor.timeToLive(id) else { return nil }
        let attached = keys ? try attachedKeys(id).map(\.1) : []
        return (remaining, granted, attached)
    }

    package func leases() -> [Int64] { lessor.leaseIDs() }

    /// The keys attached to a lease, from the persistent lease→key index.
    func attachedKeys(_ id: Int64) throws(MVCCError) -> [(Keyspace, [UInt8])] {
        let prefix = StorageEncoding.encode(id)
        var upper = prefix
        upper.append(0xFF)
        let rows = try Self.storage {
            try database.scan(
                leaseKeys,
                from: prefix,
                to: StorageEncoding.encode(id &+ 1) == prefix ? upper : StorageEncoding.encode(id &+ 1)
            )
        }
        return rows.compactMap { row in
            guard row.key.count >= 9, let keyspace = keyspace(row.key[8]) else { return nil }
            // (A key of a keyspace this build does not declare stays attached: it is not ours to delete.)
            return (keyspace, Array(row.key[9...]))
        }
    }

    func loadLeases() throws(MVCCError) -> [(id: Int64, ttl: Int64)] {
        let rows = try Self.storage { try database.scan(leaseFamily) }
        return rows.compactMap { row in
            guard let id = StorageEncoding.decodeInt64(row.key), let ttl = StorageEncoding.decodeInt64(row.value) else {
                return nil
            }
            return (id, ttl)
        }
    }

    /// The expiry loop: revokes each expired lease through ``revokeLease(_:)``.
    package var leaseExpiry: LeaseExpiryService {
        LeaseExpiryService(lessor: lessor) { [weak self] id in
            guard let self else { return }
            if (try? await self.revokeLease(id)) != nil { self.metrics.leaseExpirations.increment() }
        }
    }

    static func map(_ error: LeaseError) -> MVCCError {
        switch error {
        case .notFound: .leaseNotFound
        case .alreadyExists: .leaseAlreadyExists
        case .ttlTooLarge: .leaseTTLTooLarge
        }
    }
}
