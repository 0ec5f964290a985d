package import Prometheus

#if canImport(Glibc)
    private import Glibc
#endif

/// The standard `process_*` metrics (as Go's and Java's Prometheus clients name them), read from /proc at scrape time.
package struct ProcessMetrics: Sendable {
    private let residentMemory: Gauge
    private let virtualMemory: Gauge
    private let cpuSeconds: Gauge
    private let openFDs: Gauge
    private let maxFDs: Gauge
    private let startTime: Gauge
    private let threads: Gauge
    private let startTimeSeconds: Double

    package init(registry: PrometheusCollectorRegistry) {
        residentMemory = registry.gauge("process_resident_memory_bytes", help: "Resident memory size in bytes.")
        virtualMemory = registry.gauge("process_virtual_memory_bytes", help: "Virtual memory size in bytes.")
        cpuSeconds = registry.gauge(
            "process_cpu_seconds_total",
            help: "Total user and system CPU time spent in seconds."
        )
        openFDs = registry.gauge("process_open_fds", help: "Number of open file descriptors.")
        maxFDs = registry.gauge("process_max_fds", help: "Maximum number of open file descriptors.")
        startTime = registry.gauge(
            "process_start_time_seconds",
            help: "Start time of the process since unix epoch in seconds."
        )
        threads = registry.gauge("process_threads", help: "Number of OS threads in the process.")
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        startTimeSeconds = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    /// Refreshes every gauge; cheap enough to call on each scrape.
    package func collect() {
        startTime.set(startTimeSeconds)
        var usage = rusage()
        if getrusage(RUSAGE_SELF.rawValue, &usage) == 0 {
            let user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            let system = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
            cpuSeconds.set(user + system)
        }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 { maxFDs.set(Double(limit.rlim_cur)) }
        if let statm = Self.readFile("/proc/self/statm") {
            let fields = statm.split(separator: " ")
            let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
            if fields.count >= 2, let pages = Double(fields[0]), let resident = Double(fields[1]) {
                virtualMemory.set(pages * pageSize)
                residentMemory.set(resident * pageSize)
            }
        }
        if let status = Self.readFile("/proc/self/status"),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Threads:") }),
            let count = Double(line.dropFirst("Threads:".count).trimmingPrefix(while: { $0 == " " || $0 == "\t" }))
        {
            threads.set(count)
        }
        openFDs.set(Double(Self.countOpenFDs()))
    }

    private static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
            if bytes.count > 1 << 20 { break }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func countOpenFDs() -> Int {
        guard let dir = opendir("/proc/self/fd") else { return 0 }
        defer { closedir(dir) }
        var count = 0
        while let entry = readdir(dir) {
            let isDot = withUnsafeBytes(of: entry.pointee.d_name) { $0.first == UInt8(ascii: ".") }
            if !isDot { count += 1 }
        }
        return max(count - 1, 0)  // the directory stream itself holds one descriptor
    }
}

extension Substring {
    fileprivate func trimmingPrefix(while predicate: (Character) -> Bool) -> Substring {
        var s = self
        while let c = s.first, predicate(c) { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return s
    }
}
