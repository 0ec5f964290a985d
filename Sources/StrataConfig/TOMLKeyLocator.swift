/// Finds the line a TOML key is written on, for error messages. TOMLKit reports unknown keys and type errors by key
/// path only; this scans the text for `[table]` headers and `key = value` lines (dotted and quoted keys included).
struct TOMLKeyLocator {
    private var entries: [(path: [String], line: Int)] = []

    init(text: String) {
        var table: [String] = []
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.drop { $0 == " " || $0 == "\t" }
            if line.hasPrefix("#") || line.isEmpty { continue }
            if line.hasPrefix("[") {
                let isArray = line.hasPrefix("[[")
                let inner = line.dropFirst(isArray ? 2 : 1).prefix { $0 != "]" }
                table = Self.splitKey(inner)
                entries.append((table, lineNumber))
                continue
            }
            guard let equals = Self.indexOfEquals(in: line) else { continue }
            let key = Self.splitKey(line[..<equals])
            entries.append((table + key, lineNumber))
        }
    }

    /// The line of `path`, or of its closest written ancestor (a table header) when the key itself is absent.
    func line(of path: [String]) -> Int? {
        var prefix = path
        while !prefix.isEmpty {
            if let entry = entries.first(where: { $0.path == prefix }) { return entry.line }
            prefix.removeLast()
        }
        return nil
    }

    private static func indexOfEquals(in line: Substring) -> Substring.Index? {
        var quote: Character? = nil
        for index in line.indices {
            let c = line[index]
            if let q = quote {
                if c == q { quote = nil }
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c == "=" {
                return index
            }
        }
        return nil
    }

    private static func splitKey(_ key: Substring) -> [String] {
        var parts: [String] = []
        var current = ""
        var quote: Character? = nil
        for c in key {
            if let q = quote {
                if c == q { quote = nil } else { current.append(c) }
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c == "." {
                parts.append(current)
                current = ""
            } else if c != " " && c != "\t" {
                current.append(c)
            }
        }
        parts.append(current)
        return parts
    }
}
