/// The typed part of a spec object: its known fields as a synthesized Codable struct whose `CodingKeys` carry the
/// spec's names (`format-version`, `current-snapshot-id`, …).
package protocol OpenFields: Codable, Sendable {
    associatedtype CodingKeys: CodingKey & CaseIterable
}

/// A spec object with typed access to its known fields (by dynamic member: `metadata.formatVersion`) and every
/// other field kept as written, so what a newer client adds survives the catalog's rewrite.
@dynamicMemberLookup
package struct Open<Fields: OpenFields>: Codable, Sendable {
    package var known: Fields
    package var additional: [String: JSONValue]

    package init(_ fields: Fields, additional: [String: JSONValue] = [:]) {
        self.known = fields
        self.additional = additional
    }

    package init(from decoder: any Decoder) throws {
        known = try Fields(from: decoder)
        // Only the fields the struct does not name are decoded a second time, as plain JSON.
        let container = try decoder.container(keyedBy: AnyCodingKey.self)
        var additional: [String: JSONValue] = [:]
        for key in container.allKeys where Fields.CodingKeys(stringValue: key.stringValue) == nil {
            additional[key.stringValue] = try container.decode(JSONValue.self, forKey: key)
        }
        self.additional = additional
    }

    package func encode(to encoder: any Encoder) throws {
        try known.encode(to: encoder)
        guard !additional.isEmpty else { return }
        var container = encoder.container(keyedBy: AnyCodingKey.self)
        for (key, value) in additional { try container.encode(value, forKey: AnyCodingKey(key)) }
    }

    package subscript<T>(dynamicMember keyPath: WritableKeyPath<Fields, T>) -> T {
        get { known[keyPath: keyPath] }
        set { known[keyPath: keyPath] = newValue }
    }
}

package struct AnyCodingKey: CodingKey {
    package var stringValue: String
    package var intValue: Int? { nil }
    package init(_ string: String) { stringValue = string }
    package init?(stringValue: String) { self.stringValue = stringValue }
    package init?(intValue: Int) { nil }
}
