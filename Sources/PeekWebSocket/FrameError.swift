/// Every way a peer can break RFC 6455 / RFC 7692, each mapped to the close code it earns in one
/// place (`closeCode`). Thrown by `FrameParser` and the state machine; the shell never sees one
/// thrown, only a `.closed(reply:cause: .protocolError(_))` event carrying it.
public enum FrameError: Error, Equatable, Sendable {
    /// RSV2/RSV3 set, or RSV1 without a negotiated extension (§5.2).
    case reservedBitsSet
    /// RSV1 on a control or continuation frame: RFC 7692 §6.1 allows the "Per-Message Compressed"
    /// bit only on the first frame of a data message.
    case compressionBitMisplaced
    /// Opcode 3-7 or 0xB-0xF (§5.2: "MUST _Fail the WebSocket Connection_").
    case reservedOpcode(UInt8)
    /// A control frame longer than 125 bytes (§5.5).
    case controlFrameTooLong
    /// A control frame with FIN clear (§5.5: "Control frames MUST NOT be fragmented").
    case fragmentedControlFrame
    /// A client frame without the MASK bit (§5.1: the server MUST close).
    case unmaskedFrame
    /// A server frame with the MASK bit, seen by a client-role parser (§5.1).
    case maskedFrame
    /// A 64-bit length with its most significant bit set (§5.2: "MUST be 0").
    case lengthOverflow
    /// A frame or message over the configured maximum, or a compressed message that inflates past
    /// it (§7.4.1: 1009).
    case messageTooBig
    /// A continuation frame with no fragmented message open (§5.4).
    case unexpectedContinuation
    /// A new text/binary frame while a fragmented message is still open (§5.4).
    case expectedContinuation
    /// A text message or close reason that is not UTF-8 (§8.1: 1007).
    case invalidUTF8
    /// A close frame with a 1-byte payload (§5.5.1: a body starts with a 2-byte code).
    case invalidClosePayload
    /// A close code that may not appear on the wire (see `CloseCode.isValidInCloseFrame`).
    case invalidCloseCode(UInt16)
    /// A compressed message that zlib cannot inflate (RFC 7692 §8: fail the connection).
    case invalidCompressedData
    /// A compressed message arrived but the shell passed no codec: a bug in the caller, reported
    /// to the peer as 1011 rather than trapping.
    case deflateUnavailable

    /// The code sent in our close frame (§7.4.1).
    public var closeCode: CloseCode {
        switch self {
        case .messageTooBig: return .messageTooBig
        // 1007 is "data within a message that was not consistent with the type of the message";
        // a compressed payload that does not inflate is exactly that (ws and uWebSockets agree).
        case .invalidUTF8, .invalidCompressedData: return .invalidPayload
        case .deflateUnavailable: return .internalError
        case .reservedBitsSet, .compressionBitMisplaced, .reservedOpcode, .controlFrameTooLong,
             .fragmentedControlFrame, .unmaskedFrame, .maskedFrame, .lengthOverflow,
             .unexpectedContinuation, .expectedContinuation, .invalidClosePayload, .invalidCloseCode:
            return .protocolError
        }
    }

    /// A short sentence for the close frame's reason (at most 123 bytes, §5.5) and for logs.
    public var reason: String {
        switch self {
        case .reservedBitsSet: return "Reserved bits set without a negotiated extension."
        case .compressionBitMisplaced: return "RSV1 set on a control or continuation frame."
        case .reservedOpcode(let op): return "Reserved opcode \(op)."
        case .controlFrameTooLong: return "Control frame longer than 125 bytes."
        case .fragmentedControlFrame: return "Fragmented control frame."
        case .unmaskedFrame: return "Client frames must be masked."
        case .maskedFrame: return "Server frames must not be masked."
        case .lengthOverflow: return "Frame length has its most significant bit set."
        case .messageTooBig: return "Message too big."
        case .unexpectedContinuation: return "Continuation frame without a message to continue."
        case .expectedContinuation: return "New message while a fragmented message is open."
        case .invalidUTF8: return "Invalid UTF-8."
        case .invalidClosePayload: return "Close frame with a 1-byte payload."
        case .invalidCloseCode(let code): return "Invalid close code \(code)."
        case .invalidCompressedData: return "Compressed message does not inflate."
        case .deflateUnavailable: return "Compression is not available."
        }
    }
}
