#if canImport(Glibc)
import Glibc
#endif
import PeekCore
import PeekCrypto
import PeekTLS
import PeekWebSocket

/// Why an agent connection ended or could not be made: one sentence for the log.
public struct AgentConnectionError: Error, CustomStringConvertible {
    public let description: String
    /// The close code the server sent, if it sent one (4403 unknown agent, 4409 replaced).
    public let closeCode: UInt16?
    init(_ description: String, closeCode: UInt16? = nil) {
        self.description = description
        self.closeCode = closeCode
    }
}

/// One agent connection: TCP, the TLS handshake presenting the agent's
/// client certificate (mutual TLS), the RFC 6455 upgrade to `/v1/agent`, and
/// JSON text frames both ways. Blocking, with every wait a `poll` bounded by
/// a timeout; used from one thread only (`DemoAgent`'s).
final class AgentConnection {
    private let fd: Int32
    private let session: TLSSession
    private var parser = FrameParser(role: .client, maxFrameBytes: 16 << 20)
    private var plaintext: [UInt8] = []
    private var header: FrameHeader?
    private var payload: [UInt8] = []
    private var message: [UInt8] = []
    private var closed = false

    init(host: String, port: UInt16, serverName: String, tls: TLSContext, timeout: Double) throws(AgentConnectionError) {
        let deadline = Self.now() + timeout
        var v4 = sockaddr_in()
        var v6 = sockaddr_in6()
        let family: Int32
        let address = host == "localhost" ? "127.0.0.1" : host
        if inet_pton(AF_INET, address, &v4.sin_addr) == 1 {
            family = AF_INET
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = port.bigEndian
        } else if inet_pton(AF_INET6, address, &v6.sin6_addr) == 1 {
            family = AF_INET6
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = port.bigEndian
        } else {
            throw AgentConnectionError("\(host) is not an IP address")
        }
        fd = socket(family, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw AgentConnectionError("socket: \(String(cString: strerror(errno)))") }
        do {
            session = try TLSSession(context: tls, serverName: serverName)
        } catch {
            Glibc.close(fd)
            throw AgentConnectionError("TLS: \(error)")
        }
        do throws(AgentConnectionError) {
            let rc: Int32 = family == AF_INET
                ? withUnsafePointer(to: &v4) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
                : withUnsafePointer(to: &v6) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
            if rc != 0 {
                guard errno == EINPROGRESS else { throw AgentConnectionError("connect to \(host):\(port): \(String(cString: strerror(errno)))") }
                guard try wait(Int16(POLLOUT), until: deadline) else { throw AgentConnectionError("connect to \(host):\(port) timed out") }
                var failure: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &failure, &length)
                guard failure == 0 else { throw AgentConnectionError("connect to \(host):\(port): \(String(cString: strerror(failure)))") }
            }
            var one: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            try handshake(until: deadline)
            try upgrade(host: host, port: port, until: deadline)
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
    }

    // MARK: Frames

    /// Sends one JSON object as a masked text frame.
    func send(_ value: JSONValue) throws(AgentConnectionError) {
        try sendFrame(.text, JSONWriter.encode(value))
    }

    /// Sends a close frame (1000) and closes.
    func sayGoodbye() {
        try? sendFrame(.close, [0x03, 0xE8])
        close()
    }

    private func sendFrame(_ opcode: Opcode, _ payload: [UInt8]) throws(AgentConnectionError) {
        let mask = Crypto.randomBytes(4)
        let frame = FrameEncoder.frame(opcode: opcode, payload: payload, mask: mask)
        if case .failure(let error) = frame.withUnsafeBytes({ session.writePlaintext($0) }) {
            throw AgentConnectionError("TLS write: \(error)")
        }
        try flush(until: Self.now() + 10)
    }

    /// The JSON messages that arrive within `timeout` seconds (an empty list
    /// when none did). Pings are answered; a close frame or the end of the
    /// stream throws, carrying the close code.
    func receive(timeout: Double) throws(AgentConnectionError) -> [JSONValue] {
        var messages: [JSONValue] = []
        try parse(into: &messages)
        guard messages.isEmpty else { return messages }
        guard try wait(Int16(POLLIN), until: Self.now() + timeout) else { return [] }
        try readNetwork()
        try parse(into: &messages)
        return messages
    }

    private func parse(into messages: inout [JSONValue]) throws(AgentConnectionError) {
        while true {
            switch session.readPlaintext(into: &plaintext) {
            case .bytes: continue
            case .wantMore: break
            case .closed: if plaintext.isEmpty { throw AgentConnectionError("the server closed the connection") }
            case .failed(let error): throw AgentConnectionError("TLS read: \(error)")
            }
            break
        }
        try flush(until: Self.now() + 5)   // a key update answer, if any
        guard !plaintext.isEmpty else { return }
        var frames: [(FrameHeader, [UInt8])] = []
        do {
            try plaintext.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Void in
                var input = raw
                while let output = try parser.next(&input) {
                    switch output {
                    case .header(let h):
                        header = h
                        payload = []
                    case .payload(let chunk):
                        chunk.append(to: &payload)
                        if chunk.isFrameEnd, let h = header {
                            frames.append((h, payload))
                            header = nil
                            payload = []
                        }
                    }
                }
            }
        } catch {
            throw AgentConnectionError("bad frame from the server: \(error)")
        }
        plaintext.removeAll(keepingCapacity: true)
        for (h, bytes) in frames {
            switch h.opcode {
            case .ping: try sendFrame(.pong, bytes)
            case .pong: break
            case .close:
                let code = bytes.count >= 2 ? UInt16(bytes[0]) << 8 | UInt16(bytes[1]) : 1005
                let reason = String(decoding: bytes.dropFirst(2), as: UTF8.self)
                try? sendFrame(.close, Array(bytes.prefix(2)))
                throw AgentConnectionError("the server closed the connection (\(code) \(reason))", closeCode: code)
            case .text, .binary, .continuation:
                message += bytes
                if h.fin {
                    if let value = try? JSONParser.parse(message) { messages.append(value) }
                    message = []
                }
            }
        }
    }

    // MARK: TLS and HTTP

    private func handshake(until deadline: Double) throws(AgentConnectionError) {
        while true {
            let result = session.handshake()
            if case .failed(let error) = result {
                try? flush(until: deadline)
                throw AgentConnectionError("TLS handshake: \(error)")
            }
            try flush(until: deadline)
            if case .complete = result { return }
            guard try wait(Int16(POLLIN), until: deadline) else { throw AgentConnectionError("TLS handshake timed out") }
            try readNetwork()
        }
    }

    private func upgrade(host: String, port: UInt16, until deadline: Double) throws(AgentConnectionError) {
        let key = Base64.encode(Crypto.randomBytes(16))
        let request = "GET /v1/agent HTTP/1.1\r\nHost: \(host):\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n\r\n"
        let bytes = Array(request.utf8)
        if case .failure(let error) = bytes.withUnsafeBytes({ session.writePlaintext($0) }) { throw AgentConnectionError("TLS write: \(error)") }
        try flush(until: deadline)
        while true {
            switch session.readPlaintext(into: &plaintext) {
            case .bytes: continue
            case .closed: throw AgentConnectionError("the server closed the connection during the upgrade")
            case .failed(let error): throw AgentConnectionError("TLS: \(error)")   // the server refused the certificate
            case .wantMore: break
            }
            if let end = Self.headEnd(plaintext) {
                let head = String(decoding: plaintext[..<end], as: UTF8.self)
                plaintext.removeFirst(end)
                guard head.hasPrefix("HTTP/1.1 101") else {
                    throw AgentConnectionError("upgrade refused: \(head.split(separator: "\r\n").first ?? "")")
                }
                guard head.contains(WebSocketHandshake.acceptKey(for: key)) else { throw AgentConnectionError("wrong Sec-WebSocket-Accept") }
                return
            }
            try flush(until: deadline)
            guard try wait(Int16(POLLIN), until: deadline) else { throw AgentConnectionError("the upgrade timed out") }
            try readNetwork()
        }
    }

    private static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 { return i + 4 }
        return nil
    }

    // MARK: Socket

    private func readNetwork() throws(AgentConnectionError) {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                buffer.withUnsafeBytes { session.feedNetwork(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
                return
            }
            if count == 0 { throw AgentConnectionError("the server closed the connection") }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return
            case let code: throw AgentConnectionError("recv: \(String(cString: strerror(code)))")
            }
        }
    }

    private func flush(until deadline: Double) throws(AgentConnectionError) {
        guard session.hasNetworkOutput else { return }
        var output: [UInt8] = []
        session.drainNetworkOutput(into: &output)
        var offset = 0
        while offset < output.count {
            let sent = output.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if sent >= 0 { offset += sent; continue }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK:
                guard try wait(Int16(POLLOUT), until: deadline) else { throw AgentConnectionError("send timed out") }
            case let code: throw AgentConnectionError("send: \(String(cString: strerror(code)))")
            }
        }
    }

    /// Whether `events` became ready before the deadline.
    private func wait(_ events: Int16, until deadline: Double) throws(AgentConnectionError) -> Bool {
        while true {
            let remaining = deadline - Self.now()
            guard remaining > 0 else { return false }
            var descriptor = pollfd(fd: fd, events: events, revents: 0)
            let ready = poll(&descriptor, 1, Int32(min(remaining * 1000, 60_000).rounded(.up)))
            if ready > 0 { return true }
            if ready < 0 && errno != EINTR { throw AgentConnectionError("poll: \(String(cString: strerror(errno)))") }
        }
    }

    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
