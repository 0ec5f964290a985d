import Foundation
import StrataTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Starts the real `strata` binary on free loopback ports with a temp data dir, as users run it.
@Suite("strata binary end to end", .serialized)
struct ServerEndToEndTests {
    let directory = TemporaryDirectory()
    var dataDirectory: String { directory.appending("data") }

    @Test func adminEndpointsAnswer() throws {
        let server = try StrataProcess(dataDirectory: dataDirectory)
        #expect(server.waitUntilHealthy(), "output:\n\(server.output)")

        let health = try #require(TestNetwork.get(port: server.adminPort, path: "/health"))
        #expect(health.status == 200)
        #expect(health.headers["content-type"] == "application/json")
        #expect(health.body == "{\"health\":\"true\",\"reason\":\"\"}\n")
        // Kind's liveness probe adds etcd's query parameters.
        let probe = try #require(
            TestNetwork.get(port: server.adminPort, path: "/health?exclude=NOSPACE&serializable=true")
        )
        #expect(probe.status == 200)

        let metrics = try #require(TestNetwork.get(port: server.adminPort, path: "/metrics"))
        #expect(metrics.status == 200)
        #expect(metrics.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
        for name in [
            "process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds",
            "strata_storage_keys_estimated", "strata_storage_sst_bytes", "strata_storage_memtable_bytes",
            "strata_storage_block_cache_capacity_bytes", "strata_storage_db_bytes", "strata_mvcc_keys",
            "strata_mvcc_revision", "strata_mvcc_compact_revision", "strata_watch_watchers",
            "strata_watch_unsynced_watchers", "strata_lease_leases",
        ] {
            #expect(("\n" + metrics.body).contains("\n# TYPE \(name) gauge\n"), "missing \(name)")
        }
        for name in [
            "strata_mvcc_write_transactions_total", "strata_mvcc_reads_total", "strata_keys_expired_total",
            "strata_storage_writes_refused_no_space_total", "strata_mvcc_fsync_total", "strata_watch_events_sent_total",
            "strata_lease_expired_total",
        ] {
            #expect(("\n" + metrics.body).contains("\n# TYPE \(name) counter\n"), "missing \(name)")
        }
        #expect(metrics.body.contains("# TYPE strata_mvcc_commit_duration_seconds histogram"))
        #expect(metrics.body.contains("# TYPE strata_mvcc_group_commit_size histogram"))
        #expect(metrics.body.contains("strata_build_info{version=\"0.1.0\"} 1"))
        let rss = metrics.body.split(separator: "\n").first { $0.hasPrefix("process_resident_memory_bytes ") }
        #expect((rss.flatMap { Double($0.split(separator: " ")[1]) } ?? 0) > 1_000_000)

        let version = try #require(TestNetwork.get(port: server.adminPort, path: "/version"))
        #expect(version.status == 200)
        #expect(version.body == "{\"version\":\"0.1.0\",\"frontends\":[]}\n")

        #expect(TestNetwork.get(port: server.adminPort, path: "/readyz")?.body == "ok\n")
        #expect(TestNetwork.get(port: server.adminPort, path: "/livez")?.status == 200)
        #expect(TestNetwork.get(port: server.adminPort, path: "/no-such-path")?.status == 404)
        #expect(server.stop() == 0)
    }

    @Test func sigtermShutsDownGracefullyAndRestartWorks() throws {
        let first = try StrataProcess(dataDirectory: dataDirectory)
        #expect(first.waitUntilHealthy(), "output:\n\(first.output)")
        let started = Date()
        #expect(first.stop(signal: SIGTERM, timeoutSeconds: 5) == 0, "output:\n\(first.output)")
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(first.output.contains("storage closed"))
        #expect(FileManager.default.fileExists(atPath: dataDirectory + "/db/CURRENT"))

        // The same data directory opens again once the first process is gone.
        let second = try StrataProcess(dataDirectory: dataDirectory)
        #expect(second.waitUntilHealthy(), "output:\n\(second.output)")
        #expect(second.stop(signal: SIGINT, timeoutSeconds: 5) == 0, "output:\n\(second.output)")
    }

    @Test func restartAfterKillWorks() throws {
        let first = try StrataProcess(dataDirectory: dataDirectory)
        #expect(first.waitUntilHealthy())
        #expect(first.stop(signal: SIGKILL) != 0)
        // flock is released by the kernel, so a killed process never leaves the directory locked.
        let second = try StrataProcess(dataDirectory: dataDirectory)
        #expect(second.waitUntilHealthy(), "output:\n\(second.output)")
        #expect(second.stop() == 0)
    }

    @Test func secondProcessOnSameDirectoryFailsWithLockError() throws {
        let first = try StrataProcess(dataDirectory: dataDirectory)
        #expect(first.waitUntilHealthy())
        let second = try StrataProcess(dataDirectory: dataDirectory)
        #expect(second.waitForExit(timeoutSeconds: 10) == 1)
        #expect(
            second.output.contains(
                "strata: error: data directory '\(dataDirectory)' is in use by another strata process (pid \(first.process.processIdentifier))"
            ),
            "output:\n\(second.output)"
        )
        // The first one is unaffected.
        #expect(TestNetwork.get(port: first.adminPort, path: "/health")?.status == 200)
        #expect(first.stop() == 0)
    }

    @Test func busyPortStopsStartupNamingTheAddress() throws {
        let port = TestNetwork.freePort()
        let socket = TestNetwork.occupy(port: port)
        defer { close(socket) }
        let server = try StrataProcess(dataDirectory: dataDirectory, adminPort: port)
        #expect(server.waitForExit(timeoutSeconds: 10) == 1, "output:\n\(server.output)")
        #expect(
            server.output.contains("strata: error: cannot listen on 127.0.0.1:\(port) for admin HTTP"),
            "output:\n\(server.output)"
        )
    }

    @Test func inMemoryModeLeavesNoFiles() throws {
        let server = try StrataProcess(dataDirectory: dataDirectory, arguments: ["--in-memory"])
        #expect(server.waitUntilHealthy(), "output:\n\(server.output)")
        #expect(!FileManager.default.fileExists(atPath: dataDirectory))
        #expect(server.stop() == 0)
    }

    @Test func invalidConfigStopsStartupWithKeyAndLine() throws {
        let path = directory.appending("bad.toml")
        try "[server]\nlog_level = \"info\"\n[metrics]\nlisen = \"127.0.0.1:1\"\n".write(
            toFile: path,
            atomically: true,
            encoding: .utf8
        )
        let result = try runStrata(["serve", "--config", path])
        #expect(result.status == 1)
        #expect(
            result.output == "strata: error: \(path):4: unknown key 'metrics.lisen' (did you mean 'metrics.listen'?)\n"
        )

        let check = try runStrata(["config", "check", path])
        #expect(check.status == 1)
        #expect(check.output.contains(":4: unknown key 'metrics.lisen'"))
    }

    @Test func configCheckAndVersionCommands() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let check = try runStrata(["config", "check", root.appendingPathComponent("config.toml").path])
        #expect(check.status == 0)
        #expect(check.output.contains("config.toml: OK"))
        #expect(check.output.contains("etcd: enabled on 127.0.0.1:2379"))
        #expect(check.output.contains("metrics: 127.0.0.1:2381"))

        let missing = try runStrata(["config", "check", directory.appending("nope.toml")])
        #expect(missing.status == 1)
        #expect(missing.output.contains("cannot read configuration file"))

        let version = try runStrata(["version"])
        #expect(version.status == 0 && version.output == "strata 0.1.0\n")
    }
}
