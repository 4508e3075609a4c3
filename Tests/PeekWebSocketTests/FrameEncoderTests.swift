import XCTest
@testable import PeekWebSocket

final class FrameEncoderTests: XCTestCase {
    func testFrameEncoder_rfcExamples_matchBytes() {
        // RFC 6455 §5.7.
        XCTAssertEqual(FrameEncoder.text("Hello"), [0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])
        XCTAssertEqual(FrameEncoder.frame(opcode: .text, payload: bytes("Hello"), mask: rfcMask),
                       [0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
        XCTAssertEqual(FrameEncoder.frame(opcode: .text, payload: bytes("Hel"), fin: false), [0x01, 0x03, 0x48, 0x65, 0x6C])
        XCTAssertEqual(FrameEncoder.frame(opcode: .continuation, payload: bytes("lo")), [0x80, 0x02, 0x6C, 0x6F])
        XCTAssertEqual(FrameEncoder.ping(bytes("Hello")), [0x89, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])
        XCTAssertEqual(FrameEncoder.frame(opcode: .pong, payload: bytes("Hello"), mask: rfcMask),
                       [0x8A, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
        // 256 bytes: 126 + 16-bit 0x0100. 64 KiB: 127 + 64-bit 0x10000.
        XCTAssertEqual(Array(FrameEncoder.binary([UInt8](repeating: 0, count: 256)).prefix(4)), [0x82, 0x7E, 0x01, 0x00])
        XCTAssertEqual(Array(FrameEncoder.binary([UInt8](repeating: 0, count: 65536)).prefix(10)),
                       [0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00])
    }

    func testFrameEncoder_lengthBoundaries_chooseSmallestForm() {
        XCTAssertEqual(FrameEncoder.headerLength(payloadLength: 125), 2)
        XCTAssertEqual(FrameEncoder.headerLength(payloadLength: 126), 4)
        XCTAssertEqual(FrameEncoder.headerLength(payloadLength: 65535), 4)
        XCTAssertEqual(FrameEncoder.headerLength(payloadLength: 65536), 10)
        XCTAssertEqual(FrameEncoder.headerLength(payloadLength: 65536, masked: true), 14)
        for length in [125, 126, 65535, 65536] {
            XCTAssertEqual(FrameEncoder.binary([UInt8](repeating: 1, count: length)).count,
                           FrameEncoder.headerLength(payloadLength: length) + length)
        }
    }

    func testFrameEncoder_rsv1AndHeaderOnly_encodeBits() {
        var out: [UInt8] = []
        FrameEncoder.encodeHeader(opcode: .text, payloadLength: 7, rsv1: true, into: &out)
        XCTAssertEqual(out, [0xC1, 0x07])   // FIN + RSV1 + text, length 7
    }

    func testFrameEncoder_closeWithCodeAndReason_encodesBody() {
        // 0x03E8 = 1000, then "bye".
        XCTAssertEqual(FrameEncoder.close(code: .normal, reason: "bye"), [0x88, 0x05, 0x03, 0xE8, 0x62, 0x79, 0x65])
        XCTAssertEqual(FrameEncoder.close(code: nil), [0x88, 0x00])
        XCTAssertEqual(FrameEncoder.close(code: .unauthorized), [0x88, 0x02, 0x11, 0x31])   // 4401
    }

    func testFrameEncoder_longCloseReason_truncatedAtCharacterBoundary() {
        // 100 two-byte characters (200 bytes): 61 fit in the 123 bytes left after the code.
        let frame = FrameEncoder.close(code: .goingAway, reason: String(repeating: "é", count: 100))
        XCTAssertEqual(Int(frame[1]), 2 + 122)
        XCTAssertTrue(UTF8Validator.isValid(Array(frame[4...])))
    }
}
