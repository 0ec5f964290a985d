internal import Foundation

/// What an external tool printed and how it ended.
package struct ToolResult: Sendable {
    package var status: Int32
    package var output: String
    package var errors: String
}

/// Runs an external program to completion (killed after `timeoutSeconds`), with `input` on its standard input.
/// Output goes through files, so a chatty tool never blocks on a full pipe.
package func runTool(
    _ executable: String,
    _ arguments: [String],
    input: [UInt8]? = nil,
    environment: [String: String]? = nil,
    timeoutSeconds: Double = 120
) throws -> ToolResult {
    let directory = TemporaryDirectory(prefix: "tool")
    let paths = (directory.appending("in"), directory.appending("out"), directory.appending("err"))
    _ = FileManager.default.createFile(atPath: paths.0, contents: Data(input ?? []))
    _ = FileManager.default.createFile(atPath: paths.1, contents: nil)
    _ = FileManager.default.createFile(atPath: paths.2, contents: nil)
    let process = ChildProcess()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    process.standardInput = FileHandle(forReadingAtPath: paths.0)
    process.standardOutput = FileHandle(forWritingAtPath: paths.1)
    process.standardError = FileHandle(forWritingAtPath: paths.2)
    try process.run()
    let deadline = Date().addingTimeInterval(timeoutSeconds)
    while process.isRunning {
        if Date() > deadline {
            kill(process.processIdentifier, SIGKILL)
            break
        }
        usleep(10_000)
    }
    process.waitUntilExit()
    return ToolResult(
        status: process.terminationStatus,
        output: (try? String(contentsOfFile: paths.1, encoding: .utf8)) ?? "",
        errors: (try? String(contentsOfFile: paths.2, encoding: .utf8)) ?? ""
    )
}

/// The repository's root (where Package.swift is), found from this source file.
package let repositoryRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
        url.deleteLastPathComponent()
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
    }
    return FileManager.default.currentDirectoryPath
}()
