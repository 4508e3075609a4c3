import XCTest
@testable import PeekWebSocket

final class FrameParserTests: XCTestCase {
    /// Runs the streaming parser over `input` fed in `pieces`, collecting headers and payloads.
    private func parse(_ input: [UInt8], pieces: [Int]? = nil, parser: FrameParser = FrameParser(role: .server, maxFrameBytes: 1 << 20))
        throws(FrameError) -> [(FrameHeader, [UInt8])] {
        var parser = parser
        var frames: [(FrameHeader, [UInt8])] = []
        var current: (FrameHeader, [UInt8])?
        var cuts = pieces ?? [input.count]
        var start = 0
        while start < input.count || cuts.isEmpty == false {
            let length = cuts.isEmpty ? input.count - start : min(cuts.removeFirst(), input.count - start)
            let piece = Array(input[start..<start + length])
            start += length
            let result = piece.withUnsafeBytes { raw in
                Result { () throws(FrameError) in
                    var view = raw
                    while let output = try parser.next(&view) {
                        switch output {
                        case .header(let header): current = (header, [])
                        case .payload(let chunk):
                            chunk.append(to: &current!.1)
                            if chunk.isFrameEnd { frames.append(current!); current = nil }
                        }
                    }
                    XCTAssertTrue(view.isEmpty, "the parser consumes all input")
                }
            }
            try result.get()
            if length == 0 && start >= input.count { break }
        }
        return frames
    }

    private func assertThrows(_ input: [UInt8], _ expected: FrameError, parser: FrameParser = FrameParser(role: .server, maxFrameBytes: 1 << 20),
                              file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try parse(input, parser: parser)
            XCTFail("expected \(expected)", file: file, line: line)
        } catch {
            XCTAssertEqual(error, expected, file: file, line: line)
        }
    }

    func testFrameParser_rfcMaskedHello_unmasks() throws {
        // RFC 6455 §5.7: a single-frame masked text message containing "Hello".
        let frame: [UInt8] = [0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58]
        let frames = try parse(frame)
        XCTAssertEqual(frames.count, 1)
        XCTAssertEqual(frames[0].0, FrameHeader(fin: true, rsv1: false, opcode: .text, isMasked: true, payloadLength: 5))
        XCTAssertEqual(frames[0].1, bytes("Hello"))
    }

    func testFrameParser_everyLengthEncoding_roundTrips() throws {
        // 125: the largest 7-bit length; 126 and 65535: the 16-bit form; 65536: the 64-bit form.
        for length in [0, 1, 125, 126, 127, 65535, 65536, 70_000] {
            let payload = randomBytes(length, seed: UInt64(length))
            let frame = clientFrame(.binary, payload)
            let expectedHeader = length <= 125 ? 2 : (length <= 65535 ? 4 : 10)
            XCTAssertEqual(frame.count, expectedHeader + 4 + length, "length \(length)")
            let frames = try parse(frame)
            XCTAssertEqual(frames.count, 1)
            XCTAssertEqual(frames[0].0.payloadLength, length)
            XCTAssertEqual(frames[0].1, payload, "length \(length)")
        }
    }

    func testFrameParser_nonMinimalLength_accepted() throws {
        // Length 5 spelled with the 16-bit form (126, 00 05): legal, if wasteful.
        let frame: [UInt8] = [0x82, 0xFE, 0x00, 0x05, 0, 0, 0, 0, 1, 2, 3, 4, 5]
        XCTAssertEqual(try parse(frame).first?.1, [1, 2, 3, 4, 5])
    }

    func testFrameParser_64BitLengthWithMSBSet_rejects() {
        // 127 then 0x80000000_00000001: §5.2 says the most significant bit MUST be 0. Also the
        // value that would trap in Int(UInt64) without `Int(exactly:)`.
        assertThrows([0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0x01, 1, 2, 3, 4], .lengthOverflow)
        XCTAssertEqual(FrameError.lengthOverflow.closeCode, .protocolError)
    }

    func testFrameParser_lengthOverMax_rejects1009FromHeaderAlone() {
        let parser = FrameParser(role: .server, maxFrameBytes: 1000)
        // 126, 03 E9 = 1001 bytes announced; mask follows; no payload sent at all.
        assertThrows([0x82, 0xFE, 0x03, 0xE9, 1, 2, 3, 4], .messageTooBig, parser: parser)
        // 127 with 2^63 - 1: refused before any payload, no allocation attempted.
        assertThrows([0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4], .messageTooBig, parser: parser)
        XCTAssertEqual(FrameError.messageTooBig.closeCode, .messageTooBig)
    }

    func testFrameParser_lengthAtMax_accepted() throws {
        let parser = FrameParser(role: .server, maxFrameBytes: 1000)
        XCTAssertEqual(try parse(clientFrame(.binary, randomBytes(1000, seed: 1)), parser: parser).count, 1)
    }

    func testFrameParser_unmaskedClientFrame_rejects() {
        assertThrows([0x81, 0x05] + bytes("Hello"), .unmaskedFrame)
    }

    func testFrameParser_maskedServerFrameInClientRole_rejects() {
        let parser = FrameParser(role: .client, maxFrameBytes: 1000)
        assertThrows(clientFrame(.text, "Hello"), .maskedFrame, parser: parser)
    }

    func testFrameParser_clientRole_readsUnmaskedServerFrames() throws {
        let parser = FrameParser(role: .client, maxFrameBytes: 1000)
        // RFC 6455 §5.7: unmasked "Hello".
        XCTAssertEqual(try parse([0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F], parser: parser).first?.1, bytes("Hello"))
    }

    func testFrameParser_reservedBits_reject() {
        assertThrows([0xC1, 0x80, 1, 2, 3, 4], .reservedBitsSet)     // RSV1 without permessage-deflate
        assertThrows([0xA1, 0x80, 1, 2, 3, 4], .reservedBitsSet)     // RSV2
        assertThrows([0x91, 0x80, 1, 2, 3, 4], .reservedBitsSet)     // RSV3
        let deflate = FrameParser(role: .server, maxFrameBytes: 1000, allowsCompression: true)
        assertThrows([0xA1, 0x80, 1, 2, 3, 4], .reservedBitsSet, parser: deflate)  // RSV2 even then
    }

    func testFrameParser_rsv1OnControlOrContinuation_rejects() {
        let deflate = FrameParser(role: .server, maxFrameBytes: 1000, allowsCompression: true)
        assertThrows([0xC9, 0x80, 1, 2, 3, 4], .compressionBitMisplaced, parser: deflate)  // ping
        assertThrows([0xC0, 0x80, 1, 2, 3, 4], .compressionBitMisplaced, parser: deflate)  // continuation
        XCTAssertNoThrow(try parse([0xC1, 0x80, 1, 2, 3, 4], parser: deflate))            // text: allowed
        XCTAssertEqual(FrameError.compressionBitMisplaced.closeCode, .protocolError)
    }

    func testFrameParser_reservedOpcodes_reject() {
        for opcode: UInt8 in [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assertThrows([0x80 | opcode, 0x80, 1, 2, 3, 4], .reservedOpcode(opcode))
        }
    }

    func testFrameParser_firstByteError_failsBeforeSecondByteArrives() {
        var parser = FrameParser(role: .server, maxFrameBytes: 1000)
        let input: [UInt8] = [0x83]   // FIN + reserved opcode 3, nothing else yet
        let result = input.withUnsafeBytes { raw in
            Result { () throws(FrameError) in
                var view = raw
                return try parser.next(&view)
            }
        }
        guard case .failure(let error) = result else { return XCTFail("expected a throw on byte 0") }
        XCTAssertEqual(error, .reservedOpcode(3))
    }

    func testFrameParser_controlFrameOver125_rejects() {
        // Ping with the 16-bit length form (126): always over 125.
        assertThrows([0x89, 0xFE, 0x00, 0x7E, 1, 2, 3, 4], .controlFrameTooLong)
        // A 125-byte ping is fine.
        XCTAssertNoThrow(try parse(clientFrame(.ping, [UInt8](repeating: 7, count: 125))))
    }

    func testFrameParser_fragmentedControlFrame_rejects() {
        assertThrows([0x09, 0x80, 1, 2, 3, 4], .fragmentedControlFrame)   // ping without FIN
        assertThrows([0x08, 0x80, 1, 2, 3, 4], .fragmentedControlFrame)   // close without FIN
    }

    func testFrameParser_emptyFrame_endsWithEmptyFinalChunk() throws {
        let frames = try parse(clientFrame(.text, []))
        XCTAssertEqual(frames.count, 1)
        XCTAssertEqual(frames[0].1, [])
    }

    func testFrameParser_splitAtEveryByte_sameFrames() throws {
        // Headers of every size, masked payloads whose key rotation crosses the splits.
        let stream = clientFrame(.text, "Hello", fin: false) + clientFrame(.ping, [9, 8, 7])
            + clientFrame(.continuation, Array(repeating: 0x41, count: 300)) + clientFrame(.binary, randomBytes(70_000, seed: 3))
        let whole = try parse(stream)
        XCTAssertEqual(whole.count, 4)
        for split in stride(from: 0, through: 400, by: 1) {
            let pieces = try parse(stream, pieces: [split])
            XCTAssertTrue(pieces.elementsEqual(whole) { $0.0 == $1.0 && $0.1 == $1.1 }, "split \(split)")
        }
        let oneByteAtATime = try parse(Array(stream[..<400]), pieces: Array(repeating: 1, count: 400))
        XCTAssertEqual(oneByteAtATime.count, 3)
        XCTAssertTrue(oneByteAtATime.elementsEqual(whole.prefix(3)) { $0.0 == $1.0 && $0.1 == $1.1 })
    }

    func testFrameParser_unmaskingEveryLengthAndOffset_matchesByteWiseXor() throws {
        // Lengths 0-40 cover the 8-byte loop and every tail length; the key is asymmetric.
        let key: [UInt8] = [0x01, 0x23, 0x45, 0x67]
        for length in 0...40 {
            let payload = randomBytes(length, seed: UInt64(100 + length))
            var masked = payload
            for i in masked.indices { masked[i] ^= key[i % 4] }
            let frame: [UInt8] = [0x82, 0x80 | UInt8(length)] + key + masked
            for split in [0, 3, 7, 9] where split < frame.count {
                XCTAssertEqual(try parse(frame, pieces: [split]).first?.1, payload, "length \(length) split \(split)")
            }
        }
    }

    func testFrameParser_nextFrame_leavesIncompleteFrameInBuffer() throws {
        let parser = FrameParser(role: .client, maxFrameBytes: 1000)
        let frame = FrameEncoder.text("Hello")
        var buffer = Array(frame.prefix(4))
        XCTAssertNil(try parser.nextFrame(&buffer))
        XCTAssertEqual(buffer.count, 4)
        buffer += frame.dropFirst(4) + FrameEncoder.ping([1])
        XCTAssertEqual(try parser.nextFrame(&buffer), WebSocketFrame(opcode: .text, payload: bytes("Hello")))
        XCTAssertEqual(try parser.nextFrame(&buffer), WebSocketFrame(opcode: .ping, payload: [1]))
        XCTAssertEqual(buffer, [])
    }
}
