package import StrataMVCC

/// Why a Redis command failed, in Redis's own terms. The RESP front-end's error table turns each into the exact
/// reply Redis 7.0 sends; ``RedisError/reply(_:)`` carries the rare ones verbatim.
package enum RedisError: Error, Sendable, Hashable {
    case wrongType
    case notInteger
    case notFloat
    case syntax
    case overflow
    case noSuchKey
    case indexOutOfRange
    case outOfRangePositive
    /// `ERR invalid expire time in '<command>' command`.
    case invalidExpireTime(command: String)
    case stringTooLong
    case notANumberScore
    /// A reply Redis sends in one place: the full text after `-` (code first, as in `ERR …` or `BUSYKEY …`).
    case reply(String)
    /// The store failed or refused (no space, too large, closed).
    case storage(MVCCError)

    /// The error line after `-`.
    package var message: String {
        switch self {
        case .wrongType: "WRONGTYPE Operation against a key holding the wrong kind of value"
        case .notInteger: "ERR value is not an integer or out of range"
        case .notFloat: "ERR value is not a valid float"
        case .syntax: "ERR syntax error"
        case .overflow: "ERR increment or decrement would overflow"
        case .noSuchKey: "ERR no such key"
        case .indexOutOfRange: "ERR index out of range"
        case .outOfRangePositive: "ERR value is out of range, must be positive"
        case .invalidExpireTime(let command): "ERR invalid expire time in '\(command)' command"
        case .stringTooLong: "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
        case .notANumberScore: "ERR resulting score is not a number (NaN)"
        case .reply(let text): text
        case .storage(let error): Self.storageMessage(error)
        }
    }

    /// Build an `ERR …` reply.
    package static func err(_ text: String) -> RedisError { .reply("ERR " + text) }

    private static func storageMessage(_ error: MVCCError) -> String {
        switch error {
        case .noSpace(let why):
            "MISCONF Strata is unable to persist to disk (\(why)): commands that may modify the data set are disabled"
        case .transactionTooLarge(let why): "ERR command too large for one transaction: \(why)"
        case .closed: "ERR server is shutting down"
        case .rejected(let rejection): rejection.message
        default: "ERR storage error: \(error)"
        }
    }
}
