import Foundation
import XCTest
import PeekCore
import PeekTestSupport
import PeekTLS

/// wss:// on the TLS listener, and the agent listener's mutual TLS: who gets
/// a `welcome`, who is refused in the handshake, who is closed with 4403.
final class CoreTLSTests: XCTestCase {
    // MARK: TLS listener

    func testTLS_devCertificatesGenerated_wssHelloWelcome() throws {
        let server = try TestServer(tls: true)
        defer { server.stop() }
        try server.seed()
        let port = try XCTUnwrap(server.tlsPort)
        // No cert files configured: the server made a dev CA under <data>/certs.
        let devCA = server.directory + "/certs/dev-ca.pem"
        XCTAssertTrue(FileManager.default.fileExists(atPath: devCA))
        let trust = try TLSContext.makeClient(caFile: devCA, useSystemTrust: false)
        let client = try TestWebSocketClient(port: port, tls: trust)
        defer { client.close() }
        XCTAssertTrue(client.socket.isTLS)
        try client.send(["type": "hello", "token": .string(server.token(tenant: "acme", user: "tech-1"))])
        let welcome = try client.next(type: "welcome")
        XCTAssertEqual(welcome["user"]?["id"]?.stringValue, "tech-1")
    }

    func testTLS_configuredCertificate_wssHelloWelcomeAndHTTPS() throws {
        let pki = try CertFactory()
        let server = try tlsServer(pki)
        defer { server.stop() }
        try server.seed()
        let port = try XCTUnwrap(server.tlsPort)
        let client = try TestWebSocketClient(port: port, tls: pki.makeClientContext())
        defer { client.close() }
        try client.send(["type": "hello", "token": .string(server.token(tenant: "acme", user: "tech-1"))])
        XCTAssertEqual(try client.next(type: "welcome")["user"]?["tenant"]?.stringValue, "acme")

        // Plain HTTPS on the same listener.
        let socket = try TestSocket.connect(port: port, tls: pki.makeClientContext(), serverName: "localhost")
        defer { socket.close() }
        try socket.write(Array("GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8))
        let raw = try socket.readUntil({ String(decoding: $0, as: UTF8.self).contains("\"ok\"") }, timeout: 10)
        XCTAssertEqual(try TestServer.parseResponse(raw).status, 200)
    }

    func testTLS_messagesLargerThanATLSRecord_bothWays() throws {
        let pki = try CertFactory()
        let server = try tlsServer(pki)
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let port = try XCTUnwrap(server.tlsPort)
        let client = try TestWebSocketClient(port: port, tls: pki.makeClientContext())
        defer { client.close() }
        try client.send(["type": "hello", "token": .string(server.token(tenant: "acme", user: "tech-1"))])
        try client.next(type: "welcome")
        try client.send(["type": "subscribe", "id": "s1", "ticket": .string(ticket)])
        try client.next(type: "snapshot")
        // Three notes of ~60 kB, each spanning four TLS records (16 KiB max), sent back to back.
        let bodies = (0..<3).map { i in String(repeating: "\(i)abcdefghi", count: 6_000) }
        for (i, body) in bodies.enumerated() {
            try client.send(["type": "command", "id": .string("big\(i)"), "ticket": .string(ticket), "op": "note", "args": ["body": .string(body)]])
        }
        for (i, body) in bodies.enumerated() {
            let delta = try client.next(timeout: 10) { $0["kind"]?.stringValue == "message.created" }
            XCTAssertTrue(delta["data"]?["body"]?.stringValue == body, "note \(i) arrived altered")
        }
        // A 40 kB static file over HTTPS, too.
        let socket = try TestSocket.connect(port: port, tls: pki.makeClientContext(), serverName: "localhost")
        defer { socket.close() }
        try socket.write(Array("GET /peek.css HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8))
        let css = try coreReadResponse(socket)
        let onDisk = try Data(contentsOf: URL(fileURLWithPath: TestServer.repositoryRoot + "/client/peek.css"))
        XCTAssertEqual(css.status, 200)
        XCTAssertTrue(css.body == Array(onDisk), "peek.css over TLS differs (\(css.body.count) of \(onDisk.count) bytes)")
    }

    func testTLS_serverStops_wssClientGetsClose1001() throws {
        let pki = try CertFactory()
        let server = try tlsServer(pki)
        defer { server.stop() }
        try server.seed()
        let client = try TestWebSocketClient(port: XCTUnwrap(server.tlsPort), tls: pki.makeClientContext())
        defer { client.close() }
        try client.send(["type": "hello", "token": .string(server.token(tenant: "acme", user: "tech-1"))])
        try client.next(type: "welcome")
        let running = server.server  // Sendable, unlike the test wrapper
        let stopper = Thread { running.stop(drainSeconds: 5) }
        stopper.start()
        XCTAssertEqual(try client.awaitClose(timeout: 10), 1001)
        XCTAssertEqual(client.closeReason, "server shutting down")
        let deadline = Date().addingTimeInterval(10)
        while !stopper.isFinished && Date() < deadline { usleep(10_000) }
        XCTAssertTrue(stopper.isFinished, "stop() did not return once its only client had closed")
    }

    func testTLS_tamperedRecordAfterHandshake_serverSendsBadRecordMACAlertThenCloses() throws {
        let pki = try CertFactory()
        let server = try tlsServer(pki)
        defer { server.stop() }
        let socket = try TestSocket.connect(port: try XCTUnwrap(server.tlsPort), tls: pki.makeClientContext(presenting: nil),
                                            serverName: "localhost")
        defer { socket.close() }
        try socket.write(Array("GET /health HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        _ = try socket.readUntil { String(decoding: $0, as: UTF8.self).contains("\r\n\r\n") }
        try socket.writeTampered(Array("GET /health HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        do {
            while !(try socket.read(timeout: 5)).isEmpty {}
            XCTFail("the server closed without an alert")
        } catch let error as TestSocketError {
            let tls = try XCTUnwrap(error.tlsError, "\(error)")
            XCTAssertTrue(tls.mentions("bad record mac"), "\(tls)")
        }
    }

    func testTLS_clientNotTrustingServerCA_handshakeFails() throws {
        let pki = try CertFactory()
        let server = try tlsServer(pki)
        defer { server.stop() }
        let stranger = try TLSContext.makeClient(caFile: pki.foreignCAFile, useSystemTrust: false)
        XCTAssertThrowsError(try TestSocket.connect(port: XCTUnwrap(server.tlsPort), tls: stranger, serverName: "localhost")) { error in
            let tls = (error as? TestSocketError)?.tlsError
            XCTAssertNotNil(tls, "\(error)")
            XCTAssertTrue(tls?.mentions("certificate verify failed") ?? false, "\(error)")
        }
    }

    /// A server whose TLS listener presents the factory's server certificate.
    private func tlsServer(_ pki: CertFactory) throws -> TestServer {
        try TestServer(tls: true) { c in
            c.tlsCert = pki.serverCertFile
            c.tlsKey = pki.serverKeyFile
        }
    }

    // MARK: Agent listener (mutual TLS)

    private func agentServer(_ pki: CertFactory, crlFile: String? = nil) throws -> TestServer {
        try TestServer(agents: true) { c in
            c.agentCA = pki.caFile
            c.agentCRL = crlFile
            c.tlsCert = pki.serverCertFile
            c.tlsKey = pki.serverKeyFile
        }
    }

    func testAgent_registeredCertificate_gets101AndWelcome() throws {
        let pki = try CertFactory()
        let server = try agentServer(pki)
        defer { server.stop() }
        try server.seed()
        let created = try server.api("POST", "/v1/tenants/acme/assets", ["id": "A-7", "name": "Front desk PC", "agent": "agent-7"])
        XCTAssertEqual(created.status, 201, created.text)
        let identity = try pki.makeClient(commonName: "agent-7")
        let agent = try TestWebSocketClient(port: XCTUnwrap(server.agentPort), path: "/v1/agent",
                                            tls: pki.makeClientContext(presenting: identity))
        defer { agent.close() }
        XCTAssertTrue(agent.handshakeResponse.hasPrefix("HTTP/1.1 101"))
        let welcome = try agent.next(type: "welcome")
        XCTAssertEqual(welcome["asset"]?["id"]?.stringValue, "A-7")
        XCTAssertEqual(welcome["asset"]?["name"]?.stringValue, "Front desk PC")
    }

    func testAgent_secondConnectionWithSameCertificate_replacesFirstWith4409() throws {
        let pki = try CertFactory()
        let server = try agentServer(pki)
        defer { server.stop() }
        try server.seed()
        _ = try server.api("POST", "/v1/tenants/acme/assets", ["id": "A-9", "name": "Kiosk", "agent": "agent-9"])
        let context = try pki.makeClientContext(presenting: pki.makeClient(commonName: "agent-9"))
        let port = try XCTUnwrap(server.agentPort)
        let first = try TestWebSocketClient(port: port, path: "/v1/agent", tls: context)
        defer { first.close() }
        try first.next(type: "welcome")
        let second = try TestWebSocketClient(port: port, path: "/v1/agent", tls: context)
        defer { second.close() }
        try second.next(type: "welcome")
        XCTAssertEqual(try first.awaitClose(), 4409)
        XCTAssertNil(second.closeCode)
    }

    func testAgent_unregisteredCommonName_closed4403() throws {
        let pki = try CertFactory()
        let server = try agentServer(pki)
        defer { server.stop() }
        try server.seed()
        let identity = try pki.makeClient(commonName: "agent-unknown")
        let agent = try TestWebSocketClient(port: XCTUnwrap(server.agentPort), path: "/v1/agent",
                                            tls: pki.makeClientContext(presenting: identity))
        defer { agent.close() }
        XCTAssertEqual(try agent.next(type: "error")["code"]?.stringValue, "forbidden")
        XCTAssertEqual(try agent.awaitClose(), 4403)
        XCTAssertTrue(agent.received.allSatisfy { $0["type"]?.stringValue != "welcome" })
    }

    func testAgent_noClientCertificate_handshakeRefusedWithAlert116() throws {
        let pki = try CertFactory()
        let server = try agentServer(pki)
        defer { server.stop() }
        try assertAgentRefused(server, pki.makeClientContext(presenting: nil), alert: "certificate required")
    }

    func testAgent_foreignCACertificate_handshakeRefusedWithAlert48() throws {
        let pki = try CertFactory()
        let server = try agentServer(pki)
        defer { server.stop() }
        let identity = try pki.makeClient(commonName: "agent-foreign", kind: .foreignCA)
        try assertAgentRefused(server, pki.makeClientContext(presenting: identity), alert: "unknown ca")
    }

    func testAgent_expiredCertificate_handshakeRefused() throws {
        let pki = try CertFactory()
        let server = try agentServer(pki)
        defer { server.stop() }
        // Registered, so only the expiry can be the reason.
        try server.seed()
        _ = try server.api("POST", "/v1/tenants/acme/assets", ["id": "A-8", "name": "Old PC", "agent": "agent-old"])
        let identity = try pki.makeClient(commonName: "agent-old", kind: .expired)
        try assertAgentRefused(server, pki.makeClientContext(presenting: identity), alert: "certificate expired")
    }

    func testAgent_onTLSPortWithoutClientCertificate_answers403() throws {
        let pki = try CertFactory()
        let server = try tlsServer(pki)
        defer { server.stop() }
        XCTAssertThrowsError(try TestWebSocketClient(port: XCTUnwrap(server.tlsPort), path: "/v1/agent", tls: pki.makeClientContext())) { error in
            XCTAssertTrue("\(error)".contains("HTTP/1.1 403"), "\(error)")
        }
    }

    func testAgentListener_technicianSocketAndAPI_notServed() throws {
        // An agent certificate opens /v1/agent and nothing else on that listener.
        let pki = try CertFactory()
        let server = try agentServer(pki)
        defer { server.stop() }
        try server.seed()
        _ = try server.api("POST", "/v1/tenants/acme/assets", ["id": "A-5", "name": "Till", "agent": "agent-5"])
        let context = try pki.makeClientContext(presenting: pki.makeClient(commonName: "agent-5"))
        let port = try XCTUnwrap(server.agentPort)
        XCTAssertThrowsError(try TestWebSocketClient(port: port, path: "/v1/ws", tls: context)) { error in
            XCTAssertTrue("\(error)".contains("HTTP/1.1 403"), "\(error)")
        }
        let socket = try TestSocket.connect(port: port, tls: context, serverName: "localhost")
        defer { socket.close() }
        try socket.write(Array("GET /v1/tickets/T-1001 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer \(server.config.serviceToken)\r\n\r\n".utf8))
        XCTAssertEqual(try coreReadResponse(socket).status, 404)
        try socket.write(Array("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8))
        XCTAssertEqual(try coreReadResponse(socket).status, 200)
    }

    func testAgent_onPlainPort_answers403() throws {
        let server = try TestServer()
        defer { server.stop() }
        let request = "GET /v1/agent HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        let r = try coreRawExchange(port: server.port, request)
        XCTAssertEqual(r.status, 403)
        XCTAssertEqual(r.json?["error"]?["code"]?.stringValue, "forbidden")
    }

    // MARK: Agent CRL

    /// An agent listener for `chain`'s root, with its CRL file, and asset
    /// A-1 registered to `agent`.
    private func chainAgentServer(_ pki: CertFactory, _ chain: CertFactory.IntermediateChain, agent: String) throws -> TestServer {
        let server = try TestServer(agents: true) { c in
            c.agentCA = chain.rootFile
            c.agentCRL = chain.crlFile
            c.tlsCert = pki.serverCertFile
            c.tlsKey = pki.serverKeyFile
        }
        try server.seed()
        XCTAssertEqual(try server.api("POST", "/v1/tenants/acme/assets", ["id": "A-1", "name": "PC", "agent": .string(agent)]).status, 201)
        return server
    }

    func testAgentCRL_intermediateCARevoked_agentRefusedThoughItsOwnCertificateIsNot() throws {
        let pki = try CertFactory()
        let chain = try pki.makeIntermediateChain(agentCommonName: "agent-under-revoked-ca", intermediateRevoked: true)
        let server = try chainAgentServer(pki, chain, agent: "agent-under-revoked-ca")
        defer { server.stop() }
        try assertAgentRefused(server, pki.makeClientContext(presenting: chain.agent), alert: "certificate revoked")
    }

    func testAgentCRL_intermediateCAInGoodStanding_agentWelcomed() throws {
        // The control for the test above: the same two-level chain, nothing revoked.
        let pki = try CertFactory()
        let chain = try pki.makeIntermediateChain(agentCommonName: "agent-under-good-ca", intermediateRevoked: false)
        let server = try chainAgentServer(pki, chain, agent: "agent-under-good-ca")
        defer { server.stop() }
        let agent = try TestWebSocketClient(port: XCTUnwrap(server.agentPort), path: "/v1/agent",
                                            tls: pki.makeClientContext(presenting: chain.agent))
        defer { agent.close() }
        XCTAssertEqual(try agent.next(type: "welcome")["asset"]?["id"]?.stringValue, "A-1")
    }

    func testAgentCRL_fileReplaced_previouslyAcceptedAgentRefusedAtItsNextHandshake() throws {
        let pki = try CertFactory()
        let server = try agentServer(pki, crlFile: pki.crlFile)
        defer { server.stop() }
        try server.seed()
        _ = try server.api("POST", "/v1/tenants/acme/assets", ["id": "A-3", "name": "Laptop", "agent": "agent-3"])
        let context = try pki.makeClientContext(presenting: pki.makeClient(commonName: "agent-3"))
        let port = try XCTUnwrap(server.agentPort)
        let before = try TestWebSocketClient(port: port, path: "/v1/agent", tls: context)
        try before.next(type: "welcome")
        before.close()

        try pki.revoke(commonName: "agent-3")
        try assertAgentRefused(server, context, alert: "certificate revoked")
    }

    /// The refusal happens in TLS, before any HTTP. With TLS 1.3 the client's
    /// handshake completes first and the server's alert arrives on the first
    /// read; an upgrade attempt on such a connection must never see a 101.
    private func assertAgentRefused(_ server: TestServer, _ context: TLSContext, alert: String,
                                    file: StaticString = #filePath, line: UInt = #line) throws {
        let port = try XCTUnwrap(server.agentPort)
        do {
            let socket = try TestSocket.connect(port: port, tls: context, serverName: "localhost")
            defer { socket.close() }
            let bytes = try socket.read(timeout: 10)
            XCTFail("expected the TLS alert \(alert), read \(bytes.count) bytes", file: file, line: line)
        } catch let error as TestSocketError {
            XCTAssertTrue(error.tlsError?.mentions(alert) ?? false, "expected alert \(alert): \(error)", file: file, line: line)
        }
        XCTAssertThrowsError(try TestWebSocketClient(port: port, path: "/v1/agent", tls: context, timeout: 10),
                             "the upgrade must not succeed", file: file, line: line) { error in
            XCTAssertFalse("\(error)".contains("101"), "\(error)", file: file, line: line)
        }
    }
}
