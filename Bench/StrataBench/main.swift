// `make bench` core benchmark: raw RocksDB (through the wrapper) vs. the MVCC store, measured side by side in one
// run on this machine. Prints a table and, last, `core: put_ratio=X get_ratio=Y` (MVCC over raw, sync off).
import StrataLease
import StrataMVCC
import StrataRocksDB

#if canImport(Glibc)
    import Glibc
#endif

/// Fixed-point formatting without Foundation.
func fmt(_ value: Double, _ digits: Int) -> String {
    guard value.isFinite else { return "\(value)" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = (value * scale).rounded()
    let integer = Int(scaled / scale)
    guard digits > 0 else { return "\(integer)" }
    let fraction = Int(abs(scaled).truncatingRemainder(dividingBy: scale))
    let text = String(fraction)
    return "\(integer).\(String(repeating: "0", count: digits - text.count))\(text)"
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func temporaryDirectory() -> String {
    var template = Array("/tmp/strata-bench.XXXXXX".utf8CString)
    return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
}

func removeDirectory(_ path: String) {
    _ = path.withCString { system("rm -rf '\(String(cString: $0))'") }
}

let arguments = CommandLine.arguments
let count = arguments.count > 1 ? Int(arguments[1]) ?? 100_000 : 100_000
let keys = (0..<count).map { Array("bench/key/\(String(($0 &* 2_654_435_761) % 1_000_000_007, radix: 16))".utf8) }
let value = [UInt8](repeating: 0x61, count: 128)
var random = SystemRandomNumberGenerator()
let readOrder = (0..<count).map { _ in Int.random(in: 0..<count, using: &random) }

struct Row {
    var name: String
    var opsPerSecond: Double
    var note: String = ""
}
var rows: [Row] = []

func openRocks(_ directory: String, families: [String] = []) throws -> RocksDB {
    var configuration = RocksDB.Configuration.defaults
    configuration.columnFamilies = families
    return try RocksDB(path: directory + "/db", configuration: configuration)
}

func openStore(_ directory: String, sync: SyncMode) throws -> (RocksDB, MVCCStore) {
    var rocks = RocksDB.Configuration.defaults
    rocks.prepareForMVCCStore()
    // As the server opens it (StorageService): with sync = always the committer writes and syncs the WAL per group.
    rocks.manualWALFlush = sync == .always
    let database = try RocksDB(path: directory + "/db", configuration: rocks)
    var configuration = MVCCStore.Configuration.defaults
    configuration.sync = sync
    return (
        database, try MVCCStore(database: database, keyspaces: [.bench, .benchLatest], configuration: configuration)
    )
}

extension Keyspace {
    /// What etcd's keyspace is to the core: full history, versioned records.
    static let bench = Keyspace(id: 1, name: "bench", history: .full)
    /// What Redis's is: latest-only, compact records.
    static let benchLatest = Keyspace(id: 2, name: "bench-latest", history: .latestOnly)
}

/// One key put in its own write transaction, as a front-end's plain write does.
@inline(__always)
nonisolated func put(_ store: MVCCStore, _ keyspace: Keyspace, _ key: [UInt8]) async throws {
    try await store.update(keyspace) { txn throws(MVCCError) in _ = try txn.put(key, value) }
}

/// The measured MVCC put loop, off the main actor: top-level code is main-actor isolated, and awaiting the store
/// from there would add two thread hops per operation that no server request pays.
nonisolated func putAll(_ store: MVCCStore, _ keyspace: Keyspace = .bench) async throws {
    for key in keys { try await put(store, keyspace, key) }
}

if arguments.count > 2 && arguments[2] == "floor" {
    // What the MVCC write costs in RocksDB alone: a Get of the previous version plus a batch of N puts.
    for puts in [1, 2, 3, 4] {
        for withGet in [false, true] {
            let directory = temporaryDirectory()
            let database = try openRocks(directory, families: MVCCStore.columnFamilies)
            let families =
                MVCCStore.columnFamilies.compactMap { database.columnFamily($0) } + [database.defaultColumnFamily]
            let start = now()
            for (i, key) in keys.enumerated() {
                if withGet { _ = try database.get(key, in: families[0]) }
                let batch = RocksDB.WriteBatch()
                for p in 0..<puts {
                    if p == 1 {
                        var be = UInt64(i).bigEndian
                        batch.put(withUnsafeBytes(of: &be) { Array($0) }, value, in: families[p])
                    } else {
                        batch.put(key + [UInt8(p)], value, in: families[p])
                    }
                }
                try database.write(batch)
            }
            print("batch of \(puts) puts\(withGet ? " + get" : ""): \(fmt(Double(count) / (now() - start), 0)) ops/s")
            try database.close()
            removeDirectory(directory)
        }
    }
    exit(0)
}

if arguments.count > 2 && arguments[2] == "profile-put" {
    // Only MVCC puts, for `perf record`.
    let directory = temporaryDirectory()
    let (database, store) = try openStore(directory, sync: .none)
    let start = now()
    try await putAll(store)
    print("MVCC put: \(fmt(Double(count) / (now() - start), 0)) ops/s")
    store.close()
    try database.close()
    removeDirectory(directory)
    exit(0)
}

// Raw and MVCC alternate in rounds so machine noise hits both; the best round of each counts.
var rawPut = 0.0, rawGet = 0.0, mvccPut = 0.0, mvccGet = 0.0, mvccRange = 0.0, latestPut = 0.0, latestGet = 0.0
for _ in 0..<3 {
    do {
        let directory = temporaryDirectory()
        defer { removeDirectory(directory) }
        let database = try openRocks(directory)
        var start = now()
        for key in keys { try database.put(key, value) }
        rawPut = max(rawPut, Double(count) / (now() - start))
        start = now()
        for index in readOrder { _ = try database.get(keys[index]) }
        rawGet = max(rawGet, Double(count) / (now() - start))
        try database.close()
    }
    do {
        let directory = temporaryDirectory()
        defer { removeDirectory(directory) }
        let (database, store) = try openStore(directory, sync: .none)
        var start = now()
        try await putAll(store)
        mvccPut = max(mvccPut, Double(count) / (now() - start))
        start = now()
        for index in readOrder { _ = try store.get(.bench, keys[index]) }
        mvccGet = max(mvccGet, Double(count) / (now() - start))
        start = now()
        let ranges = 20
        for _ in 0..<ranges {
            _ = try store.range(.bench, .prefix(Array("bench/key/".utf8)), RangeOptions(limit: 10_000, countAll: true))
        }
        mvccRange = max(mvccRange, Double(ranges) / (now() - start))
        start = now()
        try await putAll(store, .benchLatest)
        latestPut = max(latestPut, Double(count) / (now() - start))
        start = now()
        for index in readOrder { _ = try store.get(.benchLatest, keys[index]) }
        latestGet = max(latestGet, Double(count) / (now() - start))
        store.close()
        try database.close()
    }
}
rows.append(Row(name: "raw RocksDB put (sync off)", opsPerSecond: rawPut))
rows.append(Row(name: "MVCC put (sync none)", opsPerSecond: mvccPut, note: "ratio \(fmt(mvccPut / rawPut, 2))"))
rows.append(Row(name: "raw RocksDB get", opsPerSecond: rawGet))
rows.append(Row(name: "MVCC get (latest)", opsPerSecond: mvccGet, note: "ratio \(fmt(mvccGet / rawGet, 2))"))
rows.append(Row(name: "MVCC range of 10k keys", opsPerSecond: mvccRange, note: "\(fmt(mvccRange * 10_000, 0)) keys/s"))
rows.append(
    Row(name: "latest-only put (sync none)", opsPerSecond: latestPut, note: "ratio \(fmt(latestPut / rawPut, 2))")
)
rows.append(
    Row(name: "latest-only get", opsPerSecond: latestGet, note: "ratio \(fmt(latestGet / rawGet, 2))")
)

// sync = always: 1 writer vs 64 concurrent writers sharing fsyncs (group commit).
func syncedPuts(writers: Int, perWriter: Int) async throws -> Double {
    let directory = temporaryDirectory()
    defer { removeDirectory(directory) }
    let (database, store) = try openStore(directory, sync: .always)
    let start = now()
    try await withThrowingTaskGroup(of: Void.self) { group in
        for writer in 0..<writers {
            group.addTask {
                for i in 0..<perWriter { try await put(store, .bench, Array("w\(writer)/\(i)".utf8)) }
            }
        }
        try await group.waitForAll()
    }
    let rate = Double(writers * perWriter) / (now() - start)
    store.close()
    try database.close()
    return rate
}
let single = try await syncedPuts(writers: 1, perWriter: 500)
let grouped = try await syncedPuts(writers: 64, perWriter: 100)
rows.append(Row(name: "MVCC put sync=always, 1 writer", opsPerSecond: single))
rows.append(
    Row(
        name: "MVCC put sync=always, 64 writers",
        opsPerSecond: grouped,
        note: "\(fmt(grouped / single, 1))x one writer"
    )
)

// Watch fan-out: 1000 watchers on one prefix, events delivered per second.
do {
    let directory = temporaryDirectory()
    defer { removeDirectory(directory) }
    let (database, store) = try openStore(directory, sync: .none)
    let watchers = try (0..<1000).map { _ in
        try store.watch(WatchRequest(keyspace: .bench, range: .prefix(Array("fan/".utf8))))
    }
    let writes = 200
    let start = now()
    let delivered = try await withThrowingTaskGroup(of: Int.self) { group in
        for watcher in watchers {
            group.addTask {
                var seen = 0
                while seen < writes, let update = try await watcher.next() {
                    if case .events(_, let events) = update { seen += events.count }
                }
                return seen
            }
        }
        group.addTask {
            for i in 0..<writes { try await put(store, .bench, Array("fan/\(i % 10)".utf8)) }
            return 0
        }
        var total = 0
        while let seen = try await group.next() { total += seen }
        return total
    }
    let rate = Double(delivered) / (now() - start)
    rows.append(Row(name: "watch fan-out, 1000 watchers", opsPerSecond: rate, note: "events/s delivered"))
    for watcher in watchers { watcher.cancel() }
    store.close()
    try database.close()
}

print("| benchmark (\(count) keys, 128-byte values) | ops/s | note |")
print("| --- | --- | --- |")
for row in rows { print("| \(row.name) | \(fmt(row.opsPerSecond, 0)) | \(row.note) |") }
print(
    "core: put_ratio=\(fmt(mvccPut / rawPut, 2)) get_ratio=\(fmt(mvccGet / rawGet, 2)) "
        + "latest_put_ratio=\(fmt(latestPut / rawPut, 2)) latest_get_ratio=\(fmt(latestGet / rawGet, 2))"
)
