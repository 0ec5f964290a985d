import Foundation
import StrataTestSupport
import Testing

/// Runs Debian's `etcdctl` (v3 API) against a strata process.
struct Etcdctl {
    let port: Int

    /// Output of a command that must succeed.
    func ok(_ arguments: String..., input: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let result = try call(arguments, input: input)
        #expect(result.status == 0, "etcdctl \(arguments.joined(separator: " ")) failed: \(result.output)", sourceLocation: sourceLocation)
        return result.output
    }

    func call(_ arguments: [String], input: String? = nil) throws -> (status: Int32, output: String) {
        let process = Process()
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

/// etcdctl against the real `strata` binary: the KV service (watch, lease and maintenance come with the rest of the
/// etcd front-end).
@Suite("etcdctl end to end (KV)", .serialized)
final class EtcdctlTests {
    let directory = TemporaryDirectory()
    let server: StrataProcess
    let etcdctl: Etcdctl

    init() throws {
        let port = TestNetwork.freePort()
        server = try StrataProcess(
            dataDirectory: directory.appending("data"),
            etcdConfig: "[etcd]\nenabled = true\nlisten = \"127.0.0.1:\(port)\"")
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
                == "x\ny\nz\n")
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

    @Test func endpointHealth() throws {
        #expect(try etcdctl.ok("endpoint", "health").contains("is healthy"))
    }

    static func revision(of json: String) -> Int? {
        guard let range = json.range(of: "\"revision\":") else { return nil }
        return Int(json[range.upperBound...].prefix { $0.isNumber })
    }
}
