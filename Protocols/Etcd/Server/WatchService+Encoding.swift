internal import Foundation
internal import GRPCCore
internal import StrataEtcdAPI
internal import StrataMVCC
internal import SwiftProtobuf
internal import Synchronization

/// A `WatchResponse` already in protobuf wire form.
///
/// Built as the serialized response without events followed by its events as encoded `events` fields (number 11):
/// protobuf fields may be concatenated, and since the other fields are numbered 1–7 the result is exactly what
/// etcd's encoder writes (fields in number order).
package struct WatchResponseBytes: Sendable {
    var bytes: [UInt8]

    init(_ response: Etcdserverpb_WatchResponse) throws {
        bytes = try response.serializedBytes()
    }

    /// `response` (whose own `events` must be empty) followed by `events`, each an encoded field from
    /// ``WatchEventCache``.
    init(_ response: Etcdserverpb_WatchResponse, events: ArraySlice<[UInt8]>) throws {
        bytes = try response.serializedBytes()
        bytes.reserveCapacity(bytes.count + events.reduce(0) { $0 + $1.count })
        for event in events { bytes.append(contentsOf: event) }
    }

    /// The bytes an encoded event field adds to a response.
    static func eventFieldSize(_ field: [UInt8]) -> Int { field.count }

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
final class WatchEventCache: Sendable {
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

    static func encode(_ event: Event) throws -> [UInt8] {
        let message: [UInt8] = try proto(event).serializedBytes()
        var field: [UInt8] = [0x5A]  // field 11 (events), length-delimited
        var length = UInt64(message.count)
        while length >= 0x80 {
            field.append(UInt8(truncatingIfNeeded: length) | 0x80)
            length >>= 7
        }
        field.append(UInt8(length))
        field.append(contentsOf: message)
        return field
    }

    static func proto(_ event: Event) -> Mvccpb_Event {
        var proto = Mvccpb_Event()
        proto.type = event.kind == .put ? .put : .delete
        proto.kv = event.kv.proto
        if let prev = event.prevKV { proto.prevKv = prev.proto }
        return proto
    }
}
