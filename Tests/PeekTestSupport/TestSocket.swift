#if canImport(Glibc)
import Glibc
#endif
import PeekTLS

public enum TestSocketError: Error, CustomStringConvertible {
    /// A system call failed; `errno` is its error number.
    case system(call: String, errno: Int32)
    /// The deadline passed; `received` is what arrived before it.
    case timedOut(operation: String, received: [UInt8])
    /// The peer closed before `readUntil`'s predicate held.
    case closedBeforeMatch(received: [UInt8])
    /// The peer closed the TCP connection during the TLS handshake.
    case closedDuringHandshake
    case tls(TLSError)
    /// The host is neither an IP literal nor "localhost".
    case unsupportedHost(String)

    public var description: String {
        switch self {
        case .system(let call, let code): "\(call): \(String(cString: strerror(code)))"
        case .timedOut(let operation, let received): "\(operation) timed out after \(received.count) bytes"
        case .closedBeforeMatch(let received): "peer closed after \(received.count) bytes, before the expected data"
        case .closedDuringHandshake: "peer closed during the TLS handshake"
        case .tls(let error): "TLS: \(error)"
        case .unsupportedHost(let host): "unsupported host \(host) (use an IP literal or localhost)"
        }
    }

    /// The TLS error, when this is one (for asserting on alerts).
    public var tlsError: TLSError? {
        if case .tls(let error) = self { return error }
        return nil
    }
}

/// A blocking TCP client (or an accepted server-side socket) for tests, with
/// a deadline on every call, optionally speaking TLS through a `TLSSession`
/// driven over the socket. Under the hood the fd is non-blocking and every
/// wait is a `poll`, so a test that goes wrong fails with `timedOut` instead
/// of hanging the suite.
///
///     let socket = try TestSocket.connect(port: port, tls: clientContext, serverName: "localhost")
///     try socket.write(Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
///     let head = try socket.readUntil({ $0.suffix(4) == [13, 10, 13, 10] }, timeout: 5)
///
/// With TLS 1.3 a client finishes its handshake before the server has looked
/// at the client certificate, so a mutual-TLS rejection surfaces on the first
/// `read` (as `.tls` with the server's alert), not in `connect`.
public final class TestSocket {
    public let fd: Int32
    private var session: TLSSession?
    /// Plaintext that arrived but was not returned yet (`read(max:)` or `unread`).
    private var pending: [UInt8] = []
    private var isClosed = false
    /// The peer ended the stream (TCP EOF or TLS close_notify).
    public private(set) var peerClosed = false

    /// The verified peer certificate's identity (TLS only).
    public var peerIdentity: PeerIdentity? { session?.peerIdentity }
    public var isTLS: Bool { session != nil }

    private init(fd: Int32) { self.fd = fd }
    deinit { close() }

    /// Connects to `host:port` (an IPv4/IPv6 literal, or "localhost" meaning
    /// 127.0.0.1), then runs the TLS handshake when `tls` is given. The
    /// server name checked (and sent as SNI) is `serverName`, or `host`.
    public static func connect(
        port: UInt16,
        host: String = "127.0.0.1",
        tls: TLSContext? = nil,
        serverName: String? = nil,
        timeout: Double = 5
    ) throws -> TestSocket {
        let deadline = SocketDeadline(seconds: timeout)
        let address = host == "localhost" ? "127.0.0.1" : host
        var v4 = sockaddr_in()
        var v6 = sockaddr_in6()
        let family: Int32
        if inet_pton(AF_INET, address, &v4.sin_addr) == 1 {
            family = AF_INET
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = port.bigEndian
        } else if inet_pton(AF_INET6, address, &v6.sin6_addr) == 1 {
            family = AF_INET6
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = port.bigEndian
        } else {
            throw TestSocketError.unsupportedHost(host)
        }

        let fd = socket(family, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestSocketError.system(call: "socket", errno: errno) }
        let connection = TestSocket(fd: fd)  // closes fd if anything below throws

        let rc: Int32 = family == AF_INET
            ? withUnsafePointer(to: &v4) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            : withUnsafePointer(to: &v6) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        if rc != 0 {
            guard errno == EINPROGRESS else { throw TestSocketError.system(call: "connect", errno: errno) }
            try connection.wait(for: Int16(POLLOUT), until: deadline, operation: "connect", received: [])
            var failure: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &failure, &length) == 0 else {
                throw TestSocketError.system(call: "getsockopt(SO_ERROR)", errno: errno)
            }
            guard failure == 0 else { throw TestSocketError.system(call: "connect", errno: failure) }
        }
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))

        if let tls { try connection.startTLS(tls, serverName: serverName ?? host, timeout: deadline.remaining) }
        return connection
    }

    /// Wraps an accepted (or otherwise connected) fd, which this object then
    /// owns and closes; runs the server (or client) handshake when `tls` is given.
    public static func adopt(fd: Int32, tls: TLSContext? = nil, timeout: Double = 5) throws -> TestSocket {
        let connection = TestSocket(fd: fd)
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 else {
            throw TestSocketError.system(call: "fcntl(O_NONBLOCK)", errno: errno)
        }
        if let tls { try connection.startTLS(tls, timeout: timeout) }
        return connection
    }

    /// Runs a TLS handshake over the connection as it stands (STARTTLS).
    public func startTLS(_ context: TLSContext, serverName: String? = nil, timeout: Double = 5) throws {
        let deadline = SocketDeadline(seconds: timeout)
        let session: TLSSession
        do { session = try TLSSession(context: context, serverName: serverName) } catch { throw TestSocketError.tls(error) }
        self.session = session
        while true {
            let result = session.handshake()
            if case .failed(let error) = result {
                try? flushTLS(until: deadline)  // the alert tells the peer why
                throw TestSocketError.tls(error)
            }
            try flushTLS(until: deadline)
            if case .complete = result { return }
            let bytes = try receive(max: 65_536, until: deadline, operation: "TLS handshake")
            guard !bytes.isEmpty else {
                peerClosed = true
                throw TestSocketError.closedDuringHandshake
            }
            bytes.withUnsafeBytes { session.feedNetwork($0) }
        }
    }

    /// Sends all of `bytes` (encrypted when TLS is on).
    public func write(_ bytes: [UInt8], timeout: Double = 5) throws {
        let deadline = SocketDeadline(seconds: timeout)
        guard let session else { return try send(bytes, until: deadline) }
        if case .failure(let error) = bytes.withUnsafeBytes({ session.writePlaintext($0) }) {
            throw TestSocketError.tls(error)
        }
        try flushTLS(until: deadline)
    }

    /// Seals `bytes` as TLS records, flips one bit of the last byte (part of
    /// the AEAD tag) and sends that: a record no honest peer could have made.
    public func writeTampered(_ bytes: [UInt8], timeout: Double = 5) throws {
        guard let session else { return try write(bytes, timeout: timeout) }
        if case .failure(let error) = bytes.withUnsafeBytes({ session.writePlaintext($0) }) {
            throw TestSocketError.tls(error)
        }
        var output: [UInt8] = []
        session.drainNetworkOutput(into: &output)
        output[output.count - 1] ^= 0x01
        try send(output, until: SocketDeadline(seconds: timeout))
    }

    /// Up to `max` bytes of what arrived (plaintext when TLS is on); empty at
    /// end of stream. Throws `timedOut` when nothing arrives in time.
    public func read(max: Int = 65_536, timeout: Double = 5) throws -> [UInt8] {
        let deadline = SocketDeadline(seconds: timeout)
        while true {
            if !pending.isEmpty { return takePending(max: max) }
            if peerClosed { return [] }
            if let session {
                switch session.readPlaintext(into: &pending) {
                case .bytes:
                    try flushTLS(until: deadline)
                    continue
                case .closed:
                    peerClosed = true
                    continue
                case .failed(let error):
                    try? flushTLS(until: deadline)
                    throw TestSocketError.tls(error)
                case .wantMore:
                    try flushTLS(until: deadline)  // a key update reply, if any
                }
            }
            let bytes = try receive(max: session == nil ? max : 65_536, until: deadline, operation: "read")
            if bytes.isEmpty {
                // TCP EOF. Under TLS without close_notify this is a truncation;
                // tests treat it as the end of the stream like a plain close.
                peerClosed = true
                return []
            }
            if let session {
                bytes.withUnsafeBytes { session.feedNetwork($0) }
            } else {
                pending = bytes
            }
        }
    }

    /// Reads until `predicate` holds for everything received by this call,
    /// and returns all of it (possibly more than the predicate needed; hand
    /// the excess back with `unread`). Throws `closedBeforeMatch` or
    /// `timedOut`, each carrying what did arrive.
    public func readUntil(_ predicate: ([UInt8]) -> Bool, timeout: Double = 5) throws -> [UInt8] {
        let deadline = SocketDeadline(seconds: timeout)
        var received: [UInt8] = []
        while !predicate(received) {
            let chunk: [UInt8]
            do {
                chunk = try read(timeout: deadline.remaining)
            } catch TestSocketError.timedOut {
                throw TestSocketError.timedOut(operation: "readUntil", received: received)
            }
            guard !chunk.isEmpty else { throw TestSocketError.closedBeforeMatch(received: received) }
            received += chunk
        }
        return received
    }

    /// Puts bytes back in front of whatever `read` returns next.
    public func unread(_ bytes: [UInt8]) {
        pending = bytes + pending
    }

    /// Sends close_notify (TLS) and FIN; reading still works.
    public func shutdownWrite(timeout: Double = 5) throws {
        if let session {
            session.shutdown()
            try flushTLS(until: SocketDeadline(seconds: timeout))
        }
        guard Glibc.shutdown(fd, Int32(SHUT_WR)) == 0 else { throw TestSocketError.system(call: "shutdown", errno: errno) }
    }

    /// Closes with a reset (SO_LINGER 0): the server sees the connection
    /// fail at once, as when a client crashes or gives up mid-request.
    public func reset() {
        guard !isClosed else { return }
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close()
    }

    public func close() {
        guard !isClosed else { return }
        isClosed = true
        // EINTR on close still closes the fd on Linux; nothing to retry.
        _ = Glibc.close(fd)
    }

    // MARK: Internals

    private func takePending(max: Int) -> [UInt8] {
        guard pending.count > max else {
            defer { pending.removeAll(keepingCapacity: true) }
            return pending
        }
        let head = Array(pending.prefix(max))
        pending.removeFirst(max)
        return head
    }

    private func flushTLS(until deadline: SocketDeadline) throws {
        guard let session, session.hasNetworkOutput else { return }
        var output: [UInt8] = []
        session.drainNetworkOutput(into: &output)
        try send(output, until: deadline)
    }

    private func send(_ bytes: [UInt8], until deadline: SocketDeadline) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return Glibc.send(fd, base + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
            }
            if sent >= 0 {
                offset += sent
                continue
            }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: try wait(for: Int16(POLLOUT), until: deadline, operation: "write", received: [])
            case let code: throw TestSocketError.system(call: "send", errno: code)
            }
        }
    }

    /// One `recv` of up to `max` bytes, waiting up to the deadline; empty on EOF.
    private func receive(max: Int, until deadline: SocketDeadline, operation: String) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: Swift.max(1, max))
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count >= 0 {
                buffer.removeLast(buffer.count - count)
                return buffer
            }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: try wait(for: Int16(POLLIN), until: deadline, operation: operation, received: [])
            case let code: throw TestSocketError.system(call: "recv", errno: code)
            }
        }
    }

    private func wait(for events: Int16, until deadline: SocketDeadline, operation: String, received: [UInt8]) throws {
        while true {
            let remaining = deadline.remaining
            guard remaining > 0 else { throw TestSocketError.timedOut(operation: operation, received: received) }
            var descriptor = pollfd(fd: fd, events: events, revents: 0)
            let milliseconds = Int32(Swift.min(remaining * 1000, Double(Int32.max)).rounded(.up))
            let ready = poll(&descriptor, 1, milliseconds)
            if ready > 0 { return }  // readable, writable, or an error recv/send will report
            if ready < 0 && errno != EINTR { throw TestSocketError.system(call: "poll", errno: errno) }
        }
    }
}

/// A point on the monotonic clock.
private struct SocketDeadline {
    private let end: Double

    init(seconds: Double) { end = SocketDeadline.now() + seconds }

    var remaining: Double { Swift.max(0, end - SocketDeadline.now()) }

    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
