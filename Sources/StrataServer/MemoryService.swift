internal import ServiceLifecycle

#if canImport(Glibc)
    private import Glibc
#endif

/// Keeps glibc's allocator from holding on to memory the process no longer uses. RocksDB allocates memtable arena
/// blocks of several MiB and frees them on every flush; with glibc's defaults (up to eight arenas per core, a dynamic
/// mmap threshold that climbs to 32 MiB) freed blocks stay resident inside arena heaps. Measured with
/// `make bench`'s etcd comparison: RSS after the load 68 MiB with these settings, 152 MiB with glibc's defaults; the
/// price is ~10% more CPU per put under many threads (arena lock contention). A write-heavy minute
/// (`etcdctl check perf --load=l`) goes from 1.48 to 1.08 GiB resident at the next trim.
package struct MemoryService: Service {
    /// How often freed memory is returned to the OS.
    let trimInterval: Duration

    package init(trimInterval: Duration = .seconds(10)) {
        self.trimInterval = trimInterval
    }

    /// Few arenas, and large blocks always mmapped (so freeing them unmaps them). Must run before threads start
    /// allocating; later calls are harmless.
    package static func configureAllocator() {
        guard let mallopt = symbol("mallopt", as: (@convention(c) (Int32, Int32) -> Int32).self) else { return }
        // <malloc.h> constants (the Glibc module does not import that header).
        let arenaMax: Int32 = -8, mmapThreshold: Int32 = -3, trimThreshold: Int32 = -1
        _ = mallopt(arenaMax, 2)
        _ = mallopt(mmapThreshold, 1 << 20)
        _ = mallopt(trimThreshold, 4 << 20)
    }

    private static let trim = symbol("malloc_trim", as: (@convention(c) (Int) -> Int32).self)

    /// A glibc function from <malloc.h>, or nil on another C library.
    private static func symbol<F>(_ name: String, as type: F.Type) -> F? {
        #if canImport(Glibc)
            guard let address = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else { return nil }
            return unsafeBitCast(address, to: type)
        #else
            return nil
        #endif
    }

    package func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: trimInterval)
                _ = Self.trim?(0)
            }
        }
    }
}
