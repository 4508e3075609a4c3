#if canImport(Glibc)
import Glibc
#endif
import CSystem

/// An eventfd a thread sleeps on until another thread rings it or a
/// deadline passes: how work reaches a thread that is not an event loop
/// (the engine) without a condition variable per job.
final class Doorbell: Sendable {
    private let fd: Int32

    init() {
        fd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        precondition(fd >= 0, "eventfd failed: errno \(errno)")
    }

    deinit { close(fd) }

    /// Safe from any thread.
    func ring() {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { write(fd, $0.baseAddress, 8) }
    }

    /// Sleeps until rung or `timeoutMillis` passes, then resets.
    func wait(timeoutMillis: Int64) {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        _ = poll(&pfd, 1, Int32(clamping: max(0, timeoutMillis)))
        if pfd.revents != 0 {
            var counter: UInt64 = 0
            _ = withUnsafeMutableBytes(of: &counter) { read(fd, $0.baseAddress, 8) }
        }
    }
}
