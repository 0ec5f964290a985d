import Foundation
import StrataEtcd
import StrataEtcdAPI
import StrataMVCC
import SwiftProtobuf
import Testing

/// Hand-assembled watch responses must be byte for byte what the protobuf encoder writes for the same message.
@Suite("Watch response encoding")
struct WatchEncodingTests {
    static let put = Event(
        kind: .put,
        kv: KeyValue(
            key: Array("k".utf8),
            createRevision: 3,
            modRevision: 9,
            version: 4,
            lease: 7,
            value: Array("v".utf8)
        ),
        prevKV: KeyValue(key: Array("k".utf8), createRevision: 3, modRevision: 5, version: 3, value: Array("old".utf8))
    )
    static let delete = Event(
        kind: .delete,
        kv: KeyValue(key: Array(repeating: 0x6B, count: 300), createRevision: 0, modRevision: 9, version: 0, value: []),
        prevKV: nil
    )

    @Test(arguments: [Int64(0), 1, 127, 128, 1 << 40, -1])
    func handAssembledResponsesMatchTheEncoder(watchID: Int64) throws {
        var header = Etcdserverpb_ResponseHeader()
        header.clusterID = 0xDEAD_BEEF_CAFE
        header.memberID = 42
        header.revision = 9
        header.raftTerm = 2
        for fragment in [false, true] {
            for events in [[], [Self.put], [Self.put, Self.delete]] {
                var message = Etcdserverpb_WatchResponse()
                message.header = header
                message.watchID = watchID
                message.fragment = fragment
                message.events = events.map(WatchEventCache.proto)
                let expected: [UInt8] = try message.serializedBytes()
                let assembled = WatchResponseBytes(
                    headerField: try WatchResponseBytes.headerField(header),
                    watchID: watchID,
                    fragment: fragment,
                    events: try events.map(WatchEventCache.encode)[...]
                )
                #expect(assembled.bytes == expected, "watch \(watchID) fragment \(fragment) events \(events.count)")
                #expect(try Etcdserverpb_WatchResponse(serializedBytes: assembled.bytes) == message)
            }
        }
    }
}
