/// When an acknowledged write reaches stable storage.
package enum SyncMode: String, Sendable, Hashable, CaseIterable {
    /// fsync before acknowledging; concurrent writers share one fsync (group commit).
    case always
    /// fsync on a timer; a machine crash can lose the last interval, a process crash cannot.
    case batch
    /// Never fsync explicitly; the OS writes back when it likes.
    case none
}
