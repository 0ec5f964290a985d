import Foundation
import Logging
import StrataCommon
import StrataConfig
import StrataEtcd
import StrataFrontEnd
import StrataMVCC
import StrataObservability
import StrataRocksDB
import StrataServer
import Testing

/// The repository root, found from this file's path, so tests can read the shipped config.toml.
private let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

private func load(_ toml: String) throws -> ServerConfiguration {
    try ServerConfiguration.load(toml: toml, file: "test.toml")
}

private func parseError(_ toml: String) -> ConfigError? {
    #expect(throws: ConfigError.self) { _ = try load(toml) }
}

extension ServerConfiguration {
    var etcd: EtcdFrontEnd.Configuration { frontEnd("etcd") as! EtcdFrontEnd.Configuration }
}

@Suite("Configuration")
struct ConfigTests {
    @Test func shippedConfigFileEqualsDefaults() throws {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("config.toml"), encoding: .utf8)
        let shipped = try load(text)
        let empty = try load("")
        #expect(shipped.etcd == empty.etcd)
        var core = shipped.core
        core.sections = [:]
        core.file = empty.core.file
        #expect(core == empty.core)
        #expect(empty.core == .defaults.withFile("test.toml"))
    }

    @Test func embeddedDefaultIsTheShippedFile() throws {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("config.toml"), encoding: .utf8)
        #expect(StrataConfiguration.defaultFileContents + "\n" == text, "run scripts/embed-default-config.sh")
    }

    @Test func emptyDocumentMeansDefaults() throws {
        let config = try load("")
        #expect(config.core.server.dataDirectory == "data")
        #expect(config.core.mvcc.sync == .always)
        #expect(config.core.mvcc.minFreeSpace == .bytes(256 << 20))
        #expect(config.etcd == .defaults)
        #expect(config.etcd.listen == ListenAddress(host: "127.0.0.1", port: 2379))
        #expect(config.core.metrics?.listen.port == 2381)
        #expect(config.frontEnds.map(\.registration.name) == StrataServer.frontEnds.map(\.name))
        let listeners = config.frontEnds.flatMap { $0.configuration.listeners.map(\.address) }
        #expect(listeners.allSatisfy { $0.isLoopback } && config.core.metrics?.listen.isLoopback == true)
    }

    @Test func overridesApplyAndOthersKeepDefaults() throws {
        let config = try load(
            """
            [server]
            data_dir = "/var/lib/strata"
            in_memory = true
            log_level = "DEBUG"
            [storage]
            sync = "batch"
            sync_interval_ms = 25
            block_cache_size = "1GiB"
            compression = "zstd"
            idle_flush_after = "90s"
            min_free_space = "2%"
            max_transaction_reads = 5000
            [etcd]
            enabled = false
            fast_path = false
            [metrics]
            listen = ":9090"
            """
        )
        #expect(config.core.server.dataDirectory == "/var/lib/strata")
        #expect(config.core.server.inMemory)
        #expect(config.core.server.logLevel == .debug)
        #expect(config.core.mvcc.sync == .batch)
        #expect(config.core.mvcc.syncIntervalMilliseconds == 25)
        #expect(config.core.rocksDB.blockCacheSizeBytes == 1 << 30)
        #expect(config.core.rocksDB.compression == .zstd)
        #expect(config.core.mvcc.idleFlush?.after == .seconds(90))
        #expect(config.core.mvcc.minFreeSpace == .percent(2))
        #expect(config.core.mvcc.transactionLimits.maxEntriesRead == 5000)
        #expect(!config.etcd.enabled && !config.etcd.fastPath)
        #expect(config.etcd.listen.port == 2379)
        #expect(config.core.metrics?.listen == ListenAddress(host: "127.0.0.1", port: 9090))
    }

    @Test func idleFlushDefaultsToTenSecondsAndZeroTurnsItOff() throws {
        #expect(try load("").core.mvcc.idleFlush?.after == .seconds(10))
        #expect(try load("[storage]\nidle_flush_after = \"0s\"\n").core.mvcc.idleFlush == nil)
        #expect(try load("[storage]\nidle_flush_after = 3\n").core.mvcc.idleFlush?.after == .seconds(3))
        #expect(try load("[storage]\nmin_free_space = 0\n").core.mvcc.minFreeSpace == nil)
        #expect(try load("[storage]\nmin_free_space = 1048576\n").core.mvcc.minFreeSpace == .bytes(1 << 20))
    }

    @Test func blockCacheSizeAcceptsBytes() throws {
        #expect(try load("[storage]\nblock_cache_size = 67108864\n").core.rocksDB.blockCacheSizeBytes == 64 << 20)
    }

    @Test func unknownKeyNamesKeyAndLineAndSuggests() {
        let error = parseError("[server]\ndata_dir = \"x\"\n\n[storage]\nsnyc = \"always\"\n")
        #expect(error?.line == 5)
        #expect(error?.message == "unknown key 'storage.snyc' (did you mean 'storage.sync'?)")
        #expect(error?.description == "test.toml:5: unknown key 'storage.snyc' (did you mean 'storage.sync'?)")
        // A front-end's section reports its own unknown keys the same way.
        let etcd = parseError("[etcd]\nmax_txn_op = 5\n")
        #expect(etcd?.line == 2)
        #expect(etcd?.message == "unknown key 'etcd.max_txn_op' (did you mean 'etcd.max_txn_ops'?)")
    }

    @Test func unknownSectionIsReported() {
        let error = parseError("[server]\nlog_level = \"info\"\n[etdc]\nenabled = true\n")
        #expect(error?.line == 3)
        #expect(error?.message == "unknown key 'etdc' (did you mean 'etcd'?)")
        // Front-ends this build does not have are unknown sections too.
        #expect(parseError("[memcached]\nenabled = true\n")?.message.hasPrefix("unknown key 'memcached'") == true)
    }

    @Test func unknownTopLevelKey() {
        let error = parseError("data_dir = \"x\"\n")
        #expect(error?.line == 1)
        #expect(error?.message.contains("'data_dir'") == true)
    }

    @Test func dottedKeysAreLocated() {
        let error = parseError("server.data_dir = \"a\"\nserver.bogus = 1\n")
        #expect(error?.line == 2)
        #expect(error?.message.hasPrefix("unknown key 'server.bogus'") == true)
    }

    @Test(arguments: [
        (
            "[storage]\nsync = \"sometimes\"\n", 2,
            "invalid value for 'storage.sync': \"sometimes\" (expected \"always\", \"batch\" or \"none\")"
        ),
        ("[server]\nlog_level = \"loud\"\n", 2, "invalid value for 'server.log_level'"),
        ("[etcd]\n\nenabled = \"yes\"\n", 3, "invalid value for 'etcd.enabled': expected true or false"),
        ("[metrics]\nlisten = \"127.0.0.1:70000\"\n", 2, "invalid value for 'metrics.listen': port must be a number"),
        ("[etcd]\nlisten = \"no-port\"\n", 2, "invalid value for 'etcd.listen': expected host:port"),
        ("[etcd]\nlisten = \"::1:6379\"\n", 2, "write IPv6 hosts in brackets"),
        ("[storage]\nblock_cache_size = \"lots\"\n", 2, "invalid value for 'storage.block_cache_size'"),
        ("[storage]\nblock_cache_size = 10\n", 2, "from 1MiB to 1TiB"),
        ("[storage]\nsync_interval_ms = 0\n", 2, "invalid value for 'storage.sync_interval_ms': 0"),
        ("[storage]\ncompression = \"brotli\"\n", 2, "invalid value for 'storage.compression'"),
        ("[storage]\nmin_free_space = \"lots\"\n", 2, "invalid value for 'storage.min_free_space'"),
        ("[storage]\nmin_free_space = \"150%\"\n", 2, "invalid value for 'storage.min_free_space'"),
        ("[server]\ndata_dir = \"\"\n", 2, "must not be empty"),
        ("[server]\ndata_dir = 5\n", 2, "invalid value for 'server.data_dir': expected a string"),
        ("[etcd]\nmax_request_bytes = \"1TiB\"\n", 2, "invalid value for 'etcd.max_request_bytes'"),
        ("[etcd]\nmax_txn_ops = 0\n", 2, "invalid value for 'etcd.max_txn_ops': 0 (expected 1 to 100000)"),
        ("[etcd]\nquota_backend_bytes = \"2 parsecs\"\n", 2, "invalid value for 'etcd.quota_backend_bytes'"),
        ("[etcd]\nprogress_notify_interval = \"soon\"\n", 2, "expected a duration from 100ms to 24h"),
        ("[storage]\nidle_flush_after = \"later\"\n", 2, "expected a duration from 0s (off) to 24h"),
        ("[storage]\nidle_flush_after = \"2d\"\n", 2, "expected a duration from 0s (off) to 24h"),
        ("[etcd]\nprogress_notify_interval = \"10ms\"\n", 2, "expected a duration from 100ms to 24h"),
        ("[etcd]\nmax_concurrent_streams = 0\n", 2, "invalid value for 'etcd.max_concurrent_streams'"),
        ("[etcd]\nmax_watchers_per_stream = 0\n", 2, "invalid value for 'etcd.max_watchers_per_stream'"),
        ("[etcd]\nname = \"\"\n", 2, "invalid value for 'etcd.name': must not be empty"),
        ("[etcd]\nauto_compaction_mode = \"daily\"\n", 2, "invalid value for 'etcd.auto_compaction_mode'"),
        ("[etcd]\nauto_compaction_retention = \"soon\"\n", 2, "invalid value for 'etcd.auto_compaction_retention'"),
    ])
    func invalidValuesAreRejectedWithLine(toml: String, line: Int, message: String) {
        let error = parseError(toml)
        #expect(error?.line == line)
        #expect(error?.message.contains(message) == true, "got: \(String(describing: error))")
    }

    @Test func etcdLimitsAreConfigurable() throws {
        let config = try load(
            """
            [etcd]
            name = "kind-etcd"
            max_request_bytes = "3MiB"
            max_txn_ops = 1024
            quota_backend_bytes = "8GiB"
            progress_notify_interval = "5s"
            max_concurrent_streams = 500
            max_watchers_per_stream = 64
            auto_compaction_mode = "revision"
            auto_compaction_retention = "1000"
            """
        )
        #expect(config.etcd.name == "kind-etcd")
        #expect(config.etcd.maxRequestBytes == 3 << 20)
        #expect(config.etcd.maxTxnOperations == 1024)
        #expect(config.etcd.quotaBackendBytes == 8 << 30)
        #expect(config.etcd.progressNotifyInterval == .seconds(5))
        #expect(config.etcd.maxConcurrentStreams == 500)
        #expect(config.etcd.maxWatchersPerStream == 64)
        #expect(config.etcd.autoCompaction == .revision(1000))
        #expect(try load("[etcd]\nprogress_notify_interval = 90\n").etcd.progressNotifyInterval == .seconds(90))
        #expect(
            try load("[etcd]\nauto_compaction_retention = \"1h\"\n").etcd.autoCompaction == .periodic(.seconds(3600))
        )
        #expect(
            try load("[etcd]\nauto_compaction_retention = \"2\"\n").etcd.autoCompaction == .periodic(.seconds(7200))
        )
        // etcd's progress interval reaches the core's watch hub.
        var core = MVCCStore.Configuration.defaults
        try load("[etcd]\nprogress_notify_interval = \"5s\"\n").etcd.adjust(&core)
        #expect(core.watch.progressNotifyIntervalSeconds == 5)
    }

    @Test func syntaxErrorHasLine() {
        let error = parseError("[server]\ndata_dir = \"unterminated\n")
        #expect(error?.line == 2)
        #expect(error?.message.hasPrefix("syntax error") == true)
    }

    @Test func twoListenersOnOnePortAreRejected() {
        let error = parseError("[etcd]\nlisten = \"127.0.0.1:2381\"\n")
        #expect(error?.line == 2)
        #expect(error?.message == "'metrics.listen' uses port 2381, already used by 'etcd.listen'")
        // A disabled front-end does not bind, so its port may overlap.
        #expect(throws: Never.self) { _ = try load("[etcd]\nenabled = false\nlisten = \"127.0.0.1:2381\"\n") }
    }
}

extension StrataConfiguration {
    func withFile(_ file: String) -> Self {
        var copy = self
        copy.file = file
        return copy
    }
}

@Suite("Value parsing")
struct ValueParsingTests {
    @Test(arguments: [
        ("127.0.0.1:2379", "127.0.0.1", 2379), ("localhost:0", "localhost", 0), ("[::1]:6379", "::1", 6379),
        (":8181", "127.0.0.1", 8181), ("0.0.0.0:1", "0.0.0.0", 1),
    ])
    func listenAddresses(text: String, host: String, port: Int) throws {
        let address = try ListenAddress(parsing: text)
        #expect(address.host == host && address.port == port)
    }

    @Test(arguments: ["", "host", "host:", "host:-1", "host:65536", "[::1]6379", "bad host:1", "a:b:c"])
    func invalidListenAddresses(text: String) {
        #expect(throws: ListenAddressError.self) { _ = try ListenAddress(parsing: text) }
    }

    @Test(arguments: [
        ("250ms", Duration.milliseconds(250)), ("30s", .seconds(30)), ("10m", .seconds(600)), ("1h", .seconds(3600)),
        ("1.5s", .milliseconds(1500)), ("45", .seconds(45)),
    ])
    func durations(text: String, expected: Duration) {
        #expect(Duration(parsing: text) == expected)
    }

    @Test(arguments: ["", "s", "-1s", "10 fortnights", "1e3s", "ten"])
    func invalidDurations(text: String) {
        #expect(Duration(parsing: text) == nil)
    }

    @Test func byteSizes() {
        #expect(ByteSize(parsing: "256MiB")?.bytes == 256 << 20)
        #expect(ByteSize(parsing: "1gb")?.bytes == 1_000_000_000)
        #expect(ByteSize(parsing: "4 KiB")?.bytes == 4096)
        #expect(ByteSize(parsing: "123")?.bytes == 123)
        #expect(ByteSize(parsing: "12XB") == nil)
        #expect(ByteSize(parsing: "MiB") == nil)
        #expect(ByteSize(parsing: "99999999999TiB") == nil)
        #expect(ByteSize(bytes: 256 << 20).description == "256MiB")
    }
}

@Suite("SHA-256")
struct SHA256Tests {
    func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    @Test func knownVectors() {
        #expect(hex(SHA256.hash(Array("".utf8))) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(
            hex(SHA256.hash(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        )
        #expect(
            hex(SHA256.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        )
        var incremental = SHA256()
        for _ in 0..<1000 { incremental.update(Array(repeating: UInt8(ascii: "a"), count: 1000)) }
        #expect(hex(incremental.finalize()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}
