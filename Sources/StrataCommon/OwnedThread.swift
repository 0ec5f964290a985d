#if canImport(Glibc)
    private import Glibc
#endif

/// A dedicated OS thread whose owner joins it: for a loop that blocks (the committer's fsyncs) and must not occupy a
/// Swift cooperative-pool or GCD worker thread, and must be gone when its owner shuts down.
package final class OwnedThread: @unchecked Sendable {
    // Written once in init, read by join() on the owner's side only.
    private var thread: pthread_t
    private var joined = false

    /// Starts `body` on a new thread named `name` (at most 15 bytes are kept).
    package init(name: String, _ body: @escaping @Sendable () -> Void) {
        final class Box {
            let name: String
            let body: @Sendable () -> Void
            init(name: String, body: @escaping @Sendable () -> Void) {
                self.name = name
                self.body = body
            }
        }
        let box = Unmanaged.passRetained(Box(name: name, body: body)).toOpaque()
        var thread = pthread_t()
        let status = pthread_create(
            &thread,
            nil,
            { argument in
                let box = Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue()
                OwnedThread.setName(box.name)
                box.body()
                return nil
            },
            box
        )
        precondition(status == 0, "pthread_create failed: \(status)")
        self.thread = thread
    }

    /// Names the calling thread as `top` and `/proc` show it (pthread_setname_np is not visible to Swift here).
    private static func setName(_ name: String) {
        let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let bytes = Array(name.utf8.prefix(15))
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }

    /// Waits for the body to return. Call once, from the owner, never from the thread itself.
    package func join() {
        guard !joined else { return }
        joined = true
        pthread_join(thread, nil)
    }
}
