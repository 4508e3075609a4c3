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

