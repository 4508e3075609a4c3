import Foundation
import PeekCore
import PeekCrypto
import PeekTLS
import PeekWebSocket

/// A real WebSocket client for integration tests: a blocking `TestSocket`
/// (plain or TLS), the RFC 6455 client handshake, masked frames out, and
/// frames in through the same `FrameParser` the server uses (client role).
public final class TestWebSocketClient {
    public let socket: TestSocket
    private var parser = FrameParser(role: .client, maxFrameBytes: 64 << 20)
    private var inbox: [UInt8] = []
    private var message: [UInt8] = []
    private var messageOpcode: Opcode = .text
    /// Text messages received and not yet taken, oldest first.
    public private(set) var received: [JSONValue] = []
    /// The close code the server sent, once it did.
    public private(set) var closeCode: UInt16?
    public private(set) var closeReason: String?
    /// Pings the server sent so far (each answered with a pong while pumping).
    public private(set) var pingsReceived = 0
    public let handshakeResponse: String

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(_ d: String) { description = d }
    }

    /// Connects and upgrades. `headers` are extra request headers (Origin, extensions).
    public init(port: UInt16, path: String = "/v1/ws", tls: TLSContext? = nil, headers: [(String, String)] = [], timeout: Double = 5) throws {
        socket = try TestSocket.connect(port: port, tls: tls, serverName: tls == nil ? nil : "localhost", timeout: timeout)
        let key = Base64.encode((0..<16).map { _ in UInt8.random(in: 0...255) })
        var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        request += "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        try socket.write(Array(request.utf8))
        let raw = try socket.readUntil({ bytes in bytes.count >= 4 && TestWebSocketClient.headerEnd(bytes) != nil }, timeout: timeout)
        guard let end = TestWebSocketClient.headerEnd(raw) else { throw Failure("no HTTP response head") }
        handshakeResponse = String(decoding: raw[..<end], as: UTF8.self)
        inbox = Array(raw[end...])
        guard handshakeResponse.hasPrefix("HTTP/1.1 101") else { throw Failure("upgrade refused: \(handshakeResponse)") }
        guard handshakeResponse.contains(WebSocketHandshake.acceptKey(for: key)) else { throw Failure("wrong Sec-WebSocket-Accept") }
    }

    static func headerEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 { return i + 4 }
        return nil
    }

    // MARK: Sending

    public func sendRaw(_ bytes: [UInt8]) throws { try socket.write(bytes) }

    public func sendFrame(_ opcode: Opcode, _ payload: [UInt8], fin: Bool = true) throws {
        let mask = (0..<4).map { _ in UInt8.random(in: 0...255) }
        try socket.write(FrameEncoder.frame(opcode: opcode, payload: payload, fin: fin, mask: mask))
    }

    public func sendText(_ text: String) throws { try sendFrame(.text, Array(text.utf8)) }

    public func send(_ value: JSONValue) throws { try sendFrame(.text, JSONWriter.encode(value)) }

    // MARK: Receiving

    /// Reads until a text message matching `predicate` arrives, and returns
    /// it; messages before it stay in `received`. Pings are answered.
    @discardableResult
    public func next(timeout: Double = 5, where predicate: (JSONValue) -> Bool = { _ in true }) throws -> JSONValue {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let i = received.firstIndex(where: predicate) { return received.remove(at: i) }
            if closeCode != nil { throw Failure("connection closed (\(closeCode!) \(closeReason ?? "")) before the expected message; have \(received)") }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { throw Failure("timed out waiting; received so far: \(received)") }
            try pump(timeout: left)
        }
    }

    /// The next message of a given `type`.
    @discardableResult
    public func next(type: String, timeout: Double = 5) throws -> JSONValue {
        try next(timeout: timeout) { $0["type"]?.stringValue == type }
    }

    /// Takes every message that arrives within `duration`.
    public func drain(for duration: Double) -> [JSONValue] {
        let deadline = Date().addingTimeInterval(duration)
        while deadline.timeIntervalSinceNow > 0 && closeCode == nil {
            do { try pump(timeout: deadline.timeIntervalSinceNow) } catch { break }
        }
        let all = received
        received = []
        return all
    }

    /// Waits for the server's close frame; returns its code.
    public func awaitClose(timeout: Double = 5) throws -> UInt16 {
        let deadline = Date().addingTimeInterval(timeout)
        while closeCode == nil {
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { throw Failure("no close frame within \(timeout)s") }
            do { try pump(timeout: left) } catch {
                if closeCode == nil { throw Failure("connection ended without a close frame: \(error)") }
            }
        }
        return closeCode!
    }

    private func pump(timeout: Double) throws {
        if inbox.isEmpty {
            let bytes = try socket.read(timeout: timeout)
            if bytes.isEmpty { throw Failure("server closed the connection") }
            inbox += bytes
        }
        try inbox.withUnsafeBytes { raw in
            var input = raw
            var header = pendingHeader
            var payload = pendingPayload
            while true {
                guard let output = try parser.next(&input) else { break }
                switch output {
                case .header(let h):
                    header = h
                    payload = []
                    if h.payloadLength == 0 { try deliver(h, payload) ; header = nil }
                case .payload(let chunk):
                    chunk.append(to: &payload)
                    if let h = header, payload.count == h.payloadLength { try deliver(h, payload); header = nil }
                }
            }
            pendingHeader = header
            pendingPayload = payload
        }
        inbox = []
    }

    private var pendingHeader: FrameHeader?
    private var pendingPayload: [UInt8] = []

    private func deliver(_ h: FrameHeader, _ payload: [UInt8]) throws {
        switch h.opcode {
        case .ping:
            pingsReceived += 1
            try sendFrame(.pong, payload)
        case .pong:
            break
        case .close:
            closeCode = payload.count >= 2 ? UInt16(payload[0]) << 8 | UInt16(payload[1]) : 1005
            closeReason = String(decoding: payload.dropFirst(2), as: UTF8.self)
            try? sendFrame(.close, Array(payload.prefix(2)))
        case .text, .binary, .continuation:
            if h.opcode != .continuation { messageOpcode = h.opcode; message = [] }
            message += payload
            if h.fin {
                if messageOpcode == .text, let v = try? JSONParser.parse(message) { received.append(v) }
                message = []
            }
        }
    }

    public func close() { socket.close() }
}
