internal import Foundation
internal import StrataCommon
package import StrataFrontEnd
internal import StrataMVCC

/// `strata etcd [flags]` (and the binary run through a symlink named `etcd`): etcd 3.4/3.5's command line as test
/// harnesses pass it (controller-runtime's envtest: `--data-dir`, `--listen-client-urls`, `--advertise-client-urls`,
/// `--listen-peer-urls`, `--unsafe-no-fsync`), mapped onto Strata's configuration, serving the etcd front-end alone.
/// Flags follow Go's `flag` package: `-f`, `--f`, `-f=v`, `-f v`; an unknown flag is refused as etcd refuses it;
/// `ETCD_<FLAG>` environment variables fill flags the command line leaves out.
package enum EtcdPersonality {
    package static let personality = Personality(command: "etcd") { arguments, environment in
        do throws(Failure) {
            return try parse(arguments, environment: environment)
        } catch {
            return .exit(output: error.message, status: error.status)
        }
    }

    struct Failure: Error {
        let message: String
        let status: Int32
    }

    enum Kind {
        case string, bool, urls
    }

    /// Flags Strata acts on.
    static let mapped: [String: Kind] = [
        "data-dir": .string, "name": .string, "listen-client-urls": .urls, "advertise-client-urls": .urls,
        "listen-metrics-urls": .urls, "unsafe-no-fsync": .bool, "quota-backend-bytes": .string,
        "max-request-bytes": .string, "max-txn-ops": .string, "max-concurrent-streams": .string,
        "auto-compaction-mode": .string, "auto-compaction-retention": .string, "log-level": .string,
        "experimental-watch-progress-notify-interval": .string, "initial-cluster": .string, "version": .bool,
        "help": .bool, "h": .bool, "config-file": .string, "cert-file": .string, "key-file": .string,
        "trusted-ca-file": .string, "client-cert-auth": .bool, "auto-tls": .bool, "force-new-cluster": .bool,
    ]

    /// etcd 3.4/3.5 flags a single in-process member has no use for (Raft, peers, WAL tuning, logging plumbing):
    /// accepted and ignored, so a harness's command line starts unchanged.
    static let ignoredStrings: Set<String> = [
        "wal-dir", "listen-peer-urls", "initial-advertise-peer-urls", "initial-cluster-state",
        "initial-cluster-token", "max-snapshots", "max-wals", "snapshot-count", "heartbeat-interval",
        "election-timeout", "backend-batch-interval", "backend-batch-limit", "grpc-keepalive-min-time",
        "grpc-keepalive-interval", "grpc-keepalive-timeout", "discovery", "discovery-fallback", "discovery-proxy",
        "discovery-srv", "discovery-srv-name", "proxy", "proxy-failure-wait", "proxy-refresh-interval",
        "proxy-dial-timeout", "proxy-write-timeout", "proxy-read-timeout", "client-crl-file",
        "client-cert-allowed-hostname", "peer-cert-file", "peer-key-file", "peer-trusted-ca-file", "peer-crl-file",
        "peer-cert-allowed-cn", "peer-cert-allowed-hostname", "cipher-suites", "host-whitelist", "logger",
        "log-output", "log-outputs", "log-package-levels", "metrics", "auth-token", "bcrypt-cost", "auth-token-ttl",
        "experimental-corrupt-check-time", "experimental-enable-v2v3", "experimental-backend-bbolt-freelist-type",
        "experimental-compaction-batch-limit", "experimental-warning-apply-duration", "backend-bbolt-freelist-type",
        "experimental-compaction-sleep-interval", "experimental-snapshot-catchup-entries",
        "experimental-downgrade-check-time", "experimental-wait-cluster-ready-timeout",
        "experimental-warning-unary-request-duration", "experimental-compact-hash-check-time",
        "experimental-max-learners", "experimental-bootstrap-defrag-threshold-megabytes",
        "experimental-distributed-tracing-address", "experimental-distributed-tracing-service-name",
        "experimental-distributed-tracing-instance-id", "experimental-distributed-tracing-sampling-rate",
        "log-rotation-config-json", "self-signed-cert-validity", "tls-min-version", "tls-max-version",
        "listen-client-http-urls", "v2-deprecation", "max-learners", "warning-unary-request-duration",
        "discovery-token", "discovery-endpoints", "discovery-dial-timeout", "discovery-request-timeout",
        "discovery-keepalive-time", "discovery-keepalive-timeout", "discovery-insecure-transport",
        "discovery-insecure-skip-tls-verify", "discovery-cert", "discovery-key", "discovery-cacert",
        "discovery-user", "discovery-password",
    ]

    static let ignoredBools: Set<String> = [
        "initial-election-tick-advance", "strict-reconfig-check", "enable-v2", "pre-vote", "peer-client-cert-auth",
        "peer-auto-tls", "experimental-peer-skip-client-san-verification", "debug", "enable-pprof",
        "enable-grpc-gateway", "experimental-initial-corrupt-check", "experimental-enable-lease-checkpoint",
        "experimental-enable-lease-checkpoint-persist", "experimental-enable-distributed-tracing",
        "experimental-memory-mlock", "experimental-txn-mode-write-with-shared-buffer",
        "experimental-stop-grpc-service-on-defrag", "experimental-compact-hash-check-enabled",
        "socket-reuse-port", "socket-reuse-address", "enable-log-rotation", "experimental-enable-v2v3",
        "experimental-local-address", "corrupt-check-time",
    ]

    static func kind(_ name: String) -> Kind? {
        if let kind = mapped[name] { return kind }
        if ignoredStrings.contains(name) { return .string }
        if ignoredBools.contains(name) { return .bool }
        return nil
    }

    static let usage =
        "Usage:\n\n  etcd [flags]\n    Start an etcd server.\n\n  etcd --version\n    Show the version of etcd.\n"

    static func parse(_ arguments: [String], environment: [String: String]) throws(Failure) -> Personality.Outcome {
        var values: [String: String] = [:]
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--" { break }
            guard argument.hasPrefix("-"), argument != "-" else {
                throw Failure(message: "etcd: '\(argument)' is not a valid flag\n", status: 1)
            }
            var body = argument.dropFirst(argument.hasPrefix("--") ? 2 : 1)
            var value: String? = nil
            if let equals = body.firstIndex(of: "=") {
                value = String(body[body.index(after: equals)...])
                body = body[..<equals]
            }
            let name = String(body)
            guard let kind = kind(name) else {
                throw Failure(message: "flag provided but not defined: -\(name)\n\(usage)", status: 2)
            }
            if kind == .bool {
                let text = value ?? "true"
                guard let bool = parseBool(text) else {
                    throw Failure(
                        message: "invalid boolean value \"\(text)\" for -\(name): parse error\n\(usage)",
                        status: 2
                    )
                }
                values[name] = bool ? "true" : "false"
            } else {
                if value == nil {
                    guard index < arguments.count else {
                        throw Failure(message: "flag needs an argument: -\(name)\n\(usage)", status: 2)
                    }
                    value = arguments[index]
                    index += 1
                }
                values[name] = value
            }
        }
        if index < arguments.count {
            throw Failure(message: "etcd: '\(arguments[index])' is not a valid flag\n", status: 1)
        }
        // ETCD_DATA_DIR etc. for flags the command line left out (etcd's flags.SetFlagsFromEnv).
        for (key, value) in environment where key.hasPrefix("ETCD_") {
            let name = key.dropFirst(5).lowercased().replacingOccurrences(of: "_", with: "-")
            if values[name] == nil, kind(name) != nil { values[name] = value }
        }
        if values["help"] == "true" || values["h"] == "true" { return .exit(output: usage, status: 0) }
        if values["version"] == "true" {
            return .exit(
                output: "etcd Version: \(MaintenanceService.reportedVersion)\nGit SHA: strata\n"
                    + "Go Version: none (Strata \(StrataVersion.current))\nGo OS/Arch: linux\n",
                status: 0
            )
        }
        return try configure(values)
    }

    static func configure(_ values: [String: String]) throws(Failure) -> Personality.Outcome {
        func fail(_ message: String) -> Failure { Failure(message: "strata etcd: \(message)\n", status: 1) }
        if values["config-file"].map({ !$0.isEmpty }) == true {
            throw fail("--config-file is not supported: pass the settings as flags")
        }
        for flag in ["cert-file", "key-file", "trusted-ca-file"] where values[flag].map({ !$0.isEmpty }) == true {
            throw fail("--\(flag): TLS is not supported (serve plain HTTP on a loopback address)")
        }
        for flag in ["client-cert-auth", "auto-tls"] where values[flag] == "true" {
            throw fail("--\(flag): TLS is not supported (serve plain HTTP on a loopback address)")
        }
        var configuration = EtcdFrontEnd.Configuration.defaults
        var settings = ProcessSettings()
        if let name = values["name"] {
            guard !name.isEmpty else { throw fail("--name must not be empty") }
            configuration.name = name
        }
        if let cluster = values["initial-cluster"], cluster.split(separator: ",").count > 1 {
            throw fail("--initial-cluster names \(cluster.split(separator: ",").count) members; Strata is one member")
        }
        // etcd's default data directory is "<name>.etcd" in the working directory.
        settings.dataDirectory = values["data-dir"].flatMap { $0.isEmpty ? nil : $0 } ?? "\(configuration.name).etcd"
        if let urls = values["listen-client-urls"] {
            let addresses = try clientAddresses(urls, flag: "listen-client-urls")
            configuration.listen = addresses[0]
            if addresses.count > 1 {
                // One listener: the others must be the same port (a name and an address of this machine).
                guard addresses.allSatisfy({ $0.port == addresses[0].port }) else {
                    throw fail("--listen-client-urls: Strata listens on one address; \(urls) names several ports")
                }
            }
        } else {
            configuration.listen = ListenAddress(host: "127.0.0.1", port: 2379)
        }
        if let urls = values["advertise-client-urls"] { _ = try clientAddresses(urls, flag: "advertise-client-urls") }
        if let urls = values["listen-metrics-urls"], !urls.isEmpty {
            settings.adminListen = try clientAddresses(urls, flag: "listen-metrics-urls")[0]
        }
        if values["unsafe-no-fsync"] == "true" { settings.sync = SyncMode.none }
        if let text = values["quota-backend-bytes"] {
            guard let quota = Int64(text), quota >= 0 else { throw fail("--quota-backend-bytes: invalid \(text)") }
            if quota > 0 { configuration.quotaBackendBytes = quota }
        }
        if let text = values["max-request-bytes"] {
            guard let bytes = Int(text), bytes > 0 else { throw fail("--max-request-bytes: invalid \(text)") }
            configuration.maxRequestBytes = bytes
        }
        if let text = values["max-txn-ops"] {
            guard let ops = Int(text), ops > 0 else { throw fail("--max-txn-ops: invalid \(text)") }
            configuration.maxTxnOperations = ops
        }
        if let text = values["max-concurrent-streams"] {
            guard let streams = Int(text), streams > 0 else { throw fail("--max-concurrent-streams: invalid \(text)") }
            configuration.maxConcurrentStreams = min(streams, Int(Int32.max))
        }
        if let text = values["experimental-watch-progress-notify-interval"] {
            guard let interval = GoDuration.parse(text), interval > .zero else {
                throw fail("--experimental-watch-progress-notify-interval: invalid duration \(text)")
            }
            configuration.progressNotifyInterval = interval
        }
        configuration.autoCompaction = try autoCompaction(
            mode: values["auto-compaction-mode"] ?? "periodic",
            retention: values["auto-compaction-retention"] ?? "0"
        )
        if let level = values["log-level"] {
            switch level {
            case "debug": settings.logLevel = "debug"
            case "info": settings.logLevel = "info"
            case "warn": settings.logLevel = "warning"
            case "error": settings.logLevel = "error"
            case "dpanic", "panic", "fatal": settings.logLevel = "critical"
            default: throw fail("--log-level: unknown level \(level) (debug, info, warn, error, panic, fatal)")
            }
        }
        return .serve(settings, configuration)
    }

    /// etcd's `--auto-compaction-retention`: periodic takes a Go duration or a number of hours, revision a count.
    static func autoCompaction(mode: String, retention: String) throws(Failure) -> EtcdFrontEnd.AutoCompaction? {
        func fail(_ message: String) -> Failure { Failure(message: "strata etcd: \(message)\n", status: 1) }
        switch mode {
        case "periodic":
            let duration: Duration
            if let hours = Double(retention) {
                guard hours >= 0 else { throw fail("--auto-compaction-retention: invalid \(retention)") }
                duration = .milliseconds(Int64(hours * 3_600_000))
            } else if let parsed = GoDuration.parse(retention) {
                duration = parsed
            } else {
                throw fail("--auto-compaction-retention: invalid \(retention)")
            }
            return duration > .zero ? .periodic(duration) : nil
        case "revision":
            guard let revisions = Int64(retention), revisions >= 0 else {
                throw fail("--auto-compaction-retention: invalid revision count \(retention)")
            }
            return revisions > 0 ? .revision(revisions) : nil
        default:
            throw fail("--auto-compaction-mode: unknown mode \(mode) (periodic or revision)")
        }
    }

    /// The addresses of a comma-separated URL list (`http://127.0.0.1:2379,http://localhost:2379`).
    static func clientAddresses(_ list: String, flag: String) throws(Failure) -> [ListenAddress] {
        func fail(_ message: String) -> Failure { Failure(message: "strata etcd: --\(flag): \(message)\n", status: 1) }
        var addresses: [ListenAddress] = []
        for url in list.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !url.isEmpty {
            guard url.hasPrefix("http://") else {
                if url.hasPrefix("https://") { throw fail("\(url): TLS is not supported") }
                throw fail("\(url): expected http://host:port")
            }
            var hostPort = url.dropFirst("http://".count)
            if let slash = hostPort.firstIndex(of: "/") { hostPort = hostPort[..<slash] }
            do {
                var address = try ListenAddress(parsing: String(hostPort))
                if address.host == "localhost" { address.host = "127.0.0.1" }
                addresses.append(address)
            } catch {
                throw fail("\(url): \(error.reason)")
            }
        }
        guard !addresses.isEmpty else { throw fail("no URL given") }
        return addresses
    }

    static func parseBool(_ text: String) -> Bool? {
        switch text {
        case "1", "t", "T", "true", "TRUE", "True": true
        case "0", "f", "F", "false", "FALSE", "False": false
        default: nil
        }
    }
}

/// Go's `time.ParseDuration` format: `300ms`, `1.5h`, `2h45m`, `10m0s`.
enum GoDuration {
    static func parse(_ text: String) -> Duration? {
        if text == "0" { return .zero }
        let units: [(String, Double)] = [
            ("ns", 1e-9), ("us", 1e-6), ("µs", 1e-6), ("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600),
        ]
        var rest = Substring(text)
        var seconds = 0.0
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            // Longest unit first ("ms" before "m").
            guard
                let (unit, scale) = units.sorted(by: { $0.0.count > $1.0.count }).first(where: { rest.hasPrefix($0.0) })
            else { return nil }
            rest = rest.dropFirst(unit.count)
            seconds += value * scale
        }
        return .nanoseconds(Int64(seconds * 1e9))
    }
}
