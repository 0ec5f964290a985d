internal import Foundation

/// Applies a commit's requirements and updates to table metadata, as Iceberg's own TableMetadata builder does:
/// `-1` means "the one added in this commit", identical schemas/specs/orders are reused, the main branch drives
/// `current-snapshot-id` and the snapshot log.
package struct TableMetadataBuilder {
    package private(set) var metadata: TableMetadata
    let base: TableMetadata?
    let now: Int64
    private var lastAddedSchemaID: Int?
    private var lastAddedSpecID: Int?
    private var lastAddedSortOrderID: Int?
    private var addedSnapshots: [Int64: Int64] = [:]

    /// From the current metadata, or (a create transaction's commit) from an empty table.
    package init(base: TableMetadata?, now: Int64) {
        self.base = base
        self.now = now
        metadata = base ?? Self.empty()
    }

    static func empty() -> TableMetadata {
        TableMetadata(
            TableMetadataFields(
                formatVersion: 2,
                tableUUID: UUID().uuidString.lowercased(),
                location: nil,
                lastUpdatedMs: nil,
                nextRowID: nil,
                properties: [:],
                schemas: [],
                currentSchemaID: -1,
                lastColumnID: 0,
                partitionSpecs: [],
                defaultSpecID: -1,
                lastPartitionID: 999,
                sortOrders: [],
                defaultSortOrderID: -1,
                encryptionKeys: nil,
                snapshots: [],
                refs: [:],
                currentSnapshotID: -1,
                lastSequenceNumber: 0,
                snapshotLog: [],
                metadataLog: [],
                statistics: nil,
                partitionStatistics: nil,
                schema: nil,
                partitionSpec: nil
            )
        )
    }

    // MARK: Requirements

    /// Checks one requirement against the metadata the commit started from (nil: the table does not exist).
    package static func check(_ requirement: TableRequirement, against base: TableMetadata?) throws(IcebergError) {
        func fail(_ message: String) -> IcebergError { .commitFailed("Requirement failed: \(message)") }
        if case .assertCreate = requirement {
            guard base == nil else { throw fail("table already exists") }
            return
        }
        guard let base else { throw fail("table does not exist") }
        switch requirement {
        case .assertCreate:
            break
        case .assertTableUUID(let uuid):
            guard uuid.lowercased() == base.tableUUID.lowercased() else {
                throw fail("UUID does not match: expected \(base.tableUUID) != \(uuid)")
            }
        case .assertRefSnapshotID(let ref, let snapshotID):
            let current =
                base.refs?[ref]?.snapshotID
                ?? (ref == "main" ? base.currentSnapshotID.flatMap { $0 < 0 ? nil : $0 } : nil)
            if let snapshotID {
                guard let current else { throw fail("branch or tag \(ref) is missing, expected \(snapshotID)") }
                guard current == snapshotID else {
                    throw fail("branch \(ref) has changed: expected id \(snapshotID) != \(current)")
                }
            } else if let current {
                throw fail("branch \(ref) was created concurrently (now at \(current))")
            }
        case .assertLastAssignedFieldID(let id):
            guard (base.lastColumnID ?? 0) == id else {
                throw fail("last assigned field id changed: expected id \(id) != \(base.lastColumnID ?? 0)")
            }
        case .assertCurrentSchemaID(let id):
            guard (base.currentSchemaID ?? 0) == id else {
                throw fail("current schema changed: expected id \(id) != \(base.currentSchemaID ?? 0)")
            }
        case .assertLastAssignedPartitionID(let id):
            guard (base.lastPartitionID ?? 999) == id else {
                throw fail("last assigned partition id changed: expected id \(id) != \(base.lastPartitionID ?? 999)")
            }
        case .assertDefaultSpecID(let id):
            guard (base.defaultSpecID ?? 0) == id else {
                throw fail("default partition spec changed: expected id \(id) != \(base.defaultSpecID ?? 0)")
            }
        case .assertDefaultSortOrderID(let id):
            guard (base.defaultSortOrderID ?? 0) == id else {
                throw fail("default sort order changed: expected id \(id) != \(base.defaultSortOrderID ?? 0)")
            }
        }
    }

    // MARK: Updates

    package mutating func apply(_ update: TableUpdate) throws(IcebergError) {
        switch update {
        case .assignUUID(let uuid):
            guard !uuid.isEmpty else { throw .badRequest("assign-uuid: empty uuid") }
            if let base, base.tableUUID.lowercased() != uuid.lowercased() {
                throw .badRequest("cannot reassign the uuid of an existing table (\(base.tableUUID))")
            }
            metadata.tableUUID = uuid
        case .upgradeFormatVersion(let version):
            guard (1...3).contains(version) else { throw .badRequest("unsupported format-version \(version)") }
            // A create starts from an empty table, whose version is whatever the create asks for.
            guard version >= metadata.formatVersion || base == nil else {
                throw .badRequest("cannot downgrade format-version \(metadata.formatVersion) to \(version)")
            }
            if version >= 3 && metadata.nextRowID == nil { metadata.nextRowID = 0 }
            metadata.formatVersion = version
        case .addSchema(let schema, let lastColumnID):
            var schemas = metadata.schemas ?? []
            lastAddedSchemaID = schemas.addOrReuse(schema)
            metadata.schemas = schemas
            metadata.lastColumnID = max(metadata.lastColumnID ?? 0, lastColumnID ?? 0, schema.highestFieldID)
        case .setCurrentSchema(let requested):
            let id = try resolve(requested, lastAdded: lastAddedSchemaID, what: "schema")
            guard (metadata.schemas ?? []).contains(where: { $0.schemaID == id }) else {
                throw .badRequest("set-current-schema: no schema with id \(id)")
            }
            metadata.currentSchemaID = id
        case .addSpec(var spec):
            var specs = metadata.partitionSpecs ?? []
            var lastPartitionID = metadata.lastPartitionID ?? 999
            for index in spec.fields.indices where spec.fields[index].fieldID == nil {
                lastPartitionID += 1
                spec.fields[index].fieldID = lastPartitionID
            }
            if let existing = specs.first(where: { Self.sameFields($0, spec) }) {
                lastAddedSpecID = existing.specID
            } else {
                let id = (specs.compactMap(\.specID).max() ?? -1) + 1
                spec.specID = id
                specs.append(spec)
                lastAddedSpecID = id
            }
            metadata.partitionSpecs = specs
            metadata.lastPartitionID = max(lastPartitionID, spec.fields.compactMap(\.fieldID).max() ?? 999)
        case .setDefaultSpec(let requested):
            let id = try resolve(requested, lastAdded: lastAddedSpecID, what: "partition spec")
            guard (metadata.partitionSpecs ?? []).contains(where: { $0.specID == id }) else {
                throw .badRequest("set-default-spec: no partition spec with id \(id)")
            }
            metadata.defaultSpecID = id
        case .addSortOrder(var order):
            var orders = metadata.sortOrders ?? []
            if let existing = orders.first(where: { $0.known.fields == order.known.fields }) {
                lastAddedSortOrderID = existing.orderID
            } else {
                let id = order.known.fields.isEmpty ? 0 : max(orders.compactMap(\.orderID).max() ?? 0, 0) + 1
                order.orderID = id
                orders.append(order)
                lastAddedSortOrderID = id
            }
            metadata.sortOrders = orders
        case .setDefaultSortOrder(let requested):
            let id = try resolve(requested, lastAdded: lastAddedSortOrderID, what: "sort order")
            guard (metadata.sortOrders ?? []).contains(where: { $0.orderID == id }) else {
                throw .badRequest("set-default-sort-order: no sort order with id \(id)")
            }
            metadata.defaultSortOrderID = id
        case .addSnapshot(let snapshot):
            try addSnapshot(snapshot)
        case .setSnapshotRef(let name, let reference):
            try setRef(name, reference)
        case .removeSnapshots(let ids):
            let removed = Set(ids)
            metadata.snapshots = (metadata.snapshots ?? []).filter { !removed.contains($0.snapshotID) }
            for (name, reference) in metadata.refs ?? [:] where removed.contains(reference.snapshotID) {
                metadata.refs?[name] = nil
                if name == "main" { metadata.currentSnapshotID = -1 }
            }
            metadata.statistics = metadata.statistics?.filter { !removed.contains($0.snapshotID) }
            metadata.partitionStatistics = metadata.partitionStatistics?.filter { !removed.contains($0.snapshotID) }
        case .removeSnapshotRef(let name):
            metadata.refs?[name] = nil
            if name == "main" { metadata.currentSnapshotID = -1 }
        case .setLocation(let location):
            guard !location.isEmpty else { throw .badRequest("set-location: empty location") }
            metadata.location = location
        case .setProperties(let updates):
            metadata.properties.update(setting: updates)
        case .removeProperties(let removals):
            metadata.properties.update(removing: removals)
        case .setStatistics(let file):
            var list = (metadata.statistics ?? []).filter { $0.snapshotID != file.snapshotID }
            list.append(file)
            metadata.statistics = list
        case .removeStatistics(let id):
            metadata.statistics = metadata.statistics?.filter { $0.snapshotID != id }
        case .setPartitionStatistics(let file):
            var list = (metadata.partitionStatistics ?? []).filter { $0.snapshotID != file.snapshotID }
            list.append(file)
            metadata.partitionStatistics = list
        case .removePartitionStatistics(let id):
            metadata.partitionStatistics = metadata.partitionStatistics?.filter { $0.snapshotID != id }
        case .removePartitionSpecs(let ids):
            guard !ids.contains(metadata.defaultSpecID ?? 0) else {
                throw .badRequest(
                    "remove-partition-specs: cannot remove the default spec \(metadata.defaultSpecID ?? 0)"
                )
            }
            metadata.partitionSpecs = metadata.partitionSpecs?.filter { !ids.contains($0.specID ?? 0) }
        case .removeSchemas(let ids):
            guard !ids.contains(metadata.currentSchemaID ?? 0) else {
                throw .badRequest("remove-schemas: cannot remove the current schema \(metadata.currentSchemaID ?? 0)")
            }
            metadata.schemas = metadata.schemas?.filter { !ids.contains($0.schemaID ?? 0) }
        case .addEncryptionKey(let key):
            var keys = (metadata.encryptionKeys ?? []).filter { $0.keyID != key.keyID }
            keys.append(key)
            metadata.encryptionKeys = keys
        case .removeEncryptionKey(let id):
            metadata.encryptionKeys = metadata.encryptionKeys?.filter { $0.keyID != id }
        }
    }

    private func resolve(_ requested: Int, lastAdded: Int?, what: String) throws(IcebergError) -> Int {
        guard requested == -1 else { return requested }
        guard let lastAdded else { throw .badRequest("cannot set the last added \(what): none was added") }
        return lastAdded
    }

    private static func sameFields(_ a: PartitionSpec, _ b: PartitionSpec) -> Bool {
        guard a.fields.count == b.fields.count else { return false }
        for (x, y) in zip(a.fields, b.fields) {
            guard x.sourceID == y.sourceID, x.name == y.name, x.transform == y.transform, x.fieldID == y.fieldID else {
                return false
            }
        }
        return true
    }

    private mutating func addSnapshot(_ snapshot: Snapshot) throws(IcebergError) {
        var snapshots = metadata.snapshots ?? []
        guard !snapshots.contains(where: { $0.snapshotID == snapshot.snapshotID }) else {
            throw .badRequest("add-snapshot: snapshot \(snapshot.snapshotID) already exists")
        }
        guard snapshot.summary["operation"] != nil else {
            throw .badRequest("add-snapshot: summary.operation is missing")
        }
        let last = metadata.lastSequenceNumber ?? 0
        if metadata.formatVersion >= 2 {
            let sequence = snapshot.sequenceNumber ?? 0
            guard sequence > last || snapshot.parentSnapshotID == nil else {
                throw .badRequest(
                    "add-snapshot: sequence number \(sequence) is not newer than the last sequence number \(last)"
                )
            }
            metadata.lastSequenceNumber = max(last, sequence)
        }
        if metadata.formatVersion >= 3, let first = snapshot.firstRowID {
            let next = metadata.nextRowID ?? 0
            guard first >= next else {
                throw .badRequest("add-snapshot: first-row-id \(first) is below the table's next-row-id \(next)")
            }
            metadata.nextRowID = next + (snapshot.addedRows ?? 0)
        }
        snapshots.append(snapshot)
        metadata.snapshots = snapshots
        addedSnapshots[snapshot.snapshotID] = snapshot.timestampMs
    }

    private mutating func setRef(_ name: String, _ reference: SnapshotReference) throws(IcebergError) {
        guard reference.type == "branch" || reference.type == "tag" else {
            throw .badRequest("set-snapshot-ref: type must be branch or tag, not \(reference.type)")
        }
        guard (metadata.snapshots ?? []).contains(where: { $0.snapshotID == reference.snapshotID }) else {
            throw .badRequest("set-snapshot-ref: snapshot \(reference.snapshotID) does not exist")
        }
        guard !name.isEmpty else { throw .badRequest("set-snapshot-ref: empty ref-name") }
        let previous = metadata.refs?[name]?.snapshotID
        var refs = metadata.refs ?? [:]
        refs[name] = reference
        metadata.refs = refs
        if name == "main" {
            guard reference.type == "branch" else { throw .badRequest("main must be a branch") }
            metadata.currentSnapshotID = reference.snapshotID
            if previous != reference.snapshotID {
                let stamp = addedSnapshots[reference.snapshotID] ?? now
                metadata.snapshotLog =
                    (metadata.snapshotLog ?? []) + [
                        SnapshotLogEntry(snapshotID: reference.snapshotID, timestampMs: stamp)
                    ]
            }
        }
    }

    // MARK: Finishing

    /// Completes the new metadata: history logs, timestamps, v1's singular fields, and the checks every valid
    /// metadata passes. `baseLocation` is the file the table pointed at (nil for a create).
    package mutating func finish(
        baseLocation: String?,
        defaultLocation: String
    ) throws(IcebergError) -> (metadata: TableMetadata, expired: [String]) {
        var expired: [String] = []
        if metadata.location == nil || metadata.location?.isEmpty == true { metadata.location = defaultLocation }
        let stamp = max(now, addedSnapshots.values.max() ?? 0, base?.lastUpdatedMs ?? 0)
        if let baseLocation, let base {
            var log =
                (metadata.metadataLog ?? []) + [
                    MetadataLogEntry(metadataFile: baseLocation, timestampMs: base.lastUpdatedMs ?? stamp)
                ]
            let properties = metadata.properties ?? [:]
            let keep = max(Int(properties["write.metadata.previous-versions-max"] ?? "") ?? 100, 1)
            if log.count > keep {
                let dropped = log.prefix(log.count - keep)
                log.removeFirst(log.count - keep)
                if properties["write.metadata.delete-after-commit.enabled"]?.lowercased() == "true" {
                    expired = dropped.map(\.metadataFile)
                }
            }
            metadata.metadataLog = log
        }
        metadata.lastUpdatedMs = stamp
        // The snapshot log keeps only entries after the last one whose snapshot is gone (as Iceberg does).
        let live = Set((metadata.snapshots ?? []).map(\.snapshotID))
        if let log = metadata.snapshotLog, let lastGone = log.lastIndex(where: { !live.contains($0.snapshotID) }) {
            metadata.snapshotLog = Array(log[(lastGone + 1)...])
        }
        try validate()
        if metadata.formatVersion == 1 {
            metadata.schema = (metadata.schemas ?? []).first { $0.schemaID == metadata.currentSchemaID }
            metadata.partitionSpec =
                (metadata.partitionSpecs ?? []).first { $0.specID == metadata.defaultSpecID }?
                .fields
        } else {
            metadata.schema = nil
            metadata.partitionSpec = nil
        }
        return (metadata, expired)
    }

    private func validate() throws(IcebergError) {
        guard (1...3).contains(metadata.formatVersion) else {
            throw .badRequest("unsupported format-version \(metadata.formatVersion)")
        }
        let schemas = metadata.schemas ?? []
        guard schemas.contains(where: { $0.schemaID == metadata.currentSchemaID }) else {
            throw .badRequest("the current schema \(metadata.currentSchemaID ?? -1) is not among the table's schemas")
        }
        guard (metadata.partitionSpecs ?? []).contains(where: { $0.specID == metadata.defaultSpecID }) else {
            throw .badRequest("the default partition spec \(metadata.defaultSpecID ?? -1) does not exist")
        }
        guard (metadata.sortOrders ?? []).contains(where: { $0.orderID == metadata.defaultSortOrderID }) else {
            throw .badRequest("the default sort order \(metadata.defaultSortOrderID ?? -1) does not exist")
        }
        if let current = metadata.currentSnapshotID, current >= 0 {
            guard (metadata.snapshots ?? []).contains(where: { $0.snapshotID == current }) else {
                throw .badRequest("the current snapshot \(current) does not exist")
            }
        }
    }
}
