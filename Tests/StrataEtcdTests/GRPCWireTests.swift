import GRPCCore
import NIOCore
import StrataEtcd
import Testing

@Suite("gRPC wire format")
struct GRPCWireTests {
    func framed(_ payload: [UInt8], compressed: Bool = false) -> [UInt8] {
        let length = UInt32(payload.count)
        return [
            compressed ? 1 : 0, UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF),
            UInt8(length & 0xFF),
        ] + payload
    }

    @Test func messagesSplitAcrossFramesAndSharingOneFrame() throws {
        var deframer = GRPCDeframer(limit: 1024)
        let bytes = framed([1, 2, 3]) + framed([]) + framed(Array(repeating: 7, count: 300))
        // Fed one byte at a time: every message comes out whole, once.
        var messages: [[UInt8]] = []
        for byte in bytes {
            deframer.append(ByteBuffer(bytes: [byte]))
            while let message = try deframer.next() { messages.append(Array(message.readableBytesView)) }
        }
        #expect(messages == [[1, 2, 3], [], Array(repeating: 7, count: 300)])
        #expect(!deframer.hasPartialMessage)
        // All in one buffer.
        var whole = GRPCDeframer(limit: 1024)
        whole.append(ByteBuffer(bytes: bytes))
        var count = 0
        while try whole.next() != nil { count += 1 }
        #expect(count == 3)
        // Half a message stays pending.
        var partial = GRPCDeframer(limit: 1024)
        partial.append(ByteBuffer(bytes: framed([9, 9, 9, 9]).prefix(6)))
        #expect(try partial.next() == nil)
        #expect(partial.hasPartialMessage)
    }

    @Test func oversizedAndCompressedMessagesAreRefusedBeforeTheyArrive() {
        var deframer = GRPCDeframer(limit: 100)
        // Only the 5-byte prefix has arrived: the length alone refuses it (nothing is buffered up to the limit).
        deframer.append(ByteBuffer(bytes: framed(Array(repeating: 0, count: 101)).prefix(5)))
        #expect(throws: GRPCDeframer.Failure.tooLarge(length: 101, limit: 100)) { try deframer.next() }
        #expect(
            GRPCDeframer.Failure.tooLarge(length: 101, limit: 100).status.message
                == "grpc: received message larger than max (101 vs. 100)"
        )
        #expect(GRPCDeframer.Failure.tooLarge(length: 101, limit: 100).status.code == .resourceExhausted)
        var compressed = GRPCDeframer(limit: 100)
        compressed.append(ByteBuffer(bytes: framed([1], compressed: true)))
        #expect(throws: GRPCDeframer.Failure.compressed) { try compressed.next() }
    }

    @Test func statusMessagesArePercentEncodedAsGRPCSpecifies() {
        #expect(GRPCWire.percentEncoded("etcdserver: key not found") == "etcdserver: key not found")
        #expect(GRPCWire.percentEncoded("100% done\n") == "100%25 done%0A")
        #expect(GRPCWire.percentEncoded("ключ") == "%D0%BA%D0%BB%D1%8E%D1%87")
    }

    @Test func binaryMetadataIsBase64() {
        #expect(GRPCWire.base64([]) == "")
        #expect(GRPCWire.base64(Array("f".utf8)) == "Zg==")
        #expect(GRPCWire.base64(Array("fo".utf8)) == "Zm8=")
        #expect(GRPCWire.base64(Array("foobar".utf8)) == "Zm9vYmFy")
    }

    @Test func methodPaths() {
        #expect(
            GRPCWire.methodDescriptor("/etcdserverpb.KV/Range")
                == MethodDescriptor(fullyQualifiedService: "etcdserverpb.KV", method: "Range")
        )
        for bad in ["", "/", "etcdserverpb.KV/Range", "/etcdserverpb.KV", "/etcdserverpb.KV/", "//Range", "/a/b/c"] {
            #expect(GRPCWire.methodDescriptor(bad) == nil, "\(bad)")
        }
    }
}
