internal import CRocksDB

/// An error from RocksDB, carrying RocksDB's own message so operators see exactly what the engine said.
package struct RocksDBError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The status class RocksDB reported, parsed from the prefix of its message.
    package struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Hashable, Sendable {
            case notFound, corruption, notSupported, invalidArgument, ioError, incomplete
            case shutdownInProgress, timedOut, aborted, busy, expired, tryAgain, closed, unknown
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        package static let notFound = Self(.notFound)
        package static let corruption = Self(.corruption)
        package static let notSupported = Self(.notSupported)
        package static let invalidArgument = Self(.invalidArgument)
        package static let ioError = Self(.ioError)
        package static let incomplete = Self(.incomplete)
        package static let shutdownInProgress = Self(.shutdownInProgress)
        package static let timedOut = Self(.timedOut)
        package static let aborted = Self(.aborted)
        package static let busy = Self(.busy)
        package static let expired = Self(.expired)
        package static let tryAgain = Self(.tryAgain)
        /// The database was closed through this wrapper; not a RocksDB status.
        package static let closed = Self(.closed)
        package static let unknown = Self(.unknown)

        package var description: String { value.rawValue }
    }

    package var code: Code
    package var message: String

    package init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// Builds an error from a RocksDB status string such as `"IO error: While lock file: ..."`.
    package init(rocksDBMessage message: String) {
        // Prefixes written by rocksdb::Status::ToString().
        let prefixes: [(String, Code)] = [
            ("NotFound", .notFound), ("Corruption", .corruption), ("Not implemented", .notSupported),
            ("Invalid argument", .invalidArgument), ("IO error", .ioError), ("Result incomplete", .incomplete),
            ("Shutdown in progress", .shutdownInProgress), ("Operation timed out", .timedOut),
            ("Operation aborted", .aborted), ("Resource busy", .busy), ("Operation expired", .expired),
            ("Operation failed. Try again.", .tryAgain),
        ]
        let code = prefixes.first { message.hasPrefix($0.0) }?.1 ?? .unknown
        self.init(code: code, message: message)
    }

    package var description: String { "rocksdb: \(message)" }

    static let closedError = RocksDBError(code: .closed, message: "the database is closed")
}

/// Calls a RocksDB C function that reports failure through `char** errptr`, turning it into a Swift error.
@inline(__always)
func withRocksDBError<T>(_ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) throws -> T) throws -> T {
    var errptr: UnsafeMutablePointer<CChar>? = nil
    let result = try body(&errptr)
    if let errptr {
        let message = String(cString: errptr)
        rocksdb_free(errptr)
        throw RocksDBError(rocksDBMessage: message)
    }
    return result
}
