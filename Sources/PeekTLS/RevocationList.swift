import COpenSSL

/// An `X509_CRL`: the serials a CA has revoked. The mutual-TLS listener loads
/// one with `TLSContext.makeMutualServer(crlFile:)`.
public final class RevocationList {
    let handle: OpaquePointer

    init(handle: OpaquePointer) { self.handle = handle }
    deinit { X509_CRL_free(handle) }

    /// A v2 CRL issued by `issuer`, listing the serials of `revoked`. It is
    /// valid from five minutes ago (clock skew) until `nextUpdateSecondsFromNow`;
    /// after that OpenSSL treats it as stale and, with CRL checking on,
    /// rejects every client of that CA until a fresh one is loaded.
    public static func make(
        issuer: Certificate,
        issuerKey: PrivateKey,
        revoked: [Certificate],
        nextUpdateSecondsFromNow: Int = 30 * 86_400
    ) throws(TLSError) -> RevocationList {
        ERR_clear_error()
        guard let crl = X509_CRL_new() else { throw .openSSL("X509_CRL_new") }
        let list = RevocationList(handle: crl)

        guard X509_CRL_set_version(crl, 1) == 1 else { throw .openSSL("X509_CRL_set_version") }  // 1 means v2
        guard X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer.handle)) == 1 else {
            throw .openSSL("X509_CRL_set_issuer_name")
        }
        guard let lastUpdate = X509_gmtime_adj(nil, -300) else { throw .openSSL("X509_gmtime_adj") }
        defer { ASN1_TIME_free(lastUpdate) }
        guard let nextUpdate = X509_gmtime_adj(nil, nextUpdateSecondsFromNow) else { throw .openSSL("X509_gmtime_adj") }
        defer { ASN1_TIME_free(nextUpdate) }
        guard X509_CRL_set1_lastUpdate(crl, lastUpdate) == 1, X509_CRL_set1_nextUpdate(crl, nextUpdate) == 1 else {
            throw .openSSL("X509_CRL_set1_lastUpdate")
        }

        for certificate in revoked {
            guard let entry = X509_REVOKED_new() else { throw .openSSL("X509_REVOKED_new") }
            guard X509_REVOKED_set_serialNumber(entry, X509_get_serialNumber(certificate.handle)) == 1,
                  X509_REVOKED_set_revocationDate(entry, lastUpdate) == 1,
                  X509_CRL_add0_revoked(crl, entry) == 1  // the CRL owns the entry from here on
            else {
                X509_REVOKED_free(entry)
                throw .openSSL("X509_CRL_add0_revoked")
            }
        }
        guard X509_CRL_sort(crl) == 1 else { throw .openSSL("X509_CRL_sort") }
        guard X509_CRL_sign(crl, issuerKey.handle, EVP_sha256()) > 0 else { throw .openSSL("X509_CRL_sign") }
        return list
    }

    public func pem() throws(TLSError) -> [UInt8] {
        try MemoryPEM.render("PEM_write_bio_X509_CRL") { bio in PEM_write_bio_X509_CRL(bio, handle) }
    }

    /// Writes the PEM with mode 0644.
    public func write(to path: String) throws(TLSError) {
        try SecureFile.write(pem(), to: path, mode: 0o644)
    }
}
