package import StrataCommon
package import StrataEtcdAPI
internal import StrataFrontEnd
package import StrataMVCC

extension EtcdFrontEnd {
    /// The `[etcd]` section: where to listen and etcd's limits, under etcd's flag names.
    package struct Configuration: Sendable, Hashable {
        package var enabled = true
        package var listen = ListenAddress(host: "127.0.0.1", port: 2379)
        /// etcd's `--max-request-bytes` (1.5 MiB).
        package var maxRequestBytes = 1_572_864
        /// etcd's `--max-txn-ops`.
        package var maxTxnOperations = 128
        /// etcd's `--quota-backend-bytes` (2 GiB): above it the NOSPACE alarm is raised and writes fail until an
        /// operator frees space and disarms it.
        package var quotaBackendBytes: Int64 = 2 << 30
        /// etcd's `--experimental-watch-progress-notify-interval`.
        package var progressNotifyInterval: Duration = .seconds(600)
        /// etcd's `--max-concurrent-streams`: HTTP/2 streams per client connection. etcd's default is unlimited;
        /// kube-apiserver multiplexes every watch of a resource type onto few connections, so keep this large.
        package var maxConcurrentStreams = 10_000
        /// Watchers one Watch stream may hold (etcd has no limit): each holds a bounded buffer and a pump task.
        package var maxWatchersPerStream = 100_000
        /// Member name reported by the cluster API (etcd's `--name`).
        package var name = "default"
        /// Answer the unary KV calls on the connection's event loop (``EtcdServerTransport``'s fast path); off, every
        /// call goes through grpc-swift's server. Same replies, same metrics and limits either way.
        package var fastPath = true
        /// Cluster and member IDs in response headers (single member: fixed, stable across restarts).
        package var clusterID: UInt64 = 0x1c7b_8f4d_2a51_3e09
        package var memberID: UInt64 = 0x8e9e_05c5_2164_694d
        /// Auto-compaction (etcd's `--auto-compaction-mode` and `--auto-compaction-retention`): nil keeps all history.
        package var autoCompaction: AutoCompaction?
        package init() {}
        package static var defaults: Self { Self() }
    }

    /// etcd's auto-compaction: keep the last `retention` of history (periodic) or the last N revisions (revision).
    package enum AutoCompaction: Sendable, Hashable {
        case periodic(Duration)
        case revision(Int64)
    }
}

extension EtcdFrontEnd.Configuration: FrontEndConfiguration {
    package var listeners: [(key: String, address: ListenAddress)] { [("listen", listen)] }

    package func adjust(_ core: inout MVCCStore.Configuration) {
        // Periodic progress is requested only by etcd watchers; the hub runs one timer for all of them.
        core.watch.progressNotifyIntervalSeconds = progressNotifyInterval.secondsValue
    }

    /// Reads `[etcd]` (config.toml documents every key).
    mutating func read(from reader: inout ConfigReader) throws(ConfigError) {
        try reader.read("enabled", into: &enabled)
        try reader.read("listen", into: &listen)
        try reader.read("name", into: &name)
        try reader.readSize(
            "max_request_bytes",
            into: &maxRequestBytes,
            in: 1024...(64 << 20),
            hint: "a size from 1KiB to 64MiB, like \"1536KiB\""
        )
        try reader.readInteger("max_txn_ops", into: &maxTxnOperations, in: 1...100_000)
        var quota = Int(quotaBackendBytes)
        try reader.readSize(
            "quota_backend_bytes",
            into: &quota,
            in: (1 << 20)...(1 << 50),
            hint: "a size from 1MiB to 1PiB, like \"8GiB\""
        )
        quotaBackendBytes = Int64(quota)
        try reader.readDuration(
            "progress_notify_interval",
            into: &progressNotifyInterval,
            in: .milliseconds(100) ... .seconds(86_400),
            hint: "a duration from 100ms to 24h, like \"10m\""
        )
        try reader.readInteger("max_concurrent_streams", into: &maxConcurrentStreams, in: 1...Int(Int32.max))
        try reader.readInteger("max_watchers_per_stream", into: &maxWatchersPerStream, in: 1...10_000_000)
        try reader.read("fast_path", into: &fastPath)
        var mode = "periodic"
        var retention = "0"
        try reader.read("auto_compaction_mode", into: &mode)
        try reader.read("auto_compaction_retention", into: &retention)
        do throws(EtcdPersonality.Failure) {
            autoCompaction = try EtcdPersonality.autoCompaction(mode: mode, retention: retention)
        } catch {
            let key = error.message.contains("mode") ? "auto_compaction_mode" : "auto_compaction_retention"
            throw reader.error(
                key,
                "expected periodic with a duration (\"1h\", \"30m\") or hours, or revision with a count"
            )
        }
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
