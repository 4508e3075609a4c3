import XCTest
import PeekTestSupport
import CZlib
@testable import PeekWebSocket

final class PerMessageDeflateCodecTests: XCTestCase {
    /// RFC 7692 §7.2.3.1: "Hello" as one fixed-Huffman block, BFINAL clear, tail stripped.
    private let helloCompressed: [UInt8] = [0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00]

    private func deflateMachine(maxMessageBytes: Int = 1 << 20) -> WebSocketStateMachine {
        makeMachine(maxMessageBytes: maxMessageBytes, deflate: PerMessageDeflateParameters())
    }

    /// Text with structure (so it compresses) but varied enough to exercise long back-references.
    private func sampleText(_ count: Int) -> [UInt8] {
        var rng = SplitMix64(seed: 42)
        let words = ["ticket", "priority", "urgent", "customer", "replied", "κόσμε", "€", "status", "{\"seq\":", "}"]
        var out: [UInt8] = []
        while out.count < count {
            out += bytes(words.randomElement(using: &rng)! + " ")
            if Int.random(in: 0..<8, using: &rng) == 0 { out += bytes(String(Int.random(in: 0..<100_000, using: &rng))) }
        }
        // Cut back to a character boundary.
        while out.count > count || !UTF8Validator.isValid(out) { out.removeLast() }
        return out
    }

    func testCodec_rfcHello_compressesToRFCBytes() {
        XCTAssertEqual(PerMessageDeflateCodec().compress(bytes("Hello")), helloCompressed)
    }

    func testCodec_emptyMessage_compressesToSingleZeroByte() {
        // RFC 7692 §7.2.3.6: an empty message is one 0x00 (an empty stored block minus its tail).
        let codec = PerMessageDeflateCodec()
        XCTAssertEqual(codec.compress([]), [0x00])
        XCTAssertEqual(try codec.decompress([0x00], maxBytes: 10), [])
    }

    func testCodec_rfcExamples_decompressToHello() throws {
        let codec = PerMessageDeflateCodec()
        XCTAssertEqual(try codec.decompress(helloCompressed, maxBytes: 100), bytes("Hello"))
        // §7.2.3.3: one stored (uncompressed) block: 00, LEN 0005, NLEN fffa, "Hello", then 00.
        XCTAssertEqual(try codec.decompress([0x00, 0x05, 0x00, 0xFA, 0xFF, 0x48, 0x65, 0x6C, 0x6C, 0x6F, 0x00], maxBytes: 100),
                       bytes("Hello"))
        // §7.2.3.5: two blocks, "He" then a sync-flush empty block then "llo".
        XCTAssertEqual(try codec.decompress([0xF2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xCA, 0xC9, 0xC9, 0x07, 0x00], maxBytes: 100),
                       bytes("Hello"))
        // §7.2.3.4: BFINAL set (what zlib's Z_FINISH produces for "Hello"): the stream ends and
        // the appended tail is ignored.
        XCTAssertEqual(try codec.decompress([0xF3, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00], maxBytes: 100), bytes("Hello"))
    }

    func testCodec_roundTripAtEveryWindowSize_restoresMessage() throws {
        let codec = PerMessageDeflateCodec()
        let message = sampleText(200_000)
        for bits in 9...15 {
            let compressed = codec.compress(message, windowBits: bits)
            XCTAssertLessThan(compressed.count, message.count / 2, "window \(bits) compresses")
            XCTAssertEqual(try codec.decompress(compressed, maxBytes: message.count), message, "window \(bits)")
        }
        // The streams reset after every message: the same input compresses to the same bytes.
        XCTAssertEqual(codec.compress(message), codec.compress(message))
    }

    func testCodec_window8Negotiated_outputInflatesWithEightBitWindow() throws {
        // Proves the 8-to-9 substitution in deflateWindowBits: a client that allocated a 256-byte
        // window (raw inflate, windowBits -8) must read what we send for server_max_window_bits=8.
        // The message repeats 300-byte blocks, so a larger window would reach back > 256 bytes.
        let parameters = try XCTUnwrap(PerMessageDeflate.negotiate(offers: ["permessage-deflate; server_max_window_bits=8"]))
        var rng = SplitMix64(seed: 5)
        let blocks = (0..<8).map { _ in (0..<300).map { _ in UInt8.random(in: 0x61...0x7A, using: &rng) } }
        let message = (0..<200).flatMap { _ in blocks.randomElement(using: &rng)! }
        let tail: [UInt8] = [0x00, 0x00, 0xFF, 0xFF]
        let codec = PerMessageDeflateCodec()
        let compressed = codec.compress(message, windowBits: parameters.deflateWindowBits)
        XCTAssertEqual(try rawInflate(compressed + tail, windowBits: 8), message)
        // The check has teeth: the same message deflated with a 15-bit window does not inflate so.
        XCTAssertNil(try rawInflate(codec.compress(message, windowBits: 15) + tail, windowBits: 8))
    }

    /// Independent raw inflate with a chosen window, straight on zlib. Output goes 16 bytes per
    /// call so back-references must come from zlib's sliding window, whose size is the point;
    /// nil when zlib rejects the data (a distance beyond the window).
    private func rawInflate(_ input: [UInt8], windowBits: Int32) throws -> [UInt8]? {
        var stream = z_stream()
        XCTAssertEqual(CZlib_inflateInit2(&stream, -windowBits), Z_OK)
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        var input = input
        var chunk = [UInt8](repeating: 0, count: 16)
        return input.withUnsafeMutableBufferPointer { inBuffer -> [UInt8]? in
            stream.next_in = inBuffer.baseAddress
            stream.avail_in = uInt(inBuffer.count)
            while true {
                let (rc, produced) = chunk.withUnsafeMutableBufferPointer { outBuffer in
                    stream.next_out = outBuffer.baseAddress
                    stream.avail_out = uInt(outBuffer.count)
                    let rc = inflate(&stream, Z_SYNC_FLUSH)
                    return (rc, outBuffer.count - Int(stream.avail_out))
                }
                output += chunk[..<produced]
                if rc == Z_BUF_ERROR || (rc == Z_OK && stream.avail_in == 0 && produced < chunk.count) { return output }
                if rc != Z_OK { return nil }
            }
        }
    }

    func testCodec_zipBomb_stopsAtMaxBytes() {
        // 64 MiB of zeros compresses to ~64 KiB; inflating must stop at the limit, not at 64 MiB.
        let codec = PerMessageDeflateCodec()
        let bomb = codec.compress([UInt8](repeating: 0, count: 64 << 20))
        XCTAssertLessThan(bomb.count, 100_000)
        XCTAssertThrowsError(try codec.decompress(bomb, maxBytes: 1 << 20)) { XCTAssertEqual($0 as? FrameError, .messageTooBig) }
        // The shared stream is reset after the failure and works for the next message.
        XCTAssertEqual(try codec.decompress(helloCompressed, maxBytes: 100), bytes("Hello"))
    }

    func testCodec_corruptData_throwsInvalidCompressedData() {
        let codec = PerMessageDeflateCodec()
        // BTYPE 11 (reserved) in the first block header.
        XCTAssertThrowsError(try codec.decompress([0xFF, 0xFF, 0xFF], maxBytes: 100)) {
            XCTAssertEqual($0 as? FrameError, .invalidCompressedData)
        }
        // "Hello" cut mid-block: inflate would stop without reaching a block boundary.
        XCTAssertThrowsError(try codec.decompress([0xF2, 0x48, 0xCD], maxBytes: 100)) {
            XCTAssertEqual($0 as? FrameError, .invalidCompressedData)
        }
        XCTAssertEqual(try codec.decompress(helloCompressed, maxBytes: 100), bytes("Hello"))
    }

    // MARK: - Through the state machine

    func testStateMachine_rfcCompressedHello_emitsText() {
        // RFC 7692 §7.2.3.1 frame c1 07 f2 48 cd c9 c9 07 00, masked as a client sends it.
        let codec = PerMessageDeflateCodec()
        var ws = deflateMachine()
        XCTAssertEqual(ws.receive(clientFrame(.text, helloCompressed, rsv1: true), deflate: codec), [.text(bytes("Hello"))])
    }

    func testStateMachine_rfcFragmentedCompressedHello_emitsText() {
        // RFC 7692 §7.2.3.1 fragmented: 41 03 f2 48 cd, then 80 04 c9 c9 07 00 (RSV1 on the first only).
        let codec = PerMessageDeflateCodec()
        var ws = deflateMachine()
        let input = clientFrame(.text, [0xF2, 0x48, 0xCD], fin: false, rsv1: true) + clientFrame(.continuation, [0xC9, 0xC9, 0x07, 0x00])
        XCTAssertEqual(ws.receive(input, deflate: codec), [.text(bytes("Hello"))])
    }

    func testStateMachine_uncompressedMessageWithDeflateNegotiated_passesThrough() {
        var ws = deflateMachine()
        XCTAssertEqual(ws.receive(clientFrame(.text, "plain"), deflate: PerMessageDeflateCodec()), [.text(bytes("plain"))])
    }

    func testStateMachine_rsv1OnContinuation_closes1002() {
        var ws = deflateMachine()
        let input = clientFrame(.text, [0xF2, 0x48, 0xCD], fin: false, rsv1: true) + clientFrame(.continuation, [0xC9], rsv1: true)
        assertProtocolError(ws.receive(input, deflate: PerMessageDeflateCodec()), .compressionBitMisplaced, code: 1002)
    }

    func testStateMachine_sharedCodecInterleavedConnections_eachGetsItsMessage() {
        // Two connections on one loop share the codec; A's message is split around B's.
        let codec = PerMessageDeflateCodec()
        let a = sampleText(50_000), b = sampleText(3_000)
        let compressedA = codec.compress(a), compressedB = codec.compress(b)
        var wsA = deflateMachine(), wsB = deflateMachine()
        let half = compressedA.count / 2
        XCTAssertEqual(wsA.receive(clientFrame(.text, Array(compressedA[..<half]), fin: false, rsv1: true), deflate: codec), [])
        XCTAssertEqual(wsB.receive(clientFrame(.text, compressedB, rsv1: true), deflate: codec), [.text(b)])
        XCTAssertEqual(wsA.receive(clientFrame(.continuation, Array(compressedA[half...])), deflate: codec), [.text(a)])
    }

    func testStateMachine_compressedZipBomb_closes1009() {
        let codec = PerMessageDeflateCodec()
        var ws = deflateMachine(maxMessageBytes: 1 << 20)
        let bomb = codec.compress([UInt8](repeating: 0x61, count: 8 << 20))
        assertProtocolError(ws.receive(clientFrame(.text, bomb, rsv1: true), deflate: codec), .messageTooBig, code: 1009)
    }

    func testStateMachine_compressedInvalidUTF8_closes1007() {
        let codec = PerMessageDeflateCodec()
        var ws = deflateMachine()
        let input = clientFrame(.text, codec.compress([0x61, 0xED, 0xA0, 0x80]), rsv1: true)
        assertProtocolError(ws.receive(input, deflate: codec), .invalidUTF8, code: 1007)
    }

    func testStateMachine_corruptCompressedMessage_closes1007() {
        var ws = deflateMachine()
        assertProtocolError(ws.receive(clientFrame(.binary, [0xFF, 0xFF, 0xFF], rsv1: true), deflate: PerMessageDeflateCodec()),
                            .invalidCompressedData, code: 1007)
    }

    func testStateMachine_compressedWithoutCodec_closes1011() {
        var ws = deflateMachine()
        assertProtocolError(ws.receive(clientFrame(.text, helloCompressed, rsv1: true), deflate: nil), .deflateUnavailable, code: 1011)
    }

    func testStateMachine_makeMessageFrame_compressesAboveThreshold() throws {
        let codec = PerMessageDeflateCodec(minimumCompressedBytes: 64)
        let ws = deflateMachine()
        let client = FrameParser(role: .client, maxFrameBytes: 1 << 20, allowsCompression: true)

        let big = sampleText(10_000)
        var buffer = try XCTUnwrap(ws.makeMessageFrame(big, deflate: codec))
        let frame = try XCTUnwrap(try client.nextFrame(&buffer))
        XCTAssertTrue(frame.rsv1)
        XCTAssertLessThan(frame.payload.count, big.count)
        XCTAssertEqual(try codec.decompress(frame.payload, maxBytes: big.count), big)

        var small = try XCTUnwrap(ws.makeMessageFrame(bytes("tiny"), deflate: codec))
        XCTAssertEqual(try client.nextFrame(&small), WebSocketFrame(opcode: .text, payload: bytes("tiny")))

        let plain = makeMachine()
        XCTAssertEqual(plain.makeMessageFrame(big, deflate: codec), FrameEncoder.text(big), "not negotiated: never compressed")
    }

    func testStateMachine_compressedSplitAtEveryByte_sameEvents() {
        let codec = PerMessageDeflateCodec()
        let message = sampleText(500)
        let compressed = codec.compress(message)
        let third = compressed.count / 3
        let stream = clientFrame(.text, Array(compressed[..<third]), fin: false, rsv1: true)
            + clientFrame(.ping, [7]) + clientFrame(.continuation, Array(compressed[third...]))
            + clientFrame(.binary, codec.compress([1, 2, 3]), rsv1: true)
        var reference = deflateMachine()
        let expected = reference.receive(stream, deflate: codec)
        XCTAssertEqual(expected, [.ping(payload: [7], pong: FrameEncoder.pong([7])), .text(message), .binary([1, 2, 3])])
        for split in 0...stream.count {
            var ws = deflateMachine()
            let events = ws.receive(Array(stream[..<split]), deflate: codec) + ws.receive(Array(stream[split...]), deflate: codec)
            XCTAssertEqual(events, expected, "split \(split)")
        }
    }
}
