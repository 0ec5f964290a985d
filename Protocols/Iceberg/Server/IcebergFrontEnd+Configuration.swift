package import StrataCommon
internal import StrataFrontEnd

extension IcebergFrontEnd {
    /// How clients prove who they are.
    package enum AuthMode: String, Sendable, Hashable, CaseIterable {
        /// Anyone on the listener is trusted (a laptop's loopback catalog).
        case none
        /// `Authorization: Bearer <token>` with the configured token.
        case token
        /// Client id/secret pairs exchanged at `POST /v1/oauth/tokens` for expiring bearer tokens (the configured
        /// static token, if any, is accepted as well).
        case oauth2
    }

    /// The `[iceberg]` section (config.toml documents every key).
    package struct Configuration: Sendable, Hashable {
        package var enabled = true
        package var listen = ListenAddress(host: "127.0.0.1", port: 8181)
        /// The default warehouse's directory (relative to the working directory): the one `/v1/config` selects
        /// without `?warehouse=` or with this same value.
        package var warehouse = "warehouse"
        /// More warehouses by name: `?warehouse=<name>` selects one, and its name becomes the URL prefix.
        package var warehouses: [String: String] = [:]
        package var auth = AuthMode.none
        /// The static bearer token (`auth = "token"`, optional with oauth2).
        package var token = ""
        /// `client_id:client_secret` pairs accepted by `/v1/oauth/tokens` (`auth = "oauth2"`).
        package var clients: [String] = []
        /// How long an issued token is valid (`expires_in`; 419 afterwards).
        package var tokenLifetime: Duration = .seconds(3600)
        /// How long a mutation's Idempotency-Key is remembered (advertised as `idempotency-key-lifetime`).
        package var idempotencyKeyLifetime: Duration = .seconds(1800)
        /// Largest request body accepted.
        package var maxRequestBytes = 32 * 1024 * 1024
        /// Largest page a list returns (a client's larger `pageSize`, or none, is cut to it with a next-page-token).
        package var maxPageSize = 100_000
        package init() {}
        package static var defaults: Self { Self() }
    }
}

extension IcebergFrontEnd.Configuration: FrontEndConfiguration {
    package var listeners: [(key: String, address: ListenAddress)] { [("listen", listen)] }

    package var summary: String {
        guard enabled else { return "disabled" }
        let more = warehouses.isEmpty ? "" : " (+\(warehouses.count) warehouses)"
        return "enabled on \(listen), warehouse \(warehouse)\(more), auth \(auth.rawValue)"
    }

    /// Reads `[iceberg]`.
    mutating func read(from reader: inout ConfigReader) throws(ConfigError) {
        try reader.read("enabled", into: &enabled)
        try reader.read("listen", into: &listen)
        try reader.read("warehouse", into: &warehouse)
        if let value = reader.value("warehouses") {
            guard case .table(let table) = value else {
                throw reader.error("warehouses", "expected a table of name = \"directory\"")
            }
            for (name, path) in table.values {
                guard case .string(let directory) = path, !directory.isEmpty else {
                    throw reader.error("warehouses", "\(name): expected a directory")
                }
                guard IcebergFrontEnd.isValidWarehouseName(name) else {
                    throw reader.error("warehouses", "\(name): a name is letters, digits, '-', '_' or '.'")
                }
                warehouses[name] = directory
            }
        }
        try reader.read("auth", into: &auth)
        try reader.read("token", into: &token, allowEmpty: true)
        if let value = reader.value("clients") {
            guard case .array(let items) = value else { throw reader.error("clients", "expected [\"id:secret\", …]") }
            clients = []
            for item in items {
                guard case .string(let pair) = item, let colon = pair.firstIndex(of: ":"), colon != pair.startIndex,
                    pair.index(after: colon) != pair.endIndex
                else { throw reader.error("clients", "each client is \"id:secret\"") }
                clients.append(pair)
            }
        }
        try reader.readDuration(
            "token_lifetime",
            into: &tokenLifetime,
            in: .seconds(1) ... .seconds(365 * 86_400),
            hint: "e.g. \"1h\""
        )
        try reader.readDuration(
            "idempotency_key_lifetime",
            into: &idempotencyKeyLifetime,
            in: .zero ... .seconds(7 * 86_400),
            hint: "e.g. \"30m\", or \"0s\" to turn Idempotency-Key off"
        )
        try reader.readSize(
            "max_request_bytes",
            into: &maxRequestBytes,
            in: 1024...(1 << 30),
            hint: "a size from 1KiB to 1GiB"
        )
        try reader.readInteger("max_page_size", into: &maxPageSize, in: 1...10_000_000)
        if auth == .token && token.isEmpty { throw reader.error("token", "auth = \"token\" needs a token") }
        if auth == .oauth2 && clients.isEmpty && token.isEmpty {
            throw reader.error("clients", "auth = \"oauth2\" needs at least one \"id:secret\" client")
        }
    }
}

extension IcebergFrontEnd {
    static func isValidWarehouseName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 128
            && !["namespaces", "tables", "views", "transactions", "config", "oauth"]
                .contains(name)
            && name.unicodeScalars.allSatisfy {
                ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0)
                    || "-_.".unicodeScalars.contains($0)
            } && name != "." && name != ".."
    }
}
