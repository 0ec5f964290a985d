internal import Foundation
internal import StrataTestSupport

/// Strata serving the Iceberg REST catalog on a free port (etcd and Redis off) with its warehouse in a temp dir,
/// plus the Python environment `make test` builds (pyiceberg, DuckDB and its extensions, jsonschema).
final class IcebergTestServer: @unchecked Sendable {
    let directory: TemporaryDirectory
    let port: Int
    let settings: String
    var strata: StrataProcess

    static let pythonRoot =
        (ProcessInfo.processInfo.environment["STRATA_PYCLIENTS"] ?? repositoryRoot + "/.build/pyclients") + "/iceberg"
    static var python: String { pythonRoot + "/bin/python" }
    static var extensions: String { pythonRoot + "/duckdb-extensions" }

    var uri: String { "http://127.0.0.1:\(port)" }
    var warehouse: String { directory.appending("warehouse") }

    init(
        settings: String = "",
        sync: String = "always",
        directory: TemporaryDirectory = TemporaryDirectory(),
        port: Int = TestNetwork.freePort()
    ) throws {
        self.directory = directory
        self.port = port
        self.settings = "[storage]\nsync = \"\(sync)\"\n"
        strata = try Self.start(directory: directory, port: port, settings: settings, storage: self.settings)
    }

    private static func start(directory: TemporaryDirectory, port: Int, settings: String, storage: String) throws
        -> StrataProcess
    {
        let strata = try StrataProcess(
            dataDirectory: directory.appending("data"),
            extraConfig: storage,
            icebergConfig: """
                [iceberg]
                enabled = true
                listen = "127.0.0.1:\(port)"
                warehouse = "\(directory.appending("warehouse"))"
                \(settings)
                """
        )
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline && strata.process.isRunning {
            if TestNetwork.get(port: port, path: "/v1/config", timeoutSeconds: 1) != nil { return strata }
            usleep(20_000)
        }
        throw IcebergTestFailure("strata did not start serving the Iceberg catalog:\n\(strata.output)")
    }

    /// Stops the server (SIGTERM, or SIGKILL to simulate a crash) and starts it again on the same data and port.
    func restart(signal: Int32 = SIGTERM, settings: String = "") throws {
        _ = strata.stop(signal: signal, timeoutSeconds: 10)
        strata = try Self.start(directory: directory, port: port, settings: settings, storage: self.settings)
    }

    /// Runs one of Tests/PythonClients' scripts with the Iceberg environment's Python.
    func runPython(_ script: String, _ arguments: [String], timeoutSeconds: Double = 300) throws -> ToolResult {
        guard FileManager.default.isExecutableFile(atPath: Self.python) else {
            throw IcebergTestFailure("\(Self.python) is missing: run `make test` or scripts/python-clients.sh")
        }
        return try runTool(
            Self.python,
            [repositoryRoot + "/Tests/PythonClients/" + script] + arguments,
            timeoutSeconds: timeoutSeconds
        )
    }
}

struct IcebergTestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
