import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import StrataEtcdAPI
import StrataTestSupport
import SwiftProtobuf
import Synchronization
import Testing

/// A small file system filling up under etcd puts: below `storage.min_free_space` the core refuses writes (etcd's
/// NOSPACE error and alarm) instead of letting RocksDB run out of space mid-write, reads and deletes go on, and writes
/// come back by themselves once space is free again.
@Suite("Disk full", .serialized)
struct DiskFullTests {
    /// A tmpfs of `megabytes` mounted on a fresh directory (root only: CI runs as root), unmounted at the end.
    final class SmallFileSystem {
        let directory = TemporaryDirectory(prefix: "strata-small-fs")
        var path: String { directory.path }

        init(megabytes: Int) throws {
            let status = try run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(megabytes)m", "tmpfs", directory.path])
            guard status == 0 else {
                throw CancellationError()  // reported by the caller
            }
        }

        deinit {
            _ = try? run("/bin/umount", ["-l", directory.path])
        }
    }

    /// 100 KB of random bytes: RocksDB cannot compress it away.
    static let incompressible = Data((0..<100_000).map { _ in UInt8.random(in: 0...255) })

    /// Puts `big/0`, `big/1`, … until one is refused (or `limit` succeeded); returns how many succeeded and the refusal.
    static func putUntilRefused(_ kv: Etcdserverpb_KV.Client<HTTP2ClientTransport.Posix>, value: Data, limit: Int)
        async throws -> (written: Int, refusal: RPCError?)
    {
        for written in 0..<limit {
            do {
                _ = try await kv.put(
                    .with {
                        $0.key = Data("big/\(written)".utf8)
                        $0.value = value
                    }
                )
            } catch let error as RPCError {
                return (written, error)
            }
        }
        return (limit, nil)
    }

    static func run(_ tool: String, _ arguments: [String]) throws -> Int32 {
        let process = ChildProcess()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }

    @Test func writesStopBelowTheReserveAndResumeByThemselves() async throws {
        let fileSystem: SmallFileSystem
        do {
            fileSystem = try SmallFileSystem(megabytes: 512)
        } catch {
            Issue.record("mounting a tmpfs failed: this test needs root (CI runs as root)")
            return
        }
        // Room that can be given back later: a balloon file of 100 MiB. The reserve must hold what RocksDB takes at
        // once: a memtable flush (up to 64 MiB) and the next write-ahead log, preallocated (70 MiB).
        let balloon = fileSystem.path + "/balloon"
        #expect(FileManager.default.createFile(atPath: balloon, contents: Data(count: 100 << 20)))
        let port = TestNetwork.freePort()
        let strata = try StrataProcess(
            dataDirectory: fileSystem.path + "/data",
            extraConfig: "[storage]\nmin_free_space = \"160MiB\"\n",
            etcdConfig: "[etcd]\nenabled = true\nlisten = \"127.0.0.1:\(port)\""
        )
        #expect(strata.waitUntilHealthy(), "output:\n\(strata.output)")
        let acknowledged = Mutex(0)
        try await withGRPCClient(
            transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
        ) { client in
            let kv = Etcdserverpb_KV.Client(wrapping: client)
            let maintenance = Etcdserverpb_Maintenance.Client(wrapping: client)
            let value = Self.incompressible
            // 100 KB puts until the guard refuses one (the file system has ~180 MiB free above the reserve: at most a
            // few thousand puts, counting the write-ahead log and flushed files).
            let (written, refusal) = try await Self.putUntilRefused(kv, value: value, limit: 4000)
            let error = try #require(refusal, "\(written) puts of 100 KB all succeeded on a 512 MiB file system")
            #expect(error.code == .resourceExhausted)
            #expect(error.message == "etcdserver: mvcc: database space exceeded")
            #expect(written > 100)
            acknowledged.withLock { $0 = written }
            // Still serving: reads work, the alarm shows why, /health says so.
            let read = try await kv.range(.with { $0.key = Data("big/0".utf8) })
            #expect(read.kvs.first?.value == value)
            let alarms = try await maintenance.alarm(.with { $0.action = .get })
            #expect(alarms.alarms.map(\.alarm) == [.nospace])
            let health = TestNetwork.get(port: strata.adminPort, path: "/health")
            #expect(health?.status == 503 && health?.body.contains("ALARM NOSPACE") == true)
            // Deletes go on (they are how space comes back).
            let deleted = try await kv.deleteRange(.with { $0.key = Data("big/1".utf8) })
            #expect(deleted.deleted == 1)

            // Space comes back: writes resume without an operator, and the alarm clears.
            try FileManager.default.removeItem(atPath: balloon)
            var resumed = false
            for _ in 0..<100 where !resumed {
                try await Task.sleep(nanoseconds: 100_000_000)
                resumed = (try? await kv.put(.with { $0.key = Data("after".utf8) })) != nil
            }
            #expect(resumed, "writes did not resume once space was back")
            let cleared = try await maintenance.alarm(.with { $0.action = .get })
            #expect(cleared.alarms.isEmpty)
        }
        #expect(strata.process.isRunning, "the server died:\n\(strata.output)")
        #expect(strata.stop() == 0)
        // Everything acknowledged is there after a restart on the same (still small) file system.
        let again = try StrataProcess(
            dataDirectory: fileSystem.path + "/data",
            etcdConfig: "[etcd]\nenabled = true\nlisten = \"127.0.0.1:\(port)\""
        )
        #expect(again.waitUntilHealthy(), "output:\n\(again.output)")
        try await withGRPCClient(
            transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
        ) { client in
            let count = try await Etcdserverpb_KV.Client(wrapping: client).range(
                .with {
                    $0.key = Data("big/".utf8)
                    $0.rangeEnd = Data("big0".utf8)
                    $0.countOnly = true
                }
            )
            #expect(count.count == Int64(acknowledged.withLock { $0 } - 1))
        }
        #expect(again.stop() == 0)
    }

    /// Without the guard (`min_free_space = 0`) RocksDB itself runs out of space: its write-ahead log fails mid-write.
    /// Debian's RocksDB is built with assertions, and used to abort the process on the next line of its info log; now
    /// the write fails with etcd's NOSPACE error, the server stays up, and once there is room again RocksDB recovers
    /// by itself and writes go on.
    @Test func rocksDBRunningOutOfSpaceRecoversWithoutAborting() async throws {
        let fileSystem: SmallFileSystem
        do {
            fileSystem = try SmallFileSystem(megabytes: 192)
        } catch {
            Issue.record("mounting a tmpfs failed: this test needs root (CI runs as root)")
            return
        }
        let balloon = fileSystem.path + "/balloon"
        #expect(FileManager.default.createFile(atPath: balloon, contents: Data(count: 100 << 20)))
        let port = TestNetwork.freePort()
        let strata = try StrataProcess(
            dataDirectory: fileSystem.path + "/data",
            extraConfig: "[storage]\nmin_free_space = 0\n",
            etcdConfig: "[etcd]\nenabled = true\nlisten = \"127.0.0.1:\(port)\""
        )
        #expect(strata.waitUntilHealthy(), "output:\n\(strata.output)")
        try await withGRPCClient(
            transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
        ) { client in
            let kv = Etcdserverpb_KV.Client(wrapping: client)
            let (_, refusal) = try await Self.putUntilRefused(kv, value: Self.incompressible, limit: 2000)
            let error = try #require(refusal, "2000 puts of 100 KB all succeeded on a 192 MiB file system")
            #expect(error.code == .resourceExhausted && error.message == "etcdserver: mvcc: database space exceeded")
            #expect(strata.process.isRunning, "the server died on a full disk:\n\(strata.output)")
            #expect(TestNetwork.get(port: strata.adminPort, path: "/health")?.status == 503)
            _ = try await kv.range(.with { $0.key = Data("big/0".utf8) })  // reads go on
            try FileManager.default.removeItem(atPath: balloon)
            // RocksDB's own recovery looks every 5 s for free space beyond a write buffer (64 MiB).
            var resumed = false
            for _ in 0..<150 where !resumed {
                try await Task.sleep(nanoseconds: 100_000_000)
                resumed = (try? await kv.put(.with { $0.key = Data("after".utf8) })) != nil
            }
            #expect(resumed, "writes did not resume once space was back:\n\(strata.output)")
            #expect(TestNetwork.get(port: strata.adminPort, path: "/health")?.status == 200)
        }
        #expect(strata.process.isRunning, "the server died:\n\(strata.output)")
        #expect(strata.stop() == 0)
    }
}
