import Foundation
import PeekTLS
import XCTest

final class DevCertificatesTests: XCTestCase {
    private var directory: String!

    override func setUpWithError() throws {
        var template = Array((NSTemporaryDirectory() + "/peek-dev-XXXXXX").utf8CString)
        directory = String(cString: try XCTUnwrap(mkdtemp(&template))) + "/certs"  // ensure() makes this level
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: (directory as NSString).deletingLastPathComponent)
    }

    private func mode(_ path: String) throws -> Int {
        try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    private func contents(_ path: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: path))
    }

    func testDevCertificates_firstRun_writesEightFilesWithPrivateKeys0600() throws {
        let paths = try DevCertificates.ensure(in: directory)
        XCTAssertEqual(paths.generated.count, 8)
        for key in [paths.caKeyFile, paths.serverKey, paths.agentCAKeyFile, paths.demoAgentKey] {
            XCTAssertEqual(try mode(key), 0o600, key)
        }
        for certificate in [paths.caFile, paths.serverCert, paths.agentCAFile, paths.demoAgentCert] {
            XCTAssertEqual(try mode(certificate), 0o644, certificate)
        }
        XCTAssertEqual(try mode(directory), 0o700)
        let server = try XCTUnwrap(Certificate.load(pemFile: paths.serverCert).identity)
        XCTAssertEqual(server.commonName, "localhost")
        XCTAssertEqual(server.subjectAltNames, ["localhost", "127.0.0.1", "::1"])
        XCTAssertEqual(try Certificate.load(pemFile: paths.demoAgentCert).identity?.commonName, "agent-demo-1")
    }

    func testDevCertificates_serverChain_clientTrustingDevCACompletesHandshake() throws {
        let paths = try DevCertificates.ensure(in: directory)
        let server = try TLSContext.makeServer(certificateChainFile: paths.serverCert, privateKeyFile: paths.serverKey)
        let client = try TLSContext.makeClient(caFile: paths.caFile, useSystemTrust: false)
        for name in ["localhost", "127.0.0.1", "::1"] {
            let pump = try SessionPump(client: client, server: server, serverName: name)
            pump.establish()
            XCTAssertEqual(pump.client.peerIdentity?.commonName, "localhost", name)
        }
    }

    func testDevCertificates_demoAgent_acceptedByAgentListener() throws {
        let paths = try DevCertificates.ensure(in: directory)
        let listener = try TLSContext.makeMutualServer(certificateChainFile: paths.serverCert, privateKeyFile: paths.serverKey,
                                                       clientCAFile: paths.agentCAFile)
        let agent = try TLSContext.makeClient(caFile: paths.caFile, useSystemTrust: false,
                                              certificateFile: paths.demoAgentCert, keyFile: paths.demoAgentKey)
        let pump = try SessionPump(client: agent, server: listener)
        pump.establish()
        XCTAssertEqual(pump.server.peerIdentity?.commonName, "agent-demo-1")
    }

    func testDevCertificates_serverCertificateAsClient_notAnAgent() throws {
        // The reason for two CAs: what the dev CA signed is not an agent.
        let paths = try DevCertificates.ensure(in: directory)
        let listener = try TLSContext.makeMutualServer(certificateChainFile: paths.serverCert, privateKeyFile: paths.serverKey,
                                                       clientCAFile: paths.agentCAFile)
        let impostor = try TLSContext.makeClient(caFile: paths.caFile, useSystemTrust: false,
                                                 certificateFile: paths.serverCert, keyFile: paths.serverKey)
        let pump = try SessionPump(client: impostor, server: listener)
        guard case .failed(let error) = pump.handshake().server else { return XCTFail("server certificate admitted as agent") }
        XCTAssertNotNil(error.verifyResult)
    }

    func testDevCertificates_secondRun_reusesEverything() throws {
        let first = try DevCertificates.ensure(in: directory)
        let before = try [first.caFile, first.serverCert, first.serverKey, first.demoAgentCert].map(contents)
        let second = try DevCertificates.ensure(in: directory)
        XCTAssertEqual(second.generated, [])
        XCTAssertEqual(second.serverCert, first.serverCert)
        XCTAssertEqual(try [second.caFile, second.serverCert, second.serverKey, second.demoAgentCert].map(contents), before)
    }

    func testDevCertificates_serverCertificateDeleted_onlyServerPairReissuedBySameCA() throws {
        let first = try DevCertificates.ensure(in: directory)
        let caBefore = try contents(first.caFile)
        try FileManager.default.removeItem(atPath: first.serverCert)
        let second = try DevCertificates.ensure(in: directory)
        XCTAssertEqual(Set(second.generated), [second.serverCert, second.serverKey])
        XCTAssertEqual(try contents(second.caFile), caBefore)
        let server = try Certificate.load(pemFile: second.serverCert)
        XCTAssertTrue(server.isSigned(by: try Certificate.load(pemFile: second.caFile)))
    }

    func testDevCertificates_caKeyLost_caAndServerReissuedAgentsKept() throws {
        let first = try DevCertificates.ensure(in: directory)
        let agentBefore = try contents(first.demoAgentCert)
        try FileManager.default.removeItem(atPath: first.caKeyFile)
        let second = try DevCertificates.ensure(in: directory)
        XCTAssertEqual(Set(second.generated), [second.caFile, second.caKeyFile, second.serverCert, second.serverKey])
        XCTAssertEqual(try contents(second.demoAgentCert), agentBefore)
        let server = try TLSContext.makeServer(certificateChainFile: second.serverCert, privateKeyFile: second.serverKey)
        let pump = try SessionPump(client: TLSContext.makeClient(caFile: second.caFile, useSystemTrust: false), server: server)
        pump.establish()
    }
}
