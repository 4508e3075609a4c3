/// A whole frame with its payload unmasked. The server streams frames through
/// `FrameParser.next(_:)` instead; whole frames are for test clients and tools, which can afford
/// to hold one frame in memory.
public struct WebSocketFrame: Equatable, Sendable {
    public var fin: Bool
    public var rsv1: Bool
    public var opcode: Opcode
    public var payload: [UInt8]

    public init(fin: Bool = true, rsv1: Bool = false, opcode: Opcode, payload: [UInt8]) {
        self.fin = fin
        self.rsv1 = rsv1
        self.opcode = opcode
        self.payload = payload
    }

    /// For close frames: the status code, if the body has one.
    public var closeCode: CloseCode? {
        guard opcode == .close, payload.count >= 2 else { return nil }
        return CloseCode(UInt16(payload[0]) << 8 | UInt16(payload[1]))
    }
}

extension FrameParser {
    /// Removes one complete frame from the front of `buffer`, or returns nil (leaving `buffer`
    /// alone) until the buffer holds one. Do not mix with `next(_:)` on the same parser.
    public func nextFrame(_ buffer: inout [UInt8]) throws(FrameError) -> WebSocketFrame? {
        let frame = try buffer.withUnsafeBytes { raw in
            Result { () throws(FrameError) -> (WebSocketFrame, Int)? in try wholeFrame(raw) }
        }.get()
        guard let (result, consumed) = frame else { return nil }
        buffer.removeFirst(consumed)
        return result
    }

    private func wholeFrame(_ raw: UnsafeRawBufferPointer) throws(FrameError) -> (WebSocketFrame, Int)? {
        guard let scan = try scanHeader(raw) else { return nil }
        let end = scan.headerLength + scan.header.payloadLength
        guard raw.count >= end else { return nil }
        var payload: [UInt8] = []
        let chunk = PayloadChunk(bytes: UnsafeRawBufferPointer(rebasing: raw[scan.headerLength..<end]),
                                 maskKey: scan.maskKey, isFrameEnd: true)
        chunk.append(to: &payload)
        let h = scan.header
        return (WebSocketFrame(fin: h.fin, rsv1: h.rsv1, opcode: h.opcode, payload: payload), end)
    }
}
