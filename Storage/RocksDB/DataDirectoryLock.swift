#if canImport(Glibc)
    internal import Glibc
#endif

/// An exclusive advisory lock (`flock`) on `<data dir>/strata.lock`, so a second Strata process cannot open the same
/// data directory. The kernel drops the lock when the process dies, so a crash never leaves a stale lock behind.
package final class DataDirectoryLock: Sendable {
    package struct LockedError: Error, CustomStringConvertible, Sendable {
        package let directory: String
        package let ownerPID: Int32?
        package var description: String {
            let owner = ownerPID.map { " (pid \($0))" } ?? ""
            return "data directory '\(directory)' is in use by another strata process\(owner)"
        }
    }

    package struct IOError: Error, CustomStringConvertible, Sendable {
        package let path: String
        package let operation: String
        package let errno: Int32
        package var description: String { "cannot \(operation) '\(path)': \(String(cString: strerror(errno)))" }
    }

    package let path: String
    private let fd: Int32

    /// Creates `directory` if needed and takes the lock, or throws ``LockedError`` naming the holder.
    package init(directory: String) throws {
        try Self.makeDirectory(directory)
        let path = directory.hasSuffix("/") ? directory + "strata.lock" : directory + "/strata.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw IOError(path: path, operation: "open", errno: errno) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let owner = Self.readPID(fd)
            close(fd)
            throw LockedError(directory: directory, ownerPID: owner)
        }
        let pid = "\(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = pid.withCString { pwrite(fd, $0, strlen($0), 0) }
        self.path = path
        self.fd = fd
    }

    deinit {
        _ = ftruncate(fd, 0)
        close(fd)  // releases the flock
    }

    private static func readPID(_ fd: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = pread(fd, &buffer, 31, 0)
        guard n > 0 else { return nil }
        return Int32(String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: "\n "))
    }

    /// `mkdir -p`.
    package static func makeDirectory(_ directory: String) throws {
        var current = directory.hasPrefix("/") ? "" : "."
        for component in directory.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw IOError(path: current, operation: "create directory", errno: errno)
            }
        }
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let c = s.first, set.contains(c) { s.removeFirst() }
        while let c = s.last, set.contains(c) { s.removeLast() }
        return String(s)
    }
}
