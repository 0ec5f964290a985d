package import CoreMetrics
internal import Synchronization

/// The catalog's series on the shared `/metrics`: requests by route template and status, commit latency, commit
/// conflicts, and the number of namespaces, tables and views (counted at scrape time).
package final class IcebergMetrics: Sendable {
    private let factory: any MetricsFactory
    private let requests = Mutex<[String: Counter]>([:])
    private let commitDuration: CoreMetrics.Timer
    private let conflicts: Counter
    private let reports: Counter

    package init(factory: any MetricsFactory) {
        self.factory = factory
        commitDuration = CoreMetrics.Timer(label: "strata_iceberg_commit_duration_seconds", factory: factory)
        conflicts = Counter(label: "strata_iceberg_commit_conflicts_total", factory: factory)
        reports = Counter(label: "strata_iceberg_metrics_reports_total", factory: factory)
    }

    func request(route: String, status: Int) {
        let key = "\(route)|\(status)"
        let counter = requests.withLock { cache in
            if let known = cache[key] { return known }
            let made = Counter(
                label: "strata_iceberg_requests_total",
                dimensions: [("route", route), ("status", String(status))],
                factory: factory
            )
            cache[key] = made
            return made
        }
        counter.increment()
    }

    func commit(nanoseconds: Int64, conflicted: Bool) {
        commitDuration.recordNanoseconds(nanoseconds)
        if conflicted { conflicts.increment() }
    }

    func reportReceived() { reports.increment() }

    func collector(for catalog: IcebergCatalog) -> @Sendable () -> Void {
        let namespaces = Gauge(label: "strata_iceberg_namespaces", factory: factory)
        let tables = Gauge(label: "strata_iceberg_tables", factory: factory)
        let views = Gauge(label: "strata_iceberg_views", factory: factory)
        return {
            let counts = catalog.counts()
            namespaces.record(counts.namespaces)
            tables.record(counts.tables)
            views.record(counts.views)
        }
    }
}
