import COpenSSL
import PeekCrypto

/// Issues X.509 v3 certificates with the OpenSSL API: the building block of
/// `DevCertificates` (first start without `--tls-cert`) and of the test
/// `CertFactory`, so both make certificates the same way.
///
/// Validity is given relative to the current clock, which is the one thing
/// here that is not a pure function of the inputs (and what lets tests issue
/// an already-expired certificate).
public struct CertificateBuilder {
    public enum Usage: Sendable {
        /// CA:TRUE, pathlen 0 (signs leaves only), keyCertSign + cRLSign.
        case certificateAuthority
        /// CA:FALSE, digitalSignature, extendedKeyUsage serverAuth.
        case server
        /// CA:FALSE, digitalSignature, extendedKeyUsage clientAuth.
        case client
    }

    public enum SubjectAltName: Sendable, Equatable {
        case dns(String), ip(String), email(String), uri(String)

        var configText: String {
            switch self {
            case .dns(let name): "DNS:\(name)"
            case .ip(let address): "IP:\(address)"
            case .email(let address): "email:\(address)"
            case .uri(let uri): "URI:\(uri)"
            }
        }

        var value: String {
            switch self {
            case .dns(let v), .ip(let v), .email(let v), .uri(let v): v
            }
        }
    }

    public var commonName: String
    public var organization: String?
    public var usage: Usage
    public var subjectAltNames: [SubjectAltName]
    /// Start of validity relative to now. Slightly in the past by default, so
    /// a peer whose clock lags a little still accepts a fresh certificate.
    public var notBeforeSecondsFromNow: Int
    /// End of validity relative to now; negative issues an expired certificate.
    public var notAfterSecondsFromNow: Int
    /// For a CA: how many intermediate CAs may follow it (basicConstraints
    /// pathlen). 0, the default, lets it sign only end-entity certificates.
    public var caPathLength = 0

    public init(
        commonName: String,
        organization: String? = nil,
        usage: Usage,
        subjectAltNames: [SubjectAltName] = [],
        notBeforeSecondsFromNow: Int = -3600,
        notAfterSecondsFromNow: Int = 397 * 86_400
    ) {
        self.commonName = commonName
        self.organization = organization
        self.usage = usage
        self.subjectAltNames = subjectAltNames
        self.notBeforeSecondsFromNow = notBeforeSecondsFromNow
        self.notAfterSecondsFromNow = notAfterSecondsFromNow
    }

    /// A self-signed certificate (a root CA when `usage` is `.certificateAuthority`).
    public func selfSigned(key: PrivateKey) throws(TLSError) -> Certificate {
        try build(subjectKey: key, issuer: nil, issuerKey: key)
    }

    /// A certificate for `subjectKey` issued by `issuer`.
    public func signed(subjectKey: PrivateKey, issuer: Certificate, issuerKey: PrivateKey) throws(TLSError) -> Certificate {
        try build(subjectKey: subjectKey, issuer: issuer, issuerKey: issuerKey)
    }

    private func build(subjectKey: PrivateKey, issuer: Certificate?, issuerKey: PrivateKey) throws(TLSError) -> Certificate {
        // The SAN list goes through OpenSSL's config syntax, where a comma
        // separates entries; reject rather than let one name become two.
        for name in subjectAltNames where name.value.contains(",") || name.value.isEmpty {
            throw TLSError(call: "CertificateBuilder", detail: "invalid subjectAltName \(name.configText)")
        }
        ERR_clear_error()
        guard let x509 = X509_new() else { throw .openSSL("X509_new") }
        let certificate = Certificate(handle: x509)  // frees x509 on every throw below

        guard X509_set_version(x509, 2) == 1 else { throw .openSSL("X509_set_version") }  // 2 means v3
        try setRandomSerial(x509)
        guard X509_gmtime_adj(X509_getm_notBefore(x509), notBeforeSecondsFromNow) != nil,
              X509_gmtime_adj(X509_getm_notAfter(x509), notAfterSecondsFromNow) != nil
        else { throw .openSSL("X509_gmtime_adj") }
        guard X509_set_pubkey(x509, subjectKey.handle) == 1 else { throw .openSSL("X509_set_pubkey") }

        guard let subject = X509_get_subject_name(x509) else { throw .openSSL("X509_get_subject_name") }
        if let organization {
            guard X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_UTF8, organization, -1, -1, 0) == 1 else {
                throw .openSSL("X509_NAME_add_entry_by_txt(O)")
            }
        }
        guard X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, commonName, -1, -1, 0) == 1 else {
            throw .openSSL("X509_NAME_add_entry_by_txt(CN)", detail: commonName)
        }
        let issuerName = issuer.map { X509_get_subject_name($0.handle) } ?? subject
        guard X509_set_issuer_name(x509, issuerName) == 1 else { throw .openSSL("X509_set_issuer_name") }

        var v3 = X509V3_CTX()
        X509V3_set_ctx(&v3, issuer?.handle ?? x509, x509, nil, nil, 0)
        // Order matters: the subject key identifier must exist before the
        // authority key identifier of a self-signed certificate can copy it.
        var extensions: [(Int32, String)] = [(NID_subject_key_identifier, "hash"), (NID_authority_key_identifier, "keyid")]
        switch usage {
        case .certificateAuthority:
            extensions += [(NID_basic_constraints, "critical,CA:TRUE,pathlen:\(max(0, caPathLength))"), (NID_key_usage, "critical,keyCertSign,cRLSign")]
        case .server:
            extensions += [(NID_basic_constraints, "critical,CA:FALSE"), (NID_key_usage, "critical,digitalSignature"),
                           (NID_ext_key_usage, "serverAuth")]
        case .client:
            extensions += [(NID_basic_constraints, "critical,CA:FALSE"), (NID_key_usage, "critical,digitalSignature"),
                           (NID_ext_key_usage, "clientAuth")]
        }
        if !subjectAltNames.isEmpty {
            extensions.append((NID_subject_alt_name, subjectAltNames.map(\.configText).joined(separator: ",")))
        }
        for (nid, value) in extensions {
            ERR_clear_error()
            guard let ext = X509V3_EXT_conf_nid(nil, &v3, nid, value) else {
                throw .openSSL("X509V3_EXT_conf_nid", detail: value)
            }
            let added = X509_add_ext(x509, ext, -1)
            X509_EXTENSION_free(ext)
            guard added == 1 else { throw .openSSL("X509_add_ext", detail: value) }
        }

        ERR_clear_error()
        guard X509_sign(x509, issuerKey.handle, EVP_sha256()) > 0 else { throw .openSSL("X509_sign") }
        return certificate
    }

    /// 127 random bits: unique without a counter (RFC 5280 §4.1.2.2 allows up
    /// to 20 octets; the top bit is cleared so the INTEGER stays positive).
    private func setRandomSerial(_ x509: OpaquePointer) throws(TLSError) {
        var bytes = Crypto.randomBytes(16)
        bytes[0] &= 0x7F
        bytes[0] |= 0x01 << 6  // a fixed length keeps serials equally wide in logs
        guard let number = BN_bin2bn(bytes, Int32(bytes.count), nil) else { throw .openSSL("BN_bin2bn") }
        defer { BN_free(number) }
        guard BN_to_ASN1_INTEGER(number, X509_get_serialNumber(x509)) != nil else {
            throw .openSSL("BN_to_ASN1_INTEGER")
        }
    }
}
