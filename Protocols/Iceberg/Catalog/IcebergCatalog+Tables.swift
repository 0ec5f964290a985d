package import Foundation
package import StrataMVCC

/// What a table or view identifier points at: its current metadata file and that file's contents, so a load is one
/// read and no file I/O.
package struct CatalogPointer: Sendable {
    package var metadataLocation: String
    package var metadata: Data

    package init(metadataLocation: String, metadata: Data) {
        self.metadataLocation = metadataLocation
        self.metadata = metadata
    }

    /// `1`, the location's length (4 bytes, big-endian), the location, the metadata JSON.
    var encoded: [UInt8] {
        let location = Array(metadataLocation.utf8)
        let count = UInt32(location.count)
        return [1, UInt8(count >> 24), UInt8((count >> 16) & 0xFF), UInt8((count >> 8) & 0xFF), UInt8(count & 0xFF)]
            + location + Array(metadata)
    }

    init?(decoding bytes: [UInt8]) {
        guard bytes.count >= 5, bytes[0] == 1 else { return nil }
        let count = Int(bytes[1]) << 24 | Int(bytes[2]) << 16 | Int(bytes[3]) << 8 | Int(bytes[4])
        guard bytes.count >= 5 + count else { return nil }
        metadataLocation = String(decoding: bytes[5..<(5 + count)], as: UTF8.self)
        metadata = Data(bytes[(5 + count)...])
    }
}

/// A loaded table: its pointer and the revision that last moved it.
package struct LoadedTable: Sendable {
    package var pointer: CatalogPointer
    package var modRevision: Revision
}

extension IcebergCatalog {
    // MARK: Reads

    package func listTables(
        _ warehouse: Warehouse,
        _ namespace: [String],
        pageToken: String?,
        pageSize: Int?,
        kind: Kind = .table
    ) throws(IcebergError) -> (identifiers: [TableIdentifier], next: String?) {
        try Self.validateNamespace(namespace)
        guard try get(Self.namespaceKey(warehouse, namespace)) != nil else { throw .noSuchNamespace(namespace) }
        let prefix = Self.objectPrefix(kind, warehouse, namespace)
        let page = try page(prefix: prefix, token: pageToken, size: pageSize)
        let identifiers = page.keys.map {
            TableIdentifier(namespace: namespace, name: String(decoding: $0.key.dropFirst(prefix.count), as: UTF8.self))
        }
        return (identifiers, page.nextToken)
    }

    /// The table's pointer; 404 naming the namespace when that is what is missing.
    package func loadTable(_ warehouse: Warehouse, _ identifier: TableIdentifier) throws(IcebergError) -> LoadedTable {
        try load(.table, warehouse, identifier)
    }

    func load(_ kind: Kind, _ warehouse: Warehouse, _ identifier: TableIdentifier) throws(IcebergError) -> LoadedTable {
        try Self.validateIdentifier(identifier)
        guard let kv = try get(Self.objectKey(kind, warehouse, identifier)) else {
            throw try missing(kind, warehouse, identifier)
        }
        guard let pointer = CatalogPointer(decoding: kv.value) else {
            throw .server("the catalog entry of \(identifier) is unreadable")
        }
        return LoadedTable(pointer: pointer, modRevision: kv.modRevision)
    }

    /// The 404 for a missing table or view: NoSuchNamespace only if the namespace is what is missing — unless that
    /// "namespace" is itself a table (`db.t` of Spark's metadata table `db.t.snapshots`): Java's client falls back
    /// to loading `db.t` only after a NoSuchTableException.
    func missing(_ kind: Kind, _ warehouse: Warehouse, _ identifier: TableIdentifier) throws(IcebergError)
        -> IcebergError
    {
        let notFound: IcebergError = kind == .view ? .noSuchView(identifier) : .noSuchTable(identifier)
        guard try get(Self.namespaceKey(warehouse, identifier.namespace)) == nil else { return notFound }
        if identifier.namespace.count >= 2 {
            let base = TableIdentifier(
                namespace: Array(identifier.namespace.dropLast()),
                name: identifier.namespace.last!
            )
            if try get(Self.objectKey(.table, warehouse, base)) != nil { return notFound }
        }
        return .noSuchNamespace(identifier.namespace)
    }

    package func tableExists(_ warehouse: Warehouse, _ identifier: TableIdentifier) throws(IcebergError) -> Bool {
        try Self.validateIdentifier(identifier)
        return try get(Self.objectKey(.table, warehouse, identifier)) != nil
    }

    /// Where a new table or view goes: the namespace's `location` property, else `<warehouse>/<ns…>/<name>`.
    func defaultLocation(
        _ warehouse: Warehouse,
        _ identifier: TableIdentifier,
        properties: [String: String]
    ) -> String {
        if let location = properties["location"], !location.isEmpty {
            return (location.hasSuffix("/") ? String(location.dropLast()) : location) + "/" + identifier.name
        }
        return ([warehouse.rootLocation] + identifier.namespace + [identifier.name]).joined(separator: "/")
    }

    /// `NNNNN-<uuid>.metadata.json`, one version after the current file's.
    static func nextMetadataName(after location: String?) -> String {
        var version = 0
        if let location {
            let name = location.split(separator: "/").last ?? ""
            if let number = Int(name.prefix { $0.isNumber }) { version = number + 1 }
        }
        let digits = String(version)
        let padded = String(repeating: "0", count: max(0, 5 - digits.count)) + digits
        return "\(padded)-\(UUID().uuidString.lowercased()).metadata.json"
    }

    /// Table or view metadata as a file's bytes.
    static func encode<Metadata: Encodable>(_ metadata: Metadata) throws(IcebergError) -> Data {
        do {
            return try IcebergJSON.encode(metadata)
        } catch {
            throw .server("cannot encode metadata: \(error)")
        }
    }

    /// Table or view metadata from a file's bytes (a client's or a register's: 400 when it is not metadata).
    static func decode<Metadata: Decodable>(_ type: Metadata.Type, _ data: Data, what: String) throws(IcebergError)
        -> Metadata
    {
        do {
            return try IcebergJSON.decode(type, from: data)
        } catch {
            throw .badRequest("invalid \(what) metadata: \(IcebergJSON.describe(error))")
        }
    }

    static func decodeTable(_ data: Data) throws(IcebergError) -> TableMetadata {
        try decode(TableMetadata.self, data, what: "table")
    }

    // MARK: Create

    /// A create's result: the metadata and, unless staged, the file the new pointer names.
    package struct Created: Sendable {
        package var metadataLocation: String?
        package var metadata: Data
    }

    package func createTable(
        _ warehouse: Warehouse,
        _ namespace: [String],
        _ request: CreateTableRequest
    ) async throws(IcebergError) -> Created {
        let identifier = TableIdentifier(namespace: namespace, name: request.name)
        try Self.validateIdentifier(identifier)
        let namespaceProperties = try loadNamespace(warehouse, namespace)
        let key = Self.objectKey(.table, warehouse, identifier)
        guard try get(key) == nil, try get(Self.objectKey(.view, warehouse, identifier)) == nil else {
            throw .alreadyExists("Table already exists: \(identifier)")
        }
        var properties = request.properties ?? [:]
        let formatVersion = properties.removeValue(forKey: "format-version").map { Int($0) } ?? 2
        guard let formatVersion, (1...3).contains(formatVersion) else {
            throw .badRequest("format-version must be 1, 2 or 3")
        }
        let location = request.location ?? defaultLocation(warehouse, identifier, properties: namespaceProperties)
        _ = try files.path(of: location)
        var builder = TableMetadataBuilder(base: nil, now: now)
        var schema = request.schema
        schema.schemaID = 0
        let spec = request.partitionSpec ?? PartitionSpec(PartitionSpecFields(specID: 0, fields: []))
        let order = request.writeOrder ?? SortOrder(SortOrderFields(orderID: 0, fields: []))
        for update: TableUpdate in [
            .upgradeFormatVersion(formatVersion), .addSchema(schema, lastColumnID: nil), .setCurrentSchema(-1),
            .addSpec(spec), .setDefaultSpec(-1), .addSortOrder(order), .setDefaultSortOrder(-1),
            .setLocation(location), .setProperties(properties),
        ] {
            try builder.apply(update)
        }
        let metadata = try builder.finish(baseLocation: nil, defaultLocation: location).metadata
        let bytes = try Self.encode(metadata)
        try await files.prepareTableDirectories(location)
        if request.stageCreate == true { return Created(metadataLocation: nil, metadata: bytes) }
        let pointer = try await createPointer(.table, warehouse, identifier, location: location, metadata: bytes)
        return Created(metadataLocation: pointer.metadataLocation, metadata: bytes)
    }

    /// A new table's or view's first metadata file, written, then named by a new pointer; the file is removed
    /// when the name cannot be taken.
    func createPointer(
        _ kind: Kind,
        _ warehouse: Warehouse,
        _ identifier: TableIdentifier,
        location: String,
        metadata bytes: Data
    ) async throws(IcebergError) -> CatalogPointer {
        let file = try await files.writeMetadata(
            tableLocation: location,
            name: Self.nextMetadataName(after: nil),
            bytes: bytes
        )
        let pointer = CatalogPointer(metadataLocation: file, metadata: bytes)
        do {
            try await insert(kind, warehouse, identifier, pointer, overwrite: false)
        } catch {
            await files.delete([file])
            throw error
        }
        return pointer
    }

    /// Puts a new pointer where neither a table nor a view of that name exists (or over a table, `overwrite`).
    func insert(
        _ kind: Kind,
        _ warehouse: Warehouse,
        _ identifier: TableIdentifier,
        _ pointer: CatalogPointer,
        overwrite: Bool
    ) async throws(IcebergError) {
        let key = Self.objectKey(kind, warehouse, identifier)
        let other = Self.objectKey(kind == .table ? .view : .table, warehouse, identifier)
        let namespaceKey = Self.namespaceKey(warehouse, identifier.namespace)
        let value = pointer.encoded
        try await update { (txn: inout WriteTransaction) throws(MVCCError) in
            guard try txn.get(namespaceKey, valueNeeded: false) != nil else {
                throw IcebergError.noSuchNamespace(identifier.namespace).rejection
            }
            let what = kind == .table ? "Table" : "View"
            if try txn.get(other, valueNeeded: false) != nil {
                throw IcebergError.alreadyExists(
                    "\(kind == .table ? "View" : "Table") with the same name already exists: \(identifier)"
                ).rejection
            }
            if !overwrite, try txn.get(key, valueNeeded: false) != nil {
                throw IcebergError.alreadyExists("\(what) already exists: \(identifier)").rejection
            }
            try txn.put(key, value)
        }
    }

    package func registerTable(
        _ warehouse: Warehouse,
        _ namespace: [String],
        _ request: RegisterTableRequest
    ) async throws(IcebergError) -> CatalogPointer {
        let identifier = TableIdentifier(namespace: namespace, name: request.name)
        try Self.validateIdentifier(identifier)
        let bytes = try await files.read(request.metadataLocation, limit: 256 << 20)
        let metadata = try Self.decodeTable(bytes)
        if let location = metadata.location { _ = try files.path(of: location) }
        let pointer = CatalogPointer(
            metadataLocation: "file://" + (try files.path(of: request.metadataLocation)),
            metadata: bytes
        )
        try await insert(.table, warehouse, identifier, pointer, overwrite: request.overwrite ?? false)
        return pointer
    }

    // MARK: Commit

    /// One table's share of a commit, built against the pointer it read.
    struct PreparedCommit {
        var key: [UInt8]
        var identifier: TableIdentifier
        var readRevision: Revision?
        var creates: Bool
        var pointer: CatalogPointer?
        var metadata: TableMetadata?
        var expired: [String]
    }

    /// Checks the requirements against the current metadata, applies the updates and writes the new metadata file
    /// (nil pointer: nothing changed).
    func prepare(_ warehouse: Warehouse, _ identifier: TableIdentifier, _ request: CommitTableRequest)
        async throws(IcebergError) -> PreparedCommit
    {
        try Self.validateIdentifier(identifier)
        let key = Self.objectKey(.table, warehouse, identifier)
        let current: LoadedTable?
        if let kv = try get(key) {
            guard let pointer = CatalogPointer(decoding: kv.value) else {
                throw .server("the catalog entry of \(identifier) is unreadable")
            }
            current = LoadedTable(pointer: pointer, modRevision: kv.modRevision)
        } else {
            current = nil
        }
        let creates = request.requirements.contains(.assertCreate)
        if current == nil && !creates { throw try missing(.table, warehouse, identifier) }
        var base: TableMetadata? = nil
        if let current {
            if let cached = decoded[current.pointer.metadataLocation] {
                base = cached
            } else {
                base = try Self.decodeTable(current.pointer.metadata)
            }
        }
        for requirement in request.requirements { try TableMetadataBuilder.check(requirement, against: base) }
        var prepared = PreparedCommit(
            key: key,
            identifier: identifier,
            readRevision: current?.modRevision,
            creates: creates,
            pointer: nil,
            metadata: nil,
            expired: []
        )
        // Nothing to change: no new file, the table stays as it is (its current metadata is the answer).
        if request.updates.isEmpty, current != nil { return prepared }
        var namespaceProperties: [String: String] = [:]
        if creates { namespaceProperties = try loadNamespace(warehouse, identifier.namespace) }
        var builder = TableMetadataBuilder(base: base, now: now)
        for update in request.updates { try builder.apply(update) }
        let (metadata, expired) = try builder.finish(
            baseLocation: current?.pointer.metadataLocation,
            defaultLocation: defaultLocation(warehouse, identifier, properties: namespaceProperties)
        )
        let location = metadata.location ?? ""
        _ = try files.path(of: location)
        let bytes = try Self.encode(metadata)
        if creates { try await files.prepareTableDirectories(location) }
        let file = try await files.writeMetadata(
            tableLocation: location,
            name: Self.nextMetadataName(after: current?.pointer.metadataLocation),
            bytes: bytes
        )
        prepared.pointer = CatalogPointer(metadataLocation: file, metadata: bytes)
        prepared.metadata = metadata
        prepared.expired = expired
        return prepared
    }

    /// Swaps every prepared pointer in one core transaction if none moved since it was read; false if one did.
    func swap(_ warehouse: Warehouse, _ commits: [PreparedCommit]) async throws(IcebergError) -> Bool {
        try await update(committing: true) { (txn: inout WriteTransaction) throws(MVCCError) -> Bool in
            for commit in commits {
                let now = try txn.get(commit.key, valueNeeded: false)
                guard now?.modRevision == commit.readRevision else { return false }
            }
            for commit in commits {
                guard let pointer = commit.pointer else { continue }
                if commit.creates {
                    let namespaceKey = Self.namespaceKey(warehouse, commit.identifier.namespace)
                    guard try txn.get(namespaceKey, valueNeeded: false) != nil else {
                        throw IcebergError.noSuchNamespace(commit.identifier.namespace).rejection
                    }
                    if try txn.get(Self.objectKey(.view, warehouse, commit.identifier), valueNeeded: false) != nil {
                        throw IcebergError.alreadyExists("View with the same name already exists: \(commit.identifier)")
                            .rejection
                    }
                }
                try txn.put(commit.key, pointer.encoded)
            }
            return true
        }
    }

    /// Commits one table (`POST …/tables/{table}`): retried against the newest metadata while other commits move
    /// the pointer, failing with 409 as soon as a requirement does.
    package func commitTable(
        _ warehouse: Warehouse,
        _ identifier: TableIdentifier,
        _ request: CommitTableRequest
    ) async throws(IcebergError) -> CatalogPointer {
        try await commit(warehouse, [(identifier, request)])[0]
    }

    /// Commits several tables atomically (`POST /v1/transactions/commit`): every requirement of every table is
    /// checked, then all pointers swap in one core transaction — one revision, all or nothing.
    package func commitTransaction(
        _ warehouse: Warehouse,
        _ request: CommitTransactionRequest
    ) async throws(IcebergError) {
        var changes: [(TableIdentifier, CommitTableRequest)] = []
        for change in request.tableChanges {
            guard let identifier = change.identifier else {
                throw .badRequest("every table change of a transaction needs its identifier")
            }
            guard !changes.contains(where: { $0.0 == identifier }) else {
                throw .badRequest("table \(identifier) appears twice in one transaction")
            }
            changes.append((identifier, change))
        }
        guard !changes.isEmpty else { throw .badRequest("table-changes is empty") }
        _ = try await commit(warehouse, changes)
    }

    func commit(
        _ warehouse: Warehouse,
        _ changes: [(TableIdentifier, CommitTableRequest)]
    ) async throws(IcebergError) -> [CatalogPointer] {
        for _ in 0..<commitAttempts {
            var prepared: [PreparedCommit] = []
            do {
                for (identifier, request) in changes {
                    prepared.append(try await prepare(warehouse, identifier, request))
                }
            } catch {
                await files.delete(prepared.compactMap(\.pointer?.metadataLocation))
                throw error
            }
            let written = prepared.compactMap(\.pointer?.metadataLocation)
            let swapped: Bool
            do {
                swapped = try await swap(warehouse, prepared)
            } catch {
                if error.code < 500 { await files.delete(written) }
                throw error
            }
            guard swapped else {
                await files.delete(written)
                continue
            }
            for commit in prepared {
                if let pointer = commit.pointer, let metadata = commit.metadata {
                    decoded.insert(metadata, at: pointer.metadataLocation)
                }
            }
            await files.delete(prepared.flatMap(\.expired))
            var results: [CatalogPointer] = []
            for commit in prepared {
                if let pointer = commit.pointer {
                    results.append(pointer)
                } else {
                    results.append(try loadTable(warehouse, commit.identifier).pointer)
                }
            }
            return results
        }
        throw .commitFailed("too many concurrent commits to \(changes.map { "\($0.0)" }.joined(separator: ", "))")
    }

    // MARK: Drop and rename

    /// Drops the table; with `purge`, then deletes its files (``IcebergFiles/purge(tableLocation:named:manifestLists:)``).
    @discardableResult
    package func dropTable(_ warehouse: Warehouse, _ identifier: TableIdentifier, purge: Bool)
        async throws(IcebergError) -> IcebergFiles.PurgeReport?
    {
        let pointer = try await remove(.table, warehouse, identifier)
        guard purge, let metadata = try? Self.decodeTable(pointer.metadata), let location = metadata.location else {
            return nil
        }
        var named = [pointer.metadataLocation]
        named += (metadata.metadataLog ?? []).map(\.metadataFile)
        named += (metadata.statistics ?? []).map(\.statisticsPath)
        named += (metadata.partitionStatistics ?? []).map(\.statisticsPath)
        return await files.purge(
            tableLocation: location,
            named: named,
            manifestLists: (metadata.snapshots ?? []).compactMap(\.manifestList)
        )
    }

    func remove(_ kind: Kind, _ warehouse: Warehouse, _ identifier: TableIdentifier) async throws(IcebergError)
        -> CatalogPointer
    {
        try Self.validateIdentifier(identifier)
        let key = Self.objectKey(kind, warehouse, identifier)
        let namespaceKey = Self.namespaceKey(warehouse, identifier.namespace)
        let removed = try await update { (txn: inout WriteTransaction) throws(MVCCError) -> [UInt8] in
            guard let kv = try txn.get(key) else {
                if try txn.get(namespaceKey, valueNeeded: false) == nil {
                    throw IcebergError.noSuchNamespace(identifier.namespace).rejection
                }
                throw (kind == .view ? IcebergError.noSuchView(identifier) : .noSuchTable(identifier)).rejection
            }
            try txn.delete(key)
            return kv.value
        }
        guard let pointer = CatalogPointer(decoding: removed) else {
            throw .server("the catalog entry of \(identifier) was unreadable")
        }
        return pointer
    }

    package func rename(
        _ kind: Kind,
        _ warehouse: Warehouse,
        from source: TableIdentifier,
        to destination: TableIdentifier
    ) async throws(IcebergError) {
        try Self.validateIdentifier(source)
        try Self.validateIdentifier(destination)
        let sourceKey = Self.objectKey(kind, warehouse, source)
        let destinationKey = Self.objectKey(kind, warehouse, destination)
        let otherKey = Self.objectKey(kind == .table ? .view : .table, warehouse, destination)
        let sourceNamespace = Self.namespaceKey(warehouse, source.namespace)
        let destinationNamespace = Self.namespaceKey(warehouse, destination.namespace)
        try await update { (txn: inout WriteTransaction) throws(MVCCError) in
            guard let kv = try txn.get(sourceKey) else {
                if try txn.get(sourceNamespace, valueNeeded: false) == nil {
                    throw IcebergError.noSuchNamespace(source.namespace).rejection
                }
                throw (kind == .view ? IcebergError.noSuchView(source) : .noSuchTable(source)).rejection
            }
            guard try txn.get(destinationNamespace, valueNeeded: false) != nil else {
                throw IcebergError.noSuchNamespace(destination.namespace).rejection
            }
            if sourceKey == destinationKey { return }
            let taken = try txn.get(destinationKey, valueNeeded: false)
            let takenByOther = try txn.get(otherKey, valueNeeded: false)
            if taken != nil || takenByOther != nil {
                throw IcebergError.alreadyExists("Table or view already exists: \(destination)").rejection
            }
            try txn.delete(sourceKey)
            try txn.put(destinationKey, kv.value)
        }
    }
}
