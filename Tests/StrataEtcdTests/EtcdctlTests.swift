import Foundation
import StrataTestSupport
import Testing

/// Runs Debian's `etcdctl` (v3 API) against a strata process.
struct Etcdctl {
    let port: Int

    /// A long-running etcdctl (watch) whose output goes to a file, read as it grows.
    final class Background: @unchecked Sendable {
        let process = ChildProcess()
        let outputPath = NSTemporaryDirectory() + "etcdctl-\(UUID().uuidString).out"

        func start() throws {
            _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
            let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
            defer { try? output.close() }
            process.standardOutput = output
            process.standardError = output
            try process.run()
        }

        var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

        func waitForOutput(containing text: String, timeoutSeconds: Double) -> String {
            let deadline = Date().addingTimeInterval(timeoutSeconds)
            while Date() < deadline && !output.contains(text) { Thread.sleep(forTimeInterval: 0.02) }
            return output
        }

        func stop() {
            process.terminate()
            if !process.wait(timeoutSeconds: 10) { process.signal(SIGKILL) }
            process.waitUntilExit()
        }

        deinit { try? FileManager.default.removeItem(atPath: outputPath) }
    }

    func background(_ arguments: [String], input: Pipe? = nil) throws -> Background {
        let background = Background()
        background.process.executableURL = URL(fileURLWithPath: "/usr/bin/etcdctl")
        background.process.arguments = ["--endpoints=127.0.0.1:\(port)", "--dial-timeout=5s"] + arguments
        background.process.environment = ["ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"]
        if let input { background.process.standardInput = input }
        try background.start()
        return background
    }

    /// Output of a command that must succeed.
    func ok(_ arguments: String..., input: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws
        -> String
    {
        let result = try call(arguments, input: input)
        #expect(
            result.status == 0,
            "etcdctl \(arguments.joined(separator: " ")) failed: \(result.output)",
            sourceLocation: sourceLocation
        )
        return result.output
    }

    func call(_ arguments: [String], input: String? = nil) throws -> (status: Int32, output: String) {
        let process = ChildProcess()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/etcdctl")
        process.arguments = ["--endpoints=127.0.0.1:\(port)", "--dial-timeout=5s", "--command-timeout=10s"] + arguments
        process.environment = ["ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        let stdin = Pipe()
        process.standardInput = stdin
        try process.run()
        if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
        try stdin.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

/// etcdctl against the real `strata` binary: KV, Watch and Lease (cluster, maintenance and auth come next).
@Suite("etcdctl end to end", .serialized)
final class EtcdctlTests {
    let directory = TemporaryDirectory()
    let server: StrataProcess
    let etcdctl: Etcdctl

    init() throws {
        let port = TestNetwork.freePort()
        server = try StrataProcess(
            dataDirectory: directory.appending("data"),
            etcdConfig: "[etcd]\nenabled = true\nlisten = \"127.0.0.1:\(port)\""
        )
        etcdctl = Etcdctl(port: port)
        #expect(server.waitUntilHealthy(), "output:\n\(server.output)")
    }

    deinit {
        _ = server.stop()
    }

    @Test func putGetDelete() throws {
        #expect(try etcdctl.ok("put", "foo", "bar") == "OK\n")
        #expect(try etcdctl.ok("get", "foo") == "foo\nbar\n")
        #expect(try etcdctl.ok("get", "foo", "--print-value-only") == "bar\n")
        #expect(try etcdctl.ok("put", "foo", "baz", "--prev-kv") == "OK\nfoo\nbar\n")
        #expect(try etcdctl.ok("get", "missing") == "")
        #expect(try etcdctl.ok("del", "foo", "--prev-kv") == "1\nfoo\nbaz\n")
        #expect(try etcdctl.ok("del", "foo") == "0\n")
        let empty = try etcdctl.call(["put", "", "x"])
        #expect(empty.status != 0 && empty.output.contains("key is not provided"))
    }

    @Test func rangeOptions() throws {
        for (key, value) in [("a/1", "z"), ("a/2", "y"), ("a/3", "x"), ("b/1", "w")] {
            _ = try etcdctl.ok("put", key, value)
        }
        #expect(try etcdctl.ok("get", "a/", "--prefix", "--keys-only") == "a/1\n\na/2\n\na/3\n\n")
        #expect(try etcdctl.ok("get", "a/", "--prefix", "--limit=2", "--keys-only") == "a/1\n\na/2\n\n")
        #expect(try etcdctl.ok("get", "a/2", "--from-key", "--keys-only") == "a/2\n\na/3\n\nb/1\n\n")
        // etcdctl 3.4 has no --count-only; count ignores the limit, and `more` says there is more.
        let limited = try etcdctl.ok("get", "a/", "--prefix", "--limit=1", "-w", "json")
        #expect(limited.contains("\"more\":true") && limited.contains("\"count\":3"))
        #expect(
            try etcdctl.ok("get", "a/", "--prefix", "--sort-by=VALUE", "--order=ASCEND", "--print-value-only")
                == "x\ny\nz\n"
        )
        #expect(try etcdctl.ok("get", "a/", "--prefix", "--order=DESCEND", "--keys-only") == "a/3\n\na/2\n\na/1\n\n")
        let json = try etcdctl.ok("get", "a/1", "-w", "json")
        #expect(json.contains("\"count\":1") && json.contains("\"version\":1"))
        // Historical read: the value a/1 had before it was overwritten.
        let revision = try #require(Self.revision(of: json))
        _ = try etcdctl.ok("put", "a/1", "new")
        #expect(try etcdctl.ok("get", "a/1", "--rev=\(revision)", "--print-value-only") == "z\n")
        #expect(try etcdctl.ok("del", "a/", "--prefix") == "3\n")
    }

    @Test func txnFromStdin() throws {
        _ = try etcdctl.ok("put", "lock", "free")
        let script = "value(\"lock\") = \"free\"\n\nput lock taken\nget lock\n\nput lock failed\n\n"
        #expect(try etcdctl.ok("txn", input: script) == "SUCCESS\n\nOK\n\nlock\ntaken\n")
        #expect(try etcdctl.ok("txn", input: script) == "FAILURE\n\nOK\n")
        #expect(try etcdctl.ok("get", "lock", "--print-value-only") == "failed\n")
    }

    @Test func compaction() throws {
        _ = try etcdctl.ok("put", "c", "1")
        let json = try etcdctl.ok("put", "c", "2", "-w", "json")
        let revision = try #require(Self.revision(of: json))
        #expect(try etcdctl.ok("compaction", "\(revision)", "--physical") == "compacted revision \(revision)\n")
        let old = try etcdctl.call(["get", "c", "--rev=\(revision - 1)"])
        #expect(old.status != 0 && old.output.contains("required revision has been compacted"))
        let future = try etcdctl.call(["get", "c", "--rev=\(revision + 100)"])
        #expect(future.status != 0 && future.output.contains("required revision is a future revision"))
    }

    @Test func watchReplaysHistoryWithPrevKV() throws {
        let first = try etcdctl.ok("put", "w/1", "a", "-w", "json")
        let start = try #require(Self.revision(of: first))
        _ = try etcdctl.ok("put", "w/1", "b")
        _ = try etcdctl.ok("del", "w/1")
        // Replay from history, then stop once the three events arrived (etcdctl watch runs until killed).
        let watch = try etcdctl.background(["watch", "w/", "--prefix", "--prev-kv", "--rev=\(start)"])
        let output = watch.waitForOutput(containing: "DELETE", timeoutSeconds: 10)
        watch.stop()
        #expect(output.hasPrefix("PUT\nw/1\na\nPUT\nw/1\na\nw/1\nb\nDELETE\nw/1\nb\nw/1\n"), "got: \(output)")
    }

    @Test func liveWatchSeesNewWrites() throws {
        let watch = try etcdctl.background(["watch", "live"])
        // The watch starts "now", so write until one write lands after it was created.
        var output = ""
        for attempt in 0..<50 where !output.contains("PUT") {
            _ = try etcdctl.ok("put", "live", "\(attempt)")
            output = watch.waitForOutput(containing: "PUT", timeoutSeconds: 0.2)
        }
        watch.stop()
        #expect(output.hasPrefix("PUT\nlive\n"), "got: \(output)")
    }

    /// `watch -i` reads watch commands from stdin, each opening a watcher on the same stream.
    @Test func interactiveWatch() throws {
        let input = Pipe()
        let watch = try etcdctl.background(["watch", "-i"], input: input)
        input.fileHandleForWriting.write(Data("watch iw1\nwatch iw --prefix --prev-kv\n".utf8))
        // The watchers exist once etcdctl has read the lines: write until the second put of a key shows up.
        var output = ""
        for attempt in 0..<50 where !output.contains("PUT\niw2\nb\n") {
            _ = try etcdctl.ok("put", "iw1", "a\(attempt)")
            _ = try etcdctl.ok("put", "iw2", "b")
            output = watch.waitForOutput(containing: "PUT\niw2\nb\n", timeoutSeconds: 0.2)
        }
        // Both watchers exist now: iw1 is watched twice (by key, and by prefix with its previous value).
        _ = try etcdctl.ok("put", "iw1", "final")
        let finals = { (text: String) in text.components(separatedBy: "iw1\nfinal\n").count - 1 }
        for _ in 0..<100 where finals(watch.output) < 2 { Thread.sleep(forTimeInterval: 0.05) }
        try input.fileHandleForWriting.close()
        output = watch.waitForOutput(containing: "Error reading watch request line: EOF", timeoutSeconds: 10)
        watch.stop()
        #expect(output.contains("PUT\niw2\nb\n"), "got: \(output)")
        #expect(finals(output) == 2, "got: \(output)")
        #expect(output.hasSuffix("Error: Error reading watch request line: EOF\n"), "got: \(output)")
    }

    /// clientv3's concurrency recipes (a lease kept alive, a create-revision txn, a watch on the prefix) as etcdctl
    /// uses them: `lock` runs a command under a lock and a second `lock` waits for it; `elect` campaigns and
    /// `elect -l` sees the leader.
    @Test func lockAndElect() throws {
        #expect(try etcdctl.ok("lock", "l1", "echo", "held") == "held\n")
        // The first holder leaves a mark when its command ends; the second's command, run once it holds the lock,
        // sees the mark only if the lock was handed over after the first released it.
        let mark = directory.appending("lock-mark")
        let first = try etcdctl.background(["lock", "l2", "--", "sh", "-c", "echo first; sleep 1; touch \(mark)"])
        _ = first.waitForOutput(containing: "first\n", timeoutSeconds: 10)
        let second = try etcdctl.ok("lock", "l2", "--", "sh", "-c", "test -f \(mark) && echo after-first")
        #expect(second == "after-first\n", "first: \(first.output)")
        first.stop()

        let candidate = try etcdctl.background(["elect", "e1", "alice"])
        let listener = try etcdctl.background(["elect", "-l", "e1"])
        let seen = listener.waitForOutput(containing: "alice", timeoutSeconds: 10)
        candidate.stop()
        listener.stop()
        #expect(seen.hasPrefix("e1/") && seen.contains("\nalice\n"), "got: \(seen)")
    }

    @Test func leaseLifecycle() throws {
        let granted = try etcdctl.ok("lease", "grant", "30")
        let id = try #require(granted.split(separator: " ").dropFirst().first.map(String.init))
        #expect(granted == "lease \(id) granted with TTL(30s)\n")
        _ = try etcdctl.ok("put", "held", "v", "--lease=\(id)")
        #expect(try etcdctl.ok("lease", "timetolive", id, "--keys").contains("attached keys([held])"))
        #expect(try etcdctl.ok("lease", "keep-alive", "--once", id) == "lease \(id) keepalived with TTL(30)\n")
        #expect(try etcdctl.ok("lease", "list").contains(id))
        #expect(try etcdctl.ok("lease", "revoke", id) == "lease \(id) revoked\n")
        #expect(try etcdctl.ok("get", "held") == "")
        #expect(try etcdctl.ok("lease", "timetolive", id) == "lease \(id) already expired\n")
        let missing = try etcdctl.call(["lease", "revoke", "1234"])
        #expect(missing.status != 0 && missing.output.contains("requested lease not found"))
    }

    @Test func clusterAndMaintenance() throws {
        let members = try etcdctl.ok("member", "list")
        #expect(
            members.hasPrefix(
                "8e9e05c52164694d, started, default, http://127.0.0.1:2380, http://127.0.0.1:\(etcdctl.port), false"
            )
        )
        let status = try etcdctl.ok("endpoint", "status")
        #expect(status.contains(", 8e9e05c52164694d, 3.5.17, "), "got: \(status)")
        #expect(try etcdctl.ok("alarm", "list") == "")
        #expect(try etcdctl.ok("defrag").contains("Finished defragmenting etcd member"))
        let hash1 = try etcdctl.ok("endpoint", "hashkv")
        #expect(try etcdctl.ok("endpoint", "hashkv") == hash1)
        let add = try etcdctl.call(["member", "add", "second", "--peer-urls=http://127.0.0.1:2390"])
        #expect(add.status != 0 && add.output.contains("re-configuration failed due to not enough started members"))
        let auth = try etcdctl.call(["user", "list"])
        #expect(auth.status != 0 && auth.output.contains("authentication is not enabled"))
    }

    @Test func perRPCMetrics() throws {
        _ = try etcdctl.ok("put", "m", "1")
        _ = try etcdctl.call(["get", "m", "--rev=999999"])
        let metrics = try #require(TestNetwork.get(port: server.adminPort, path: "/metrics")).body
        #expect(metrics.contains("strata_etcd_rpc_total{method=\"Put\",code=\"ok\"}"))
        #expect(metrics.contains("strata_etcd_rpc_total{method=\"Range\",code=\"outOfRange\"}"))
        #expect(metrics.contains("strata_etcd_rpc_duration_seconds_bucket{method=\"Put\""))
        #expect(metrics.contains("# TYPE strata_etcd_watch_streams gauge"))
    }

    @Test func endpointHealth() throws {
        #expect(try etcdctl.ok("endpoint", "health").contains("is healthy"))
    }

    /// `check datascale` writes 10,000 keys and reads `process_resident_memory_bytes` from `/metrics` on the client
    /// port (HTTP/1.1 next to gRPC, as etcd serves it), then deletes the keys.
    @Test func checkDatascale() throws {
        let output = try etcdctl.ok("check", "datascale", "--load=s")
        #expect(output.contains("PASS: Approximate system memory used"), "\(output)")
        #expect(try etcdctl.ok("get", "/etcdctl-check-datascale/", "--prefix", "--keys-only").isEmpty)
    }

    static func revision(of json: String) -> Int? {
        guard let range = json.range(of: "\"revision\":") else { return nil }
        return Int(json[range.upperBound...].prefix { $0.isNumber })
    }
}

@Suite("strata with etcd enabled: lifecycle")
struct EtcdLifecycleTests {
    @Test func sigtermExitsCleanlyAndDataSurvivesRestart() throws {
        let directory = TemporaryDirectory()
        let port = TestNetwork.freePort()
        let config = "[etcd]\nenabled = true\nlisten = \"127.0.0.1:\(port)\""
        let etcdctl = Etcdctl(port: port)
        let first = try StrataProcess(dataDirectory: directory.appending("data"), etcdConfig: config)
        #expect(first.waitUntilHealthy(), "output:\n\(first.output)")
        _ = try etcdctl.ok("put", "durable", "yes")
        let hash = try etcdctl.ok("endpoint", "hashkv")
        #expect(first.stop(signal: SIGTERM, timeoutSeconds: 5) == 0, "output:\n\(first.output)")

        let second = try StrataProcess(dataDirectory: directory.appending("data"), etcdConfig: config)
        #expect(second.waitUntilHealthy(), "output:\n\(second.output)")
        #expect(try etcdctl.ok("get", "durable", "--print-value-only") == "yes\n")
        #expect(try etcdctl.ok("endpoint", "hashkv") == hash)  // stable across restarts
        #expect(second.stop(signal: SIGTERM, timeoutSeconds: 5) == 0)
    }
}

@Suite("etcdctl make-mirror from Strata to etcd 3.4")
struct EtcdctlMirrorTests {
    /// clientv3's mirror syncer against Strata as the source: a read of the prefix at one revision, then a watch from
    /// the next; existing keys, a later put and a delete all reach the destination etcd.
    @Test func makeMirrorCopiesThenFollows() async throws {
        let etcd = try ReferenceEtcd()
        try await withStrata { _, port in
            let source = Etcdctl(port: port)
            let destination = Etcdctl(port: etcd.port)
            #expect(await etcd.waitUntilReady(), "etcd did not start")
            for index in 1...3 { _ = try source.ok("put", "m/\(index)", "v\(index)") }
            let mirror = try source.background(["make-mirror", "--prefix", "m/", "127.0.0.1:\(etcd.port)"])
            func mirrored() throws -> String { try destination.ok("get", "m/", "--prefix") }
            var copied = ""
            for _ in 0..<100 where copied != "m/1\nv1\nm/2\nv2\nm/3\nv3\n" {
                copied = try mirrored()
                try await Task.sleep(nanoseconds: 50_000_000)
            }
            #expect(copied == "m/1\nv1\nm/2\nv2\nm/3\nv3\n")
            _ = try source.ok("put", "m/4", "v4")
            _ = try source.ok("del", "m/1")
            var followed = ""
            for _ in 0..<100 where followed != "m/2\nv2\nm/3\nv3\nm/4\nv4\n" {
                followed = try mirrored()
                try await Task.sleep(nanoseconds: 50_000_000)
            }
            mirror.stop()
            #expect(followed == "m/2\nv2\nm/3\nv3\nm/4\nv4\n", "mirror: \(mirror.output)")
        }
    }
}

@Suite("etcdctl: the NOSPACE alarm")
struct EtcdctlQuotaTests {
    /// etcd's documented recovery from a full database, with a 2 MiB quota: writes stop with etcd's error once the
    /// quota check raises NOSPACE, reads and deletes go on, and compact + defrag + `alarm disarm` bring writes back.
    @Test func alarmListAndDisarmRecoverAFullDatabase() throws {
        let directory = TemporaryDirectory()
        let port = TestNetwork.freePort()
        let config = "[etcd]\nenabled = true\nlisten = \"127.0.0.1:\(port)\"\nquota_backend_bytes = \"2MiB\""
        let etcdctl = Etcdctl(port: port)
        let server = try StrataProcess(dataDirectory: directory.appending("data"), etcdConfig: config)
        #expect(server.waitUntilHealthy(), "output:\n\(server.output)")
        #expect(try etcdctl.ok("alarm", "list") == "")
        let value = String(repeating: "v", count: 100_000)
        for index in 0..<10 { _ = try etcdctl.ok("put", "big/\(index)", value) }
        // The quota is checked every 5 s.
        var alarms = ""
        for _ in 0..<150 where !alarms.contains("alarm:NOSPACE") {
            alarms = try etcdctl.ok("alarm", "list")
            if !alarms.contains("alarm:NOSPACE") { Thread.sleep(forTimeInterval: 0.1) }
        }
        #expect(alarms == "memberID:10276657743932975437 alarm:NOSPACE \n")
        let refused = try etcdctl.call(["put", "small", "x"])
        #expect(refused.status != 0 && refused.output.contains("etcdserver: mvcc: database space exceeded"))
        #expect(try etcdctl.ok("get", "big/0", "--keys-only") == "big/0\n\n")
        #expect(try etcdctl.ok("del", "big/", "--prefix") == "10\n")
        let revision = try #require(EtcdctlTests.revision(of: try etcdctl.ok("get", "big/0", "-w", "json")))
        #expect(try etcdctl.ok("compaction", "--physical", "\(revision)") == "compacted revision \(revision)\n")
        #expect(try etcdctl.ok("defrag").contains("Finished defragmenting"))
        #expect(try etcdctl.ok("alarm", "disarm") == "memberID:10276657743932975437 alarm:NOSPACE \n")
        #expect(try etcdctl.ok("put", "small", "x") == "OK\n")
        #expect(try etcdctl.ok("alarm", "list") == "")
        #expect(server.stop() == 0)
    }
}

@Suite("etcd snapshot save and strata snapshot restore")
struct SnapshotTests {
    @Test func saveRestoreAndDetectCorruption() throws {
        let directory = TemporaryDirectory()
        let port = TestNetwork.freePort()
        let config = "[etcd]\nenabled = true\nlisten = \"127.0.0.1:\(port)\""
        let etcdctl = Etcdctl(port: port)
        let snapshot = directory.appending("backup.snap")
        do {
            let server = try StrataProcess(dataDirectory: directory.appending("original"), etcdConfig: config)
            #expect(server.waitUntilHealthy(), "output:\n\(server.output)")
            for i in 0..<50 { _ = try etcdctl.ok("put", "snap/\(i)", "value-\(i)") }
            #expect(try etcdctl.ok("snapshot", "save", snapshot).contains("Snapshot saved at \(snapshot)"))
            _ = try etcdctl.ok("put", "after", "not in the snapshot")
            #expect(server.stop() == 0)
        }
        let restored = directory.appending("restored")
        let restore = try runStrata(["snapshot", "restore", snapshot, "--data-dir", restored])
        #expect(restore.status == 0, "\(restore.output)")
        let again = try runStrata(["snapshot", "restore", snapshot, "--data-dir", restored])
        #expect(again.status == 1 && again.output.contains("already exists"))

        let server = try StrataProcess(dataDirectory: restored, etcdConfig: config)
        #expect(server.waitUntilHealthy(), "output:\n\(server.output)")
        #expect(try etcdctl.ok("get", "snap/", "--prefix", "--keys-only").split(separator: "\n").count == 50)
        #expect(try etcdctl.ok("get", "snap/7", "--print-value-only") == "value-7\n")
        #expect(try etcdctl.ok("get", "after") == "")
        #expect(server.stop() == 0)

        // One flipped byte: the digest no longer matches.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: snapshot))
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: snapshot))
        let corrupt = try runStrata(["snapshot", "restore", snapshot, "--data-dir", directory.appending("other")])
        #expect(corrupt.status == 1 && corrupt.output.contains("SHA-256 mismatch"))
    }
}
