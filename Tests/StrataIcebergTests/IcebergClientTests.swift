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
