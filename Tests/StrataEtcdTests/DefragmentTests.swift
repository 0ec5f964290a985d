import Foundation
import GRPCCore
import StrataEtcdAPI
import StrataTestSupport
import SwiftProtobuf
import Synchronization
import Testing

@Suite("Maintenance: Defragment alongside reads and writes")
struct DefragmentTests {
    final class Progress: Sendable {
        let defragmenting = Mutex(false)
        let defragmented = Mutex(false)
        let completed = Mutex(0)
        /// Pairs that started after the defragment was sent and completed before it returned.
        let within = Mutex(0)
    }

    /// Defragment compacts the whole database, which takes a while with ~160 MiB of incompressible values; puts and
    /// ranges issued meanwhile must complete before it returns (etcd's defragment blocks them; Strata's must not).
    @Test func readsAndWritesCompleteWhileDefragmentRuns() async throws {
        try await withStrata { _, client in
            let kv = Etcdserverpb_KV.Client(wrapping: client)
            let maintenance = Etcdserverpb_Maintenance.Client(wrapping: client)
            var random = SeededRandom(seed: 42)
            let value = Data((0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &random) })
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<4 {
                    group.addTask {
                        for i in 0..<40 {
                            _ = try await kv.put(
                                .with {
                                    $0.key = Data("bulk/\(writer)/\(i)".utf8)
                                    $0.value = value
                                }
                            )
                        }
                    }
                }
                try await group.waitForAll()
            }
            // Puts and ranges run back to back from before the defragment starts until after it returned; the
            // defragment starts once a few have completed, and some must complete while it runs.
            let progress = Progress()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    var i = 0
                    while !progress.defragmented.withLock({ $0 }) {
                        let startedWithin = progress.defragmenting.withLock { $0 }
                        _ = try await kv.put(
                            .with {
                                $0.key = Data("during/\(i)".utf8)
                                $0.value = Data("v".utf8)
                            }
                        )
                        let read = try await kv.range(.with { $0.key = Data("during/\(i)".utf8) })
                        #expect(read.kvs.count == 1)
                        progress.completed.withLock { $0 += 1 }
                        if startedWithin && !progress.defragmented.withLock({ $0 }) {
                            progress.within.withLock { $0 += 1 }
                        }
                        i += 1
                    }
                }
                while progress.completed.withLock({ $0 }) < 5 { try await Task.sleep(nanoseconds: 5_000_000) }
                progress.defragmenting.withLock { $0 = true }
                _ = try await maintenance.defragment(Etcdserverpb_DefragmentRequest())
                progress.defragmented.withLock { $0 = true }
                let during = progress.within.withLock { $0 }
                #expect(during >= 1, "no put+range pair both started and completed while the defragment ran")
                try await group.waitForAll()
            }
            let count = try await kv.range(
                .with {
                    $0.key = Data("bulk/".utf8)
                    $0.rangeEnd = prefixEnd("bulk/")
                    $0.countOnly = true
                }
            )
            #expect(count.count == 160)
        }
    }
}
