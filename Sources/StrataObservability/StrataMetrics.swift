package import Prometheus
private import Synchronization

/// The Prometheus registry every subsystem reports into, and the swift-metrics factory that writes to it.
///
/// Subsystems receive the factory explicitly instead of relying on `MetricsSystem.bootstrap`, so several servers
/// (in tests) can live in one process with separate registries.
package final class StrataMetrics: Sendable {
    package let registry: PrometheusCollectorRegistry
    package let factory: PrometheusMetricsFactory
    private let collectors: NIOLockedCollectors

    package init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        // Latency buckets from 100µs to 10s, the range between an in-memory read and a stuck fsync.
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10),
        ]
        self.factory = factory
        self.collectors = NIOLockedCollectors()
    }

    /// Registers work to run before each scrape: gauges that are cheaper to read on demand than to keep current.
    package func addCollector(_ collect: @escaping @Sendable () -> Void) {
        collectors.append(collect)
    }

    /// Runs the collectors, then renders the Prometheus text exposition format.
    package func render() -> [UInt8] {
        collectors.runAll()
        return registry.emitToBuffer()
    }
}

private final class NIOLockedCollectors: Sendable {
    private let collectors = Mutex<[@Sendable () -> Void]>([])

    func append(_ collect: @escaping @Sendable () -> Void) {
        collectors.withLock { $0.append(collect) }
    }

    func runAll() {
        for collect in collectors.withLock({ $0 }) { collect() }
    }
}

extension PrometheusCollectorRegistry {
    /// A gauge by its full Prometheus name (swift-prometheus deprecates the plain-name factory).
    package func gauge(_ name: String, help: String, labels: [(String, String)] = []) -> Gauge {
        makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
    }

    /// A counter by its full Prometheus name.
    package func counter(_ name: String, help: String, labels: [(String, String)] = []) -> Counter {
        makeCounter(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
    }
}
