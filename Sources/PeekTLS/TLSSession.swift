import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

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
/// Memory, and the hand-off: after a TLS 1.3 handshake an OpenSSL `SSL`
/// still holds about 15 KiB (the `SSL` object, one AEAD context per
/// direction, the `SSL_SESSION` with the peer's certificate), and kernel TLS
/// is not available here. So a *server* session (of a context whose
/// `recordLayer` is `.peek`, the default; `.openssl` keeps the `SSL`, see
/// `--tls-record-layer`) that completes a TLS 1.3
/// handshake with one of the three default suites takes the application
/// traffic secrets (from the context's keylog callback, straight into this
/// session and nowhere else), frees its `SSL`, and runs `TLSRecordLayer`
/// for the rest of the connection: a few hundred bytes of keys, sequence
/// numbers and empty buffers. Bytes the client sent after its Finished in
/// the same flight move from the read BIO into the record input; anything
/// still waiting in the write BIO goes out first. Clients, TLS 1.2 and any
/// handshake the hand-off does not recognise keep OpenSSL throughout, with
/// `SSL_MODE_RELEASE_BUFFERS` (set by every `TLSContext`) and memory BIOs
/// that are replaced once emptied if they outgrew `retainedBIOCapacity`.
/// Measured over 2000 idle TLS 1.3 server sessions (TLSSessionMemoryTests):
/// 15.6 KiB RSS each with the `SSL` kept (24.4 KiB with a verified client
/// certificate), 0.75-0.85 KiB after the hand-off (with or without one).
public final class TLSSession {
    /// Largest drained input buffer (memory BIO, or record input after the
    /// hand-off) kept for reuse. A chat-sized record (a few hundred bytes)
    /// reuses its buffer; the handshake flight and bulk transfers, which are
    /// followed by idleness, give theirs back.
    public static let retainedBIOCapacity = 1024

    /// SSL_new took a reference on the SSL_CTX, so the context outlives the
    /// session without the session holding the Swift `TLSContext`. Nil
    /// after the hand-off to `records`.
    private var ssl: OpaquePointer?
    /// Network -> OpenSSL. Replaced, not just emptied, to release its buffer.
    private var readBIO: OpaquePointer?
    /// OpenSSL -> network.
    private var writeBIO: OpaquePointer?

    private let isServer: Bool
    /// The application traffic secrets, from the keylog callback, kept
    /// only until the handshake completes (then they move into `records`).
    private var capturedSecrets: CapturedTrafficSecrets?
    /// The record layer that replaces `ssl` after a TLS 1.3 server handshake.
    private var records: TLSRecordLayer?
    /// Ciphertext fed after the hand-off; consumed from `recordInputStart`.
    /// Holds at most one incomplete record between calls, since the caller
    /// reads after every feed and a header claiming more than
    /// `TLSRecordLayer.maxCiphertextBytes` fails at once.
    private var recordInput: [UInt8] = []
    private var recordInputStart = 0
    /// Records sealed after the hand-off, waiting for `drainNetworkOutput`.
    private var recordOutput: [UInt8] = []

    private enum State { case handshaking, established, failed(TLSError) }
    private var state = State.handshaking
    /// A failure (or close_notify) seen after some plaintext was already
    /// decrypted in the same `readPlaintext` call: reported on the next call,
    /// so the bytes before it are not lost.
    private var deferredReadResult: TLSReadResult?
    /// After this many records under one key the session moves to the next
    /// (write side) or asks the peer to (read side): the context's
    /// `recordsPerKey`. Settable so that unit tests can reach it in a few records.
    var recordsPerKey: UInt64
    /// A KeyUpdate asking the peer to move has gone out and its answer has
    /// not come yet: ask once per key.
    private var awaitingPeerKeyUpdate = false
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
        isServer = context.role == .server
        recordsPerKey = context.recordsPerKey

        switch context.role {
        case .server:
            SSL_set_accept_state(ssl)
            // The agent listener's CA and CRLs as of now (re-read if the CRL
            // file changed); the session owns the reference it is given.
            if let trust = context.clientTrust { _ = COpenSSL_SSL_set0_verify_cert_store(ssl, trust.storeForNewSession()) }
            // The keylog callback finds the session through the app-data slot
            // (SSL_set_app_data is this call as a macro). Unretained: the
            // callback runs only inside our own SSL_do_handshake calls.
            _ = SSL_set_ex_data(ssl, 0, Unmanaged.passUnretained(self).toOpaque())
        case .client:
            SSL_set_connect_state(ssl)
            if let serverName, !serverName.isEmpty { try expectServerName(serverName) }
        }
    }

    /// A server session already past the hand-off, running `layer` with
    /// no `SSL` behind it. Only for the record-path fuzz target
    /// (Fuzz/Targets/tls_records.swift) and tests: they need the read path
    /// after the hand-off under known keys, thousands of times a second,
    /// which a real handshake per input would not allow.
    init(handedOff layer: TLSRecordLayer) {
        isServer = true
        records = layer
        recordsPerKey = TLSRecordLayer.defaultRecordsPerKey
        state = .established
    }

    deinit {
        if let ssl { SSL_free(ssl) }
    }

    public var isHandshakeComplete: Bool {
        if case .established = state { return true }
        return false
    }

    /// The negotiated protocol ("TLSv1.3"), once established.
    public var protocolVersion: String? {
        guard isHandshakeComplete else { return nil }
        if records != nil { return "TLSv1.3" }
        guard let ssl, let name = SSL_get_version(ssl) else { return nil }
        return String(cString: name)
    }

    /// The negotiated cipher suite ("TLS_AES_128_GCM_SHA256"), once established.
    public var cipherSuite: String? {
        guard isHandshakeComplete else { return nil }
        if let records { return records.suite.name }
        guard let ssl, let cipher = SSL_get_current_cipher(ssl), let name = SSL_CIPHER_get_name(cipher) else { return nil }
        return String(cString: name)
    }

    /// True once this session runs its own TLS 1.3 record layer instead of OpenSSL.
    var usesOwnRecordLayer: Bool { records != nil }

    /// Heap capacity held by the record input and output (tests: zero when idle).
    var bufferedCapacity: Int { recordInput.capacity + recordOutput.capacity }

    // MARK: Network side

    /// Queues bytes that arrived from the peer. Nothing is decrypted until
    /// `handshake()` or `readPlaintext(into:)`, which must follow.
    public func feedNetwork(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        if records != nil {
            recordInput.append(contentsOf: bytes)
            return
        }
        guard let readBIO else { return }
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
    public var hasNetworkOutput: Bool {
        if !recordOutput.isEmpty { return true }
        guard let writeBIO else { return false }
        return COpenSSL_BIO_pending(writeBIO) > 0
    }

    /// Appends every encrypted byte waiting for the network to `buffer` and
    /// returns how many. Afterwards nothing is pending: the write BIO is
    /// empty (its buffer released if it had grown past
    /// `retainedBIOCapacity`), and after the hand-off the record output has
    /// no capacity left (handed over whole when `buffer` is empty).
    @discardableResult
    public func drainNetworkOutput(into buffer: inout [UInt8]) -> Int {
        if !recordOutput.isEmpty {
            let count = recordOutput.count
            // Callers drain into a fresh array: give them ours, no copy.
            if buffer.isEmpty { swap(&buffer, &recordOutput) } else { buffer.append(contentsOf: recordOutput) }
            recordOutput = []
            return count
        }
        guard let writeBIO else { return 0 }
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
        guard let ssl else { return .wantMore }  // unreachable: the hand-off happens only once established
        ERR_clear_error()
        let rc = SSL_do_handshake(ssl)
        if rc == 1 {
            state = .established
            peerIdentity = verifiedPeerIdentity()
            if !handOffToRecordLayer() { releaseIfDrained(.read) }
            return .complete
        }
        let code = SSL_get_error(ssl, rc)
        if code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE { return .wantMore }
        let error = makeError("SSL_do_handshake", sslError: code)
        state = .failed(error)
        capturedSecrets = nil
        return .failed(error)
    }

    /// Replaces the `SSL` by `TLSRecordLayer` if this is a server session
    /// (of a context whose `recordLayer` is `.peek`: only those capture the
    /// secrets) that just completed a TLS 1.3 handshake with a suite the layer
    /// implements and OpenSSL holds no record it has read but not returned.
    /// Sequence numbers start at 0 both ways: the client's first
    /// application record is still unread, and the server has sent nothing
    /// under its application secret (the context sends no session tickets).
    /// Returns false, leaving OpenSSL in charge, otherwise.
    private func handOffToRecordLayer() -> Bool {
        defer { capturedSecrets = nil }
        guard isServer, let ssl, let readBIO, let writeBIO, let secrets = capturedSecrets,
              SSL_version(ssl) == TLS1_3_VERSION, SSL_has_pending(ssl) == 0,
              SSL_get_num_tickets(ssl) == 0,  // a ticket would have used write sequence 0
              let cipher = SSL_get_current_cipher(ssl),
              let suite = TLSRecordLayer.Suite(protocolID: SSL_CIPHER_get_protocol_id(cipher)),
              let layer = secrets.makeRecordLayer(suite: suite)
        else { return false }

        // Whatever OpenSSL queued still goes out first, then our records.
        var data: UnsafeMutablePointer<CChar>?
        let pendingOutput = COpenSSL_BIO_get_mem_data(writeBIO, &data)
        if pendingOutput > 0, let data {
            recordOutput.append(contentsOf: UnsafeRawBufferPointer(start: data, count: pendingOutput))
        }
        // Application data the client sent right behind its Finished.
        data = nil
        let pendingInput = COpenSSL_BIO_get_mem_data(readBIO, &data)
        if pendingInput > 0, let data {
            recordInput.append(contentsOf: UnsafeRawBufferPointer(start: data, count: pendingInput))
        }

        records = layer
        SSL_free(ssl)  // and both BIOs, which it owns
        self.ssl = nil
        self.readBIO = nil
        self.writeBIO = nil
        return true
    }

    /// Receives one keylog line from `TLSContext`'s callback. Only the two
    /// application traffic secrets are kept; the line itself is OpenSSL's
    /// buffer (cleared when the callback returns) and is never copied.
    static func captureKeylogLine(ssl: OpaquePointer?, line: UnsafePointer<CChar>?) {
        guard let ssl, let line, let owner = SSL_get_ex_data(ssl, 0) else { return }
        let session = Unmanaged<TLSSession>.fromOpaque(owner).takeUnretainedValue()
        guard session.isServer, session.ssl != nil else { return }
        let secrets = session.capturedSecrets ?? CapturedTrafficSecrets()
        if secrets.capture(line: line, isServer: session.isServer) { session.capturedSecrets = secrets }
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
        if let records { return readRecords(records, into: &buffer) }
        guard let ssl, let readBIO else { return .wantMore }

        var total = 0
        while true {
            // Plaintext is never longer than the ciphertext that carries it, so
            // this bounds the record in hand; 512 covers a header-only probe.
            // Read into scratch space and copy out what came: zero-filling
            // `buffer` by `capacity` and trimming it again cost 16 KiB of
            // writes per record, which one-byte records turn into most of
            // the CPU (the debug build spent ~1 ms per record on it).
            let capacity = max(512, min(16_384, Int(SSL_pending(ssl)) + COpenSSL_BIO_pending(readBIO)))
            var count = 0
            ERR_clear_error()
            let rc = withUnsafeTemporaryAllocation(byteCount: capacity, alignment: 8) { scratch -> Int32 in
                let rc = SSL_read_ex(ssl, scratch.baseAddress, capacity, &count)
                if rc == 1 { buffer.append(contentsOf: UnsafeRawBufferPointer(start: scratch.baseAddress, count: count)) }
                return rc
            }
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
        if let records { return writeRecords(records, base: base, count: bytes.count) }
        guard let ssl else { return .failure(TLSError(call: "SSL_write", detail: "no session")) }
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
        if records != nil {
            sealControl(contentType: 21, [1, TLSAlert.closeNotify.rawValue])  // warning, close_notify
            return
        }
        guard let ssl else { return }
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
        ERR_clear_error()
    }

    // MARK: Internals

    /// Sends a TLS 1.3 KeyUpdate (RFC 8446 §4.6.3) and moves this side to
    /// its next write secret; with `peerShouldUpdate`, the peer must answer
    /// with its own and move too. Drain the network output afterwards. For
    /// long-lived connections and tests; callers need not use it.
    public func requestKeyUpdate(peerShouldUpdate: Bool) -> Result<Void, TLSError> {
        switch state {
        case .established: break
        case .handshaking: return .failure(TLSError(call: "SSL_key_update", detail: "handshake not complete"))
        case .failed(let error): return .failure(error)
        }
        if sentCloseNotify { return .failure(TLSError(call: "SSL_key_update", detail: "close_notify already sent")) }
        if records != nil {
            guard sendKeyUpdate(requestingPeer: peerShouldUpdate) else {
                return .failure(failRecords(TLSError(call: "requestKeyUpdate", detail: "sealing the KeyUpdate failed"), alert: nil))
            }
            return .success(())
        }
        guard let ssl else { return .failure(TLSError(call: "SSL_key_update", detail: "no session")) }
        ERR_clear_error()
        let kind = peerShouldUpdate ? SSL_KEY_UPDATE_REQUESTED : SSL_KEY_UPDATE_NOT_REQUESTED
        guard SSL_key_update(ssl, kind) == 1 else { return .failure(.openSSL("SSL_key_update")) }
        // SSL_key_update only schedules the message; the handshake call writes it.
        let rc = SSL_do_handshake(ssl)
        guard rc == 1 else { return .failure(makeError("SSL_do_handshake", sslError: SSL_get_error(ssl, rc))) }
        return .success(())
    }

    // MARK: Record layer (after the hand-off)

    /// `readPlaintext` after the hand-off: opens every whole record in the
    /// input, in order. The output never exceeds the ciphertext consumed.
    private func readRecords(_ layer: TLSRecordLayer, into buffer: inout [UInt8]) -> TLSReadResult {
        var total = 0
        var outcome: TLSReadResult?
        while outcome == nil {
            let available = recordInput.count - recordInputStart
            guard available >= TLSRecordLayer.headerBytes else { break }
            let type = recordInput[recordInputStart]
            let length = Int(recordInput[recordInputStart + 3]) << 8 | Int(recordInput[recordInputStart + 4])
            // From the header alone, before waiting for the body (RFC 8446 §5.2).
            guard length <= TLSRecordLayer.maxCiphertextBytes else {
                outcome = .failed(failRecords(.recordOverflow, "record of \(length) bytes"))
                break
            }
            // Every record after the handshake is protected; a change_cipher_spec
            // is allowed only before the peer's Finished (RFC 8446 §5).
            guard type == 23 else {
                outcome = .failed(failRecords(.unexpectedMessage, "unprotected record of type \(type) after the handshake"))
                break
            }
            let recordBytes = TLSRecordLayer.headerBytes + length
            guard available >= recordBytes else { break }

            let start = buffer.count
            let opened = recordInput.withUnsafeBytes { raw in
                layer.open(UnsafeRawBufferPointer(rebasing: raw[recordInputStart..<recordInputStart + recordBytes]), appendingTo: &buffer)
            }
            recordInputStart += recordBytes
            switch opened {
            case .failed(let alert):
                outcome = .failed(failRecords(alert, alert == .badRecordMAC ? "a record failed authentication" : "malformed record"))
            case .opened(contentType: 23):
                total += buffer.count - start
                // The peer's key is worn out: ask it to move (RFC 8446 §4.6.3).
                if layer.recordsUnderReadKey >= recordsPerKey && !awaitingPeerKeyUpdate && !sentCloseNotify {
                    awaitingPeerKeyUpdate = true
                    if !sendKeyUpdate(requestingPeer: true) {
                        outcome = .failed(failRecords(TLSError(call: "readPlaintext", detail: "sealing a KeyUpdate failed"), alert: nil))
                    }
                }
            case .opened(contentType: 21):
                let alert = Array(buffer[start...])
                buffer.removeSubrange(start...)
                outcome = receivedAlert(alert)
            case .opened(contentType: 22):
                let message = Array(buffer[start...])
                buffer.removeSubrange(start...)
                outcome = receivedHandshake(message, layer: layer)
            case .opened(let other):
                buffer.removeSubrange(start...)
                outcome = .failed(failRecords(.unexpectedMessage, "record of content type \(other)"))
            }
        }
        compactRecordInput()
        guard let outcome else { return total > 0 ? .bytes(total) : .wantMore }
        if total == 0 { return outcome }
        deferredReadResult = outcome
        return .bytes(total)
    }

    /// RFC 8446 §6: close_notify ends the stream; user_canceled is followed
    /// by one and ignored; every other alert is an error, whatever its level.
    private func receivedAlert(_ alert: [UInt8]) -> TLSReadResult? {
        guard alert.count == 2 else { return .failed(failRecords(.decodeError, "alert of \(alert.count) bytes")) }
        let description = TLSAlert(rawValue: alert[1])
        switch description {
        case .closeNotify:
            receivedCloseNotify = true
            // RFC 8446 §6.1: data after close_notify is ignored.
            recordInput = []
            recordInputStart = 0
            return .closed
        case .userCanceled:
            return nil
        default:
            let error = TLSError(call: "readPlaintext", detail: "peer sent alert \(description.rawValue): \(description.name)")
            return .failed(failRecords(error, alert: nil))
        }
    }

    /// After the handshake a client may send only KeyUpdate (RFC 8446
    /// §4.6.3), and, because it changes the key, alone in its record
    /// (§5.1). OpenSSL would also accept one split across records; no TLS
    /// stack sends its five bytes that way, so that is refused here too.
    private func receivedHandshake(_ message: [UInt8], layer: TLSRecordLayer) -> TLSReadResult? {
        guard message.count >= 4, message[0] == 24 else {
            let type = message.first.map { "\($0)" } ?? "none"
            return .failed(failRecords(.unexpectedMessage, "handshake message \(type) after the handshake"))
        }
        guard message.count == 5, message[1] == 0, message[2] == 0, message[3] == 1 else {
            // Longer or shorter than one KeyUpdate: not at a record boundary or truncated.
            return .failed(failRecords(message.count > 5 ? .unexpectedMessage : .decodeError, "KeyUpdate not alone in its record"))
        }
        guard message[4] <= 1 else { return .failed(failRecords(.illegalParameter, "KeyUpdate request_update \(message[4])")) }
        guard layer.updateTrafficSecret(.read) else { return .failed(failRecords(.internalError, "KeyUpdate key derivation")) }
        awaitingPeerKeyUpdate = false
        // update_requested: answer before any further application data. After
        // close_notify nothing more may be sent, so nothing is.
        if message[4] == 1 && !sentCloseNotify {
            guard sendKeyUpdate(requestingPeer: false) else {
                return .failed(failRecords(TLSError(call: "readPlaintext", detail: "sealing the KeyUpdate reply failed"), alert: nil))
            }
        }
        return nil
    }

    /// Seals KeyUpdate under the current write key, then moves to the next one.
    private func sendKeyUpdate(requestingPeer: Bool) -> Bool {
        guard let records else { return false }
        guard sealControl(contentType: 22, [24, 0, 0, 1, requestingPeer ? 1 : 0]) else { return false }
        return records.updateTrafficSecret(.write)
    }

    /// `writePlaintext` after the hand-off: records of at most 2^14 bytes,
    /// into one buffer sized up front.
    private func writeRecords(_ layer: TLSRecordLayer, base: UnsafeRawPointer, count: Int) -> Result<Void, TLSError> {
        let full = count / TLSRecordLayer.maxContentBytes
        let rest = count % TLSRecordLayer.maxContentBytes
        recordOutput.reserveCapacity(recordOutput.count + full * TLSRecordLayer.recordBytes(content: TLSRecordLayer.maxContentBytes)
                                     + (rest > 0 ? TLSRecordLayer.recordBytes(content: rest) : 0))
        var offset = 0
        while offset < count {
            if layer.recordsUnderWriteKey >= recordsPerKey {
                guard sendKeyUpdate(requestingPeer: false) else {
                    return .failure(failRecords(TLSError(call: "writePlaintext", detail: "sealing a KeyUpdate failed"), alert: nil))
                }
            }
            let chunk = min(TLSRecordLayer.maxContentBytes, count - offset)
            guard layer.seal(contentType: 23, UnsafeRawBufferPointer(start: base + offset, count: chunk), appendingTo: &recordOutput) else {
                return .failure(failRecords(TLSError(call: "writePlaintext", detail: "sealing a record failed"), alert: nil))
            }
            offset += chunk
        }
        return .success(())
    }

    @discardableResult
    private func sealControl(contentType: UInt8, _ content: [UInt8]) -> Bool {
        guard let records else { return false }
        return content.withUnsafeBytes { records.seal(contentType: contentType, $0, appendingTo: &recordOutput) }
    }

    /// Fails the session for a protocol error we detected: the peer gets a
    /// fatal alert (unless we already closed our side), the caller an error.
    private func failRecords(_ alert: TLSAlert, _ what: String) -> TLSError {
        failRecords(TLSError(call: "readPlaintext", detail: "\(alert.name): \(what) (sent alert \(alert.rawValue))"), alert: alert)
    }

    private func failRecords(_ error: TLSError, alert: TLSAlert?) -> TLSError {
        state = .failed(error)
        if let alert, !sentCloseNotify {
            sentCloseNotify = true  // nothing may follow a fatal alert (RFC 8446 §6.2)
            sealControl(contentType: 21, [2, alert.rawValue])
        }
        recordInput = []
        recordInputStart = 0
        return error
    }

    /// Drops consumed input; an emptied buffer keeps its capacity only if
    /// it is small, so an idle session holds none of a bulk transfer.
    private func compactRecordInput() {
        if recordInputStart == recordInput.count {
            if recordInput.capacity > TLSSession.retainedBIOCapacity { recordInput = [] } else { recordInput.removeAll(keepingCapacity: true) }
        } else if recordInputStart > 0 {
            recordInput.removeSubrange(0..<recordInputStart)
        }
        recordInputStart = 0
    }

    // MARK: Internals

    private func expectServerName(_ serverName: String) throws(TLSError) {
        guard let ssl else { return }
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
        guard let ssl, SSL_get_verify_result(ssl) == Int(X509_V_OK) else { return nil }
        guard let certificate = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(certificate) }
        return PeerIdentity(certificate: certificate)
    }

    private func makeError(_ call: String, sslError: Int32) -> TLSError {
        let verify = ssl.map { SSL_get_verify_result($0) } ?? Int(X509_V_OK)
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
        guard let bio = side == .read ? readBIO : writeBIO, COpenSSL_BIO_pending(bio) == 0 else { return }
        _ = releaseIfLarge(bio, side: side)
    }

    /// Swaps an emptied BIO whose buffer outgrew `retainedBIOCapacity` for a
    /// fresh one (the SSL frees the old one). Returns whether it did.
    private func releaseIfLarge(_ bio: OpaquePointer, side: Side) -> Bool {
        var memory: UnsafeMutablePointer<BUF_MEM>?
        guard let ssl, COpenSSL_BIO_get_mem_ptr(bio, &memory) > 0, let memory,
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

/// The two application traffic secrets as the keylog callback reports them
/// (`CLIENT_TRAFFIC_SECRET_0 <client random> <hex>`), held from the moment
/// OpenSSL derives them (when the server sends its Finished) until the
/// handshake completes. Wiped when freed.
final class CapturedTrafficSecrets {
    private static let maxSecretBytes = 48
    /// Client secret, then server secret.
    private let bytes = UnsafeMutableRawPointer.allocate(byteCount: 2 * maxSecretBytes, alignment: 8)
    private var clientCount = 0
    private var serverCount = 0

    deinit {
        OPENSSL_cleanse(bytes, 2 * Self.maxSecretBytes)
        bytes.deallocate()
    }

    /// Decodes the secret of a `CLIENT_/SERVER_TRAFFIC_SECRET_0` line in
    /// place; other labels (handshake secrets, exporter, TLS 1.2's
    /// CLIENT_RANDOM) are ignored. Returns whether it kept something.
    func capture(line: UnsafePointer<CChar>, isServer: Bool) -> Bool {
        let client = "CLIENT_TRAFFIC_SECRET_0 ", server = "SERVER_TRAFFIC_SECRET_0 "
        let isClientSecret: Bool
        if strncmp(line, client, client.utf8.count) == 0 {
            isClientSecret = true
        } else if strncmp(line, server, server.utf8.count) == 0 {
            isClientSecret = false
        } else {
            return false
        }
        // Skip the label and the client random to the last field.
        var cursor = line + client.utf8.count
        while cursor.pointee != 0 && cursor.pointee != 0x20 { cursor += 1 }
        guard cursor.pointee == 0x20 else { return false }
        cursor += 1

        let destination = bytes + (isClientSecret ? 0 : Self.maxSecretBytes)
        var count = 0
        while cursor.pointee != 0 {
            guard count < Self.maxSecretBytes,
                  let high = Self.nibble(cursor.pointee), let low = Self.nibble((cursor + 1).pointee)
            else { return false }
            destination.storeBytes(of: high << 4 | low, toByteOffset: count, as: UInt8.self)
            count += 1
            cursor += 2
        }
        if isClientSecret { clientCount = count } else { serverCount = count }
        return true
    }

    /// A server reads with the client's secret and writes with its own.
    func makeRecordLayer(suite: TLSRecordLayer.Suite) -> TLSRecordLayer? {
        guard clientCount == suite.secretBytes, serverCount == suite.secretBytes else { return nil }
        return TLSRecordLayer(suite: suite,
                              readSecret: UnsafeRawBufferPointer(start: bytes, count: clientCount),
                              writeSecret: UnsafeRawBufferPointer(start: bytes + Self.maxSecretBytes, count: serverCount))
    }

    private static func nibble(_ character: CChar) -> UInt8? {
        switch UInt8(bitPattern: character) {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt8(bitPattern: character) - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt8(bitPattern: character) - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt8(bitPattern: character) - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
