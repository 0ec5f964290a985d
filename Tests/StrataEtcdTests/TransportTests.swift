import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import StrataEtcdAPI
import StrataTestSupport
import SwiftProtobuf
import Synchronization
import Testing

/// Sends and receives message bytes as they are, so a test can put anything on the wire.
struct RawBytesSerializer: MessageSerializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
}

struct RawBytesDeserializer: MessageDeserializer {
    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
        serializedMessageBytes.withUnsafeBytes { Array($0) }
    }
}

/// One raw unary call; returns the response bytes or the error.
func rawCall(
    _ client: GRPCClient<HTTP2ClientTransport.Posix>,
    _ path: (service: String, method: String),
    _ bytes: [UInt8]
) async -> Result<[UInt8], RPCError> {
    do {
        let response = try await client.unary(
            request: ClientRequest(message: bytes),
            descriptor: MethodDescriptor(fullyQualifiedService: path.service, method: path.method),
            serializer: RawBytesSerializer(),
            deserializer: RawBytesDeserializer(),
            options: .defaults
        ) { try $0.message }
        return .success(response)
    } catch let error as RPCError {
        return .failure(error)
    } catch {
        return .failure(RPCError(code: .unknown, message: "\(error)"))
    }
}

/// What the etcd port does with input no well-behaved client sends, compared with etcd 3.4 where the answer is
/// grpc-go's: each case gets a clear gRPC error and the server keeps serving.
@Suite("etcd gRPC transport: bad input", .serialized)
struct TransportTests {
    @Test func malformedAndOversizedRequestsGetEtcdsErrors() async throws {
        try await withEtcdAndStrata { pair, etcdClient, strataClient in
            // A request over the receive limit (etcd: --max-request-bytes 1.5 MiB + 512 KiB): grpc-go's exact text.
            var put = Etcdserverpb_PutRequest()
            put.key = Data("big".utf8)
            put.value = Data(repeating: 0x61, count: 2 * 1024 * 1024 + 100)
            let oversized: [UInt8] = try put.serializedBytes()
            for path in [("etcdserverpb.KV", "Put"), ("etcdserverpb.Lease", "LeaseGrant")] {
                let etcd = await rawCall(etcdClient, path, oversized)
                let strata = await rawCall(strataClient, path, oversized)
                guard case .failure(let etcdError) = etcd, case .failure(let strataError) = strata else {
                    Issue.record("\(path): expected errors, got etcd \(etcd) strata \(strata)")
                    continue
                }
                #expect(strataError.code == .resourceExhausted, "\(path)")
                #expect(strataError.code == etcdError.code, "\(path)")
                #expect(strataError.message == etcdError.message, "\(path)")
                #expect(strataError.message.hasPrefix("grpc: received message larger than max ("))
            }

            // Bytes that are not a protobuf message (a field with wire type 7): both refuse with INTERNAL; the text
            // names each implementation's parser, so only the prefix is etcd's.
            let garbage: [UInt8] = [0x0F, 0xFF, 0xFF, 0xFF, 0xFF, 0x07]
            for path in [
                ("etcdserverpb.KV", "Range"), ("etcdserverpb.KV", "Txn"), ("etcdserverpb.Lease", "LeaseGrant"),
            ] {
                let etcd = await rawCall(etcdClient, path, garbage)
                let strata = await rawCall(strataClient, path, garbage)
                guard case .failure(let etcdError) = etcd, case .failure(let strataError) = strata else {
                    Issue.record("\(path): expected errors, got etcd \(etcd) strata \(strata)")
                    continue
                }
                #expect(strataError.code == etcdError.code, "\(path): \(strataError) vs \(etcdError)")
                #expect(strataError.message.hasPrefix("grpc: error unmarshalling request"), "\(strataError)")
            }

            // A method no service has.
            let etcdUnknown = await rawCall(etcdClient, ("etcdserverpb.KV", "NoSuchMethod"), [])
            let strataUnknown = await rawCall(strataClient, ("etcdserverpb.KV", "NoSuchMethod"), [])
            guard case .failure(let etcdError) = etcdUnknown, case .failure(let strataError) = strataUnknown else {
                Issue.record("unknown method: etcd \(etcdUnknown) strata \(strataUnknown)")
                return
            }
            #expect(strataError.code == .unimplemented)
            #expect(strataError.code == etcdError.code)

            // Both still serve, and agree.
            let etcdPut = try await pair.etcdKV.put(
                .with {
                    $0.key = Data("after".utf8); $0.value = Data("ok".utf8)
                }
            )
            let strataPut = try await pair.strataKV.put(
                .with {
                    $0.key = Data("after".utf8); $0.value = Data("ok".utf8)
                }
            )
            #expect(strataPut.header.revision == etcdPut.header.revision)
            let got = try await pair.strataKV.range(.with { $0.key = Data("after".utf8) })
            #expect(got.kvs.first?.value == Data("ok".utf8))
        }
    }

    @Test func watchersPerStreamAreBoundedAndClosingTheStreamStopsThem() async throws {
        try await withStrata(etcdConfig: "max_watchers_per_stream = 5") { strata, client in
            func watchers() throws -> Int? {
                let metrics = try #require(TestNetwork.get(port: strata.adminPort, path: "/metrics")).body
                return metrics.split(separator: "\n").first { $0.hasPrefix("strata_watch_watchers ") }
                    .flatMap { Double($0.split(separator: " ").last ?? "") }.map { Int($0) }
            }
            let watch = Etcdserverpb_Watch.Client(wrapping: client)
            let created = Mutex<[Etcdserverpb_WatchResponse]>([])
            let task = Task {
                try await watch.watch { writer in
                    for index in 0..<6 {
                        try await writer.write(.with { $0.createRequest = .with { $0.key = Data("w\(index)".utf8) } })
                    }
                    try await Task.sleep(for: .seconds(60))
                } onResponse: { responses in
                    for try await response in responses.messages where response.created {
                        created.withLock { $0.append(response) }
                    }
                }
            }
            var open: Int? = nil
            for _ in 0..<100 {
                open = try watchers()
                if open == 5 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(open == 5)
            for _ in 0..<100 where created.withLock({ $0.count }) < 6 { try await Task.sleep(for: .milliseconds(20)) }
            let responses = created.withLock { $0 }
            #expect(responses.count == 6)
            #expect(responses.prefix(5).allSatisfy { !$0.canceled && $0.watchID >= 0 })
            #expect(responses.last?.canceled == true)
            #expect(responses.last?.cancelReason == "etcdserver: too many watchers on this stream")
            // The client goes away mid-stream (RST_STREAM): the server must cancel the stream's watchers.
            task.cancel()
            _ = await task.result
            for _ in 0..<100 {
                open = try watchers()
                if open == 0 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(open == 0)
        }
    }
}
