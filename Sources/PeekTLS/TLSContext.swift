import COpenSSL

/// An `SSL_CTX`: the certificate, key, trust anchors and protocol policy that
/// every `TLSSession` made from it shares. Build one per listener (or per
/// outbound trust setting) at startup and keep it for the life of the process;
/// sessions hold a reference, so it outlives them.
///
/// Policy, the same for every factory: TLS 1.2 minimum (1.3 preferred, since
/// OpenSSL negotiates the highest common version), no compression (CRIME), no
/// renegotiation (a peer-driven CPU and state sink), no session cache and no
/// tickets (clients reconnect rarely and a cache is memory held for strangers),
/// and `SSL_MODE_RELEASE_BUFFERS` so an idle session gives its ~34 KiB of
/// record buffers back. Server contexts also hand each session its TLS 1.3
/// traffic secrets through the keylog callback, so that it can free its
/// `SSL` after the handshake (see `TLSSession`).
// @unchecked: SSL_CTX is internally locked and no setter runs after the factory returns.
public final class TLSContext: @unchecked Sendable {
    public enum Role: Sendable { case server, client }

    /// Who protects application data once a TLS 1.3 server handshake is
    /// done (see `TLSSession`, "the hand-off"). `peek`: our `TLSRecordLayer`,
    /// a few hundred bytes per idle connection. `openssl`: the `SSL` stays
    /// for the whole connection (about 15 KiB per idle connection), the
    /// fallback if our layer ever misbehaves with some peer. Clients and TLS
    /// 1.2 always keep OpenSSL.
    public enum RecordLayer: String, Sendable, CaseIterable {
        case peek, openssl
    }

    let handle: OpaquePointer
    public let role: Role
    /// Whether peers must present a certificate that chains to the configured CA.
    public let requiresPeerCertificate: Bool
    /// For server contexts; clients always keep OpenSSL's record layer.
    public let recordLayer: RecordLayer
    /// After this many records under one key our record layer moves to the
    /// next key (and asks the peer to). Lowered only by tests, to reach it.
    let recordsPerKey: UInt64
    /// The agent listener's CA and CRLs, when it has a CRL file: re-read
    /// when the file changes, so each session takes its store from here.
    let clientTrust: ClientTrustStore?

    private init(handle: OpaquePointer, role: Role, requiresPeerCertificate: Bool, recordLayer: RecordLayer = .peek,
                 recordsPerKey: UInt64 = TLSRecordLayer.defaultRecordsPerKey, clientTrust: ClientTrustStore? = nil) {
        self.handle = handle
        self.role = role
        self.requiresPeerCertificate = requiresPeerCertificate
        self.recordLayer = recordLayer
        self.recordsPerKey = max(1, recordsPerKey)
        self.clientTrust = clientTrust
    }

    /// Re-reads the agent CRL file now (peekd does on SIGHUP); a context
    /// without one has nothing to do. Returns false, keeping the CRL in use,
    /// if the file does not load (the reason is logged).
    @discardableResult
    public func reloadRevocationList() -> Bool {
        clientTrust?.reload() ?? true
    }

    deinit { SSL_CTX_free(handle) }

    /// Forward secrecy and AEAD only, ECDSA before RSA (our certificates are
    /// P-256). Applies to TLS 1.2; TLS 1.3 suites are all acceptable as shipped.
    static let tls12ServerCiphers = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")

    /// X25519 first: the cheapest key share, so a 1.3 client that guesses it
    /// (every current one does) skips the HelloRetryRequest round trip.
    static let groups = "X25519:P-256:P-384"

    /// A TLS server for browsers and HTTP clients: presents the chain, asks
    /// for no client certificate.
    ///
    /// `recordsPerKey` is for tests (a KeyUpdate within a few records); the
    /// default is `TLSRecordLayer.defaultRecordsPerKey` (2^24).
    public static func makeServer(certificateChainFile: String, privateKeyFile: String, recordLayer: RecordLayer = .peek,
                                  recordsPerKey: UInt64? = nil) throws(TLSError) -> TLSContext {
        let ctx = try makeBase(role: .server, recordLayer: recordLayer)
        let context = TLSContext(handle: ctx, role: .server, requiresPeerCertificate: false, recordLayer: recordLayer,
                                 recordsPerKey: recordsPerKey ?? TLSRecordLayer.defaultRecordsPerKey)
        try context.useIdentity(certificateChainFile: certificateChainFile, privateKeyFile: privateKeyFile)
        return context
    }

    /// A mutual-TLS server (the agent listener). A client must present a
    /// certificate that chains to `clientCAFile`, which is the only trust
    /// anchor (no system roots: a public CA must not be able to mint agents)
    /// and also the CA list sent in the CertificateRequest. Rejections, as the
    /// client sees them: no certificate -> alert 116 (certificate required),
    /// another CA -> alert 48 (unknown ca), expired -> alert 45 (certificate
    /// expired), revoked in `crlFile` -> alert 44 (certificate revoked).
    ///
    /// With `crlFile`, every certificate of the client's chain (not only the
    /// leaf) must be in good standing with a CRL from its issuer in that
    /// file (`X509_V_FLAG_CRL_CHECK_ALL`): a missing or stale CRL fails the
    /// handshake rather than letting revoked agents in. The file is re-read
    /// when it changes (checked at each new session) and by
    /// `reloadRevocationList()`; see `ClientTrustStore`. `log` gets one line
    /// per reload, and why one failed.
    public static func makeMutualServer(
        certificateChainFile: String,
        privateKeyFile: String,
        clientCAFile: String,
        crlFile: String? = nil,
        recordLayer: RecordLayer = .peek,
        log: @escaping @Sendable (String) -> Void = { _ in }
    ) throws(TLSError) -> TLSContext {
        let ctx = try makeBase(role: .server, recordLayer: recordLayer)
        let clientTrust: ClientTrustStore?
        do throws(TLSError) {
            clientTrust = try crlFile.map { file throws(TLSError) in try ClientTrustStore(caFile: clientCAFile, crlFile: file, log: log) }
        } catch {
            SSL_CTX_free(ctx)
            throw error
        }
        let context = TLSContext(handle: ctx, role: .server, requiresPeerCertificate: true, recordLayer: recordLayer,
                                 clientTrust: clientTrust)
        try context.useIdentity(certificateChainFile: certificateChainFile, privateKeyFile: privateKeyFile)

        ERR_clear_error()
        guard SSL_CTX_load_verify_locations(ctx, clientCAFile, nil) == 1 else {
            throw .openSSL("SSL_CTX_load_verify_locations", detail: clientCAFile)
        }
        ERR_clear_error()
        guard let caNames = SSL_load_client_CA_file(clientCAFile) else {
            throw .openSSL("SSL_load_client_CA_file", detail: clientCAFile)
        }
        SSL_CTX_set_client_CA_list(ctx, caNames)  // takes ownership of caNames

        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
        return context
    }

    /// A TLS client (outbound SMTP, tests). The server's chain is always
    /// verified, against `caFile` and/or the system roots; the host name is
    /// checked per session (`TLSSession(context:serverName:)`).
    /// `certificateFile`/`keyFile` present a client certificate when asked.
    /// Throws if no trust anchor is configured, since every handshake would fail.
    public static func makeClient(
        caFile: String? = nil,
        useSystemTrust: Bool = true,
        certificateFile: String? = nil,
        keyFile: String? = nil
    ) throws(TLSError) -> TLSContext {
        guard caFile != nil || useSystemTrust else {
            throw TLSError(call: "makeClient", detail: "no trust anchors: pass caFile or useSystemTrust")
        }
        let ctx = try makeBase(role: .client)
        let context = TLSContext(handle: ctx, role: .client, requiresPeerCertificate: true)
        if let caFile {
            ERR_clear_error()
            guard SSL_CTX_load_verify_locations(ctx, caFile, nil) == 1 else {
                throw .openSSL("SSL_CTX_load_verify_locations", detail: caFile)
            }
        }
        if useSystemTrust {
            ERR_clear_error()
            guard SSL_CTX_set_default_verify_paths(ctx) == 1 else { throw .openSSL("SSL_CTX_set_default_verify_paths") }
        }
        switch (certificateFile, keyFile) {
        case let (certificate?, key?):
            try context.useIdentity(certificateChainFile: certificate, privateKeyFile: key)
        case (nil, nil):
            break
        default:
            throw TLSError(call: "makeClient", detail: "certificateFile and keyFile go together")
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        return context
    }

    // The context is freed by `deinit` once wrapped, so callers wrap it
    // before any step that can throw.
    private static func makeBase(role: Role, recordLayer: RecordLayer = .peek) throws(TLSError) -> OpaquePointer {
        ERR_clear_error()
        guard let ctx = SSL_CTX_new(role == .server ? TLS_server_method() : TLS_client_method()) else {
            throw .openSSL("SSL_CTX_new")
        }
        var options = COpenSSL_SSL_OP_NO_COMPRESSION() | COpenSSL_SSL_OP_NO_RENEGOTIATION() | COpenSSL_SSL_OP_NO_TICKET()
        if role == .server { options |= COpenSSL_SSL_OP_CIPHER_SERVER_PREFERENCE() }
        SSL_CTX_set_options(ctx, UInt64(options))
        // RELEASE_BUFFERS: idle memory. ACCEPT_MOVING_WRITE_BUFFER: a retried
        // SSL_write may come from a different (moved) Swift array.
        _ = COpenSSL_SSL_CTX_set_mode(ctx, COpenSSL_SSL_MODE_RELEASE_BUFFERS() | COpenSSL_SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER())
        _ = COpenSSL_SSL_CTX_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_OFF))
        // TLS 1.3 tickets are sent after the handshake even with the cache off;
        // without a cache nobody would resume with them.
        _ = SSL_CTX_set_num_tickets(ctx, 0)

        ERR_clear_error()
        guard COpenSSL_SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1 else {
            SSL_CTX_free(ctx)
            throw .openSSL("SSL_CTX_set_min_proto_version")
        }
        ERR_clear_error()
        guard COpenSSL_SSL_CTX_set1_groups_list(ctx, groups) == 1 else {
            SSL_CTX_free(ctx)
            throw .openSSL("SSL_CTX_set1_groups_list")
        }
        if role == .server {
            ERR_clear_error()
            guard SSL_CTX_set_cipher_list(ctx, tls12ServerCiphers) == 1 else {
                SSL_CTX_free(ctx)
                throw .openSSL("SSL_CTX_set_cipher_list")
            }
            // Required by OpenSSL once client certificates are verified, even
            // with resumption off; a fixed tag is enough.
            let tag: [UInt8] = Array("peekd".utf8)
            _ = SSL_CTX_set_session_id_context(ctx, tag, UInt32(tag.count))
            // The TLS 1.3 application traffic secrets go to the session being
            // handshaken (and nowhere else): it frees its SSL afterwards and
            // runs its own record layer (TLSSession, "the hand-off"). That
            // needs no tickets, set above: nothing is sent after Finished.
            // With OpenSSL's record layer chosen no secret ever leaves it.
            if recordLayer == .peek {
                SSL_CTX_set_keylog_callback(ctx) { ssl, line in TLSSession.captureKeylogLine(ssl: ssl, line: line) }
            }
        }
        return ctx
    }

    private func useIdentity(certificateChainFile: String, privateKeyFile: String) throws(TLSError) {
        ERR_clear_error()
        guard SSL_CTX_use_certificate_chain_file(handle, certificateChainFile) == 1 else {
            throw .openSSL("SSL_CTX_use_certificate_chain_file", detail: certificateChainFile)
        }
        ERR_clear_error()
        guard SSL_CTX_use_PrivateKey_file(handle, privateKeyFile, SSL_FILETYPE_PEM) == 1 else {
            throw .openSSL("SSL_CTX_use_PrivateKey_file", detail: privateKeyFile)
        }
        ERR_clear_error()
        guard SSL_CTX_check_private_key(handle) == 1 else {
            throw .openSSL("SSL_CTX_check_private_key", detail: "\(privateKeyFile) does not match \(certificateChainFile)")
        }
    }
}
