internal import Foundation
package import StrataMVCC
internal import Synchronization

/// A warehouse: a local directory tables live under, selected by `?warehouse=` and addressed by URL prefix.
package struct Warehouse: Sendable, Hashable {
    /// The URL prefix (`/v1/<name>/…`); empty for the default warehouse.
    package let name: String
    /// Absolute directory, no trailing slash.
    package let root: String
    /// What `?warehouse=` may say to select it.
    package let aliases: Set<String>

    package init(name: String, root: String, aliases: Set<String>) {
        self.name = name
        self.root = root
        self.aliases = aliases
    }

    /// `file://` URI of the root.
    package var rootLocation: String { "file://" + root }
}

extension Keyspace {
    /// The Iceberg catalog: namespaces, table and view pointers, idempotency records; full history, so every
    /// catalog change is a revision a watch can follow (docs/storage-format.md).
    package static let iceberg = Keyspace(id: 3, name: "iceberg", history: .full)
}

/// The catalog over the shared core: every operation of the REST spec in catalog terms, with no HTTP in sight.
/// Pointer swaps are core transactions (the commit point); metadata files are written and fsynced before them.
package struct IcebergCatalog: Sendable {
    package let store: MVCCStore
    package let warehouses: [String: Warehouse]
    package let files: IcebergFiles
    package let maxPageSize: Int
    /// Decoded metadata of recent commits by file location, so the next commit on a table starts without parsing.
    let decoded = MetadataCache(capacity: 256)
    /// Commit attempts when another commit moved the pointer between read and swap (requirements re-checked each
    /// time).
    let commitAttempts = 8

    package init(store: MVCCStore, warehouses: [Warehouse], maxPageSize: Int = 100_000) {
        self.store = store
        self.warehouses = Dictionary(uniqueKeysWithValues: warehouses.map { ($0.name, $0) })
        self.files = IcebergFiles(store: store, roots: warehouses.map(\.root))
        self.maxPageSize = maxPageSize
    }

    package func warehouse(named name: String) -> Warehouse? { warehouses[name] }

    /// The warehouse `?warehouse=` selects (nil: the default one).
    package func selectWarehouse(_ requested: String?) throws(IcebergError) -> Warehouse {
        guard let requested, !requested.isEmpty else { return warehouses[""]! }
        if let match = warehouses.values.first(where: { $0.aliases.contains(requested) }) { return match }
        throw .noSuchWarehouse(requested)
    }

    var now: Int64 { store.wallMilliseconds }

    // MARK: Keys

    package enum Kind: UInt8, Sendable {
        case namespace = 0x4E  // N
        case table = 0x54  // T
        case view = 0x56  // V
        case idempotency = 0x49  // I
    }

    static func joined(_ namespace: [String]) -> [UInt8] {
        var bytes: [UInt8] = []
        for (index, level) in namespace.enumerated() {
            if index > 0 { bytes.append(0x1F) }
            bytes += Array(level.utf8)
        }
        return bytes
    }

    static func namespaceKey(_ warehouse: Warehouse, _ namespace: [String]) -> [UInt8] {
        [Kind.namespace.rawValue] + Array(warehouse.name.utf8) + [0] + joined(namespace)
    }

    /// Keys of the direct and deeper children of `parent` (all namespaces when it is empty).
    static func namespaceChildrenPrefix(_ warehouse: Warehouse, _ parent: [String]) -> [UInt8] {
        let base = [Kind.namespace.rawValue] + Array(warehouse.name.utf8) + [0]
        return parent.isEmpty ? base : base + joined(parent) + [0x1F]
    }

    static func objectPrefix(_ kind: Kind, _ warehouse: Warehouse, _ namespace: [String]) -> [UInt8] {
        [kind.rawValue] + Array(warehouse.name.utf8) + [0] + joined(namespace) + [0]
    }

    static func objectKey(_ kind: Kind, _ warehouse: Warehouse, _ identifier: TableIdentifier) -> [UInt8] {
        objectPrefix(kind, warehouse, identifier.namespace) + Array(identifier.name.utf8)
    }

    static func idempotencyKey(_ key: String) -> [UInt8] { [Kind.idempotency.rawValue] + Array(key.utf8) }

    // MARK: Names

    /// A namespace level or table/view name: non-empty, no control characters (the separator among them), and
    /// usable as a directory name.
    static func validateName(_ name: String, what: String) throws(IcebergError) {
        guard !name.isEmpty else { throw .badRequest("\(what) must not be empty") }
        guard name.utf8.count <= 1024 else { throw .badRequest("\(what) is longer than 1024 bytes") }
        guard name != "." && name != ".." else { throw .badRequest("\(what) must not be '\(name)'") }
        guard !name.contains("/") && !name.contains("\\") else {
            throw .badRequest("\(what) must not contain '/' or '\\': \(name)")
        }
        guard !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw .badRequest("\(what) must not contain control characters (0x1F is the namespace separator)")
        }
    }

    static func validateNamespace(_ namespace: [String]) throws(IcebergError) {
        guard !namespace.isEmpty else { throw .badRequest("namespace must not be empty") }
        guard namespace.count <= 64 else { throw .badRequest("namespace has more than 64 levels") }
        for level in namespace { try validateName(level, what: "namespace level") }
    }

    static func validateIdentifier(_ identifier: TableIdentifier) throws(IcebergError) {
        try validateNamespace(identifier.namespace)
        try validateName(identifier.name, what: "name")
    }

    // MARK: Paging

    struct Page {
        var keys: [KeyValue]
        var nextToken: String?
    }

    /// One page of the keys under `prefix` for which `include` holds, after `token`.
    func page(
        prefix: [UInt8],
        token: String?,
        size: Int?,
        include: (KeyValue) -> Bool = { _ in true }
    ) throws(IcebergError) -> Page {
        let limit = min(max(size ?? maxPageSize, 1), maxPageSize)
        var start = prefix
        if let token, !token.isEmpty {
            guard let after = Self.decodeToken(token), after.starts(with: prefix) else {
                throw .badRequest("invalid pageToken")
            }
            start = after + [0]
        }
        let end = KeyRange.prefixEnd(prefix)
        var found: [KeyValue] = []
        while true {
            let read: RangeRead
            do {
                read = try store.range(.iceberg, KeyRange(key: start, end: end), RangeOptions(limit: 1024))
            } catch {
                throw IcebergError.from(error)
            }
            for kv in read.kvs where include(kv) {
                if found.count == limit {
                    return Page(keys: found, nextToken: Self.encodeToken(found.last!.key))
                }
                found.append(kv)
            }
            guard read.more, let last = read.kvs.last else { break }
            start = last.key + [0]
        }
        return Page(keys: found, nextToken: nil)
    }

    static func encodeToken(_ key: [UInt8]) -> String {
        Data(key).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func decodeToken(_ token: String) -> [UInt8]? {
        var text = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.count % 4 != 0 { text += "=" }
        return Data(base64Encoded: text).map { Array($0) }
    }

    // MARK: Core calls

    func get(_ key: [UInt8]) throws(IcebergError) -> KeyValue? {
        do {
            return try store.get(.iceberg, key)
        } catch {
            throw IcebergError.from(error)
        }
    }

    func update<T: Sendable>(
        committing: Bool = false,
        _ body: (inout WriteTransaction) throws(MVCCError) -> T
    ) async throws(IcebergError) -> T {
        do {
            return try await store.update(.iceberg, body)
        } catch {
            throw IcebergError.from(error, committing: committing)
        }
    }

    /// Counts of the catalog's objects (metrics).
    package func counts() -> (namespaces: Int, tables: Int, views: Int) {
        func count(_ kind: Kind) -> Int {
            let range = KeyRange.prefix([kind.rawValue])
            return (try? store.range(.iceberg, range, RangeOptions(countOnly: true)).count) ?? 0
        }
        return (count(.namespace), count(.table), count(.view))
    }
}

/// A bounded map from metadata location to decoded table metadata (locations are unique, so entries never go stale).
final class MetadataCache: Sendable {
    private struct State {
        var entries: [String: TableMetadata] = [:]
        var order: [String] = []
    }
    private let state = Mutex(State())
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    subscript(location: String) -> TableMetadata? {
        state.withLock { $0.entries[location] }
    }

    func insert(_ metadata: TableMetadata, at location: String) {
        state.withLock { state in
            if state.entries.updateValue(metadata, forKey: location) == nil { state.order.append(location) }
            if state.order.count > capacity {
                let evicted = state.order.removeFirst()
                state.entries[evicted] = nil
            }
        }
    }
}
