import Foundation
import Synchronization

// The Iceberg catalog's load generator (compiled, so the client is not the bottleneck): drives a running server
// over loopback with keep-alive connections and prints latency percentiles per scenario, then one summary line.
//
//   IcebergBench PORT [--quick]
//
// Scenarios: loadTable (warm, a table with 100 snapshots), commit (append-snapshot) with 1 writer, 16 writers on
// 16 tables, 16 writers on one table (each retries a 409 after reloading: the conflict rate is 409s / attempts),
// listTables over 10,000 tables, namespace create.

@main
enum IcebergBench {
    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    static func percentile(_ samples: [Double], _ p: Double) -> Double {
        let sorted = samples.sorted()
        guard !sorted.isEmpty else { return .nan }
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
    }

    static func report(_ name: String, _ samples: [Double], extra: String = "") {
        let padded = name.padding(toLength: 40, withPad: " ", startingAt: 0)
        let line =
            padded
            + String(
                format: " n=%6d  p50=%8.3f ms  p99=%8.3f ms  mean=%8.3f ms",
                samples.count,
                percentile(samples, 0.5),
                percentile(samples, 0.99),
                samples.reduce(0, +) / Double(max(samples.count, 1))
            ) + extra
        print(line)
    }

    static func expect(_ result: (status: Int, body: [UInt8]), _ status: Int, _ what: String) {
        guard result.status == status else {
            FileHandle.standardError.write(
                Data(
                    "\(what): HTTP \(result.status): \(String(decoding: result.body.prefix(300), as: UTF8.self))\n".utf8
                )
            )
            exit(1)
        }
    }

    static func json(_ text: String) -> [UInt8] { Array(text.utf8) }

    static let schema =
        #"{"type":"struct","fields":[{"id":1,"name":"id","required":false,"type":"long"},"#
        + #"{"id":2,"name":"v","required":false,"type":"string"}]}"#

    static func createTable(_ connection: HTTPConnection, _ namespace: String, _ name: String) throws {
        expect(
            try connection.request(
                "POST",
                "/v1/namespaces/\(namespace)/tables",
                body: json(#"{"name":"\#(name)","schema":\#(schema)}"#)
            ),
            200,
            "create table \(name)"
        )
    }

    /// An append as pyiceberg sends it: assert the parent, add the snapshot, move main.
    static func appendBody(parent: Int64?, id: Int64, sequence: Int64) -> [UInt8] {
        let parentJSON = parent.map(String.init) ?? "null"
        let parentField = parent.map { #","parent-snapshot-id":\#($0)"# } ?? ""
        return json(
            #"{"requirements":[{"type":"assert-ref-snapshot-id","ref":"main","snapshot-id":\#(parentJSON)}],"#
                + #""updates":[{"action":"add-snapshot","snapshot":{"snapshot-id":\#(id),"sequence-number":\#(sequence),"#
                + #""timestamp-ms":\#(Int64(Date().timeIntervalSince1970 * 1000)),"manifest-list":"file:///tmp/snap-\#(id).avro","#
                + #""summary":{"operation":"append","added-records":"10"}\#(parentField)}},"#
                + #"{"action":"set-snapshot-ref","ref-name":"main","type":"branch","snapshot-id":\#(id)}]}"#
        )
    }

    /// Commits `count` appends to one table from one connection (the table must start with `parent` as main).
    static func appendLoop(_ connection: HTTPConnection, table: String, base: Int64, count: Int) throws -> [Double] {
        var samples: [Double] = []
        var parent: Int64? = nil
        for index in 0..<count {
            let id = base + Int64(index)
            let started = now()
            expect(
                try connection.request(
                    "POST",
                    "/v1/namespaces/bench/tables/\(table)",
                    body: appendBody(parent: parent, id: id, sequence: Int64(index + 1))
                ),
                200,
                "append to \(table)"
            )
            samples.append(Double(now() - started) / 1e6)
            parent = id
        }
        return samples
    }

    static func parallel(_ count: Int, _ body: @escaping @Sendable (Int) throws -> [Double]) -> [Double] {
        let results = Mutex<[Double]>([])
        let group = DispatchGroup()
        for index in 0..<count {
            group.enter()
            Thread {
                do {
                    let samples = try body(index)
                    results.withLock { $0 += samples }
                } catch {
                    FileHandle.standardError.write(Data("worker \(index): \(error)\n".utf8))
                    exit(1)
                }
                group.leave()
            }.start()
        }
        group.wait()
        return results.withLock { $0 }
    }

    static func main() throws {
        let arguments = CommandLine.arguments
        guard arguments.count >= 2, let port = Int(arguments[1]) else {
            FileHandle.standardError.write(Data("usage: IcebergBench PORT [--quick]\n".utf8))
            exit(2)
        }
        let quick = arguments.contains("--quick")
        let scale = quick ? 10 : 1

        let main = try HTTPConnection(port: port)
        expect(
            try main.request("POST", "/v1/namespaces", body: json(#"{"namespace":["bench"]}"#)),
            200,
            "namespace bench"
        )

        // loadTable, warm, on a table with 100 snapshots.
        try createTable(main, "bench", "history")
        _ = try appendLoop(main, table: "history", base: 1_000_000, count: 100)
        for _ in 0..<200 { _ = try main.request("GET", "/v1/namespaces/bench/tables/history") }
        var loads: [Double] = []
        for _ in 0..<(5000 / scale) {
            let started = now()
            let result = try main.request("GET", "/v1/namespaces/bench/tables/history?snapshots=all")
            loads.append(Double(now() - started) / 1e6)
            expect(result, 200, "load")
        }
        report("loadTable (100 snapshots, 1 conn)", loads)
        let loadP50 = percentile(loads, 0.5)
        let loads16 = parallel(16) { _ in
            let connection = try HTTPConnection(port: port)
            var samples: [Double] = []
            for _ in 0..<(1000 / scale) {
                let started = now()
                let result = try connection.request("GET", "/v1/namespaces/bench/tables/history")
                samples.append(Double(now() - started) / 1e6)
                guard result.status == 200 else { throw HTTPConnection.Failure(description: "load \(result.status)") }
            }
            return samples
        }
        report("loadTable (16 conns)", loads16)

        // Commits: 1 writer.
        try createTable(main, "bench", "single")
        let single = try appendLoop(main, table: "single", base: 2_000_000, count: 500 / scale)
        report("commit append, 1 writer", single)
        let commitP50 = percentile(single, 0.5)

        // 16 writers on 16 tables.
        for index in 0..<16 { try createTable(main, "bench", "t\(index)") }
        let spread = parallel(16) { index in
            try appendLoop(
                HTTPConnection(port: port),
                table: "t\(index)",
                base: 3_000_000 + Int64(index) * 10_000,
                count: 200 / scale
            )
        }
        report("commit append, 16 writers, 16 tables", spread)

        // 16 writers on one table: reload, append on top of what was loaded, retry on 409.
        try createTable(main, "bench", "contended")
        let counts = Mutex<(tried: Int, conflicts: Int)>((0, 0))
        let contended = parallel(16) { index in
            let connection = try HTTPConnection(port: port)
            var samples: [Double] = []
            for round in 0..<(20 / scale) {
                let id = 4_000_000 + Int64(index) * 10_000 + Int64(round)
                let started = now()
                while true {
                    let loaded = try connection.request("GET", "/v1/namespaces/bench/tables/contended")
                    let object = try JSONSerialization.jsonObject(with: Data(loaded.body)) as! [String: Any]
                    let metadata = object["metadata"] as! [String: Any]
                    let current = (metadata["current-snapshot-id"] as? NSNumber)?.int64Value ?? -1
                    let sequence = (metadata["last-sequence-number"] as? NSNumber)?.int64Value ?? 0
                    let result = try connection.request(
                        "POST",
                        "/v1/namespaces/bench/tables/contended",
                        body: appendBody(parent: current < 0 ? nil : current, id: id, sequence: sequence + 1)
                    )
                    counts.withLock {
                        $0.tried += 1
                        if result.status == 409 { $0.conflicts += 1 }
                    }
                    if result.status == 200 { break }
                    guard result.status == 409 else {
                        throw HTTPConnection.Failure(description: "commit \(result.status)")
                    }
                }
                samples.append(Double(now() - started) / 1e6)
            }
            return samples
        }
        report(
            "commit append, 16 writers, 1 table",
            contended,
            extra: String(
                format: "  conflicts=%.1f%% of %d attempts (latency incl. reload+retry)",
                100.0 * Double(counts.withLock { $0.conflicts }) / Double(max(counts.withLock { $0.tried }, 1)),
                counts.withLock { $0.tried }
            )
        )

        // listTables over 10,000 tables (created by 16 connections).
        expect(
            try main.request("POST", "/v1/namespaces", body: json(#"{"namespace":["many"]}"#)),
            200,
            "namespace many"
        )
        let tableCount = 10_000 / scale
        _ = parallel(16) { index in
            let connection = try HTTPConnection(port: port)
            for table in stride(from: index, to: tableCount, by: 16) {
                try createTable(connection, "many", "t\(table)")
            }
            return []
        }
        var lists: [Double] = []
        for _ in 0..<20 {
            let started = now()
            let result = try main.request("GET", "/v1/namespaces/many/tables")
            lists.append(Double(now() - started) / 1e6)
            expect(result, 200, "list")
            let object = try JSONSerialization.jsonObject(with: Data(result.body)) as! [String: Any]
            guard (object["identifiers"] as! [Any]).count == tableCount else {
                FileHandle.standardError.write(Data("list returned the wrong count\n".utf8))
                exit(1)
            }
        }
        report("listTables (\(tableCount) tables)", lists)
        let listP50 = percentile(lists, 0.5)

        // Namespace create.
        var creates: [Double] = []
        for index in 0..<(1000 / scale) {
            let started = now()
            expect(
                try main.request(
                    "POST",
                    "/v1/namespaces",
                    body: json(#"{"namespace":["ns\#(index)"],"properties":{"owner":"bench"}}"#)
                ),
                200,
                "namespace create"
            )
            creates.append(Double(now() - started) / 1e6)
        }
        report("namespace create", creates)

        print(
            String(format: "iceberg: load_p50_ms=%.3f commit_p50_ms=%.3f list10k_ms=%.3f", loadP50, commitP50, listP50)
        )

    }
}
