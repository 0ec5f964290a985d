internal import StrataCommon
internal import StrataRocksDB

#if canImport(Glibc)
    internal import Glibc
#endif

/// Strata's snapshot format: a consistent RocksDB checkpoint as one byte stream, sealed like etcd's snapshots with the
/// SHA-256 of everything before it as the last 32 bytes.
///
/// Layout: `STRATA-SNAPSHOT 1\n`, then per file `[u16 name length][name][u64 size][bytes]` (big-endian), then
/// `[u16 0]`, zero padding to a multiple of 512 bytes (etcdctl's `snapshot save` insists the digest follows a
/// 512-byte boundary, as bbolt pages make it in etcd), then the 32-byte digest. `strata snapshot restore` turns it
/// back into a data directory.
package enum StoreSnapshot {
    static let magic = Array("STRATA-SNAPSHOT 1\n".utf8)

    package struct SnapshotError: Error, CustomStringConvertible, Sendable {
        package let message: String
        package var description: String { message }
    }

    /// A checkpoint being streamed; removes its directory when released.
    package final class Stream: @unchecked Sendable {
        // Used by one task at a time (the RPC handler streaming it).
        package let totalBytes: Int
        private let directory: String
        private let files: [(name: String, size: Int)]
        private var fileIndex = 0
        private var stage = 0  // 0 magic, 1 file header, 2 file body, 3 end marker, 4 digest, 5 done
        private var fd: Int32 = -1
        private var sha = SHA256()

        private let paddingBytes: Int

        init(directory: String, files: [(name: String, size: Int)]) {
            self.directory = directory
            self.files = files
            let body = StoreSnapshot.magic.count + files.reduce(0) { $0 + 2 + $1.name.utf8.count + 8 + $1.size } + 2
            self.paddingBytes = (512 - body % 512) % 512
            self.totalBytes = body + paddingBytes + 32
        }

        deinit {
            if fd >= 0 { close(fd) }
            StoreSnapshot.removeDirectory(directory)
        }

        /// The next piece of the stream (at most `maximum` bytes), or nil at the end.
        package func next(maximum: Int = 32 * 1024) throws -> [UInt8]? {
            var chunk: [UInt8] = []
            while chunk.count < maximum {
                switch stage {
                case 0:
                    chunk += StoreSnapshot.magic
                    stage = 1
                case 1:
                    guard fileIndex < files.count else {
                        stage = 3
                        continue
                    }
                    let file = files[fileIndex]
                    let name = Array(file.name.utf8)
                    chunk += [UInt8(name.count >> 8), UInt8(name.count & 0xFF)] + name
                    for shift in stride(from: 56, through: 0, by: -8) {
                        chunk.append(UInt8(truncatingIfNeeded: file.size >> shift))
                    }
                    fd = open(directory + "/" + file.name, O_RDONLY | O_CLOEXEC)
                    guard fd >= 0 else { throw SnapshotError(message: "cannot open checkpoint file \(file.name)") }
                    stage = 2
                case 2:
                    var buffer = [UInt8](repeating: 0, count: maximum - chunk.count)
                    let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                    if n < 0 { throw SnapshotError(message: "cannot read checkpoint file \(files[fileIndex].name)") }
                    if n == 0 {
                        close(fd)
                        fd = -1
                        fileIndex += 1
                        stage = 1
                    } else {
                        chunk += buffer[0..<n]
                    }
                case 3:
                    chunk += [0, 0] + [UInt8](repeating: 0, count: paddingBytes)
                    stage = 4
                case 4:
                    sha.update(chunk)
                    chunk += sha.finalize()
                    stage = 5
                    return chunk
                default:
                    return chunk.isEmpty ? nil : chunk
                }
            }
            sha.update(chunk)
            return chunk
        }
    }

    /// Checkpoints `database` into a private directory next to it and returns the stream over it.
    static func make(from database: RocksDB) throws -> Stream {
        let directory = database.path + ".snapshot-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try database.checkpoint(to: directory)
        var files: [(String, Int)] = []
        guard let dir = opendir(directory) else { throw SnapshotError(message: "cannot list \(directory)") }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name != "." && name != ".." else { continue }
            var info = stat()
            guard stat(directory + "/" + name, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
            files.append((name, Int(info.st_size)))
        }
        files.sort { $0.0 < $1.0 }
        return Stream(directory: directory, files: files)
    }

    /// Restores a snapshot file into `<dataDirectory>/db`, which must not exist yet. Verifies the digest first.
    package static func restore(file: String, dataDirectory: String) throws {
        let bytes = try readFile(file)
        guard bytes.count >= magic.count + 2 + 32 else {
            throw SnapshotError(message: "\(file): too short to be a snapshot")
        }
        let body = bytes[0..<(bytes.count - 32)]
        guard SHA256.hash(body) == Array(bytes[(bytes.count - 32)...]) else {
            throw SnapshotError(message: "\(file): SHA-256 mismatch (truncated or corrupted snapshot)")
        }
        guard Array(bytes[0..<magic.count]) == magic else {
            throw SnapshotError(message: "\(file): not a Strata snapshot")
        }
        let target = dataDirectory + "/db"
        var info = stat()
        guard stat(target, &info) != 0 else {
            throw SnapshotError(message: "\(target) already exists; restore into a new data directory")
        }
        try DataDirectoryLock.makeDirectory(target)
        var offset = magic.count
        func take(_ count: Int) throws -> ArraySlice<UInt8> {
            guard offset + count <= body.count else { throw SnapshotError(message: "\(file): truncated entry") }
            defer { offset += count }
            return body[offset..<(offset + count)]
        }
        while true {
            let lengthBytes = try take(2)
            let nameLength =
                Int(lengthBytes[lengthBytes.startIndex]) << 8 | Int(lengthBytes[lengthBytes.startIndex + 1])
            if nameLength == 0 { break }
            let name = String(decoding: try take(nameLength), as: UTF8.self)
            guard !name.contains("/"), name != "..", name != "." else {
                throw SnapshotError(message: "\(file): bad file name \(name)")
            }
            let size = try take(8).reduce(0) { $0 << 8 | Int($1) }
            try writeFile(target + "/" + name, try take(size))
        }
        guard body[offset...].allSatisfy({ $0 == 0 }), body.count % 512 == 0 else {
            throw SnapshotError(message: "\(file): unexpected bytes after the last file")
        }
    }

    static func readFile(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SnapshotError(message: "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { throw SnapshotError(message: "cannot read \(path)") }
            if n == 0 { break }
            bytes += buffer[0..<n]
        }
        return bytes
    }

    static func writeFile(_ path: String, _ bytes: ArraySlice<UInt8>) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw SnapshotError(message: "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var written = 0
        try bytes.withUnsafeBytes { buffer in
            while written < buffer.count {
                let n = write(fd, buffer.baseAddress! + written, buffer.count - written)
                if n <= 0 { throw SnapshotError(message: "cannot write \(path)") }
                written += n
            }
        }
        guard fsync(fd) == 0 else { throw SnapshotError(message: "cannot sync \(path)") }
    }

    static func removeDirectory(_ path: String) {
        guard let dir = opendir(path) else { return }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { unlink(path + "/" + name) }
        }
        closedir(dir)
        rmdir(path)
    }
}
