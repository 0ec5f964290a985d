/// One value of the configuration file, as a subsystem's reader sees it (only StrataConfig knows the file is TOML).
package enum ConfigValue: Sendable, Hashable {
    case string(String)
    case integer(Int)
    case float(Double)
    case bool(Bool)
    case table(ConfigSection)
    case array([ConfigValue])
    /// A date or time: no key takes one.
    case other(String)

    /// How an error names what was written.
    var kind: String {
        switch self {
        case .string: "a string"
        case .integer: "an integer"
        case .float: "a number"
        case .bool: "true or false"
        case .table: "a table"
        case .array: "an array"
        case .other: "a date or time"
        }
    }
}

/// A `[section]` of the configuration file: its keys with the lines they are written on.
package struct ConfigSection: Sendable, Hashable {
    /// `["etcd"]`, or `["a", "b"]` for a nested table.
    package var path: [String]
    package var values: [String: ConfigValue]
    package var lines: [String: Int]
    /// Where the section starts (its header), if written.
    package var line: Int?

    package init(path: [String], values: [String: ConfigValue] = [:], lines: [String: Int] = [:], line: Int? = nil) {
        self.path = path
        self.values = values
        self.lines = lines
        self.line = line
    }

    package var name: String { path.joined(separator: ".") }
}
