import COpenSSL

/// One TLS connection as a byte transform (swift-nio-ssl's `SSLConnection`
/// shape, with two memory BIOs in place of its custom BIO). It never touches
/// a socket: the owner feeds it what arrived, asks it for plaintext, hands it
/// plaintext to encrypt, and sends whatever it drains. So OpenSSL cannot block,
/// cannot raise SIGPIPE, and a client and a server session can be pumped into
/// each other in a unit test.
///
/// The protocol, per readable event:
///
///     session.feedNetwork(received)
///     if !session.isHandshakeComplete { result = session.handshake() }   // then, once complete:
///     session.readPlaintext(into: &input)
///     session.drainNetworkOutput(into: &output)   // always: handshake flights, alerts, key-update replies
///
/// and per write: `writePlaintext` then `drainNetworkOutput`. Each call that
/// reaches OpenSSL clears the thread's error queue first, so a `TLSError`
/// carries only this session's failure.
///
/// Not `Sendable`: an `SSL*` is not thread-safe, so one event loop owns each
/// session for its whole life.
///
/// Bounds: nothing here reads from a peer by itself. What is fed stays in
/// the read BIO until `handshake`/`readPlaintext`, so the caller bounds it by
/// its read size and by reading after every feed; plaintext out is never
/// more than ciphertext in. OpenSSL bounds a handshake message (the peer's
/// certificate list, 100 KiB by default) and fails the handshake above it.
/// Output the peer can provoke (alerts, TLS 1.3 KeyUpdate replies) is at
/// most proportional to its input; renegotiation is off in every context.
///
/// Memory: with `SSL_MODE_RELEASE_BUFFERS` (set by every `TLSContext`)
/// OpenSSL frees its record buffers whenever they are empty. The memory BIOs
/// keep their largest-ever capacity instead, so a BIO that has been emptied
/// and holds more than `retainedBIOCapacity` is replaced by a fresh one; an
/// idle session then holds only OpenSSL's own state: measured at about
/// 15 KiB RSS per idle TLS 1.3 server session, 25 KiB when it keeps a
/// verified client certificate (TLSSessionMemoryTests, 2000 sessions).
public final class TLSSession {
    /// Largest drained memory-BIO buffer kept for reuse. A chat-sized record
    /// (a few hundred bytes) reuses its buffer; the handshake flight and bulk
    /// transfers, which are followed by idleness, give theirs back.
    public static let retainedBIOCapacity = 1024

    /// SSL_new took a reference on the SSL_CTX, so the context outlives the
    /// session without the session holding the Swift `TLSContext`.
    private let ssl: OpaquePointer
    /// Network -> OpenSSL. Replaced, not just emptied, to release its buffer.
    private var readBIO: OpaquePointer
    /// OpenSSL -> network.
    private var writeBIO: OpaquePointer

    private enum State { case handshaking, established, failed(TLSError) }
    private var state = State.handshaking
    /// A failure (or close_notify) seen after some plaintext was already
    /// decrypted in the same `readPlaintext` call: reported on the next call,
    /// so the bytes before it are not lost.
    private var deferredReadResult: TLSReadResult?
    private var sentCloseNotify = false

    /// Set when the handshake completed and the peer's certificate verified.
    public private(set) var peerIdentity: PeerIdentity?
    /// The peer sent close_notify; no more plaintext will come.
    public private(set) var receivedCloseNotify = false

    /// A session in the context's role. For a client, `serverName` is sent as
    /// SNI and checked against the server certificate's SANs (an IP literal
    /// is checked against IP SANs and not sent, RFC 6066 §3). A client without
    /// `serverName` verifies the chain only; a server ignores it.
    public init(context: TLSContext, serverName: String? = nil) throws(TLSError) {
        ERR_clear_error()
        guard let ssl = SSL_new(context.handle) else { throw .openSSL("SSL_new") }
        guard let readBIO = TLSSession.makeMemoryBIO() else {
            SSL_free(ssl)
            throw .openSSL("BIO_new(BIO_s_mem)")
        }
        guard let writeBIO = TLSSession.makeMemoryBIO() else {
            BIO_free(readBIO)
            SSL_free(ssl)
            throw .openSSL("BIO_new(BIO_s_mem)")
        }
        SSL_set_bio(ssl, readBIO, writeBIO)  // the SSL owns both BIOs from here on
        self.ssl = ssl
        self.readBIO = readBIO
        self.writeBIO = writeBIO

        switch context.role {
        case .server:
            SSL_set_accept_state(ssl)
        case .client:
            SSL_set_connect_state(ssl)
            if let serverName, !serverName.isEmpty { try expectServerName(serverName) }
        }
    }

    deinit { SSL_free(ssl) }

    public var isHandshakeComplete: Bool {
        if case .established = state { return true }
        return false
    }

    /// The negotiated protocol ("TLSv1.3"), once established.
    public var protocolVersion: String? {
        guard isHandshakeComplete, let name = SSL_get_version(ssl) else { return nil }
        return String(cString: name)
    }

    // MARK: Network side

    /// Queues bytes that arrived from the peer. Nothing is decrypted until
    /// `handshake()` or `readPlaintext(into:)`, which must follow.
    public func feedNetwork(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        var offset = 0
        while offset < bytes.count {
            // BIO_write takes an Int32 length; a memory BIO accepts all of it.
            let chunk = min(bytes.count - offset, Int(Int32.max))
            let written = BIO_write(readBIO, base + offset, Int32(chunk))
            // A memory BIO refuses only on allocation failure; the peer then sees
            // a truncated stream and the session fails, which is the right end.
            guard written > 0 else { return }
            offset += Int(written)
        }
    }

    /// True when encrypted bytes wait to be sent.
    public var hasNetworkOutput: Bool { COpenSSL_BIO_pending(writeBIO) > 0 }

    /// Appends every encrypted byte waiting for the network to `buffer` and
    /// returns how many. Afterwards the write BIO is empty (and its buffer
    /// released if it had grown past `retainedBIOCapacity`).
    @discardableResult
    public func drainNetworkOutput(into buffer: inout [UInt8]) -> Int {
        let pending = COpenSSL_BIO_pending(writeBIO)
        guard pending > 0 else { return 0 }
        var data: UnsafeMutablePointer<CChar>?
        let length = COpenSSL_BIO_get_mem_data(writeBIO, &data)
        guard length > 0, let data else { return 0 }
        buffer.append(contentsOf: UnsafeRawBufferPointer(start: data, count: length))
        // The bytes are copied out; a fresh BIO is cheaper than BIO_read'ing
        // them into nowhere when the buffer is large, and a reset otherwise.
        if !releaseIfLarge(writeBIO, side: .write) { _ = BIO_ctrl(writeBIO, BIO_CTRL_RESET, 0, nil) }
        return length
    }

    // MARK: Handshake

    /// Advances the handshake with what has been fed. Idempotent once
    /// complete or failed.
    public func handshake() -> TLSHandshakeResult {
        switch state {
        case .established: return .complete
        case .failed(let error): return .failed(error)
        case .handshaking: break
        }
        ERR_clear_error()
        let rc = SSL_do_handshake(ssl)
        if rc == 1 {
            state = .established
            peerIdentity = verifiedPeerIdentity()
            releaseIfDrained(.read)
            return .complete
        }
        let code = SSL_get_error(ssl, rc)
        if code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE { return .wantMore }
        let error = makeError("SSL_do_handshake", sslError: code)
        state = .failed(error)
        return .failed(error)
    }

    // MARK: Plaintext

    /// Decrypts everything decryptable from what has been fed and appends it
    /// to `buffer`. The output never exceeds the ciphertext fed, so the
    /// caller's read limit bounds it. Drives the handshake first if needed.
    public func readPlaintext(into buffer: inout [UInt8]) -> TLSReadResult {
        if let deferred = deferredReadResult {
            deferredReadResult = nil
            return deferred
        }
        if receivedCloseNotify { return .closed }
        switch handshake() {
        case .complete: break
        case .wantMore: return .wantMore
        case .failed(let error): return .failed(error)
        }

        var total = 0
        while true {
            // Plaintext is never longer than the ciphertext that carries it, so
            // this bounds the record in hand; 512 covers a header-only probe.
            let capacity = max(512, min(16_384, Int(SSL_pending(ssl)) + COpenSSL_BIO_pending(readBIO)))
            let start = buffer.count
            buffer.append(contentsOf: repeatElement(0, count: capacity))
            var count = 0
            ERR_clear_error()
            let rc = buffer.withUnsafeMutableBytes { raw -> Int32 in
                guard let base = raw.baseAddress else { return 0 }
                return SSL_read_ex(ssl, base + start, capacity, &count)
            }
            buffer.removeLast(capacity - (rc == 1 ? count : 0))
            if rc == 1 {
                total += count
                continue
            }

            let code = SSL_get_error(ssl, rc)
            let outcome: TLSReadResult
            switch code {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                releaseIfDrained(.read)
                return total > 0 ? .bytes(total) : .wantMore
            case SSL_ERROR_ZERO_RETURN:
                receivedCloseNotify = true
                outcome = .closed
            default:
                let error = makeError("SSL_read", sslError: code)
                state = .failed(error)
                outcome = .failed(error)
            }
            releaseIfDrained(.read)
            if total == 0 { return outcome }
            deferredReadResult = outcome
            return .bytes(total)
        }
    }

    /// Encrypts all of `bytes` into the write BIO; drain it afterwards. A
    /// memory BIO never pushes back, so this never reports "try again".
    /// Fails before the handshake is complete and after a fatal error.
    public func writePlaintext(_ bytes: UnsafeRawBufferPointer) -> Result<Void, TLSError> {
        switch state {
        case .established: break
        case .handshaking: return .failure(TLSError(call: "SSL_write", detail: "handshake not complete"))
        case .failed(let error): return .failure(error)
        }
        guard let base = bytes.baseAddress, bytes.count > 0 else { return .success(()) }
        if sentCloseNotify { return .failure(TLSError(call: "SSL_write", detail: "close_notify already sent")) }
        ERR_clear_error()
        var written = 0
        let rc = SSL_write_ex(ssl, base, bytes.count, &written)
        guard rc == 1, written == bytes.count else {
            let error = makeError("SSL_write", sslError: SSL_get_error(ssl, rc))
            state = .failed(error)
            return .failure(error)
        }
        return .success(())
    }

    /// Queues close_notify in the write BIO (drain and send it, then close).
    /// Does not wait for the peer's reply: a server that closes the socket
    /// needs none (RFC 8446 §6.1 allows closing after sending). A no-op
    /// before the handshake completes or after a fatal error, where OpenSSL
    /// must not send it.
    public func shutdown() {
        guard case .established = state, !sentCloseNotify else { return }
        sentCloseNotify = true
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
        ERR_clear_error()
    }

    // MARK: Internals

    private func expectServerName(_ serverName: String) throws(TLSError) {
        ERR_clear_error()
        guard let parameters = SSL_get0_param(ssl) else { throw .openSSL("SSL_get0_param") }
        if X509_VERIFY_PARAM_set1_ip_asc(parameters, serverName) == 1 { return }
        ERR_clear_error()
        guard SSL_set1_host(ssl, serverName) == 1 else { throw .openSSL("SSL_set1_host", detail: serverName) }
        ERR_clear_error()
        guard COpenSSL_SSL_set_tlsext_host_name(ssl, serverName) == 1 else {
            throw .openSSL("SSL_set_tlsext_host_name", detail: serverName)
        }
    }

    /// The peer's identity if (and only if) OpenSSL verified its certificate.
    /// A server that does not request certificates gets none (nil), and
    /// `SSL_get_verify_result` is X509_V_OK by default, hence both checks.
    private func verifiedPeerIdentity() -> PeerIdentity? {
        guard SSL_get_verify_result(ssl) == Int(X509_V_OK) else { return nil }
        guard let certificate = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(certificate) }
        return PeerIdentity(certificate: certificate)
    }

    private func makeError(_ call: String, sslError: Int32) -> TLSError {
        let verify = SSL_get_verify_result(ssl)
        var verifyText: String?
        if verify != Int(X509_V_OK), let text = X509_verify_cert_error_string(verify) {
            verifyText = String(cString: text)
        }
        var detail: String?
        switch sslError {
        case SSL_ERROR_SYSCALL: detail = "unexpected end of stream"
        case SSL_ERROR_ZERO_RETURN: detail = "peer closed the connection"
        default: break
        }
        return TLSError.openSSL(call, sslError: sslError, verifyResult: verifyText, detail: detail)
    }

    private enum Side { case read, write }

    private static func makeMemoryBIO() -> OpaquePointer? {
        BIO_new(BIO_s_mem())
    }

    private func releaseIfDrained(_ side: Side) {
        let bio = side == .read ? readBIO : writeBIO
        guard COpenSSL_BIO_pending(bio) == 0 else { return }
        _ = releaseIfLarge(bio, side: side)
    }

    /// Swaps an emptied BIO whose buffer outgrew `retainedBIOCapacity` for a
    /// fresh one (the SSL frees the old one). Returns whether it did.
    private func releaseIfLarge(_ bio: OpaquePointer, side: Side) -> Bool {
        var memory: UnsafeMutablePointer<BUF_MEM>?
        guard COpenSSL_BIO_get_mem_ptr(bio, &memory) > 0, let memory,
              memory.pointee.max > TLSSession.retainedBIOCapacity,
              let fresh = TLSSession.makeMemoryBIO()
        else { return false }
        switch side {
        case .read:
            SSL_set0_rbio(ssl, fresh)
            readBIO = fresh
        case .write:
            SSL_set0_wbio(ssl, fresh)
            writeBIO = fresh
        }
        return true
    }
}
