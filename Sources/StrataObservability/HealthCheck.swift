internal import Synchronization

/// The answer to "can this process serve requests?", reported on `/health` (etcd's shape) and `/readyz`.
package struct HealthStatus: Sendable, Hashable {
    package var isHealthy: Bool
    /// Empty when healthy; otherwise why not, as etcd writes it in `/health`'s `reason`.
    package var reason: String

    package static let healthy = HealthStatus(isHealthy: true, reason: "")
    package static func unhealthy(_ reason: String) -> HealthStatus { HealthStatus(isHealthy: false, reason: reason) }

    /// etcd's `/health` for active alarms: false for the first one not excluded, with etcd 3.5's reason
    /// ("ALARM NOSPACE", "ALARM CORRUPT", else "ALARM"); nil when none counts.
    package static func alarmed(_ alarms: [String], excluding excluded: Set<String>) -> HealthStatus? {
        guard let alarm = alarms.first(where: { !excluded.contains($0) }) else { return nil }
        return .unhealthy(alarm == "NOSPACE" || alarm == "CORRUPT" ? "ALARM \(alarm)" : "ALARM")
    }
}

/// Something whose failure makes the whole process unhealthy: storage, later the front-ends.
package protocol HealthCheck: Sendable {
    var healthCheckName: String { get }
    func checkHealth() async -> HealthStatus
}

/// Unhealthy until every front-end listener it waits for has bound its port: services start concurrently, and
/// `/health` must not answer 200 while a client of an enabled front-end would still be refused.
package final class ListenerReadiness: HealthCheck {
    private let pending: Mutex<Set<String>>

    package init(waitingFor names: some Sequence<String>) {
        pending = Mutex(Set(names))
    }

    package func markListening(_ name: String) {
        _ = pending.withLock { $0.remove(name) }
    }

    package var healthCheckName: String { "listeners" }

    package func checkHealth() async -> HealthStatus {
        let waiting = pending.withLock { $0.sorted() }
        return waiting.isEmpty ? .healthy : .unhealthy("not listening yet: \(waiting.joined(separator: ", "))")
    }
}
