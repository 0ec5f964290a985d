internal import NIOCore
internal import StrataRedisStore
internal import Synchronization

/// Channels, patterns and shard channels with their subscribers, shared by every connection (PUBLISH delivers
/// from the publisher's thread; each message is queued on the subscriber's channel in publish order).
package final class RedisPubSub: Sendable {
    private struct State {
        /// Subscribers per channel, in subscription order.
        var channels: [[UInt8]: [RedisClient]] = [:]
        var patterns: [[UInt8]: [RedisClient]] = [:]
        var patternOrder: [[UInt8]] = []
        var shardChannels: [[UInt8]: [RedisClient]] = [:]
    }

    private let state = Mutex(State())
    private let stats: RedisStats
    private let limits: @Sendable () -> RedisOutputLimits.Limit

    package init(stats: RedisStats, limits: @escaping @Sendable () -> RedisOutputLimits.Limit) {
        self.stats = stats
        self.limits = limits
    }

    package enum Kind: Sendable { case channel, pattern, shard }

    /// The channels, patterns and shard channels `client` is subscribed to (ACL changes check them).
    func subscriptions(of client: RedisClient) -> (channels: [[UInt8]], patterns: [[UInt8]], shard: [[UInt8]]) {
        state.withLock { state in
            func names(_ table: [[UInt8]: [RedisClient]]) -> [[UInt8]] {
                table.compactMap { name, clients in clients.contains { $0 === client } ? name : nil }
            }
            return (names(state.channels), names(state.patterns), names(state.shardChannels))
        }
    }

    /// Adds `client` to `name`; false when it was already there.
    package func subscribe(_ client: RedisClient, _ name: [UInt8], _ kind: Kind) -> Bool {
        state.withLock { state in
            switch kind {
            case .channel: return Self.add(client, to: &state.channels, name)
            case .shard: return Self.add(client, to: &state.shardChannels, name)
            case .pattern:
                if state.patterns[name] == nil { state.patternOrder.append(name) }
                return Self.add(client, to: &state.patterns, name)
            }
        }
    }

    package func unsubscribe(_ client: RedisClient, _ name: [UInt8], _ kind: Kind) {
        state.withLock { state in
            switch kind {
            case .channel: Self.remove(client, from: &state.channels, name)
            case .shard: Self.remove(client, from: &state.shardChannels, name)
            case .pattern:
                Self.remove(client, from: &state.patterns, name)
                if state.patterns[name] == nil { state.patternOrder.removeAll { $0 == name } }
            }
        }
    }

    private static func add(_ client: RedisClient, to table: inout [[UInt8]: [RedisClient]], _ name: [UInt8]) -> Bool {
        if table[name]?.contains(where: { $0 === client }) == true { return false }
        table[name, default: []].append(client)
        return true
    }

    private static func remove(_ client: RedisClient, from table: inout [[UInt8]: [RedisClient]], _ name: [UInt8]) {
        guard var subscribers = table[name] else { return }
        subscribers.removeAll { $0 === client }
        table[name] = subscribers.isEmpty ? nil : subscribers
    }

    /// Delivers `message` to every subscriber of `channel` and every matching pattern; returns the deliveries.
    @discardableResult
    package func publish(_ channel: [UInt8], _ message: [UInt8], shard: Bool = false) -> Int {
        let (direct, matched) = state.withLock { state -> ([RedisClient], [([UInt8], RedisClient)]) in
            if shard { return (state.shardChannels[channel] ?? [], []) }
            var matched: [([UInt8], RedisClient)] = []
            for pattern in state.patternOrder where GlobPattern(pattern).matches(channel) {
                for client in state.patterns[pattern] ?? [] { matched.append((pattern, client)) }
            }
            return (state.channels[channel] ?? [], matched)
        }
        let limit = limits()
        let kind = shard ? "smessage" : "message"
        for client in direct {
            client.push(.push([.bulk(kind), .bulk(channel), .bulk(message)]), limit: limit)
        }
        for (pattern, client) in matched {
            client.push(.push([.bulk("pmessage"), .bulk(pattern), .bulk(channel), .bulk(message)]), limit: limit)
        }
        let count = direct.count + matched.count
        stats.pubsubMessages.wrappingAdd(1, ordering: .relaxed)
        return count
    }

    /// PUBSUB CHANNELS / SHARDCHANNELS.
    package func activeChannels(matching pattern: [UInt8]?, shard: Bool) -> [[UInt8]] {
        state.withLock { state in
            let names = Array((shard ? state.shardChannels : state.channels).keys)
            guard let pattern else { return names }
            let glob = GlobPattern(pattern)
            return names.filter { glob.matches($0) }
        }
    }

    package func subscriberCount(_ channel: [UInt8], shard: Bool) -> Int {
        state.withLock { state in (shard ? state.shardChannels : state.channels)[channel]?.count ?? 0 }
    }

    package var patternCount: Int { state.withLock { $0.patterns.count } }
    package var channelCount: Int { state.withLock { $0.channels.count } }
}

extension RedisClient {
    /// Queues an out-of-band message (pub/sub, keyspace notifications) on this connection: RESP3 push frames, RESP2
    /// arrays. A subscriber whose unsent output passes the pubsub class's hard limit, or stays over the soft limit
    /// longer than its time, is disconnected (client-output-buffer-limit).
    package func push(_ value: RESPValue, limit: RedisOutputLimits.Limit) {
        let version = resp
        var buffer = channel.allocator.buffer(capacity: 64)
        buffer.writeRESP(value, version: version)
        if exceedsOutputLimit(adding: buffer.readableBytes, limit) { return }
        let size = buffer.readableBytes
        channel.writeAndFlush(buffer).whenComplete { [self] _ in
            shared.withLock { $0.pendingOutput -= size }
        }
    }

    /// Counts `size` more unsent bytes; when that passes `limit`'s hard limit, or keeps it over its soft limit too
    /// long, the client is disconnected and true is returned. The caller decrements when the bytes are written.
    package func exceedsOutputLimit(adding size: Int, _ limit: RedisOutputLimits.Limit) -> Bool {
        let now = ContinuousClock.now.milliseconds
        let overLimit = shared.withLock { state -> Bool in
            state.pendingOutput += size
            if limit.hard > 0 && Int64(state.pendingOutput) > limit.hard { return true }
            if limit.soft > 0 && Int64(state.pendingOutput) > limit.soft {
                if state.softLimitSince == 0 { state.softLimitSince = now }
                let (window, overflow) = limit.seconds.multipliedReportingOverflow(by: 1000)
                if !overflow && now - state.softLimitSince > window { return true }
            } else {
                state.softLimitSince = 0
            }
            return false
        }
        if overLimit {
            shared.withLock {
                $0.killed = true
                $0.pendingOutput -= size
            }
            channel.close(promise: nil)
        }
        return overLimit
    }
}

extension ContinuousClock.Instant {
    /// Milliseconds on the monotonic clock.
    var milliseconds: Int64 {
        let components = (self - ContinuousClock.Instant.zeroReference).components
        return components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }

    static let zeroReference = ContinuousClock.now
}
