import Foundation
import StrataMVCC
import StrataRocksDB
import StrataTestSupport
import Testing

/// Kills a writing child process with SIGKILL at random moments and checks that every write it acknowledged
/// (with sync = always) survived, and that revisions have no gap.
@Suite("Crash safety")
struct CrashTests {
    static var writerPath: String {
        let directory = URL(fileURLWithPath: StrataProcess.binaryPath).deletingLastPathComponent()
        return directory.appendingPathComponent("StrataCrashWriter").path
    }

    @Test func acknowledgedWritesSurviveSIGKILL() throws {
        let directory = TemporaryDirectory()
        let path = directory.appending("db")
        var random = SeededRandom(seed: UInt64(Date().timeIntervalSince1970))
        var acknowledged: [String: Revision] = [:]
        var leases = Set<Int64>()
        for round in 0..<5 {
            let process = ChildProcess()
            process.executableURL = URL(fileURLWithPath: Self.writerPath)
            // Odd rounds grant leases only, so no committer fsync covers their synced writes by accident.
            process.arguments = [path, "r\(round)"] + (round % 2 == 1 ? ["leases-only"] : [])
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            // Let it write for a random while (at least until the first acknowledgements of the round's kind: a put
            // of each keyspace in even rounds — a latest-only one waits for its own fsync, which a loaded machine
            // delays — a lease grant in odd ones), then kill it.
            let deadline = Date().addingTimeInterval(Double.random(in: 0.05...0.4, using: &random))
            let firstAcknowledgements =
                round % 2 == 1 ? [Array("lease ".utf8)] : [Array(" r\(round)/".utf8), Array(" r\(round)/L".utf8)]
            let patience = Date().addingTimeInterval(60)
            var output = Data()
            while firstAcknowledgements.contains(where: { output.firstRange(of: $0) == nil }) && Date() < patience
                || Date() < deadline
            {
                output.append(pipe.fileHandleForReading.availableData)
                if !process.isRunning { break }
            }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            output.append(pipe.fileHandleForReading.readDataToEndOfFile())
            for line in String(decoding: output, as: UTF8.self).split(separator: "\n") {
                let parts = line.split(separator: " ")
                guard parts.count == 2 else { continue }
                if parts[0] == "lease", let id = Int64(parts[1]) {
                    leases.insert(id)
                } else if let revision = Revision(parts[0]) {
                    acknowledged[String(parts[1])] = revision
                }
            }
            #expect(process.terminationReason == .uncaughtSignal, "round \(round): the writer exited on its own")

            // Reopen like a restarted server and check.
            var rocks = RocksDB.Configuration.defaults
            rocks.prepareForMVCCStore()
            let database = try RocksDB(path: path, configuration: rocks)
            let store = try MVCCStore(database: database, keyspaces: [.history, .latest])
            let all = try store.range(.history, .all).kvs + store.range(.latest, .all).kvs
            let stored = Dictionary(
                uniqueKeysWithValues: all.map { (String(decoding: $0.key, as: UTF8.self), $0.modRevision) }
            )
            let lost = acknowledged.filter { stored[$0.key] != $0.value }
            #expect(
                lost.isEmpty,
                "round \(round): \(lost.count) acknowledged writes lost, e.g. \(lost.first.map { "\($0)" } ?? "")"
            )
            // Every key is written once, so the mod revisions must be exactly 2...current.
            #expect(acknowledged.keys.contains { $0.contains("/L") }, "round \(round): no latest-only write")
            let revisions = all.map(\.modRevision).sorted()
            #expect(revisions == Array(2...max(store.currentRevision, 1)), "round \(round): revision gap")
            #expect(!acknowledged.isEmpty)
            let lostLeases = leases.subtracting(store.leases())
            #expect(lostLeases.isEmpty, "round \(round): \(lostLeases.count) acknowledged lease grants lost")
            #expect(leases.count > 0)
            store.close()
            try database.close()
        }
    }
}
