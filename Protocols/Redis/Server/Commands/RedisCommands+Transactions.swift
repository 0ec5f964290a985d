internal import StrataRedisStore

extension RedisCommands {
    /// MULTI, DISCARD, WATCH, UNWATCH (EXEC runs in the connection: it owns the queue).
    static let transactions: [(String, RedisCommand.Access, RedisCommandTable.Handler)] = [
        (
            "multi", .control,
            { c throws(RedisError) in
                if c.session.queued != nil { throw .err("MULTI calls can not be nested") }
                c.session.queued = []
                c.session.queueFailed = false
                c.session.publishMulti()
                return .ok
            }
        ),
        ("exec", .control, { _ throws(RedisError) in throw .err("EXEC without MULTI") }),
        (
            "discard", .control,
            { c throws(RedisError) in
                if c.session.queued == nil { throw .err("DISCARD without MULTI") }
                c.session.queued = nil
                c.session.queueFailed = false
                c.session.watched = []
                c.session.publishMulti()
                return .ok
            }
        ),
        (
            "watch", .read,
            { c throws(RedisError) in
                if c.session.queued != nil { throw .err("WATCH inside MULTI is not allowed") }
                for index in 1..<c.count {
                    let key = c[index]
                    if c.session.watched.contains(where: { $0.db == c.db && $0.key == key }) { continue }
                    let revision = try c.data.lookup(c.db, key)?.modRevision
                    c.session.watched.append((c.db, key, revision))
                }
                c.session.publishMulti()
                return .ok
            }
        ),
        (
            "unwatch", .control,
            { c throws(RedisError) in
                c.session.watched = []
                c.session.publishMulti()
                return .ok
            }
        ),
    ]
}
