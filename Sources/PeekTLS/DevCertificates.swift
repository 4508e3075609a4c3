/// Where `DevCertificates.ensure(in:)` keeps the development PKI.
public struct DevCertificatePaths: Sendable, Equatable {
    /// The dev CA that signed `serverCert`: what a browser or `curl --cacert` trusts.
    public let caFile: String
    public let caKeyFile: String
    public let serverCert: String
    public let serverKey: String
    /// The CA the agent listener trusts (`--agent-ca`); it signs only agents.
    public let agentCAFile: String
    /// Kept so more agent certificates can be issued from the same CA.
    public let agentCAKeyFile: String
    public let demoAgentCert: String
    public let demoAgentKey: String
    /// File names written by this call; empty when everything was reused.
    public let generated: [String]
}

/// The development PKI `peekd` makes on first start when no certificate is
/// configured, so TLS and mutual TLS work out of the box on localhost.
///
/// Two CAs, not one: the agent CA signs agent certificates only. With a single
/// CA, anything it signed (the server certificate included) would chain to
/// the agent listener's trust anchor, and trusting the dev CA in a browser
/// would be the same act as admitting agents. Separate anchors keep "who may
/// serve localhost" and "who is an agent" apart, as in production.
///
/// Generated with the OpenSSL API (no `openssl` CLI at runtime), EC P-256
/// keys written 0600, certificates 0644.
public enum DevCertificates {
    /// Leaves are re-issued when fewer than this many seconds of validity remain.
    public static let renewBeforeExpirySeconds: Int64 = 30 * 86_400
    static let authorityLifetimeSeconds = 10 * 365 * 86_400
    static let leafLifetimeSeconds = 397 * 86_400
    static let demoAgentName = "agent-demo-1"

    /// Makes `directory` (mode 0700) and whatever of the PKI is missing.
    /// Idempotent: a pair is reused when both files load, the key matches,
    /// it is not within `renewBeforeExpirySeconds` of expiry, and (for a
    /// leaf) its CA still signs it. A re-made CA re-issues its leaf.
    public static func ensure(in directory: String) throws(TLSError) -> DevCertificatePaths {
        try SecureFile.makeDirectory(directory)
        func path(_ name: String) -> String { directory.hasSuffix("/") ? directory + name : directory + "/" + name }
        var generated: [String] = []

        let devCA = try ensurePair(
            certificatePath: path("dev-ca.pem"), keyPath: path("dev-ca-key.pem"), issuer: nil, generated: &generated,
            builder: CertificateBuilder(commonName: "peekd development CA", organization: "peekd", usage: .certificateAuthority,
                                        notAfterSecondsFromNow: authorityLifetimeSeconds))
        _ = try ensurePair(
            certificatePath: path("server.pem"), keyPath: path("server-key.pem"), issuer: devCA, generated: &generated,
            builder: CertificateBuilder(commonName: "localhost", organization: "peekd", usage: .server,
                                        subjectAltNames: [.dns("localhost"), .ip("127.0.0.1"), .ip("::1")],
                                        notAfterSecondsFromNow: leafLifetimeSeconds))
        let agentCA = try ensurePair(
            certificatePath: path("agent-ca.pem"), keyPath: path("agent-ca-key.pem"), issuer: nil, generated: &generated,
            builder: CertificateBuilder(commonName: "peekd development agent CA", organization: "peekd", usage: .certificateAuthority,
                                        notAfterSecondsFromNow: authorityLifetimeSeconds))
        _ = try ensurePair(
            certificatePath: path("\(demoAgentName).pem"), keyPath: path("\(demoAgentName)-key.pem"), issuer: agentCA,
            generated: &generated,
            builder: CertificateBuilder(commonName: demoAgentName, organization: "peekd", usage: .client,
                                        notAfterSecondsFromNow: leafLifetimeSeconds))

        return DevCertificatePaths(
            caFile: path("dev-ca.pem"), caKeyFile: path("dev-ca-key.pem"),
            serverCert: path("server.pem"), serverKey: path("server-key.pem"),
            agentCAFile: path("agent-ca.pem"), agentCAKeyFile: path("agent-ca-key.pem"),
            demoAgentCert: path("\(demoAgentName).pem"), demoAgentKey: path("\(demoAgentName)-key.pem"),
            generated: generated)
    }

    private static func ensurePair(
        certificatePath: String,
        keyPath: String,
        issuer: (certificate: Certificate, key: PrivateKey)?,
        generated: inout [String],
        builder: CertificateBuilder
    ) throws(TLSError) -> (certificate: Certificate, key: PrivateKey) {
        if let existing = reusablePair(certificatePath: certificatePath, keyPath: keyPath, issuer: issuer?.certificate) {
            return existing
        }
        let key = try PrivateKey.generateP256()
        let certificate = if let issuer {
            try builder.signed(subjectKey: key, issuer: issuer.certificate, issuerKey: issuer.key)
        } else {
            try builder.selfSigned(key: key)
        }
        // Key first: a crash between the two writes leaves a mismatched pair,
        // which the next start detects and replaces.
        try key.write(to: keyPath)
        try certificate.write(to: certificatePath)
        generated += [keyPath, certificatePath]
        return (certificate, key)
    }

    private static func reusablePair(certificatePath: String, keyPath: String, issuer: Certificate?) -> (certificate: Certificate, key: PrivateKey)? {
        guard SecureFile.exists(certificatePath), SecureFile.exists(keyPath),
              let certificate = try? Certificate.load(pemFile: certificatePath),
              let key = try? PrivateKey.load(pemFile: keyPath),
              certificate.matches(key),
              let remaining = certificate.secondsUntilExpiry, remaining > renewBeforeExpirySeconds
        else { return nil }
        if let issuer, !certificate.isSigned(by: issuer) { return nil }
        return (certificate, key)
    }
}
