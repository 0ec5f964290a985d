/// The answer to "can this process serve requests?", reported on `/health` (etcd's shape) and `/readyz`.
package struct HealthStatus: Sendable, Hashable {
    package var isHealthy: Bool
    /// Empty when healthy; otherwise why not, as etcd writes it in `/health`'s `reason`.
    package var reason: String

    package static let healthy = HealthStatus(isHealthy: true, reason: "")
    package static func unhealthy(_ reason: String) -> HealthStatus { HealthStatus(isHealthy: false, reason: reason) }
}

/// Something whose failure makes the whole process unhealthy: storage, later the front-ends.
package protocol HealthCheck: Sendable {
    var healthCheckName: String { get }
    func checkHealth() async -> HealthStatus
}
