package import CoreMetrics

/// The process's metrics as a front-end uses them.
package struct FrontEndMetrics: Sendable {
    /// swift-metrics factory for the front-end's own series (reported on `/metrics`).
    package let factory: any MetricsFactory
    /// The whole Prometheus text exposition, for front-ends that serve `/metrics` on their own port too.
    package let render: @Sendable () -> [UInt8]

    package init(factory: any MetricsFactory, render: @escaping @Sendable () -> [UInt8]) {
        self.factory = factory
        self.render = render
    }
}
