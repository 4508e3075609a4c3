#if canImport(Glibc)
import Glibc
#endif

/// A connection's pending output: a FIFO of chunks, the first one possibly
/// half written.
///
/// The first chunk sits in an inline slot and only the ones behind it go
/// to an array: a fan-out delivery to a connection that has nothing queued
/// (the common case) stores one reference and allocates nothing. The
/// overflow array keeps its capacity when it drains, because a busy viewer
/// (several deltas per loop iteration) would otherwise allocate it again on
/// every iteration; the loop's once-a-second sweep releases it from a
/// connection that has stayed drained (`releaseStorageIfIdle`), so an idle
/// connection still holds no buffer.
struct OutputQueue {
    private var head: ByteChunk?
    private var rest: [ByteChunk] = []
    private var restStart = 0
    /// Bytes of `head` already written.
    private(set) var headOffset = 0
    private(set) var byteCount = 0

    var isEmpty: Bool { head == nil }

    /// Set when the overflow array is used; the sweep clears it, and frees
    /// the array only when it finds it still clear (a whole period unused).
    private var overflowUsedSinceSweep = false

    mutating func append(_ chunk: ByteChunk) {
        guard chunk.count > 0 else { return }
        if head == nil {
            head = chunk
        } else {
            rest.append(chunk)
            overflowUsedSinceSweep = true
        }
        byteCount += chunk.count
    }

    /// Fills `iovecs` with up to `max` entries pointing into the queued
    /// chunks. The pointers stay valid while the chunks are queued.
    func gather(into iovecs: UnsafeMutablePointer<iovec>, max: Int) -> Int {
        guard let head, max > 0 else { return 0 }
        head.withUnsafeMutablePointerToElements { p in
            iovecs[0] = iovec(iov_base: UnsafeMutableRawPointer(p + headOffset), iov_len: head.count - headOffset)
        }
        var n = 1
        var i = restStart
        while n < max, i < rest.count {
            let chunk = rest[i]
            chunk.withUnsafeMutablePointerToElements { p in iovecs[n] = iovec(iov_base: UnsafeMutableRawPointer(p), iov_len: chunk.count) }
            n += 1
            i += 1
        }
        return n
    }

    /// Drops `written` bytes from the front.
    mutating func consume(_ written: Int) {
        var left = written
        byteCount -= written
        while left > 0, let h = head {
            let available = h.count - headOffset
            if left < available {
                headOffset += left
                return
            }
            left -= available
            headOffset = 0
            advance()
        }
    }

    /// Moves the next queued chunk into the inline slot.
    private mutating func advance() {
        if restStart < rest.count {
            head = rest[restStart]
            restStart += 1
            if restStart == rest.count {
                rest.removeAll(keepingCapacity: true)
                restStart = 0
            }
        } else {
            head = nil
            restStart = 0
        }
    }

    /// Called once per sweep period: frees the overflow array of a drained
    /// queue that did not use it since the previous call. Returns whether
    /// it freed one.
    @discardableResult
    mutating func releaseStorageIfIdle() -> Bool {
        let used = overflowUsedSinceSweep
        overflowUsedSinceSweep = false
        guard !used, head == nil, rest.capacity > 0 else { return false }
        rest = []
        return true
    }

    mutating func removeAll() {
        head = nil
        rest = []
        overflowUsedSinceSweep = false
        restStart = 0
        headOffset = 0
        byteCount = 0
    }
}
