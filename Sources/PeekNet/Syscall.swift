#if canImport(Glibc)
import Glibc
#endif

/// A failed system call, named after the call so a log line says which one.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public let call: String
    public let errno: Int32
    public var description: String { "\(call) failed: \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// The outcome of a non-blocking call: would-block is a value, not an error
/// (swift-nio's IOResult), because it is the normal case on a busy loop.
public enum IOResult<T> {
    case processed(T)
    case wouldBlock
}

/// Runs a system call once, sorting errno the way every caller needs:
/// EINTR is retried here, EAGAIN becomes `.wouldBlock`, EBADF/EFAULT are our
/// bugs (never the peer's) and trap, and anything else is thrown.
@inline(__always)
func syscall<T: FixedWidthInteger>(_ call: @autoclosure () -> String, _ body: () -> T) throws(SystemError) -> IOResult<T> {
    while true {
        let rc = body()
        if rc >= 0 { return .processed(rc) }
        let e = Glibc.errno
        switch e {
        case EINTR: continue
        case EAGAIN: return .wouldBlock
        case EBADF, EFAULT: preconditionFailure("unacceptable errno \(e) from \(call()): a bug in peekd")
        default: throw SystemError(call: call(), errno: e)
        }
    }
}

/// Monotonic time in milliseconds: deadlines must not jump with the wall clock.
public func monotonicMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// Monotonic time in microseconds, for measuring short durations (a commit).
public func monotonicMicros() -> Int {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1_000_000 + ts.tv_nsec / 1000
}

/// Wall-clock time in milliseconds since the Unix epoch, for timestamps on the wire.
public func wallClockMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}
