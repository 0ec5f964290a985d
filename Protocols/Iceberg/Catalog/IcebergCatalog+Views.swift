internal import Foundation
internal import StrataMVCC

/// Applies view updates as Iceberg's ViewMetadata builder does: identical schemas and versions are reused, `-1`
/// means the one added in this commit, the version log follows the current version, and old versions beyond
/// `version.history.num-entries` are dropped.
package struct ViewMetadataBuilder {
    package private(set) var metadata: ViewMetadata
    let creating: Bool
    let now: Int64
    private var lastAddedSchemaID: Int?
    private var lastAddedVersionID: Int?

    init(base: ViewMetadata?, location: String, now: Int64) {
        creating = base == nil
        self.now = now
        metadata =
            base
            ?? ViewMetadata(
                ViewMetadataFields(
                    viewUUID: UUID().uuidString.lowercased(),
                    formatVersion: 1,
                    location: location,
                    currentVersionID: -1,
                    versions: [],
                    versionLog: [],
                    schemas: [],
                    properties: [:]
                )
            )
    }

    mutating func apply(_ update: ViewUpdate) throws(IcebergError) {
        switch update {
        case .assignUUID(let uuid):
            guard creating || uuid.lowercased() == metadata.viewUUID.lowercased() else {
                throw .badRequest("cannot reassign the uuid of an existing view (\(metadata.viewUUID))")
            }
            metadata.viewUUID = uuid
        case .upgradeFormatVersion(let version):
            guard version == 1 else { throw .badRequest("unsupported view format-version \(version)") }
        case .addSchema(let schema):
            lastAddedSchemaID = metadata.schemas.addOrReuse(schema)
        case .setLocation(let location):
            guard !location.isEmpty else { throw .badRequest("set-location: empty location") }
            metadata.location = location
        case .setProperties(let updates):
            metadata.properties.update(setting: updates)
        case .removeProperties(let removals):
            metadata.properties.update(removing: removals)
        case .addViewVersion(var version):
            if version.schemaID == -1 {
                guard let lastAddedSchemaID else { throw .badRequest("add-view-version: no schema was added") }
                version.schemaID = lastAddedSchemaID
            }
            guard metadata.schemas.contains(where: { $0.schemaID == version.schemaID }) else {
                throw .badRequest("add-view-version: schema \(version.schemaID) does not exist")
            }
            var dialects: Set<String> = []
            for representation in version.representations {
                guard representation["type"]?.string == "sql", let sql = representation["sql"]?.string,
                    let dialect = representation["dialect"]?.string
                else { throw .badRequest("add-view-version: each representation needs type sql, sql and dialect") }
                _ = sql
                guard dialects.insert(dialect.lowercased()).inserted else {
                    throw .badRequest("add-view-version: more than one representation for dialect \(dialect)")
                }
            }
            if let existing = metadata.versions.first(where: { $0.sameDefinition(as: version) }) {
                lastAddedVersionID = existing.versionID
            } else {
                let id = (metadata.versions.map(\.versionID).max() ?? 0) + 1
                version.versionID = id
                metadata.versions.append(version)
                lastAddedVersionID = id
            }
        case .setCurrentViewVersion(let requested):
            var id = requested
            if id == -1 {
                guard let lastAddedVersionID else { throw .badRequest("set-current-view-version: none was added") }
                id = lastAddedVersionID
            }
            guard let version = metadata.versions.first(where: { $0.versionID == id }) else {
                throw .badRequest("set-current-view-version: version \(id) does not exist")
            }
            if metadata.currentVersionID != id {
                metadata.currentVersionID = id
                metadata.versionLog.append(ViewHistoryEntry(versionID: id, timestampMs: version.timestampMs))
            }
        }
    }

    mutating func finish() throws(IcebergError) -> ViewMetadata {
        guard metadata.versions.contains(where: { $0.versionID == metadata.currentVersionID }) else {
            throw .badRequest("the view has no current version")
        }
        let keep = max(Int(metadata.properties?["version.history.num-entries"] ?? "") ?? 10, 1)
        if metadata.versions.count > keep {
            let current = metadata.currentVersionID
            var versions = metadata.versions
            while versions.count > keep, let index = versions.firstIndex(where: { $0.versionID != current }) {
                versions.remove(at: index)
            }
            metadata.versions = versions
            let live = Set(versions.map(\.versionID))
            if let lastGone = metadata.versionLog.lastIndex(where: { !live.contains($0.versionID) }) {
                metadata.versionLog = Array(metadata.versionLog[(lastGone + 1)...])
            }
        }
        return metadata
    }
}

extension IcebergCatalog {
    package func listViews(
        _ warehouse: Warehouse,
        _ namespace: [String],
        pageToken: String?,
        pageSize: Int?
    ) throws(IcebergError) -> (identifiers: [TableIdentifier], next: String?) {
        try listTables(warehouse, namespace, pageToken: pageToken, pageSize: pageSize, kind: .view)
    }

    package func loadView(_ warehouse: Warehouse, _ identifier: TableIdentifier) throws(IcebergError) -> LoadedTable {
        try load(.view, warehouse, identifier)
    }

    package func viewExists(_ warehouse: Warehouse, _ identifier: TableIdentifier) throws(IcebergError) -> Bool {
        try Self.validateIdentifier(identifier)
        return try get(Self.objectKey(.view, warehouse, identifier)) != nil
    }

    static func decodeView(_ data: Data) throws(IcebergError) -> ViewMetadata {
        try decode(ViewMetadata.self, data, what: "view")
    }

    package func createView(
        _ warehouse: Warehouse,
        _ namespace: [String],
        _ request: CreateViewRequest
    ) async throws(IcebergError) -> CatalogPointer {
        let identifier = TableIdentifier(namespace: namespace, name: request.name)
        try Self.validateIdentifier(identifier)
        let namespaceProperties = try loadNamespace(warehouse, namespace)
        guard try get(Self.objectKey(.view, warehouse, identifier)) == nil,
            try get(Self.objectKey(.table, warehouse, identifier)) == nil
        else { throw .alreadyExists("View already exists: \(identifier)") }
        let location = request.location ?? defaultLocation(warehouse, identifier, properties: namespaceProperties)
        _ = try files.path(of: location)
        var builder = ViewMetadataBuilder(base: nil, location: location, now: now)
        var version = request.viewVersion
        version.schemaID = -1
        for update: ViewUpdate in [
            .addSchema(request.schema), .setProperties(request.properties ?? [:]), .addViewVersion(version),
            .setCurrentViewVersion(-1),
        ] {
            try builder.apply(update)
        }
        let bytes = try Self.encode(try builder.finish())
        return try await createPointer(.view, warehouse, identifier, location: location, metadata: bytes)
    }

    /// Replaces a view (`POST …/views/{view}`): its one requirement kind, its updates, a new metadata file and the
    /// pointer swap, retried while other commits move the pointer.
    package func replaceView(
        _ warehouse: Warehouse,
        _ identifier: TableIdentifier,
        _ request: CommitViewRequest
    ) async throws(IcebergError) -> CatalogPointer {
        let key = Self.objectKey(.view, warehouse, identifier)
        for _ in 0..<commitAttempts {
            let current = try loadView(warehouse, identifier)
            let base = try Self.decodeView(current.pointer.metadata)
            for case .assertViewUUID(let uuid) in request.requirements
            where uuid.lowercased() != base.viewUUID.lowercased() {
                throw .commitFailed(
                    "Requirement failed: view UUID does not match: expected \(base.viewUUID) != \(uuid)"
                )
            }
            var builder = ViewMetadataBuilder(base: base, location: base.location, now: now)
            for update in request.updates { try builder.apply(update) }
            let metadata = try builder.finish()
            _ = try files.path(of: metadata.location)
            let bytes = try Self.encode(metadata)
            let file = try await files.writeMetadata(
                tableLocation: metadata.location,
                name: Self.nextMetadataName(after: current.pointer.metadataLocation),
                bytes: bytes
            )
            let pointer = CatalogPointer(metadataLocation: file, metadata: bytes)
            let read = current.modRevision
            let swapped: Bool
            do {
                swapped = try await update(committing: true) { (txn: inout WriteTransaction) throws(MVCCError) in
                    guard let now = try txn.get(key, valueNeeded: false) else {
                        throw IcebergError.noSuchView(identifier).rejection
                    }
                    guard now.modRevision == read else { return false }
                    try txn.put(key, pointer.encoded)
                    return true
                }
            } catch {
                if error.code < 500 { await files.delete([file]) }
                throw error
            }
            if swapped { return pointer }
            await files.delete([file])
        }
        throw .commitFailed("too many concurrent commits to view \(identifier)")
    }

    package func dropView(_ warehouse: Warehouse, _ identifier: TableIdentifier) async throws(IcebergError) {
        _ = try await remove(.view, warehouse, identifier)
    }

    package func registerView(
        _ warehouse: Warehouse,
        _ namespace: [String],
        _ request: RegisterTableRequest
    ) async throws(IcebergError) -> CatalogPointer {
        let identifier = TableIdentifier(namespace: namespace, name: request.name)
        try Self.validateIdentifier(identifier)
        let bytes = try await files.read(request.metadataLocation, limit: 64 << 20)
        let metadata = try Self.decodeView(bytes)
        _ = try files.path(of: metadata.location)
        let pointer = CatalogPointer(
            metadataLocation: "file://" + (try files.path(of: request.metadataLocation)),
            metadata: bytes
        )
        try await insert(.view, warehouse, identifier, pointer, overwrite: request.overwrite ?? false)
        return pointer
    }
}
