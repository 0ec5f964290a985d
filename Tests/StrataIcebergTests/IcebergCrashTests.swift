internal import Foundation
internal import StrataTestSupport
internal import Testing

/// `kill -9` during a commit storm (six writers, own and shared tables, Tests/PythonClients/iceberg_storm.py):
/// after a restart every table loads, its metadata file is on disk, and every acknowledged commit is visible.
@Suite("Iceberg crash: kill -9 during a commit storm")
struct IcebergCrashTests {
    @Test func acknowledgedCommitsSurviveSIGKILL() throws {
        let server = try IcebergTestServer(sync: "always")
        let acks = server.directory.appending("acks.log")
        let setup = try server.runPython("iceberg_storm.py", [server.uri, acks, "setup"])
        try #require(setup.status == 0, "\(setup.output)\n\(setup.errors)")
        let storm = ChildProcess()
        storm.executableURL = URL(fileURLWithPath: IcebergTestServer.python)
        storm.arguments = [repositoryRoot + "/Tests/PythonClients/iceberg_storm.py", server.uri, acks, "storm"]
        storm.standardOutput = FileHandle.nullDevice
        storm.standardError = FileHandle.nullDevice
        try storm.run()
        // Let the storm run, then crash the server mid-commit.
        var lines = 0
        let deadline = Date().addingTimeInterval(30)
        while lines < 300 && Date() < deadline && storm.isRunning {
            usleep(100_000)
            lines = ((try? String(contentsOfFile: acks, encoding: .utf8)) ?? "").split(separator: "\n").count
        }
        try server.restart(signal: SIGKILL)
        let stopped = Date().addingTimeInterval(30)
        while storm.isRunning && Date() < stopped { usleep(50_000) }
        if storm.isRunning { storm.terminate() }
        #expect(lines >= 300, "the storm acknowledged only \(lines) commits before the kill")
        let verify = try server.runPython("iceberg_storm.py", [server.uri, acks, "verify"])
        #expect(verify.status == 0 && verify.output.hasSuffix("ok\n"), "\(verify.output)\n\(verify.errors)")
    }
}
