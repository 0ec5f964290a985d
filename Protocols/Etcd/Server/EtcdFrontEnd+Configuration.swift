package import StrataCommon
package import StrataEtcdAPI
package import StrataMVCC

extension EtcdFrontEnd {
    /// The `[etcd]` section: where to listen and etcd's limits.
    package struct Configuration: Sendable, Hashable {
        package var listen = ListenAddress(host: "127.0.0.1", port: 2379)
        /// etcd's `--max-request-bytes` (1.5 MiB).
        package var maxRequestBytes = 1_572_864
        /// etcd's `--max-txn-ops`.
        package var maxTxnOperations = 128
        /// etcd's `--quota-backend-bytes` (2 GiB): above it the NOSPACE alarm is raised and writes fail until an
        /// operator frees space and disarms it.
        package var quotaBackendBytes: Int64 = 2 << 30
        /// etcd's `--max-concurrent-streams`: HTTP/2 streams per client connection. etcd's default is unlimited;
        /// kube-apiserver multiplexes every watch of a resource type onto few connections, so keep this large.
        package var maxConcurrentStreams = 10_000
        /// Watchers one Watch stream may hold (etcd has no limit): each holds a bounded buffer and a pump task.
        package var maxWatchersPerStream = 100_000
        /// Member name reported by the cluster API.
        package var name = "default"
        /// Cluster and member IDs in response headers (single member: fixed, stable across restarts).
        package var clusterID: UInt64 = 0x1c7b_8f4d_2a51_3e09
        package var memberID: UInt64 = 0x8e9e_05c5_2164_694d
        package init() {}
        package static var defaults: Self { Self() }
    }
}

extension EtcdFrontEnd.Configuration {
    /// The response header every etcd response carries.
    package func header(_ revision: Revision) -> Etcdserverpb_ResponseHeader {
        var header = Etcdserverpb_ResponseHeader()
        header.clusterID = clusterID
        header.memberID = memberID
        header.revision = revision
        header.raftTerm = EtcdFrontEnd.raftTerm
        return header
    }
}
