#if canImport(Glibc)
import Glibc
#endif
import CSystem
import PeekCore
import PeekTLS

/// What sits on top of a connection: the HTTP parser, then after an upgrade
/// a WebSocket session. All calls arrive on the connection's loop thread.
public protocol ConnectionHandler: AnyObject {
    /// The transport is ready (immediately for TCP, after the handshake for TLS).
    func connectionDidOpen(_ connection: Connection)
    /// Input arrived. The view is into a loop-shared buffer and valid only
    /// during the call: copy what must outlive it.
    func connection(_ connection: Connection, didReceive bytes: UnsafeRawBufferPointer)
    /// The peer will send no more (EOF).
    func connectionDidReadEOF(_ connection: Connection)
    /// About once a second: deadlines, heartbeats.
    func connectionTick(_ connection: Connection, nowMillis: Int64)
    /// Server shutdown: say goodbye (WebSocket close 1001) and close after flush.
    func connectionShutdown(_ connection: Connection)
    /// The connection is gone; release what refers to it.
    func connectionDidClose(_ connection: Connection)
}

/// One accepted socket, owned by one loop. Output is a queue of shared
/// chunks written with `writev` at the end of the loop iteration; TLS
/// connections encrypt through a memory-BIO session first.
///
/// Lifetime: `close()` deregisters and closes at once and tells the handler;
/// `closeAfterFlush()` is the graceful path (flush, shut down the write side,
/// drain the peer's input until EOF or a linger deadline, then close), which
/// keeps the last frame from being lost to an RST (LINUX-NOTES).
public final class Connection: Selectable {
    public let fd: Int32
    /// `unowned(unsafe)`: a loop lives as long as the process and closes
    /// every connection before its thread ends, and the checked form costs
    /// an atomic retain/release on every send and flush.
    public unowned(unsafe) let loop: EventLoop
    private var generation: UInt32 = 0
    public var handler: (any ConnectionHandler)?
    public let listenerKind: ListenerKind

    // The write-path state below is marked `@exclusivity(unchecked)`: only
    // the owning loop's thread touches it (asserted in debug builds at every
    // entry point: `loop.assertInLoop()`), and no method hands it `inout`
    // across a call that could reach it again, so the dynamic exclusivity
    // check Swift adds to every class-property access (~190 instructions,
    // about ten per delivered delta, 41% of all fan-out instructions by
    // callgrind) guards nothing here.
    @exclusivity(unchecked) private var output = OutputQueue()
    @exclusivity(unchecked) private var tls: TLSSession?
    private let needsTLS: Bool
    /// Plaintext waiting to be encrypted at flush time (TLS only), so many
    /// small frames become few records.
    @exclusivity(unchecked) private var plaintextPending: [ByteChunk] = []
    @exclusivity(unchecked) private var plaintextPendingBytes = 0

    @exclusivity(unchecked) private var writableArmed = false
    @exclusivity(unchecked) private var flushScheduled = false
    @exclusivity(unchecked) public private(set) var isClosed = false
    @exclusivity(unchecked) public private(set) var isClosing = false
    @exclusivity(unchecked) private var writeShutDown = false
    private var opened = false
    public let openedAtMillis: Int64
    private var lingerDeadline: Int64 = 0
    /// Last time input arrived; handlers use it for idle and heartbeat rules.
    public var lastReadMillis: Int64

    /// Peer certificate identity after a verified mutual-TLS handshake.
    public private(set) var peerIdentity: PeerIdentity?

    /// The peer half-closed (EOF); its input is no longer watched, since a
    /// level-triggered EOF would wake the loop on every iteration.
    public private(set) var inputEnded = false
    /// More than the loop's `pauseInputAboveBytes` is queued: the socket is
    /// not read (its input is not watched) until the queue drains to half
    /// of that. The peer's sends then stall in the kernel's buffers.
    public private(set) var inputPaused = false
    /// Set by a handler in `connectionDidReadEOF` when it still owes the
    /// peer an answer (an API response the engine is working on): the
    /// connection stays open for writing until the handler calls
    /// `closeAfterFlush()`, and closes as soon as that output is out.
    public var answersAfterEOF = false
    /// Runs once, on the loop, the next time the output queue empties: a
    /// handler that stopped producing because too much sat unread resumes
    /// here (backpressure without a timer).
    @exclusivity(unchecked) public var onDrained: (() -> Void)?

    static let tlsHandshakeTimeoutMillis: Int64 = 10_000
    static let lingerMillis: Int64 = 2_000

    init(fd: Int32, loop: EventLoop, kind: ListenerKind, tlsContext: TLSContext?) {
        self.fd = fd
        self.loop = loop
        self.listenerKind = kind
        let now = monotonicMillis()
        openedAtMillis = now
        lastReadMillis = now
        // A session that cannot be made (out of memory) leaves `tls` nil
        // with `needsTLS` set: the connection is closed on start.
        if let tlsContext { tls = try? TLSSession(context: tlsContext); needsTLS = true } else { needsTLS = false }
    }

    func start(handler: any ConnectionHandler) throws(SystemError) {
        self.handler = handler
        generation = try loop.register(fd, self, events: EPOLLIN.rawValue | EPOLLRDHUP.rawValue)
        loop.track(self)
        if needsTLS && tls == nil { close(); return }
        if tls == nil { opened = true; handler.connectionDidOpen(self) }
    }

    public var isTLS: Bool { tls != nil }

    /// Bytes queued and not yet accepted by the kernel.
    public var bufferedBytes: Int { output.byteCount + plaintextPendingBytes }

    // MARK: Writing

    /// What `queue(_:shedAbove:refuseAbove:)` did with a frame.
    public enum QueueOutcome {
        case queued
        /// The connection is closing or closed: nothing more goes out.
        case dropped
        /// More than `shedAbove` bytes were already queued.
        case shed
        /// More than `refuseAbove` bytes were already queued.
        case overLimit
    }

    /// The fan-out path's one call per recipient: queues a shared frame
    /// unless the connection is closing, or more than `shedAbove` (when
    /// given) or `refuseAbove` bytes wait already; the caller's slow-consumer
    /// policy decides what shedding and the limit mean. One call rather than
    /// reads of `isClosing`, `isClosed` and `bufferedBytes` from the layer
    /// above: each such read from another module cost a retain of the
    /// connection and, inlined there, a dynamic exclusivity check.
    public func queue(_ chunk: ByteChunk, shedAbove: Int?, refuseAbove: Int) -> QueueOutcome {
        loop.assertInLoop()
        guard !isClosed, !isClosing, !writeShutDown else { return .dropped }
        let queued = bufferedBytes
        if let shedAbove, queued > shedAbove { return .shed }
        if queued > refuseAbove { return .overLimit }
        send(chunk)
        return .queued
    }

    /// Queues bytes shared with other connections (a fan-out frame).
    /// Dropped once the connection is closed or its write side shut down.
    public func send(_ chunk: ByteChunk) {
        loop.assertInLoop()
        guard !isClosed, !writeShutDown else { return }
        if tls != nil {
            plaintextPending.append(chunk)
            plaintextPendingBytes += chunk.count
        } else {
            output.append(chunk)
        }
        scheduleFlush()
    }

    public func send(_ bytes: [UInt8]) { send(ByteChunk.make(bytes)) }

    private func scheduleFlush() {
        if !flushScheduled && !writableArmed {
            flushScheduled = true
            loop.scheduleFlush(self)
        }
    }

    /// Writes what the kernel takes now; arms EPOLLOUT for the rest.
    func flushNow() {
        loop.assertInLoop()
        flushScheduled = false
        guard !isClosed else { return }
        if tls != nil { encryptPending() }
        while !output.isEmpty {
            let count = output.gather(into: loop.iovecs, max: EventLoop.maxIovecs)
            let result: IOResult<Int>
            do {
                result = try syscall("writev") { writev(fd, loop.iovecs, Int32(count)) }
            } catch {
                // EPIPE/ECONNRESET: the peer is gone; nothing more to say to it.
                close()
                return
            }
            switch result {
            case .processed(let n):
                output.consume(n)
                if inputPaused && bufferedBytes <= loop.pauseInputAboveBytes / 2 { resumeInput() }
            case .wouldBlock:
                armWritable(true)
                return
            }
        }
        armWritable(false)
        if isClosing && !writeShutDown {
            shutdownWriteSide()
        } else if let drained = onDrained {
            onDrained = nil
            drained()
        }
    }

    private func encryptPending() {
        guard let tls, !plaintextPending.isEmpty else { return }
        for chunk in plaintextPending {
            let ok = chunk.withBytes { tls.writePlaintext($0) }
            if case .failure = ok { close(); return }
        }
        plaintextPending = []
        plaintextPendingBytes = 0
        drainTLSOutput()
    }

    private func drainTLSOutput() {
        guard let tls, tls.hasNetworkOutput else { return }
        var cipher: [UInt8] = []
        _ = tls.drainNetworkOutput(into: &cipher)
        output.append(ByteChunk.make(cipher))
    }

    private func armWritable(_ on: Bool) {
        guard on != writableArmed, !isClosed else { return }
        writableArmed = on
        updateInterest()
    }

    /// The epoll events this connection waits for: input unless it ended or
    /// is paused, output while some waits for room.
    private func updateInterest() {
        var events = inputEnded || inputPaused ? 0 : EPOLLIN.rawValue | EPOLLRDHUP.rawValue
        if writableArmed { events |= EPOLLOUT.rawValue }
        loop.modify(fd, generation: generation, events: events)
    }

    private func pauseInput() {
        inputPaused = true
        updateInterest()
    }

    private func resumeInput() {
        inputPaused = false
        updateInterest()
    }

    // MARK: Closing

    /// Graceful close: flush what is queued, then FIN, then wait for the
    /// peer's EOF (bounded by the linger deadline in the sweep).
    public func closeAfterFlush() {
        loop.assertInLoop()
        guard !isClosed, !isClosing else { return }
        isClosing = true
        lingerDeadline = monotonicMillis() + Self.lingerMillis
        if tls != nil {
            // The last frames (an error, the close frame) are still plaintext
            // waiting for the flush; they must be sealed before close_notify,
            // which ends what the peer will read (and what SSL_write accepts).
            encryptPending()
            guard !isClosed else { return }
            tls?.shutdown()
            drainTLSOutput()
        }
        if output.isEmpty && plaintextPending.isEmpty { shutdownWriteSide() } else { scheduleFlush() }
    }

    private func shutdownWriteSide() {
        writeShutDown = true
        Glibc.shutdown(fd, Int32(SHUT_WR))
        // Both directions are done: nothing left to linger for.
        if inputEnded { close() }
    }

    /// Closes now. Queued output is dropped.
    public func close() {
        loop.assertInLoop()
        guard !isClosed else { return }
        isClosed = true
        loop.deregister(fd)
        loop.untrack(self)
        Glibc.close(fd)
        output.removeAll()
        plaintextPending = []
        plaintextPendingBytes = 0
        tls = nil
        onDrained = nil
        let h = handler
        handler = nil
        h?.connectionDidClose(self)
    }

    // MARK: Events

    func handleEvents(_ events: UInt32) {
        loop.assertInLoop()
        if events & EPOLLOUT.rawValue != 0 {
            flushNow()
        }
        guard !isClosed, events & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 else { return }
        if inputPaused {
            // Reported even while input is unwatched: the peer reset or hung
            // up, so what is queued for it can never be delivered.
            if events & (EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 { close() }
            return
        }
        readAvailable()
    }

    private func readAvailable() {
        // Read until the socket is dry, a few rounds at most so one busy
        // peer cannot starve the rest of the loop.
        for _ in 0..<4 {
            guard !isClosed else { return }
            // Whatever the reason output piled up, the peer's further input
            // (pings, requests, frames that are answered) waits in the kernel
            // until it reads what it already has coming. Not while closing:
            // then input is only drained and discarded.
            if bufferedBytes > loop.pauseInputAboveBytes && !isClosing {
                pauseInput()
                return
            }
            let result: IOResult<Int>
            do {
                result = try syscall("read") { read(fd, loop.readBuffer.baseAddress, EventLoop.readBufferSize) }
            } catch {
                close()
                return
            }
            switch result {
            case .wouldBlock:
                return
            case .processed(0):
                handleEOF()
                return
            case .processed(let n):
                lastReadMillis = monotonicMillis()
                let view = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(loop.readBuffer)[0..<n])
                if isClosing && writeShutDown {
                    continue  // draining before close: discard
                }
                if tls != nil { receiveTLS(view) } else { handler?.connection(self, didReceive: view) }
                if n < EventLoop.readBufferSize { return }
            }
        }
    }

    private func handleEOF() {
        // A second EOF (a hang-up reported while input is unwatched) or
        // one during the close handshake: nothing more can happen.
        if isClosing || inputEnded {
            close()
            return
        }
        inputEnded = true
        updateInterest()
        handler?.connectionDidReadEOF(self)
        if answersAfterEOF && !isClosed && !isClosing { return }
        if !isClosed && !isClosing { closeAfterFlush() }
        if isClosing && output.isEmpty { close() }
    }

    private func receiveTLS(_ bytes: UnsafeRawBufferPointer) {
        guard let tls else { return }
        tls.feedNetwork(bytes)
        if !opened {
            switch tls.handshake() {
            case .wantMore:
                drainTLSOutput(); scheduleFlush()
                return
            case .failed:
                // A missing, expired or foreign certificate ends here, before
                // any byte reaches the WebSocket layer.
                closeAfterTLSAlert()
                return
            case .complete:
                opened = true
                peerIdentity = tls.peerIdentity
                drainTLSOutput(); scheduleFlush()
                handler?.connectionDidOpen(self)
            }
        }
        var plaintext = loop.plaintextBuffer
        loop.plaintextBuffer = []
        defer { plaintext.removeAll(keepingCapacity: true); loop.plaintextBuffer = plaintext }
        while !isClosed {
            plaintext.removeAll(keepingCapacity: true)
            switch tls.readPlaintext(into: &plaintext) {
            case .bytes(let n) where n > 0:
                plaintext.withUnsafeBytes { handler?.connection(self, didReceive: $0) }
            case .bytes, .wantMore:
                if tls.hasNetworkOutput { drainTLSOutput(); scheduleFlush() }
                return
            case .closed:
                handleEOF()
                return
            case .failed:
                // A forged or malformed record (bad_record_mac and the like).
                closeAfterTLSAlert()
                return
            }
        }
    }

    /// A fatal TLS error: the session has queued the alert that names it.
    /// One write attempt sends it (and whatever was queued before it) if the
    /// socket takes it; then the connection closes without lingering, since
    /// nothing more may be read or written under a failed session.
    private func closeAfterTLSAlert() {
        drainTLSOutput()
        isClosing = true
        flushNow()
        close()
    }

    func tick(nowMillis: Int64) {
        loop.assertInLoop()
        output.releaseStorageIfIdle()
        if isClosing {
            if nowMillis >= lingerDeadline { close() }
            return
        }
        if !opened {
            if nowMillis - openedAtMillis > Self.tlsHandshakeTimeoutMillis { close() }
            return
        }
        handler?.connectionTick(self, nowMillis: nowMillis)
    }

    public func shutdownGracefully() {
        loop.assertInLoop()
        guard !isClosed, !isClosing else { return }
        if let handler, opened { handler.connectionShutdown(self) } else { close() }
    }
}
