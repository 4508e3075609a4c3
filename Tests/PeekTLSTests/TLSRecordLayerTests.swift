import COpenSSL
@testable import PeekTLS
import PeekTestSupport
import Synchronization
import XCTest

/// The client's application traffic secrets from the last handshake of a
/// context made with `keylog: true`, so a test can forge records exactly
/// as that client would (padding, illegal messages) that OpenSSL's client
/// never sends. Test-only; production contexts log to the session alone.
private let clientKeylog = Mutex<[String: [UInt8]]>([:])

/// The server side of a TLS 1.3 session after the hand-off: OpenSSL's
/// client on one side, `TLSRecordLayer` on the other, pumped in memory.
final class TLSRecordLayerTests: XCTestCase {
    private var pki: CertFactory!

    override func setUpWithError() throws {
        pki = try CertFactory()
    }

    override func tearDown() {
        pki = nil
    }

    static let suites: [(name: String, suite: TLSRecordLayer.Suite)] = [
        ("TLS_AES_128_GCM_SHA256", .aes128GCM),
        ("TLS_AES_256_GCM_SHA384", .aes256GCM),
        ("TLS_CHACHA20_POLY1305_SHA256", .chacha20Poly1305),
    ]

    /// A client context limited to `suite` (TLS 1.3 suites are the client's
    /// offer; the server takes the one it is offered).
    private func makeClientContext(suite: String? = nil, keylog: Bool = false,
                                   presenting identity: CertFactory.Identity? = nil) throws -> TLSContext {
        let context = try pki.makeClientContext(presenting: identity)
        if let suite { XCTAssertEqual(SSL_CTX_set_ciphersuites(context.handle, suite), 1) }
        if keylog {
            SSL_CTX_set_keylog_callback(context.handle) { _, line in
                guard let line else { return }
                let fields = String(cString: line).split(separator: " ")
                guard fields.count == 3 else { return }
                var bytes: [UInt8] = []
                var index = fields[2].startIndex
                while index < fields[2].endIndex {
                    let next = fields[2].index(index, offsetBy: 2)
                    bytes.append(UInt8(fields[2][index..<next], radix: 16) ?? 0)
                    index = next
                }
                clientKeylog.withLock { $0[String(fields[0])] = bytes }
            }
        }
        return context
    }

    private func makePump(suite: String? = nil, keylog: Bool = false, chunkSize: Int = .max) throws -> SessionPump {
        let pump = try SessionPump(client: makeClientContext(suite: suite, keylog: keylog),
                                   server: pki.makeServerContext(), chunkSize: chunkSize)
        pump.establish()
        XCTAssertTrue(pump.server.usesOwnRecordLayer)
        return pump
    }

    /// A record layer holding the client's keys, sequence numbers at 0:
    /// its records are what the server would get from the real client's
    /// first records.
    private func makeForger(_ pump: SessionPump) throws -> TLSRecordLayer {
        let suite = try XCTUnwrap(Self.suites.first { $0.name == pump.server.cipherSuite }?.suite)
        let secrets = clientKeylog.withLock { $0 }
        let client = try XCTUnwrap(secrets["CLIENT_TRAFFIC_SECRET_0"])
        let server = try XCTUnwrap(secrets["SERVER_TRAFFIC_SECRET_0"])
        let layer = client.withUnsafeBytes { write in
            server.withUnsafeBytes { read in TLSRecordLayer(suite: suite, readSecret: read, writeSecret: write) }
        }
        return try XCTUnwrap(layer)
    }

    private func seal(_ layer: TLSRecordLayer, type: UInt8, _ content: [UInt8], padding: Int = 0) -> [UInt8] {
        var wire: [UInt8] = []
        XCTAssertTrue(content.withUnsafeBytes { layer.seal(contentType: type, $0, padding: padding, appendingTo: &wire) })
        return wire
    }

    private func feed(_ session: TLSSession, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { session.feedNetwork($0) }
    }

    private func readAll(_ session: TLSSession) -> (bytes: [UInt8], last: TLSReadResult) {
        var received: [UInt8] = []
        var result = session.readPlaintext(into: &received)
        while case .bytes = result { result = session.readPlaintext(into: &received) }
        return (received, result)
    }

    private func payload(_ count: Int, seed: Int = 0) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: ($0 &+ seed) &* 2_654_435_761 >> 11) }
    }

    private func assertRoundTrips(_ pump: SessionPump, _ label: String = "", file: StaticString = #filePath, line: UInt = #line) throws {
        let up = payload(300, seed: 1), down = payload(500, seed: 2)
        XCTAssertEqual(try pump.send(up, from: pump.client, to: pump.server), up, "client -> server \(label)", file: file, line: line)
        XCTAssertEqual(try pump.send(down, from: pump.server, to: pump.client), down, "server -> client \(label)", file: file, line: line)
    }

    // MARK: The hand-off

    func testHandOff_tls13Server_runsOwnRecordLayerClientKeepsOpenSSL() throws {
        let pump = try makePump()
        XCTAssertTrue(pump.server.usesOwnRecordLayer)
        XCTAssertFalse(pump.client.usesOwnRecordLayer)
        XCTAssertEqual(pump.server.protocolVersion, "TLSv1.3")
        XCTAssertEqual(pump.server.cipherSuite, pump.client.cipherSuite)
        XCTAssertFalse(pump.server.hasNetworkOutput)
        XCTAssertEqual(pump.server.handshake(), .complete)
        try assertRoundTrips(pump)
    }

    func testHandOff_tls12Client_serverKeepsOpenSSL() throws {
        let client = try makeClientContext()
        XCTAssertEqual(COpenSSL_SSL_CTX_set_max_proto_version(client.handle, TLS1_2_VERSION), 1)
        let pump = try SessionPump(client: client, server: pki.makeServerContext())
        pump.establish()
        XCTAssertEqual(pump.server.protocolVersion, "TLSv1.2")
        XCTAssertFalse(pump.server.usesOwnRecordLayer)
        try assertRoundTrips(pump)
    }

    func testHandOff_mutualTLS_peerIdentityStillReported() throws {
        let agent = try pki.makeClient(commonName: "agent-handoff")
        let pump = try SessionPump(client: makeClientContext(presenting: agent), server: pki.makeMutualServerContext())
        pump.establish()
        XCTAssertTrue(pump.server.usesOwnRecordLayer)
        XCTAssertEqual(pump.server.peerIdentity?.commonName, "agent-handoff")
        try assertRoundTrips(pump)
    }

    /// The client's Finished and its first application record in one feed:
    /// the record is still in the read BIO when the SSL is freed.
    func testHandOff_dataInSameFeedAsClientFinished_isRead() throws {
        let client = try TLSSession(context: makeClientContext(), serverName: "localhost")
        let server = try TLSSession(context: pki.makeServerContext())
        var wire: [UInt8] = []
        _ = client.handshake()
        client.drainNetworkOutput(into: &wire)                   // ClientHello
        feed(server, wire); wire = []
        XCTAssertEqual(server.handshake(), .wantMore)
        server.drainNetworkOutput(into: &wire)                   // ServerHello ... Finished
        feed(client, wire); wire = []
        XCTAssertEqual(client.handshake(), .complete)
        let early = payload(20_000, seed: 3)                     // two records
        try early.withUnsafeBytes { try client.writePlaintext($0).get() }
        client.drainNetworkOutput(into: &wire)                   // Finished + 2 records
        feed(server, wire)
        XCTAssertEqual(server.handshake(), .complete)
        XCTAssertTrue(server.usesOwnRecordLayer)
        let (received, last) = readAll(server)
        XCTAssertEqual(last, .wantMore)
        XCTAssertTrue(received == early)
    }

    // MARK: Records

    func testRecords_eachSuite_everySizeRoundTripsBothWays() throws {
        let sizes = [0, 1, 2, 15, 16, 17, 255, 1000, 16_383, 16_384, 16_385, 32_767, 32_768, 32_769, 49_151, 49_152]
        for (name, suite) in Self.suites {
            let pump = try makePump(suite: name)
            XCTAssertEqual(pump.server.cipherSuite, name)
            XCTAssertEqual(pump.client.cipherSuite, name)
            for size in sizes {
                let up = payload(size, seed: size), down = payload(size, seed: size + 7)
                XCTAssertTrue(try pump.send(up, from: pump.client, to: pump.server) == up, "\(suite) up \(size)")

                try down.withUnsafeBytes { try pump.server.writePlaintext($0).get() }
                var wire: [UInt8] = []
                pump.server.drainNetworkOutput(into: &wire)
                // Full 2^14-byte records, then the rest; each adds 5 + 1 + 16.
                let records = (size + 16_383) / 16_384
                XCTAssertEqual(wire.count, size + records * 22, "\(suite) down \(size)")
                feed(pump.client, wire)
                XCTAssertTrue(readAll(pump.client).bytes == down, "\(suite) down \(size)")
            }
        }
    }

    func testRecords_splitAtEveryByte_arriveIntact() throws {
        // Two records and a KeyUpdate between them, as the client sends them.
        let first = Array("first record".utf8), second = Array("second, under the next key".utf8)
        for cut in 0...(2 * 22 + first.count + second.count + 27) {
            let pump = try makePump()
            try first.withUnsafeBytes { try pump.client.writePlaintext($0).get() }
            try pump.client.requestKeyUpdate(peerShouldUpdate: false).get()
            try second.withUnsafeBytes { try pump.client.writePlaintext($0).get() }
            var wire: [UInt8] = []
            pump.client.drainNetworkOutput(into: &wire)
            XCTAssertEqual(wire.count, 2 * 22 + first.count + second.count + 27)
            feed(pump.server, Array(wire[..<cut]))
            var received = readAll(pump.server).bytes
            feed(pump.server, Array(wire[cut...]))
            let (rest, last) = readAll(pump.server)
            received += rest
            XCTAssertEqual(last, .wantMore, "cut \(cut)")
            XCTAssertEqual(received, first + second, "cut \(cut)")
        }
    }

    /// A client's whole stream after its Finished, fed to the server one
    /// byte per call, reading after each: data, a KeyUpdate asking the
    /// server to move, data under the new key, close_notify. Both record
    /// layers, since `--tls-record-layer` chooses between them.
    func testRecords_streamFedOneByteAtATime_sameAsWhole_bothLayers() throws {
        for layer in TLSContext.RecordLayer.allCases {
            let pump = try SessionPump(client: makeClientContext(), server: pki.makeServerContext(recordLayer: layer))
            pump.establish()
            XCTAssertEqual(pump.server.usesOwnRecordLayer, layer == .peek, "\(layer)")
            let first = payload(700, seed: 3), second = payload(40, seed: 4)
            try first.withUnsafeBytes { try pump.client.writePlaintext($0).get() }
            try pump.client.requestKeyUpdate(peerShouldUpdate: true).get()
            try second.withUnsafeBytes { try pump.client.writePlaintext($0).get() }
            pump.client.shutdown()
            var wire: [UInt8] = []
            pump.client.drainNetworkOutput(into: &wire)

            var received: [UInt8] = []
            var last = TLSReadResult.wantMore
            for byte in wire {
                feed(pump.server, [byte])
                last = pump.server.readPlaintext(into: &received)
                if case .bytes = last { last = pump.server.readPlaintext(into: &received) }
                if case .failed = last { break }
            }
            XCTAssertEqual(last, .closed, "\(layer)")
            XCTAssertTrue(received == first + second, "\(layer): \(received.count) bytes arrived of \(first.count + second.count)")
            // The server answered the KeyUpdate: the client reads the reply under the old key and moves.
            XCTAssertEqual(try pump.send(Array("reply".utf8), from: pump.server, to: pump.client), Array("reply".utf8), "\(layer)")
        }
    }

    /// Sequence numbers past 2^16 (a nonce built from too few bytes of the
    /// sequence number would fail here): 70,000 one-byte records each way
    /// between OpenSSL's client and our layer, under one key. (OpenSSL's own
    /// layer gets the same over a real socket in CoreTLSInteropTests.)
    func testRecords_70000RecordsEachWay_sequencePast2To16() throws {
        let count = 70_000
        let pump = try makePump()
        for (sender, receiver, direction) in [(pump.client, pump.server, "up"), (pump.server, pump.client, "down")] {
            let bytes = payload(count, seed: direction.count)
            var wire: [UInt8] = []
            for index in 0..<count {
                try bytes[index...index].withUnsafeBytes { try sender.writePlaintext($0).get() }
                sender.drainNetworkOutput(into: &wire)
            }
            XCTAssertEqual(wire.count, count * 23, "\(direction): one 23-byte record per byte")
            var received: [UInt8] = []
            if receiver === pump.server {
                feed(receiver, wire)
                let (all, last) = readAll(receiver)
                XCTAssertEqual(last, .wantMore)
                received = all
            } else {
                // A record at a time: OpenSSL sizes each read by what is
                // pending, so one 1.6 MB feed would cost 16 KiB per record.
                for start in stride(from: 0, to: wire.count, by: 23) {
                    feed(receiver, Array(wire[start..<start + 23]))
                    guard case .bytes = receiver.readPlaintext(into: &received) else { break }
                }
            }
            XCTAssertTrue(received == bytes, "\(direction): \(received.count) of \(count) bytes")
        }
        try assertRoundTrips(pump, "after 70,000 records each way")
    }

    func testRecords_paddedAndEmptyRecords_yieldOnlyContent() throws {
        let pump = try makePump(keylog: true)
        let forger = try makeForger(pump)
        var wire = seal(forger, type: 23, Array("padded".utf8), padding: 100)
        wire += seal(forger, type: 23, [])                        // zero-length application data is legal
        wire += seal(forger, type: 23, Array("next".utf8))
        feed(pump.server, wire)
        let (received, last) = readAll(pump.server)
        XCTAssertEqual(received, Array("paddednext".utf8))
        XCTAssertEqual(last, .wantMore)
    }

    // MARK: Failures

    func testTampering_anyByteOfARecord_failsWithBadRecordMACAndAlertsPeer() throws {
        // The version byte is authenticated as AAD; then the body; then the tag.
        for index in [1, 2, 5, 12, 30] {
            let pump = try makePump()
            try Array("tamper me".utf8).withUnsafeBytes { try pump.client.writePlaintext($0).get() }
            var wire: [UInt8] = []
            pump.client.drainNetworkOutput(into: &wire)
            XCTAssertEqual(wire.count, 31)
            wire[index] ^= 0x40
            feed(pump.server, wire)
            var received: [UInt8] = []
            guard case .failed(let error) = pump.server.readPlaintext(into: &received) else {
                return XCTFail("tampered byte \(index) accepted")
            }
            XCTAssertTrue(error.mentions("bad record mac"), "\(error)")
            XCTAssertTrue(received.isEmpty)
            XCTAssertEqual(pump.server.readPlaintext(into: &received), .failed(error))
            XCTAssertThrowsError(try Array("x".utf8).withUnsafeBytes { try pump.server.writePlaintext($0).get() })
            // The encrypted alert reaches OpenSSL's client as alert 20.
            XCTAssertTrue(pump.server.hasNetworkOutput)
            let clientError = try XCTUnwrap(pump.clientFailure())
            XCTAssertTrue(clientError.mentions("bad record mac"), "\(clientError)")
        }
    }

    func testFailure_peerSendsFatalAlert_failsNamingIt() throws {
        let pump = try makePump()
        try Array("to client".utf8).withUnsafeBytes { try pump.server.writePlaintext($0).get() }
        var wire: [UInt8] = []
        pump.server.drainNetworkOutput(into: &wire)
        wire[wire.count - 1] ^= 1
        feed(pump.client, wire)
        guard case .failed = readAll(pump.client).last else { return XCTFail("client accepted a tampered record") }
        pump.transfer(from: pump.client, to: pump.server)          // OpenSSL's bad_record_mac alert
        guard case .failed(let error) = readAll(pump.server).last else { return XCTFail("alert ignored") }
        XCTAssertTrue(error.mentions("peer sent alert 20"), "\(error)")
        XCTAssertFalse(pump.server.hasNetworkOutput)               // no alert answers an alert
    }

    func testFailure_recordHeaderOverLimit_failsFromHeaderAlone() throws {
        let pump = try makePump()
        feed(pump.server, [0x17, 0x03, 0x03, 0x41, 0x01])          // 16,641 = 2^14 + 256 + 1
        guard case .failed(let error) = readAll(pump.server).last else { return XCTFail("oversized record waited") }
        XCTAssertTrue(error.mentions("record overflow"), "\(error)")
        XCTAssertTrue(pump.server.hasNetworkOutput)
    }

    func testFailure_innerPlaintextOver2To14Plus1_recordOverflow() throws {
        let pump = try makePump(keylog: true)
        let forger = try makeForger(pump)
        feed(pump.server, seal(forger, type: 23, payload(16_384), padding: 1))  // 16,386 inner bytes
        guard case .failed(let error) = readAll(pump.server).last else { return XCTFail("accepted") }
        XCTAssertTrue(error.mentions("record overflow"), "\(error)")
    }

    func testFailure_changeCipherSpecAfterHandshake_unexpectedMessage() throws {
        let pump = try makePump()
        feed(pump.server, [0x14, 0x03, 0x03, 0x00, 0x01, 0x01])
        guard case .failed(let error) = readAll(pump.server).last else { return XCTFail("CCS accepted") }
        XCTAssertTrue(error.mentions("unexpected message"), "\(error)")
    }

    func testFailure_forgedInnerContent_rejectedWithRightAlert() throws {
        // (content type, content, padding, alert named in the error)
        let cases: [(UInt8, [UInt8], Int, String)] = [
            (22, [4, 0, 0, 4, 0, 0, 0, 0], 0, "unexpected message"),        // NewSessionTicket from a client
            (22, [24, 0, 0, 1, 2], 0, "illegal parameter"),                 // request_update 2
            (22, [24, 0, 0, 1, 0, 24, 0, 0, 1, 0], 0, "unexpected message"),  // KeyUpdate not last in its record
            (22, [24, 0, 0, 1], 0, "decode error"),                         // KeyUpdate split across records
            (21, [2, 10, 0], 0, "decode error"),                            // three-byte alert
            (0, [], 3, "unexpected message"),                               // no content type at all
            (24, [1, 0, 1, 0], 0, "unexpected message"),                    // heartbeat: not a TLS 1.3 type
        ]
        for (type, content, padding, expected) in cases {
            let pump = try makePump(keylog: true)
            let forger = try makeForger(pump)
            feed(pump.server, seal(forger, type: type, content, padding: padding))
            guard case .failed(let error) = readAll(pump.server).last else { return XCTFail("type \(type) \(content) accepted") }
            XCTAssertTrue(error.mentions(expected), "type \(type) \(content): \(error)")
            XCTAssertTrue(pump.server.hasNetworkOutput, "alert for type \(type) \(content)")
        }
    }

    // MARK: KeyUpdate

    func testKeyUpdate_clientNotRequested_serverMovesReadKeyOnly() throws {
        let pump = try makePump()
        for round in 0..<3 {
            try pump.client.requestKeyUpdate(peerShouldUpdate: false).get()
            XCTAssertEqual(pump.transfer(from: pump.client, to: pump.server), 5 + 5 + 1 + 16)
            XCTAssertEqual(readAll(pump.server).last, .wantMore)
            XCTAssertFalse(pump.server.hasNetworkOutput)
            try assertRoundTrips(pump, "round \(round)")
        }
    }

    func testKeyUpdate_clientRequested_serverAnswersAndBothMove() throws {
        for (name, _) in Self.suites {
            let pump = try makePump(suite: name)
            for round in 0..<3 {
                try pump.client.requestKeyUpdate(peerShouldUpdate: true).get()
                pump.transfer(from: pump.client, to: pump.server)
                XCTAssertEqual(readAll(pump.server).last, .wantMore)
                // Our KeyUpdate(update_not_requested), under the old key.
                XCTAssertEqual(pump.transfer(from: pump.server, to: pump.client), 5 + 5 + 1 + 16)
                XCTAssertEqual(readAll(pump.client).last, .wantMore)
                XCTAssertFalse(pump.client.hasNetworkOutput)
                try assertRoundTrips(pump, "\(name) round \(round)")
            }
        }
    }

    func testKeyUpdate_serverRequested_openSSLClientAnswers() throws {
        let pump = try makePump()
        for round in 0..<3 {
            try pump.server.requestKeyUpdate(peerShouldUpdate: true).get()
            XCTAssertEqual(pump.transfer(from: pump.server, to: pump.client), 27)
            XCTAssertEqual(readAll(pump.client).last, .wantMore)
            // OpenSSL 3.0 sends its answering KeyUpdate ahead of its next record,
            // not from SSL_read.
            let up = payload(300, seed: round)
            try up.withUnsafeBytes { try pump.client.writePlaintext($0).get() }
            XCTAssertEqual(pump.transfer(from: pump.client, to: pump.server), 27 + 300 + 22)
            let (received, last) = readAll(pump.server)
            XCTAssertEqual(received, up)
            XCTAssertEqual(last, .wantMore)
            XCTAssertFalse(pump.server.hasNetworkOutput)              // update_not_requested needs no answer
            try assertRoundTrips(pump, "round \(round)")
        }
    }

    func testKeyUpdate_writeKeyWornOut_serverMovesOnItsOwnAndClientFollows() throws {
        let pump = try makePump()
        pump.server.recordsPerKey = 3
        var sent: [UInt8] = []
        for i in 0..<10 {
            let record = payload(40, seed: i)
            sent += record
            try record.withUnsafeBytes { try pump.server.writePlaintext($0).get() }
        }
        // Ten records of 40 bytes, and a KeyUpdate before the 4th, 7th and 10th.
        XCTAssertEqual(pump.transfer(from: pump.server, to: pump.client), 10 * (5 + 40 + 1 + 16) + 3 * 27)
        let (received, last) = readAll(pump.client)
        XCTAssertEqual(received, sent, "OpenSSL followed every key change")
        XCTAssertEqual(last, .wantMore)
        XCTAssertFalse(pump.client.hasNetworkOutput, "update_not_requested needs no answer")
        try assertRoundTrips(pump)
    }

    func testKeyUpdate_readKeyWornOut_serverAsksClientOnceUntilItMoves() throws {
        let pump = try makePump()
        pump.server.recordsPerKey = 3
        func clientSends(_ count: Int, seed: Int) throws -> [UInt8] {
            var sent: [UInt8] = []
            for i in 0..<count {
                let record = payload(30, seed: seed + i)
                sent += record
                try record.withUnsafeBytes { try pump.client.writePlaintext($0).get() }
            }
            return sent
        }
        // Five records under the client's first key: one request, not three.
        var sent = try clientSends(5, seed: 0)
        pump.transfer(from: pump.client, to: pump.server)
        XCTAssertEqual(readAll(pump.server).bytes, sent)
        XCTAssertEqual(pump.transfer(from: pump.server, to: pump.client), 27, "one KeyUpdate(update_requested)")
        XCTAssertEqual(readAll(pump.client).last, .wantMore)
        // The client answers ahead of its next record; three more under its
        // new key wear that one out too, and the server asks again.
        sent = try clientSends(3, seed: 10)
        XCTAssertEqual(pump.transfer(from: pump.client, to: pump.server), 27 + 3 * (5 + 30 + 1 + 16))
        XCTAssertEqual(readAll(pump.server).bytes, sent)
        XCTAssertEqual(pump.transfer(from: pump.server, to: pump.client), 27, "asked again for the worn-out second key")
        XCTAssertEqual(readAll(pump.client).last, .wantMore)
        try assertRoundTrips(pump)
    }

    func testKeyUpdate_thenDataInOneFeed_dataReadUnderNewKey() throws {
        let pump = try makePump()
        try pump.client.requestKeyUpdate(peerShouldUpdate: true).get()
        try Array("after".utf8).withUnsafeBytes { try pump.client.writePlaintext($0).get() }
        pump.transfer(from: pump.client, to: pump.server)
        var received: [UInt8] = []
        XCTAssertEqual(pump.server.readPlaintext(into: &received), .bytes(5))
        XCTAssertEqual(received, Array("after".utf8))
        XCTAssertTrue(pump.server.hasNetworkOutput)
        try assertRoundTrips(pump)
    }

    // MARK: Closure

    func testCloseNotify_serverToClient_clientReadsClosed() throws {
        let pump = try makePump()
        try Array("last words".utf8).withUnsafeBytes { try pump.server.writePlaintext($0).get() }
        pump.server.shutdown()
        pump.transfer(from: pump.server, to: pump.client)
        let (received, last) = readAll(pump.client)
        XCTAssertEqual(received, Array("last words".utf8))
        XCTAssertEqual(last, .closed)
        XCTAssertThrowsError(try Array("x".utf8).withUnsafeBytes { try pump.server.writePlaintext($0).get() })
        XCTAssertThrowsError(try pump.server.requestKeyUpdate(peerShouldUpdate: false).get())
    }

    func testCloseNotify_clientToServer_laterBytesIgnoredServerMayStillSend() throws {
        let pump = try makePump(keylog: true)
        let forger = try makeForger(pump)
        // user_canceled (a warning the RFC pairs with close_notify) is ignored.
        var wire = seal(forger, type: 21, [1, 90])
        wire += seal(forger, type: 21, [1, 0])
        wire += seal(forger, type: 23, Array("after close".utf8))
        feed(pump.server, wire)
        XCTAssertEqual(readAll(pump.server).last, .closed)
        XCTAssertTrue(pump.server.receivedCloseNotify)
        XCTAssertEqual(readAll(pump.server).last, .closed)
        // Half-close, as with OpenSSL: the server may still answer.
        XCTAssertNoThrow(try Array("bye".utf8).withUnsafeBytes { try pump.server.writePlaintext($0).get() })
    }

    // MARK: Memory

    func testIdle_afterTraffic_holdsNoBufferCapacity() throws {
        let pump = try makePump()
        _ = try pump.send(payload(100_000), from: pump.client, to: pump.server)
        _ = try pump.send(payload(100_000), from: pump.server, to: pump.client)
        XCTAssertFalse(pump.server.hasNetworkOutput)
        XCTAssertEqual(pump.server.bufferedCapacity, 0)
    }
}
