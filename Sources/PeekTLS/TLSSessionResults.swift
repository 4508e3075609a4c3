/// What `TLSSession.handshake()` needs from the caller next.
public enum TLSHandshakeResult: Sendable, Equatable {
    /// Established. Drain `drainNetworkOutput` once more: the last flight may be waiting.
    case complete
    /// Send what `drainNetworkOutput` has, then feed the peer's next bytes.
    case wantMore
    /// Fatal. Drain and send `drainNetworkOutput` anyway (it holds the alert
    /// that tells the peer why), then close.
    case failed(TLSError)
}

/// What `TLSSession.readPlaintext(into:)` produced.
public enum TLSReadResult: Sendable, Equatable {
    /// This many plaintext bytes were appended. The session may also have
    /// queued output (a TLS 1.3 key update reply), so check `hasNetworkOutput`.
    case bytes(Int)
    /// Nothing decryptable yet: feed more network bytes.
    case wantMore
    /// The peer sent close_notify: a clean end of the stream.
    case closed
    /// Fatal (a bad record, an alert from the peer). Send any network output, then close.
    case failed(TLSError)
}
