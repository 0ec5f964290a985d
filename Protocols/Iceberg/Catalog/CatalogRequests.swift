/// Request bodies of the REST spec, with its field names.

package struct TableIdentifier: Codable, Sendable, Hashable, CustomStringConvertible {
    package var namespace: [String]
    package var name: String

    package init(namespace: [String], name: String) {
        self.namespace = namespace
        self.name = name
    }

    package var description: String { (namespace + [name]).joined(separator: ".") }
}

package struct CreateNamespaceRequest: Decodable, Sendable {
    package var namespace: [String]
    package var properties: [String: String]?
}

package struct UpdateNamespacePropertiesRequest: Decodable, Sendable {
    package var removals: [String]?
    package var updates: [String: String]?
}

package struct CreateTableRequest: Decodable, Sendable {
    package var name: String
    package var location: String?
    package var schema: Schema
    package var partitionSpec: PartitionSpec?
    package var writeOrder: SortOrder?
    package var stageCreate: Bool?
    package var properties: [String: String]?

    enum CodingKeys: String, CodingKey {
        case name, location, schema, properties
        case partitionSpec = "partition-spec"
        case writeOrder = "write-order"
        case stageCreate = "stage-create"
    }
}

package struct RegisterTableRequest: Decodable, Sendable {
    package var name: String
    package var metadataLocation: String
    package var overwrite: Bool?

    enum CodingKeys: String, CodingKey {
        case name, overwrite
        case metadataLocation = "metadata-location"
    }
}

package struct RenameTableRequest: Decodable, Sendable {
    package var source: TableIdentifier
    package var destination: TableIdentifier
}

package struct CommitTableRequest: Decodable, Sendable {
    package var identifier: TableIdentifier?
    package var requirements: [TableRequirement]
    package var updates: [TableUpdate]

    enum CodingKeys: String, CodingKey { case identifier, requirements, updates }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        identifier = try container.decodeIfPresent(TableIdentifier.self, forKey: .identifier)
        requirements = try container.decodeIfPresent([TableRequirement].self, forKey: .requirements) ?? []
        updates = try container.decode([TableUpdate].self, forKey: .updates)
    }
}

package struct CommitTransactionRequest: Decodable, Sendable {
    package var tableChanges: [CommitTableRequest]

    enum CodingKeys: String, CodingKey { case tableChanges = "table-changes" }
}

package struct CreateViewRequest: Decodable, Sendable {
    package var name: String
    package var location: String?
    package var schema: Schema
    package var viewVersion: ViewVersion
    package var properties: [String: String]?

    enum CodingKeys: String, CodingKey {
        case name, location, schema, properties
        case viewVersion = "view-version"
    }
}

package struct CommitViewRequest: Decodable, Sendable {
    package var identifier: TableIdentifier?
    package var requirements: [ViewRequirement]
    package var updates: [ViewUpdate]

    enum CodingKeys: String, CodingKey { case identifier, requirements, updates }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        identifier = try container.decodeIfPresent(TableIdentifier.self, forKey: .identifier)
        requirements = try container.decodeIfPresent([ViewRequirement].self, forKey: .requirements) ?? []
        updates = try container.decode([ViewUpdate].self, forKey: .updates)
    }
}

package struct ReportMetricsRequest: Decodable, Sendable {
    package var reportType: String
    package var tableName: String?

    enum CodingKeys: String, CodingKey {
        case reportType = "report-type"
        case tableName = "table-name"
    }
}

/// An unknown requirement type or update action: 400, as the spec demands.
package struct UnknownTypeError: Error, CustomStringConvertible {
    package let kind: String
    package let name: String
    package var description: String { "unknown \(kind) '\(name)'" }
}

private func field<T: Decodable>(_ decoder: any Decoder, _ name: String, _ type: T.Type) throws -> T {
    try decoder.container(keyedBy: AnyCodingKey.self).decode(type, forKey: AnyCodingKey(name))
}

private func optionalField<T: Decodable>(_ decoder: any Decoder, _ name: String, _ type: T.Type) throws -> T? {
    try decoder.container(keyedBy: AnyCodingKey.self).decodeIfPresent(type, forKey: AnyCodingKey(name))
}

/// The spec's eight `TableRequirement`s.
package enum TableRequirement: Decodable, Sendable, Hashable {
    case assertCreate
    case assertTableUUID(String)
    /// nil: the ref must not exist.
    case assertRefSnapshotID(ref: String, snapshotID: Int64?)
    case assertLastAssignedFieldID(Int)
    case assertCurrentSchemaID(Int)
    case assertLastAssignedPartitionID(Int)
    case assertDefaultSpecID(Int)
    case assertDefaultSortOrderID(Int)

    package init(from decoder: any Decoder) throws {
        let type = try field(decoder, "type", String.self)
        switch type {
        case "assert-create": self = .assertCreate
        case "assert-table-uuid": self = .assertTableUUID(try field(decoder, "uuid", String.self))
        case "assert-ref-snapshot-id":
            let container = try decoder.container(keyedBy: AnyCodingKey.self)
            guard container.contains(AnyCodingKey("snapshot-id")) else {
                throw DecodingError.keyNotFound(
                    AnyCodingKey("snapshot-id"),
                    .init(codingPath: decoder.codingPath, debugDescription: "assert-ref-snapshot-id needs snapshot-id")
                )
            }
            self = .assertRefSnapshotID(
                ref: try field(decoder, "ref", String.self),
                snapshotID: try optionalField(decoder, "snapshot-id", Int64.self)
            )
        case "assert-last-assigned-field-id":
            self = .assertLastAssignedFieldID(try field(decoder, "last-assigned-field-id", Int.self))
        case "assert-current-schema-id":
            self = .assertCurrentSchemaID(try field(decoder, "current-schema-id", Int.self))
        case "assert-last-assigned-partition-id":
            self = .assertLastAssignedPartitionID(try field(decoder, "last-assigned-partition-id", Int.self))
        case "assert-default-spec-id": self = .assertDefaultSpecID(try field(decoder, "default-spec-id", Int.self))
        case "assert-default-sort-order-id":
            self = .assertDefaultSortOrderID(try field(decoder, "default-sort-order-id", Int.self))
        default: throw UnknownTypeError(kind: "requirement type", name: type)
        }
    }
}

/// The spec's 23 `TableUpdate` actions.
package enum TableUpdate: Decodable, Sendable {
    case assignUUID(String)
    case upgradeFormatVersion(Int)
    case addSchema(Schema, lastColumnID: Int?)
    case setCurrentSchema(Int)
    case addSpec(PartitionSpec)
    case setDefaultSpec(Int)
    case addSortOrder(SortOrder)
    case setDefaultSortOrder(Int)
    case addSnapshot(Snapshot)
    case setSnapshotRef(name: String, SnapshotReference)
    case removeSnapshots([Int64])
    case removeSnapshotRef(String)
    case setLocation(String)
    case setProperties([String: String])
    case removeProperties([String])
    case setStatistics(StatisticsFile)
    case removeStatistics(Int64)
    case setPartitionStatistics(StatisticsFile)
    case removePartitionStatistics(Int64)
    case removePartitionSpecs([Int])
    case removeSchemas([Int])
    case addEncryptionKey(EncryptedKey)
    case removeEncryptionKey(String)

    package init(from decoder: any Decoder) throws {
        let action = try field(decoder, "action", String.self)
        switch action {
        case "assign-uuid": self = .assignUUID(try field(decoder, "uuid", String.self))
        case "upgrade-format-version": self = .upgradeFormatVersion(try field(decoder, "format-version", Int.self))
        case "add-schema":
            self = .addSchema(
                try field(decoder, "schema", Schema.self),
                lastColumnID: try optionalField(decoder, "last-column-id", Int.self)
            )
        case "set-current-schema": self = .setCurrentSchema(try field(decoder, "schema-id", Int.self))
        case "add-spec": self = .addSpec(try field(decoder, "spec", PartitionSpec.self))
        case "set-default-spec": self = .setDefaultSpec(try field(decoder, "spec-id", Int.self))
        case "add-sort-order": self = .addSortOrder(try field(decoder, "sort-order", SortOrder.self))
        case "set-default-sort-order": self = .setDefaultSortOrder(try field(decoder, "sort-order-id", Int.self))
        case "add-snapshot": self = .addSnapshot(try field(decoder, "snapshot", Snapshot.self))
        case "set-snapshot-ref":
            var reference = try SnapshotReference(from: decoder)
            reference.additional = reference.additional.filter { $0.key != "action" && $0.key != "ref-name" }
            self = .setSnapshotRef(name: try field(decoder, "ref-name", String.self), reference)
        case "remove-snapshots": self = .removeSnapshots(try field(decoder, "snapshot-ids", [Int64].self))
        case "remove-snapshot-ref": self = .removeSnapshotRef(try field(decoder, "ref-name", String.self))
        case "set-location": self = .setLocation(try field(decoder, "location", String.self))
        case "set-properties": self = .setProperties(try field(decoder, "updates", [String: String].self))
        case "remove-properties": self = .removeProperties(try field(decoder, "removals", [String].self))
        case "set-statistics": self = .setStatistics(try field(decoder, "statistics", StatisticsFile.self))
        case "remove-statistics": self = .removeStatistics(try field(decoder, "snapshot-id", Int64.self))
        case "set-partition-statistics":
            self = .setPartitionStatistics(try field(decoder, "partition-statistics", StatisticsFile.self))
        case "remove-partition-statistics":
            self = .removePartitionStatistics(try field(decoder, "snapshot-id", Int64.self))
        case "remove-partition-specs": self = .removePartitionSpecs(try field(decoder, "spec-ids", [Int].self))
        case "remove-schemas": self = .removeSchemas(try field(decoder, "schema-ids", [Int].self))
        case "add-encryption-key": self = .addEncryptionKey(try field(decoder, "encryption-key", EncryptedKey.self))
        case "remove-encryption-key": self = .removeEncryptionKey(try field(decoder, "key-id", String.self))
        default: throw UnknownTypeError(kind: "update action", name: action)
        }
    }
}

package enum ViewRequirement: Decodable, Sendable, Hashable {
    case assertViewUUID(String)

    package init(from decoder: any Decoder) throws {
        let type = try field(decoder, "type", String.self)
        guard type == "assert-view-uuid" else { throw UnknownTypeError(kind: "view requirement type", name: type) }
        self = .assertViewUUID(try field(decoder, "uuid", String.self))
    }
}

/// The spec's `ViewUpdate` actions.
package enum ViewUpdate: Decodable, Sendable {
    case assignUUID(String)
    case upgradeFormatVersion(Int)
    case addSchema(Schema)
    case setLocation(String)
    case setProperties([String: String])
    case removeProperties([String])
    case addViewVersion(ViewVersion)
    case setCurrentViewVersion(Int)

    package init(from decoder: any Decoder) throws {
        let action = try field(decoder, "action", String.self)
        switch action {
        case "assign-uuid": self = .assignUUID(try field(decoder, "uuid", String.self))
        case "upgrade-format-version": self = .upgradeFormatVersion(try field(decoder, "format-version", Int.self))
        case "add-schema": self = .addSchema(try field(decoder, "schema", Schema.self))
        case "set-location": self = .setLocation(try field(decoder, "location", String.self))
        case "set-properties": self = .setProperties(try field(decoder, "updates", [String: String].self))
        case "remove-properties": self = .removeProperties(try field(decoder, "removals", [String].self))
        case "add-view-version": self = .addViewVersion(try field(decoder, "view-version", ViewVersion.self))
        case "set-current-view-version":
            self = .setCurrentViewVersion(try field(decoder, "view-version-id", Int.self))
        default: throw UnknownTypeError(kind: "view update action", name: action)
        }
    }
}
