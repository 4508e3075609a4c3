/// An immutable run of bytes with a stable address, in one allocation
/// (header and bytes together). A delta is encoded into one of these once and
/// the same object is queued on every viewer's connection, so fan-out costs a
/// reference count per recipient, not a copy; `writev` points straight at it.
///
/// `@unchecked Sendable`: the bytes are written only in `make` before the
/// chunk is shared, and never again.
public final class ByteChunk: ManagedBuffer<Int, UInt8>, @unchecked Sendable {
    public static func make(_ bytes: some Collection<UInt8>) -> ByteChunk {
        let count = bytes.count
        let buffer = ByteChunk.create(minimumCapacity: max(count, 1)) { _ in count }
        buffer.withUnsafeMutablePointerToElements { p in
            _ = UnsafeMutableBufferPointer(start: p, count: count).initialize(fromContentsOf: bytes)
        }
        // create() returns ManagedBuffer<Int, UInt8>; it is our subclass.
        return unsafeDowncast(buffer, to: ByteChunk.self)
    }

    /// Builds the chunk in place: `fill` writes exactly `count` bytes.
    public static func make(count: Int, _ fill: (UnsafeMutableRawBufferPointer) -> Void) -> ByteChunk {
        let buffer = ByteChunk.create(minimumCapacity: max(count, 1)) { _ in count }
        buffer.withUnsafeMutablePointerToElements { p in fill(UnsafeMutableRawBufferPointer(start: p, count: count)) }
        return unsafeDowncast(buffer, to: ByteChunk.self)
    }

    /// Read through the header pointer: `ManagedBuffer.header` is a class
    /// stored property, and each read of it pays a dynamic exclusivity
    /// check, which the fan-out path did several times per delivery.
    public var count: Int { withUnsafeMutablePointerToHeader { $0.pointee } }

    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let count = self.count
        return try withUnsafeMutablePointerToElements { p in try body(UnsafeRawBufferPointer(start: p, count: count)) }
    }

    public var bytes: [UInt8] { withBytes { Array($0) } }
}

/// A chunk on its way between threads. `ByteChunk` inherits from the
/// standard library's non-Sendable `ManagedBuffer`, so the checker cannot
/// accept its own conformance; this wrapper states the same guarantee
/// (immutable after `make`) at the hand-off point.
public struct SharedChunk: @unchecked Sendable {
    public let chunk: ByteChunk
    public init(_ chunk: ByteChunk) { self.chunk = chunk }
}
