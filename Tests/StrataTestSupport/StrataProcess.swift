import Foundation

/// The built `strata` executable, started as a child process with its own config, ports and temp data dir, the way
/// users run it. Output goes to a file so a failing test can show it.
package final class StrataProcess: @unchecked Sendable {
    // Mutated only from the test that owns it; killed (SIGKILL) and reaped when this is released.
    package let process = ChildProcess()
    package let adminPort: Int
    package let dataDirectory: String
    package let logPath: String

    /// Path of the `strata` binary: `$STRATA_BINARY`, else next to the test bundle (SwiftPM's build directory).
    package static var binaryPath: String {
        if let path = ProcessInfo.processInfo.environment["STRATA_BINARY"] { return path }
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        // On Linux the test runner is <bin>/strataPackageTests.xctest; on macOS it is inside a bundle.
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("strata").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory.deleteLastPathComponent()
        }
        return ".build/debug/strata"
    }

    /// Writes a config enabling only the admin listener (front-ends are added by their own tests) and starts strata.
    package init(
        dataDirectory: String,
        adminPort: Int = TestNetwork.freePort(),
        extraConfig: String = "",
        etcdConfig: String = "[etcd]\nenabled = false",
        redisConfig: String = "[redis]\nenabled = false",
        icebergConfig: String = "[iceberg]\nenabled = false",
        arguments: [String] = []
    ) throws {
        self.adminPort = adminPort
        self.dataDirectory = dataDirectory
        let configPath = dataDirectory + ".config.toml"
        logPath = dataDirectory + ".log"
        let config = """
            [server]
            data_dir = "\(dataDirectory)"
            log_level = "debug"
            \(etcdConfig)
            \(redisConfig)
            \(icebergConfig)
            [metrics]
            listen = "127.0.0.1:\(adminPort)"
            \(extraConfig)
            """
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.executableURL = URL(fileURLWithPath: Self.binaryPath)
        process.arguments = ["serve", "--config", configPath] + arguments
        process.standardOutput = log
        process.standardError = log
        try process.run()
    }

    /// Starts strata the way a test harness starts etcd (`strata etcd` with etcd's flags, as controller-runtime's
    /// envtest passes them), serving etcd on `clientPort` and the admin endpoints on `adminPort`
    /// (`--listen-metrics-urls`).
    package init(
        etcdPersonality dataDirectory: String,
        clientPort: Int,
        adminPort: Int = TestNetwork.freePort(),
        extraArguments: [String] = []
    ) throws {
        self.adminPort = adminPort
        self.dataDirectory = dataDirectory
        logPath = dataDirectory + ".log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.executableURL = URL(fileURLWithPath: Self.binaryPath)
        process.arguments =
            [
                "etcd", "--data-dir=\(dataDirectory)", "--listen-client-urls=http://127.0.0.1:\(clientPort)",
                "--advertise-client-urls=http://127.0.0.1:\(clientPort)", "--listen-peer-urls=http://localhost:0",
                "--listen-metrics-urls", "http://127.0.0.1:\(adminPort)", "--unsafe-no-fsync=true",
                "--log-level=debug",
            ] + extraArguments
        process.standardOutput = log
        process.standardError = log
        try process.run()
    }

    package var output: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Polls `/health` until it answers 200, the process exits, or the deadline passes.
    package func waitUntilHealthy(timeoutSeconds: Double = 20) -> Bool {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while Date() < deadline && process.isRunning {
            if let response = TestNetwork.get(port: adminPort, path: "/health", timeoutSeconds: 1),
                response.status == 200
            {
                return true
            }
            usleep(10_000)
        }
        return false
    }

    /// Sends `signal` and waits up to `timeoutSeconds` for exit; returns the exit status, or nil on timeout.
    package func stop(signal: Int32 = SIGTERM, timeoutSeconds: Double = 5) -> Int32? {
        if process.isRunning { kill(process.processIdentifier, signal) }
        return waitForExit(timeoutSeconds: timeoutSeconds)
    }

    package func waitForExit(timeoutSeconds: Double) -> Int32? {
        process.wait(timeoutSeconds: timeoutSeconds) ? process.terminationStatus : nil
    }

}

/// Runs the strata binary to completion (for one-shot subcommands) and returns its exit status and combined output.
package func runStrata(_ arguments: [String], timeoutSeconds: Double = 30) throws -> (status: Int32, output: String) {
    try runProcess(StrataProcess.binaryPath, arguments)
}

/// Runs a program to completion and returns its exit status and combined output.
package func runProcess(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = ChildProcess()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
