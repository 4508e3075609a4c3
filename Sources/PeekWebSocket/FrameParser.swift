/// Incremental frame parser (RFC 6455 §5): bytes in, headers and payload chunks out.
///
/// It never buffers payload. A header split across reads waits in 16 inline bytes; payload
/// bytes are handed back as views into the caller's input together with the masking key for
/// their first byte, so the consumer copies and unmasks in one place (`PayloadChunk.append`).
/// Between frames the parser therefore owns no heap memory at all.
///
/// Every rule that can be judged from the header is judged before any payload is accepted, and
/// as early as the deciding byte arrives: RSV bits and the opcode on byte 0, the mask and control
/// frame length on byte 1, length overflow and `maxFrameBytes` once the extended length is in
/// (a peer claiming 2^63 bytes is refused before we buffer one). Non-minimal length encodings
/// (126 + a 16-bit 5) are accepted, as the RFC does not forbid them.
///
/// After it throws, the parser is in no defined state; the connection is over.
public struct FrameParser: Sendable {
    public enum Role: Sendable {
        /// Parses frames from clients: every frame must be masked (§5.1).
        case server
        /// Parses frames from a server: no frame may be masked (§5.1).
        case client
    }

    public enum Output {
        case header(FrameHeader)
        /// A piece of the current frame's payload. Every frame, even an empty one, ends with a
        /// chunk whose `isFrameEnd` is true.
        case payload(PayloadChunk)
    }

    /// A view of payload bytes still masked as on the wire, valid only until the caller's input
    /// buffer changes.
    public struct PayloadChunk {
        public var bytes: UnsafeRawBufferPointer
        /// The masking key rotated to `bytes`' first byte (0 for unmasked frames).
        var maskKey: UInt32
        public var isFrameEnd: Bool

        /// Appends the unmasked bytes to `buffer`.
        public func append(to buffer: inout [UInt8]) {
            guard !bytes.isEmpty else { return }
            let start = buffer.count
            buffer.append(contentsOf: bytes)
            buffer.withUnsafeMutableBytes { all in
                Masking.apply(maskKey, to: UnsafeMutableRawBufferPointer(rebasing: all[start...]))
            }
        }
    }

    public let role: Role
    /// Whether RSV1 may be set on data frames (permessage-deflate negotiated, RFC 7692 §6).
    public var allowsCompression: Bool
    /// Largest payload accepted in one frame; a longer header fails with `.messageTooBig` (1009).
    public var maxFrameBytes: Int

    // Header bytes of a frame split across reads (at most 2 + 8 + 4 = 14 are ever kept).
    private var pending: (UInt64, UInt64) = (0, 0)
    private var pendingCount: UInt8 = 0
    private var inPayload = false
    private var payloadRemaining = 0
    private var maskKey: UInt32 = 0

    public init(role: Role, maxFrameBytes: Int, allowsCompression: Bool = false) {
        self.role = role
        self.maxFrameBytes = maxFrameBytes
        self.allowsCompression = allowsCompression
    }

    /// Takes what it can from the front of `input` (advancing it) and returns the next header or
    /// payload chunk, or nil when `input` is used up without completing one. Bytes of a partial
    /// header are kept, so `input` is always either fully consumed or positioned after the item.
    public mutating func next(_ input: inout UnsafeRawBufferPointer) throws(FrameError) -> Output? {
        if inPayload {
            let n = min(payloadRemaining, input.count)
            if n == 0 && payloadRemaining > 0 { return nil }
            let chunk = UnsafeRawBufferPointer(rebasing: input[input.startIndex..<input.startIndex + n])
            input = UnsafeRawBufferPointer(rebasing: input[(input.startIndex + n)...])
            let key = maskKey
            maskKey = Masking.advance(maskKey, by: n)
            payloadRemaining -= n
            if payloadRemaining == 0 { inPayload = false }
            return .payload(PayloadChunk(bytes: chunk, maskKey: key, isFrameEnd: payloadRemaining == 0))
        }

        if pendingCount == 0 {
            // Fast path: the whole header is in this read, as it nearly always is.
            if let scan = try scanHeader(input) {
                input = UnsafeRawBufferPointer(rebasing: input[(input.startIndex + scan.headerLength)...])
                return start(scan)
            }
            // Incomplete, so shorter than the 14-byte maximum header: keep it all.
            for byte in input { stash(byte) }
            input = UnsafeRawBufferPointer(rebasing: input[input.endIndex...])
            return nil
        }

        // A header already split: move one byte at a time so nothing past the header is taken.
        while let byte = input.first {
            input = UnsafeRawBufferPointer(rebasing: input[(input.startIndex + 1)...])
            stash(byte)
            let scan = try withUnsafeBytes(of: pending) { raw throws(FrameError) in
                try scanHeader(UnsafeRawBufferPointer(rebasing: raw[0..<Int(pendingCount)]))
            }
            if let scan {
                pendingCount = 0
                return start(scan)
            }
        }
        return nil
    }

    private mutating func stash(_ byte: UInt8) {
        withUnsafeMutableBytes(of: &pending) { $0[Int(pendingCount)] = byte }
        pendingCount += 1
    }

    private mutating func start(_ scan: HeaderScan) -> Output {
        inPayload = true
        payloadRemaining = scan.header.payloadLength
        maskKey = scan.maskKey
        return .header(scan.header)
    }

    struct HeaderScan {
        var header: FrameHeader
        var maskKey: UInt32
        var headerLength: Int
    }

    /// Judges the header at the front of `bytes`; nil when more bytes are needed. Pure, so the
    /// whole-frame API can peek with it too.
    func scanHeader(_ bytes: UnsafeRawBufferPointer) throws(FrameError) -> HeaderScan? {
        guard let b0 = bytes.first else { return nil }
        let fin = b0 & 0x80 != 0
        let rsv1 = b0 & 0x40 != 0
        guard b0 & 0x30 == 0 else { throw .reservedBitsSet }
        guard let opcode = Opcode(rawValue: b0 & 0x0F) else { throw .reservedOpcode(b0 & 0x0F) }
        if rsv1 {
            guard allowsCompression else { throw .reservedBitsSet }
            guard !opcode.isControl && opcode != .continuation else { throw .compressionBitMisplaced }
        }
        if opcode.isControl && !fin { throw .fragmentedControlFrame }

        guard bytes.count >= 2 else { return nil }
        let b1 = bytes[bytes.startIndex + 1]
        let masked = b1 & 0x80 != 0
        switch role {
        case .server: guard masked else { throw .unmaskedFrame }
        case .client: guard !masked else { throw .maskedFrame }
        }
        let length7 = b1 & 0x7F
        // 126 and 127 announce an extended length, which is > 125 either way.
        if opcode.isControl && length7 > 125 { throw .controlFrameTooLong }

        let lengthBytes = length7 == 127 ? 8 : (length7 == 126 ? 2 : 0)
        let headerLength = 2 + lengthBytes + (masked ? 4 : 0)
        guard bytes.count >= headerLength else { return nil }

        var cursor = bytes.startIndex + 2
        var length = UInt64(length7)
        if lengthBytes > 0 {
            length = 0
            for _ in 0..<lengthBytes {
                length = length << 8 | UInt64(bytes[cursor])
                cursor += 1
            }
        }
        guard length & (1 << 63) == 0 else { throw .lengthOverflow }
        // A client may claim up to 2^63 - 1 bytes; refuse from the header alone (§7.4.1: 1009).
        guard let payloadLength = Int(exactly: length), payloadLength <= maxFrameBytes else {
            throw .messageTooBig
        }

        var key: UInt32 = 0
        if masked {
            key = Masking.key(bytes[cursor], bytes[cursor + 1], bytes[cursor + 2], bytes[cursor + 3])
        }
        let header = FrameHeader(fin: fin, rsv1: rsv1, opcode: opcode, isMasked: masked, payloadLength: payloadLength)
        return HeaderScan(header: header, maskKey: key, headerLength: headerLength)
    }
}
