package import Foundation
internal import StrataMVCC

#if canImport(Glibc)
    internal import Glibc
#endif

/// The catalog's files on local disk: metadata files (written, fsynced, then pointed at), the directories DuckDB
/// cannot create, and purges. Every path is a `file://` location under one of the warehouse roots; anything else
/// is refused before a byte is touched. Blocking work runs on the store's thread pool.
package struct IcebergFiles: Sendable {
    let store: MVCCStore
    let roots: [String]

    init(store: MVCCStore, roots: [String]) {
        self.store = store
        self.roots = roots
    }

    /// The local path of a location, if it is a local path under a warehouse root (`strictlyInside`: not the root
    /// itself). `..`, `.` and empty segments are refused rather than resolved.
    package func path(of location: String, strictlyInside: Bool = true) throws(IcebergError) -> String {
        var text = location
        if text.hasPrefix("file://") {
            text.removeFirst("file://".count)
        } else if text.hasPrefix("file:") {
            text.removeFirst("file:".count)
        } else if text.contains("://") {
            throw .badRequest("only local file:// locations are supported, not \(location)")
        }
        guard text.hasPrefix("/") else { throw .badRequest("location must be an absolute file:// path: \(location)") }
        while text.count > 1 && text.hasSuffix("/") { text.removeLast() }
        let segments = text.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        for segment in segments {
            guard !segment.isEmpty, segment != ".", segment != ".." else {
                throw .badRequest("location must not contain empty, '.' or '..' segments: \(location)")
            }
            guard !segment.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
                throw .badRequest("location must not contain control characters")
            }
        }
        let inside = roots.contains { root in
            text.hasPrefix(root + "/") || (!strictlyInside && text == root)
        }
        guard inside else {
            throw .badRequest(
                "location \(location) is outside the catalog's warehouses (\(roots.joined(separator: ", ")))"
            )
        }
        return text
    }

    /// Writes `bytes` as a new file `<tableLocation>/metadata/<name>`, fsyncs it and its directory, and returns its
    /// location.
    package func writeMetadata(tableLocation: String, name: String, bytes: Data) async throws(IcebergError) -> String {
        let directory = try path(of: tableLocation) + "/metadata"
        let file = directory + "/" + name
        do {
            try await store.runBlocking {
                try Self.makeDirectory(directory)
                try Self.writeDurably(file, bytes)
            }
        } catch let error as IcebergError {
            throw error
        } catch {
            throw .server("cannot write metadata file \(file): \(error)")
        }
        return "file://" + file
    }

    /// `<location>/metadata` and `<location>/data`, which clients that cannot create directories (DuckDB) write into.
    package func prepareTableDirectories(_ location: String) async throws(IcebergError) {
        let base = try path(of: location)
        do {
            try await store.runBlocking {
                try Self.makeDirectory(base + "/metadata")
                try Self.makeDirectory(base + "/data")
            }
        } catch {
            throw .server("cannot create the directories of \(location): \(error)")
        }
    }

    /// A metadata file's contents (register).
    package func read(_ location: String, limit: Int) async throws(IcebergError) -> Data {
        let file = try path(of: location)
        let result: Result<Data, IcebergError>
        do {
            result = try await store.runBlocking { () -> Result<Data, IcebergError> in
                guard let handle = FileHandle(forReadingAtPath: file) else {
                    return .failure(.notFound("metadata file does not exist: \(location)"))
                }
                defer { try? handle.close() }
                let data = (try? handle.read(upToCount: limit + 1)) ?? Data()
                guard data.count <= limit else {
                    return .failure(.badRequest("metadata file is larger than \(limit) bytes"))
                }
                return .success(data)
            }
        } catch {
            throw .server("cannot read \(location): \(error)")
        }
        return try result.get()
    }

    /// Deletes the files (best effort; locations outside the warehouses are skipped).
    package func delete(_ locations: [String]) async {
        let paths = locations.compactMap { try? path(of: $0) }
        guard !paths.isEmpty else { return }
        _ = try? await store.runBlocking {
            for path in paths { unlink(path) }
        }
    }

    /// What a purge found and did.
    package struct PurgeReport: Sendable {
        package var deleted = 0
        /// Manifest lists and manifests that could not be read (their data files are then found only by the sweep).
        package var unreadable: [String] = []
    }

    /// Purge: the files the metadata names (`named`), the manifests its manifest lists name and the data and
    /// delete files those manifests name — read from the Avro files — inside the table's location; then whatever
    /// is left under the location's `data` and `metadata` directories (files of failed writes); then the empty
    /// directories. Nothing outside the location is touched.
    package func purge(tableLocation: String, named: [String], manifestLists: [String]) async -> PurgeReport {
        guard let base = try? path(of: tableLocation) else { return PurgeReport() }
        let files = self
        let inside: @Sendable (String) -> String? = { location in
            guard let path = try? files.path(of: location), path.hasPrefix(base + "/") else { return nil }
            return path
        }
        let report = try? await store.runBlocking { () -> PurgeReport in
            var report = PurgeReport()
            var paths = named.compactMap(inside)
            for list in Set(manifestLists.compactMap(inside)) {
                paths.append(list)
                guard let entries = Self.avroRecords(list) else {
                    report.unreadable.append(list)
                    continue
                }
                for manifest in Set(entries.compactMap { $0.string(at: ["manifest_path"]) }.compactMap(inside)) {
                    paths.append(manifest)
                    guard let contents = Self.avroRecords(manifest) else {
                        report.unreadable.append(manifest)
                        continue
                    }
                    paths += contents.compactMap { $0.string(at: ["data_file", "file_path"]) }.compactMap(inside)
                }
            }
            for path in Set(paths) where unlink(path) == 0 { report.deleted += 1 }
            for sub in ["data", "metadata"] { report.deleted += Self.removeTree(base + "/" + sub) }
            rmdir(base)
            return report
        }
        return report ?? PurgeReport()
    }

    /// The records of an Avro file (at most 256 MiB), or nil when it is missing or unreadable.
    static func avroRecords(_ path: String) -> [AvroFile.Value]? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.read(upToCount: 256 << 20), data.count < 256 << 20 else { return nil }
        return try? AvroFile(Array(data)).records
    }

    // MARK: Blocking helpers

    static func makeDirectory(_ path: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue { return }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        // The new entry is durable once its parent directory is.
        syncDirectory((path as NSString).deletingLastPathComponent)
    }

    static func writeDurably(_ path: String, _ bytes: Data) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw POSIXFailure(operation: "open", errno: errno) }
        var ok = false
        defer {
            close(fd)
            if !ok { unlink(path) }
        }
        try bytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < raw.count {
                let written = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw POSIXFailure(operation: "write", errno: errno)
                }
                offset += written
            }
        }
        guard fsync(fd) == 0 else { throw POSIXFailure(operation: "fsync", errno: errno) }
        ok = true
        syncDirectory((path as NSString).deletingLastPathComponent)
    }

    static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }

    /// Deletes a directory tree without following symbolic links; returns the files deleted.
    static func removeTree(_ path: String) -> Int {
        // attributesOfItem does not follow a symbolic link: a link is deleted, never what it points to.
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return 0 }
        guard attributes[.type] as? FileAttributeType == .typeDirectory else { return unlink(path) == 0 ? 1 : 0 }
        var deleted = 0
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: path) {
            for entry in entries { deleted += removeTree(path + "/" + entry) }
        }
        rmdir(path)
        return deleted
    }
}

struct POSIXFailure: Error, CustomStringConvertible {
    let operation: String
    let errno: Int32
    var description: String { "\(operation): \(String(cString: strerror(errno)))" }
}
