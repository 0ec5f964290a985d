internal import StrataRedisStore

extension RedisCommands {
    static let pubsub: [(String, RedisCommand.Access, RedisCommandTable.Handler)] = [
        ("subscribe", .control, { c throws(RedisError) in subscribe(&c, .channel) }),
        ("psubscribe", .control, { c throws(RedisError) in subscribe(&c, .pattern) }),
        ("ssubscribe", .control, { c throws(RedisError) in subscribe(&c, .shard) }),
        ("unsubscribe", .control, { c throws(RedisError) in unsubscribe(&c, .channel) }),
        ("punsubscribe", .control, { c throws(RedisError) in unsubscribe(&c, .pattern) }),
        ("sunsubscribe", .control, { c throws(RedisError) in unsubscribe(&c, .shard) }),
        ("publish", .control, { c throws(RedisError) in .integer(c.server.pubsub.publish(c[1], c[2])) }),
        ("spublish", .control, { c throws(RedisError) in .integer(c.server.pubsub.publish(c[1], c[2], shard: true)) }),
        (
            "pubsub|channels", .control,
            { c throws(RedisError) in
                .bulks(c.server.pubsub.activeChannels(matching: c.count > 2 ? c[2] : nil, shard: false))
            }
        ),
        (
            "pubsub|shardchannels", .control,
            { c throws(RedisError) in
                .bulks(c.server.pubsub.activeChannels(matching: c.count > 2 ? c[2] : nil, shard: true))
            }
        ),
        (
            "pubsub|numsub", .control,
            { c throws(RedisError) in
                .array(
                    (2..<max(2, c.count)).flatMap { index in
                        [RESPValue.bulk(c[index]), .integer(c.server.pubsub.subscriberCount(c[index], shard: false))]
                    }
                )
            }
        ),
        (
            "pubsub|shardnumsub", .control,
            { c throws(RedisError) in
                .array(
                    (2..<max(2, c.count)).flatMap { index in
                        [RESPValue.bulk(c[index]), .integer(c.server.pubsub.subscriberCount(c[index], shard: true))]
                    }
                )
            }
        ),
        ("pubsub|numpat", .control, { c throws(RedisError) in .integer(c.server.pubsub.patternCount) }),
        (
            "pubsub|help", .control,
            { _ throws(RedisError) in
                help(
                    "PUBSUB",
                    [
                        "CHANNELS [<pattern>]",
                        "    Return the currently active channels matching a <pattern> (default: '*').",
                        "NUMPAT", "    Return number of subscriptions to patterns.", "NUMSUB [<channel> ...]",
                        "    Return the number of subscribers for the specified channels, excluding",
                        "    pattern subscriptions(default: no channels).", "SHARDCHANNELS [<pattern>]",
                        "    Return the currently active shard level channels matching a <pattern> (default: '*').",
                        "SHARDNUMSUB [<shardchannel> ...]",
                        "    Return the number of subscribers for the specified shard level channel(s)",
                    ]
                )
            }
        ),
    ]

    private static func confirmation(_ kind: RedisPubSub.Kind, subscribing: Bool) -> String {
        switch kind {
        case .channel: subscribing ? "subscribe" : "unsubscribe"
        case .pattern: subscribing ? "psubscribe" : "punsubscribe"
        case .shard: subscribing ? "ssubscribe" : "sunsubscribe"
        }
    }

    private static func count(_ c: RedisInvocation, _ kind: RedisPubSub.Kind) -> Int {
        kind == .shard ? c.session.shardChannels.count : c.session.channels.count + c.session.patterns.count
    }

    private static func subscribe(_ c: inout RedisInvocation, _ kind: RedisPubSub.Kind) -> RESPValue {
        var replies: [RESPValue] = []
        for index in 1..<c.count {
            let name = c[index]
            if c.server.pubsub.subscribe(c.client, name, kind) {
                switch kind {
                case .channel: c.session.channels.append(name)
                case .pattern: c.session.patterns.append(name)
                case .shard: c.session.shardChannels.append(name)
                }
            }
            c.session.publishSubscriptions()
            replies.append(
                .push([.bulk(confirmation(kind, subscribing: true)), .bulk(name), .integer(count(c, kind))])
            )
        }
        return .sequence(replies)
    }

    private static func unsubscribe(_ c: inout RedisInvocation, _ kind: RedisPubSub.Kind) -> RESPValue {
        if c.count == 1 { return unsubscribeAll(&c, kind, notify: true) }
        var replies: [RESPValue] = []
        for index in 1..<c.count {
            let name = c[index]
            remove(&c, name, kind)
            replies.append(
                .push([.bulk(confirmation(kind, subscribing: false)), .bulk(name), .integer(count(c, kind))])
            )
        }
        return .sequence(replies)
    }

    private static func remove(_ c: inout RedisInvocation, _ name: [UInt8], _ kind: RedisPubSub.Kind) {
        c.server.pubsub.unsubscribe(c.client, name, kind)
        switch kind {
        case .channel: c.session.channels.removeAll { $0 == name }
        case .pattern: c.session.patterns.removeAll { $0 == name }
        case .shard: c.session.shardChannels.removeAll { $0 == name }
        }
        c.session.publishSubscriptions()
    }

    /// Leaves every subscription of `kind` (UNSUBSCRIBE without arguments, RESET, disconnect).
    @discardableResult
    static func unsubscribeAll(_ c: inout RedisInvocation, _ kind: RedisPubSub.Kind, notify: Bool) -> RESPValue {
        let names: [[UInt8]]
        switch kind {
        case .channel: names = c.session.channels
        case .pattern: names = c.session.patterns
        case .shard: names = c.session.shardChannels
        }
        var replies: [RESPValue] = []
        for name in names {
            remove(&c, name, kind)
            replies.append(
                .push([.bulk(confirmation(kind, subscribing: false)), .bulk(name), .integer(count(c, kind))])
            )
        }
        if names.isEmpty && notify {
            replies.append(.push([.bulk(confirmation(kind, subscribing: false)), .null, .integer(count(c, kind))]))
        }
        return .sequence(replies)
    }
}
