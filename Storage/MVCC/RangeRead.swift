/// How a range is read.
package struct RangeOptions: Sendable, Hashable {
    /// 0 (or negative) = the current revision; older revisions need a keyspace with history.
    package var revision: Revision = 0
    /// Most key-values returned; 0 = no limit.
    package var limit = 0
    /// Descending key order.
    package var reverse = false
    /// Values left out (empty).
    package var keysOnly = false
    /// No key-values at all, only the count.
    package var countOnly = false
    /// Count every key in the range, also past `limit` (etcd's `count`); otherwise the read stops at the limit.
    package var countAll = false

    package init(
        revision: Revision = 0,
        limit: Int = 0,
        reverse: Bool = false,
        keysOnly: Bool = false,
        countOnly: Bool = false,
        countAll: Bool = false
    ) {
        self.revision = revision
        self.limit = limit
        self.reverse = reverse
        self.keysOnly = keysOnly
        self.countOnly = countOnly
        self.countAll = countAll
    }
}

/// What a range read found.
package struct RangeRead: Sendable, Hashable {
    package var kvs: [KeyValue]
    /// Keys counted: every key in the range with `countAll` (or `countOnly`), else the keys returned.
    package var count: Int
    /// More keys are in the range than `limit` allowed.
    package var more: Bool
    /// The store's current revision when the read was served (reported even for historical reads).
    package var revision: Revision

    package init(kvs: [KeyValue], count: Int, more: Bool, revision: Revision) {
        self.kvs = kvs
        self.count = count
        self.more = more
        self.revision = revision
    }
}
