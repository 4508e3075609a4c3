#if canImport(Glibc)
import Glibc
#endif

/// A connection's pending output: a FIFO of chunks, the first one possibly
/// half written. Empty when idle, so an idle connection holds no buffer.
struct OutputQueue {
    private(set) var chunks: [ByteChunk] = []
    /// Bytes of `chunks[0]` already written.
    private(set) var headOffset = 0
    private(set) var byteCount = 0

    var isEmpty: Bool { chunks.isEmpty }

    mutating func append(_ chunk: ByteChunk) {
        guard chunk.count > 0 else { return }
        chunks.append(chunk)
        byteCount += chunk.count
    }

    /// Fills `iovecs` with up to `max` entries pointing into the queued
    /// chunks. The pointers stay valid while the chunks are queued.
    func gather(into iovecs: UnsafeMutablePointer<iovec>, max: Int) -> Int {
        var n = 0
        for (i, chunk) in chunks.enumerated() where n < max {
            let skip = i == 0 ? headOffset : 0
            chunk.withUnsafeMutablePointerToElements { p in
                iovecs[n] = iovec(iov_base: UnsafeMutableRawPointer(p + skip), iov_len: chunk.count - skip)
            }
            n += 1
        }
        return n
    }

    /// Drops `written` bytes from the front.
    mutating func consume(_ written: Int) {
        var left = written
        byteCount -= written
        var drop = 0
        while left > 0, drop < chunks.count {
            let available = chunks[drop].count - (drop == 0 ? headOffset : 0)
            if left >= available {
                left -= available
                drop += 1
                headOffset = 0
            } else {
                headOffset += left
                left = 0
            }
        }
        if drop == chunks.count {
            // Release the array's storage too: idle connections hold nothing.
            chunks = []
            headOffset = 0
        } else if drop > 0 {
            chunks.removeFirst(drop)
        }
    }

    mutating func removeAll() {
        chunks = []
        headOffset = 0
        byteCount = 0
    }
}
