import COpenSSL

/// An `EVP_PKEY`. Peek Live makes only EC P-256 keys: fast ECDSA handshakes
/// and small certificates, which matters when thousands of agents reconnect.
public final class PrivateKey {
    let handle: OpaquePointer

    init(handle: OpaquePointer) { self.handle = handle }
    deinit { EVP_PKEY_free(handle) }

    /// A fresh P-256 key from the OpenSSL DRBG. (`EVP_EC_gen` would do the
    /// same but is a macro over a variadic function.)
    public static func generateP256() throws(TLSError) -> PrivateKey {
        ERR_clear_error()
        guard let context = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, nil) else { throw .openSSL("EVP_PKEY_CTX_new_id") }
        defer { EVP_PKEY_CTX_free(context) }
        guard EVP_PKEY_keygen_init(context) == 1 else { throw .openSSL("EVP_PKEY_keygen_init") }
        guard EVP_PKEY_CTX_set_ec_paramgen_curve_nid(context, NID_X9_62_prime256v1) > 0 else {
            throw .openSSL("EVP_PKEY_CTX_set_ec_paramgen_curve_nid")
        }
        var key: OpaquePointer?
        guard EVP_PKEY_keygen(context, &key) == 1, let key else { throw .openSSL("EVP_PKEY_keygen") }
        return PrivateKey(handle: key)
    }

    /// Reads an unencrypted PEM private key (PKCS#8 or traditional).
    public static func load(pemFile path: String) throws(TLSError) -> PrivateKey {
        ERR_clear_error()
        guard let bio = BIO_new_file(path, "r") else { throw .openSSL("BIO_new_file", detail: path) }
        defer { BIO_free(bio) }
        guard let key = PEM_read_bio_PrivateKey(bio, nil, nil, nil) else {
            throw .openSSL("PEM_read_bio_PrivateKey", detail: path)
        }
        return PrivateKey(handle: key)
    }

    /// Unencrypted PKCS#8 PEM ("BEGIN PRIVATE KEY").
    public func pem() throws(TLSError) -> [UInt8] {
        try MemoryPEM.render("PEM_write_bio_PrivateKey") { bio in
            PEM_write_bio_PrivateKey(bio, handle, nil, nil, 0, nil, nil)
        }
    }

    /// Writes the PEM with mode 0600.
    public func write(to path: String) throws(TLSError) {
        try SecureFile.write(pem(), to: path, mode: 0o600)
    }
}

/// PEM encoders write to a BIO; this collects what they wrote.
enum MemoryPEM {
    static func render(_ call: String, _ write: (OpaquePointer) -> Int32) throws(TLSError) -> [UInt8] {
        ERR_clear_error()
        guard let bio = BIO_new(BIO_s_mem()) else { throw .openSSL("BIO_new") }
        defer { BIO_free(bio) }
        guard write(bio) == 1 else { throw .openSSL(call) }
        var data: UnsafeMutablePointer<CChar>?
        let length = COpenSSL_BIO_get_mem_data(bio, &data)
        guard length > 0, let data else { throw .openSSL(call, detail: "empty output") }
        return Array(UnsafeRawBufferPointer(start: data, count: length))
    }
}
