/// What one connection negotiated. Two bytes: idle connections pay nothing for compression.
public struct PerMessageDeflateParameters: Equatable, Hashable, Sendable {
    /// `server_max_window_bits` from the offer, echoed in the response; nil means 15.
    public var serverMaxWindowBits: UInt8?
    /// `client_max_window_bits=N` from the offer, echoed in the response; nil when the offer
    /// gave none (bare or absent). The server does not need to limit the client: it inflates
    /// with a 15-bit window, which reads any smaller one, and no context survives a message.
    public var clientMaxWindowBits: UInt8?

    public init(serverMaxWindowBits: UInt8? = nil, clientMaxWindowBits: UInt8? = nil) {
        self.serverMaxWindowBits = serverMaxWindowBits
        self.clientMaxWindowBits = clientMaxWindowBits
    }

    /// The zlib `windowBits` to deflate with (`PerMessageDeflateCodec.compress(_:windowBits:)`).
    ///
    /// 8 is answered as 8 but deflated with 9. zlib refuses windowBits 8 for raw deflate
    /// (deflateInit2 returns Z_STREAM_ERROR since 1.2.9, "until 256-byte window bug fixed"), and
    /// answering 9 is not allowed (§7.1.2.1: the response value must not exceed the offer's).
    /// It is safe because zlib never emits a distance beyond MAX_DIST = window size - MIN_LOOKAHEAD
    /// (deflate.h: w_size - (258 + 3 + 1)), which for a 512-byte window is 250 bytes, inside the
    /// 256-byte window the client allocated. Node's zlib binding (and so `ws`) does the same
    /// upgrade. A test inflates our output with a raw 8-bit window to prove it.
    public var deflateWindowBits: Int {
        max(Int(serverMaxWindowBits ?? 15), 9)
    }

    /// The `Sec-WebSocket-Extensions` response value.
    public var responseHeaderValue: String {
        var value = "\(PerMessageDeflate.extensionName); server_no_context_takeover; client_no_context_takeover"
        if let serverMaxWindowBits { value += "; server_max_window_bits=\(serverMaxWindowBits)" }
        if let clientMaxWindowBits { value += "; client_max_window_bits=\(clientMaxWindowBits)" }
        return value
    }
}
