#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import PeekCore
import PeekTestSupport

/// `--log-format json`: one JSON object per line, with the event's tenant,
/// ticket and connection, and never a token, password or message body.
final class OpsLogTests: XCTestCase {
    func testJSONLog_linesParseAndCarryNoSecretsOrBodies() throws {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        defer { close(fds[0]) }
        let server = try TestServer { c in
            c.logFormat = .json
            c.logFileDescriptor = fds[1]
        }
        let ticket = try XCTUnwrap(try server.seed(tickets: 1).first)
        let password = "PASSWORD-e1b7c9-never-logged"
        // A mail server that refuses connections: the reply fails and is logged.
        let closed = try RefusingPort()
        XCTAssertEqual(try server.putEmailAccount(port: closed.port, security: "none", username: "mailer", password: password).status, 200)

        let tech = try server.technician("tech-1")
        defer { tech.close() }
        let note = "NOTE-BODY-4f2a81-never-logged"
        XCTAssertEqual(try tech.run("n-1", ticket, "note", ["body": .string(note)])["type"]?.stringValue, "result")
        let reply = "REPLY-BODY-77d0c3-never-logged"
        let answer = try tech.run("r-1", ticket, "reply", ["body": .string(reply)])
        XCTAssertEqual(answer["code"]?.stringValue, "dispatch_failed", "\(answer)")

        // Refused sign-ins: a forged token and a technician who does not exist.
        let forged = JWT.sign(TechnicianClaims(subject: "tech-1", tenant: "acme", name: "x",
                                               expiresAt: Int64(Date().timeIntervalSince1970) + 600),
                              secret: Array("not-the-secret".utf8))
        let ghost = server.token(tenant: "acme", user: "ghost")
        for token in [forged, ghost] {
            let client = try TestWebSocketClient(port: server.port)
            defer { client.close() }
            try client.send(["type": "hello", "token": .string(token)])
            XCTAssertEqual(try client.awaitClose(timeout: 10), 4401)
        }
        let goodToken = server.token(tenant: "acme", user: "tech-1")
        tech.close()
        server.stop()   // flushes the log
        close(fds[1])

        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += chunk[..<n]
        }
        let text = String(decoding: bytes, as: UTF8.self)
        let lines = text.split(separator: "\n")
        var events: [String: [JSONValue]] = [:]
        for line in lines {
            let object = try XCTUnwrap(try? JSONParser.parse(Array(line.utf8)), "not JSON: \(line)")
            for field in ["time", "level", "event", "message"] {
                XCTAssertNotNil(object[field]?.stringValue, "no \(field) in \(line)")
            }
            XCTAssertNotNil(Timestamp.parse(object["time"]?.stringValue ?? ""), "time is not RFC 3339: \(line)")
            events[object["event"]?.stringValue ?? "", default: []].append(object)
        }
        let signedIn = try XCTUnwrap(events["signed_in"]?.first, text)
        XCTAssertEqual(signedIn["tenant"]?.stringValue, "acme")
        XCTAssertNotNil(signedIn["connection"]?.stringValue)
        XCTAssertEqual(events["sign_in_refused"]?.count, 2, text)
        XCTAssertTrue(events["sign_in_refused"]?.allSatisfy { $0["error"]?.stringValue != nil && $0["level"]?.stringValue == "warn" } ?? false, text)
        let failed = try XCTUnwrap(events["reply_failed"]?.first, text)
        XCTAssertEqual(failed["ticket"]?.stringValue, ticket)
        XCTAssertEqual(failed["tenant"]?.stringValue, "acme")
        XCTAssertNotNil(failed["error"]?.stringValue)

        for secret in [password, note, reply, forged, ghost, goodToken, server.config.serviceToken, server.config.jwtSecret] {
            XCTAssertFalse(text.contains(secret), "the log contains \(secret)")
        }
        // Nor a token's signature alone (the part that grants access).
        for token in [forged, ghost, goodToken] {
            XCTAssertFalse(text.contains(String(token.split(separator: ".").last ?? "")), "the log contains a token signature")
        }
    }
}
