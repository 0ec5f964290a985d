import Foundation
import StrataCommon
import StrataEtcd
import StrataFrontEnd
import StrataMVCC
import StrataTestSupport
import Testing

/// `strata etcd [flags]`: etcd's command line as harnesses pass it, mapped onto Strata's configuration.
@Suite("etcd personality")
struct EtcdPersonalityTests {
    func serve(_ arguments: [String], environment: [String: String] = [:]) throws
        -> (ProcessSettings, EtcdFrontEnd.Configuration)
    {
        guard case .serve(let settings, let configuration) = EtcdPersonality.personality.parse(arguments, environment)
        else {
            Issue.record("\(arguments) did not start a server")
            throw CancellationError()
        }
        return (settings, try #require(configuration as? EtcdFrontEnd.Configuration))
    }

    func exit(_ arguments: [String]) -> (output: String, status: Int32)? {
        guard case .exit(let output, let status) = EtcdPersonality.personality.parse(arguments, [:]) else { return nil }
        return (output, status)
    }

    @Test func envtestsCommandLine() throws {
        let (settings, etcd) = try serve([
            "--advertise-client-urls=http://127.0.0.1:40001", "--data-dir=/tmp/envtest/etcd",
            "--listen-client-urls=http://127.0.0.1:40001", "--listen-peer-urls=http://localhost:0",
            "--unsafe-no-fsync=true",
        ])
        #expect(settings.dataDirectory == "/tmp/envtest/etcd")
        #expect(settings.sync == SyncMode.none)
        #expect(settings.adminListen == nil)  // etcd has no metrics listener unless asked
        #expect(etcd.listen == ListenAddress(host: "127.0.0.1", port: 40001))
        #expect(etcd.enabled && etcd.autoCompaction == nil)
    }

    @Test func flagsMapOntoTheConfiguration() throws {
        let (settings, etcd) = try serve([
            "-name", "kind", "--quota-backend-bytes", "8589934592", "--auto-compaction-mode=revision",
            "--auto-compaction-retention=1000", "--log-level", "warn", "--max-request-bytes=3145728",
            "--max-txn-ops", "1024", "--listen-client-urls", "http://localhost:2379,http://127.0.0.1:2379",
            "--listen-metrics-urls=http://127.0.0.1:2381", "--experimental-watch-progress-notify-interval=5s",
            "--heartbeat-interval=250", "--election-timeout=2500", "--snapshot-count=10000", "--enable-pprof",
            "--initial-cluster=kind=http://127.0.0.1:2380", "--initial-cluster-state=new",
        ])
        #expect(etcd.name == "kind" && settings.dataDirectory == "kind.etcd")
        #expect(etcd.quotaBackendBytes == 8 << 30)
        #expect(etcd.autoCompaction == .revision(1000))
        #expect(settings.logLevel == "warning")
        #expect(etcd.maxRequestBytes == 3 << 20 && etcd.maxTxnOperations == 1024)
        #expect(etcd.listen == ListenAddress(host: "127.0.0.1", port: 2379))
        #expect(settings.adminListen == ListenAddress(host: "127.0.0.1", port: 2381))
        #expect(etcd.progressNotifyInterval == .seconds(5))
        #expect(settings.sync == nil)  // fsync stays on unless --unsafe-no-fsync
        let (_, periodic) = try serve(["--auto-compaction-retention=1h30m"])
        #expect(periodic.autoCompaction == .periodic(.seconds(5400)))
        let (_, hours) = try serve(["--auto-compaction-retention", "2"])
        #expect(hours.autoCompaction == .periodic(.seconds(7200)))
    }

    @Test func environmentFillsFlagsTheCommandLineLeavesOut() throws {
        let (settings, etcd) = try serve(
            ["--name=flag"],
            environment: ["ETCD_NAME": "env", "ETCD_DATA_DIR": "/tmp/from-env", "ETCD_UNSAFE_NO_FSYNC": "true"]
        )
        #expect(etcd.name == "flag")
        #expect(settings.dataDirectory == "/tmp/from-env" && settings.sync == SyncMode.none)
    }

    /// Refused as etcd 3.4 refuses them: same first line and exit status as Debian's etcd.
    @Test func badCommandLinesAreRefusedAsEtcdRefusesThem() throws {
        for arguments in [["--bogus"], ["--name"], ["positional"], ["--unsafe-no-fsync=maybe"]] {
            let reference = try runProcess("/usr/bin/etcd", arguments)
            let ours = try #require(exit(arguments))
            #expect(
                ours.status == reference.status,
                "\(arguments): etcd exits \(reference.status), strata \(ours.status)"
            )
            if reference.status == 2 {
                let firstLine = reference.output.split(separator: "\n").first.map(String.init)
                #expect(ours.output.split(separator: "\n").first.map(String.init) == firstLine, "\(arguments)")
            }
        }
        #expect(exit(["--cert-file=/x.pem"])?.output.contains("TLS is not supported") == true)
        #expect(exit(["--listen-client-urls=https://127.0.0.1:2379"])?.status == 1)
        #expect(exit(["--initial-cluster=a=http://1:2380,b=http://2:2380"])?.output.contains("one member") == true)
        #expect(exit(["--help"])?.status == 0)
    }

    /// The binary run through a symlink named `etcd` is etcd's command line.
    @Test func symlinkNamedEtcd() throws {
        let directory = TemporaryDirectory()
        let link = directory.appending("etcd")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: StrataProcess.binaryPath)
        let version = try runProcess(link, ["--version"])
        #expect(version.status == 0)
        #expect(version.output.hasPrefix("etcd Version: 3.5."))
        let strataVersion = try runStrata(["etcd", "--version"])
        #expect(strataVersion.output == version.output)
        let bogus = try runProcess(link, ["--bogus"])
        #expect(bogus.status == 2 && bogus.output.hasPrefix("flag provided but not defined: -bogus"))
    }
}

/// `--auto-compaction-*` really compacts: started as a harness would start etcd, with a one-second periodic retention,
/// the history behind a retention's worth of revisions goes by itself (etcdctl then gets etcd's compacted error).
@Suite("Auto-compaction through the etcd personality")
struct AutoCompactionTests {
    @Test func periodicRetentionCompactsOldHistory() async throws {
        let directory = TemporaryDirectory()
        let port = TestNetwork.freePort()
        let strata = try StrataProcess(
            etcdPersonality: directory.appending("data"),
            clientPort: port,
            extraArguments: ["--auto-compaction-mode=periodic", "--auto-compaction-retention=1s"]
        )
        #expect(strata.waitUntilHealthy(), "output:\n\(strata.output)")
        let etcdctl = Etcdctl(port: port)
        for i in 0..<5 { _ = try etcdctl.ok("put", "k", "v\(i)") }
        #expect(try etcdctl.ok("get", "k", "--rev=2", "--print-value-only") == "v0\n")
        // One sample per second; the compaction to the revision seen a retention ago follows within a few seconds.
        var compacted = false
        for _ in 0..<100 where !compacted {
            try await Task.sleep(nanoseconds: 100_000_000)
            let old = try etcdctl.call(["get", "k", "--rev=2"])
            compacted = old.status != 0 && old.output.contains("required revision has been compacted")
        }
        #expect(compacted, "history at revision 2 was still there after 10 s:\n\(strata.output)")
        #expect(try etcdctl.ok("get", "k", "--print-value-only") == "v4\n")
        #expect(strata.output.contains("auto-compaction compacted at revision"))
        #expect(strata.stop() == 0)
    }
}
