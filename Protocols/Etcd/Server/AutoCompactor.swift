internal import Logging
internal import StrataMVCC

/// etcd's auto-compaction (`--auto-compaction-mode`, `--auto-compaction-retention`), run by the front-end.
///
/// Periodic: every tenth of the retention (at least a second, at most an hour) it notes the current revision, and
/// compacts to the revision noted one retention ago; revision: every five minutes it compacts to `retention`
/// revisions behind the current one. A revision already compacted is skipped.
struct AutoCompactor {
    let store: MVCCStore
    let policy: EtcdFrontEnd.AutoCompaction
    let logger: Logger

    func run() async throws {
        switch policy {
        case .periodic(let retention):
            let step = min(max(retention / 10, .seconds(1)), .seconds(3600))
            let kept = max(Int((retention / step).rounded(.up)), 1)
            var samples: [Revision] = []
            while !Task.isCancelled {
                try await Task.sleep(for: step)
                samples.append(store.currentRevision)
                if samples.count > kept {
                    let target = samples.removeFirst()
                    await compact(to: target)
                }
            }
        case .revision(let retention):
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(300))
                await compact(to: store.currentRevision - retention)
            }
        }
    }

    private func compact(to revision: Revision) async {
        guard revision > store.compactRevision else { return }
        do {
            try await store.compact(revision)
            logger.info("auto-compaction compacted at revision \(revision)")
        } catch {
            logger.warning("auto-compaction at revision \(revision) failed: \(error)")
        }
    }
}
