internal import Foundation
package import GRPCCore
package import StrataEtcdAPI
package import StrataMVCC
internal import Synchronization

/// etcd's Maintenance service over the store.
package struct MaintenanceService: Etcdserverpb_Maintenance.SimpleServiceProtocol {
    /// What Status reports: etcd-like and at least 3.5.13, the version from which kube-apiserver trusts RequestProgress.
    static let reportedVersion = "3.5.17"

    let store: MVCCStore
    let configuration: EtcdFrontEnd.Configuration
    let alarms: AlarmTable

    package init(store: MVCCStore, configuration: EtcdFrontEnd.Configuration, alarms: AlarmTable) {
        self.store = store
        self.configuration = configuration
        self.alarms = alarms
    }

    package func alarm(request: Etcdserverpb_AlarmRequest, context: ServerContext) async throws
        -> Etcdserverpb_AlarmResponse
    {
        var response = Etcdserverpb_AlarmResponse()
        response.header = configuration.header(store.currentRevision)
        func member(_ alarm: Etcdserverpb_AlarmType) -> Etcdserverpb_AlarmMember {
            var member = Etcdserverpb_AlarmMember()
            member.memberID = configuration.memberID
            member.alarm = alarm
            return member
        }
        switch request.action {
        case .get:
            response.alarms = alarms.active.filter { request.alarm == .none || $0 == request.alarm }.map(member)
        case .activate:
            guard request.alarm != .none, request.memberID == configuration.memberID else { return response }
            if alarms.activate(request.alarm) { response.alarms = [member(request.alarm)] }
        case .deactivate:
            if alarms.deactivate(request.alarm) { response.alarms = [member(request.alarm)] }
        case .UNRECOGNIZED:
            throw RPCError(code: .invalidArgument, message: "etcdserver: invalid alarm action")
        }
        return response
    }

    package func status(request: Etcdserverpb_StatusRequest, context: ServerContext) async throws
        -> Etcdserverpb_StatusResponse
    {
        let revision = store.currentRevision
        let size = store.storageSize
        var response = Etcdserverpb_StatusResponse()
        response.header = configuration.header(revision)
        response.version = Self.reportedVersion
        response.dbSize = size.total
        response.dbSizeInUse = size.inUse
        response.leader = configuration.memberID
        // No Raft log: the store revision is the monotonic index both counters stand for.
        response.raftIndex = UInt64(revision)
        response.raftAppliedIndex = UInt64(revision)
        response.raftTerm = EtcdFrontEnd.raftTerm
        response.errors = alarms.active.map { "memberID:\(configuration.memberID) alarm:\($0)" }
        response.isLearner = false
        return response
    }

    /// Rewrites the store's files on the core's blocking pool; reads and writes go on meanwhile.
    package func defragment(
        request: Etcdserverpb_DefragmentRequest,
        context: ServerContext
    ) async throws -> Etcdserverpb_DefragmentResponse {
        do {
            try await store.defragment()
        } catch {
            throw RPCError(code: .unknown, message: "etcdserver: defragment: \(error)")
        }
        var response = Etcdserverpb_DefragmentResponse()
        response.header = configuration.header(store.currentRevision)
        return response
    }

    /// CRC-32C of every key and record in the etcd keyspace at the current revision (stable across restarts).
    package func hash(request: Etcdserverpb_HashRequest, context: ServerContext) async throws
        -> Etcdserverpb_HashResponse
    {
        let (revision, hash) = try await EtcdError.wire { () throws(MVCCError) in try hashKeyspace(at: 0) }
        var response = Etcdserverpb_HashResponse()
        response.header = configuration.header(revision)
        response.hash = hash
        return response
    }

    package func hashKV(request: Etcdserverpb_HashKVRequest, context: ServerContext) async throws
        -> Etcdserverpb_HashKVResponse
    {
        let (revision, hash) = try await EtcdError.wire { () throws(MVCCError) in try hashKeyspace(at: request.revision)
        }
        var response = Etcdserverpb_HashKVResponse()
        response.header = configuration.header(store.currentRevision)
        response.hash = hash
        response.compactRevision = store.compactRevision
        response.hashRevision = revision
        return response
    }

    /// The keyspace at `revision` (0 = current) hashed key by key: key, create and mod revision, version, lease, value.
    func hashKeyspace(at revision: Revision) throws(MVCCError) -> (Revision, UInt32) {
        let result = try store.range(.etcd, .all, RangeOptions(revision: revision))
        var crc = CRC32C()
        for kv in result.kvs {
            crc.update(kv.key)
            for number in [kv.createRevision, kv.modRevision, kv.version, kv.lease] {
                withUnsafeBytes(of: number.bigEndian) { crc.update(Array($0)) }
            }
            crc.update(kv.value)
        }
        return (revision > 0 ? revision : result.revision, crc.value)
    }

    /// Streams a consistent checkpoint in Strata's snapshot format (its last 32 bytes are the SHA-256 of the rest, as
    /// in etcd's stream); `strata snapshot restore FILE --data-dir DIR` turns it back into a data directory. etcd's
    /// own `snapshot restore` cannot read it (it expects bbolt).
    package func snapshot(
        request: Etcdserverpb_SnapshotRequest,
        response: RPCWriter<Etcdserverpb_SnapshotResponse>,
        context: ServerContext
    ) async throws {
        let stream: StoreSnapshot.Stream
        do {
            stream = try await store.snapshot()
        } catch {
            throw RPCError(code: .unknown, message: "etcdserver: snapshot: \(error)")
        }
        var remaining = stream.totalBytes
        // File reads on the blocking pool, one chunk at a time.
        while let chunk = try await store.runBlocking({ try stream.next() }) {
            remaining -= chunk.count
            var message = Etcdserverpb_SnapshotResponse()
            message.header = configuration.header(store.currentRevision)
            message.remainingBytes = UInt64(max(remaining, 0))
            message.blob = Data(chunk)
            try await response.write(message)
        }
    }

    package func moveLeader(
        request: Etcdserverpb_MoveLeaderRequest,
        context: ServerContext
    ) async throws -> Etcdserverpb_MoveLeaderResponse {
        // The only member already leads; any other target is not a member.
        guard request.targetID == configuration.memberID else {
            throw RPCError(code: .failedPrecondition, message: "etcdserver: bad leader transferee")
        }
        var response = Etcdserverpb_MoveLeaderResponse()
        response.header = configuration.header(store.currentRevision)
        return response
    }

    package func downgrade(
        request: Etcdserverpb_DowngradeRequest,
        context: ServerContext
    ) async throws -> Etcdserverpb_DowngradeResponse {
        throw RPCError(code: .invalidArgument, message: "etcdserver: invalid downgrade target version")
    }
}
