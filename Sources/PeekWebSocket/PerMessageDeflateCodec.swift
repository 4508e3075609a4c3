import CZlib

/// The deflate and inflate streams of one event loop, shared by every connection on it
/// (uWebSockets' SHARED_COMPRESSOR). Sharing is sound because `PerMessageDeflate` always
/// negotiates no context takeover in both directions, so each message is a fresh stream and
/// both streams are reset after every call: no connection's data survives into another's.
///
/// Create one per loop, on the loop's thread, and only use it there (it is deliberately not
/// `Sendable`). Memory: one inflate stream (~40 KiB), one deflate stream per window size
/// actually negotiated (~270 KiB at 15 bits, created on first use), and a 64 KiB scratch buffer.
public final class PerMessageDeflateCodec {
    /// zlib level, 0-9 (-1 is zlib's default, 6).
    public let compressionLevel: Int32
    /// zlib memLevel, 1-9: hash table size; 8 is zlib's default.
    public let memoryLevel: Int32
    /// Payloads shorter than this are sent uncompressed by `WebSocketStateMachine.makeMessageFrame`:
    /// deflate's framing costs more than it saves on a few bytes, and RFC 7692 §6 lets each
    /// message choose (RSV1 clear means uncompressed).
    public var minimumCompressedBytes: Int

    /// Indexed by zlib windowBits (9...15); nil until a connection needs that size.
    private var deflaters = [UnsafeMutablePointer<z_stream>?](repeating: nil, count: 16)
    private var inflater: UnsafeMutablePointer<z_stream>?
    private let scratch: UnsafeMutableRawPointer
    private static let scratchBytes = 64 * 1024
    /// zlib counts in `uInt` (32 bits): feed larger buffers in pieces.
    private static let maxPieceBytes = 1 << 30

    /// The four octets RFC 7692 §7.2.1 strips from every compressed message and §7.2.2 appends
    /// back before inflating: the LEN/NLEN of the empty stored block a sync flush ends with.
    private static let tail: [UInt8] = [0x00, 0x00, 0xFF, 0xFF]

    public init(compressionLevel: Int = -1, memoryLevel: Int = 8, minimumCompressedBytes: Int = 64) {
        precondition((-1...9).contains(compressionLevel) && (1...9).contains(memoryLevel), "invalid zlib settings")
        self.compressionLevel = Int32(compressionLevel)
        self.memoryLevel = Int32(memoryLevel)
        self.minimumCompressedBytes = minimumCompressedBytes
        scratch = UnsafeMutableRawPointer.allocate(byteCount: Self.scratchBytes, alignment: 16)
    }

    deinit {
        for case let stream? in deflaters {
            deflateEnd(stream)
            stream.deallocate()
        }
        if let inflater {
            inflateEnd(inflater)
            inflater.deallocate()
        }
        scratch.deallocate()
    }

    // MARK: - Compress

    /// Compresses one whole message as RFC 7692 §7.2.1 says: deflate, sync-flush, strip the
    /// trailing 00 00 FF FF. `windowBits` is `PerMessageDeflateParameters.deflateWindowBits`
    /// (9...15). Every connection with the same window size gets the same bytes, so a fan-out
    /// message is compressed once per window size, not once per recipient.
    public func compress(_ message: UnsafeRawBufferPointer, windowBits: Int = 15) -> [UInt8] {
        let stream = deflater(windowBits: windowBits)
        defer { deflateReset(stream) }
        var out: [UInt8] = []
        out.reserveCapacity(min(Int(deflateBound(stream, UInt(message.count))), Self.scratchBytes))
        var remaining = message
        repeat {
            let piece = min(remaining.count, Self.maxPieceBytes)
            stream.pointee.next_in = UnsafeMutablePointer(mutating: remaining.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.pointee.avail_in = uInt(piece)
            remaining = UnsafeRawBufferPointer(rebasing: remaining[(remaining.startIndex + piece)...])
            let flush = remaining.isEmpty ? Z_SYNC_FLUSH : Z_NO_FLUSH
            // zlib: "If deflate returns with avail_out == 0, this function must be called again
            // with the same value of the flush parameter and more output space".
            repeat {
                stream.pointee.next_out = scratch.assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_out = uInt(Self.scratchBytes)
                let rc = deflate(stream, flush)
                // Z_STREAM_ERROR means a corrupted stream or bad flush value: our bug, not the peer's.
                precondition(rc == Z_OK || rc == Z_BUF_ERROR, "deflate failed: \(rc)")
                let produced = Self.scratchBytes - Int(stream.pointee.avail_out)
                out.append(contentsOf: UnsafeRawBufferPointer(start: scratch, count: produced))
            } while stream.pointee.avail_out == 0
        } while !remaining.isEmpty
        if out.count >= 4 && out[out.count - 4] == 0 && out[out.count - 3] == 0
            && out[out.count - 2] == 0xFF && out[out.count - 1] == 0xFF {
            out.removeLast(4)
        }
        return out
    }

    public func compress(_ message: [UInt8], windowBits: Int = 15) -> [UInt8] {
        message.withUnsafeBytes { compress($0, windowBits: windowBits) }
    }

    private func deflater(windowBits: Int) -> UnsafeMutablePointer<z_stream> {
        let bits = min(max(windowBits, 9), 15)
        if let stream = deflaters[bits] { return stream }
        // Heap-allocated and never moved: zlib keeps a back pointer to the z_stream and checks it.
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        // Negative windowBits: raw deflate, no zlib header or checksum (RFC 7692 §7.2.1).
        let rc = CZlib_deflateInit2(stream, compressionLevel, Z_DEFLATED, -Int32(bits), memoryLevel, Z_DEFAULT_STRATEGY)
        // Only Z_MEM_ERROR is possible with the validated settings; Swift traps on OOM elsewhere too.
        precondition(rc == Z_OK, "deflateInit2 failed: \(rc)")
        deflaters[bits] = stream
        return stream
    }

    // MARK: - Decompress

    /// Inflates one whole compressed message (RFC 7692 §7.2.2: append 00 00 FF FF, inflate).
    ///
    /// Zip-bomb safe: output is produced 64 KiB at a time and the call throws `.messageTooBig`
    /// the moment it would exceed `maxBytes`, so memory never passes maxBytes + 64 KiB whatever
    /// the ratio. Data that is not valid DEFLATE, or that stops mid-block, throws
    /// `.invalidCompressedData`. The inflate window is 15 bits whatever the client negotiated:
    /// a larger window decodes any smaller one.
    public func decompress(_ compressed: UnsafeRawBufferPointer, maxBytes: Int) throws(FrameError) -> [UInt8] {
        let stream = try inflateStream()
        defer { inflateReset(stream) }
        var out: [UInt8] = []
        out.reserveCapacity(min(maxBytes, max(4096, compressed.count &* 2)))
        if try inflate(stream, compressed, into: &out, maxBytes: maxBytes) { return out }
        // Array.withUnsafeBytes only rethrows untyped errors: carry the typed one out in a Result.
        let ended = try Self.tail.withUnsafeBytes { tail in
            Result { () throws(FrameError) in try inflate(stream, tail, into: &out, maxBytes: maxBytes) }
        }.get()
        // A well-formed message ends with the empty stored block we just completed, so inflate
        // now waits at a block boundary (data_type bit 128, zlib.h). Anywhere else means the
        // peer's data stopped mid-block: refuse it rather than hand over a truncated message.
        guard ended || stream.pointee.data_type & 128 != 0 else { throw .invalidCompressedData }
        return out
    }

    public func decompress(_ compressed: [UInt8], maxBytes: Int) throws(FrameError) -> [UInt8] {
        try compressed.withUnsafeBytes { raw in
            Result { () throws(FrameError) in try decompress(raw, maxBytes: maxBytes) }
        }.get()
    }

    /// Feeds `input`; true if the DEFLATE stream ended (a block with BFINAL set, RFC 7692 §7.2.3.4).
    private func inflate(_ stream: UnsafeMutablePointer<z_stream>, _ input: UnsafeRawBufferPointer,
                         into out: inout [UInt8], maxBytes: Int) throws(FrameError) -> Bool {
        var remaining = input
        repeat {
            let piece = min(remaining.count, Self.maxPieceBytes)
            stream.pointee.next_in = UnsafeMutablePointer(mutating: remaining.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.pointee.avail_in = uInt(piece)
            remaining = UnsafeRawBufferPointer(rebasing: remaining[(remaining.startIndex + piece)...])
            while true {
                stream.pointee.next_out = scratch.assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_out = uInt(Self.scratchBytes)
                let rc = CZlib.inflate(stream, Z_SYNC_FLUSH)
                let produced = Self.scratchBytes - Int(stream.pointee.avail_out)
                guard produced <= maxBytes - out.count else { throw .messageTooBig }
                out.append(contentsOf: UnsafeRawBufferPointer(start: scratch, count: produced))
                switch rc {
                case Z_STREAM_END:
                    // Bytes after the final block (at least our own tail) are ignored, as the
                    // RFC's BFINAL example implies.
                    return true
                case Z_OK:
                    // Done with this piece once input is used up and output was not cut short.
                    if stream.pointee.avail_in == 0 && stream.pointee.avail_out != 0 { break }
                    continue
                case Z_BUF_ERROR:
                    // No progress possible: all input consumed, nothing pending.
                    break
                case Z_MEM_ERROR:
                    throw .deflateUnavailable
                default:
                    // Z_DATA_ERROR (bad block, distance too far back), Z_NEED_DICT.
                    throw .invalidCompressedData
                }
                break
            }
        } while !remaining.isEmpty
        return false
    }

    private func inflateStream() throws(FrameError) -> UnsafeMutablePointer<z_stream> {
        if let inflater { return inflater }
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        guard CZlib_inflateInit2(stream, -15) == Z_OK else {
            stream.deallocate()
            throw .deflateUnavailable
        }
        inflater = stream
        return stream
    }
}
