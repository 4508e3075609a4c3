import XCTest
import PeekTestSupport
@testable import PeekWebSocket

/// The masking key of RFC 6455 §5.7's examples.
let rfcMask: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]

/// A client frame as a browser would send it: masked.
func clientFrame(_ opcode: Opcode, _ payload: [UInt8], fin: Bool = true, rsv1: Bool = false,
                 mask: [UInt8] = rfcMask) -> [UInt8] {
    FrameEncoder.frame(opcode: opcode, payload: payload, fin: fin, rsv1: rsv1, mask: mask)
}

func clientFrame(_ opcode: Opcode, _ text: String, fin: Bool = true) -> [UInt8] {
    clientFrame(opcode, Array(text.utf8), fin: fin)
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

func makeMachine(maxMessageBytes: Int = 1 << 20, deflate: PerMessageDeflateParameters? = nil) -> WebSocketStateMachine {
    WebSocketStateMachine(configuration: .init(maxMessageBytes: maxMessageBytes, deflate: deflate))
}

/// The close code in a server close frame (unmasked, so the body starts at byte 2).
func closeCode(of frame: [UInt8]?) -> UInt16? {
    guard let frame, frame.count >= 4, frame[0] == 0x88 else { return nil }
    return UInt16(frame[2]) << 8 | UInt16(frame[3])
}

extension WebSocketEvent {
    /// For `.closed`: the code our reply carries (nil: no reply, or a reply without a code).
    var replyCode: UInt16? {
        guard case .closed(let reply, _) = self else { return nil }
        return closeCode(of: reply)
    }

    var cause: CloseCause? {
        guard case .closed(_, let cause) = self else { return nil }
        return cause
    }
}

/// Asserts that the events end the connection for `error`, with a reply carrying its code.
func assertProtocolError(_ events: [WebSocketEvent], _ error: FrameError, code: UInt16,
                         file: StaticString = #filePath, line: UInt = #line) {
    guard let last = events.last else {
        return XCTFail("no events; expected close \(code) for \(error)", file: file, line: line)
    }
    XCTAssertEqual(last.cause, .protocolError(error), file: file, line: line)
    XCTAssertEqual(last.replyCode, code, file: file, line: line)
}

func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var rng = SplitMix64(seed: seed)
    return (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
}
