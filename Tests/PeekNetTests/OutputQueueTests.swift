#if canImport(Glibc)
import Glibc
#endif
import XCTest
@testable import PeekNet

/// The per-connection output FIFO, without sockets: what `writev` would be
/// given, partial writes, and when the overflow array is kept or released.
final class OutputQueueTests: XCTestCase {
    private func chunk(_ text: String) -> ByteChunk { ByteChunk.make(Array(text.utf8)) }

    /// What a writev of everything gathered would send.
    private func gathered(_ queue: OutputQueue) -> String {
        let iovecs = UnsafeMutablePointer<iovec>.allocate(capacity: 16)
        defer { iovecs.deallocate() }
        let n = queue.gather(into: iovecs, max: 16)
        var bytes: [UInt8] = []
        for i in 0..<n {
            bytes += UnsafeRawBufferPointer(start: iovecs[i].iov_base, count: iovecs[i].iov_len)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    func testPartialWrites_keepOrderAndOffsets() {
        var q = OutputQueue()
        for part in ["abc", "de", "fghi"] { q.append(chunk(part)) }
        XCTAssertEqual(q.byteCount, 9)
        XCTAssertEqual(gathered(q), "abcdefghi")
        q.consume(2)
        XCTAssertEqual(gathered(q), "cdefghi")
        q.consume(3)
        XCTAssertEqual(gathered(q), "fghi")
        q.consume(4)
        XCTAssertTrue(q.isEmpty)
        XCTAssertEqual(q.byteCount, 0)
    }

    func testOneChunk_usesNoOverflowStorage() {
        var q = OutputQueue()
        q.append(chunk("only"))
        q.consume(4)
        XCTAssertFalse(q.releaseStorageIfIdle(), "a single queued chunk lives in the inline slot")
    }

    func testOverflowStorage_keptWhileBusy_releasedAfterAWholeSweepPeriodUnused() {
        var q = OutputQueue()
        q.append(chunk("a")); q.append(chunk("b")); q.append(chunk("c"))
        q.consume(3)
        // Drained, but used in the period just ended: kept for the next busy iteration.
        XCTAssertFalse(q.releaseStorageIfIdle())
        // A whole period unused: released.
        XCTAssertTrue(q.releaseStorageIfIdle())
        XCTAssertFalse(q.releaseStorageIfIdle(), "nothing left to release")

        q.append(chunk("d")); q.append(chunk("e"))
        XCTAssertFalse(q.releaseStorageIfIdle())
        XCTAssertFalse(q.releaseStorageIfIdle(), "never released while chunks are queued")
        XCTAssertEqual(gathered(q), "de", "usable again after a release")
        q.consume(2)
        XCTAssertTrue(q.releaseStorageIfIdle())
    }
}
