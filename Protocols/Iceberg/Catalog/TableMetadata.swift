/// Table metadata as the spec's `TableMetadata` (and the metadata.json files) spell it.
package typealias TableMetadata = Open<TableMetadataFields>
package typealias Schema = Open<SchemaFields>
package typealias PartitionSpec = Open<PartitionSpecFields>
package typealias PartitionField = Open<PartitionFieldFields>
package typealias SortOrder = Open<SortOrderFields>
package typealias Snapshot = Open<SnapshotFields>
package typealias SnapshotReference = Open<SnapshotReferenceFields>
package typealias StatisticsFile = Open<SnapshotKeyedFields>
package typealias EncryptedKey = Open<EncryptedKeyFields>

package struct TableMetadataFields: OpenFields {
    package var formatVersion: Int
    package var tableUUID: String
    package var location: String?
    package var lastUpdatedMs: Int64?
    package var nextRowID: Int64?
    package var properties: [String: String]?
    package var schemas: [Schema]?
    package var currentSchemaID: Int?
    package var lastColumnID: Int?
    package var partitionSpecs: [PartitionSpec]?
    package var defaultSpecID: Int?
    package var lastPartitionID: Int?
    package var sortOrders: [SortOrder]?
    package var defaultSortOrderID: Int?
    package var encryptionKeys: [EncryptedKey]?
    package var snapshots: [Snapshot]?
    package var refs: [String: SnapshotReference]?
    package var currentSnapshotID: Int64?
    package var lastSequenceNumber: Int64?
    package var snapshotLog: [SnapshotLogEntry]?
    package var metadataLog: [MetadataLogEntry]?
    package var statistics: [StatisticsFile]?
    package var partitionStatistics: [StatisticsFile]?
    /// Format v1 only: the current schema and the default spec's fields, beside the lists.
    package var schema: Schema?
    package var partitionSpec: [PartitionField]?

    package enum CodingKeys: String, CodingKey, CaseIterable {
        case formatVersion = "format-version"
        case tableUUID = "table-uuid"
        case location
        case lastUpdatedMs = "last-updated-ms"
        case nextRowID = "next-row-id"
        case properties
        case schemas
        case currentSchemaID = "current-schema-id"
        case lastColumnID = "last-column-id"
        case partitionSpecs = "partition-specs"
        case defaultSpecID = "default-spec-id"
        case lastPartitionID = "last-partition-id"
        case sortOrders = "sort-orders"
        case defaultSortOrderID = "default-sort-order-id"
        case encryptionKeys = "encryption-keys"
        case snapshots
        case refs
        case currentSnapshotID = "current-snapshot-id"
        case lastSequenceNumber = "last-sequence-number"
        case snapshotLog = "snapshot-log"
        case metadataLog = "metadata-log"
        case statistics
        case partitionStatistics = "partition-statistics"
        case schema
        case partitionSpec = "partition-spec"
    }
}

package struct SchemaFields: OpenFields {
    package var type: String?
    package var schemaID: Int?
    package var identifierFieldIDs: [Int]?
    package var fields: [JSONValue]

    package enum CodingKeys: String, CodingKey, CaseIterable {
        case type
        case schemaID = "schema-id"
        case identifierFieldIDs = "identifier-field-ids"
        case fields
    }
}

extension Open where Fields == SchemaFields {
    /// The highest field id anywhere in the schema (struct fields, list elements, map keys and values).
    package var highestFieldID: Int {
        func walk(_ value: JSONValue) -> Int {
            var highest = 0
            switch value {
            case .object(let object):
                for key in ["id", "element-id", "key-id", "value-id"] {
                    if let id = object[key]?.int { highest = max(highest, Int(id)) }
                }
                for (_, child) in object { highest = max(highest, walk(child)) }
            case .array(let items):
                for item in items { highest = max(highest, walk(item)) }
            default:
                break
            }
            return highest
        }
        return known.fields.map(walk).max() ?? 0
    }

    /// Equal as schemas: same fields and identifier fields, whatever the id.
    package func sameStructure(as other: Schema) -> Bool {
        known.fields == other.known.fields && (known.identifierFieldIDs ?? []) == (other.known.identifierFieldIDs ?? [])
    }
}

package struct PartitionSpecFields: OpenFields {
    package var specID: Int?
    package var fields: [PartitionField]

    package enum CodingKeys: String, CodingKey, CaseIterable {
        case specID = "spec-id"
        case fields
    }
}

package struct PartitionFieldFields: OpenFields {
    package var fieldID: Int?
    package var sourceID: Int?
    package var name: String
    package var transform: String

    package enum CodingKeys: String, CodingKey, CaseIterable {
        case fieldID = "field-id"
        case sourceID = "source-id"
        case name
        case transform
    }
}

package struct SortOrderFields: OpenFields {
    package var orderID: Int?
    package var fields: [JSONValue]

    package enum CodingKeys: String, CodingKey, CaseIterable {
        case orderID = "order-id"
        case fields
    }
}

package struct SnapshotFields: OpenFields {
    package var snapshotID: Int64
    package var parentSnapshotID: Int64?
    package var sequenceNumber: Int64?
    package var timestampMs: Int64
    package var manifestList: String?
    package var summary: [String: String]
    package var schemaID: Int?
    package var firstRowID: Int64?
    package var addedRows: Int64?

    package enum CodingKeys: String, CodingKey, CaseIterable {
        case snapshotID = "snapshot-id"
        case parentSnapshotID = "parent-snapshot-id"
        case sequenceNumber = "sequence-number"
        case timestampMs = "timestamp-ms"
        case manifestList = "manifest-list"
        case summary
        case schemaID = "schema-id"
        case firstRowID = "first-row-id"
        case addedRows = "added-rows"
    }
}

package struct SnapshotReferenceFields: OpenFields {
    package var type: String
    package var snapshotID: Int64
    package var maxRefAgeMs: Int64?
    package var maxSnapshotAgeMs: Int64?
    package var minSnapshotsToKeep: Int?

    package enum CodingKeys: String, CodingKey, CaseIterable {
        case type
        case snapshotID = "snapshot-id"
        case maxRefAgeMs = "max-ref-age-ms"
        case maxSnapshotAgeMs = "max-snapshot-age-ms"
        case minSnapshotsToKeep = "min-snapshots-to-keep"
    }
}

package struct SnapshotLogEntry: Codable, Sendable, Hashable {
    package var snapshotID: Int64
    package var timestampMs: Int64

    package enum CodingKeys: String, CodingKey {
        case snapshotID = "snapshot-id"
        case timestampMs = "timestamp-ms"
    }
}

package struct MetadataLogEntry: Codable, Sendable, Hashable {
    package var metadataFile: String
    package var timestampMs: Int64

    package enum CodingKeys: String, CodingKey {
        case metadataFile = "metadata-file"
        case timestampMs = "timestamp-ms"
    }
}

/// Statistics and partition-statistics files: keyed by their snapshot.
package struct SnapshotKeyedFields: OpenFields {
    package var snapshotID: Int64
    package var statisticsPath: String

    package enum CodingKeys: String, CodingKey, CaseIterable {
        case snapshotID = "snapshot-id"
        case statisticsPath = "statistics-path"
    }
}

package struct EncryptedKeyFields: OpenFields {
    package var keyID: String
    package var encryptedKeyMetadata: String

    package enum CodingKeys: String, CodingKey, CaseIterable {
        case keyID = "key-id"
        case encryptedKeyMetadata = "encrypted-key-metadata"
    }
}

extension Array where Element == Schema {
    /// Adds a schema (`add-schema`, for tables and views) unless one with the same structure is there: the id it
    /// has in the list (a new one is the highest so far plus one).
    mutating func addOrReuse(_ schema: Schema) -> Int? {
        if let existing = first(where: { $0.sameStructure(as: schema) }) { return existing.schemaID }
        var added = schema
        let id = (compactMap(\.schemaID).max() ?? -1) + 1
        added.schemaID = id
        append(added)
        return id
    }
}

extension Optional where Wrapped == [String: String] {
    /// `set-properties` and `remove-properties`, for tables and views.
    mutating func update(setting updates: [String: String] = [:], removing removals: [String] = []) {
        if self == nil && updates.isEmpty { return }
        var properties = self ?? [:]
        for (key, value) in updates { properties[key] = value }
        for key in removals { properties[key] = nil }
        self = properties
    }
}
