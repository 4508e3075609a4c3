import Foundation
import PeekTLS

/// A throwaway PKI for one test: a CA, a server certificate for
/// localhost/127.0.0.1/::1, client certificates in every state a mutual-TLS
/// listener must handle, a CRL, and a foreign CA. Built with PeekTLS's
/// `CertificateBuilder` (the code `DevCertificates` uses), in a fresh
/// temporary directory that is removed when the factory goes away.
///
///     let pki = try CertFactory()
///     let agent = try pki.makeClient(commonName: "agent-7")
///     let server = try TLSContext.makeMutualServer(certificateChainFile: pki.serverCertFile,
///         privateKeyFile: pki.serverKeyFile, clientCAFile: pki.caFile, crlFile: pki.crlFile)
///
/// `crlFile` is rewritten whenever a client is revoked; a mutual-TLS context
/// notices the change at its next handshake.
public final class CertFactory {
    public struct Identity: Sendable, Equatable {
        public let certificateFile: String
        public let keyFile: String
    }

    public enum ClientKind: Sendable {
        /// Signed by the CA, valid now.
        case valid
        /// Signed by the CA, notAfter a day in the past.
        case expired
        /// Signed by the CA and listed in `crlFile`.
        case revoked
        /// Valid, but signed by a CA the server does not trust.
        case foreignCA
    }

    public let directory: String
    public let caFile: String
    public let serverCertFile: String
    public let serverKeyFile: String
    /// The CA's CRL; lists every `.revoked` client made so far.
    public let crlFile: String
    public let foreignCAFile: String

    private let ca: Certificate
    private let caKey: PrivateKey
    private let foreignCA: Certificate
    private let foreignCAKey: PrivateKey
    private var revoked: [Certificate] = []
    /// Every client certificate made, by common name, so one can be revoked later.
    private var clients: [String: Certificate] = [:]

    public init() throws {
        var template = Array((NSTemporaryDirectory() + "/peek-pki-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else {
            throw TLSError(call: "mkdtemp", detail: String(cString: strerror(errno)))
        }
        directory = String(cString: made)
        caFile = directory + "/ca.pem"
        serverCertFile = directory + "/server.pem"
        serverKeyFile = directory + "/server-key.pem"
        crlFile = directory + "/ca.crl.pem"
        foreignCAFile = directory + "/foreign-ca.pem"

        caKey = try PrivateKey.generateP256()
        ca = try CertificateBuilder(commonName: "Peek Test CA", usage: .certificateAuthority).selfSigned(key: caKey)
        try ca.write(to: caFile)

        let serverKey = try PrivateKey.generateP256()
        let server = try CertificateBuilder(
            commonName: "localhost", usage: .server,
            subjectAltNames: [.dns("localhost"), .ip("127.0.0.1"), .ip("::1")]
        ).signed(subjectKey: serverKey, issuer: ca, issuerKey: caKey)
        try serverKey.write(to: serverKeyFile)
        try server.write(to: serverCertFile)

        foreignCAKey = try PrivateKey.generateP256()
        foreignCA = try CertificateBuilder(commonName: "Foreign Test CA", usage: .certificateAuthority)
            .selfSigned(key: foreignCAKey)
        try foreignCA.write(to: foreignCAFile)

        try RevocationList.make(issuer: ca, issuerKey: caKey, revoked: []).write(to: crlFile)
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    /// A client certificate + key for `commonName`, in the state `kind` asks for.
    /// Files are named after the common name, so make each name once.
    public func makeClient(
        commonName: String,
        kind: ClientKind = .valid,
        subjectAltNames: [CertificateBuilder.SubjectAltName] = []
    ) throws -> Identity {
        var builder = CertificateBuilder(commonName: commonName, usage: .client, subjectAltNames: subjectAltNames)
        if kind == .expired {
            builder.notBeforeSecondsFromNow = -30 * 86_400
            builder.notAfterSecondsFromNow = -86_400
        }
        let key = try PrivateKey.generateP256()
        let certificate = kind == .foreignCA
            ? try builder.signed(subjectKey: key, issuer: foreignCA, issuerKey: foreignCAKey)
            : try builder.signed(subjectKey: key, issuer: ca, issuerKey: caKey)
        let identity = Identity(
            certificateFile: directory + "/client-\(commonName).pem",
            keyFile: directory + "/client-\(commonName)-key.pem")
        try key.write(to: identity.keyFile)
        try certificate.write(to: identity.certificateFile)
        clients[commonName] = certificate
        if kind == .revoked { try revoke(commonName: commonName) }
        return identity
    }

    /// Another server certificate for localhost from the same CA, with its
    /// own common name (what a rotated certificate looks like).
    public func makeServer(commonName: String) throws -> Identity {
        let key = try PrivateKey.generateP256()
        let certificate = try CertificateBuilder(
            commonName: commonName, usage: .server,
            subjectAltNames: [.dns("localhost"), .ip("127.0.0.1"), .ip("::1")]
        ).signed(subjectKey: key, issuer: ca, issuerKey: caKey)
        let identity = Identity(certificateFile: directory + "/server-\(commonName).pem", keyFile: directory + "/server-\(commonName)-key.pem")
        try key.write(to: identity.keyFile)
        try certificate.write(to: identity.certificateFile)
        return identity
    }

    /// Adds a client made earlier to the CRL and rewrites `crlFile` (a new
    /// file renamed over the old one, as `RevocationList.write` does).
    public func revoke(commonName: String) throws {
        guard let certificate = clients[commonName] else {
            throw TLSError(call: "CertFactory.revoke", detail: "no client named \(commonName)")
        }
        revoked.append(certificate)
        try RevocationList.make(issuer: ca, issuerKey: caKey, revoked: revoked).write(to: crlFile)
    }

    /// A two-level PKI beside the main one: a root (trust anchor), an
    /// intermediate CA it signs, and an agent certificate the intermediate
    /// signs, presented with the intermediate behind it. `crlFile` holds both
    /// CAs' CRLs; the root's lists the intermediate when `intermediateRevoked`.
    public struct IntermediateChain {
        public let rootFile: String
        public let crlFile: String
        public let agent: Identity
    }

    public func makeIntermediateChain(agentCommonName: String, intermediateRevoked: Bool) throws -> IntermediateChain {
        let prefix = directory + "/chain-\(agentCommonName)"
        let rootKey = try PrivateKey.generateP256()
        var rootBuilder = CertificateBuilder(commonName: "Peek Test Root", usage: .certificateAuthority)
        rootBuilder.caPathLength = 1
        let root = try rootBuilder.selfSigned(key: rootKey)
        let intermediateKey = try PrivateKey.generateP256()
        let intermediate = try CertificateBuilder(commonName: "Peek Test Agents Intermediate", usage: .certificateAuthority)
            .signed(subjectKey: intermediateKey, issuer: root, issuerKey: rootKey)
        let leafKey = try PrivateKey.generateP256()
        let leaf = try CertificateBuilder(commonName: agentCommonName, usage: .client)
            .signed(subjectKey: leafKey, issuer: intermediate, issuerKey: intermediateKey)

        let chain = IntermediateChain(rootFile: prefix + "-root.pem", crlFile: prefix + "-crls.pem",
                                      agent: Identity(certificateFile: prefix + "-agent.pem", keyFile: prefix + "-agent-key.pem"))
        try root.write(to: chain.rootFile)
        try leafKey.write(to: chain.agent.keyFile)
        try Data(leaf.pem() + intermediate.pem()).write(to: URL(fileURLWithPath: chain.agent.certificateFile))
        let rootCRL = try RevocationList.make(issuer: root, issuerKey: rootKey, revoked: intermediateRevoked ? [intermediate] : [])
        let intermediateCRL = try RevocationList.make(issuer: intermediate, issuerKey: intermediateKey, revoked: [])
        try Data(rootCRL.pem() + intermediateCRL.pem()).write(to: URL(fileURLWithPath: chain.crlFile))
        return chain
    }

    /// A client context that trusts this CA and presents `identity` (or no
    /// certificate), with no system roots.
    public func makeClientContext(presenting identity: Identity? = nil) throws -> TLSContext {
        try TLSContext.makeClient(caFile: caFile, useSystemTrust: false,
                                  certificateFile: identity?.certificateFile, keyFile: identity?.keyFile)
    }

    /// The mutual-TLS server context for this PKI (CRL checking on).
    public func makeMutualServerContext() throws -> TLSContext {
        try TLSContext.makeMutualServer(certificateChainFile: serverCertFile, privateKeyFile: serverKeyFile,
                                        clientCAFile: caFile, crlFile: crlFile)
    }

    /// The plain TLS server context for this PKI.
    public func makeServerContext(recordLayer: TLSContext.RecordLayer = .peek) throws -> TLSContext {
        try TLSContext.makeServer(certificateChainFile: serverCertFile, privateKeyFile: serverKeyFile, recordLayer: recordLayer)
    }
}
