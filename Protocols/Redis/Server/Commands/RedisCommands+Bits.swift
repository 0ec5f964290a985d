internal import StrataRedisStore

extension RedisCommands {
    static let bits: [(String, RedisCommand.Access, RedisCommandTable.Handler)] = []
}
