package import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A child process started with `posix_spawn` and reaped with `waitpid` on its own pid.
///
/// Tests start hundreds of servers and tools in parallel. Foundation's `Process` watches them through libdispatch
/// sources, and under that load it twice waited forever for an exit it had missed and once crashed inside
/// libdispatch; this type has no shared machinery to get wrong. Its surface follows `Process` so tests read the same.
package final class ChildProcess: @unchecked Sendable {
    /// What `terminationStatus` means.
    package enum TerminationReason: Sendable { case exit, uncaughtSignal }

    private struct State {
        var pid: pid_t = 0
        var status: Int32?
    }

    // Set before `run()` by the test that owns the process.
    package var executableURL: URL?
    package var arguments: [String] = []
    /// nil: the test runner's environment.
    package var environment: [String: String]?
    package var currentDirectoryURL: URL?
    /// A `FileHandle` or a `Pipe` (its reading end for input, its writing end for output); nil inherits the runner's.
    package var standardInput: Any?
    package var standardOutput: Any?
    package var standardError: Any?

    private let state = Mutex(State())

    // glibc's GNU extensions (2.29, 2.34), which Swift's Glibc module does not declare.
    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    private typealias ChangeDirectory =
        @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    private static let closeFrom = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np").map {
        unsafeBitCast($0, to: CloseFrom.self)
    }
    private static let changeDirectory = dlsym(nil, "posix_spawn_file_actions_addchdir_np").map {
        unsafeBitCast($0, to: ChangeDirectory.self)
    }

    package init() {}

    package var processIdentifier: Int32 { state.withLock { $0.pid } }

    /// Starts the program. A program that cannot be executed fails here, as `Process.run()` does.
    package func run() throws {
        guard let executable = executableURL?.path else { throw ChildProcessError.noExecutable }
        guard access(executable, X_OK) == 0 else { throw ChildProcessError.notExecutable(executable) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var parentCopies: [FileHandle] = []
        for (target, stream, isInput) in [
            (Int32(0), standardInput, true), (Int32(1), standardOutput, false), (Int32(2), standardError, false),
        ] {
            guard let stream else { continue }
            let handle: FileHandle
            if let pipe = stream as? Pipe {
                handle = isInput ? pipe.fileHandleForReading : pipe.fileHandleForWriting
                // The child's end of a pipe is closed here once the child has it, so the reader sees end-of-file
                // when the child exits.
                if !parentCopies.contains(where: { $0 === handle }) { parentCopies.append(handle) }
            } else if let fileHandle = stream as? FileHandle {
                handle = fileHandle
            } else {
                throw ChildProcessError.unsupportedStream
            }
            if handle === FileHandle.nullDevice || handle.fileDescriptor < 0 {
                posix_spawn_file_actions_addopen(&actions, target, "/dev/null", isInput ? O_RDONLY : O_WRONLY, 0)
            } else {
                posix_spawn_file_actions_adddup2(&actions, handle.fileDescriptor, target)
            }
        }
        // Nothing else of the runner's leaks in: a server holding another test's pipe would keep its reader waiting.
        _ = Self.closeFrom.map { $0(&actions, 3) }
        if let directory = currentDirectoryURL?.path {
            guard let changeDirectory = Self.changeDirectory else { throw ChildProcessError.noChangeDirectory }
            _ = changeDirectory(&actions, directory)
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The runner blocks or ignores signals (SIGPIPE, those of its own event loops): the child starts clean.
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2, SIGQUIT] {
            sigaddset(&defaults, signal)
        }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var environmentStrings: [UnsafeMutablePointer<CChar>?]?
        if let environment {
            environmentStrings = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        }
        defer { environmentStrings?.forEach { free($0) } }

        var pid: pid_t = 0
        let result = argv.withUnsafeBufferPointer { argvBuffer in
            if let environmentStrings {
                return environmentStrings.withUnsafeBufferPointer { environmentBuffer in
                    posix_spawn(
                        &pid,
                        executable,
                        &actions,
                        &attributes,
                        argvBuffer.baseAddress!,
                        environmentBuffer.baseAddress!
                    )
                }
            }
            return posix_spawn(&pid, executable, &actions, &attributes, argvBuffer.baseAddress!, environ)
        }
        guard result == 0 else { throw ChildProcessError.spawnFailed(executable, result) }
        state.withLock { $0 = State(pid: pid, status: nil) }
        for handle in parentCopies { try? handle.close() }
    }

    /// Reaps the child if it has exited; never blocks.
    package var isRunning: Bool {
        state.withLock { state in
            guard state.pid > 0, state.status == nil else { return false }
            var status: Int32 = 0
            let reaped = waitpid(state.pid, &status, WNOHANG)
            if reaped == state.pid {
                state.status = status
            } else if reaped < 0 {
                // Not our child any more (reaped elsewhere): treat it as gone.
                state.status = 0
            }
            return state.status == nil
        }
    }

    /// Blocks until the child exits.
    package func waitUntilExit() {
        while isRunning { usleep(2_000) }
    }

    /// Waits up to `timeoutSeconds`; true when the child has exited.
    package func wait(timeoutSeconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while isRunning {
            if Date() > deadline { return false }
            usleep(2_000)
        }
        return true
    }

    /// Waits without blocking a thread of the cooperative pool.
    package func exited(timeoutSeconds: Double) async -> Bool {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while isRunning {
            if Date() > deadline { return false }
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        return true
    }

    package func signal(_ signal: Int32) {
        if isRunning { kill(processIdentifier, signal) }
    }

    package func terminate() { signal(SIGTERM) }

    private var rawStatus: Int32 { state.withLock { $0.status } ?? 0 }

    /// The exit code, or the number of the signal that ended the child (as `Process` reports it).
    package var terminationStatus: Int32 {
        let status = rawStatus
        return status & 0x7f == 0 ? (status >> 8) & 0xff : status & 0x7f
    }

    package var terminationReason: TerminationReason { rawStatus & 0x7f == 0 ? .exit : .uncaughtSignal }

    deinit {
        if isRunning {
            kill(processIdentifier, SIGKILL)
            _ = wait(timeoutSeconds: 10)
        }
    }
}

package enum ChildProcessError: Error, CustomStringConvertible {
    case noExecutable
    case notExecutable(String)
    case unsupportedStream
    case noChangeDirectory
    case spawnFailed(String, Int32)

    package var description: String {
        switch self {
        case .noExecutable: "no executable set"
        case .notExecutable(let path): "\(path) is not an executable file"
        case .unsupportedStream: "a standard stream must be a FileHandle or a Pipe"
        case .noChangeDirectory: "this C library cannot start a child in another directory"
        case .spawnFailed(let path, let code): "posix_spawn \(path): \(String(cString: strerror(code)))"
        }
    }
}
