/// XOR masking (RFC 6455 §5.3), eight bytes at a time.
///
/// A key is the four masking-key octets packed little-endian (octet 0 in the low byte), so the
/// low byte always applies to the next payload byte; `advance(_:by:)` rotates it as bytes pass.
/// Packing this way makes "which key byte is next" a rotation instead of an index the parser has
/// to carry, and makes the 64-bit key `key | key << 32` line up with a little-endian load.
enum Masking {
    /// Packs the four masking-key octets in wire order.
    static func key(_ b0: UInt8, _ b1: UInt8, _ b2: UInt8, _ b3: UInt8) -> UInt32 {
        UInt32(b0) | UInt32(b1) << 8 | UInt32(b2) << 16 | UInt32(b3) << 24
    }

    /// The key for the byte `count` positions further on.
    static func advance(_ key: UInt32, by count: Int) -> UInt32 {
        let shift = UInt32((count & 3) * 8)
        return shift == 0 ? key : (key >> shift) | (key << (32 - shift))
    }

    /// Masks or unmasks `bytes` in place (the operation is its own inverse).
    static func apply(_ key: UInt32, to bytes: UnsafeMutableRawBufferPointer) {
        guard key != 0, let base = bytes.baseAddress else { return }
        let count = bytes.count
        let wide = UInt64(key) | UInt64(key) << 32
        var i = 0
        // Unaligned 8-byte words: x86-64 and arm64 load them at full speed, and the compiler
        // vectorises the loop further in release builds.
        while i + 8 <= count {
            let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            base.storeBytes(of: (word ^ wide).littleEndian, toByteOffset: i, as: UInt64.self)
            i += 8
        }
        // i is a multiple of 8, hence of 4: the tail starts on key byte 0 again.
        var k = key
        while i < count {
            let p = base.advanced(by: i).assumingMemoryBound(to: UInt8.self)
            p.pointee ^= UInt8(truncatingIfNeeded: k)
            k = (k >> 8) | (k << 24)
            i += 1
        }
    }
}
