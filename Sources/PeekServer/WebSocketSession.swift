import PeekEngine
import PeekCore
import PeekNet
import PeekWebSocket

/// A connection after the WebSocket upgrade: the protocol state machine,
/// heartbeats and the write path. Subclasses decide what messages mean.
/// Owned by its loop; the engine reaches it only through `LoopHub`.
class WebSocketSession: ConnectionHandler {
    // `unowned(unsafe)`: the connection owns this session (its handler) and
    // the hub lives as long as the loop; both outlive every call here. The
    // checked form cost an atomic retain/release per delivered delta.
    unowned(unsafe) let hub: LoopHub
    unowned(unsafe) let connection: Connection
    /// Loop-thread only (asserted in debug builds at every entry point:
    /// `connection.loop.assertInLoop()`); read on every delivered delta (`isClosing`), so it
    /// skips the dynamic exclusivity check (see Connection's write path).
    @exclusivity(unchecked) var ws: WebSocketStateMachine
    private(set) var peer = Peer(loop: 0, id: 0)
    private var lastPingMillis: Int64
    let deflateWindowBits: Int?
    /// Messages this peer may still send (`--frames-per-second` for
    /// technicians, `--agent-frames-per-second` for agents, burst twice
    /// that). Technician and agent sessions draw on it; echo mode does not.
    private var frameBudget: TokenBucket
    private let framesPerSecond: Int

    init(hub: LoopHub, connection: Connection, deflate: PerMessageDeflateParameters?, maxMessageBytes: Int, framesPerSecond: Int) {
        self.hub = hub
        self.connection = connection
        ws = WebSocketStateMachine(configuration: .init(maxMessageBytes: maxMessageBytes, deflate: deflate))
        deflateWindowBits = deflate?.deflateWindowBits
        lastPingMillis = monotonicMillis()
        self.framesPerSecond = framesPerSecond
        frameBudget = TokenBucket(ratePerSecond: framesPerSecond, capacity: framesPerSecond * 2, nowMillis: lastPingMillis)
        peer = hub.register(self)
    }

    var isClosing: Bool { ws.isClosing || connection.isClosing || connection.isClosed }

    // MARK: Subclass hooks

    func didReceiveText(_ bytes: [UInt8]) {}
    func didReceiveBinary(_ bytes: [UInt8]) { close(code: .unsupportedData, reason: "binary frames are not accepted here") }
    func willClose() {}
    func onTick(nowMillis: Int64) {}

    // MARK: Frame rate

    /// Takes a token for one received message; false means the peer is over
    /// the rate and the message must be dropped unprocessed.
    func admitFrame() -> Bool { frameBudget.take(nowMillis: monotonicMillis()) }

    /// What a message over the rate is answered with (protocol.md §3.12, §5).
    var overRateError: PeekError {
        PeekError(.rateLimited, "Too many frames; slow down to \(framesPerSecond) per second.")
    }

    // MARK: Writing

    /// Sends one text message encoded for this connection (compressed when
    /// negotiated). For fan-out, `deliver` takes a frame encoded once.
    ///
    /// Replies count against the hard limit like fan-out does: otherwise a
    /// client asking for snapshots it never reads grows its queue forever.
    /// (Not in echo mode, where a conformance suite's 16 MiB messages are
    /// the point.)
    func sendText(_ payload: [UInt8]) {
        connection.loop.assertInLoop()
        if !isClosing && !hub.server.echoMode && connection.bufferedBytes > hub.server.config.hardOutputLimit {
            hub.slowConsumersClosed += 1
            close(code: .tryAgainLater, reason: "too far behind; reconnect and resume with since")
            return
        }
        guard let frame = ws.makeMessageFrame(payload, deflate: hub.deflate) else { return }
        connection.send(frame)
    }

    /// Queues a shared frame, applying the slow-consumer policy: ephemeral
    /// deltas (ticks, telemetry, presence) are shed once the queue passes the
    /// soft limit; a connection whose queue passes the hard limit is closed
    /// with 1013, and its client resumes with `since` and loses nothing.
    final func deliver(_ frame: ByteChunk, durable: Bool) {
        connection.loop.assertInLoop()
        guard !ws.isClosing else { return }
        switch connection.queue(frame, shedAbove: durable ? nil : hub.softOutputLimit, refuseAbove: hub.hardOutputLimit) {
        case .queued, .dropped:
            return
        case .shed:
            hub.ephemeralShed += 1
        case .overLimit:
            hub.slowConsumersClosed += 1
            close(code: .tryAgainLater, reason: "too far behind; reconnect and resume with since")
        }
    }

    /// Starts the close handshake; the connection closes after the flush
    /// (and at the latest after the linger deadline).
    func close(code: CloseCode, reason: String) {
        connection.loop.assertInLoop()
        if let frame = ws.initiateClose(code: code, reason: reason) { connection.send(frame) }
        connection.closeAfterFlush()
    }

    // MARK: ConnectionHandler

    func connectionDidOpen(_ connection: Connection) {}

    func connection(_ connection: Connection, didReceive bytes: UnsafeRawBufferPointer) {
        connection.loop.assertInLoop()
        var input = bytes
        while let event = ws.next(&input, deflate: hub.deflate) {
            hub.framesIn += 1
            switch event {
            case .text(let message): didReceiveText(message)
            case .binary(let message): didReceiveBinary(message)
            case .ping(_, let pong): connection.send(pong)
            case .pong: break
            case .closed(let reply, _):
                if let reply { connection.send(reply) }
                connection.closeAfterFlush()
                return
            }
            if connection.isClosed { return }
        }
    }

    func connectionDidReadEOF(_ connection: Connection) {}

    /// Heartbeat: a ping when the peer has been quiet for a heartbeat; a
    /// peer quiet for two heartbeats is dead and is closed without ceremony.
    func connectionTick(_ connection: Connection, nowMillis: Int64) {
        connection.loop.assertInLoop()
        let heartbeat = Int64(hub.server.config.heartbeatSeconds) * 1000
        // Dead within two heartbeats (CONTRACT), counting the sweep's own granularity.
        if nowMillis - connection.lastReadMillis >= 2 * heartbeat - connection.loop.sweepIntervalMillis {
            connection.close()
            return
        }
        if nowMillis - connection.lastReadMillis >= heartbeat && nowMillis - lastPingMillis >= heartbeat {
            lastPingMillis = nowMillis
            if !ws.isClosing { connection.send(FrameEncoder.ping()) }
        }
        onTick(nowMillis: nowMillis)
    }

    func connectionShutdown(_ connection: Connection) {
        close(code: .goingAway, reason: "server shutting down")
    }

    func connectionDidClose(_ connection: Connection) {
        connection.loop.assertInLoop()
        willClose()
        hub.unregister(self)
    }
}

/// `/v1/ws`: a technician's browser or tool.
final class TechnicianSession: WebSocketSession {
    enum Phase { case awaitingHello, authenticating, signedIn }
    var phase = Phase.awaitingHello
    private var signIn: SignIn?
    /// When the token in force expires, on the monotonic clock the sweep
    /// ticks with: a compare per connection per sweep, no timer of its own.
    private var signInDeadlineMillis = Int64.max
    /// Tickets this connection views, as the loop knows them (the engine's
    /// `TechnicianState.tickets` is the authority and enforces the cap),
    /// each with this session's slot in the hub's viewer list.
    var tickets: [String: Int] = [:]

    func signedIn(_ signIn: SignIn) {
        phase = .signedIn
        inForce(signIn)
    }

    /// The wall clock is read once here, when a token comes into force, and
    /// `exp` becomes a monotonic deadline.
    private func inForce(_ signIn: SignIn) {
        self.signIn = signIn
        // Saturating: a token may carry any `exp` its signer chose.
        let expMillis = signIn.expiresAt.multipliedReportingOverflow(by: 1000)
        let left = expMillis.overflow ? Int64.max : max(0, expMillis.partialValue - hub.server.config.clock.wallMillis())
        let deadline = monotonicMillis().addingReportingOverflow(left)
        signInDeadlineMillis = deadline.overflow ? .max : deadline.partialValue
    }

    static let expiredMessage = "Your sign-in expired"

    /// A new token for the same technician of the same tenant moves the
    /// expiry; anything else is refused and the old token stays in force.
    private func refresh(id: String, token: String) {
        guard phase == .signedIn, let current = signIn else {
            sendText(Wire.errorFrame(id: id, PeekError(.unauthorized, "Send refresh only after welcome.")))
            return
        }
        let claims: TechnicianClaims
        do {
            claims = try JWT.verify(token, secret: Array(hub.server.config.jwtSecret.utf8), nowSeconds: hub.server.config.clock.wallMillis() / 1000)
        } catch {
            sendText(Wire.errorFrame(id: id, PeekError(.unauthorized, error.message)))
            return
        }
        guard claims.tenant == current.tenant, claims.subject == current.technician else {
            sendText(Wire.errorFrame(id: id, PeekError(.unauthorized, "That token is not for \(current.technician) of \(current.tenant); refresh with a token for the technician signed in on this connection.")))
            return
        }
        inForce(SignIn(tenant: current.tenant, technician: current.technician, expiresAt: claims.expiresAt))
        var w = JSONWriter()
        w.beginObject(); w.field("type", "refreshed"); w.field("id", id); w.field("exp", Int(claims.expiresAt)); w.endObject()
        sendText(w.bytes)
    }

    override func didReceiveText(_ bytes: [UInt8]) {
        let admitted = admitFrame()
        let frame = ClientFrame.decode(bytes)
        guard admitted else {
            let id: String? = switch frame {
            case .success(let f): f.id
            case .failure(let refusal): refusal.id
            }
            hub.refusedRateLimited += 1
            sendText(Wire.errorFrame(id: id, overRateError))
            return
        }
        switch frame {
        case .failure(let refusal):
            if phase == .awaitingHello {
                refuseUnauthorized(id: refusal.id, "The first frame must be a valid hello; sign in again.")
                return
            }
            sendText(Wire.errorFrame(id: refusal.id, refusal.error))
        case .success(let f):
            if phase == .awaitingHello {
                guard case .hello(let token) = f else {
                    refuseUnauthorized(id: f.id, "The first frame must be hello with a token; sign in first.")
                    return
                }
                phase = .authenticating
                hub.server.engine.submit(.hello(peer, token: token))
                return
            }
            if case .hello = f {
                // Only the first hello means anything; the loop answers the
                // rest itself rather than queue them for the engine.
                sendText(Wire.errorFrame(id: nil, Engine.helloAgainError))
                return
            }
            if case .refresh(let id, let token) = f {
                refresh(id: id, token: token)
                return
            }
            if case .unsubscribe(let ticket) = f { hub.unsubscribe(self, from: ticket) }
            // Charged to the signed-in tenant, whose share of the engine's
            // backlog decides (nil while authenticating: only the global limit).
            let engine = hub.server.engine
            let tenant = signIn?.tenant
            if let refusal = engine.refusal(tenant: tenant) {
                switch f {
                case .command, .subscribe, .sessionInput, .history, .assist, .subscribeQueue:
                    hub.refusedBusy += 1
                    sendText(Wire.errorFrame(id: f.id, refusal))
                    return
                case .composing:
                    // Presence, not conversation: the next keystroke says it again.
                    hub.ephemeralShed += 1
                    return
                case .unsubscribe, .hello, .refresh, .unsubscribeQueue:
                    break  // an unsubscribe keeps the engine's view of the session right (a hello was answered above)
                }
            }
            engine.submit(.frame(peer, f), tenant: tenant)
        }
    }


    /// `id` is the refused frame's, when it had one: an error answering a
    /// frame with an id carries it, before `hello` too (CONTRACT).
    private func refuseUnauthorized(id: String? = nil, _ message: String) {
        sendText(Wire.errorFrame(id: id, PeekError(.unauthorized, message)))
        close(code: CloseCode(4401), reason: "unauthorized")
    }

    override func didReceiveBinary(_ bytes: [UInt8]) {
        close(code: .unsupportedData, reason: "binary frames are not accepted on /v1/ws")
    }

    override func onTick(nowMillis: Int64) {
        if nowMillis >= signInDeadlineMillis && !isClosing {
            signInDeadlineMillis = .max
            refuseUnauthorized(Self.expiredMessage)
            return
        }
        if phase == .awaitingHello, nowMillis - connection.openedAtMillis > Int64(hub.server.config.helloTimeoutSeconds) * 1000 {
            refuseUnauthorized("No hello arrived within \(hub.server.config.helloTimeoutSeconds) seconds; sign in again.")
        }
    }

    override func willClose() {
        for t in Array(tickets.keys) { hub.unsubscribe(self, from: t) }
        if phase != .awaitingHello { hub.server.engine.submit(.disconnected(peer)) }
    }
}

/// `/v1/agent` on the mutual-TLS listener: an RMM agent, known by its
/// certificate's CN and nothing it says.
final class AgentSession: WebSocketSession {
    let commonName: String

    init(hub: LoopHub, connection: Connection, deflate: PerMessageDeflateParameters?, maxMessageBytes: Int, commonName: String) {
        self.commonName = commonName
        super.init(hub: hub, connection: connection, deflate: deflate, maxMessageBytes: maxMessageBytes,
                   framesPerSecond: hub.server.config.agentFramesPerSecond)
        hub.server.engine.submit(.agentConnected(peer, commonName: commonName))
    }

    /// Every agent frame draws on the bucket: a `chat` is a durable write,
    /// and a flooding (or compromised) endpoint must not take the engine's
    /// write capacity from everyone else. Telemetry is coalesced anyway, so a
    /// well-behaved agent never comes near the limit. The frame is dropped
    /// undecoded: an agent's errors carry no `id` to echo.
    override func didReceiveText(_ bytes: [UInt8]) {
        guard admitFrame() else {
            hub.refusedRateLimited += 1
            sendText(Wire.errorFrame(id: nil, overRateError))
            return
        }
        switch AgentFrame.decode(bytes) {
        case .success(.chat(let ticket, _)) where hub.server.engine.isOverloaded:
            hub.refusedBusy += 1
            sendText(Wire.errorFrame(id: nil, PeekError(.rateLimited, "The server is busy; the chat message for \(ticket) was not stored. Send it again in a moment.")))
        case .success(.telemetry) where hub.server.engine.isOverloaded:
            // Telemetry is coalesced to the latest sample anyway; the next
            // one after the rush carries the same news.
            hub.ephemeralShed += 1
        case .success(let frame): hub.server.engine.submit(.agentFrame(peer, frame))
        case .failure(let error): sendText(Wire.errorFrame(id: nil, error))
        }
    }

    override func willClose() {
        hub.server.engine.submit(.agentDisconnected(peer))
    }
}

/// `peekd echo`: every message back, on the same stack, for conformance suites.
final class EchoSession: WebSocketSession {
    override func didReceiveText(_ bytes: [UInt8]) { sendText(bytes) }

    override func didReceiveBinary(_ bytes: [UInt8]) {
        guard let frame = ws.makeMessageFrame(bytes, opcode: .binary, deflate: hub.deflate) else { return }
        connection.send(frame)
    }
}
