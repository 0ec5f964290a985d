internal import Foundation
internal import StrataCommon
internal import StrataMVCC
internal import StrataRedisStore
internal import Synchronization

/// INFO: Redis 7.0's sections and the fields clients and tools read, filled from Strata's own state.
package enum RedisInfo {
    /// What `redis_version` and HELLO report: the Redis release whose behaviour Strata follows.
    package static let redisVersion = "7.0.15"

    static let defaultSections = [
        "server", "clients", "memory", "persistence", "stats", "replication", "cpu", "module_list", "errorstats",
        "cluster", "keyspace",
    ]
    static let allSections = [
        "server", "clients", "memory", "persistence", "stats", "replication", "cpu", "module_list", "commandstats",
        "errorstats", "latencystats", "cluster", "keyspace",
    ]

    /// The INFO text for `arguments` (section names, `default`, `all`, `everything`).
    static func render(_ c: inout RedisInvocation, sections arguments: [String]) throws(RedisError) -> String {
        var wanted = Set<String>()
        var all = false
        if arguments.isEmpty { wanted.formUnion(defaultSections) }
        for argument in arguments.map({ $0.lowercased() }) {
            switch argument {
            case "default": wanted.formUnion(defaultSections)
            case "all", "everything": all = true
            case "modules": wanted.insert("module_list")
            default: wanted.insert(argument)
            }
        }
        var parts: [String] = []
        for section in allSections where all || wanted.contains(section) {
            parts.append(try text(of: section, &c))
        }
        return parts.joined(separator: "\r\n")
    }

    private static func lines(_ title: String, _ fields: [(String, String)]) -> String {
        "# \(title)\r\n" + fields.map { "\($0.0):\($0.1)\r\n" }.joined()
    }

    private static func text(of section: String, _ c: inout RedisInvocation) throws(RedisError) -> String {
        let server = c.server
        let now = c.data.now
        switch section {
        case "server":
            let uptime = (now - server.startedAt) / 1000
            var name = utsname()
            uname(&name)
            let system = [name.sysname, name.release, name.machine].map { field in
                withUnsafeBytes(of: field) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            }
            return lines(
                "Server",
                [
                    ("redis_version", redisVersion), ("redis_git_sha1", "00000000"), ("redis_git_dirty", "0"),
                    ("redis_build_id", "strata"), ("redis_mode", "standalone"), ("os", system.joined(separator: " ")),
                    ("arch_bits", "64"), ("monotonic_clock", "POSIX clock_gettime"), ("multiplexing_api", "epoll"),
                    ("atomicvar_api", "c11-builtin"), ("gcc_version", "0.0.0"), ("process_id", "\(getpid())"),
                    ("process_supervised", "no"), ("run_id", server.runID), ("tcp_port", "\(server.tcpPort)"),
                    ("server_time_usec", "\(now * 1000)"), ("uptime_in_seconds", "\(uptime)"),
                    ("uptime_in_days", "\(uptime / 86400)"), ("hz", server.config.value("hz") ?? "10"),
                    ("configured_hz", server.config.value("hz") ?? "10"), ("lru_clock", "\((now / 1000) & 0xFF_FFFF)"),
                    ("executable", CommandLine.arguments.first ?? ""), ("config_file", server.config.configFile ?? ""),
                    ("io_threads_active", "0"), ("strata_version", StrataVersion.current),
                ]
            )
        case "clients":
            return lines(
                "Clients",
                [
                    ("connected_clients", "\(server.clients.count)"), ("cluster_connections", "0"),
                    ("maxclients", "\(server.config.effective.maxClients)"), ("client_recent_max_input_buffer", "0"),
                    ("client_recent_max_output_buffer", "0"), ("blocked_clients", "\(server.blockedClients)"),
                    ("tracking_clients", "\(server.tracking.clientCount)"),
                    ("clients_in_timeout_table", "\(server.blockedClients)"),
                ]
            )
        case "memory":
            let rss = ProcessMemory.residentBytes()
            let maxmemory = Int64(server.config.value("maxmemory") ?? "0") ?? 0
            let lua = server.scripting.memory
            let scripts = server.scripting.catalog.withLock { catalog in
                (count: catalog.scripts.count, bytes: catalog.scripts.values.reduce(0) { $0 + $1.body.count + 40 })
            }
            let functions = server.scripting.catalog.withLock { catalog in
                (
                    libraries: catalog.libraries.count, functions: catalog.functions.count,
                    bytes: catalog.libraries.values.reduce(0) { $0 + $1.code.count + $1.name.utf8.count }
                )
            }
            return lines(
                "Memory",
                [
                    ("used_memory", "\(rss)"), ("used_memory_human", human(rss)), ("used_memory_rss", "\(rss)"),
                    ("used_memory_rss_human", human(rss)), ("used_memory_peak", "\(ProcessMemory.peakBytes())"),
                    ("used_memory_peak_human", human(ProcessMemory.peakBytes())), ("used_memory_peak_perc", "100.00%"),
                    ("used_memory_overhead", "0"), ("used_memory_startup", "0"), ("used_memory_dataset", "\(rss)"),
                    ("used_memory_dataset_perc", "100.00%"), ("allocator_allocated", "\(rss)"),
                    ("allocator_active", "\(rss)"), ("allocator_resident", "\(rss)"),
                    ("total_system_memory", "\(ProcessMemory.systemBytes())"),
                    ("total_system_memory_human", human(ProcessMemory.systemBytes())),
                    ("used_memory_lua", "\(lua.eval)"),
                    ("used_memory_vm_eval", "\(lua.eval)"), ("used_memory_lua_human", human(Int64(lua.eval))),
                    ("used_memory_scripts_eval", "\(scripts.bytes)"), ("number_of_cached_scripts", "\(scripts.count)"),
                    ("number_of_functions", "\(functions.functions)"),
                    ("number_of_libraries", "\(functions.libraries)"),
                    ("used_memory_vm_functions", "\(lua.functions)"),
                    ("used_memory_vm_total", "\(lua.eval + lua.functions)"),
                    ("used_memory_vm_total_human", human(Int64(lua.eval + lua.functions))),
                    ("used_memory_functions", "\(functions.bytes)"),
                    ("used_memory_scripts", "\(scripts.bytes + functions.bytes)"),
                    ("used_memory_scripts_human", human(Int64(scripts.bytes + functions.bytes))),
                    ("maxmemory", "\(maxmemory)"),
                    ("maxmemory_human", human(maxmemory)),
                    ("maxmemory_policy", server.config.value("maxmemory-policy") ?? "noeviction"),
                    ("allocator_frag_ratio", "1.00"), ("allocator_frag_bytes", "0"), ("allocator_rss_ratio", "1.00"),
                    ("allocator_rss_bytes", "0"), ("rss_overhead_ratio", "1.00"), ("rss_overhead_bytes", "0"),
                    ("mem_fragmentation_ratio", "1.00"), ("mem_fragmentation_bytes", "0"),
                    ("mem_not_counted_for_evict", "0"), ("mem_replication_backlog", "0"),
                    ("mem_total_replication_buffers", "0"), ("mem_clients_slaves", "0"), ("mem_clients_normal", "0"),
                    ("mem_cluster_links", "0"), ("mem_aof_buffer", "0"), ("mem_allocator", "libc"),
                    ("active_defrag_running", "0"), ("lazyfree_pending_objects", "0"), ("lazyfreed_objects", "0"),
                    ("strata_storage_bytes", "\(server.store.storageSize.total)"),
                ]
            )
        case "persistence":
            let appendonly = server.config.value("appendonly") == "yes" ? "1" : "0"
            return lines(
                "Persistence",
                [
                    ("loading", "0"), ("async_loading", "0"), ("current_cow_peak", "0"), ("current_cow_size", "0"),
                    ("current_cow_size_age", "0"), ("current_fork_perc", "0.00"), ("current_save_keys_processed", "0"),
                    ("current_save_keys_total", "0"),
                    ("rdb_changes_since_last_save", "\(server.stats.dirty.load(ordering: .relaxed))"),
                    ("rdb_bgsave_in_progress", "0"),
                    ("rdb_last_save_time", "\(server.stats.lastSave.load(ordering: .relaxed))"),
                    ("rdb_last_bgsave_status", "ok"), ("rdb_last_bgsave_time_sec", "-1"),
                    ("rdb_current_bgsave_time_sec", "-1"), ("rdb_saves", "0"), ("rdb_last_cow_size", "0"),
                    ("rdb_last_load_keys_expired", "0"), ("rdb_last_load_keys_loaded", "0"),
                    ("aof_enabled", appendonly),
                    ("aof_rewrite_in_progress", "0"), ("aof_rewrite_scheduled", "0"),
                    ("aof_last_rewrite_time_sec", "-1"),
                    ("aof_current_rewrite_time_sec", "-1"), ("aof_last_bgrewrite_status", "ok"), ("aof_rewrites", "0"),
                    ("aof_rewrites_consecutive_failures", "0"), ("aof_last_write_status", "ok"),
                    ("aof_last_cow_size", "0"), ("module_fork_in_progress", "0"), ("module_fork_last_cow_size", "0"),
                ]
            )
        case "stats":
            let stats = server.stats
            return lines(
                "Stats",
                [
                    ("total_connections_received", "\(stats.connectionsReceived.load(ordering: .relaxed))"),
                    ("total_commands_processed", "\(stats.commandsProcessed.load(ordering: .relaxed))"),
                    ("instantaneous_ops_per_sec", "\(stats.instantaneousOpsPerSecond(now: now))"),
                    ("total_net_input_bytes", "\(stats.inputBytes.load(ordering: .relaxed))"),
                    ("total_net_output_bytes", "\(stats.outputBytes.load(ordering: .relaxed))"),
                    ("total_net_repl_input_bytes", "0"), ("total_net_repl_output_bytes", "0"),
                    ("instantaneous_input_kbps", "0.00"), ("instantaneous_output_kbps", "0.00"),
                    ("instantaneous_input_repl_kbps", "0.00"), ("instantaneous_output_repl_kbps", "0.00"),
                    ("rejected_connections", "\(stats.connectionsRejected.load(ordering: .relaxed))"),
                    ("sync_full", "0"),
                    ("sync_partial_ok", "0"), ("sync_partial_err", "0"),
                    ("expired_keys", "\(stats.expiredKeys.load(ordering: .relaxed))"), ("expired_stale_perc", "0.00"),
                    ("expired_time_cap_reached_count", "0"), ("expire_cycle_cpu_milliseconds", "0"),
                    ("evicted_keys", "0"), ("evicted_clients", "0"), ("total_eviction_exceeded_time", "0"),
                    ("current_eviction_exceeded_time", "0"),
                    ("keyspace_hits", "\(stats.keyspaceHits.load(ordering: .relaxed))"),
                    ("keyspace_misses", "\(stats.keyspaceMisses.load(ordering: .relaxed))"),
                    ("pubsub_channels", "\(server.pubsub.channelCount)"),
                    ("pubsub_patterns", "\(server.pubsub.patternCount)"),
                    ("pubsubshard_channels", "0"), ("latest_fork_usec", "0"), ("total_forks", "0"),
                    ("migrate_cached_sockets", "0"), ("slave_expires_tracked_keys", "0"), ("active_defrag_hits", "0"),
                    ("active_defrag_misses", "0"), ("active_defrag_key_hits", "0"), ("active_defrag_key_misses", "0"),
                    ("total_active_defrag_time", "0"), ("current_active_defrag_time", "0"),
                    ("tracking_total_keys", "\(server.tracking.totals.keys)"),
                    ("tracking_total_items", "\(server.tracking.totals.items)"),
                    ("tracking_total_prefixes", "\(server.tracking.totals.prefixes)"),
                    ("unexpected_error_replies", "0"),
                    ("total_error_replies", "\(stats.errorReplies.load(ordering: .relaxed))"),
                    ("dump_payload_sanitizations", "0"), ("total_reads_processed", "0"),
                    ("total_writes_processed", "0"), ("io_threaded_reads_processed", "0"),
                    ("io_threaded_writes_processed", "0"), ("reply_buffer_shrinks", "0"), ("reply_buffer_expands", "0"),
                ]
            )
        case "replication":
            return lines(
                "Replication",
                [
                    ("role", "master"), ("connected_slaves", "0"), ("master_failover_state", "no-failover"),
                    ("master_replid", server.runID), ("master_replid2", String(repeating: "0", count: 40)),
                    ("master_repl_offset", "0"), ("second_repl_offset", "-1"), ("repl_backlog_active", "0"),
                    ("repl_backlog_size", server.config.value("repl-backlog-size") ?? "1048576"),
                    ("repl_backlog_first_byte_offset", "0"), ("repl_backlog_histlen", "0"),
                ]
            )
        case "cpu":
            var usage = rusage()
            getrusage(RUSAGE_SELF.rawValue, &usage)
            func seconds(_ time: timeval) -> String {
                "\(time.tv_sec).\(String(format6: Int64(time.tv_usec)))"
            }
            return lines(
                "CPU",
                [
                    ("used_cpu_sys", seconds(usage.ru_stime)), ("used_cpu_user", seconds(usage.ru_utime)),
                    ("used_cpu_sys_children", "0.000000"), ("used_cpu_user_children", "0.000000"),
                    ("used_cpu_sys_main_thread", seconds(usage.ru_stime)),
                    ("used_cpu_user_main_thread", seconds(usage.ru_utime)),
                ]
            )
        case "module_list":
            return "# Modules\r\n"
        case "commandstats":
            let table = server.stats.commandTable.sorted { $0.key < $1.key }
            return "# Commandstats\r\n"
                + table.map { name, stat in
                    let perCall = stat.calls > 0 ? Double(stat.microseconds) / Double(stat.calls) : 0
                    return "cmdstat_\(name):calls=\(stat.calls),usec=\(stat.microseconds),usec_per_call="
                        + String(format: "%.2f", perCall)
                        + ",rejected_calls=\(stat.rejected),failed_calls=\(stat.failed)\r\n"
                }.joined()
        case "errorstats":
            let table = server.stats.errorTable.sorted { $0.key < $1.key }
            return "# Errorstats\r\n" + table.map { "errorstat_\($0.key):count=\($0.value)\r\n" }.joined()
        case "latencystats":
            let effective = server.config.effective
            guard effective.latencyTracking else { return "# Latencystats\r\n" }
            let table = server.stats.commandTable.sorted { $0.key < $1.key }
            return "# Latencystats\r\n"
                + table.compactMap { name, stat in
                    stat.latency.map { histogram in
                        "latency_percentiles_usec_\(name):"
                            + effective.latencyPercentiles.map { percentile in
                                let microseconds = Double(histogram.value(atPercentile: percentile)) / 1000
                                return "p\(RedisConfigParameter.trimmed(percentile))="
                                    + String(format: "%.3f", microseconds)
                            }.joined(separator: ",") + "\r\n"
                    }
                }.joined()
        case "cluster":
            return lines("Cluster", [("cluster_enabled", "0")])
        case "keyspace":
            var text = "# Keyspace\r\n"
            for db in 0..<server.spaces.databases {
                let (keys, expiring) = try c.data.keyCount(db)
                if keys > 0 { text += "db\(db):keys=\(keys),expires=\(expiring),avg_ttl=0\r\n" }
            }
            return text
        default:
            return ""
        }
    }

    /// Redis's `bytesToHuman`.
    static func human(_ bytes: Int64) -> String {
        let value = Double(bytes)
        switch bytes {
        case ..<1024: return "\(bytes)B"
        case ..<(1 << 20): return String(format: "%.2fK", value / 1024)
        case ..<(1 << 30): return String(format: "%.2fM", value / 1_048_576)
        case ..<(1 << 40): return String(format: "%.2fG", value / 1_073_741_824)
        default: return String(format: "%.2fT", value / 1_099_511_627_776)
        }
    }
}

/// The process's memory as INFO reports it: used_memory is the resident set (Strata's allocations are not tracked
/// per value; docs/redis.md says so).
enum ProcessMemory {
    static func residentBytes() -> Int64 { field("VmRSS:") }
    static func peakBytes() -> Int64 { max(field("VmHWM:"), residentBytes()) }
    static func systemBytes() -> Int64 { Int64(sysconf(Int32(_SC_PHYS_PAGES))) * Int64(sysconf(Int32(_SC_PAGESIZE))) }

    private static func field(_ name: String) -> Int64 {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix(name) {
            let digits = line.dropFirst(name.count).trimmingCharacters(in: .whitespaces).split(separator: " ")
            return (Int64(digits.first ?? "0") ?? 0) * 1024
        }
        return 0
    }
}
