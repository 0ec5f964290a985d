package import CoreMetrics
internal import StrataRedisStore
internal import Synchronization

/// The Redis front-end's series on the shared `/metrics`: every command counted and timed by name (the hot path
/// touches a cached pair), and gauges read at scrape time (clients, blocked clients, pub/sub, keys per database,
/// expired keys) so that serving commands does not keep them current.
package final class RedisMetrics: Sendable {
    private let factory: any MetricsFactory
    private let series = Mutex<[String: (calls: Counter, duration: CoreMetrics.Timer)]>([:])

    package init(factory: any MetricsFactory) {
        self.factory = factory
    }

    /// Counts one call of `command` and its run time.
    func record(_ command: String, nanoseconds: Int64) {
        let (calls, duration) = series.withLock { cache in
            if let known = cache[command] { return known }
            let made = (
                Counter(label: "strata_redis_commands_total", dimensions: [("command", command)], factory: factory),
                CoreMetrics.Timer(
                    label: "strata_redis_command_duration_seconds",
                    dimensions: [("command", command)],
                    factory: factory
                )
            )
            cache[command] = made
            return made
        }
        calls.increment()
        duration.recordNanoseconds(nanoseconds)
    }

    /// The work to run before each scrape for `server`. Keys per database are counted by a scan of the metadata
    /// records (as DBSIZE is), so a scrape of a huge keyspace costs that scan.
    func collector(for server: RedisServer) -> @Sendable () -> Void {
        let clients = Gauge(label: "strata_redis_connected_clients", factory: factory)
        let blocked = Gauge(label: "strata_redis_blocked_clients", factory: factory)
        let channels = Gauge(label: "strata_redis_pubsub_channels", factory: factory)
        let patterns = Gauge(label: "strata_redis_pubsub_patterns", factory: factory)
        let expired = Counter(label: "strata_redis_expired_keys_total", factory: factory)
        let keys = (0..<server.spaces.databases).map { db in
            Gauge(label: "strata_redis_keys", dimensions: [("db", String(db))], factory: factory)
        }
        let lastExpired = Atomic<Int>(0)
        return {
            clients.record(server.clients.count)
            blocked.record(server.blockedClients)
            channels.record(server.pubsub.channelCount)
            patterns.record(server.pubsub.patternCount)
            // INFO's counter can be reset (CONFIG RESETSTAT); the Prometheus counter only grows.
            let now = server.stats.expiredKeys.load(ordering: .relaxed)
            let before = lastExpired.exchange(now, ordering: .relaxed)
            if now > before { expired.increment(by: now - before) }
            var data = RedisData(store: server.store, spaces: server.spaces, notify: [])
            for (db, gauge) in keys.enumerated() {
                if let count = try? data.keyCount(db) { gauge.record(count.keys) }
            }
        }
    }
}
