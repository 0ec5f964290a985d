// A child process for the crash test: writes with sync = always from several tasks and prints one line per
// acknowledged write ("<revision> <key>") with an unbuffered write(2), so the parent knows exactly what was
// acknowledged when it sends SIGKILL. Keys under `<prefix>/L` go to a latest-only keyspace with per-write `fsync`
// durability (Redis's `appendfsync always`), the others to a keyspace with history following `sync = always`.
import StrataLease
import StrataMVCC
import StrataRocksDB
import StrataTestSupport

#if canImport(Glibc)
    import Glibc
#endif

let arguments = CommandLine.arguments
guard arguments.count == 3 || arguments.count == 4 else {
    print("usage: StrataCrashWriter <db-path> <key-prefix> [leases-only]")
    exit(2)
}
var rocks = RocksDB.Configuration.defaults
rocks.prepareForMVCCStore()
// As the server runs with sync = always: WAL records buffered until the committer's write + fsync.
rocks.manualWALFlush = true
let database = try RocksDB(path: arguments[1], configuration: rocks)
var configuration = MVCCStore.Configuration.defaults
configuration.sync = .always
let store = try MVCCStore(database: database, keyspaces: [.history, .latest], configuration: configuration)
let prefix = arguments[2]
let leasesOnly = arguments.count == 4

func acknowledge(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
}

try await withThrowingTaskGroup(of: Void.self) { group in
    // Lease grants take the other durable path (a synced write outside the committer).
    group.addTask {
        var id: Int64 = 1
        while true {
            let lease = try await store.grantLease(id: (Int64(prefix.dropFirst()) ?? 0) * 1_000_000 + id, ttl: 3600)
            acknowledge("lease \(lease.id)")
            id += 1
        }
    }
    for writer in 0..<(leasesOnly ? 0 : 8) {
        group.addTask {
            var i = 0
            while true {
                let latestOnly = writer >= 6
                let key = latestOnly ? "\(prefix)/L\(writer)/\(i)" : "\(prefix)/\(writer)/\(i)"
                let (name, value) = (Array(key.utf8), Array("value-\(i)".utf8))
                let revision: Revision
                if latestOnly {
                    revision = try await store.update(.latest, durability: .fsync) { txn throws(MVCCError) in
                        try txn.put(name, value).kv.modRevision
                    }
                } else if writer % 2 == 0 {
                    revision = try await store.update(.history) { txn throws(MVCCError) in
                        try txn.put(name, value).kv.modRevision
                    }
                } else {
                    // The event-loop path of the front-ends: apply now, acknowledge from the committer.
                    let pending = try store.applyUpdate(.history) { txn throws(MVCCError) in
                        try txn.put(name, value).kv.modRevision
                    }
                    revision = try await withCheckedThrowingContinuation { continuation in
                        store.whenDurable(pending) { continuation.resume(with: $0) }
                    }
                }
                acknowledge("\(revision) \(key)")
                i += 1
            }
        }
    }
    try await group.waitForAll()
}
