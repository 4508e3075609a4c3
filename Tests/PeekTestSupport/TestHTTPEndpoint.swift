#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import PeekCore

/// A small HTTP/1.1 server standing in for a tenant's assistant or
/// summariser: it listens on 127.0.0.1:0, serves each connection on its
/// own thread, records every request body as JSON, and answers what the
/// test's `respond` says, including streamed bodies written piece by piece
/// (chunked or close-delimited), error statuses and silence.
public final class TestHTTPEndpoint: @unchecked Sendable {
    // @unchecked: `port`, `listenFD` and `respond` never change after init;
    // everything that does is inside `state`.

    public enum Answer: Sendable {
        /// Status and body pieces, each written after `delayMillis`; chunked
        /// unless `chunked` is false (then the body ends with the close).
        case stream(status: Int, contentType: String, pieces: [String], delayMillis: Int, chunked: Bool)
        /// One body with a Content-Length.
        case whole(status: Int, contentType: String, body: String)
        /// Reads the request and never answers (until `stop`).
        case silence
        /// Answers pieces one by one as the test releases them (`release()`).
        case gated(pieces: [String])
    }

    public struct Request: Sendable {
        public var head: String
        public var body: JSONValue?
    }

    private struct State {
        var requests: [Request] = []
        var openFDs: Set<Int32> = []
        var stopped = false
        var released = 0
    }

    public let port: UInt16
    private let listenFD: Int32
    private let respond: @Sendable (Request) -> Answer
    private let state = Mutex(State())

    public var url: String { "http://127.0.0.1:\(port)/nexie" }
    public var requests: [Request] { state.withLock { $0.requests } }

    public init(respond: @escaping @Sendable (Request) -> Answer) throws {
        self.respond = respond
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestSocketError.system(call: "socket", errno: errno) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard rc == 0, listen(fd, 64) == 0 else {
            Glibc.close(fd)
            throw TestSocketError.system(call: "bind/listen", errno: errno)
        }
        listenFD = fd
        port = UInt16(bigEndian: address.sin_port)
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "test-http-accept"
        thread.start()
    }

    deinit { stop() }

    public func stop() {
        state.withLock { s in
            guard !s.stopped else { return }
            s.stopped = true
            for fd in s.openFDs { Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    /// Lets one more piece of a `.gated` answer go.
    public func release() { state.withLock { $0.released += 1 } }

    /// Waits until at least `count` requests arrived; answers them all.
    @discardableResult
    public func waitForRequests(_ count: Int, timeout: Double = 10) throws -> [Request] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let r = requests
            if r.count >= count { return r }
            guard Date() < deadline else { throw TestWebSocketClient.Failure("TestHTTPEndpoint: \(r.count) of \(count) requests within \(timeout)s") }
            usleep(5_000)
        }
    }

    private func acceptLoop() {
        defer { Glibc.close(listenFD) }
        while !state.withLock({ $0.stopped }) {
            var descriptor = pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 100) > 0 else { continue }
            let fd = accept(listenFD, nil, nil)
            guard fd >= 0 else { continue }
            let admitted = state.withLock { s -> Bool in
                guard !s.stopped else { return false }
                s.openFDs.insert(fd)
                return true
            }
            guard admitted else { Glibc.close(fd); break }
            let thread = Thread { [self] in serve(fd) }
            thread.name = "test-http-conn"
            thread.start()
        }
    }

    private func serve(_ fd: Int32) {
        defer {
            state.withLock { _ = $0.openFDs.remove(fd) }
            Glibc.close(fd)
        }
        var input: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        var headEnd: Int?
        var contentLength = 0
        while true {
            if headEnd == nil, let end = TestWebSocketClient.headerEnd(input) {
                headEnd = end
                let head = String(decoding: input[..<end], as: UTF8.self).lowercased()
                for line in head.split(separator: "\r\n") where line.hasPrefix("content-length:") {
                    contentLength = Int(line.dropFirst(15).trimmingCharacters(in: .whitespaces)) ?? 0
                }
            }
            if let end = headEnd, input.count >= end + contentLength { break }
            let n = Glibc.read(fd, &buffer, buffer.count)
            guard n > 0 else { return }
            input += buffer[..<n]
        }
        let end = headEnd!
        let request = Request(head: String(decoding: input[..<end], as: UTF8.self),
                              body: try? JSONParser.parse(Array(input[end..<end + contentLength])))
        state.withLock { $0.requests.append(request) }
        func write(_ text: String) -> Bool {
            let bytes = Array(text.utf8)
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
                guard n > 0 else { return false }
                offset += n
            }
            return true
        }
        func stopped() -> Bool { state.withLock { $0.stopped } }
        switch respond(request) {
        case .whole(let status, let type, let body):
            _ = write("HTTP/1.1 \(status) X\r\nContent-Type: \(type)\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
        case .stream(let status, let type, let pieces, let delay, let chunked):
            guard write("HTTP/1.1 \(status) X\r\nContent-Type: \(type)\r\n\(chunked ? "Transfer-Encoding: chunked\r\n" : "")Connection: close\r\n\r\n") else { return }
            for piece in pieces {
                if delay > 0 { usleep(UInt32(delay) * 1000) }
                let ok = chunked ? write(String(piece.utf8.count, radix: 16) + "\r\n" + piece + "\r\n") : write(piece)
                guard ok, !stopped() else { return }
            }
            if chunked { _ = write("0\r\n\r\n") }
        case .gated(let pieces):
            guard write("HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n") else { return }
            for (i, piece) in pieces.enumerated() {
                while state.withLock({ $0.released <= i && !$0.stopped }) { usleep(5_000) }
                guard !stopped(), write(String(piece.utf8.count, radix: 16) + "\r\n" + piece + "\r\n") else { return }
            }
            _ = write("0\r\n\r\n")
        case .silence:
            while !stopped() { usleep(20_000) }
        }
    }
}
