import Foundation
import Logging
import StrataCommon
import StrataConfig
import StrataObservability
import StrataRocksDB
import StrataServer
import StrataTestSupport
import Synchronization
import Testing

/// Builds the same service group `strata serve` runs, in-process, through `StrataServer`.
@Suite("StrataServer in process")
struct ServerInProcessTests {
    func configuration(dataDirectory: String, inMemory: Bool = false) throws -> ServerConfiguration {
        var config = try ServerConfiguration.load(
            toml: "[etcd]\nenabled = false\n[redis]\nenabled = false\n[iceberg]\nenabled = false\n"
                + "[metrics]\nlisten = \"127.0.0.1:0\"\n"
        )
        config.core.server.dataDirectory = dataDirectory
        config.core.server.inMemory = inMemory
        return config
    }

    /// Runs a server, hands its bound admin port to `body`, then shuts it down by cancellation.
    func withServer(
        _ config: ServerConfiguration,
        _ body: @Sendable (StrataServer, Int) async throws -> Void
    ) async throws {
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let server = try StrataServer(
            configuration: config,
            logger: Logger(label: "test"),
            onAdminListening: { continuation.yield($0.port) }
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run(handleSignals: false) }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            try await body(server, port)
            group.cancelAll()
        }
        #expect(server.storage.database.isClosed)
    }

    /// A request's response once the server answers: polled, since on a loaded runner (blocking tests hold the cooperative
    /// threads the in-process server also runs on) the first request can wait longer than one timeout.
    func fetch(_ port: Int, _ path: String = "/health") async -> TestNetwork.HTTPResponse? {
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            if let response = await TestNetwork.fetch(port: port, path: path) { return response }
            try? await Task.sleep(nanoseconds: 100_000_000)
        }
        return nil
    }

    @Test func servesHealthAndBecomesUnhealthyWhenStorageCloses() async throws {
        let directory = TemporaryDirectory()
        try await withServer(try configuration(dataDirectory: directory.appending("data"))) { server, port in
            #expect(port > 0)
            #expect(await fetch(port)?.status == 200)
            #expect(server.runningFrontEnds.isEmpty)
            server.storage.close()
            let health = try #require(await fetch(port))
            #expect(health.status == 503)
            #expect(health.body == "{\"health\":\"false\",\"reason\":\"storage: database is closed\"}\n")
            #expect(await fetch(port, "/readyz")?.status == 503)
        }
    }

    /// `/health` waits for the front-end listeners: services start concurrently, and a client must not be refused
    /// by a port that is not bound yet after the process reported itself healthy.
    @Test func readinessWaitsForEveryListener() async {
        let readiness = ListenerReadiness(waitingFor: ["etcd", "redis"])
        #expect(await readiness.checkHealth() == .unhealthy("not listening yet: etcd, redis"))
        readiness.markListening("redis")
        #expect(await readiness.checkHealth() == .unhealthy("not listening yet: etcd"))
        readiness.markListening("etcd")
        #expect(await readiness.checkHealth() == .healthy)
        #expect(await ListenerReadiness(waitingFor: []).checkHealth() == .healthy)
    }

    @Test func inMemoryServerStoresNothingOnDisk() async throws {
        let directory = TemporaryDirectory()
        let dataDirectory = directory.appending("data")
        try await withServer(try configuration(dataDirectory: dataDirectory, inMemory: true)) { server, port in
            try server.storage.database.put(Array("k".utf8), Array("v".utf8), sync: true)
            #expect(try server.storage.database.get(Array("k".utf8)) == Array("v".utf8))
            #expect(await fetch(port)?.status == 200)
        }
        #expect(!FileManager.default.fileExists(atPath: dataDirectory))
    }

    @Test func lockedDirectoryFailsConstruction() throws {
        let directory = TemporaryDirectory()
        let config = try configuration(dataDirectory: directory.appending("data"))
        let first = try StrataServer(configuration: config, logger: Logger(label: "test"))
        let error = #expect(throws: DataDirectoryLock.LockedError.self) {
            _ = try StrataServer(configuration: config, logger: Logger(label: "test"))
        }
        #expect(error?.ownerPID == getpid())
        first.storage.close()
        // Closing releases the lock for the next server.
        _ = try StrataServer(configuration: config, logger: Logger(label: "test"))
    }
}
