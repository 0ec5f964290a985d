internal import Foundation
internal import StrataMVCC

extension IcebergCatalog {
    /// Namespaces one level below `parent` (the top level when empty), full paths.
    package func listNamespaces(
        _ warehouse: Warehouse,
        parent: [String],
        pageToken: String?,
        pageSize: Int?
    ) throws(IcebergError) -> (namespaces: [[String]], next: String?) {
        if !parent.isEmpty {
            try Self.validateNamespace(parent)
            guard try get(Self.namespaceKey(warehouse, parent)) != nil else { throw .noSuchNamespace(parent) }
        }
        let prefix = Self.namespaceChildrenPrefix(warehouse, parent)
        let page = try page(prefix: prefix, token: pageToken, size: pageSize) { kv in
            !kv.key.dropFirst(prefix.count).contains(0x1F)
        }
        let base = [Kind.namespace.rawValue] + Array(warehouse.name.utf8) + [0]
        let namespaces = page.keys.map { kv in
            kv.key.dropFirst(base.count).split(separator: 0x1F, omittingEmptySubsequences: false)
                .map { String(decoding: $0, as: UTF8.self) }
        }
        return (namespaces, page.nextToken)
    }

    package func createNamespace(
        _ warehouse: Warehouse,
        _ namespace: [String],
        properties: [String: String]
    ) async throws(IcebergError) -> [String: String] {
        try Self.validateNamespace(namespace)
        if let location = properties["location"] { _ = try files.path(of: location) }
        let value = try Self.encodeProperties(properties)
        let key = Self.namespaceKey(warehouse, namespace)
        let parentKey = namespace.count > 1 ? Self.namespaceKey(warehouse, Array(namespace.dropLast())) : nil
        try await update { (txn: inout WriteTransaction) throws(MVCCError) in
            if try txn.get(key, valueNeeded: false) != nil {
                throw IcebergError.alreadyExists("Namespace already exists: \(namespace.joined(separator: "."))")
                    .rejection
            }
            if let parentKey, try txn.get(parentKey, valueNeeded: false) == nil {
                throw IcebergError.noSuchNamespace(Array(namespace.dropLast())).rejection
            }
            try txn.put(key, value)
        }
        return properties
    }

    package func loadNamespace(_ warehouse: Warehouse, _ namespace: [String]) throws(IcebergError) -> [String: String] {
        try Self.validateNamespace(namespace)
        guard let kv = try get(Self.namespaceKey(warehouse, namespace)) else { throw .noSuchNamespace(namespace) }
        return Self.decodeProperties(kv.value)
    }

    package func namespaceExists(_ warehouse: Warehouse, _ namespace: [String]) throws(IcebergError) -> Bool {
        try Self.validateNamespace(namespace)
        return try get(Self.namespaceKey(warehouse, namespace)) != nil
    }

    /// Drops an empty namespace: no tables, views or child namespaces (409 otherwise).
    package func dropNamespace(_ warehouse: Warehouse, _ namespace: [String]) async throws(IcebergError) {
        try Self.validateNamespace(namespace)
        let key = Self.namespaceKey(warehouse, namespace)
        let contents = [
            Self.objectPrefix(.table, warehouse, namespace), Self.objectPrefix(.view, warehouse, namespace),
            Self.namespaceChildrenPrefix(warehouse, namespace),
        ]
        try await update { (txn: inout WriteTransaction) throws(MVCCError) in
            guard try txn.get(key, valueNeeded: false) != nil else {
                throw IcebergError.noSuchNamespace(namespace).rejection
            }
            for prefix in contents
            where try !txn.range(.prefix(prefix), RangeOptions(limit: 1, keysOnly: true)).kvs
                .isEmpty
            {
                throw IcebergError.namespaceNotEmpty(namespace).rejection
            }
            try txn.delete(key)
        }
    }

    /// Sets and removes properties; answers which keys were updated, removed, and asked to be removed but absent.
    package func updateNamespaceProperties(
        _ warehouse: Warehouse,
        _ namespace: [String],
        removals: [String],
        updates: [String: String]
    ) async throws(IcebergError) -> (updated: [String], removed: [String], missing: [String]) {
        try Self.validateNamespace(namespace)
        let both = Set(removals).intersection(updates.keys)
        guard both.isEmpty else {
            throw .unprocessable("keys both updated and removed: \(both.sorted().joined(separator: ", "))")
        }
        if let location = updates["location"] { _ = try files.path(of: location) }
        let key = Self.namespaceKey(warehouse, namespace)
        return try await update { (txn: inout WriteTransaction) throws(MVCCError) in
            guard let kv = try txn.get(key) else { throw IcebergError.noSuchNamespace(namespace).rejection }
            var properties = Self.decodeProperties(kv.value)
            var removed: [String] = []
            var missing: [String] = []
            for name in Set(removals).sorted() {
                if properties.removeValue(forKey: name) != nil { removed.append(name) } else { missing.append(name) }
            }
            for (name, value) in updates { properties[name] = value }
            let encoded: [UInt8]
            do throws(IcebergError) {
                encoded = try Self.encodeProperties(properties)
            } catch {
                throw error.rejection
            }
            try txn.put(key, encoded)
            return (updates.keys.sorted(), removed, missing)
        }
    }

    static func encodeProperties(_ properties: [String: String]) throws(IcebergError) -> [UInt8] {
        do {
            return Array(try IcebergJSON.encode(properties))
        } catch {
            throw .badRequest("properties: \(error)")
        }
    }

    static func decodeProperties(_ bytes: [UInt8]) -> [String: String] {
        (try? IcebergJSON.decode([String: String].self, from: Data(bytes))) ?? [:]
    }
}
