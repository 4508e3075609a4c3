import PeekCore
import PeekHTTP
import PeekNet
import PeekWebSocket

/// The first handler of every connection: HTTP/1.1 with keep-alive, until
/// an upgrade hands the connection to a WebSocket session. Requests are
/// answered one at a time, in order: while the engine works on one API
/// call, pipelined bytes wait in the parser.
final class HTTPConnectionHandler: ConnectionHandler {
    unowned let hub: LoopHub
    private var parser: HTTPRequestParser
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var awaitingResponse = false
    private var closeAfterResponse = false
    private var lastActivityMillis: Int64
    /// When the current request's first byte came: a client dripping a byte
    /// at a time still gets its 408 on time.
    private var requestStartedMillis: Int64 = 0

    /// Keep-alive connections idle this long are closed; a request that
    /// has started must finish within `requestTimeout` (else 408).
    static let idleTimeoutMillis: Int64 = 60_000
    static let requestTimeoutMillis: Int64 = 30_000
    /// Bodies of the mail gateway's raw messages may be larger than JSON calls.
    static let inboundMailMaxBytes = 25 * 1024 * 1024
    /// Past this much unread output, pipelined requests wait until the
    /// client has read: ~40 request bytes buy a 40 kB file, so answering all
    /// of a 256 KiB read at once could queue hundreds of megabytes.
    static let maxUnreadResponseBytes = 1 << 20

    init(hub: LoopHub) {
        self.hub = hub
        parser = HTTPRequestParser(limits: .init(maxBodyBytes: 1 << 20))
        lastActivityMillis = monotonicMillis()
    }

    func connectionDidOpen(_ connection: Connection) {}

    func connection(_ connection: Connection, didReceive bytes: UnsafeRawBufferPointer) {
        lastActivityMillis = monotonicMillis()
        if !parser.isMidRequest { requestStartedMillis = lastActivityMillis }
        parser.append(bytes)
        // While an answer is pending (the engine is working, or the client
        // has not read what it asked for) pipelined input waits in the
        // parser. A client that pipelines past this bound is not waiting
        // for answers; it is filling our memory: drop it.
        if (awaitingResponse || connection.onDrained != nil) && parser.bufferedByteCount > Self.maxPipelinedBytes {
            connection.close()
            return
        }
        process(connection)
    }

    /// Input buffered behind a pending answer before the connection is dropped.
    static let maxPipelinedBytes = 1 << 20

    /// `process` is running further up this thread's stack. An answer given
    /// at once (`respond` called from inside `handle`) then returns to that
    /// loop instead of calling `process` again: the loop takes the next
    /// pipelined request, so the stack stays one request deep however many
    /// are pipelined (5,000 nested calls overflowed it).
    private var processing = false

    private func process(_ connection: Connection) {
        guard !processing else { return }
        processing = true
        defer { processing = false }
        while !awaitingResponse && !connection.isClosing && !connection.isClosed && connection.handler === self {
            if connection.bufferedBytes > Self.maxUnreadResponseBytes {
                connection.onDrained = { [weak self, unowned connection] in self?.process(connection) }
                return
            }
            let result: HTTPParseResult
            do { result = try parser.next() } catch {
                respond(connection, HTTPResponse(parseError: error), head: nil)
                return
            }
            switch result {
            case .needMoreData:
                return
            case .head(let h):
                head = h
                body = []
                if h.isUpgrade && isWebSocketPath(h.path, connection: connection) {
                    upgrade(connection, h)
                    return
                }
                if h.method == "POST" || h.method == "PUT" {
                    switch APIRoute.router.match(method: h.method, path: h.path) {
                    case .matched(.uploadAttachment, _): parser.overrideBodyLimit(hub.server.config.maxAttachmentBytes)
                    case .matched(.inboundEmail, _): parser.overrideBodyLimit(Self.inboundMailMaxBytes)
                    default: break
                    }
                }
                if h.expectsContinue { connection.send(HTTPResponse.continueBytes) }
            case .body(let piece):
                body.append(contentsOf: piece)
            case .end:
                guard let h = head else { return }
                head = nil
                handle(connection, h, body: body)
                body = []
            }
        }
    }

    private func isWebSocketPath(_ path: String, connection: Connection) -> Bool {
        hub.server.echoMode || path == "/v1/ws" || path == "/v1/agent"
    }

    // MARK: Requests

    private func handle(_ connection: Connection, _ h: HTTPRequestHead, body: [UInt8]) {
        if connection.listenerKind == .mutualTLS && h.path != "/healthz" && h.path != "/v1/agent" {
            // The agent listener is for agents: no technician socket, API or
            // files there, so an agent certificate opens nothing else.
            respond(connection, .error(404, code: "not_found", message: "The agent listener serves only /v1/agent."), head: h)
            return
        }
        if h.path == "/healthz" && (h.method == "GET" || h.method == "HEAD") {
            respond(connection, .json(200, Array(#"{"status":"ok"}"#.utf8)), head: h)
            return
        }
        if h.path == "/metrics" && h.method == "GET" {
            var r = HTTPResponse.text(200, hub.server.metricsText())
            r.headers.set(name: "Content-Type", value: "text/plain; version=0.0.4")
            respond(connection, r, head: h)
            return
        }
        if h.path == "/v1/ws" || h.path == "/v1/agent" {
            respond(connection, .error(426, code: "upgrade_required", message: "This endpoint only speaks WebSocket; send an upgrade request."), head: h)
            return
        }
        if h.path.hasPrefix("/v1/") {
            switch APIRoute.router.match(method: h.method, path: h.path) {
            case .matched(let route, let params):
                // Past the engine's backlog, API calls are refused like
                // technicians' commands: the back end and the mail gateway
                // retry on 429, and nothing queues without limit.
                if hub.server.engine.isOverloaded {
                    let refusal = Engine.busyError
                    var busy = HTTPResponse.error(refusal.code.httpStatus, code: refusal.code.rawValue, message: refusal.message)
                    busy.headers.set(name: "Retry-After", value: "1")
                    respond(connection, busy, head: h)
                    return
                }
                let request = APIRequest(route: route, params: params, method: h.method, path: h.path,
                                         query: h.queryItems.map { ($0.name, $0.value) }, authorization: h.header("authorization"),
                                         contentType: h.header("content-type"), body: body)
                awaitingResponse = true
                let loop = hub.loop
                let connectionRef = ConnectionRef(connection)
                hub.server.engine.submit(.api(request, reply: { response in
                    loop.execute { _ in connectionRef.deliver(response, head: h) }
                }))
            case .methodNotAllowed(let allowed):
                respond(connection, .methodNotAllowed(allowed: allowed), head: h)
            case .notFound:
                respond(connection, .error(404, code: "not_found", message: "No endpoint \(h.method) \(h.path); see protocol.md."), head: h)
            case .invalidPath:
                respond(connection, .error(400, code: "invalid", message: "The path has a malformed escape."), head: h)
            }
            return
        }
        serveStatic(connection, h)
    }

    private func serveStatic(_ connection: Connection, _ h: HTTPRequestHead) {
        guard h.method == "GET" || h.method == "HEAD" else {
            respond(connection, .methodNotAllowed(allowed: ["GET", "HEAD"]), head: h)
            return
        }
        guard let relative = try? StaticFiles.relativePath(for: h.path), let file = hub.server.staticFiles.file(relative) else {
            respond(connection, .error(404, code: "not_found", message: "No such file."), head: h)
            return
        }
        // The 304 carries them too: a cache updates the stored headers from it.
        var r = h.isNotModified(etag: file.etag) ? .notModified(etag: file.etag)
            : HTTPResponse(status: 200, headers: ["Content-Type": file.contentType, "ETag": file.etag, "Cache-Control": "no-cache"], body: file.bytes)
        for (name, value) in StaticFiles.securityHeaders(host: h.header("host")) { r.headers.set(name: name, value: value) }
        respond(connection, r, head: h)
    }

    /// Writes a response and, unless it closes, goes on with pipelined input
    /// (by returning to the `process` loop when called from it).
    func respond(_ connection: Connection, _ response: HTTPResponse, head h: HTTPRequestHead?) {
        guard !connection.isClosed else { return }
        var out: [UInt8] = []
        let close: Bool
        if let h {
            close = response.encode(into: &out, for: h)
        } else {
            response.encode(into: &out)
            close = true
        }
        connection.send(out)
        awaitingResponse = false
        if close || closeAfterResponse {
            connection.closeAfterFlush()
            return
        }
        process(connection)
    }

    // MARK: Upgrade

    private func upgrade(_ connection: Connection, _ h: HTTPRequestHead) {
        let config = hub.server.config
        let acceptance: WebSocketHandshake.Acceptance
        do {
            let version: (Int, Int) = h.version == .http1_0 ? (1, 0) : (1, 1)
            acceptance = try WebSocketHandshake.validate(method: h.method, httpVersion: version,
                                                         headers: h.headers.fields.map { ($0.name, $0.value) })
        } catch {
            var r = HTTPResponse.error(error.status, code: "bad_upgrade", message: error.message, closeConnection: true)
            for header in error.headers { r.headers.add(name: header.name, value: header.value) }
            respond(connection, r, head: h)
            return
        }
        if hub.server.echoMode {
            finishUpgrade(connection, acceptance) {
                EchoSession(hub: hub, connection: connection, deflate: acceptance.deflate, maxMessageBytes: config.maxMessageBytes,
                            framesPerSecond: config.framesPerSecond)
            }
            return
        }
        if h.path == "/v1/agent" || connection.listenerKind == .mutualTLS {
            guard h.path == "/v1/agent", connection.listenerKind == .mutualTLS, let identity = connection.peerIdentity, let cn = identity.commonName else {
                respond(connection, .error(403, code: "forbidden", message: "Agents connect to the mutual-TLS listener with a client certificate.", closeConnection: true), head: h)
                return
            }
            finishUpgrade(connection, acceptance) {
                AgentSession(hub: hub, connection: connection, deflate: acceptance.deflate, maxMessageBytes: config.maxMessageBytes, commonName: cn)
            }
            return
        }
        if let origin = acceptance.origin, !originAllowed(origin, host: h.header("host")) {
            respond(connection, .error(403, code: "forbidden", message: "Origin \(origin) is not allowed to open /v1/ws; add it with --allowed-origin.", closeConnection: true), head: h)
            return
        }
        finishUpgrade(connection, acceptance) {
            TechnicianSession(hub: hub, connection: connection, deflate: acceptance.deflate, maxMessageBytes: config.maxMessageBytes,
                              framesPerSecond: config.framesPerSecond)
        }
    }

    /// With no allow-list, only the page's own origin (same host) may
    /// connect; with one, exactly its entries.
    private func originAllowed(_ origin: String, host: String?) -> Bool {
        let allowed = hub.server.config.allowedOrigins
        if !allowed.isEmpty { return allowed.contains(origin) }
        guard let host else { return false }
        return origin == "http://" + host || origin == "https://" + host
    }

    private func finishUpgrade(_ connection: Connection, _ acceptance: WebSocketHandshake.Acceptance, make: () -> WebSocketSession) {
        connection.send(acceptance.responseBytes())
        let leftover = parser.takeUnconsumedBytes()
        let session = make()
        connection.handler = session
        if !leftover.isEmpty { leftover.withUnsafeBytes { session.connection(connection, didReceive: $0) } }
    }

    // MARK: Lifecycle

    func connectionDidReadEOF(_ connection: Connection) {
        // A client may half-close after its last request; answer it first.
        if awaitingResponse {
            closeAfterResponse = true
            connection.answersAfterEOF = true
        }
    }

    func connectionTick(_ connection: Connection, nowMillis: Int64) {
        if awaitingResponse { return }
        if parser.isMidRequest && nowMillis - requestStartedMillis > Self.requestTimeoutMillis {
            respond(connection, .error(408, code: "timeout", message: "The request was not completed in time.", closeConnection: true), head: nil)
        } else if nowMillis - lastActivityMillis > Self.idleTimeoutMillis {
            connection.closeAfterFlush()
        }
    }

    func connectionShutdown(_ connection: Connection) {
        if !awaitingResponse { connection.closeAfterFlush() } else { closeAfterResponse = true }
    }

    func connectionDidClose(_ connection: Connection) {}
}

/// Lets an engine reply find its connection on the loop without the
/// engine holding a loop-owned object: the reference is only dereferenced
/// back on the loop.
final class ConnectionRef: @unchecked Sendable {
    // @unchecked: created and used on the owning loop only; other threads just carry it.
    private weak var connection: Connection?
    init(_ c: Connection) { connection = c }

    func deliver(_ response: APIResponse, head: HTTPRequestHead) {
        guard let c = connection, !c.isClosed, let handler = c.handler as? HTTPConnectionHandler else { return }
        var r = HTTPResponse(status: response.status, headers: ["Content-Type": response.contentType], body: response.body)
        for (name, value) in response.headers { r.headers.add(name: name, value: value) }
        handler.respond(c, r, head: head)
    }
}
