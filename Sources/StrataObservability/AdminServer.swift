internal import Hummingbird
package import Logging
package import StrataCommon
private import Synchronization

/// The admin HTTP listener: `/metrics`, `/health` (etcd's JSON shape, which Kind's etcd probes call), `/livez`,
/// `/readyz` and `/version`. It runs whatever front-ends are enabled, so monitoring never depends on one of them.
package struct AdminServer: Sendable {
    package struct Configuration: Sendable, Hashable {
        /// kubeadm's etcd serves metrics and health on 2381; we use the same port by default.
        package var listen = ListenAddress(host: "127.0.0.1", port: 2381)
        package init() {}
        package static var defaults: Self { Self() }
    }

    /// What `/version` reports.
    package struct VersionInfo: Sendable {
        package var version: String
        package var frontEnds: [String]
        package init(version: String = StrataVersion.current, frontEnds: [String]) {
            self.version = version
            self.frontEnds = frontEnds
        }
    }

    package let configuration: Configuration
    private let metrics: StrataMetrics
    private let processHealth: ProcessHealth
    private let versionInfo: VersionInfo
    private let logger: Logger

    /// `health`: the process's checks and alarms; an active alarm makes `/health` report false unless the probe
    /// excludes it (`?exclude=NOSPACE`, as Kind's liveness probe does).
    package init(
        configuration: Configuration,
        metrics: StrataMetrics,
        health: ProcessHealth,
        versionInfo: VersionInfo,
        logger: Logger
    ) {
        self.configuration = configuration
        self.metrics = metrics
        self.processHealth = health
        self.versionInfo = versionInfo
        self.logger = logger
    }

    /// The overall status (see ``ProcessHealth``).
    package func health(excludingAlarms excludedAlarms: Set<String> = []) async -> HealthStatus {
        await processHealth.status(excludingAlarms: excludedAlarms)
    }

    /// The alarms a `/health` request excludes: every `exclude=` query parameter (etcd accepts it repeated).
    package static func excludedAlarms(query: some StringProtocol) -> Set<String> {
        var excluded: Set<String> = []
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2, parts[0] == "exclude" { excluded.insert(String(parts[1])) }
        }
        return excluded
    }

    func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/metrics") { _, _ in
            let body = metrics.render()
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: body))
            )
        }
        // etcd answers /health with {"health":"true","reason":""} (200) or "false" and a reason (503). `exclude=`
        // names alarms to ignore; `serializable=true` (etcd: skip the leader check) changes nothing for one member.
        router.get("/health") { request, _ in
            let status = await health(excludingAlarms: Self.excludedAlarms(query: request.uri.query ?? ""))
            let body = #"{"health":"\#(status.isHealthy)","reason":\#(JSONText.quoted(status.reason))}"#
            return Self.json(body, status: status.isHealthy ? .ok : .serviceUnavailable)
        }
        router.get("/livez") { _, _ in Self.text("ok\n", status: .ok) }
        router.get("/readyz") { _, _ in
            let status = await health()
            return status.isHealthy
                ? Self.text("ok\n", status: .ok)
                : Self.text("not ready: \(status.reason)\n", status: .serviceUnavailable)
        }
        router.get("/version") { _, _ in
            let frontEnds = versionInfo.frontEnds.map(JSONText.quoted).joined(separator: ",")
            return Self.json(
                #"{"version":\#(JSONText.quoted(versionInfo.version)),"frontends":[\#(frontEnds)]}"#,
                status: .ok
            )
        }
        return router
    }

    private static func json(_ body: String, status: HTTPResponse.Status) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: body + "\n"))
        )
    }

    private static func text(_ body: String, status: HTTPResponse.Status) -> Response {
        Response(
            status: status,
            headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: body))
        )
    }

    /// Serves until graceful shutdown. A bind failure is reported as a ``ListenError`` naming the address.
    package func run(onListening: @escaping @Sendable (ListenAddress) async -> Void = { _ in }) async throws {
        let started = Atomic<Bool>(false)
        let listen = configuration.listen
        let logger = self.logger
        let app = Application(
            router: makeRouter(),
            configuration: .init(address: .hostname(listen.host, port: listen.port), serverName: "strata"),
            onServerRunning: { channel in
                started.store(true, ordering: .releasing)
                let port = channel.localAddress?.port ?? listen.port
                let bound = ListenAddress(host: listen.host, port: port)
                logger.info("admin HTTP (/metrics, /health, /readyz, /version) listening on \(bound)")
                await onListening(bound)
            },
            logger: logger
        )
        do {
            try await app.run()
        } catch {
            if !started.load(ordering: .acquiring) {
                throw ListenError(component: "admin HTTP", address: listen, underlying: error)
            }
            throw error
        }
    }
}

/// A listener that could not start; the message names what and where, as operators need.
package struct ListenError: Error, CustomStringConvertible, Sendable {
    package let component: String
    package let address: ListenAddress
    package let reason: String

    package init(component: String, address: ListenAddress, underlying: any Error) {
        self.component = component
        self.address = address
        self.reason = "\(underlying)"
    }

    package var description: String { "cannot listen on \(address) for \(component): \(reason)" }
}

/// Minimal JSON string quoting, enough for the admin endpoints' few string fields.
package enum JSONText {
    package static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
