import Foundation
import XCTest
import PeekCore
import PeekTestSupport
import PeekWebSocket

/// `/v1/ws` on a real server: the opening handshake's refusals, then the
/// frame-level rules of the technician socket through a raw client.
final class CoreWebSocketTests: XCTestCase {
    /// RFC 6455 §1.3's worked example: this key must be answered with exactly
    /// this accept value.
    private let sampleKey = "dGhlIHNhbXBsZSBub25jZQ=="
    private let sampleAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

    private func upgradeRequest(path: String = "/v1/ws", port: UInt16, version: String? = "13", key: String? = nil,
                                origin: String? = nil, upgrade: Bool = true) -> String {
        var r = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
        if upgrade { r += "Upgrade: websocket\r\nConnection: Upgrade\r\n" }
        if let key = key ?? (upgrade ? sampleKey : nil) { r += "Sec-WebSocket-Key: \(key)\r\n" }
        if let version { r += "Sec-WebSocket-Version: \(version)\r\n" }
        if let origin { r += "Origin: \(origin)\r\n" }
        return r + "\r\n"
    }

    /// The response head to an upgrade request (the connection may stay open on 101).
    private func handshake(_ port: UInt16, _ request: String) throws -> TestServer.Response {
        let socket = try TestSocket.connect(port: port)
        defer { socket.close() }
        try socket.write(Array(request.utf8))
        let raw = try socket.readUntil({ bytes in
            guard let r = try? TestServer.parseResponse(bytes) else { return false }
            return r.status == 101 || r.body.count >= Int(r.headers["content-length"] ?? "0") ?? 0
        }, timeout: 10)
        return try TestServer.parseResponse(raw)
    }

    // MARK: Handshake

    func testHandshake_validRequest_answers101WithRFCAcceptKey() throws {
        let server = try TestServer()
        defer { server.stop() }
        let r = try handshake(server.port, upgradeRequest(port: server.port))
        XCTAssertEqual(r.status, 101)
        XCTAssertEqual(r.headers["sec-websocket-accept"], sampleAccept)
        XCTAssertEqual(r.headers["upgrade"]?.lowercased(), "websocket")
        XCTAssertEqual(r.headers["connection"]?.lowercased(), "upgrade")
    }

    func testHandshake_version12_answers426Naming13() throws {
        let server = try TestServer()
        defer { server.stop() }
        let r = try handshake(server.port, upgradeRequest(port: server.port, version: "12"))
        XCTAssertEqual(r.status, 426)
        XCTAssertEqual(r.headers["sec-websocket-version"], "13")
        XCTAssertEqual(r.json?["error"]?["code"]?.stringValue, "bad_upgrade")
    }

    func testHandshake_missingKey_answers400() throws {
        let server = try TestServer()
        defer { server.stop() }
        var request = upgradeRequest(port: server.port)
        request = request.replacingOccurrences(of: "Sec-WebSocket-Key: \(sampleKey)\r\n", with: "")
        let r = try handshake(server.port, request)
        XCTAssertEqual(r.status, 400)
        XCTAssertNotNil(r.json?["error"]?["message"]?.stringValue)
        // A key that is not 16 bytes of base64 is as good as none.
        let short = try handshake(server.port, upgradeRequest(port: server.port, key: "c2hvcnQ="))
        XCTAssertEqual(short.status, 400)
    }

    func testHandshake_plainGETWithoutUpgrade_answers426() throws {
        let server = try TestServer()
        defer { server.stop() }
        let r = try server.request("GET", "/v1/ws", service: false)
        XCTAssertEqual(r.status, 426)
        XCTAssertEqual(r.json?["error"]?["code"]?.stringValue, "upgrade_required")
    }

    func testHandshake_originNotInAllowList_answers403() throws {
        let server = try TestServer { $0.allowedOrigins = ["https://peek.example"] }
        defer { server.stop() }
        let refused = try handshake(server.port, upgradeRequest(port: server.port, origin: "https://evil.example"))
        XCTAssertEqual(refused.status, 403)
        XCTAssertEqual(refused.json?["error"]?["code"]?.stringValue, "forbidden")
        // With an allow-list, even the server's own host is not implied.
        let sameHost = try handshake(server.port, upgradeRequest(port: server.port, origin: "http://127.0.0.1:\(server.port)"))
        XCTAssertEqual(sameHost.status, 403)
        let allowed = try handshake(server.port, upgradeRequest(port: server.port, origin: "https://peek.example"))
        XCTAssertEqual(allowed.status, 101)
        // Tools send no Origin at all; they are not browsers and are let in.
        let none = try handshake(server.port, upgradeRequest(port: server.port))
        XCTAssertEqual(none.status, 101)
    }

    func testHandshake_noAllowList_refusesForeignOriginAcceptsSameHost() throws {
        let server = try TestServer()
        defer { server.stop() }
        let foreign = try handshake(server.port, upgradeRequest(port: server.port, origin: "https://evil.example"))
        XCTAssertEqual(foreign.status, 403)
        let otherPort = try handshake(server.port, upgradeRequest(port: server.port, origin: "http://127.0.0.1:1"))
        XCTAssertEqual(otherPort.status, 403)
        let same = try handshake(server.port, upgradeRequest(port: server.port, origin: "http://127.0.0.1:\(server.port)"))
        XCTAssertEqual(same.status, 101)
    }

    // MARK: Signing in

    func testHello_validToken_answersWelcomeWithUserAndHeartbeat() throws {
        let server = try TestServer { $0.heartbeatSeconds = 7 }
        defer { server.stop() }
        try server.seed()
        let client = try TestWebSocketClient(port: server.port)
        defer { client.close() }
        try client.send(["type": "hello", "token": .string(server.token(tenant: "acme", user: "tech-2"))])
        let welcome = try client.next(type: "welcome")
        XCTAssertEqual(welcome["user"]?["id"]?.stringValue, "tech-2")
        XCTAssertEqual(welcome["user"]?["name"]?.stringValue, "Tech 2")
        XCTAssertEqual(welcome["user"]?["tenant"]?.stringValue, "acme")
        XCTAssertEqual(welcome["heartbeat"]?.intValue, 7)
    }

    func testHello_firstFrameNotHello_unauthorizedAndClose4401() throws {
        let server = try TestServer()
        defer { server.stop() }
        try server.seed()
        let client = try TestWebSocketClient(port: server.port)
        defer { client.close() }
        try client.send(["type": "subscribe", "id": "s1", "ticket": "T-1"])
        try assertUnauthorizedClose(client, id: "s1")
    }

    /// An error answers a frame with an id with that id (CONTRACT), also
    /// before `hello`, and also when the frame itself was refused.
    func testHello_refusedFirstFrameWithAnID_unauthorizedCarriesTheID() throws {
        let server = try TestServer()
        defer { server.stop() }
        try server.seed()
        let client = try TestWebSocketClient(port: server.port)
        defer { client.close() }
        try client.send(["type": "command", "id": "c9", "ticket": "T-1", "op": "no_such_op"])
        try assertUnauthorizedClose(client, id: "c9")
    }

    func testHello_malformedFirstFrame_unauthorizedAndClose4401() throws {
        let server = try TestServer()
        defer { server.stop() }
        let client = try TestWebSocketClient(port: server.port)
        defer { client.close() }
        try client.sendText("{not json")
        try assertUnauthorizedClose(client, id: nil)
    }

    func testHello_noneWithinHelloTimeout_unauthorizedAndClose() throws {
        let server = try TestServer { $0.helloTimeoutSeconds = 1 }
        defer { server.stop() }
        let client = try TestWebSocketClient(port: server.port)
        defer { client.close() }
        let started = Date()
        try assertUnauthorizedClose(client, timeout: 10)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.9, "closed before the deadline")
    }

    func testHello_badTokens_unauthorizedAndClose4401() throws {
        let server = try TestServer()
        defer { server.stop() }
        try server.seed()
        let wrongSecret = JWT.sign(TechnicianClaims(subject: "tech-1", tenant: "acme", name: "Tech 1",
                                                    expiresAt: Int64(Date().timeIntervalSince1970) + 3600),
                                   secret: Array("another-secret".utf8))
        let tokens = [
            "not-a-jwt",
            server.token(tenant: "acme", user: "tech-1", expiresIn: -120),  // expired two minutes ago
            wrongSecret,
            server.token(tenant: "acme", user: "nobody"),  // no such technician
            server.token(tenant: "globex", user: "tech-1"),  // no such tenant
        ]
        for token in tokens {
            let client = try TestWebSocketClient(port: server.port)
            defer { client.close() }
            try client.send(["type": "hello", "token": .string(token)])
            try assertUnauthorizedClose(client)
        }
    }

    // MARK: Frames after sign-in

    func testBinaryFrame_onTechnicianSocket_closes1003() throws {
        let server = try TestServer()
        defer { server.stop() }
        try server.seed()
        let client = try server.technician()
        defer { client.close() }
        try client.sendFrame(.binary, [1, 2, 3])
        XCTAssertEqual(try client.awaitClose(), 1003)
    }

    func testMessage_overMaxMessage_closes1009() throws {
        let server = try TestServer { $0.maxMessageBytes = 4096 }
        defer { server.stop() }
        try server.seed()
        let client = try server.technician()
        defer { client.close() }
        // Exactly at the limit is fine: an unknown frame padded to 4096 bytes
        // is read and answered (invalid), not closed.
        let prefix = #"{"type":"teleport","id":"pad","pad":""#
        let atLimit = prefix + String(repeating: "x", count: 4096 - prefix.utf8.count - 2) + #""}"#
        XCTAssertEqual(atLimit.utf8.count, 4096)
        try client.sendText(atLimit)
        XCTAssertEqual(try client.next(type: "error")["id"]?.stringValue, "pad", "a 4096-byte message must be accepted")
        // One byte more, split over two fragments, is not.
        let over = Array(String(repeating: "y", count: 4097).utf8)
        try client.sendFrame(.text, Array(over[..<2000]), fin: false)
        try client.sendFrame(.continuation, Array(over[2000...]), fin: true)
        XCTAssertEqual(try client.awaitClose(), 1009)
    }

    func testFrame_declaredOverMaxMessage_closes1009BeforeItsPayload() throws {
        let server = try TestServer { $0.maxMessageBytes = 4096 }
        defer { server.stop() }
        try server.seed()
        let client = try server.technician()
        defer { client.close() }
        // Only the header of a 1 MiB frame: the declared length alone must end it.
        let header = FrameEncoder.frame(opcode: .text, payload: [UInt8](repeating: 0x20, count: 1 << 20), mask: [9, 9, 9, 9]).prefix(14)
        try client.sendRaw(Array(header))
        XCTAssertEqual(try client.awaitClose(), 1009)
    }

    func testUpgrade_helloInSameWrite_welcomed() throws {
        let server = try TestServer()
        defer { server.stop() }
        try server.seed()
        let hello = JSONWriter.encode(["type": "hello", "token": .string(server.token(tenant: "acme", user: "tech-1"))])
        let bytes = Array(upgradeRequest(port: server.port).utf8) + FrameEncoder.frame(opcode: .text, payload: hello, mask: [1, 2, 3, 4])
        let socket = try TestSocket.connect(port: server.port)
        defer { socket.close() }
        try socket.write(bytes)
        // Server frames are unmasked, so the welcome's JSON shows in the raw stream.
        let raw = try socket.readUntil({ String(decoding: $0, as: UTF8.self).contains(#""type":"welcome""#) }, timeout: 10)
        XCTAssertTrue(String(decoding: raw, as: UTF8.self).hasPrefix("HTTP/1.1 101 "))
    }

    func testMalformedJSON_afterHello_answersInvalidAndStaysOpen() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let client = try server.technician()
        defer { client.close() }
        try client.sendText("{\"type\": \"subscribe\", ")
        let error = try client.next(type: "error")
        XCTAssertEqual(error["code"]?.stringValue, "invalid")
        XCTAssertFalse(error["message"]?.stringValue?.isEmpty ?? true)
        try client.sendText("[1,2,3]")
        XCTAssertEqual(try client.next(type: "error")["code"]?.stringValue, "invalid")
        try client.send(["type": "subscribe", "id": "s1", "ticket": .string(ticket)])
        let snapshot = try client.next(type: "snapshot")
        XCTAssertEqual(snapshot["id"]?.stringValue, "s1")
        XCTAssertNil(client.closeCode)
    }

    func testFrame_unknownType_answersInvalidWithItsID() throws {
        let server = try TestServer()
        defer { server.stop() }
        try server.seed()
        let client = try server.technician()
        defer { client.close() }
        try client.send(["type": "teleport", "id": "x9"])
        let error = try client.next(type: "error")
        XCTAssertEqual(error["code"]?.stringValue, "invalid")
        XCTAssertEqual(error["id"]?.stringValue, "x9")
        try client.send(["id": "no-type"])
        XCTAssertEqual(try client.next(type: "error")["code"]?.stringValue, "invalid")
        XCTAssertNil(client.closeCode)
    }

    func testFrame_unmaskedFromClient_closes1002() throws {
        let server = try TestServer()
        defer { server.stop() }
        try server.seed()
        let client = try server.technician()
        defer { client.close() }
        // A text frame as a server would send it: no mask bit (RFC 6455 §5.1).
        try client.sendRaw(FrameEncoder.frame(opcode: .text, payload: Array(#"{"type":"composing"}"#.utf8)))
        XCTAssertEqual(try client.awaitClose(), 1002)
    }

    func testPing_fromClient_answeredWithPongCarryingItsPayload() throws {
        let server = try TestServer()
        defer { server.stop() }
        try server.seed()
        let client = try server.technician()
        defer { client.close() }
        try client.sendFrame(.ping, Array("are-you-there".utf8))
        // Unmasked server pong: FIN|opcode 0xA, length 13, the same payload.
        let pong: [UInt8] = [0x8A, 13] + Array("are-you-there".utf8)
        let raw = try client.socket.readUntil({ $0.count >= pong.count && $0.firstRange(of: pong) != nil }, timeout: 5)
        XCTAssertNotNil(raw.firstRange(of: pong))
    }

    func testFrameRate_overTheBucket_answersRateLimited() throws {
        let server = try TestServer { $0.framesPerSecond = 1 }  // a bucket of 2
        defer { server.stop() }
        try server.seed()
        let client = try server.technician()  // hello takes one token
        defer { client.close() }
        for i in 0..<4 { try client.send(["type": "teleport", "id": .string("f\(i)")]) }
        let codes = try (0..<4).map { _ in try client.next(type: "error")["code"]?.stringValue ?? "?" }
        XCTAssertEqual(codes.first, "invalid", "the frame within the bucket is read")
        XCTAssertEqual(codes.last, "rate_limited")
        XCTAssertNil(client.closeCode, "over the rate is refused frame by frame, not closed")
    }

    func testClose_fromClient_answeredWithSameCodeThenEOF() throws {
        let server = try TestServer()
        defer { server.stop() }
        try server.seed()
        let client = try server.technician()
        defer { client.close() }
        try client.sendRaw(FrameEncoder.close(code: .normal, reason: "bye", mask: [1, 2, 3, 4]))
        XCTAssertEqual(try client.awaitClose(), 1000)
        XCTAssertEqual(try client.socket.read(timeout: 5), [], "server should end the TCP stream after the close handshake")
    }

    // MARK: Helpers

    private func assertUnauthorizedClose(_ client: TestWebSocketClient, id: String? = nil, timeout: Double = 5,
                                         file: StaticString = #filePath, line: UInt = #line) throws {
        let error = try client.next(type: "error", timeout: timeout)
        XCTAssertEqual(error["code"]?.stringValue, "unauthorized", file: file, line: line)
        XCTAssertEqual(error["id"]?.stringValue, id, "an error answering a frame with an id carries it", file: file, line: line)
        XCTAssertFalse(error["message"]?.stringValue?.isEmpty ?? true, file: file, line: line)
        XCTAssertEqual(try client.awaitClose(timeout: timeout), 4401, file: file, line: line)
    }
}
