/// redis.conf's `rename-command`: a command answers to its new name only, or to none (renamed to `""`), for every
/// client and for scripts, as Redis renames it in its command table.
package struct RedisCommandRenames: Sendable {
    /// New name → the command's own name.
    private let byNewName: [String: String]
    /// Names that no longer answer.
    private let hidden: Set<String>

    package var isEmpty: Bool { hidden.isEmpty }

    /// `renames`: each command's own name (lowercase) → its new name ("" to disable it).
    package init(_ renames: [String: String] = [:]) {
        var byNewName: [String: String] = [:]
        for (original, new) in renames where !new.isEmpty { byNewName[new.lowercased()] = original }
        self.byNewName = byNewName
        self.hidden = Set(renames.keys)
    }

    /// The command line with the command's own name, or nil when the name typed does not answer any more.
    package func resolve(_ arguments: [[UInt8]]) -> [[UInt8]]? {
        guard !hidden.isEmpty, let first = arguments.first else { return arguments }
        let name = String(decoding: first, as: UTF8.self).lowercased()
        if let original = byNewName[name] {
            var renamed = arguments
            renamed[0] = Array(original.utf8)
            return renamed
        }
        return hidden.contains(name) ? nil : arguments
    }
}
