import Foundation
import Logging
import StrataCommon
import StrataConfig
import StrataObservability
import StrataRocksDB
import Testing

/// The repository root, found from this file's path, so tests can read the shipped config.toml.
private let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

private func parseError(_ toml: String) -> ConfigError? {
    #expect(throws: ConfigError.self) { _ = try StrataConfiguration.parse(toml: toml, file: "test.toml") }
}

@Suite("Configuration")
struct ConfigTests {
    @Test func shippedConfigFileEqualsDefaults() throws {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("config.toml"), encoding: .utf8)
        #expect(try StrataConfiguration.parse(toml: text) == .defaults)
    }

    @Test func embeddedDefaultIsTheShippedFile() throws {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("config.toml"), encoding: .utf8)
        #expect(StrataConfiguration.defaultFileContents + "\n" == text, "run scripts/embed-default-config.sh")
    }

    @Test func emptyDocumentMeansDefaults() throws {
        let config = try StrataConfiguration.parse(toml: "")
        #expect(config == .defaults)
        #expect(config.server.dataDirectory == "data")
        #expect(config.storage.sync == .always)
        #expect(config.etcd.listen == ListenAddress(host: "127.0.0.1", port: 2379))
        #expect(config.redis.listen.port == 6379)
        #expect(config.iceberg.listen.port == 8181)
        #expect(config.metrics.listen.port == 2381)
        let listeners = [config.etcd.listen, config.redis.listen, config.iceberg.listen, config.metrics.listen]
        #expect(listeners.allSatisfy { $0.isLoopback })
    }

    @Test func overridesApplyAndOthersKeepDefaults() throws {
        let config = try StrataConfiguration.parse(
            toml: """
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
                [etcd]
                enabled = false
                [redis]
                listen = "[::1]:7000"
                [iceberg]
                warehouse = "/tmp/wh"
                [metrics]
                listen = ":9090"
                """
        )
        #expect(config.server.dataDirectory == "/var/lib/strata")
        #expect(config.server.inMemory)
        #expect(config.server.logLevel == .debug)
        #expect(config.storage.sync == .batch)
        #expect(config.storage.syncIntervalMilliseconds == 25)
        #expect(config.storage.rocksDB.blockCacheSizeBytes == 1 << 30)
        #expect(config.storage.rocksDB.compression == .zstd)
        #expect(config.storage.idleFlushAfter == .seconds(90))
        #expect(!config.etcd.enabled)
        #expect(config.etcd.listen.port == 2379)
        #expect(config.redis.listen == ListenAddress(host: "::1", port: 7000))
        #expect(config.redis.listen.description == "[::1]:7000")
        #expect(config.iceberg.enabled && config.iceberg.warehouse == "/tmp/wh")
        #expect(config.metrics.listen == ListenAddress(host: "127.0.0.1", port: 9090))
    }

    @Test func idleFlushDefaultsToTenSecondsAndZeroTurnsItOff() throws {
        #expect(try StrataConfiguration.parse(toml: "").storage.idleFlushAfter == .seconds(10))
        let off = try StrataConfiguration.parse(toml: "[storage]\nidle_flush_after = \"0s\"\n")
        #expect(off.storage.idleFlushAfter == nil)
        let seconds = try StrataConfiguration.parse(toml: "[storage]\nidle_flush_after = 3\n")
        #expect(seconds.storage.idleFlushAfter == .seconds(3))
    }

    @Test func blockCacheSizeAcceptsBytes() throws {
        let config = try StrataConfiguration.parse(toml: "[storage]\nblock_cache_size = 67108864\n")
        #expect(config.storage.rocksDB.blockCacheSizeBytes == 64 << 20)
    }

    @Test func unknownKeyNamesKeyAndLineAndSuggests() {
        let error = parseError("[server]\ndata_dir = \"x\"\n\n[storage]\nsnyc = \"always\"\n")
        #expect(error?.line == 5)
        #expect(error?.message == "unknown key 'storage.snyc' (did you mean 'storage.sync'?)")
        #expect(error?.description == "test.toml:5: unknown key 'storage.snyc' (did you mean 'storage.sync'?)")
    }

    @Test func unknownSectionIsReported() {
        let error = parseError("[server]\nlog_level = \"info\"\n[redsi]\nenabled = true\n")
        #expect(error?.line == 3)
        #expect(error?.message.hasPrefix("unknown key 'redsi'") == true)
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
        ("[redis]\nlisten = \"no-port\"\n", 2, "invalid value for 'redis.listen': expected host:port"),
        ("[redis]\nlisten = \"::1:6379\"\n", 2, "write IPv6 hosts in brackets"),
        ("[storage]\nblock_cache_size = \"lots\"\n", 2, "invalid value for 'storage.block_cache_size'"),
        ("[storage]\nblock_cache_size = 10\n", 2, "from 1MiB to 1TiB"),
        ("[storage]\nsync_interval_ms = 0\n", 2, "invalid value for 'storage.sync_interval_ms': 0"),
        ("[storage]\ncompression = \"brotli\"\n", 2, "invalid value for 'storage.compression'"),
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
    ])
    func invalidValuesAreRejectedWithLine(toml: String, line: Int, message: String) {
        let error = parseError(toml)
        #expect(error?.line == line)
        #expect(error?.message.contains(message) == true, "got: \(String(describing: error))")
    }

    @Test func etcdLimitsAreConfigurable() throws {
        let config = try StrataConfiguration.parse(
            toml: """
                [etcd]
                name = "kind-etcd"
                max_request_bytes = "3MiB"
                max_txn_ops = 1024
                quota_backend_bytes = "8GiB"
                progress_notify_interval = "5s"
                max_concurrent_streams = 500
                max_watchers_per_stream = 64
                """
        )
        #expect(config.etcd.name == "kind-etcd")
        #expect(config.etcd.maxRequestBytes == 3 << 20)
        #expect(config.etcd.maxTxnOperations == 1024)
        #expect(config.etcd.quotaBackendBytes == 8 << 30)
        #expect(config.etcd.progressNotifyInterval == .seconds(5))
        #expect(config.etcd.maxConcurrentStreams == 500)
        #expect(config.etcd.maxWatchersPerStream == 64)
        let seconds = try StrataConfiguration.parse(toml: "[etcd]\nprogress_notify_interval = 90\n")
        #expect(seconds.etcd.progressNotifyInterval == .seconds(90))
    }

    @Test func syntaxErrorHasLine() {
        let error = parseError("[server]\ndata_dir = \"unterminated\n")
        #expect(error?.line == 2)
        #expect(error?.message.hasPrefix("syntax error") == true)
    }

    @Test func twoListenersOnOnePortAreRejected() {
        let error = parseError("[etcd]\nlisten = \"127.0.0.1:2381\"\n")
        #expect(error?.line == 2)
        #expect(error?.message.contains("already used by") == true)
        // A disabled front-end does not bind, so its port may overlap.
        #expect(throws: Never.self) {
            _ = try StrataConfiguration.parse(toml: "[etcd]\nenabled = false\nlisten = \"127.0.0.1:2381\"\n")
        }
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
