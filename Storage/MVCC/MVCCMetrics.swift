internal import CoreMetrics

/// Metrics of the core, reported through swift-metrics (Prometheus on the admin port).
struct MVCCMetrics: Sendable {
    let revision: Gauge
    let compactRevision: Gauge
    let transactions: Counter
    let reads: Counter
    let commitLatency: CoreMetrics.Timer
    let fsyncs: Counter
    let groupCommitSize: Recorder
    let watchers: Gauge
    let unsyncedWatchers: Gauge
    let eventsSent: Counter
    let leases: Gauge
    let leaseExpirations: Counter
    let keysExpired: Counter
    let compactions: Counter
    let idleFlushes: Counter
    let writesRefusedNoSpace: Counter

    init(factory: any MetricsFactory) {
        revision = Gauge(label: "strata_mvcc_revision", factory: factory)
        compactRevision = Gauge(label: "strata_mvcc_compact_revision", factory: factory)
        transactions = Counter(label: "strata_mvcc_write_transactions_total", factory: factory)
        reads = Counter(label: "strata_mvcc_reads_total", factory: factory)
        commitLatency = CoreMetrics.Timer(label: "strata_mvcc_commit_duration_seconds", factory: factory)
        fsyncs = Counter(label: "strata_mvcc_fsync_total", factory: factory)
        groupCommitSize = Recorder(label: "strata_mvcc_group_commit_size", factory: factory)
        watchers = Gauge(label: "strata_watch_watchers", factory: factory)
        unsyncedWatchers = Gauge(label: "strata_watch_unsynced_watchers", factory: factory)
        eventsSent = Counter(label: "strata_watch_events_sent_total", factory: factory)
        leases = Gauge(label: "strata_lease_leases", factory: factory)
        leaseExpirations = Counter(label: "strata_lease_expired_total", factory: factory)
        keysExpired = Counter(label: "strata_keys_expired_total", factory: factory)
        compactions = Counter(label: "strata_mvcc_compactions_total", factory: factory)
        idleFlushes = Counter(label: "strata_storage_idle_flushes_total", factory: factory)
        writesRefusedNoSpace = Counter(label: "strata_storage_writes_refused_no_space_total", factory: factory)
    }
}
