/// The fixed part of a frame (RFC 6455 §5.2), already checked against the parser's rules.
///
///      0                   1                   2                   3
///      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///     +-+-+-+-+-------+-+-------------+-------------------------------+
///     |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
///     |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
///     |N|V|V|V|       |S|             |   (if payload len==126/127)   |
///     | |1|2|3|       |K|             |                               |
///     +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
///     |     Extended payload length continued, if payload len == 127  |
///     + - - - - - - - - - - - - - - - +-------------------------------+
///     |                               | Masking-key, if MASK set to 1 |
///     +-------------------------------+-------------------------------+
///     | Masking-key (continued)       |          Payload Data         |
///     +-------------------------------- - - - - - - - - - - - - - - - +
public struct FrameHeader: Equatable, Sendable {
    public var fin: Bool
    /// RFC 7692's "Per-Message Compressed" bit; only ever true on the first frame of a data message.
    public var rsv1: Bool
    public var opcode: Opcode
    public var isMasked: Bool
    /// Checked against `FrameParser.maxFrameBytes`, so it always fits the caller's budget.
    public var payloadLength: Int

    public init(fin: Bool, rsv1: Bool, opcode: Opcode, isMasked: Bool, payloadLength: Int) {
        self.fin = fin
        self.rsv1 = rsv1
        self.opcode = opcode
        self.isMasked = isMasked
        self.payloadLength = payloadLength
    }
}
