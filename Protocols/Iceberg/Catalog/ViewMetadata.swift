/// View metadata as the spec's `ViewMetadata` spells it.
package typealias ViewMetadata = Open<ViewMetadataFields>
package typealias ViewVersion = Open<ViewVersionFields>

package struct ViewMetadataFields: OpenFields {
    package var viewUUID: String
    package var formatVersion: Int
    package var location: String
    package var currentVersionID: Int
    package var versions: [ViewVersion]
    package var versionLog: [ViewHistoryEntry]
    package var schemas: [Schema]
    package var properties: [String: String]?

    package enum CodingKeys: String, CodingKey, CaseIterable {
        case viewUUID = "view-uuid"
        case formatVersion = "format-version"
        case location
        case currentVersionID = "current-version-id"
        case versions
        case versionLog = "version-log"
        case schemas
        case properties
    }
}

package struct ViewVersionFields: OpenFields {
    package var versionID: Int
    package var timestampMs: Int64
    package var schemaID: Int
    package var summary: [String: String]
    package var representations: [JSONValue]
    package var defaultCatalog: String?
    package var defaultNamespace: [String]

    package enum CodingKeys: String, CodingKey, CaseIterable {
        case versionID = "version-id"
        case timestampMs = "timestamp-ms"
        case schemaID = "schema-id"
        case summary
        case representations
        case defaultCatalog = "default-catalog"
        case defaultNamespace = "default-namespace"
    }
}

extension Open where Fields == ViewVersionFields {
    /// Equal as a definition: same schema, representations, default catalog and namespace (ids and times aside).
    package func sameDefinition(as other: ViewVersion) -> Bool {
        known.schemaID == other.known.schemaID && known.representations == other.known.representations
            && known.defaultCatalog == other.known.defaultCatalog
            && known.defaultNamespace == other.known.defaultNamespace
    }
}

package struct ViewHistoryEntry: Codable, Sendable, Hashable {
    package var versionID: Int
    package var timestampMs: Int64

    package enum CodingKeys: String, CodingKey {
        case versionID = "version-id"
        case timestampMs = "timestamp-ms"
    }
}
