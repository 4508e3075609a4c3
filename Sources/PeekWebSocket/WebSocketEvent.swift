/// What `WebSocketStateMachine.next(_:deflate:)` tells the shell. Each case says what to do;
/// the shell never inspects frames itself.
public enum WebSocketEvent: Equatable, Sendable {
    /// A complete text message: valid UTF-8, inflated if it was compressed.
    case text([UInt8])
    /// A complete binary message, inflated if it was compressed.
    case binary([UInt8])
    /// The peer pinged: write `pong` (already encoded, §5.5.3 "Pong frame ... with identical
    /// Application data") as soon as convenient. `payload` is for liveness bookkeeping only.
    case ping(payload: [UInt8], pong: [UInt8])
    /// The peer answered a ping (or sent an unsolicited pong, §5.5.3: no reply expected).
    case pong([UInt8])
    /// The connection is over; no further events follow. Write `reply` if it is non-nil, flush,
    /// then close the TCP connection: the server closes first (§7.1.1), and shutting down the
    /// write side before `close()` keeps unread input from turning the close into an RST.
    case closed(reply: [UInt8]?, cause: CloseCause)
}

/// Why the connection ended, for logs and metrics.
public enum CloseCause: Equatable, Sendable {
    /// The peer started the close handshake; `reply` echoes its code (1000 if it sent none,
    /// which Autobahn 7.3.1 expects).
    case peerInitiated(code: CloseCode?, reason: String)
    /// The peer answered the close frame from `initiateClose`; `reply` is nil.
    case handshakeCompleted(code: CloseCode?, reason: String)
    /// The peer broke the protocol or a limit; `reply` carries `error.closeCode`, or is nil if
    /// our close frame had already been sent.
    case protocolError(FrameError)
}
