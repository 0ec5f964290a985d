internal import Foundation
internal import GRPCCore
internal import StrataCommon
package import StrataEtcdAPI
package import StrataMVCC
internal import SwiftProtobuf
internal import Synchronization

/// A `WatchResponse` already in protobuf wire form.
///
/// Events responses are put together from pre-encoded fields — the revision's header, the watch id, the fragment
/// flag, then each event's `events` field (number 11) — in field-number order, which is exactly what etcd's encoder
/// writes; other responses (created, canceled, progress) are serialized whole.
package struct WatchResponseBytes: Sendable {
    package var bytes: [UInt8]

    package init(_ response: Etcdserverpb_WatchResponse) throws {
        bytes = try response.serializedBytes()
    }

    /// An events response built by hand — header, watch id, fragment flag, events, in etcd's field order — from the
    /// revision's header field (``headerField(_:)``), which every watcher's response of that revision shares.
    package init(headerField: [UInt8], watchID: Int64, fragment: Bool, events: ArraySlice<[UInt8]>) {
        bytes = []
        bytes.reserveCapacity(headerField.count + 13 + events.reduce(0) { $0 + $1.count })
        bytes.append(contentsOf: headerField)
        if watchID != 0 {
            bytes.append(0x10)  // field 2 (watch_id), varint
            Varint.append(UInt64(bitPattern: watchID), to: &bytes)
        }
        if fragment { bytes.append(contentsOf: [0x38, 1]) }  // field 7 (fragment), varint true
        for event in events { bytes.append(contentsOf: event) }
    }

    /// Field 1 (`header`) of a response, tag and length included.
    package static func headerField(_ header: Etcdserverpb_ResponseHeader) throws -> [UInt8] {
        let message: [UInt8] = try header.serializedBytes()
        var field: [UInt8] = [0x0A]
        Varint.append(UInt64(message.count), to: &field)
        return field + message
    }

    /// Hands the bytes to grpc-swift as they are.
    struct Serializer: MessageSerializer {
        func serialize<Bytes: GRPCContiguousBytes>(_ message: WatchResponseBytes) throws -> Bytes {
            Bytes(message.bytes)
        }
    }
}

/// Encoded `events` fields of recently delivered events, shared by every watcher they go to: with many watchers
/// on one key, each event is converted and encoded once instead of once per watcher.
///
/// An event is identified by its revision, its key (a revision changes a key at most once) and whether it carries
/// its previous value. Two generations bound the memory: when the newer one holds `generationBytes`, the older one
/// is dropped.
package final class WatchEventCache: Sendable {
    struct Key: Hashable {
        var revision: Revision
        var key: [UInt8]
        var withPrevious: Bool
    }

    private struct Generations {
        var current: [Key: [UInt8]] = [:]
        var previous: [Key: [UInt8]] = [:]
        var currentBytes = 0
    }

    /// Events larger than this are encoded for each watcher rather than kept.
    static let maxCachedEventBytes = 64 * 1024
    let generationBytes: Int
    private let state = Mutex(Generations())

    init(generationBytes: Int = 2 << 20) {
        self.generationBytes = generationBytes
    }

    /// The `events` field (tag, length, `mvccpb.Event`) for `event` of `revision`.
    func encoded(_ event: Event, revision: Revision) throws -> [UInt8] {
        let size = event.kv.key.count + event.kv.value.count + (event.prevKV?.value.count ?? 0)
        guard size <= Self.maxCachedEventBytes else { return try Self.encode(event) }
        let key = Key(revision: revision, key: event.kv.key, withPrevious: event.prevKV != nil)
        if let found = state.withLock({ $0.current[key] ?? $0.previous[key] }) { return found }
        let field = try Self.encode(event)
        state.withLock { state in
            if state.currentBytes >= generationBytes {
                state.previous = state.current
                state.current = [:]
                state.currentBytes = 0
            }
            if state.current.updateValue(field, forKey: key) == nil {
                state.currentBytes += field.count + key.key.count + 64
            }
        }
        return field
    }

    /// The `events` field for one event, tag and length included.
    package static func encode(_ event: Event) throws -> [UInt8] {
        let message: [UInt8] = try proto(event).serializedBytes()
        var field: [UInt8] = [0x5A]  // field 11 (events), length-delimited
        Varint.append(UInt64(message.count), to: &field)
        return field + message
    }

    package static func proto(_ event: Event) -> Mvccpb_Event {
        var proto = Mvccpb_Event()
        proto.type = event.kind == .put ? .put : .delete
        proto.kv = event.kv.proto
        if let prev = event.prevKV { proto.prevKv = prev.proto }
        return proto
    }
}
