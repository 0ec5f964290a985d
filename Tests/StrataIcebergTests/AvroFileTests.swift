internal import StrataIceberg
internal import Testing

/// The Avro reader purge uses on manifest lists and manifests: records decoded by the file's own schema; corrupt
/// files are errors, never crashes. (pyiceberg's deflate-compressed manifests are read in the end-to-end workload's
/// purge of a table whose data files only its manifests locate.)
@Suite("Avro container files")
struct AvroFileTests {
    /// Avro's zig-zag varint.
    func long(_ value: Int64) -> [UInt8] {
        var encoded = UInt64(bitPattern: (value << 1) ^ (value >> 63))
        var bytes: [UInt8] = []
        while encoded >= 0x80 {
            bytes.append(UInt8(encoded & 0x7F) | 0x80)
            encoded >>= 7
        }
        return bytes + [UInt8(encoded)]
    }

    func string(_ text: String) -> [UInt8] { long(Int64(text.utf8.count)) + Array(text.utf8) }

    /// A manifest-list-like file: records of `manifest_path` (string), `added` (union null/long), `parts` (array of
    /// records), `extra` (map of bytes), with the null codec, as DuckDB writes.
    func file(records: [(path: String, added: Int64?)]) -> [UInt8] {
        let schema = #"""
            {"type":"record","name":"manifest_file","fields":[{"name":"manifest_path","type":"string"},
            {"name":"added","type":["null","long"]},{"name":"parts","type":{"type":"array","items":
            {"type":"record","name":"r508","fields":[{"name":"contains_null","type":"boolean"},
            {"name":"lower","type":["null",{"type":"fixed","name":"f","size":4}]}]}}},
            {"name":"extra","type":{"type":"map","values":"bytes"}}]}
            """#
        let sync = [UInt8](repeating: 0xAB, count: 16)
        var bytes =
            Array("Obj".utf8) + [1] + long(2) + string("avro.schema") + string(schema) + string("avro.codec")
            + string("null") + long(0) + sync
        var block: [UInt8] = []
        for record in records {
            block += string(record.path)
            block += record.added.map { long(1) + long($0) } ?? long(0)
            block += long(1) + [1] + long(1) + [1, 2, 3, 4] + long(0)  // one part: contains_null, lower fixed
            block += long(-1) + long(9) + string("k") + string("value") + long(0)  // a map block with its byte size
        }
        bytes += long(Int64(records.count)) + long(Int64(block.count)) + block + sync
        return bytes
    }

    @Test func recordsDecodeByTheirSchema() throws {
        let records = [("file:///w/t/metadata/a-m0.avro", Int64(3)), ("file:///w/t/metadata/b-m0.avro", nil)]
        let avro = try AvroFile(file(records: records))
        #expect(avro.records.map { $0.string(at: ["manifest_path"]) } == records.map(\.0))
    }

    @Test func corruptFilesAreErrors() throws {
        let good = file(records: [("file:///w/t/metadata/a-m0.avro", 1)])
        #expect(throws: AvroFile.Failure.self) { try AvroFile(Array("Obj".utf8)) }
        #expect(throws: AvroFile.Failure.self) { try AvroFile(Array(good.dropLast(5))) }
        var badSync = good
        badSync[badSync.count - 1] ^= 0xFF
        #expect(throws: AvroFile.Failure.self) { try AvroFile(badSync) }
        // Every truncation and every single-byte flip: an error or a result, never a crash or a hang.
        for length in 0..<good.count { _ = try? AvroFile(Array(good.prefix(length))) }
        for index in good.indices {
            var flipped = good
            flipped[index] ^= 0x80
            _ = try? AvroFile(flipped)
        }
    }
}
