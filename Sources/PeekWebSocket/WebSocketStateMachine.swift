/// One server-side WebSocket connection after the upgrade (RFC 6455 §5-7 with RFC 7692): bytes
/// in, events out, no I/O. The shell that owns the socket drives it:
///
///     readBuffer.withUnsafeBytes { raw in               // the loop's shared receive buffer
///         var input = raw
///         while let event = ws.next(&input, deflate: loop.deflateCodec) {
///             switch event {
///             case .text(let bytes):             handleMessage(bytes)
///             case .binary:                      send(ws.initiateClose(code: .unsupportedData)) // /v1/ws
///             case .ping(_, let pong):           enqueue(pong)
///             case .pong:                        markAlive()
///             case .closed(let reply, let cause): if let reply { enqueue(reply) }; closeAfterFlush(); log(cause)
///             }
///         }
///     }
///
/// `next` is pull-style so the handler may call `initiateClose` (or anything else mutating)
/// between events. It returns nil only once all of `input` is consumed; after `.closed` the rest
/// of `input` is left unread, as nothing after a close matters. Unconsumed
/// state between reads is only what cannot be avoided: a split header (inline bytes) and the
/// message being assembled. When a message completes its buffer is handed to the event and the
/// connection is back to holding no heap memory at all, which is what lets 15,000 idle
/// connections cost a few hundred bytes each here.
///
/// Bounds (what a peer controls, and what happens at each):
/// - Message size: `maxMessageBytes`, checked on every frame header against what is buffered so
///   far, before any payload is taken: over it closes with 1009. Compressed messages are bounded
///   twice: the compressed bytes buffered (`maxMessageBytes` + 1/1024 + 64 for deflate's
///   worst-case overhead on incompressible data) and the inflated size, checked while inflating.
/// - Control frames: 125 bytes (§5.5), else 1002.
/// - Buffer growth: the first frame reserves at most 1 MiB up front whatever length it claims,
///   so a peer announcing a large frame and sending nothing ties up no more than that.
/// - UTF-8 is validated as bytes arrive (not at the end), so invalid text closes with 1007 at the
///   first bad byte, even inside the first fragment (Autobahn 6.4.x).
public struct WebSocketStateMachine: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// Largest message accepted, in bytes, after reassembly and after inflation.
        public var maxMessageBytes: Int
        /// The negotiated permessage-deflate parameters, or nil when compression is off.
        public var deflate: PerMessageDeflateParameters?

        public init(maxMessageBytes: Int, deflate: PerMessageDeflateParameters? = nil) {
            precondition(maxMessageBytes >= 125, "maxMessageBytes must admit a control frame")
            self.maxMessageBytes = maxMessageBytes
            self.deflate = deflate
        }
    }

    @usableFromInline enum Phase: UInt8, Sendable {
        case open
        /// We sent a close frame (§7.1.2): still reading, to find the peer's close; data and
        /// pings arriving now are dropped (§5.5.1: no more data after a close is sent).
        case closeSent
        case finished
    }

    private enum MessageKind: UInt8, Sendable {
        case none, text, binary, compressedText, compressedBinary

        var isText: Bool { self == .text || self == .compressedText }
        var isCompressed: Bool { self == .compressedText || self == .compressedBinary }
    }

    public let configuration: Configuration
    private var parser: FrameParser
    @usableFromInline private(set) var phase = Phase.open
    private var kind = MessageKind.none
    private var frameOpcode = Opcode.continuation
    private var frameFin = false
    private var utf8 = UTF8Validator()
    /// The data message being reassembled (compressed bytes for a compressed message).
    private var message: [UInt8] = []
    /// The control frame being read; at most 125 bytes.
    private var control: [UInt8] = []

    private static let maxInitialReserveBytes = 1 << 20

    public init(configuration: Configuration) {
        self.configuration = configuration
        parser = FrameParser(role: .server, maxFrameBytes: Self.compressedLimit(configuration),
                             allowsCompression: configuration.deflate != nil)
    }

    /// True once the connection is over (a `.closed` event was returned).
    public var isFinished: Bool { phase == .finished }
    /// True once a close frame has been sent or the connection is over: send no more messages.
    /// Inlinable because the fan-out path asks it once per delivered delta of a machine
    /// stored in a class: a call would copy the whole struct (a retain and release of
    /// each buffer in it) to pass it, ~250 instructions per delivery by callgrind.
    @inlinable public var isClosing: Bool { phase != .open }

    /// Heap bytes this connection holds between reads (capacity of the message and control
    /// buffers). Zero whenever no message is half-received.
    public var heldBufferBytes: Int { message.capacity + control.capacity }

    // MARK: - Input

    /// Consumes bytes from the front of `input` and returns the next event, or nil once `input`
    /// is used up (partial frames are remembered). `deflate` is the loop's shared codec; it is
    /// needed only when the configuration negotiated compression. After `.closed`, returns nil
    /// and consumes nothing.
    public mutating func next(_ input: inout UnsafeRawBufferPointer, deflate codec: PerMessageDeflateCodec?) -> WebSocketEvent? {
        while phase != .finished {
            let output: FrameParser.Output?
            do { output = try parser.next(&input) } catch { return fail(error) }
            guard let output else { return nil }
            switch output {
            case .header(let header):
                do { try begin(header) } catch { return fail(error) }
            case .payload(let chunk):
                do {
                    if let event = try take(chunk, codec: codec) { return event }
                } catch {
                    return fail(error)
                }
            }
        }
        return nil
    }

    /// Convenience for tests and simple shells: every event `bytes` produces, in order.
    public mutating func receive(_ bytes: [UInt8], deflate codec: PerMessageDeflateCodec?) -> [WebSocketEvent] {
        var events: [WebSocketEvent] = []
        bytes.withUnsafeBytes { raw in
            var input = raw
            while let event = next(&input, deflate: codec) { events.append(event) }
        }
        return events
    }

    private mutating func begin(_ header: FrameHeader) throws(FrameError) {
        frameOpcode = header.opcode
        frameFin = header.fin
        // Control frames may arrive between fragments (§5.4) and do not touch the message.
        if header.opcode.isControl { return }

        if header.opcode == .continuation {
            guard kind != .none else { throw .unexpectedContinuation }
        } else {
            guard kind == .none else { throw .expectedContinuation }
            switch (header.opcode, header.rsv1) {
            case (.text, false): kind = .text
            case (.text, true): kind = .compressedText
            case (_, false): kind = .binary
            case (_, true): kind = .compressedBinary
            }
            utf8.reset()
        }
        let limit = kind.isCompressed ? Self.compressedLimit(configuration) : configuration.maxMessageBytes
        guard header.payloadLength <= limit - message.count else { throw .messageTooBig }
        if message.capacity == 0 && header.payloadLength > 0 {
            message.reserveCapacity(min(header.payloadLength, Self.maxInitialReserveBytes))
        }
    }

    private mutating func take(_ chunk: FrameParser.PayloadChunk, codec: PerMessageDeflateCodec?) throws(FrameError) -> WebSocketEvent? {
        if frameOpcode.isControl {
            chunk.append(to: &control)
            return chunk.isFrameEnd ? try finishControlFrame() : nil
        }
        let start = message.count
        chunk.append(to: &message)
        if kind == .text {
            let valid = message.withUnsafeBytes { utf8.validate(UnsafeRawBufferPointer(rebasing: $0[start...])) }
            guard valid else { throw .invalidUTF8 }
        }
        guard chunk.isFrameEnd && frameFin else { return nil }
        return try finishMessage(codec: codec)
    }

    private mutating func finishMessage(codec: PerMessageDeflateCodec?) throws(FrameError) -> WebSocketEvent? {
        var payload = message
        message = []
        let finished = kind
        kind = .none
        if finished.isCompressed {
            guard let codec else { throw .deflateUnavailable }
            payload = try codec.decompress(payload, maxBytes: configuration.maxMessageBytes)
            if finished.isText && !UTF8Validator.isValid(payload) { throw .invalidUTF8 }
        } else if finished.isText && !utf8.isComplete {
            // A code point cut off by the end of the message (§8.1).
            throw .invalidUTF8
        }
        guard phase == .open else { return nil }
        return finished.isText ? .text(payload) : .binary(payload)
    }

    private mutating func finishControlFrame() throws(FrameError) -> WebSocketEvent? {
        let payload = control
        control = []
        switch frameOpcode {
        case .ping:
            guard phase == .open else { return nil }
            return .ping(payload: payload, pong: FrameEncoder.pong(payload))
        case .pong:
            guard phase == .open else { return nil }
            return .pong(payload)
        default:
            return try receivedClose(payload)
        }
    }

    /// §5.5.1 and §7.4: an empty body, or a valid 2-byte code followed by a UTF-8 reason.
    private mutating func receivedClose(_ payload: [UInt8]) throws(FrameError) -> WebSocketEvent {
        var code: CloseCode?
        var reason = ""
        if payload.count == 1 { throw .invalidClosePayload }
        if payload.count >= 2 {
            let raw = UInt16(payload[0]) << 8 | UInt16(payload[1])
            guard CloseCode(raw).isValidInCloseFrame else { throw .invalidCloseCode(raw) }
            code = CloseCode(raw)
            let text = payload[2...]
            guard text.withUnsafeBytes({ UTF8Validator.isValid($0) }) else { throw .invalidUTF8 }
            reason = String(decoding: text, as: UTF8.self)
        }
        let answered = phase == .closeSent
        finish()
        if answered {
            return .closed(reply: nil, cause: .handshakeCompleted(code: code, reason: reason))
        }
        return .closed(reply: FrameEncoder.close(code: code ?? .normal), cause: .peerInitiated(code: code, reason: reason))
    }

    private mutating func fail(_ error: FrameError) -> WebSocketEvent {
        let reply = phase == .closeSent ? nil : FrameEncoder.close(code: error.closeCode, reason: error.reason)
        finish()
        return .closed(reply: reply, cause: .protocolError(error))
    }

    private mutating func finish() {
        phase = .finished
        message = []
        control = []
        kind = .none
    }

    private static func compressedLimit(_ configuration: Configuration) -> Int {
        guard configuration.deflate != nil else { return configuration.maxMessageBytes }
        let max = configuration.maxMessageBytes
        let (sum, overflow) = max.addingReportingOverflow(max / 1024 + 64)
        return overflow ? Int.max : sum
    }

    // MARK: - Output

    /// Starts the close handshake from our side (shutdown: `.goingAway`; slow consumer:
    /// `.tryAgainLater`; bad token: `.unauthorized`). Returns the close frame to write, once;
    /// nil if a close was already sent or the connection is over. Afterwards keep feeding
    /// `next` until `.closed(reply: nil, cause: .handshakeCompleted)`, or give up after a
    /// timeout and close the socket: the peer owes us its close frame (§7.1.2).
    public mutating func initiateClose(code: CloseCode, reason: String = "") -> [UInt8]? {
        guard phase == .open else { return nil }
        phase = .closeSent
        return FrameEncoder.close(code: code, reason: reason)
    }

    /// Encodes one outgoing message for this connection, compressed when permessage-deflate was
    /// negotiated, a codec is given, and the payload reaches `codec.minimumCompressedBytes`.
    /// Nil once closing: §5.5.1 forbids data after our close frame. For fan-out, encode once
    /// per window size instead (`PerMessageDeflateCodec.compress` + `FrameEncoder.encode`).
    public func makeMessageFrame(_ payload: [UInt8], opcode: Opcode = .text, deflate codec: PerMessageDeflateCodec?) -> [UInt8]? {
        precondition(opcode == .text || opcode == .binary, "messages are text or binary")
        guard phase == .open else { return nil }
        if let parameters = configuration.deflate, let codec, payload.count >= codec.minimumCompressedBytes {
            let compressed = codec.compress(payload, windowBits: parameters.deflateWindowBits)
            return FrameEncoder.frame(opcode: opcode, payload: compressed, rsv1: true)
        }
        return FrameEncoder.frame(opcode: opcode, payload: payload)
    }
}
