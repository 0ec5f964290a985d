package import CoreMetrics

/// The process's metrics as a front-end uses them.
package struct FrontEndMetrics: Sendable {
    /// swift-metrics factory for the front-end's own series (reported on `/metrics`).
    package let factory: any MetricsFactory
    /// The whole Prometheus text exposition, for front-ends that serve `/metrics` on their own port too.
    package let render: @Sendable () -> [UInt8]
    /// Registers work to run before each scrape (gauges cheaper to read on demand than to keep current).
    package let addCollector: @Sendable (@escaping @Sendable () -> Void) -> Void

    package init(
        factory: any MetricsFactory,
        render: @escaping @Sendable () -> [UInt8],
        addCollector: @escaping @Sendable (@escaping @Sendable () -> Void) -> Void = { _ in }
    ) {
        self.factory = factory
        self.render = render
        self.addCollector = addCollector
    }
}
