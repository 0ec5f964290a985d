import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import StrataEtcdAPI
import StrataTestSupport
import SwiftProtobuf
import Testing

/// The LeaseKeepAlive stream (what clientv3 and kube-apiserver keep open for every lease they hold), against etcd 3.4:
/// renewals of live leases, unknown and revoked ones (TTL 0, not an error), in order, on one stream.
@Suite("Differential: LeaseKeepAlive stream, strata vs etcd 3.4", .serialized)
struct LeaseKeepAliveDifferentialTests {
    @Test func keepAliveStreamAnswersLikeEtcd() async throws {
        try await withEtcdAndStrata { pair, etcdClient, strataClient in
            for id: Int64 in [7001, 7002] {
                let (etcd, strata) = await pair.both { _, lease in
                    var response = try await lease.leaseGrant(
                        .with {
                            $0.id = id
                            $0.ttl = 60
                        }
                    )
                    response.header = normalized(response.header)
                    return .grant(response)
                }
                #expect(etcd == strata)
            }
            // Live, unknown, live; then (after a revoke) the revoked one.
            let first: [Int64] = [7001, 4242, 7002]
            func keepAlives(_ client: GRPCClient<HTTP2ClientTransport.Posix>) async throws
                -> [Etcdserverpb_LeaseKeepAliveResponse]
            {
                let lease = Etcdserverpb_Lease.Client(wrapping: client)
                let (revoked, revoke) = AsyncStream.makeStream(of: Void.self)
                return try await lease.leaseKeepAlive { writer in
                    for id in first { try await writer.write(.with { $0.id = id }) }
                    for await _ in revoked { break }
                    try await writer.write(.with { $0.id = 7002 })
                } onResponse: { responses in
                    var received: [Etcdserverpb_LeaseKeepAliveResponse] = []
                    for try await var response in responses.messages {
                        response.header = normalized(response.header)
                        received.append(response)
                        if received.count == first.count {
                            _ = try await lease.leaseRevoke(.with { $0.id = 7002 })
                            revoke.yield()
                            revoke.finish()
                        }
                    }
                    return received
                }
            }
            let etcd = try await keepAlives(etcdClient)
            let strata = try await keepAlives(strataClient)
            #expect(etcd.map(\.id) == [7001, 4242, 7002, 7002])
            #expect(etcd.map(\.ttl) == [60, 0, 60, 0])
            #expect(strata == etcd, "etcd:   \(etcd)\nstrata: \(strata)")
        }
    }
}
