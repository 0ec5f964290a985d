package import ServiceLifecycle

#if canImport(Glibc)
    private import Glibc
#endif

/// Returns memory the process freed to the OS. RocksDB frees memtable arena blocks of several MiB on every flush, and
/// a large transaction frees whatever it built; glibc keeps freed memory inside its arenas until `malloc_trim`. After
/// `etcdctl check perf --load=l` this took the process from 1.4 GiB to 1.06 GiB resident within one interval.
/// (Limiting glibc to two arenas and a fixed mmap threshold was tried: it cost ~10% CPU per put with many threads
/// and did not lower RSS, so the allocator keeps its defaults.)
package struct MemoryService: Service {
    /// How often freed memory is returned to the OS.
    let trimInterval: Duration

    package init(trimInterval: Duration = .seconds(10)) {
        self.trimInterval = trimInterval
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
