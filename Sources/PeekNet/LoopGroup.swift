#if canImport(Glibc)
import Glibc
#endif
import Foundation
import PeekTLS
import Synchronization

/// The server's loops, one thread each.
public final class LoopGroup: Sendable {
    public let loops: [EventLoop]
    private let runningThreads = Atomic<Int>(0)
    private let listeners = Mutex<[ListeningSocket]>([])

    public init(count: Int, setUp: @escaping @Sendable (EventLoop) -> Void = { _ in }) throws(SystemError) {
        var loops: [EventLoop] = []
        for i in 0..<max(1, count) { loops.append(try EventLoop(index: i)) }
        self.loops = loops
        for loop in loops {
            runningThreads.add(1, ordering: .relaxed)
            let thread = Thread { [self] in
                loop.run(setUp: setUp)
                self.runningThreads.subtract(1, ordering: .relaxed)
            }
            thread.name = "peekd-loop-\(loop.index)"
            thread.start()
        }
    }

    /// Opens `host:port` once per loop (SO_REUSEPORT) and starts accepting.
    /// Returns the bound port (useful with port 0). `maxOwnConnectionsPerLoop`
    /// caps this listener's connections within `maxConnectionsPerLoop`.
    @discardableResult
    public func listen(host: String, port: UInt16, kind: ListenerKind, tls: TLSContextSlot?, maxConnectionsPerLoop: Int,
                       maxOwnConnectionsPerLoop: Int = .max, makeHandler: @escaping HandlerFactory) throws(SystemError) -> UInt16 {
        let first = try ListeningSocket.bind(host: host, port: port)
        var sockets = [first]
        for _ in 1..<loops.count { sockets.append(try ListeningSocket.bind(host: host, port: first.port)) }
        listeners.withLock { $0.append(contentsOf: sockets) }
        for (loop, socket) in zip(loops, sockets) {
            loop.execute { loop in
                let listener = Listener(socket: socket, loop: loop, kind: kind, tls: tls,
                                        maxConnections: maxConnectionsPerLoop, maxOwnConnections: maxOwnConnectionsPerLoop,
                                        makeHandler: makeHandler)
                do {
                    try listener.start()
                    loop.listeners.append(listener)
                } catch {
                    socket.close()
                }
            }
        }
        return first.port
    }

    /// Stops accepting everywhere, then asks every connection to close
    /// gracefully (WebSocket 1001), waits up to `drainSeconds` for them to
    /// go, and stops the loops.
    public func shutdown(drainSeconds: Double = 5) {
        let remaining = Atomic<Int>(loops.count)
        for loop in loops {
            loop.execute { loop in
                for l in loop.listeners { l.stop() }
                loop.listeners.removeAll()
                loop.forEachConnection { $0.shutdownGracefully() }
                remaining.subtract(1, ordering: .relaxed)
            }
        }
        let deadline = Date().addingTimeInterval(drainSeconds)
        while Date() < deadline {
            let open = loops.reduce(0) { total, loop in
                let count = Atomic<Int>(-1)
                loop.execute { count.store($0.connectionCount, ordering: .relaxed) }
                let asked = Date().addingTimeInterval(0.5)
                while count.load(ordering: .relaxed) < 0 && Date() < asked { usleep(2_000) }
                return total + max(0, count.load(ordering: .relaxed))
            }
            if open == 0 && remaining.load(ordering: .relaxed) == 0 { break }
            usleep(20_000)
        }
        for loop in loops { loop.stop() }
        while runningThreads.load(ordering: .relaxed) > 0 { usleep(1_000) }
    }
}
