internal import Foundation
internal import StrataIceberg
internal import StrataMVCC
internal import StrataTestSupport
internal import Testing

/// The catalog on a real store, in process: requirement and update semantics, all-or-nothing transactions, racing
/// commits, files written and cleaned up, unknown metadata fields kept, bad names and locations refused.
@Suite("Iceberg catalog: commits, transactions and metadata")
struct IcebergCatalogTests {
    let fixture: StoreFixture
    let catalog: IcebergCatalog
    let warehouse: Warehouse
    let root: String

    init() throws {
        fixture = try StoreFixture(sync: .always, keyspaces: [.iceberg])
        root = fixture.directory.appending("warehouse")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        warehouse = Warehouse(name: "", root: root, aliases: [root])
        catalog = IcebergCatalog(store: fixture.store, warehouses: [warehouse])
    }

    static let schemaJSON = #"""
        {"type":"struct","schema-id":0,"fields":[{"id":1,"name":"id","required":false,"type":"long"},
        {"id":2,"name":"name","required":false,"type":"string"}]}
        """#

    func decode<T: Decodable>(_ type: T.Type, _ json: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(json.utf8))
    }

    func createTable(_ namespace: [String], _ name: String, properties: String = "{}") async throws -> TableMetadata {
        let request = try decode(
            CreateTableRequest.self,
            #"{"name":\#(String(decoding: try JSONEncoder().encode(name), as: UTF8.self)),"schema":\#(Self.schemaJSON),"#
                + #""properties":\#(properties)}"#
        )
        let created = try await catalog.createTable(warehouse, namespace, request)
        return try JSONDecoder().decode(TableMetadata.self, from: created.metadata)
    }

    func metadata(_ identifier: TableIdentifier) throws -> (TableMetadata, LoadedTable) {
        let loaded = try catalog.loadTable(warehouse, identifier)
        return (try JSONDecoder().decode(TableMetadata.self, from: loaded.pointer.metadata), loaded)
    }

    func appendRequest(parent: Int64?, id: Int64, sequence: Int64) throws -> CommitTableRequest {
        let parentJSON = parent.map { String($0) } ?? "null"
        return try decode(
            CommitTableRequest.self,
            #"""
            {"requirements":[{"type":"assert-ref-snapshot-id","ref":"main","snapshot-id":\#(parentJSON)}],
             "updates":[{"action":"add-snapshot","snapshot":{"snapshot-id":\#(id),"sequence-number":\#(sequence),
               "timestamp-ms":\#(1_700_000_000_000 + id),"manifest-list":"file://\#(root)/ns/t/metadata/snap-\#(id).avro",
               "summary":{"operation":"append"}\#(parent.map { #","parent-snapshot-id":\#($0)"# } ?? "")}},
              {"action":"set-snapshot-ref","ref-name":"main","type":"branch","snapshot-id":\#(id)}]}
            """#
        )
    }

    @Test func createWritesTheFirstMetadataFileAndDefaults() async throws {
        _ = try await catalog.createNamespace(warehouse, ["ns"], properties: [:])
        let created = try await createTable(["ns"], "t", properties: #"{"format-version":"1","k":"v"}"#)
        #expect(created.formatVersion == 1)
        #expect(created.location == "file://\(root)/ns/t")
        #expect(created.properties == ["k": "v"])
        #expect(created.lastColumnID == 2 && created.currentSchemaID == 0 && created.defaultSpecID == 0)
        #expect(created.lastPartitionID == 999 && created.currentSnapshotID == -1)
        #expect(created.schema?.schemaID == 0, "format v1 keeps the singular schema")
        let (_, loaded) = try metadata(TableIdentifier(namespace: ["ns"], name: "t"))
        #expect(loaded.pointer.metadataLocation.hasPrefix("file://\(root)/ns/t/metadata/00000-"))
        #expect(FileManager.default.fileExists(atPath: String(loaded.pointer.metadataLocation.dropFirst(7))))
        #expect(FileManager.default.fileExists(atPath: "\(root)/ns/t/data"))
    }

    @Test func appendsAdvanceLogsAndSequenceNumbers() async throws {
        _ = try await catalog.createNamespace(warehouse, ["ns"], properties: [:])
        _ = try await createTable(["ns"], "t")
        let table = TableIdentifier(namespace: ["ns"], name: "t")
        _ = try await catalog.commitTable(warehouse, table, appendRequest(parent: nil, id: 11, sequence: 1))
        let second = try await catalog.commitTable(warehouse, table, appendRequest(parent: 11, id: 12, sequence: 2))
        #expect(second.metadataLocation.contains("/metadata/00002-"))
        let (metadata, _) = try metadata(table)
        #expect(metadata.currentSnapshotID == 12 && metadata.lastSequenceNumber == 2)
        #expect(metadata.snapshotLog?.map(\.snapshotID) == [11, 12])
        #expect(metadata.metadataLog?.count == 2)
        #expect(metadata.refs?["main"]?.snapshotID == 12)
        // A stale parent is a failed requirement: 409, nothing written.
        await #expect(throws: IcebergError.self) {
            try await catalog.commitTable(warehouse, table, appendRequest(parent: 11, id: 13, sequence: 3))
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: "\(root)/ns/t/metadata")
        #expect(files.filter { $0.hasSuffix(".metadata.json") }.count == 3)
    }

    @Test func everyRequirementTypeIsChecked() async throws {
        _ = try await catalog.createNamespace(warehouse, ["ns"], properties: [:])
        _ = try await createTable(["ns"], "t")
        let table = TableIdentifier(namespace: ["ns"], name: "t")
        let failing = [
            #"{"type":"assert-create"}"#,
            #"{"type":"assert-table-uuid","uuid":"00000000-0000-0000-0000-000000000000"}"#,
            #"{"type":"assert-ref-snapshot-id","ref":"main","snapshot-id":5}"#,
            #"{"type":"assert-last-assigned-field-id","last-assigned-field-id":7}"#,
            #"{"type":"assert-current-schema-id","current-schema-id":3}"#,
            #"{"type":"assert-last-assigned-partition-id","last-assigned-partition-id":1000}"#,
            #"{"type":"assert-default-spec-id","default-spec-id":4}"#,
            #"{"type":"assert-default-sort-order-id","default-sort-order-id":2}"#,
        ]
        for requirement in failing {
            let request = try decode(
                CommitTableRequest.self,
                #"{"requirements":[\#(requirement)],"updates":[{"action":"set-properties","updates":{"a":"b"}}]}"#
            )
            do {
                _ = try await catalog.commitTable(warehouse, table, request)
                Issue.record("\(requirement) passed")
            } catch {
                #expect(error.code == 409 && error.type == "CommitFailedException", "\(requirement): \(error)")
            }
        }
        let passing = try decode(
            CommitTableRequest.self,
            #"""
            {"requirements":[{"type":"assert-ref-snapshot-id","ref":"main","snapshot-id":null},
              {"type":"assert-last-assigned-field-id","last-assigned-field-id":2},
              {"type":"assert-current-schema-id","current-schema-id":0},
              {"type":"assert-last-assigned-partition-id","last-assigned-partition-id":999},
              {"type":"assert-default-spec-id","default-spec-id":0},
              {"type":"assert-default-sort-order-id","default-sort-order-id":0}],
             "updates":[{"action":"set-properties","updates":{"a":"b"}}]}
            """#
        )
        _ = try await catalog.commitTable(warehouse, table, passing)
        #expect(try metadata(table).0.properties?["a"] == "b")
        let unknown = #"{"requirements":[{"type":"assert-nothing"}],"updates":[]}"#
        #expect(throws: UnknownTypeError.self) { try decode(CommitTableRequest.self, unknown) }
        let unknownUpdate = #"{"requirements":[],"updates":[{"action":"make-it-fast"}]}"#
        #expect(throws: UnknownTypeError.self) { try decode(CommitTableRequest.self, unknownUpdate) }
    }

    @Test func schemaSpecAndOrderUpdatesResolveTheLastAdded() async throws {
        _ = try await catalog.createNamespace(warehouse, ["ns"], properties: [:])
        _ = try await createTable(["ns"], "t")
        let table = TableIdentifier(namespace: ["ns"], name: "t")
        let request = try decode(
            CommitTableRequest.self,
            #"""
            {"requirements":[{"type":"assert-current-schema-id","current-schema-id":0}],
             "updates":[{"action":"add-schema","schema":{"type":"struct","fields":[
                {"id":1,"name":"id","required":false,"type":"long"},{"id":3,"name":"extra","required":false,
                 "type":{"type":"list","element-id":4,"element":"string","element-required":false}}]}},
              {"action":"set-current-schema","schema-id":-1},
              {"action":"add-spec","spec":{"fields":[{"source-id":1,"transform":"bucket[4]","name":"b"}]}},
              {"action":"set-default-spec","spec-id":-1},
              {"action":"add-sort-order","sort-order":{"fields":[{"source-id":1,"transform":"identity",
                "direction":"asc","null-order":"nulls-first"}]}},
              {"action":"set-default-sort-order","sort-order-id":-1},
              {"action":"remove-schemas","schema-ids":[0]}]}
            """#
        )
        _ = try await catalog.commitTable(warehouse, table, request)
        let (metadata, _) = try metadata(table)
        #expect(metadata.currentSchemaID == 1 && metadata.schemas?.map(\.schemaID) == [1])
        #expect(metadata.lastColumnID == 4)
        #expect(metadata.defaultSpecID == 1 && metadata.lastPartitionID == 1000)
        #expect(metadata.partitionSpecs?.last?.fields.first?.fieldID == 1000)
        #expect(metadata.defaultSortOrderID == 1)
        // The current schema cannot be removed; nothing is committed.
        let bad = try decode(
            CommitTableRequest.self,
            #"{"requirements":[],"updates":[{"action":"remove-schemas","schema-ids":[1]}]}"#
        )
        await #expect(throws: IcebergError.badRequest("remove-schemas: cannot remove the current schema 1")) {
            try await catalog.commitTable(warehouse, table, bad)
        }
    }

    @Test func unknownFieldsSurviveACommit() async throws {
        _ = try await catalog.createNamespace(warehouse, ["ns"], properties: [:])
        let created = try await createTable(["ns"], "t")
        var json = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(created)) as! [String: Any]
        json["x-future-field"] = ["nested": [1, 2, 3]]
        var schemas = json["schemas"] as! [[String: Any]]
        schemas[0]["x-schema-extra"] = "kept"
        json["schemas"] = schemas
        let file = "\(root)/ns/t/metadata/custom.metadata.json"
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: file))
        let register = try decode(
            RegisterTableRequest.self,
            #"{"name":"copy","metadata-location":"file://\#(file)"}"#
        )
        _ = try await catalog.registerTable(warehouse, ["ns"], register)
        let copy = TableIdentifier(namespace: ["ns"], name: "copy")
        let commit = try decode(
            CommitTableRequest.self,
            #"{"requirements":[],"updates":[{"action":"set-properties","updates":{"a":"b"}}]}"#
        )
        let pointer = try await catalog.commitTable(warehouse, copy, commit)
        let after = try JSONSerialization.jsonObject(with: pointer.metadata) as! [String: Any]
        #expect((after["x-future-field"] as? [String: Any])?["nested"] as? [Int] == [1, 2, 3])
        #expect(((after["schemas"] as? [[String: Any]])?.first?["x-schema-extra"] as? String) == "kept")
        #expect((after["properties"] as? [String: String])?["a"] == "b")
    }

    @Test func transactionIsAllOrNothing() async throws {
        _ = try await catalog.createNamespace(warehouse, ["ns"], properties: [:])
        _ = try await createTable(["ns"], "a")
        _ = try await createTable(["ns"], "b")
        let a = TableIdentifier(namespace: ["ns"], name: "a")
        let b = TableIdentifier(namespace: ["ns"], name: "b")
        let before = (try metadata(a).1, try metadata(b).1)
        let failing = try decode(
            CommitTransactionRequest.self,
            #"""
            {"table-changes":[
              {"identifier":{"namespace":["ns"],"name":"a"},"requirements":[],
               "updates":[{"action":"set-properties","updates":{"x":"1"}}]},
              {"identifier":{"namespace":["ns"],"name":"b"},
               "requirements":[{"type":"assert-current-schema-id","current-schema-id":9}],
               "updates":[{"action":"set-properties","updates":{"x":"1"}}]}]}
            """#
        )
        await #expect(throws: IcebergError.self) { try await catalog.commitTransaction(warehouse, failing) }
        #expect(try metadata(a).1.modRevision == before.0.modRevision)
        #expect(try metadata(b).1.modRevision == before.1.modRevision)
        #expect(try metadata(a).0.properties?["x"] == nil)
        let files = try FileManager.default.contentsOfDirectory(atPath: "\(root)/ns/a/metadata")
        #expect(files.count == 1, "the first table's prepared file was removed: \(files)")
        let passing = try decode(
            CommitTransactionRequest.self,
            #"""
            {"table-changes":[
              {"identifier":{"namespace":["ns"],"name":"a"},"requirements":[],
               "updates":[{"action":"set-properties","updates":{"x":"1"}}]},
              {"identifier":{"namespace":["ns"],"name":"b"},"requirements":[],
               "updates":[{"action":"set-properties","updates":{"x":"2"}}]}]}
            """#
        )
        try await catalog.commitTransaction(warehouse, passing)
        let (metadataA, loadedA) = try metadata(a)
        let (metadataB, loadedB) = try metadata(b)
        #expect(metadataA.properties?["x"] == "1" && metadataB.properties?["x"] == "2")
        #expect(loadedA.modRevision == loadedB.modRevision, "one revision for the whole transaction")
    }

    @Test func racingAppendsOnOneTableHaveOneWinner() async throws {
        _ = try await catalog.createNamespace(warehouse, ["ns"], properties: [:])
        _ = try await createTable(["ns"], "t")
        let table = TableIdentifier(namespace: ["ns"], name: "t")
        let catalog = self.catalog
        let requests = try (0..<8).map { try appendRequest(parent: nil, id: Int64(100 + $0), sequence: 1) }
        let outcomes = await withTaskGroup(of: Int.self) { group in
            for request in requests {
                group.addTask {
                    do throws(IcebergError) {
                        _ = try await catalog.commitTable(warehouse, table, request)
                        return 200
                    } catch {
                        return error.code
                    }
                }
            }
            return await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 == 200 }.count == 1, "\(outcomes)")
        #expect(outcomes.filter { $0 == 409 }.count == 7, "\(outcomes)")
        #expect(try metadata(table).0.snapshots?.count == 1)
        let files = try FileManager.default.contentsOfDirectory(atPath: "\(root)/ns/t/metadata")
        #expect(files.count == 2, "losers' files are removed: \(files)")
    }

    @Test func previousVersionsMaxAndDeleteAfterCommit() async throws {
        _ = try await catalog.createNamespace(warehouse, ["ns"], properties: [:])
        _ = try await createTable(
            ["ns"],
            "t",
            properties:
                #"{"write.metadata.previous-versions-max":"2","write.metadata.delete-after-commit.enabled":"true"}"#
        )
        let table = TableIdentifier(namespace: ["ns"], name: "t")
        for index in 0..<5 {
            let request = try decode(
                CommitTableRequest.self,
                #"{"requirements":[],"updates":[{"action":"set-properties","updates":{"n":"\#(index)"}}]}"#
            )
            _ = try await catalog.commitTable(warehouse, table, request)
        }
        let (metadata, loaded) = try metadata(table)
        #expect(metadata.metadataLog?.count == 2)
        let files = try FileManager.default.contentsOfDirectory(atPath: "\(root)/ns/t/metadata").sorted()
        #expect(files.count == 3, "current + 2 previous: \(files)")
        #expect(files.last.map { loaded.pointer.metadataLocation.hasSuffix($0) } == true)
    }

    @Test func namespacesNestAndRefuseDropsWhenNotEmpty() async throws {
        _ = try await catalog.createNamespace(warehouse, ["a"], properties: [:])
        _ = try await catalog.createNamespace(warehouse, ["a", "b"], properties: ["k": "v"])
        _ = try await catalog.createNamespace(warehouse, ["a", "b", "c"], properties: [:])
        await #expect(throws: IcebergError.noSuchNamespace(["x"])) {
            try await catalog.createNamespace(warehouse, ["x", "y"], properties: [:])
        }
        #expect(try catalog.listNamespaces(warehouse, parent: [], pageToken: nil, pageSize: nil).namespaces == [["a"]])
        #expect(
            try catalog.listNamespaces(warehouse, parent: ["a"], pageToken: nil, pageSize: nil).namespaces == [
                ["a", "b"]
            ]
        )
        await #expect(throws: IcebergError.namespaceNotEmpty(["a", "b"])) {
            try await catalog.dropNamespace(warehouse, ["a", "b"])
        }
        try await catalog.dropNamespace(warehouse, ["a", "b", "c"])
        try await catalog.dropNamespace(warehouse, ["a", "b"])
        let result = try await catalog.updateNamespaceProperties(
            warehouse,
            ["a"],
            removals: ["gone"],
            updates: ["new": "1"]
        )
        #expect(result.updated == ["new"] && result.removed.isEmpty && result.missing == ["gone"])
    }

    @Test func pagesFollowTheirTokens() async throws {
        _ = try await catalog.createNamespace(warehouse, ["ns"], properties: [:])
        for index in 0..<7 { _ = try await createTable(["ns"], "t\(index)") }
        var names: [String] = []
        var token: String? = nil
        repeat {
            let page = try catalog.listTables(warehouse, ["ns"], pageToken: token, pageSize: 3)
            #expect(page.identifiers.count <= 3)
            names += page.identifiers.map(\.name)
            token = page.next
        } while token != nil
        #expect(names == (0..<7).map { "t\($0)" })
        #expect(throws: IcebergError.badRequest("invalid pageToken")) {
            try catalog.listTables(warehouse, ["ns"], pageToken: "AAAA", pageSize: 3)
        }
    }

    @Test func badNamesAndLocationsAreRefusedBeforeAnythingIsWritten() async throws {
        _ = try await catalog.createNamespace(warehouse, ["ns"], properties: [:])
        for name in ["", "..", "a/b", "a\u{1F}b", "x\u{0}"] {
            await #expect(throws: IcebergError.self, "\(name.debugDescription)") {
                _ = try await createTable(["ns"], name)
            }
        }
        for location in ["file://\(root)/../escape", "s3://bucket/t", "/etc/passwd-table", "file://\(root)"] {
            let request = try decode(
                CreateTableRequest.self,
                #"{"name":"t","location":"\#(location)","schema":\#(Self.schemaJSON)}"#
            )
            await #expect(throws: IcebergError.self, "\(location)") {
                _ = try await catalog.createTable(warehouse, ["ns"], request)
            }
        }
        #expect(try catalog.listTables(warehouse, ["ns"], pageToken: nil, pageSize: nil).identifiers.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: fixture.directory.appending("escape")))
    }
}

/// Catalog changes are ordinary revisions of the core: a watch on keyspace 3 from before the changes sees each of
/// them, and a view's unknown metadata fields survive a replace.
@Suite("Iceberg catalog: watch events and views")
struct IcebergCatalogEventTests {
    @Test func catalogChangesAreWatchEvents() async throws {
        let fixture = try StoreFixture(sync: .none, keyspaces: [.iceberg])
        let root = fixture.directory.appending("warehouse")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let warehouse = Warehouse(name: "", root: root, aliases: [root])
        let catalog = IcebergCatalog(store: fixture.store, warehouses: [warehouse])
        var request = WatchRequest(keyspace: .iceberg, range: .all)
        request.startRevision = 1
        _ = try await catalog.createNamespace(warehouse, ["ns"], properties: ["a": "1"])
        let create = try JSONDecoder().decode(
            CreateTableRequest.self,
            from: Data(#"{"name":"t","schema":\#(IcebergCatalogTests.schemaJSON)}"#.utf8)
        )
        _ = try await catalog.createTable(warehouse, ["ns"], create)
        try await catalog.dropTable(warehouse, TableIdentifier(namespace: ["ns"], name: "t"), purge: false)
        let watcher = try fixture.store.watch(request)
        defer { watcher.cancel() }
        var seen: [String] = []
        for try await update in watcher {
            if case .events(_, let events) = update {
                seen += events.map { "\($0.kind) \(String(decoding: $0.kv.key.prefix(1), as: UTF8.self))" }
            }
            if seen.count >= 3 { break }
        }
        #expect(seen == ["put N", "put T", "delete T"])
    }

    @Test func viewUnknownFieldsSurviveAReplace() async throws {
        let fixture = try StoreFixture(sync: .none, keyspaces: [.iceberg])
        let root = fixture.directory.appending("warehouse")
        try FileManager.default.createDirectory(atPath: root + "/ns/v/metadata", withIntermediateDirectories: true)
        let warehouse = Warehouse(name: "", root: root, aliases: [root])
        let catalog = IcebergCatalog(store: fixture.store, warehouses: [warehouse])
        _ = try await catalog.createNamespace(warehouse, ["ns"], properties: [:])
        let file = root + "/ns/v/metadata/00000-custom.metadata.json"
        let metadata = #"""
            {"view-uuid":"6b1c1c3e-0000-4000-8000-000000000001","format-version":1,"location":"file://\#(root)/ns/v",
             "current-version-id":1,"x-future":{"keep":true},
             "versions":[{"version-id":1,"timestamp-ms":1,"schema-id":0,"summary":{},"default-namespace":["ns"],
               "representations":[{"type":"sql","sql":"SELECT 1","dialect":"spark","x-rep":"kept"}]}],
             "version-log":[{"version-id":1,"timestamp-ms":1}],
             "schemas":[{"type":"struct","schema-id":0,"fields":[]}]}
            """#
        try Data(metadata.utf8).write(to: URL(fileURLWithPath: file))
        _ = try await catalog.registerView(
            warehouse,
            ["ns"],
            try JSONDecoder().decode(
                RegisterTableRequest.self,
                from: Data(#"{"name":"v","metadata-location":"file://\#(file)"}"#.utf8)
            )
        )
        let replace = try JSONDecoder().decode(
            CommitViewRequest.self,
            from: Data(
                #"""
                {"requirements":[{"type":"assert-view-uuid","uuid":"6b1c1c3e-0000-4000-8000-000000000001"}],
                 "updates":[{"action":"set-properties","updates":{"p":"q"}}]}
                """#.utf8
            )
        )
        let pointer = try await catalog.replaceView(warehouse, TableIdentifier(namespace: ["ns"], name: "v"), replace)
        let after = try JSONSerialization.jsonObject(with: pointer.metadata) as! [String: Any]
        #expect((after["x-future"] as? [String: Bool])?["keep"] == true)
        let versions = after["versions"] as? [[String: Any]]
        let representation = (versions?.first?["representations"] as? [[String: Any]])?.first
        #expect(representation?["x-rep"] as? String == "kept")
        #expect((after["properties"] as? [String: String])?["p"] == "q")
        #expect(pointer.metadataLocation.contains("/metadata/00001-"))
    }
}
