internal import StrataLease
internal import Synchronization

#if canImport(Glibc)
    internal import Glibc
#endif

/// How much free space the data directory's file system must keep: a size, or a share of the file system.
package enum FreeSpaceReserve: Sendable, Hashable, CustomStringConvertible {
    case bytes(UInt64)
    /// Percent of the file system's size.
    case percent(Double)

    /// 256 MiB: room for RocksDB's flushes and compactions to finish when writes stop.
    package static var defaults: Self { .bytes(256 << 20) }

    package func bytes(ofTotal total: UInt64) -> UInt64 {
        switch self {
        case .bytes(let bytes): bytes
        case .percent(let percent): UInt64(Double(total) * percent / 100)
        }
    }

    package var description: String {
        switch self {
        case .bytes(let bytes): "\(bytes) bytes"
        case .percent(let percent): "\(percent)%"
        }
    }
}

/// Refuses writes that add data while the data directory's file system is nearly full, so RocksDB never runs out of
/// space mid-write (Debian's build aborts on some of those paths, taking every front-end down). Reads go on, deletes
/// too (they are how space comes back), and writes resume by themselves once free space is above the reserve.
final class FreeSpaceGuard: Sendable {
    private let path: String?
    private let reserve: FreeSpaceReserve?
    /// The reason writes are refused, while they are.
    private let state = Mutex<String?>(nil)

    init(path: String?, reserve: FreeSpaceReserve?) {
        self.path = path
        self.reserve = reserve
    }

    var isActive: Bool { path != nil && reserve != nil }

    /// Why writes that add data are refused now, if they are.
    var shortage: String? { state.withLock { $0 } }

    /// Free and total bytes of the file system holding `path`.
    static func space(at path: String) -> (free: UInt64, total: UInt64)? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        let unit = UInt64(info.f_frsize)
        return (UInt64(info.f_bavail) * unit, UInt64(info.f_blocks) * unit)
    }

    /// Bytes written since the last check: a burst of large writes checks again every few MiB, not only on the timer.
    private let writtenSinceCheck = Atomic<Int>(0)

    /// Counts `bytes` written; checks the file system when enough piled up since the last check.
    func noteWritten(_ bytes: Int) {
        guard isActive else { return }
        if writtenSinceCheck.wrappingAdd(bytes, ordering: .relaxed).newValue >= 4 << 20 { refresh() }
    }

    /// Checks the file system now; returns the shortage, if any.
    @discardableResult
    func refresh() -> String? {
        writtenSinceCheck.store(0, ordering: .relaxed)
        guard let path, let reserve, let (free, total) = Self.space(at: path) else { return nil }
        let needed = reserve.bytes(ofTotal: total)
        let shortage =
            free < needed
            ? "\(free) bytes free on the data directory's file system, below the reserve of \(needed) "
                + "(storage.min_free_space = \(reserve))"
            : nil
        state.withLock { $0 = shortage }
        return shortage
    }
}

extension MVCCStore {
    /// Why writes that add data are refused now (free space below `storage.min_free_space`), if they are. (RocksDB
    /// running out of space itself shows in ``healthProblem``: it refuses writes until it recovers, by itself.)
    package var spaceShortage: String? { space.shortage }

    /// Re-checks free space every 250 ms until cancelled (statvfs is cheap; a burst of large writes can use the
    /// reserve's headroom quickly).
    func runFreeSpaceChecks() async throws {
        while !Task.isCancelled {
            space.refresh()
            try await clock.sleep(for: 250_000_000)
        }
    }
}
