package import StrataMVCC
package import StrataRedisStore
internal import Synchronization

/// The live values of every parameter (CONFIG GET/SET/REWRITE/RESETSTAT), and the ones Strata acts on, parsed.
package final class RedisConfig: Sendable {
    /// What commands consult on every call, parsed once per change.
    package struct Effective: Sendable {
        package var requirePass: String? = nil
        package var notify: RedisNotifyFlags = []
        package var maxBulkLength = 512 * 1024 * 1024
        package var queryBufferLimit = 1 << 30
        package var outputLimits = RedisOutputLimits.parse(RedisOutputLimits.defaultText)!
        package var durability: Durability = .fsyncWithin(milliseconds: 1000)
        package var slowlogSlowerThan: Int64 = 10_000
        package var slowlogMaxLength = 128
        package var maxClients = 10_000
        package var idleTimeoutSeconds = 0
        package var busyReplyThresholdMilliseconds: Int64 = 5000
        package var hashListpackEntries = 128
        package var hashListpackValue = 64
        package var setIntsetEntries = 512
        package var zsetListpackEntries = 128
        package var zsetListpackValue = 64
        package var listListpackSize = -2
        /// `hll-sparse-max-bytes`: past this size a sparse HyperLogLog becomes dense.
        package var hllSparseMaxBytes = 3000
        package var streamNodeMaxEntries = 100
        package var streamNodeMaxBytes = 4096
        /// `latency-tracking` and `latency-tracking-info-percentiles` (INFO latencystats).
        package var latencyTracking = true
        package var latencyPercentiles: [Double] = [50, 99, 99.9]
    }

    private struct State {
        var values: [String: String]
        var effective: Effective
    }

    private let state: Mutex<State>
    /// The file `CONFIG REWRITE` writes (a redis.conf the personality was started with); nil: none.
    package let configFile: String?

    package init(overrides: [String: String], configFile: String?) {
        var values: [String: String] = [:]
        for parameter in RedisConfigParameter.all { values[parameter.name] = parameter.defaultValue }
        for (name, value) in overrides {
            guard let parameter = RedisConfigParameter.byName[name] else { continue }
            // Shown as CONFIG SET would leave it (`KEA` reads back as `AKE`, as in Redis).
            values[parameter.name] = (try? parameter.normalize(value).get()) ?? value
        }
        self.configFile = configFile
        self.state = Mutex(State(values: values, effective: Self.parse(values)))
    }

    package var effective: Effective { state.withLock { $0.effective } }

    package func value(_ name: String) -> String? {
        state.withLock { state in RedisConfigParameter.byName[name].flatMap { state.values[$0.name] } }
    }

    /// Every (name, value) a CONFIG GET pattern list selects; names as asked for exact matches.
    package func get(_ patterns: [String]) -> [(String, String)] {
        state.withLock { state in
            var found: [(String, String)] = []
            var seen = Set<String>()
            for pattern in patterns {
                if !pattern.contains(where: { "[*?".contains($0) }) {
                    guard let parameter = RedisConfigParameter.byName[pattern.lowercased()],
                        seen.insert(parameter.name).inserted
                    else { continue }
                    found.append((pattern, state.values[parameter.name] ?? ""))
                    continue
                }
                let glob = GlobPattern(Array(pattern.utf8), ignoreCase: true)
                for parameter in RedisConfigParameter.all where !parameter.flags.contains(.hidden) {
                    // Aliases are entries of their own, as in Redis's table.
                    for name in [parameter.name] + (parameter.alias.map { [$0] } ?? [])
                    where glob.matches(Array(name.utf8)) && seen.insert(name).inserted {
                        found.append((name, state.values[parameter.name] ?? ""))
                    }
                }
            }
            return found
        }
    }

    /// Sets every pair, all or nothing; the error text follows "ERR ".
    package func set(_ pairs: [(String, String)], protectedAllowed: Bool = false) -> String? {
        state.withLock { state in
            var changes: [(RedisConfigParameter, String)] = []
            for (name, _) in pairs where RedisConfigParameter.byName[name.lowercased()] == nil {
                return "Unknown option or number of arguments for CONFIG SET - '\(name)'"
            }
            for (name, value) in pairs {
                let parameter = RedisConfigParameter.byName[name.lowercased()]!
                if parameter.flags.contains(.immutable) {
                    return "CONFIG SET failed (possibly related to argument '\(name)') - can't set immutable config"
                }
                if parameter.flags.contains(.protected) && !protectedAllowed {
                    return "CONFIG SET failed (possibly related to argument '\(name)') - can't set protected config"
                }
                if changes.contains(where: { $0.0.name == parameter.name }) {
                    return "CONFIG SET failed (possibly related to argument '\(name)') - duplicate parameter"
                }
                switch parameter.normalize(value) {
                case .success(let normalized): changes.append((parameter, normalized))
                case .failure(let refusal):
                    return "CONFIG SET failed (possibly related to argument '\(parameter.name)') - \(refusal.message)"
                }
            }
            for (parameter, value) in changes { state.values[parameter.name] = value }
            state.effective = Self.parse(state.values)
            return nil
        }
    }

    /// Every parameter's value now.
    package var currentValues: [String: String] { state.withLock { $0.values } }

    private static func parse(_ values: [String: String]) -> Effective {
        var effective = Effective()
        func int(_ name: String) -> Int? { values[name].flatMap { Int($0) } }
        effective.requirePass = values["requirepass"].flatMap { $0.isEmpty ? nil : $0 }
        effective.notify = values["notify-keyspace-events"].flatMap { RedisNotifyFlags(letters: $0) } ?? []
        effective.maxBulkLength = int("proto-max-bulk-len") ?? effective.maxBulkLength
        effective.queryBufferLimit = int("client-query-buffer-limit") ?? effective.queryBufferLimit
        effective.outputLimits =
            values["client-output-buffer-limit"].flatMap(RedisOutputLimits.parse)
            ?? effective.outputLimits
        switch values["appendfsync"] {
        case "always": effective.durability = .fsync
        case "no": effective.durability = .os
        default: effective.durability = .fsyncWithin(milliseconds: 1000)
        }
        effective.slowlogSlowerThan = values["slowlog-log-slower-than"].flatMap { Int64($0) } ?? 10_000
        effective.slowlogMaxLength = int("slowlog-max-len") ?? 128
        effective.maxClients = int("maxclients") ?? 10_000
        effective.idleTimeoutSeconds = int("timeout") ?? 0
        effective.busyReplyThresholdMilliseconds = values["busy-reply-threshold"].flatMap { Int64($0) } ?? 5000
        effective.hashListpackEntries = int("hash-max-listpack-entries") ?? 128
        effective.hashListpackValue = int("hash-max-listpack-value") ?? 64
        effective.setIntsetEntries = int("set-max-intset-entries") ?? 512
        effective.zsetListpackEntries = int("zset-max-listpack-entries") ?? 128
        effective.zsetListpackValue = int("zset-max-listpack-value") ?? 64
        effective.listListpackSize = int("list-max-listpack-size") ?? -2
        effective.hllSparseMaxBytes = int("hll-sparse-max-bytes") ?? 3000
        effective.streamNodeMaxEntries = int("stream-node-max-entries") ?? 100
        effective.streamNodeMaxBytes =
            values["stream-node-max-bytes"].flatMap { Int($0) ?? RedisConfigParameter.parseMemory($0).map(Int.init) }
            ?? 4096
        effective.latencyTracking = values["latency-tracking"] != "no"
        effective.latencyPercentiles =
            values["latency-tracking-info-percentiles"].map { $0.split(separator: " ").compactMap { Double($0) } }
            ?? effective.latencyPercentiles
        return effective
    }
}

/// `notify-keyspace-events` letters, normalized as CONFIG GET shows them.
enum RedisNotifyFlagsParser {
    static func parse(_ letters: String) -> String? { RedisNotifyFlags(letters: letters)?.letters }
}
