internal import Foundation
internal import StrataTestSupport
internal import Testing

/// pyiceberg 0.12 and DuckDB 1.5.5's iceberg extension against the real binary (Tests/PythonClients/
/// iceberg_workload.py): nested namespaces, partitioned and sorted tables, appends read by both clients, DuckDB's
/// CTAS/INSERT/UPDATE/DELETE read by pyiceberg, schema evolution and time travel, properties, rename, register,
/// views, drop and purge, two racing writers — then a restart, after which everything is still there.
@Suite("Iceberg clients: pyiceberg and DuckDB", .serialized)
struct IcebergClientTests {
    @Test(arguments: ["none", "token", "oauth2"])
    func workloadSurvivesRestart(auth: String) throws {
        let settings: String
        let credential: String
        switch auth {
        case "token":
            settings = "auth = \"token\"\ntoken = \"s3cr3t-token\""
            credential = "token=s3cr3t-token"
        case "oauth2":
            settings = "auth = \"oauth2\"\nclients = [\"spark:client-secret\"]"
            credential = "credential=spark:client-secret"
        default:
            settings = ""
            credential = ""
        }
        let server = try IcebergTestServer(settings: settings)
        let common = [server.uri, server.warehouse, IcebergTestServer.extensions]
        let write = try server.runPython("iceberg_workload.py", common + ["write", credential])
        #expect(write.status == 0 && write.output.hasSuffix("ok\n"), "\(write.output)\n\(write.errors)")
        try server.restart(settings: settings)
        let verify = try server.runPython("iceberg_workload.py", common + ["verify", credential])
        #expect(verify.status == 0 && verify.output.hasSuffix("ok\n"), "\(verify.output)\n\(verify.errors)")
    }
}

/// The REST surface against the spec (Tests/PythonClients/iceberg_conformance.py): all 35 operations with valid and
/// invalid inputs, responses validated against the spec's schemas, errors against its error model; then auth
/// (static token; oauth2 with form and Basic credentials, expiry → 419) and named warehouses.
@Suite("Iceberg REST conformance")
struct IcebergConformanceTests {
    func run(settings: String = "", _ arguments: [String], server: IcebergTestServer? = nil) throws {
        let server = try server ?? IcebergTestServer(settings: settings)
        let result = try server.runPython("iceberg_conformance.py", [server.uri, server.warehouse] + arguments)
        #expect(result.status == 0 && result.output.hasSuffix("ok\n"), "\(result.output)\n\(result.errors)")
    }

    @Test func everyOperation() throws { try run(["spec"]) }

    @Test func staticToken() throws {
        try run(settings: "auth = \"token\"\ntoken = \"t0ken\"", ["token", "t0ken"])
    }

    @Test func oauth2ClientCredentials() throws {
        try run(
            settings: "auth = \"oauth2\"\nclients = [\"duck:quack\", \"other:x\"]\ntoken_lifetime = \"1s\"",
            ["oauth2", "duck:quack"]
        )
    }

    @Test func namedWarehouses() throws {
        let directory = TemporaryDirectory()
        let analytics = directory.appending("analytics")
        try run(settings: "warehouses = { analytics = \"\(analytics)\" }", ["warehouses", "analytics", analytics])
    }
}
