import Foundation
import PeekTLS
import Synchronization
import PeekTestSupport
import XCTest

/// The agent listener's contract: only certificates from the agent CA, valid
/// and not revoked, get in, and the identity comes from the certificate.
final class MutualTLSTests: XCTestCase {
    private var pki: CertFactory!

    override func setUpWithError() throws {
        pki = try CertFactory()
    }

    override func tearDown() {
        pki = nil
    }

    /// Handshakes a client presenting `identity` against the mutual server
    /// (made after the client certificate, so its CRL lists revoked ones).
    private func attempt(presenting identity: CertFactory.Identity?) throws -> (pump: SessionPump, server: TLSHandshakeResult) {
        let server = try pki.makeMutualServerContext()
        let pump = try SessionPump(client: pki.makeClientContext(presenting: identity), server: server)
        return (pump, pump.handshake().server)
    }

    func testMutualTLS_validClientCertificate_serverSeesCNAndSANs() throws {
        let agent = try pki.makeClient(commonName: "agent-42", subjectAltNames: [
            .dns("host42.example.net"), .uri("spiffe://peek/agent/42"), .email("ops@example.net"), .ip("10.0.0.42"),
        ])
        let (pump, server) = try attempt(presenting: agent)
        XCTAssertEqual(server, .complete)
        let identity = try XCTUnwrap(pump.server.peerIdentity)
        XCTAssertEqual(identity.commonName, "agent-42")
        XCTAssertEqual(identity.subjectAltNames, ["host42.example.net", "spiffe://peek/agent/42", "ops@example.net", "10.0.0.42"])
        XCTAssertEqual(identity.serialHex.count, 32)  // 16 random bytes, top bits fixed
        let now = Int64(time(nil))
        XCTAssertGreaterThan(identity.notAfter, now + 300 * 86_400)
        XCTAssertLessThan(identity.notAfter, now + 400 * 86_400)
        XCTAssertEqual(try pump.send(Array("telemetry".utf8), from: pump.client, to: pump.server), Array("telemetry".utf8))
    }

    func testMutualTLS_noClientCertificate_rejectedWithAlert116() throws {
        let (pump, server) = try attempt(presenting: nil)
        guard case .failed(let serverError) = server else { return XCTFail("accepted without certificate") }
        XCTAssertTrue(serverError.mentions("peer did not return a certificate"), "\(serverError)")
        XCTAssertNil(pump.server.peerIdentity)
        let clientError = try XCTUnwrap(pump.clientFailure())
        // Alert 116 (certificate_required, RFC 8446 §6.2).
        XCTAssertTrue(clientError.mentions("alert certificate required"), "\(clientError)")
    }

    func testMutualTLS_certificateFromForeignCA_rejectedWithAlert48() throws {
        let intruder = try pki.makeClient(commonName: "intruder", kind: .foreignCA)
        let (pump, server) = try attempt(presenting: intruder)
        guard case .failed(let serverError) = server else { return XCTFail("foreign CA accepted") }
        XCTAssertEqual(serverError.verifyResult, "unable to get local issuer certificate")
        XCTAssertNil(pump.server.peerIdentity)
        // Alert 48 (unknown_ca).
        let clientError = try XCTUnwrap(pump.clientFailure())
        XCTAssertTrue(clientError.mentions("alert unknown ca"), "\(clientError)")
    }

    func testMutualTLS_expiredClientCertificate_rejected() throws {
        let stale = try pki.makeClient(commonName: "stale-agent", kind: .expired)
        let (pump, server) = try attempt(presenting: stale)
        guard case .failed(let serverError) = server else { return XCTFail("expired certificate accepted") }
        XCTAssertEqual(serverError.verifyResult, "certificate has expired")
        // Alert 45 (certificate_expired).
        let clientError = try XCTUnwrap(pump.clientFailure())
        XCTAssertTrue(clientError.mentions("alert certificate expired"), "\(clientError)")
    }

    func testMutualTLS_revokedClientCertificate_rejectedByCRL() throws {
        _ = try pki.makeClient(commonName: "fine-agent")
        let revoked = try pki.makeClient(commonName: "lost-laptop", kind: .revoked)
        let (pump, server) = try attempt(presenting: revoked)
        guard case .failed(let serverError) = server else { return XCTFail("revoked certificate accepted") }
        XCTAssertEqual(serverError.verifyResult, "certificate revoked")
        // Alert 44 (certificate_revoked).
        let clientError = try XCTUnwrap(pump.clientFailure())
        XCTAssertTrue(clientError.mentions("alert certificate revoked"), "\(clientError)")
    }

    func testMutualTLS_validCertificateWithCRLLoaded_stillAccepted() throws {
        _ = try pki.makeClient(commonName: "lost-laptop", kind: .revoked)
        let fine = try pki.makeClient(commonName: "fine-agent")
        let (pump, server) = try attempt(presenting: fine)
        XCTAssertEqual(server, .complete)
        XCTAssertEqual(pump.server.peerIdentity?.commonName, "fine-agent")
    }

    func testMutualTLS_crlFromImpostorCAWithSameName_rejects() throws {
        // Every CertFactory CA is named "Peek Test CA": the other factory's CRL
        // matches the agent CA by name but not by key, so it cannot vouch for
        // anyone, and with CRL checking on nobody gets in.
        let other = try CertFactory()
        let server = try TLSContext.makeMutualServer(certificateChainFile: pki.serverCertFile, privateKeyFile: pki.serverKeyFile,
                                                     clientCAFile: pki.caFile, crlFile: other.crlFile)
        let agent = try pki.makeClient(commonName: "agent-1")
        let pump = try SessionPump(client: pki.makeClientContext(presenting: agent), server: server)
        guard case .failed(let error) = pump.handshake().server else { return XCTFail("accepted with a forged CRL") }
        XCTAssertEqual(error.verifyResult, "CRL signature failure")
    }

    // MARK: CRL reloads

    /// One mutual context for several handshakes, logging into `lines`.
    private func reloadingServer(lines: LogLines) throws -> TLSContext {
        try TLSContext.makeMutualServer(certificateChainFile: pki.serverCertFile, privateKeyFile: pki.serverKeyFile,
                                        clientCAFile: pki.caFile, crlFile: pki.crlFile, log: { lines.append($0) })
    }

    private func handshake(_ server: TLSContext, presenting identity: CertFactory.Identity) throws -> TLSHandshakeResult {
        try SessionPump(client: pki.makeClientContext(presenting: identity), server: server).handshake().server
    }

    func testCRLReload_fileRewritten_nextHandshakeUsesNewCRLAndLogsIt() throws {
        let lines = LogLines()
        let agent = try pki.makeClient(commonName: "agent-1")
        let server = try reloadingServer(lines: lines)
        XCTAssertEqual(try handshake(server, presenting: agent), .complete)
        try pki.revoke(commonName: "agent-1")
        guard case .failed(let error) = try handshake(server, presenting: agent) else { return XCTFail("revoked agent still accepted") }
        XCTAssertEqual(error.verifyResult, "certificate revoked")
        XCTAssertEqual(lines.all.count, 1)
        XCTAssertTrue(lines.all.first?.contains("agent CRL \(pki.crlFile) reloaded") ?? false, "\(lines.all)")
    }

    func testCRLReload_unloadableFile_keepsPreviousCRLAndSaysWhy() throws {
        let lines = LogLines()
        let fine = try pki.makeClient(commonName: "fine-agent")
        let lost = try pki.makeClient(commonName: "lost-laptop", kind: .revoked)
        let server = try reloadingServer(lines: lines)
        // Half-written by a careless tool: no CRL in it at all.
        try Data("-----BEGIN X509 CRL-----\ntruncated".utf8).write(to: URL(fileURLWithPath: pki.crlFile))
        XCTAssertEqual(try handshake(server, presenting: fine), .complete)
        guard case .failed(let error) = try handshake(server, presenting: lost) else { return XCTFail("the old CRL was dropped") }
        XCTAssertEqual(error.verifyResult, "certificate revoked")
        XCTAssertEqual(lines.all.count, 1, "one line per change, not per handshake: \(lines.all)")
        XCTAssertTrue(lines.all.first?.contains("not reloaded") ?? false, "\(lines.all)")
        XCTAssertTrue(lines.all.first?.contains("keep using the previous CRL") ?? false, "\(lines.all)")
        // The explicit reload (SIGHUP) tries again and fails the same way.
        XCTAssertFalse(server.reloadRevocationList())
        XCTAssertEqual(lines.all.count, 2)
    }

    func testMutualTLS_plainServer_noCertificateRequestedNoIdentity() throws {
        // A plain (non-mutual) server never asks, so a client certificate is
        // not sent and the server has no identity even though the client has one.
        let agent = try pki.makeClient(commonName: "agent-9")
        let pump = try SessionPump(client: pki.makeClientContext(presenting: agent), server: pki.makeServerContext())
        pump.establish()
        XCTAssertNil(pump.server.peerIdentity)
    }
}

/// Log lines from a context, collected across threads.
private final class LogLines: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
}
