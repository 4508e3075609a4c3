/// A frame opcode (RFC 6455 §5.2). 3-7 and 0xB-0xF are reserved: the parser rejects them before
/// this type is built, so an `Opcode` is always one the connection understands.
public enum Opcode: UInt8, Sendable {
    case continuation = 0x0
    case text = 0x1
    case binary = 0x2
    case close = 0x8
    case ping = 0x9
    case pong = 0xA

    /// Control frames (opcode MSB set, §5.5) may interleave with fragments, must be final, and
    /// carry at most 125 bytes.
    public var isControl: Bool { rawValue & 0x8 != 0 }
}
