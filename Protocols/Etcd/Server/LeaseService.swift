internal import Foundation
package import GRPCCore
package import StrataEtcdAPI
internal import StrataLease
package import StrataMVCC

/// etcd's Lease service over the core's leases (expiry runs in the core, so keys go without any client).
package struct LeaseService: Etcdserverpb_Lease.SimpleServiceProtocol {
    let store: MVCCStore
    let configuration: EtcdFrontEnd.Configuration
    let alarms: AlarmTable

    package init(store: MVCCStore, configuration: EtcdFrontEnd.Configuration, alarms: AlarmTable = AlarmTable()) {
        self.store = store
        self.configuration = configuration
        self.alarms = alarms
    }

    package func leaseGrant(
        request: Etcdserverpb_LeaseGrantRequest,
        context: ServerContext
    ) async throws -> Etcdserverpb_LeaseGrantResponse {
        try alarms.checkWritable()
        let lease = try await EtcdError.wire { () throws(MVCCError) in
            try await store.grantLease(id: request.id, ttl: request.ttl)
        }
        var response = Etcdserverpb_LeaseGrantResponse()
        response.header = configuration.header(store.currentRevision)
        response.id = lease.id
        response.ttl = lease.ttl
        return response
    }

    package func leaseRevoke(
        request: Etcdserverpb_LeaseRevokeRequest,
        context: ServerContext
    ) async throws -> Etcdserverpb_LeaseRevokeResponse {
        let revision = try await EtcdError.wire { () throws(MVCCError) in try await store.revokeLease(request.id) }
        var response = Etcdserverpb_LeaseRevokeResponse()
        response.header = configuration.header(revision)
        return response
    }

    /// One response per request, in order; an unknown or expired lease answers TTL 0 (not an error), as etcd does.
    package func leaseKeepAlive(
        request: RPCAsyncSequence<Etcdserverpb_LeaseKeepAliveRequest, any Error>,
        response: RPCWriter<Etcdserverpb_LeaseKeepAliveResponse>,
        context: ServerContext
    ) async throws {
        for try await keepAlive in request {
            var reply = Etcdserverpb_LeaseKeepAliveResponse()
            reply.header = configuration.header(store.currentRevision)
            reply.id = keepAlive.id
            reply.ttl = store.keepAlive(keepAlive.id) ?? 0
            try await response.write(reply)
        }
    }

    /// An unknown lease answers TTL -1 (not an error), as etcd does.
    package func leaseTimeToLive(
        request: Etcdserverpb_LeaseTimeToLiveRequest,
        context: ServerContext
    ) async throws -> Etcdserverpb_LeaseTimeToLiveResponse {
        var response = Etcdserverpb_LeaseTimeToLiveResponse()
        response.header = configuration.header(store.currentRevision)
        response.id = request.id
        let status = try await EtcdError.wire { () throws(MVCCError) in
            try store.timeToLive(request.id, keys: request.keys)
        }
        guard let status else {
            response.ttl = -1
            return response
        }
        response.ttl = status.remaining
        response.grantedTtl = status.granted
        response.keys = status.keys.map { Data($0) }
        return response
    }

    package func leaseLeases(
        request: Etcdserverpb_LeaseLeasesRequest,
        context: ServerContext
    ) async throws -> Etcdserverpb_LeaseLeasesResponse {
        var response = Etcdserverpb_LeaseLeasesResponse()
        response.header = configuration.header(store.currentRevision)
        response.leases = store.leases().map { id in
            var status = Etcdserverpb_LeaseStatus()
            status.id = id
            return status
        }
        return response
    }
}
