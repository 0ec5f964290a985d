import Foundation
import StrataRocksDB
import StrataTestSupport
import Testing

private func b(_ s: String) -> [UInt8] { Array(s.utf8) }
private func s(_ b: [UInt8]?) -> String? { b.map { String(decoding: $0, as: UTF8.self) } }

@Suite("RocksDB wrapper")
struct RocksDBTests {
    let directory = TemporaryDirectory()

    func open(_ configure: (inout RocksDB.Configuration) -> Void = { _ in }) throws -> RocksDB {
        var configuration = RocksDB.Configuration.defaults
        configure(&configuration)
        return try RocksDB(path: directory.appending("db"), configuration: configuration)
    }

    @Test func putGetDeleteRoundTrip() throws {
        let db = try open()
        #expect(try db.get(b("missing")) == nil)
        try db.put(b("k"), b("v1"))
        #expect(try s(db.get(b("k"))) == "v1")
        try db.put(b("k"), b("v2"), sync: true)
        #expect(try s(db.get(b("k"))) == "v2")
        try db.delete(b("k"))
        #expect(try db.get(b("k")) == nil)
    }

    @Test func emptyAndBinaryKeysAndValues() throws {
        let db = try open()
        try db.put([], [])
        #expect(try db.get([]) == [])
        let binary: [UInt8] = [0, 255, 0, 1, 2, 0]
        try db.put(binary, binary)
        #expect(try db.get(binary) == binary)
        let large = [UInt8](repeating: 7, count: 1 << 20)
        try db.put(b("large"), large)
        #expect(try db.get(b("large")) == large)
    }

    @Test func writeBatchIsAtomicAndOrdered() throws {
        let db = try open()
        try db.put(b("gone"), b("x"))
        let batch = RocksDB.WriteBatch()
        batch.put(b("a"), b("1"), in: db.defaultColumnFamily)
        batch.put(b("b"), b("2"), in: db.defaultColumnFamily)
        batch.put(b("a"), b("3"), in: db.defaultColumnFamily)  // later write in the batch wins
        batch.delete(b("gone"), in: db.defaultColumnFamily)
        #expect(batch.count == 4)
        #expect(batch.byteSize > 0)
        #expect(try db.get(b("a")) == nil)  // nothing visible before write
        try db.write(batch, sync: true)
        #expect(try s(db.get(b("a"))) == "3")
        #expect(try s(db.get(b("b"))) == "2")
        #expect(try db.get(b("gone")) == nil)
        batch.clear()
        #expect(batch.count == 0)
    }

    @Test func deleteRangeRemovesHalfOpenRange() throws {
        let db = try open()
        for key in ["a", "b", "c", "d"] { try db.put(b(key), b(key)) }
        let batch = RocksDB.WriteBatch()
        batch.deleteRange(b("b"), b("d"), in: db.defaultColumnFamily)
        try db.write(batch)
        #expect(try db.scan().map { s($0.key)! } == ["a", "d"])
    }

    @Test func boundedIterationAndSeek() throws {
        let db = try open()
        for i in 0..<20 { try db.put(b(String(format: "key%02d", i)), b("v\(i)")) }
        try db.put(b("other"), b("x"))

        let rows = try db.scan(from: b("key05"), to: b("key10"))
        #expect(rows.map { s($0.key)! } == ["key05", "key06", "key07", "key08", "key09"])
        #expect(try db.scan(from: b("key05"), to: b("key10"), limit: 2).count == 2)

        let iterator = try db.makeIterator(lowerBound: b("key"), upperBound: b("key99"))
        iterator.seek(b("key17"))
        #expect(iterator.isValid && s(iterator.key) == "key17" && s(iterator.value) == "v17")
        iterator.seekToLast()
        #expect(s(iterator.key) == "key19")  // "other" is outside the upper bound
        iterator.previous()
        #expect(s(iterator.key) == "key18")
        iterator.seekForPrev(b("key05x"))
        #expect(s(iterator.key) == "key05")
        iterator.seekToFirst()
        var count = 0
        while iterator.isValid {
            count += 1
            iterator.next()
        }
        #expect(count == 20)
        try iterator.checkError()
    }

    @Test func snapshotIsolation() throws {
        let db = try open()
        try db.put(b("k"), b("old"))
        let snapshot = try db.snapshot()
        try db.put(b("k"), b("new"))
        try db.put(b("added"), b("x"))
        #expect(try s(snapshot.get(b("k"))) == "old")
        #expect(try snapshot.get(b("added")) == nil)
        #expect(try db.scan(snapshot: snapshot).count == 1)
        #expect(try s(db.get(b("k"))) == "new")
        let iterator = try db.makeIterator(snapshot: snapshot)
        iterator.seekToFirst()
        #expect(s(iterator.value) == "old")
    }

    @Test func reopenKeepsDataAndColumnFamilies() throws {
        do {
            let db = try open { $0.columnFamilies = ["meta", "log"] }
            try db.put(b("k"), b("default-value"))
            let meta = try #require(db.columnFamily("meta") as RocksDB.ColumnFamily?)
            try db.put(b("k"), b("meta-value"), in: meta)
            try db.close()
        }
        #expect(try RocksDB.listColumnFamilies(path: directory.appending("db")).sorted() == ["default", "log", "meta"])
        // Reopen without naming the families: existing ones are opened anyway.
        let db = try open()
        #expect(try s(db.get(b("k"))) == "default-value")
        let meta = try #require(db.columnFamily("meta"))
        #expect(try s(db.get(b("k"), in: meta)) == "meta-value")
        #expect(db.columnFamily("log") != nil)
        #expect(db.columnFamily("nope") == nil)
    }

    @Test func columnFamiliesAreSeparateKeyspaces() throws {
        let db = try open { $0.columnFamilies = ["one", "two"] }
        let one = try #require(db.columnFamily("one"))
        let two = try #require(db.columnFamily("two"))
        try db.put(b("k"), b("1"), in: one)
        try db.put(b("k"), b("2"), in: two)
        #expect(try s(db.get(b("k"), in: one)) == "1")
        #expect(try s(db.get(b("k"), in: two)) == "2")
        #expect(try db.get(b("k")) == nil)
        let batch = RocksDB.WriteBatch()
        batch.delete(b("k"), in: one)
        batch.put(b("j"), b("3"), in: two)
        try db.write(batch)
        #expect(try db.get(b("k"), in: one) == nil)
        #expect(try db.scan(two).map { s($0.key)! } == ["j", "k"])
    }

    @Test func badPathGivesRocksDBsMessage() throws {
        let file = directory.appending("a-file")
        try "x".write(toFile: file, atomically: true, encoding: .utf8)
        let error = #expect(throws: RocksDBError.self) {
            _ = try RocksDB(path: file + "/db")
        }
        #expect(error?.code == .ioError)
        #expect(error?.message.contains("a-file") == true)
    }

    @Test func missingDatabaseWithoutCreateIfMissing() throws {
        let error = #expect(throws: RocksDBError.self) {
            _ = try self.open { $0.createIfMissing = false }
        }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("does not exist") == true)
    }

    @Test func secondOpenOfSameDirectoryFails() throws {
        let db = try open()
        let error = #expect(throws: RocksDBError.self) { _ = try self.open() }
        #expect(error?.code == .ioError)
        #expect(error?.message.contains("lock") == true)
        _ = db
    }

    @Test func closedDatabaseRefusesOperations() throws {
        let db = try open()
        try db.put(b("k"), b("v"))
        try db.close()
        try db.close()  // idempotent
        let error = #expect(throws: RocksDBError.self) { _ = try db.get(b("k")) }
        #expect(error?.code == .closed)
        #expect(throws: RocksDBError.self) { try db.put(b("k"), b("v")) }
    }

    @Test func inMemoryDatabaseWritesNothingToDisk() throws {
        let path = directory.appending("memory")
        do {
            let db = try RocksDB(
                path: path,
                configuration: {
                    var c = RocksDB.Configuration(); c.inMemory = true; return c
                }()
            )
            try db.put(b("k"), b("v"), sync: true)
            #expect(try s(db.get(b("k"))) == "v")
            try db.flush()
            #expect(throws: RocksDBError.self) { try db.checkpoint(to: directory.appending("cp")) }
        }
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func propertiesReportKeysAndSizes() throws {
        let db = try open()
        for i in 0..<1000 { try db.put(b("key\(i)"), [UInt8](repeating: 1, count: 100)) }
        #expect((db.property(.memtablesSize) ?? 0) > 0)
        try db.flush()
        #expect((db.property(.estimatedKeys) ?? 0) >= 900)
        #expect(db.totalProperty(.totalSSTFilesSize) > 0)
        #expect(db.property(.backgroundErrors) == 0)
        #expect(db.stringProperty("rocksdb.stats")?.isEmpty == false)
        try db.compactRange()
        #expect(try db.get(b("key999")) != nil)
    }

    @Test func memtableBloomOnlyWhereConfigured() throws {
        // What RocksDB applied, per family, as it records it in the newest OPTIONS file of the database.
        func bloomRatios() throws -> [String: String] {
            let dbPath = directory.appending("db")
            let files = try FileManager.default.contentsOfDirectory(atPath: dbPath).filter { $0.hasPrefix("OPTIONS-") }
            let newest = try #require(files.max { Int($0.dropFirst(8))! < Int($1.dropFirst(8))! })
            var ratios: [String: String] = [:]
            var family = ""
            for line in try String(contentsOfFile: dbPath + "/" + newest, encoding: .utf8).split(separator: "\n") {
                let text = line.trimmingCharacters(in: .whitespaces)
                if text.hasPrefix("[CFOptions \"") { family = String(text.dropFirst(12).dropLast(2)) }
                if text.hasPrefix("memtable_prefix_bloom_size_ratio=") { ratios[family] = String(text.dropFirst(33)) }
            }
            return ratios
        }
        for round in 0..<2 {
            let db = try open {
                $0.columnFamilies = ["filtered", "plain"]
                $0.memtableBloomFamilies = ["filtered"]
            }
            #expect(try bloomRatios() == ["default": "0.000000", "filtered": "0.010000", "plain": "0.000000"])
            let plain = try #require(db.columnFamily("plain"))
            let filtered = try #require(db.columnFamily("filtered"))
            try db.put(b("k\(round)"), b("v"), in: plain)
            try db.put(b("k\(round)"), b("w"), in: filtered)
            #expect(try s(db.get(b("k0"), in: plain)) == "v")
            #expect(try s(db.get(b("k0"), in: filtered)) == "w")
            #expect(try db.get(b("absent"), in: filtered) == nil)
            try db.close()
        }
        _ = try open { $0.columnFamilies = ["filtered", "plain"] }
        #expect(try bloomRatios() == ["default": "0.010000", "filtered": "0.010000", "plain": "0.010000"])
    }

    @Test func checkpointIsAnOpenableCopy() throws {
        let db = try open { $0.columnFamilies = ["meta"] }
        try db.put(b("k"), b("v"))
        let meta = try #require(db.columnFamily("meta") as RocksDB.ColumnFamily?)
        try db.put(b("m"), b("w"), in: meta)
        let copyPath = directory.appending("checkpoint")
        try db.checkpoint(to: copyPath)
        try db.put(b("k"), b("after"))
        let copy = try RocksDB(path: copyPath)
        #expect(try s(copy.get(b("k"))) == "v")
        let copiedMeta = try #require(copy.columnFamily("meta") as RocksDB.ColumnFamily?)
        #expect(try s(copy.get(b("m"), in: copiedMeta)) == "w")
    }

    @Test func concurrentWritersAndReaders() async throws {
        let db = try open()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<8 {
                group.addTask {
                    for i in 0..<200 { try db.put(b("w\(writer)-\(i)"), b("\(i)")) }
                }
            }
            try await group.waitForAll()
        }
        #expect(try db.scan().count == 1600)
    }
}

@Suite("Data directory lock")
struct DataDirectoryLockTests {
    @Test func secondLockFailsWithOwnerPIDAndIsReleasedOnDeinit() throws {
        let directory = TemporaryDirectory()
        let path = directory.appending("nested/data")
        var first: DataDirectoryLock? = try DataDirectoryLock(directory: path)
        let error = #expect(throws: DataDirectoryLock.LockedError.self) {
            _ = try DataDirectoryLock(directory: path)
        }
        #expect(error?.ownerPID == getpid())
        #expect(error?.description.contains("in use by another strata process") == true)
        _ = first
        first = nil
        // Another test of this process may be spawning a child at this moment: between its fork and exec the child
        // holds a copy of every descriptor (O_CLOEXEC acts only at exec), and with it the flock. Wait that out.
        var relocked: DataDirectoryLock?
        for _ in 0..<200 where relocked == nil {
            relocked = try? DataDirectoryLock(directory: path)
            if relocked == nil { usleep(10_000) }
        }
        #expect(relocked != nil)
    }
}
