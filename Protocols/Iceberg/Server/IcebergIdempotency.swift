internal import Foundation
internal import StrataMVCC
internal import Synchronization

/// `Idempotency-Key`: the first final response of a mutation (2xx, or a deterministic 4xx) is kept in the catalog's
/// keyspace for the advertised lifetime; a retry with the same key gets it back without running again. Concurrent
/// retries of one key wait for the first to finish.
final class IcebergIdempotency: Sendable {
    struct Record: Codable {
        var status: Int
        var body: Data
        var request: String
        var expires: Int64
        var etag: String?
    }

    let store: MVCCStore
    let lifetimeMilliseconds: Int64
    private let inFlight = Mutex<Set<String>>([])

    init(store: MVCCStore, lifetime: Duration) {
        self.store = store
        lifetimeMilliseconds = Int64(lifetime.components.seconds) * 1000
    }

    var enabled: Bool { lifetimeMilliseconds > 0 }

    /// The ISO-8601 duration `/v1/config` advertises.
    var advertisedLifetime: String {
        let seconds = lifetimeMilliseconds / 1000
        if seconds % 3600 == 0 { return "PT\(seconds / 3600)H" }
        if seconds % 60 == 0 { return "PT\(seconds / 60)M" }
        return "PT\(seconds)S"
    }

    /// Runs `body` once per key: a kept response is replayed (`request` must be the same method and path, else
    /// 422); otherwise `body` runs and its final response is kept.
    func run(
        key: String,
        request: String,
        _ body: () async -> (status: Int, body: Data, etag: String?)
    ) async -> (status: Int, body: Data, etag: String?) {
        while !inFlight.withLock({ $0.insert(key).inserted }) {
            try? await Task.sleep(for: .milliseconds(5))
        }
        defer { _ = inFlight.withLock { $0.remove(key) } }
        let storageKey = IcebergCatalog.idempotencyKey(key)
        let now = store.wallMilliseconds
        if let kv = try? store.get(.iceberg, storageKey),
            let record = try? JSONDecoder().decode(Record.self, from: Data(kv.value)), record.expires > now
        {
            guard record.request == request else {
                let error = IcebergError.unprocessable("Idempotency-Key \(key) was used for another request")
                return (error.code, IcebergHTTP.errorBody(error), nil)
            }
            return (record.status, record.body, record.etag)
        }
        let response = await body()
        guard response.status < 500, response.status != 401, response.status != 419 else { return response }
        let record = Record(
            status: response.status,
            body: response.body,
            request: request,
            expires: now + lifetimeMilliseconds,
            etag: response.etag
        )
        if let encoded = try? JSONEncoder().encode(record) {
            _ = try? await store.update(.iceberg) { (txn: inout WriteTransaction) throws(MVCCError) in
                try txn.put(storageKey, Array(encoded))
            }
        }
        return response
    }

    /// Deletes expired records, a bounded batch at a time, every minute.
    func expireRecords() async throws {
        while !Task.isCancelled {
            try await Task.sleep(for: .seconds(60))
            let now = store.wallMilliseconds
            let prefix: [UInt8] = [IcebergCatalog.Kind.idempotency.rawValue]
            guard let read = try? store.range(.iceberg, .prefix(prefix), RangeOptions(limit: 10_000)) else { continue }
            let expired = read.kvs.filter { kv in
                guard let record = try? JSONDecoder().decode(Record.self, from: Data(kv.value)) else { return true }
                return record.expires <= now
            }.map(\.key)
            guard !expired.isEmpty else { continue }
            _ = try? await store.update(.iceberg) { (txn: inout WriteTransaction) throws(MVCCError) in
                for key in expired { try txn.delete(key) }
            }
        }
    }
}
