internal import Foundation
internal import Hummingbird
internal import StrataCommon
internal import StrataMVCC

/// The REST catalog's HTTP surface: routes every spec path (with or without a warehouse prefix) to the catalog,
/// checks auth, replays idempotent mutations, and answers every failure with the spec's error body.
struct IcebergHTTP: Sendable {
    let catalog: IcebergCatalog
    let configuration: IcebergFrontEnd.Configuration
    let auth: IcebergAuth
    let idempotency: IcebergIdempotency
    let metrics: IcebergMetrics

    /// A response before it becomes Hummingbird's.
    struct Reply {
        var status: Int
        var body: Data
        var etag: String? = nil

        static func json(_ status: Int, _ body: Data) -> Reply { Reply(status: status, body: body) }
        static func empty(_ status: Int) -> Reply { Reply(status: status, body: Data()) }
        static func error(_ error: IcebergError) -> Reply {
            Reply(status: error.code, body: IcebergHTTP.errorBody(error))
        }
    }

    static func errorBody(_ error: IcebergError) -> Data {
        struct Body: Encodable {
            struct Model: Encodable {
                let message: String
                let type: String
                let code: Int
            }
            let error: Model
        }
        let body = Body(error: .init(message: error.message, type: error.type, code: error.code))
        return (try? IcebergJSON.encode(body))
            ?? Data(#"{"error":{"message":"error","type":"\#(error.type)","code":\#(error.code)}}"#.utf8)
    }

    static func encode<T: Encodable>(_ value: T) -> Data {
        (try? IcebergJSON.encode(value)) ?? Data("{}".utf8)
    }

    // MARK: Entry

    func respond(to request: Request) async -> Response {
        var request = request
        let path = request.uri.path
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map {
            String($0).removingPercentEncoding ?? String($0)
        }
        let query = Self.parseQuery(request.uri.query ?? "")
        var route = "unmatched"
        let reply: Reply
        do {
            reply = try await dispatch(&request, segments: segments, query: query, route: &route)
        } catch {
            reply = .error(error)
        }
        metrics.request(route: route, status: reply.status)
        return makeResponse(reply, head: request.method == .head)
    }

    func makeResponse(_ reply: Reply, head: Bool) -> Response {
        var fields = HTTPFields()
        if !reply.body.isEmpty { fields[.contentType] = "application/json" }
        if let etag = reply.etag { fields[.eTag] = etag }
        let status = HTTPResponse.Status(code: reply.status)
        if reply.status == 204 || reply.status == 304 || head {
            return Response(status: status, headers: fields, body: .init())
        }
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: reply.body)))
    }

    static func parseQuery(_ query: String) -> [String: String] {
        var result: [String: String] = [:]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                let spaced = text.replacingOccurrences(of: "+", with: " ")
                return spaced.removingPercentEncoding ?? spaced
            }
            let name = decode(parts[0])
            result[name] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return result
    }

    // MARK: Routing

    static let keywords: Set<String> = ["namespaces", "tables", "views", "transactions"]

    func dispatch(
        _ request: inout Request,
        segments: [String],
        query: [String: String],
        route: inout String
    ) async throws(IcebergError) -> Reply {
        let method = request.method
        guard segments.first == "v1" else { throw .notFound("no route for \(request.uri.path)") }
        var rest = Array(segments.dropFirst())
        if rest == ["oauth", "tokens"] {
            route = "POST /v1/oauth/tokens"
            guard method == .post else { throw methodNotAllowed(method) }
            return try await issueToken(&request)
        }
        switch auth.check(authorization: request.headers[.authorization]) {
        case .allowed: break
        case .missing: throw .notAuthorized("Authorization: Bearer <token> is required")
        case .invalid: throw .notAuthorized("the bearer token is not valid")
        case .expired: throw .authenticationTimeout("the bearer token has expired; get a new one")
        }
        if rest == ["config"] {
            route = "GET /v1/config"
            guard method == .get else { throw methodNotAllowed(method) }
            return try config(query)
        }
        var warehouse = catalog.warehouse(named: "")!
        if rest.count >= 2, !Self.keywords.contains(rest[0]) || Self.keywords.contains(rest[1]) {
            guard let named = catalog.warehouse(named: rest[0]), !rest[0].isEmpty else {
                throw .noSuchWarehouse(rest[0])
            }
            warehouse = named
            rest.removeFirst()
        }
        let template = Self.template(rest)
        // Metrics label only the spec's routes, so random paths cannot grow the number of series.
        let spelled = "\(method.rawValue) /v1/{prefix}/\(template)"
        route = Self.labelledRoutes.contains(spelled) ? spelled : "other"
        let mutation = method == .post || method == .delete
        guard mutation, idempotency.enabled,
            let key = request.headers.first(where: { $0.name.canonicalName == "idempotency-key" })?.value,
            !template.hasSuffix("/metrics")
        else {
            return try await handle(&request, warehouse, rest, template, query)
        }
        guard !key.isEmpty, key.utf8.count <= 128 else { throw .badRequest("Idempotency-Key must be 1 to 128 bytes") }
        var captured = request
        let replayed = await idempotency.run(key: key, request: "\(method.rawValue) \(request.uri.path)") {
            do throws(IcebergError) {
                let reply = try await handle(&captured, warehouse, rest, template, query)
                return (reply.status, reply.body, reply.etag)
            } catch {
                return (error.code, Self.errorBody(error), nil)
            }
        }
        return Reply(status: replayed.status, body: replayed.body, etag: replayed.etag)
    }

    /// The spec's path template of `rest` (metrics labels, and the endpoints list's spelling).
    static func template(_ rest: [String]) -> String {
        let names = ["namespaces", "{namespace}", "", "{table}", ""]
        guard rest.first == "namespaces" else { return rest.joined(separator: "/") }
        var parts: [String] = []
        for (index, part) in rest.enumerated() {
            switch index {
            case 1: parts.append(names[1])
            case 3:
                parts.append(rest[2] == "views" ? "{view}" : rest[2] == "functions" ? "{function}" : "{table}")
            case 5 where rest[4] == "plan": parts.append("{plan-id}")
            default: parts.append(index < names.count && !names[index].isEmpty && index != 2 ? names[index] : part)
            }
        }
        return parts.joined(separator: "/")
    }

    func methodNotAllowed(_ method: HTTPRequest.Method) -> IcebergError {
        IcebergError(405, "MethodNotAllowedException", "method \(method.rawValue) is not allowed on this route")
    }

    func namespace(_ text: String) throws(IcebergError) -> [String] {
        let levels = text.split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init)
        try IcebergCatalog.validateNamespace(levels)
        return levels
    }

    func body<T: Decodable>(_ request: inout Request, as type: T.Type) async throws(IcebergError) -> T {
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: configuration.maxRequestBytes)
        } catch {
            throw IcebergError(
                413,
                "BadRequestException",
                "request body larger than \(configuration.maxRequestBytes) bytes"
            )
        }
        let data = Data(buffer.readableBytesView)
        guard !data.isEmpty else { throw .badRequest("a JSON request body is required") }
        do {
            return try IcebergJSON.decode(type, from: data)
        } catch let error as UnknownTypeError {
            throw .badRequest(error.description)
        } catch let error as IcebergError {
            throw error
        } catch {
            throw .badRequest("invalid request body: \(IcebergJSON.describe(error))")
        }
    }

    func pageSize(_ query: [String: String]) throws(IcebergError) -> Int? {
        guard let text = query["pageSize"], !text.isEmpty else { return nil }
        guard let size = Int(text), size > 0 else { throw .badRequest("pageSize must be a positive integer") }
        return size
    }

    func handle(
        _ request: inout Request,
        _ warehouse: Warehouse,
        _ rest: [String],
        _ template: String,
        _ query: [String: String]
    ) async throws(IcebergError) -> Reply {
        let method = request.method
        if rest.first == "namespaces", rest.count >= 3, rest[2] == "functions" {
            throw .unsupported("this catalog does not offer functions")
        }
        switch rest.count {
        case 1 where rest[0] == "namespaces":
            if method == .get { return try listNamespaces(warehouse, query) }
            if method == .post { return try await createNamespace(&request, warehouse) }
        case 2 where rest[0] == "namespaces":
            let ns = try namespace(rest[1])
            if method == .get {
                let properties = try catalog.loadNamespace(warehouse, ns)
                return .json(200, Self.encode(NamespaceResponse(namespace: ns, properties: properties)))
            }
            if method == .head { return .empty(try catalog.namespaceExists(warehouse, ns) ? 204 : 404) }
            if method == .delete {
                try await catalog.dropNamespace(warehouse, ns)
                return .empty(204)
            }
        case 2 where rest == ["tables", "rename"] || rest == ["views", "rename"]:
            guard method == .post else { throw methodNotAllowed(method) }
            let rename = try await body(&request, as: RenameTableRequest.self)
            try await catalog.rename(
                rest[0] == "tables" ? .table : .view,
                warehouse,
                from: rename.source,
                to: rename.destination
            )
            return .empty(204)
        case 2 where rest == ["transactions", "commit"]:
            guard method == .post else { throw methodNotAllowed(method) }
            let transaction = try await body(&request, as: CommitTransactionRequest.self)
            try await timedCommit { () async throws(IcebergError) in
                try await catalog.commitTransaction(warehouse, transaction)
            }
            return .empty(204)
        case 3 where rest[0] == "namespaces":
            let ns = try namespace(rest[1])
            switch (rest[2], method) {
            case ("properties", .post):
                let update = try await body(&request, as: UpdateNamespacePropertiesRequest.self)
                let result = try await catalog.updateNamespaceProperties(
                    warehouse,
                    ns,
                    removals: update.removals ?? [],
                    updates: update.updates ?? [:]
                )
                return .json(
                    200,
                    Self.encode(["updated": result.updated, "removed": result.removed, "missing": result.missing])
                )
            case ("tables", .get), ("views", .get):
                let kind: IcebergCatalog.Kind = rest[2] == "tables" ? .table : .view
                let page = try catalog.listTables(
                    warehouse,
                    ns,
                    pageToken: query["pageToken"],
                    pageSize: try pageSize(query),
                    kind: kind
                )
                return .json(
                    200,
                    Self.encode(ListTablesResponse(identifiers: page.identifiers, nextPageToken: page.next))
                )
            case ("tables", .post):
                let create = try await body(&request, as: CreateTableRequest.self)
                let created = try await catalog.createTable(warehouse, ns, create)
                return loadResult(location: created.metadataLocation, metadata: created.metadata)
            case ("views", .post):
                let create = try await body(&request, as: CreateViewRequest.self)
                let pointer = try await catalog.createView(warehouse, ns, create)
                return loadResult(location: pointer.metadataLocation, metadata: pointer.metadata)
            case ("register", .post):
                let register = try await body(&request, as: RegisterTableRequest.self)
                let pointer = try await catalog.registerTable(warehouse, ns, register)
                return loadResult(location: pointer.metadataLocation, metadata: pointer.metadata)
            case ("register-view", .post):
                let register = try await body(&request, as: RegisterTableRequest.self)
                let pointer = try await catalog.registerView(warehouse, ns, register)
                return loadResult(location: pointer.metadataLocation, metadata: pointer.metadata)
            case ("tables", _), ("views", _), ("properties", _), ("register", _), ("register-view", _):
                throw methodNotAllowed(method)
            default:
                break
            }
        case 4 where rest[0] == "namespaces" && rest[2] == "tables":
            let identifier = TableIdentifier(namespace: try namespace(rest[1]), name: rest[3])
            switch method {
            case .get: return try loadTable(request, warehouse, identifier, query)
            case .head: return .empty(try catalog.tableExists(warehouse, identifier) ? 204 : 404)
            case .post:
                let commit = try await body(&request, as: CommitTableRequest.self)
                if let named = commit.identifier, named != identifier {
                    throw .badRequest("the body's identifier \(named) is not the path's \(identifier)")
                }
                let pointer = try await timedCommit { () async throws(IcebergError) in
                    try await catalog.commitTable(warehouse, identifier, commit)
                }
                return loadResult(location: pointer.metadataLocation, metadata: pointer.metadata, config: false)
            case .delete:
                let purge = try Self.flag(query["purgeRequested"], name: "purgeRequested")
                try await catalog.dropTable(warehouse, identifier, purge: purge)
                return .empty(204)
            default: throw methodNotAllowed(method)
            }
        case 4 where rest[0] == "namespaces" && rest[2] == "views":
            let identifier = TableIdentifier(namespace: try namespace(rest[1]), name: rest[3])
            switch method {
            case .get:
                let view = try catalog.loadView(warehouse, identifier)
                return loadResult(location: view.pointer.metadataLocation, metadata: view.pointer.metadata)
            case .head: return .empty(try catalog.viewExists(warehouse, identifier) ? 204 : 404)
            case .post:
                let commit = try await body(&request, as: CommitViewRequest.self)
                let pointer = try await timedCommit { () async throws(IcebergError) in
                    try await catalog.replaceView(warehouse, identifier, commit)
                }
                return loadResult(location: pointer.metadataLocation, metadata: pointer.metadata)
            case .delete:
                try await catalog.dropView(warehouse, identifier)
                return .empty(204)
            default: throw methodNotAllowed(method)
            }
        case 5 where rest[0] == "namespaces" && rest[2] == "tables":
            let identifier = TableIdentifier(namespace: try namespace(rest[1]), name: rest[3])
            switch (rest[4], method) {
            case ("metrics", .post):
                _ = try await body(&request, as: ReportMetricsRequest.self)
                _ = try catalog.loadTable(warehouse, identifier)
                metrics.reportReceived()
                return .empty(204)
            case ("credentials", .get):
                _ = try catalog.loadTable(warehouse, identifier)
                return .json(200, Data(#"{"storage-credentials":[]}"#.utf8))
            case ("plan", _), ("tasks", _), ("sign", _), ("unregister", _):
                throw .unsupported("this catalog does not offer \(rest[4]) (not advertised in /v1/config)")
            case ("metrics", _), ("credentials", _):
                throw methodNotAllowed(method)
            default:
                break
            }
        case 6 where rest[0] == "namespaces" && rest[2] == "tables" && rest[4] == "plan":
            throw .unsupported("this catalog does not offer server-side scan planning")
        default:
            break
        }
        if (1...5).contains(rest.count), rest.first == "namespaces" || rest.first == "tables" || rest.first == "views" {
            if Self.knownTemplates.contains(template) { throw methodNotAllowed(method) }
        }
        throw .notFound("no route for \(method.rawValue) \(request.uri.path)")
    }

    /// The routes metrics name: the advertised endpoints and the spec's routes this catalog answers with 406.
    static let labelledRoutes: Set<String> = Set(endpoints).union([
        "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/plan",
        "GET /v1/{prefix}/namespaces/{namespace}/tables/{table}/plan/{plan-id}",
        "DELETE /v1/{prefix}/namespaces/{namespace}/tables/{table}/plan/{plan-id}",
        "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/tasks",
        "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/sign",
        "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/unregister",
    ])

    static let knownTemplates: Set<String> = [
        "namespaces", "namespaces/{namespace}", "namespaces/{namespace}/properties", "namespaces/{namespace}/tables",
        "namespaces/{namespace}/views", "namespaces/{namespace}/tables/{table}", "namespaces/{namespace}/views/{view}",
    ]

    static func flag(_ text: String?, name: String) throws(IcebergError) -> Bool {
        guard let text, !text.isEmpty else { return false }
        switch text.lowercased() {
        case "true": return true
        case "false": return false
        default: throw .badRequest("\(name) must be true or false, not \(text)")
        }
    }

    func timedCommit<T>(_ body: () async throws(IcebergError) -> T) async throws(IcebergError) -> T {
        let started = ContinuousClock.now
        do {
            let result = try await body()
            metrics.commit(nanoseconds: (ContinuousClock.now - started).nanoseconds, conflicted: false)
            return result
        } catch {
            metrics.commit(nanoseconds: (ContinuousClock.now - started).nanoseconds, conflicted: error.code == 409)
            throw error
        }
    }

    // MARK: Responses

    struct NamespaceResponse: Encodable {
        let namespace: [String]
        let properties: [String: String]
    }

    struct ListTablesResponse: Encodable {
        let identifiers: [TableIdentifier]
        let nextPageToken: String?

        enum CodingKeys: String, CodingKey {
            case identifiers
            case nextPageToken = "next-page-token"
        }
    }

    struct ListNamespacesResponse: Encodable {
        let namespaces: [[String]]
        let nextPageToken: String?

        enum CodingKeys: String, CodingKey {
            case namespaces
            case nextPageToken = "next-page-token"
        }
    }

    /// `LoadTableResult` / `CommitTableResponse` / `LoadViewResult`, spliced around the stored metadata bytes.
    func loadResult(location: String?, metadata: Data, config: Bool = true) -> Reply {
        var body = Data(#"{"#.utf8)
        if config { body += Data(#""config":{},"#.utf8) }
        body += Data(#""metadata":"#.utf8) + metadata + Data(#","metadata-location":"#.utf8)
        body += location.map { Self.encode($0) } ?? Data("null".utf8)
        body += Data("}".utf8)
        var reply = Reply.json(200, body)
        reply.etag = location.map(Self.etag)
        return reply
    }

    static func etag(_ location: String) -> String {
        let digest = SHA256.hash(Array(location.utf8)).prefix(16)
        return "\"" + digest.map { String(format: "%02x", $0) }.joined() + "\""
    }

    func listNamespaces(_ warehouse: Warehouse, _ query: [String: String]) throws(IcebergError) -> Reply {
        var parent: [String] = []
        if let text = query["parent"], !text.isEmpty { parent = try namespace(text) }
        let page = try catalog.listNamespaces(
            warehouse,
            parent: parent,
            pageToken: query["pageToken"],
            pageSize: try pageSize(query)
        )
        return .json(200, Self.encode(ListNamespacesResponse(namespaces: page.namespaces, nextPageToken: page.next)))
    }

    func createNamespace(_ request: inout Request, _ warehouse: Warehouse) async throws(IcebergError) -> Reply {
        let create = try await body(&request, as: CreateNamespaceRequest.self)
        let properties = try await catalog.createNamespace(
            warehouse,
            create.namespace,
            properties: create.properties ?? [:]
        )
        return .json(200, Self.encode(NamespaceResponse(namespace: create.namespace, properties: properties)))
    }

    func loadTable(
        _ request: Request,
        _ warehouse: Warehouse,
        _ identifier: TableIdentifier,
        _ query: [String: String]
    ) throws(IcebergError) -> Reply {
        let snapshots = query["snapshots"]?.lowercased() ?? "all"
        guard snapshots == "all" || snapshots == "refs" else {
            throw .badRequest("snapshots must be all or refs, not \(snapshots)")
        }
        let table = try catalog.loadTable(warehouse, identifier)
        let etag = Self.etag(table.pointer.metadataLocation)
        if let match = request.headers[.ifNoneMatch] {
            let tags = match.split(separator: ",").map {
                let trimmed = $0.trimmingCharacters(in: .whitespaces)
                return trimmed.hasPrefix("W/") ? String(trimmed.dropFirst(2)) : trimmed
            }
            if tags.contains(etag) || tags.contains("*") {
                return Reply(status: 304, body: Data(), etag: etag)
            }
        }
        var metadata = table.pointer.metadata
        if snapshots == "refs" {
            var decoded = try IcebergCatalog.decodeTable(metadata)
            let referenced = Set((decoded.refs ?? [:]).values.map(\.snapshotID))
            decoded.snapshots = decoded.snapshots?.filter { referenced.contains($0.snapshotID) }
            metadata = try IcebergCatalog.encode(decoded)
        }
        return loadResult(location: table.pointer.metadataLocation, metadata: metadata)
    }

    // MARK: Config and tokens

    static let endpoints: [String] = [
        "GET /v1/{prefix}/namespaces", "POST /v1/{prefix}/namespaces", "GET /v1/{prefix}/namespaces/{namespace}",
        "HEAD /v1/{prefix}/namespaces/{namespace}", "DELETE /v1/{prefix}/namespaces/{namespace}",
        "POST /v1/{prefix}/namespaces/{namespace}/properties", "GET /v1/{prefix}/namespaces/{namespace}/tables",
        "POST /v1/{prefix}/namespaces/{namespace}/tables", "GET /v1/{prefix}/namespaces/{namespace}/tables/{table}",
        "HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}",
        "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}",
        "DELETE /v1/{prefix}/namespaces/{namespace}/tables/{table}",
        "POST /v1/{prefix}/namespaces/{namespace}/register",
        "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/metrics",
        "GET /v1/{prefix}/namespaces/{namespace}/tables/{table}/credentials", "POST /v1/{prefix}/tables/rename",
        "POST /v1/{prefix}/transactions/commit", "GET /v1/{prefix}/namespaces/{namespace}/views",
        "POST /v1/{prefix}/namespaces/{namespace}/views", "GET /v1/{prefix}/namespaces/{namespace}/views/{view}",
        "HEAD /v1/{prefix}/namespaces/{namespace}/views/{view}",
        "POST /v1/{prefix}/namespaces/{namespace}/views/{view}",
        "DELETE /v1/{prefix}/namespaces/{namespace}/views/{view}", "POST /v1/{prefix}/views/rename",
        "POST /v1/{prefix}/namespaces/{namespace}/register-view",
    ]

    func config(_ query: [String: String]) throws(IcebergError) -> Reply {
        let warehouse = try catalog.selectWarehouse(query["warehouse"])
        struct Config: Encodable {
            let defaults: [String: String]
            let overrides: [String: String]
            let endpoints: [String]
            let idempotencyKeyLifetime: String?

            enum CodingKeys: String, CodingKey {
                case defaults, overrides, endpoints
                case idempotencyKeyLifetime = "idempotency-key-lifetime"
            }
        }
        var overrides: [String: String] = [:]
        if !warehouse.name.isEmpty { overrides["prefix"] = warehouse.name }
        let defaults = ["view-endpoints-supported": "true"]
        let config = Config(
            defaults: defaults,
            overrides: overrides,
            endpoints: Self.endpoints,
            idempotencyKeyLifetime: idempotency.enabled ? idempotency.advertisedLifetime : nil
        )
        return .json(200, Self.encode(config))
    }

    func issueToken(_ request: inout Request) async throws(IcebergError) -> Reply {
        let buffer = (try? await request.collectBody(upTo: 64 * 1024)) ?? ByteBuffer()
        let form = Self.parseQuery(String(decoding: buffer.readableBytesView, as: UTF8.self))
        func oauthError(_ status: Int, _ code: String, _ description: String) -> Reply {
            .json(status, Self.encode(["error": code, "error_description": description]))
        }
        switch auth.issue(form: form, authorization: request.headers[.authorization]) {
        case .issued(let token, let expiresIn):
            struct TokenResponse: Encodable {
                let accessToken: String
                let tokenType = "bearer"
                let expiresIn: Int64
                let issuedTokenType = "urn:ietf:params:oauth:token-type:access_token"
                enum CodingKeys: String, CodingKey {
                    case accessToken = "access_token"
                    case tokenType = "token_type"
                    case expiresIn = "expires_in"
                    case issuedTokenType = "issued_token_type"
                }
            }
            return .json(200, Self.encode(TokenResponse(accessToken: token, expiresIn: expiresIn)))
        case .invalidClient:
            return oauthError(401, "invalid_client", "unknown client id or wrong secret")
        case .unsupportedGrant(let grant):
            return oauthError(
                400,
                "unsupported_grant_type",
                "grant_type \(grant) is not supported; use client_credentials"
            )
        case .invalidRequest(let message):
            return oauthError(400, "invalid_request", message)
        }
    }
}
