import XCTest
@testable import PeekWebSocket

final class WebSocketStateMachineTests: XCTestCase {
    // MARK: - Messages

    func testStateMachine_maskedText_emitsText() {
        var ws = makeMachine()
        XCTAssertEqual(ws.receive(clientFrame(.text, "Hello"), deflate: nil), [.text(bytes("Hello"))])
        XCTAssertEqual(ws.receive(clientFrame(.binary, [0, 1, 2]), deflate: nil), [.binary([0, 1, 2])])
        XCTAssertEqual(ws.receive(clientFrame(.text, ""), deflate: nil), [.text([])])
    }

    func testStateMachine_fragmentedWithInterleavedPing_emitsPingThenMessage() {
        var ws = makeMachine()
        let input = clientFrame(.text, "Hel", fin: false) + clientFrame(.ping, [1, 2])
            + clientFrame(.continuation, "lo", fin: false) + clientFrame(.pong, [3]) + clientFrame(.continuation, "!")
        XCTAssertEqual(ws.receive(input, deflate: nil), [
            .ping(payload: [1, 2], pong: [0x8A, 0x02, 1, 2]),   // pong echoes the payload, unmasked
            .pong([3]),
            .text(bytes("Hello!")),
        ])
    }

    func testStateMachine_continuationWithoutStart_closes1002() {
        var ws = makeMachine()
        assertProtocolError(ws.receive(clientFrame(.continuation, "x"), deflate: nil), .unexpectedContinuation, code: 1002)
    }

    func testStateMachine_newMessageInsideFragmented_closes1002() {
        var ws = makeMachine()
        let input = clientFrame(.text, "a", fin: false) + clientFrame(.text, "b")
        assertProtocolError(ws.receive(input, deflate: nil), .expectedContinuation, code: 1002)
    }

    func testStateMachine_rsv1WithoutDeflate_closes1002() {
        var ws = makeMachine()
        assertProtocolError(ws.receive(clientFrame(.text, bytes("x"), rsv1: true), deflate: nil), .reservedBitsSet, code: 1002)
    }

    func testStateMachine_unmaskedFrame_closes1002() {
        var ws = makeMachine()
        assertProtocolError(ws.receive(FrameEncoder.text("Hello"), deflate: nil), .unmaskedFrame, code: 1002)
    }

    func testStateMachine_reservedOpcode_closes1002() {
        var ws = makeMachine()
        assertProtocolError(ws.receive([0x85, 0x80, 1, 2, 3, 4], deflate: nil), .reservedOpcode(5), code: 1002)
    }

    func testStateMachine_controlFrameRules_close1002() {
        var tooLong = makeMachine()
        assertProtocolError(tooLong.receive(clientFrame(.text, "a", fin: false) + [0x89, 0xFE, 0x00, 0x7E, 1, 2, 3, 4], deflate: nil),
                            .controlFrameTooLong, code: 1002)
        var fragmented = makeMachine()
        assertProtocolError(fragmented.receive([0x09, 0x80, 1, 2, 3, 4], deflate: nil), .fragmentedControlFrame, code: 1002)
    }

    // MARK: - UTF-8

    func testStateMachine_utf8SplitAcrossFragmentsAtEveryByte_valid() {
        let text = bytes("κόσμε€𝄞")
        for split in 0...text.count {
            var ws = makeMachine()
            let input = clientFrame(.text, Array(text[..<split]), fin: false) + clientFrame(.continuation, Array(text[split...]))
            XCTAssertEqual(ws.receive(input, deflate: nil), [.text(text)], "split \(split)")
        }
    }

    func testStateMachine_invalidUTF8Forms_close1007() {
        let cases: [[UInt8]] = [
            [0xC0, 0x80],               // overlong NUL
            [0xE0, 0x80, 0x80],         // overlong 3-byte NUL
            [0xED, 0xA0, 0x80],         // surrogate U+D800
            [0xF4, 0x90, 0x80, 0x80],   // U+110000
            [0x61, 0xE2, 0x82],         // "€" cut off by the end of the message
        ]
        for payload in cases {
            var ws = makeMachine()
            assertProtocolError(ws.receive(clientFrame(.text, payload), deflate: nil), .invalidUTF8, code: 1007)
        }
    }

    func testStateMachine_surrogateSplitAcrossFragments_closes1007() {
        var ws = makeMachine()
        let input = clientFrame(.text, [0x61, 0xED], fin: false) + clientFrame(.continuation, [0xA0, 0x80])
        assertProtocolError(ws.receive(input, deflate: nil), .invalidUTF8, code: 1007)
    }

    func testStateMachine_invalidUTF8InFirstFragment_failsBeforeNextFragment() {
        // Autobahn 6.4.x: the close must come while the message is still open.
        var ws = makeMachine()
        let events = ws.receive(clientFrame(.text, [0xCE, 0xBA, 0xF4, 0x90], fin: false), deflate: nil)
        assertProtocolError(events, .invalidUTF8, code: 1007)
        XCTAssertTrue(ws.isFinished)
    }

    func testStateMachine_invalidUTF8MidFrame_failsBeforeFrameEnds() {
        // Only the header and the first 3 of 10 payload bytes have arrived; byte 2 is 0xFF.
        var ws = makeMachine()
        let frame = clientFrame(.text, [0x61, 0x62, 0xFF] + Array(repeating: 0x61, count: 7))
        assertProtocolError(ws.receive(Array(frame.prefix(6 + 3)), deflate: nil), .invalidUTF8, code: 1007)
    }

    func testStateMachine_invalidUTF8InBinary_accepted() {
        var ws = makeMachine()
        XCTAssertEqual(ws.receive(clientFrame(.binary, [0xFF, 0xC0]), deflate: nil), [.binary([0xFF, 0xC0])])
    }

    // MARK: - Close

    func testStateMachine_peerClose_echoesCode() {
        var ws = makeMachine()
        // Body 0x0FA0 = 4000 plus reason "done".
        let events = ws.receive(clientFrame(.close, [0x0F, 0xA0] + bytes("done")), deflate: nil)
        XCTAssertEqual(events, [.closed(reply: [0x88, 0x02, 0x0F, 0xA0], cause: .peerInitiated(code: CloseCode(4000), reason: "done"))])
        XCTAssertTrue(ws.isFinished)
    }

    func testStateMachine_peerCloseWithoutCode_replies1000() {
        var ws = makeMachine()
        XCTAssertEqual(ws.receive(clientFrame(.close, []), deflate: nil),
                       [.closed(reply: [0x88, 0x02, 0x03, 0xE8], cause: .peerInitiated(code: nil, reason: ""))])
    }

    func testStateMachine_closeWithOneBytePayload_closes1002() {
        var ws = makeMachine()
        assertProtocolError(ws.receive(clientFrame(.close, [0x03]), deflate: nil), .invalidClosePayload, code: 1002)
    }

    func testStateMachine_closeWithInvalidCode_closes1002() {
        for code: UInt16 in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
            var ws = makeMachine()
            let events = ws.receive(clientFrame(.close, [UInt8(code >> 8), UInt8(code & 0xFF)]), deflate: nil)
            assertProtocolError(events, .invalidCloseCode(code), code: 1002)
        }
    }

    func testStateMachine_closeWithInvalidUTF8Reason_closes1007() {
        var ws = makeMachine()
        assertProtocolError(ws.receive(clientFrame(.close, [0x03, 0xE8, 0x61, 0xC0, 0x80]), deflate: nil), .invalidUTF8, code: 1007)
    }

    func testStateMachine_dataAfterPeerClose_ignored() {
        var ws = makeMachine()
        let events = ws.receive(clientFrame(.close, [0x03, 0xE8]) + clientFrame(.text, "late"), deflate: nil)
        XCTAssertEqual(events.count, 1)
        XCTAssertEqual(events.first?.replyCode, 1000)
        XCTAssertEqual(ws.receive(clientFrame(.text, "later"), deflate: nil), [])
    }

    func testStateMachine_initiateClose_returnsFrameOnceThenCompletesHandshake() {
        var ws = makeMachine()
        XCTAssertEqual(ws.initiateClose(code: .goingAway), [0x88, 0x02, 0x03, 0xE9])
        XCTAssertNil(ws.initiateClose(code: .goingAway))
        XCTAssertTrue(ws.isClosing)
        XCTAssertNil(ws.makeMessageFrame(bytes("x"), deflate: nil), "no data after our close frame")
        // Data and pings still in flight from the peer are read but not delivered.
        let events = ws.receive(clientFrame(.text, "in flight") + clientFrame(.ping, [1])
            + clientFrame(.close, [0x03, 0xE9]), deflate: nil)
        XCTAssertEqual(events, [.closed(reply: nil, cause: .handshakeCompleted(code: .goingAway, reason: ""))])
    }

    func testStateMachine_protocolErrorAfterOurClose_noSecondCloseFrame() {
        var ws = makeMachine()
        _ = ws.initiateClose(code: .tryAgainLater)
        XCTAssertEqual(ws.receive(clientFrame(.continuation, "x"), deflate: nil),
                       [.closed(reply: nil, cause: .protocolError(.unexpectedContinuation))])
    }

    // MARK: - Limits

    func testStateMachine_frameOverMax_closes1009BeforePayload() {
        var ws = makeMachine(maxMessageBytes: 1000)
        // Header announcing 1001 bytes (126, 03 E9) and its mask: no payload yet.
        assertProtocolError(ws.receive([0x82, 0xFE, 0x03, 0xE9, 1, 2, 3, 4], deflate: nil), .messageTooBig, code: 1009)
    }

    func testStateMachine_fragmentsSummingOverMax_close1009() {
        var ws = makeMachine(maxMessageBytes: 1000)
        let input = clientFrame(.binary, randomBytes(600, seed: 1), fin: false) + clientFrame(.continuation, randomBytes(401, seed: 2))
        assertProtocolError(ws.receive(input, deflate: nil), .messageTooBig, code: 1009)
    }

    func testStateMachine_messageExactlyAtMax_accepted() {
        var ws = makeMachine(maxMessageBytes: 1000)
        let payload = randomBytes(1000, seed: 3)
        let input = clientFrame(.binary, Array(payload[..<600]), fin: false) + clientFrame(.continuation, Array(payload[600...]))
        XCTAssertEqual(ws.receive(input, deflate: nil), [.binary(payload)])
    }

    // MARK: - Streaming

    func testStateMachine_inputSplitAtEveryByte_sameEvents() {
        let stream = clientFrame(.text, "Hél", fin: false) + clientFrame(.ping, bytes("are you there"))
            + clientFrame(.continuation, "lo wörld") + clientFrame(.binary, randomBytes(300, seed: 9))
            + clientFrame(.pong, []) + clientFrame(.close, [0x03, 0xE8] + bytes("bye"))
        var reference = makeMachine()
        let expected = reference.receive(stream, deflate: nil)
        XCTAssertEqual(expected.count, 5)
        for split in 0...stream.count {
            var ws = makeMachine()
            let events = ws.receive(Array(stream[..<split]), deflate: nil) + ws.receive(Array(stream[split...]), deflate: nil)
            XCTAssertEqual(events, expected, "split \(split)")
        }
        var byteWise = makeMachine()
        XCTAssertEqual(stream.flatMap { byteWise.receive([$0], deflate: nil) }, expected)
    }

    func testStateMachine_errorSplitAtEveryByte_sameClose() {
        // A valid message, then a text frame whose 3rd payload byte is invalid.
        let stream = clientFrame(.text, "ok") + clientFrame(.text, [0x61, 0x62, 0xC0, 0x63])
        var reference = makeMachine()
        let expected = reference.receive(stream, deflate: nil)
        for split in 0...stream.count {
            var ws = makeMachine()
            let events = ws.receive(Array(stream[..<split]), deflate: nil) + ws.receive(Array(stream[split...]), deflate: nil)
            XCTAssertEqual(events, expected, "split \(split)")
        }
    }

    func testStateMachine_nextStopsAtClose_leavesRestUnconsumed() {
        var ws = makeMachine()
        let input = clientFrame(.close, [0x03, 0xE8]) + clientFrame(.text, "after")
        input.withUnsafeBytes { raw in
            var view = raw
            guard case .closed = ws.next(&view, deflate: nil) else { return XCTFail("expected close") }
            XCTAssertEqual(view.count, clientFrame(.text, "after").count)
            XCTAssertNil(ws.next(&view, deflate: nil))
        }
    }

    func testStateMachine_handlerMayCloseBetweenEvents_laterMessagesDropped() {
        // The pull API lets the shell answer a binary frame with 1003 before reading on.
        var ws = makeMachine()
        let input = clientFrame(.binary, [1]) + clientFrame(.text, "dropped") + clientFrame(.close, [0x03, 0xEB])
        var events: [WebSocketEvent] = []
        var sent: [[UInt8]] = []
        input.withUnsafeBytes { raw in
            var view = raw
            while let event = ws.next(&view, deflate: nil) {
                events.append(event)
                if case .binary = event, let frame = ws.initiateClose(code: .unsupportedData) { sent.append(frame) }
            }
        }
        XCTAssertEqual(sent, [[0x88, 0x02, 0x03, 0xEB]])
        XCTAssertEqual(events, [.binary([1]), .closed(reply: nil, cause: .handshakeCompleted(code: .unsupportedData, reason: ""))])
    }

    // MARK: - Memory

    func testStateMachine_afterMessage_holdsNoBuffers() {
        var ws = makeMachine()
        XCTAssertEqual(ws.heldBufferBytes, 0)
        _ = ws.receive(clientFrame(.text, "a", fin: false), deflate: nil)
        XCTAssertGreaterThan(ws.heldBufferBytes, 0, "a message in progress is buffered")
        _ = ws.receive(clientFrame(.ping, [1, 2, 3]) + clientFrame(.continuation, "b"), deflate: nil)
        XCTAssertEqual(ws.heldBufferBytes, 0, "completed messages and control frames release their buffers")
        // A header split across reads is kept inline, not on the heap.
        _ = ws.receive(Array(clientFrame(.text, "c").prefix(3)), deflate: nil)
        XCTAssertEqual(ws.heldBufferBytes, 0)
    }

    func testStateMachine_inlineSize_isSmall() {
        // The per-connection cost of the protocol state, before any message is in flight.
        XCTAssertLessThanOrEqual(MemoryLayout<WebSocketStateMachine>.size, 128)
    }

    func testStateMachine_16MiBTextMessage_deliveredIntact() {
        // Autobahn 9.1.6's size, in 64 KiB reads as a socket would deliver it.
        let payload = [UInt8](repeating: UInt8(ascii: "*"), count: 16 << 20)
        let frame = clientFrame(.text, payload)
        var ws = makeMachine(maxMessageBytes: 16 << 20)
        var events: [WebSocketEvent] = []
        frame.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let end = min(offset + 65536, raw.count)
                var view = UnsafeRawBufferPointer(rebasing: raw[offset..<end])
                while let event = ws.next(&view, deflate: nil) { events.append(event) }
                offset = end
            }
        }
        XCTAssertEqual(events.count, 1)
        guard case .text(let received) = events.first else { return XCTFail("expected text") }
        XCTAssertEqual(received.count, payload.count)
        XCTAssertTrue(received == payload)
    }
}
