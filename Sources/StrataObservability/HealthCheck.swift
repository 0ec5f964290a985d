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

/// The health checks of the process, added to by the parts that own them (storage, listeners, front-ends) before
/// the admin listener starts.
package final class HealthCheckRegistry: Sendable {
    private let checks = Mutex<[any HealthCheck]>([])

    package init(_ initial: [any HealthCheck] = []) {
        checks.withLock { $0 = initial }
    }

    package func add(_ check: any HealthCheck) {
        checks.withLock { $0.append(check) }
    }

    package var all: [any HealthCheck] { checks.withLock { $0 } }
}

/// Alarms the process has raised (etcd's NOSPACE, CORRUPT), by name: they make `/health` report false unless the
/// probe excludes them (`?exclude=NOSPACE`). Front-ends add their alarm tables as sources.
package final class AlarmRegistry: Sendable {
    private let sources = Mutex<[@Sendable () -> [String]]>([])

    package init() {}

    package func add(_ source: @escaping @Sendable () -> [String]) {
        sources.withLock { $0.append(source) }
    }

    /// Every active alarm's name.
    package var names: [String] { sources.withLock { $0 }.flatMap { $0() } }
}

/// The process's health as `/health` and `/readyz` report it, wherever they are served (the admin port, etcd's client
/// port): an active alarm not excluded (etcd 3.5's "ALARM NOSPACE"), else the first failing check.
package struct ProcessHealth: Sendable {
    package let checks: HealthCheckRegistry
    package let alarms: AlarmRegistry

    package init(checks: HealthCheckRegistry, alarms: AlarmRegistry) {
        self.checks = checks
        self.alarms = alarms
    }

    package func status(excludingAlarms excluded: Set<String> = []) async -> HealthStatus {
        if let alarmed = HealthStatus.alarmed(alarms.names, excluding: excluded) { return alarmed }
        for check in checks.all {
            let status = await check.checkHealth()
            if !status.isHealthy { return .unhealthy("\(check.healthCheckName): \(status.reason)") }
        }
        return .healthy
    }
}
