internal import CCompression
internal import Foundation

/// Reads Avro object container files (Iceberg's manifest lists and manifests) far enough to list the file paths
/// they name: the header's schema, then every record of every block (codecs null, deflate, snappy, zstandard),
/// decoded generically. Purge uses it to find a table's manifests and data files; every count and length is checked
/// against what is left of the file, so a corrupt file is an error, never a crash or a huge allocation.
package struct AvroFile {
    indirect enum Schema {
        case null, boolean, int, long, float, double, bytes, string
        case record([(name: String, schema: Schema)])
        case enumeration(symbols: Int)
        case array(Schema)
        case map(Schema)
        case union([Schema])
        case fixed(Int)
    }

    package enum Value {
        case null
        case scalar
        case string(String)
        case array([Value])
        case record([String: Value])
    }

    package struct Failure: Error, CustomStringConvertible {
        package let description: String
    }

    package let records: [Value]

    package init(_ data: [UInt8]) throws {
        var reader = Reader(data: data[...])
        guard let magic = reader.take(4), Array(magic) == Array("Obj".utf8) + [1] else {
            throw Failure(description: "not an Avro file")
        }
        var metadata: [String: [UInt8]] = [:]
        while true {
            var count = try reader.long()
            if count == 0 { break }
            if count < 0 {
                count = -count
                _ = try reader.long()
            }
            for _ in 0..<count {
                let key = String(decoding: try reader.bytes(), as: UTF8.self)
                metadata[key] = Array(try reader.bytes())
            }
        }
        guard let schemaJSON = metadata["avro.schema"] else { throw Failure(description: "no avro.schema") }
        var names: [String: Schema] = [:]
        let schema = try Self.parse(try JSONDecoder().decode(JSONValue.self, from: Data(schemaJSON)), names: &names)
        let codec = metadata["avro.codec"].map { String(decoding: $0, as: UTF8.self) } ?? "null"
        guard let sync = reader.take(16) else { throw Failure(description: "truncated header") }
        var records: [Value] = []
        while !reader.isAtEnd {
            let count = try reader.long()
            let size = try reader.long()
            guard count >= 0, size >= 0, let block = reader.take(Int(size)) else {
                throw Failure(description: "truncated block")
            }
            var blockReader = Reader(data: try Self.decompress(block, codec: codec)[...])
            // A record takes at least a byte in any file purge reads: a larger count is corruption, not a loop.
            guard count <= Int64(blockReader.data.count) + 1 else {
                throw Failure(description: "count beyond the data")
            }
            for _ in 0..<count { records.append(try Self.decode(schema, &blockReader, depth: 0)) }
            guard reader.take(16) == sync else { throw Failure(description: "bad sync marker") }
        }
        self.records = records
    }

    // MARK: Schema

    static func parse(_ json: JSONValue, names: inout [String: Schema]) throws -> Schema {
        switch json {
        case .string(let name):
            switch name {
            case "null": return .null
            case "boolean": return .boolean
            case "int": return .int
            case "long": return .long
            case "float": return .float
            case "double": return .double
            case "bytes": return .bytes
            case "string": return .string
            default:
                guard let named = names[name] ?? names.first(where: { $0.key.hasSuffix("." + name) })?.value else {
                    throw Failure(description: "unknown Avro type \(name)")
                }
                return named
            }
        case .array(let branches):
            return .union(try branches.map { try parse($0, names: &names) })
        case .object(let object):
            guard let type = object["type"] else { throw Failure(description: "schema without a type") }
            guard case .string(let kind) = type else { return try parse(type, names: &names) }
            switch kind {
            case "record", "error":
                var fields: [(String, Schema)] = []
                for field in object["fields"]?.array ?? [] {
                    guard let name = field["name"]?.string, let fieldType = field["type"] else {
                        throw Failure(description: "record field without a name or type")
                    }
                    fields.append((name, try parse(fieldType, names: &names)))
                }
                let record = Schema.record(fields)
                if let name = object["name"]?.string { names[name] = record }
                return record
            case "enum":
                let schema = Schema.enumeration(symbols: object["symbols"]?.array?.count ?? 0)
                if let name = object["name"]?.string { names[name] = schema }
                return schema
            case "array":
                guard let items = object["items"] else { throw Failure(description: "array without items") }
                return .array(try parse(items, names: &names))
            case "map":
                guard let values = object["values"] else { throw Failure(description: "map without values") }
                return .map(try parse(values, names: &names))
            case "fixed":
                let schema = Schema.fixed(Int(object["size"]?.int ?? 0))
                if let name = object["name"]?.string { names[name] = schema }
                return schema
            default:
                return try parse(.string(kind), names: &names)
            }
        default:
            throw Failure(description: "unreadable Avro schema")
        }
    }

    // MARK: Data

    static func decode(_ schema: Schema, _ reader: inout Reader, depth: Int) throws -> Value {
        guard depth < 64 else { throw Failure(description: "Avro value nested too deeply") }
        switch schema {
        case .null: return .null
        case .boolean: _ = try reader.byte(); return .scalar
        case .int, .long, .enumeration: _ = try reader.long(); return .scalar
        case .float: guard reader.take(4) != nil else { throw Failure(description: "truncated") }; return .scalar
        case .double: guard reader.take(8) != nil else { throw Failure(description: "truncated") }; return .scalar
        case .bytes: _ = try reader.bytes(); return .scalar
        case .string: return .string(String(decoding: try reader.bytes(), as: UTF8.self))
        case .fixed(let size):
            guard size >= 0, reader.take(size) != nil else { throw Failure(description: "truncated") }
            return .scalar
        case .record(let fields):
            var values: [String: Value] = [:]
            for field in fields { values[field.name] = try decode(field.schema, &reader, depth: depth + 1) }
            return .record(values)
        case .union(let branches):
            let index = try reader.long()
            guard index >= 0, index < branches.count else { throw Failure(description: "bad union branch") }
            return try decode(branches[Int(index)], &reader, depth: depth + 1)
        case .array(let items):
            var values: [Value] = []
            try reader.blocks { reader in values.append(try decode(items, &reader, depth: depth + 1)) }
            return .array(values)
        case .map(let itemSchema):
            var values: [Value] = []
            try reader.blocks { reader in
                _ = try reader.bytes()
                values.append(try decode(itemSchema, &reader, depth: depth + 1))
            }
            return .array(values)
        }
    }

    static func decompress(_ block: ArraySlice<UInt8>, codec: String) throws -> [UInt8] {
        switch codec {
        case "null":
            return Array(block)
        case "deflate":
            return try inflate(Array(block))
        case "snappy":
            // Snappy-compressed data followed by the CRC32 of the uncompressed data.
            guard block.count >= 4 else { throw Failure(description: "truncated snappy block") }
            let compressed = Array(block.dropLast(4))
            var length = 0
            guard
                snappy_uncompressed_length(compressed.map { CChar(bitPattern: $0) }, compressed.count, &length)
                    == SNAPPY_OK, length <= 1 << 30
            else { throw Failure(description: "bad snappy block") }
            var output = [CChar](repeating: 0, count: max(length, 1))
            guard
                snappy_uncompress(compressed.map { CChar(bitPattern: $0) }, compressed.count, &output, &length)
                    == SNAPPY_OK
            else { throw Failure(description: "bad snappy block") }
            return output.prefix(length).map { UInt8(bitPattern: $0) }
        case "zstandard":
            let input = Array(block)
            let stream = ZSTD_createDStream()
            defer { ZSTD_freeDStream(stream) }
            ZSTD_initDStream(stream)
            var output: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            try input.withUnsafeBytes { raw in
                var inBuffer = ZSTD_inBuffer(src: raw.baseAddress, size: raw.count, pos: 0)
                while inBuffer.pos < inBuffer.size {
                    let produced = try chunk.withUnsafeMutableBytes { out -> Int in
                        var outBuffer = ZSTD_outBuffer(dst: out.baseAddress, size: out.count, pos: 0)
                        let result = ZSTD_decompressStream(stream, &outBuffer, &inBuffer)
                        guard ZSTD_isError(result) == 0 else { throw Failure(description: "bad zstandard block") }
                        return outBuffer.pos
                    }
                    output += chunk.prefix(produced)
                    guard output.count <= 1 << 30 else { throw Failure(description: "block too large") }
                    if produced == 0 && inBuffer.pos < inBuffer.size { continue }
                }
            }
            return output
        default:
            throw Failure(description: "unsupported Avro codec \(codec)")
        }
    }

    /// Raw deflate (RFC 1951), as Avro's deflate codec writes it.
    static func inflate(_ input: [UInt8]) throws -> [UInt8] {
        var stream = z_stream()
        guard inflateInit2_(&stream, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw Failure(description: "zlib init failed")
        }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var input = input
        try input.withUnsafeMutableBufferPointer { source in
            stream.next_in = source.baseAddress
            stream.avail_in = uInt(source.count)
            while true {
                let (status, produced) = chunk.withUnsafeMutableBufferPointer { out -> (Int32, Int) in
                    stream.next_out = out.baseAddress
                    stream.avail_out = uInt(out.count)
                    let status = zlibInflate(&stream)
                    return (status, out.count - Int(stream.avail_out))
                }
                output += chunk.prefix(produced)
                guard output.count <= 1 << 30 else { throw Failure(description: "block too large") }
                if status == Z_STREAM_END || (status == Z_BUF_ERROR && stream.avail_in == 0) { return }
                guard status == Z_OK else { throw Failure(description: "bad deflate block") }
            }
        }
        return output
    }

    private static func zlibInflate(_ stream: inout z_stream) -> Int32 { CCompression.inflate(&stream, Z_NO_FLUSH) }

    /// A cursor over Avro's binary encoding.
    struct Reader {
        var data: ArraySlice<UInt8>

        var isAtEnd: Bool { data.isEmpty }

        mutating func take(_ count: Int) -> ArraySlice<UInt8>? {
            guard count >= 0, data.count >= count else { return nil }
            defer { data = data.dropFirst(count) }
            return data.prefix(count)
        }

        mutating func byte() throws -> UInt8 {
            guard let first = data.first else { throw Failure(description: "truncated") }
            data = data.dropFirst()
            return first
        }

        /// A zig-zag varint.
        mutating func long() throws -> Int64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                let byte = try byte()
                guard shift < 64 else { throw Failure(description: "varint too long") }
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { break }
                shift += 7
            }
            return Int64(bitPattern: (value >> 1) ^ (0 &- (value & 1)))
        }

        mutating func bytes() throws -> ArraySlice<UInt8> {
            let count = try long()
            guard count >= 0, count <= Int64(data.count), let slice = take(Int(count)) else {
                throw Failure(description: "length beyond the data")
            }
            return slice
        }

        /// Array and map blocks: a count (negative: followed by a byte size), items, until a zero count.
        mutating func blocks(_ item: (inout Reader) throws -> Void) throws {
            while true {
                var count = try long()
                if count == 0 { return }
                if count < 0 {
                    count = -count
                    _ = try long()
                }
                guard count <= Int64(data.count) + 1 else { throw Failure(description: "count beyond the data") }
                for _ in 0..<count { try item(&self) }
            }
        }
    }
}

extension AvroFile.Value {
    /// The string at a path of record fields (`["data_file", "file_path"]`).
    package func string(at path: [String]) -> String? {
        guard let first = path.first else {
            if case .string(let text) = self { return text }
            return nil
        }
        guard case .record(let fields) = self else { return nil }
        return fields[first]?.string(at: Array(path.dropFirst()))
    }
}
