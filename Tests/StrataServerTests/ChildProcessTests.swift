import Foundation
import StrataTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The test support's process runner: every end-to-end test starts its servers and tools with it.
@Suite("ChildProcess")
struct ChildProcessTests {
    @Test func reportsExitCodesAndSignals() throws {
        let exits = ChildProcess()
        exits.executableURL = URL(fileURLWithPath: "/bin/sh")
        exits.arguments = ["-c", "exit 3"]
        try exits.run()
        exits.waitUntilExit()
        #expect(exits.terminationStatus == 3)
        #expect(exits.terminationReason == .exit)

        let sleeps = ChildProcess()
        sleeps.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeps.arguments = ["30"]
        try sleeps.run()
        #expect(sleeps.isRunning)
        #expect(!sleeps.wait(timeoutSeconds: 0.05))
        sleeps.signal(SIGKILL)
        #expect(sleeps.wait(timeoutSeconds: 10))
        #expect(sleeps.terminationStatus == SIGKILL)
        #expect(sleeps.terminationReason == .uncaughtSignal)
    }

    @Test func passesArgumentsEnvironmentDirectoryAndPipes() throws {
        let directory = TemporaryDirectory()
        let child = ChildProcess()
        child.executableURL = URL(fileURLWithPath: "/bin/sh")
        child.arguments = ["-c", "pwd; echo \"$GREETING\" \"$1\"; cat; echo oops >&2", "sh", "two words"]
        child.environment = ["GREETING": "hello", "PATH": "/usr/bin:/bin"]
        child.currentDirectoryURL = URL(fileURLWithPath: directory.path)
        let input = Pipe()
        let output = Pipe()
        child.standardInput = input
        child.standardOutput = output
        child.standardError = output
        try child.run()
        input.fileHandleForWriting.write(Data("from stdin\n".utf8))
        try input.fileHandleForWriting.close()
        // End-of-file arrives only if the runner closed its copy of the pipe's writing end.
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        child.waitUntilExit()
        let realDirectory = try #require(realpath(directory.path, nil))
        defer { free(realDirectory) }
        #expect(text == "\(String(cString: realDirectory))\nhello two words\nfrom stdin\noops\n")
        #expect(child.terminationStatus == 0)
    }

    @Test func childrenInheritNoOtherDescriptors() throws {
        let directory = TemporaryDirectory()
        let path = directory.appending("open")
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let held = open(path, O_RDONLY)
        defer { close(held) }
        let child = ChildProcess()
        child.executableURL = URL(fileURLWithPath: "/bin/sh")
        child.arguments = ["-c", "test -e /proc/self/fd/\(held) && echo leaked || echo clean"]
        let output = Pipe()
        child.standardOutput = output
        try child.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        child.waitUntilExit()
        #expect(text == "clean\n")
    }

    @Test func aMissingProgramFailsToStart() {
        let child = ChildProcess()
        child.executableURL = URL(fileURLWithPath: "/nonexistent/program")
        #expect(throws: ChildProcessError.self) { try child.run() }
        #expect(!child.isRunning)
    }
}
