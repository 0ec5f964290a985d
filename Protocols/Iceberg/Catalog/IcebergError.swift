package import StrataMVCC

/// The catalog's errors, as the spec's `{"error": {message, type, code}}` carries them: the Java exception names
/// clients match on (a 404 on a table route is NoSuchNamespace only when the namespace is what is missing).
package struct IcebergError: Error, Sendable, Hashable, CustomStringConvertible {
    package let code: Int
    package let type: String
    package let message: String

    package init(_ code: Int, _ type: String, _ message: String) {
        self.code = code
        self.type = type
        self.message = message
    }

    package var description: String { "\(type) (\(code)): \(message)" }

    package static func badRequest(_ message: String) -> Self { Self(400, "BadRequestException", message) }
    package static func notAuthorized(_ message: String) -> Self { Self(401, "NotAuthorizedException", message) }
    package static func forbidden(_ message: String) -> Self { Self(403, "ForbiddenException", message) }
    package static func noSuchNamespace(_ namespace: [String]) -> Self {
        Self(404, "NoSuchNamespaceException", "Namespace does not exist: \(namespace.joined(separator: "."))")
    }
    package static func noSuchTable(_ identifier: TableIdentifier) -> Self {
        Self(404, "NoSuchTableException", "Table does not exist: \(identifier)")
    }
    package static func noSuchView(_ identifier: TableIdentifier) -> Self {
        Self(404, "NoSuchViewException", "View does not exist: \(identifier)")
    }
    package static func noSuchWarehouse(_ name: String) -> Self {
        Self(404, "NoSuchWarehouseException", "Warehouse does not exist: \(name)")
    }
    package static func notFound(_ message: String) -> Self { Self(404, "NotFoundException", message) }
    package static func alreadyExists(_ message: String) -> Self { Self(409, "AlreadyExistsException", message) }
    package static func namespaceNotEmpty(_ namespace: [String]) -> Self {
        Self(
            409,
            "NamespaceNotEmptyException",
            "Namespace \(namespace.joined(separator: ".")) is not empty: drop its tables, views and namespaces first"
        )
    }
    package static func commitFailed(_ message: String) -> Self { Self(409, "CommitFailedException", message) }
    package static func unsupported(_ message: String) -> Self {
        Self(406, "UnsupportedOperationException", message)
    }
    package static func authenticationTimeout(_ message: String) -> Self {
        Self(419, "AuthenticationTimeoutException", message)
    }
    package static func unprocessable(_ message: String) -> Self {
        Self(422, "UnprocessableEntityException", message)
    }
    package static func serviceUnavailable(_ message: String) -> Self {
        Self(503, "ServiceUnavailableException", message)
    }
    package static func server(_ message: String) -> Self { Self(500, "InternalServerError", message) }
    package static func commitStateUnknown(_ message: String) -> Self {
        Self(500, "CommitStateUnknownException", message)
    }

    // MARK: Through the core

    /// Rejection codes a catalog transaction aborts with (``MVCCError/rejected(_:)``), carrying the whole error.
    private static let rejectionCodes: [String: Int] = [
        "BadRequestException": 1, "NoSuchNamespaceException": 2, "NoSuchTableException": 3,
        "NoSuchViewException": 4, "AlreadyExistsException": 5, "NamespaceNotEmptyException": 6,
        "CommitFailedException": 7, "UnprocessableEntityException": 8, "NotFoundException": 9,
    ]

    /// This error as the reason a core transaction is abandoned.
    package var rejection: MVCCError {
        .rejected(Rejection(code: Self.rejectionCodes[type] ?? 0, message: "\(code)\u{1F}\(type)\u{1F}\(message)"))
    }

    /// The one table from core errors to the catalog's (a commit's unknown outcome is a 500 the client does not
    /// retry blindly).
    package static func from(_ error: MVCCError, committing: Bool = false) -> Self {
        switch error {
        case .rejected(let rejection):
            let parts = rejection.message.split(separator: "\u{1F}", maxSplits: 2, omittingEmptySubsequences: false)
            if parts.count == 3, let code = Int(parts[0]) {
                return Self(code, String(parts[1]), String(parts[2]))
            }
            return .badRequest(rejection.message)
        case .noSpace(let what):
            return .serviceUnavailable("the catalog's disk is short of space: \(what)")
        case .transactionTooLarge(let what):
            return .badRequest("request too large for one transaction: \(what)")
        case .closed:
            return .serviceUnavailable("the server is shutting down")
        case .storage(let message):
            return committing
                ? .commitStateUnknown("storage failure: \(message)") : .server("storage failure: \(message)")
        default:
            return committing ? .commitStateUnknown("\(error)") : .server("\(error)")
        }
    }
}
