internal import NIOCore
internal import Synchronization

/// Per connection: runs completions that arrive from other threads (the committer answering a group of writes) in
/// one event-loop task, and coalesces the flushes they cause into one socket write. Without it, a group commit of 64
/// writes costs 64 task wake-ups and 64 `writev` calls.
///
/// It sits in the connection pipeline in front of the HTTP/2 handler, where the stream channels' flushes arrive.
final class ConnectionBatcher: ChannelOutboundHandler, @unchecked Sendable {
    typealias OutboundIn = Any

    private let eventLoop: any EventLoop
    /// Completions waiting for the event loop; `scheduled` while a drain task is queued.
    private let queue = Mutex<(work: [@Sendable () -> Void], scheduled: Bool)>(([], false))
    // Event-loop state only.
    private var context: ChannelHandlerContext?
    private var batching = false
    private var flushPending = false

    init(eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func flush(context: ChannelHandlerContext) {
        if batching {
            flushPending = true
        } else {
            context.flush()
        }
    }

    /// Runs `work` on the event loop: now if already there, otherwise with the other completions of this moment.
    func complete(_ work: @escaping @Sendable () -> Void) {
        if eventLoop.inEventLoop { return work() }
        let schedule = queue.withLock { state -> Bool in
            state.work.append(work)
            defer { state.scheduled = true }
            return !state.scheduled
        }
        if schedule { eventLoop.execute { self.drain() } }
    }

    private func drain() {
        let work = queue.withLock { state -> [@Sendable () -> Void] in
            state.scheduled = false
            defer { state.work.removeAll(keepingCapacity: true) }
            return state.work
        }
        batching = true
        for item in work { item() }
        batching = false
        if flushPending, let context {
            flushPending = false
            context.flush()
        }
    }
}
