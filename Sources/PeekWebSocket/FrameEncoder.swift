/// Frame encoding (RFC 6455 §5.2). Server frames are unmasked, so one encoded frame is the same
/// bytes for every recipient: encode a fan-out message once and share the array (uWebSockets'
/// TopicTree does the same). Client frames (test clients, the benchmark) take a 4-byte mask.
///
/// The inputs here are ours, not the peer's, so misuse (a 5-byte mask, a 200-byte ping) is a bug
/// and traps with a precondition.
public enum FrameEncoder {
    /// Bytes the header of a frame with this payload takes: 2, 4 or 10, plus 4 when masked.
    public static func headerLength(payloadLength: Int, masked: Bool = false) -> Int {
        let base = payloadLength <= 125 ? 2 : (payloadLength <= 0xFFFF ? 4 : 10)
        return base + (masked ? 4 : 0)
    }

    /// Appends a frame header. Use it with `writev` to send a large payload without copying it
    /// behind a header; the payload must then be masked by the caller when `mask` is given.
    public static func encodeHeader(opcode: Opcode, payloadLength: Int, fin: Bool = true, rsv1: Bool = false,
                                    mask: [UInt8]? = nil, into out: inout [UInt8]) {
        precondition(payloadLength >= 0, "negative payload length")
        precondition(!opcode.isControl || (payloadLength <= 125 && fin), "control frames carry at most 125 bytes, unfragmented")
        precondition(mask == nil || mask?.count == 4, "a masking key is 4 bytes")
        out.append((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode.rawValue)
        let maskBit: UInt8 = mask == nil ? 0 : 0x80
        if payloadLength <= 125 {
            out.append(maskBit | UInt8(payloadLength))
        } else if payloadLength <= 0xFFFF {
            out.append(maskBit | 126)
            out.append(UInt8(truncatingIfNeeded: payloadLength >> 8))
            out.append(UInt8(truncatingIfNeeded: payloadLength))
        } else {
            out.append(maskBit | 127)
            let length = UInt64(payloadLength)
            for shift in stride(from: 56, through: 0, by: -8) {
                out.append(UInt8(truncatingIfNeeded: length >> UInt64(shift)))
            }
        }
        if let mask { out.append(contentsOf: mask) }
    }

    /// Appends a whole frame: header, then the payload (masked when `mask` is given).
    public static func encode(opcode: Opcode, payload: UnsafeRawBufferPointer, fin: Bool = true, rsv1: Bool = false,
                              mask: [UInt8]? = nil, into out: inout [UInt8]) {
        out.reserveCapacity(out.count + headerLength(payloadLength: payload.count, masked: mask != nil) + payload.count)
        encodeHeader(opcode: opcode, payloadLength: payload.count, fin: fin, rsv1: rsv1, mask: mask, into: &out)
        let start = out.count
        out.append(contentsOf: payload)
        if let mask {
            let key = Masking.key(mask[0], mask[1], mask[2], mask[3])
            out.withUnsafeMutableBytes { Masking.apply(key, to: UnsafeMutableRawBufferPointer(rebasing: $0[start...])) }
        }
    }

    public static func encode(opcode: Opcode, payload: [UInt8], fin: Bool = true, rsv1: Bool = false,
                              mask: [UInt8]? = nil, into out: inout [UInt8]) {
        payload.withUnsafeBytes { encode(opcode: opcode, payload: $0, fin: fin, rsv1: rsv1, mask: mask, into: &out) }
    }

    /// A complete frame in a new array.
    public static func frame(opcode: Opcode, payload: [UInt8], fin: Bool = true, rsv1: Bool = false,
                             mask: [UInt8]? = nil) -> [UInt8] {
        var out: [UInt8] = []
        encode(opcode: opcode, payload: payload, fin: fin, rsv1: rsv1, mask: mask, into: &out)
        return out
    }

    /// An unfragmented server text frame; `payload` must already be UTF-8.
    public static func text(_ payload: [UInt8]) -> [UInt8] { frame(opcode: .text, payload: payload) }
    public static func text(_ string: String) -> [UInt8] { frame(opcode: .text, payload: Array(string.utf8)) }
    public static func binary(_ payload: [UInt8]) -> [UInt8] { frame(opcode: .binary, payload: payload) }
    public static func ping(_ payload: [UInt8] = []) -> [UInt8] { frame(opcode: .ping, payload: payload) }
    public static func pong(_ payload: [UInt8]) -> [UInt8] { frame(opcode: .pong, payload: payload) }

    /// A close frame. With no code the body is empty (§5.5.1). The reason is cut to the 123 bytes
    /// a control frame leaves after the code, at a character boundary so it stays UTF-8.
    public static func close(code: CloseCode?, reason: String = "", mask: [UInt8]? = nil) -> [UInt8] {
        var body: [UInt8] = []
        if let code {
            body.append(UInt8(truncatingIfNeeded: code.rawValue >> 8))
            body.append(UInt8(truncatingIfNeeded: code.rawValue))
            for scalar in reason.unicodeScalars {
                let encoded = Array(String(scalar).utf8)
                guard body.count + encoded.count <= 125 else { break }
                body.append(contentsOf: encoded)
            }
        }
        return frame(opcode: .close, payload: body, mask: mask)
    }
}
