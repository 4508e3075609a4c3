#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import PeekCore
import PeekTestSupport

/// SIGHUP rotates certificates without a restart: the next handshake
/// presents the new certificate, a connection made before keeps receiving
/// deltas, and a file that does not load keeps the one in use.
final class OpsReloadTests: TemporaryDirectoryTestCase {
    private func copy(_ from: String, to: String) throws {
        try? FileManager.default.removeItem(atPath: to)
        try FileManager.default.copyItem(atPath: from, toPath: to)
    }

    func testSIGHUP_replacedCertificate_newHandshakesPresentItOldConnectionKeepsDeltas() throws {
        let pki = try CertFactory()
        let cert = directory + "/tls.pem", key = directory + "/tls-key.pem"
        try copy(pki.serverCertFile, to: cert)
        try copy(pki.serverKeyFile, to: key)
        let secret = String(repeating: "r", count: 32), service = "reload-service"
        let peekd = try PeekdSubprocess(["--port", "0", "--tls-port", "0", "--data", directory + "/data", "--threads", "2",
                                         "--jwt-secret", secret, "--service-token", service, "--tls-cert", cert, "--tls-key", key])
        let plain = try peekd.readyPort("plain")
        let tls = try peekd.readyPort("tls")

        func api(_ path: String, _ json: String) throws {
            let r = try TestServer.request(port: plain, "POST", path, body: Array(json.utf8), bearer: service)
            XCTAssertEqual(r.status, 201, "\(path): \(r.text)")
        }
        try api("/v1/tenants", #"{"id":"acme","name":"Acme"}"#)
        try api("/v1/tenants/acme/technicians", #"{"id":"tech-1","name":"Tech 1","email":"t1@acme.example"}"#)
        try api("/v1/tenants/acme/technicians", #"{"id":"tech-2","name":"Tech 2","email":"t2@acme.example"}"#)
        let created = try TestServer.request(port: plain, "POST", "/v1/tenants/acme/tickets",
                                             body: Array(#"{"subject":"Fan","client":"C","priority":"normal","contact":{"name":"C","email":"c@example.com"}}"#.utf8),
                                             bearer: service)
        let ticket = try XCTUnwrap(created.json?["id"]?.stringValue, created.text)
        func token(_ user: String) -> String {
            JWT.sign(TechnicianClaims(subject: user, tenant: "acme", name: user, expiresAt: Int64(Date().timeIntervalSince1970) + 600),
                     secret: Array(secret.utf8))
        }
        func signIn(_ client: TestWebSocketClient, _ user: String) throws {
            try client.send(["type": "hello", "token": .string(token(user))])
            try client.next(type: "welcome")
        }
        let trust = try pki.makeClientContext()
        func presented() throws -> String? {
            let socket = try TestSocket.connect(port: tls, tls: trust, serverName: "localhost")
            defer { socket.close() }
            return socket.peerIdentity?.commonName
        }

        /// SIGHUP, the log line about the TLS listener's files, and the
        /// certificate the next handshake presents.
        func hangUp(expecting outcome: String) throws {
            XCTAssertEqual(kill(peekd.process.processIdentifier, SIGHUP), 0)
            XCTAssertNotNil(peekd.stderr.line(timeout: 10) { $0.contains("TLS certificate \(cert)") && $0.contains(outcome) },
                            "no line with \(outcome) on stderr")
            XCTAssertTrue(peekd.process.isRunning, "SIGHUP ended peekd")
            XCTAssertEqual(try presented(), "rotated.localhost")
        }

        // A viewer over wss, on the first certificate.
        let viewer = try TestWebSocketClient(port: tls, tls: trust)
        defer { viewer.close() }
        XCTAssertEqual(viewer.socket.peerIdentity?.commonName, "localhost")
        try signIn(viewer, "tech-1")
        try viewer.subscribe(ticket)
        let poster = try TestWebSocketClient(port: plain)
        defer { poster.close() }
        try signIn(poster, "tech-2")

        let rotated = try pki.makeServer(commonName: "rotated.localhost")
        try copy(rotated.certificateFile, to: cert)
        try copy(rotated.keyFile, to: key)
        XCTAssertEqual(try presented(), "localhost", "the new files were used before SIGHUP (the test's premise)")
        try hangUp(expecting: " reloaded")

        XCTAssertEqual(try poster.run("n-1", ticket, "note", ["body": "after the rotation"])["type"]?.stringValue, "result")
        let delta = try viewer.delta("message.created", ticket: ticket)
        XCTAssertEqual(delta["data"]?["body"]?.stringValue, "after the rotation")

        // A certificate file that does not load: the rotated one stays.
        try Data("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n".utf8).write(to: URL(fileURLWithPath: cert))
        try hangUp(expecting: "not reloaded")
        XCTAssertEqual(try poster.run("n-2", ticket, "note", ["body": "still here"])["type"]?.stringValue, "result")
        XCTAssertEqual(try viewer.delta("message.created", ticket: ticket)["data"]?["body"]?.stringValue, "still here")
        XCTAssertEqual(peekd.stop(), 0)
    }
}
