#if canImport(Glibc)
import Glibc
#endif
import CSystem
import PeekTLS

/// Which listener accepted a connection; handlers route on it (the agent
/// socket exists only on the mutual-TLS listener).
public enum ListenerKind: Sendable, Equatable, CaseIterable {
    case plain
    case tls
    case mutualTLS

    /// Index into per-kind counters.
    var slot: Int {
        switch self {
        case .plain: 0
        case .tls: 1
        case .mutualTLS: 2
        }
    }
}

/// Creates the handler for a freshly accepted connection, on its loop.
public typealias HandlerFactory = @Sendable (Connection) -> any ConnectionHandler

/// A bound, listening socket. With SO_REUSEPORT every loop gets its own
/// socket on the same port and the kernel spreads new connections between
/// them, so accepting needs no cross-thread hand-off at all.
public struct ListeningSocket: Sendable {
    public let fd: Int32
    public let port: UInt16

    /// Binds `host:port` (port 0 picks one). `host` may be an IPv4 or IPv6
    /// literal or a name such as `localhost`.
    public static func bind(host: String, port: UInt16, backlog: Int32 = 4096) throws(SystemError) -> ListeningSocket {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &result)
        guard rc == 0, let info = result else { throw SystemError(call: "getaddrinfo(\(host))", errno: EINVAL) }
        defer { freeaddrinfo(result) }
        let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError(call: "socket", errno: errno) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size))
        if Glibc.bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) != 0 {
            let e = errno
            Glibc.close(fd)
            throw SystemError(call: "bind(\(host):\(port))", errno: e)
        }
        // somaxconn caps this at 4096 here anyway (LINUX-NOTES).
        if listen(fd, backlog) != 0 {
            let e = errno
            Glibc.close(fd)
            throw SystemError(call: "listen", errno: e)
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let bound: UInt16 = withUnsafeMutablePointer(to: &storage) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                getsockname(fd, sa, &length)
                if sa.pointee.sa_family == sa_family_t(AF_INET6) {
                    return sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
                }
                return sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
            }
        }
        return ListeningSocket(fd: fd, port: bound)
    }

    public func close() { Glibc.close(fd) }
}

/// Accepts on one loop. Owned by that loop.
final class Listener: Selectable {
    let socket: ListeningSocket
    unowned let loop: EventLoop
    let kind: ListenerKind
    /// Where new connections' TLS sessions come from (nil: plain).
    let tls: TLSContextSlot?
    let makeHandler: HandlerFactory
    private var generation: UInt32 = 0
    private(set) var paused = false
    /// Global cap per process: one process may hold about 19,990 descriptors
    /// here (LINUX-NOTES); past `maxConnections` new connections are accepted
    /// and closed at once so the backlog does not fill with dead peers.
    let maxConnections: Int
    /// This listener's own cap on the loop (the agent listener's), within
    /// `maxConnections`: past it, its new connections are closed the same way.
    let maxOwnConnections: Int

    init(socket: ListeningSocket, loop: EventLoop, kind: ListenerKind, tls: TLSContextSlot?, maxConnections: Int,
         maxOwnConnections: Int, makeHandler: @escaping HandlerFactory) {
        self.socket = socket
        self.loop = loop
        self.kind = kind
        self.tls = tls
        self.maxConnections = maxConnections
        self.maxOwnConnections = maxOwnConnections
        self.makeHandler = makeHandler
    }

    func start() throws(SystemError) {
        generation = try loop.register(socket.fd, self, events: EPOLLIN.rawValue)
    }

    func stop() {
        loop.deregister(socket.fd)
        socket.close()
    }

    func resume() {
        guard paused else { return }
        paused = false
        loop.modify(socket.fd, generation: generation, events: EPOLLIN.rawValue)
    }

    func handleEvents(_ events: UInt32) {
        // Accept a bounded batch per wake-up so a connection storm cannot
        // starve established connections on this loop.
        for _ in 0..<64 {
            let fd = CSystem_accept4(socket.fd, nil, nil, Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue))
            if fd < 0 {
                let e = errno
                if e == EINTR || e == ECONNABORTED { continue }
                if e == EMFILE || e == ENFILE {
                    // Out of descriptors: stop listening until the next sweep
                    // instead of spinning on a level-triggered event.
                    paused = true
                    loop.modify(socket.fd, generation: generation, events: 0)
                }
                return
            }
            if loop.connectionCount >= maxConnections || loop.connectionCount(of: kind) >= maxOwnConnections {
                Glibc.close(fd)
                continue
            }
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            let connection = Connection(fd: fd, loop: loop, kind: kind, tlsContext: tls?.context)
            do {
                try connection.start(handler: makeHandler(connection))
            } catch {
                Glibc.close(fd)
            }
        }
    }
}
