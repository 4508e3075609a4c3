import COpenSSL

/// An `X509` certificate, loaded from PEM or made by `CertificateBuilder`.
public final class Certificate {
    let handle: OpaquePointer

    init(handle: OpaquePointer) { self.handle = handle }
    deinit { X509_free(handle) }

    /// Reads the first certificate of a PEM file.
    public static func load(pemFile path: String) throws(TLSError) -> Certificate {
        ERR_clear_error()
        guard let bio = BIO_new_file(path, "r") else { throw .openSSL("BIO_new_file", detail: path) }
        defer { BIO_free(bio) }
        guard let certificate = PEM_read_bio_X509(bio, nil, nil, nil) else {
            throw .openSSL("PEM_read_bio_X509", detail: path)
        }
        return Certificate(handle: certificate)
    }

    /// CN, SANs, notAfter and serial, read the same way as a verified peer's.
    public var identity: PeerIdentity? { PeerIdentity(certificate: handle) }

    /// Seconds until notAfter (negative once expired), by the clock now.
    public var secondsUntilExpiry: Int64? {
        var days: Int32 = 0, seconds: Int32 = 0
        // A nil `from` means the current time.
        guard ASN1_TIME_diff(&days, &seconds, nil, X509_get0_notAfter(handle)) == 1 else { return nil }
        return Int64(days) * 86_400 + Int64(seconds)
    }

    /// Whether `key` is this certificate's private key.
    public func matches(_ key: PrivateKey) -> Bool {
        ERR_clear_error()
        defer { ERR_clear_error() }
        return X509_check_private_key(handle, key.handle) == 1
    }

    /// Whether `issuer` issued (and signed) this certificate.
    public func isSigned(by issuer: Certificate) -> Bool {
        guard X509_check_issued(issuer.handle, handle) == X509_V_OK else { return false }
        guard let key = X509_get0_pubkey(issuer.handle) else { return false }
        ERR_clear_error()
        defer { ERR_clear_error() }
        return X509_verify(handle, key) == 1
    }

    public func pem() throws(TLSError) -> [UInt8] {
        try MemoryPEM.render("PEM_write_bio_X509") { bio in PEM_write_bio_X509(bio, handle) }
    }

    /// Writes the PEM with mode 0644 (certificates are public).
    public func write(to path: String) throws(TLSError) {
        try SecureFile.write(pem(), to: path, mode: 0o644)
    }
}
