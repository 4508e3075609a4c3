import PeekTLS
import PeekTestSupport
import XCTest

final class TLSSessionTests: XCTestCase {
    private var pki: CertFactory!

    override func setUpWithError() throws {
        pki = try CertFactory()
    }

    override func tearDown() {
        pki = nil
    }

    private func makePump(chunkSize: Int = .max, serverName: String? = "localhost") throws -> SessionPump {
        try SessionPump(client: pki.makeClientContext(), server: pki.makeServerContext(),
                        serverName: serverName, chunkSize: chunkSize)
    }

    func testTLSSession_inMemoryPair_handshakeCompletesWithTLS13() throws {
        let pump = try makePump()
        pump.establish()
        XCTAssertEqual(pump.client.protocolVersion, "TLSv1.3")
        XCTAssertEqual(pump.server.protocolVersion, "TLSv1.3")
        XCTAssertTrue(pump.client.isHandshakeComplete)
        XCTAssertFalse(pump.client.hasNetworkOutput)
        XCTAssertFalse(pump.server.hasNetworkOutput)
    }

    func testTLSSession_clientVerifiesServer_peerIdentityHasServerNames() throws {
        let pump = try makePump()
        pump.establish()
        let identity = try XCTUnwrap(pump.client.peerIdentity)
        XCTAssertEqual(identity.commonName, "localhost")
        XCTAssertEqual(identity.subjectAltNames, ["localhost", "127.0.0.1", "::1"])
        // A plain server asks for no client certificate, so it has no identity.
        XCTAssertNil(pump.server.peerIdentity)
    }

    func testTLSSession_handshakeFedOneByteAtATime_completes() throws {
        let pump = try makePump(chunkSize: 1)
        pump.establish()
        XCTAssertEqual(try pump.send(Array("split".utf8), from: pump.client, to: pump.server), Array("split".utf8))
    }

    func testTLSSession_recordFedOneByteAtATime_plaintextOnlyWhenRecordComplete() throws {
        let pump = try makePump()
        pump.establish()
        let message = Array("one record".utf8)
        try message.withUnsafeBytes { try pump.client.writePlaintext($0).get() }
        var wire: [UInt8] = []
        pump.client.drainNetworkOutput(into: &wire)
        // 5-byte record header + 10 bytes + 1 content type + 16-byte AEAD tag.
        XCTAssertEqual(wire.count, 5 + message.count + 1 + 16)
        var received: [UInt8] = []
        for (index, byte) in wire.enumerated() {
            [byte].withUnsafeBytes { pump.server.feedNetwork($0) }
            let result = pump.server.readPlaintext(into: &received)
            if index < wire.count - 1 {
                XCTAssertEqual(result, .wantMore, "byte \(index)")
            } else {
                XCTAssertEqual(result, .bytes(message.count))
            }
        }
        XCTAssertEqual(received, message)
    }

    func testTLSSession_dataBothWays_arrivesIntact() throws {
        let pump = try makePump()
        pump.establish()
        XCTAssertEqual(try pump.send(Array("ping".utf8), from: pump.client, to: pump.server), Array("ping".utf8))
        XCTAssertEqual(try pump.send(Array("pong".utf8), from: pump.server, to: pump.client), Array("pong".utf8))
    }

    func testTLSSession_oneMebibyteInOddChunks_arrivesIntact() throws {
        let pump = try makePump()
        pump.establish()
        var payload = [UInt8](repeating: 0, count: 1 << 20)
        for i in payload.indices { payload[i] = UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 13) }

        try payload.withUnsafeBytes { try pump.server.writePlaintext($0).get() }
        var wire: [UInt8] = []
        XCTAssertGreaterThan(pump.server.drainNetworkOutput(into: &wire), payload.count)
        XCTAssertFalse(pump.server.hasNetworkOutput)

        var received: [UInt8] = []
        var offset = 0
        while offset < wire.count {
            let end = min(wire.count, offset + 7_919)  // a prime, so records straddle chunks
            wire[offset..<end].withUnsafeBytes { pump.client.feedNetwork($0) }
            let result = pump.client.readPlaintext(into: &received)
            if case .failed(let error) = result { return XCTFail("\(error)") }
            offset = end
        }
        XCTAssertEqual(received.count, payload.count)
        XCTAssertTrue(received == payload)
    }

    func testTLSSession_closeNotify_peerReadsClosed() throws {
        let pump = try makePump()
        pump.establish()
        pump.client.shutdown()
        XCTAssertTrue(pump.client.hasNetworkOutput)
        pump.transfer(from: pump.client, to: pump.server)
        var received: [UInt8] = []
        XCTAssertEqual(pump.server.readPlaintext(into: &received), .closed)
        XCTAssertTrue(pump.server.receivedCloseNotify)
        XCTAssertEqual(pump.server.readPlaintext(into: &received), .closed)
    }

    func testTLSSession_dataThenCloseNotifyInOneFeed_bytesFirstThenClosed() throws {
        let pump = try makePump()
        pump.establish()
        try Array("bye".utf8).withUnsafeBytes { try pump.client.writePlaintext($0).get() }
        pump.client.shutdown()
        pump.transfer(from: pump.client, to: pump.server)
        var received: [UInt8] = []
        XCTAssertEqual(pump.server.readPlaintext(into: &received), .bytes(3))
        XCTAssertEqual(received, Array("bye".utf8))
        XCTAssertEqual(pump.server.readPlaintext(into: &received), .closed)
    }

    func testTLSSession_writeAfterShutdown_fails() throws {
        let pump = try makePump()
        pump.establish()
        pump.client.shutdown()
        let result = Array("late".utf8).withUnsafeBytes { pump.client.writePlaintext($0) }
        XCTAssertThrowsError(try result.get())
    }

    func testTLSSession_writeBeforeHandshake_failsWithoutConsuming() throws {
        let pump = try makePump()
        let result = Array("early".utf8).withUnsafeBytes { pump.client.writePlaintext($0) }
        XCTAssertThrowsError(try result.get()) { error in
            XCTAssertEqual((error as? TLSError)?.detail, "handshake not complete")
        }
        pump.establish()
    }

    func testTLSSession_tamperedRecord_failsWithBadRecordMAC() throws {
        let pump = try makePump()
        pump.establish()
        try Array("secret".utf8).withUnsafeBytes { try pump.client.writePlaintext($0).get() }
        var wire: [UInt8] = []
        pump.client.drainNetworkOutput(into: &wire)
        wire[wire.count - 1] ^= 0x01  // last byte of the AEAD tag
        wire.withUnsafeBytes { pump.server.feedNetwork($0) }
        var received: [UInt8] = []
        guard case .failed(let error) = pump.server.readPlaintext(into: &received) else {
            return XCTFail("tampered record was accepted")
        }
        // The server runs its own record layer after the handshake (no SSL_read).
        XCTAssertEqual(error.call, "readPlaintext")
        XCTAssertTrue(error.mentions("bad record mac"), "\(error)")
        XCTAssertTrue(received.isEmpty)
        // The session stays failed and says so; the alert for the peer is queued.
        XCTAssertTrue(pump.server.hasNetworkOutput)
        XCTAssertEqual(pump.server.readPlaintext(into: &received), .failed(error))
    }

    func testTLSSession_garbageInsteadOfClientHello_serverHandshakeFails() throws {
        let server = try TLSSession(context: pki.makeServerContext())
        // An HTTP request on the TLS port: 'G' (0x47) is not a TLS content type.
        Array("GET / HTTP/1.1\r\n\r\n".utf8).withUnsafeBytes { server.feedNetwork($0) }
        guard case .failed(let error) = server.handshake() else { return XCTFail("garbage accepted") }
        XCTAssertEqual(error.call, "SSL_do_handshake")
        XCTAssertFalse(error.queue.isEmpty)
    }

    func testTLSSession_wrongServerName_clientRejectsServer() throws {
        let pump = try makePump(serverName: "mail.example.com")
        let (clientResult, _) = pump.handshake()
        guard case .failed(let error) = clientResult else { return XCTFail("hostname mismatch accepted: \(clientResult)") }
        XCTAssertEqual(error.verifyResult, "hostname mismatch")
        XCTAssertNil(pump.client.peerIdentity)
    }

    func testTLSSession_ipLiteralServerName_checkedAgainstIPSANs() throws {
        let good = try makePump(serverName: "127.0.0.1")
        good.establish()
        let goodV6 = try makePump(serverName: "::1")
        goodV6.establish()

        let bad = try makePump(serverName: "127.0.0.2")
        guard case .failed(let error) = bad.handshake().client else { return XCTFail("IP mismatch accepted") }
        XCTAssertEqual(error.verifyResult, "IP address mismatch")
    }

    func testTLSSession_clientWithoutTrustedCA_rejectsServer() throws {
        let otherPKI = try CertFactory()
        let pump = try SessionPump(client: otherPKI.makeClientContext(), server: pki.makeServerContext())
        guard case .failed(let error) = pump.handshake().client else { return XCTFail("untrusted server accepted") }
        XCTAssertEqual(error.verifyResult, "unable to get local issuer certificate")
    }

    func testTLSContext_missingKeyFile_namesCallAndFile() throws {
        XCTAssertThrowsError(try TLSContext.makeServer(certificateChainFile: pki.serverCertFile,
                                                        privateKeyFile: pki.directory + "/nope.pem")) { error in
            let tlsError = error as? TLSError
            XCTAssertEqual(tlsError?.call, "SSL_CTX_use_PrivateKey_file")
            XCTAssertEqual(tlsError?.detail, pki.directory + "/nope.pem")
            XCTAssertFalse(tlsError?.queue.isEmpty ?? true)
        }
    }

    func testTLSContext_keyOfAnotherCertificate_rejected() throws {
        let client = try pki.makeClient(commonName: "someone")
        XCTAssertThrowsError(try TLSContext.makeServer(certificateChainFile: pki.serverCertFile,
                                                        privateKeyFile: client.keyFile)) { error in
            // OpenSSL compares the key with the loaded certificate as it loads it.
            XCTAssertEqual((error as? TLSError)?.call, "SSL_CTX_use_PrivateKey_file")
            XCTAssertTrue((error as? TLSError)?.mentions("key values mismatch") ?? false, "\(error)")
        }
    }

    func testTLSContext_clientWithNoTrustAnchors_throws() {
        XCTAssertThrowsError(try TLSContext.makeClient(caFile: nil, useSystemTrust: false))
    }
}
