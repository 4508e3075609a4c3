import PeekEngine
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
    /// The API call the current head was admitted as (route, credential).
    private var admitted: (route: APIRoute, params: RouteParameters, caller: APICaller)?
    /// The current request's body is being read into one of the process's
    /// large-body slots (`ServerConfig.maxLargeBodies`). Once the body is
    /// read and the request dispatched, the slot passes to the request
    /// (`LargeBodySlot`); until then closing the connection gives it back.
    private var holdsLargeBody = false
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
    /// The body limit of every request but uploads and inbound mail; a body
    /// over it counts against `ServerConfig.maxLargeBodies`.
    static let defaultMaxBodyBytes = 1 << 20
    /// Past this much unread output, pipelined requests wait until the
    /// client has read: ~40 request bytes buy a 40 kB file, so answering all
    /// of a 256 KiB read at once could queue hundreds of megabytes.
    static let maxUnreadResponseBytes = 1 << 20

    init(hub: LoopHub) {
        self.hub = hub
        parser = HTTPRequestParser(limits: .init(maxBodyBytes: Self.defaultMaxBodyBytes))
        lastActivityMillis = monotonicMillis()
    }

    func connectionDidOpen(_ connection: Connection) {}

    func connection(_ connection: Connection, didReceive bytes: UnsafeRawBufferPointer) {
        // Refused and closing: what the client still sends (the body of a
        // refused upload) is not ours to hold.
        if connection.isClosing { return }
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
                if var refusal = admit(connection, h) ?? declaredBodyRefusal() {
                    // Answered from the head: the body is never read. If one
                    // follows, the connection closes after the answer, since
                    // its bytes would be taken for the next request.
                    head = nil
                    if h.framing != .noBody && h.framing != .contentLength(0) { refusal.closeConnection = true }
                    // `respond` returns here rather than re-enter `process`:
                    // the loop goes on with what is pipelined (or stops at
                    // the close).
                    respond(connection, refusal, head: h)
                    continue
                }
                // Only a head that passed asks the client for its body.
                if h.expectsContinue { connection.send(HTTPResponse.continueBytes) }
            case .body(let piece):
                body.append(contentsOf: piece)
            case .end:
                guard let h = head else { break }
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

    /// Decides an API call from its head alone, before a byte of its body
    /// is read: the route, the credential (the service token compared, a
    /// technician token's signature and expiry verified; whether the
    /// technician exists is the engine's to say), the engine's backlog, and
    /// a slot for a body over 1 MiB. Answers the refusal, or nil (and the
    /// body limit raised for uploads and mail) when the call may go on.
    private func admit(_ connection: Connection, _ h: HTTPRequestHead) -> HTTPResponse? {
        admitted = nil
        guard connection.listenerKind != .mutualTLS, h.path.hasPrefix("/v1/"), h.path != "/v1/ws", h.path != "/v1/agent" else { return nil }
        let config = hub.server.config
        switch APIRoute.router.match(method: h.method, path: h.path) {
        case .matched(let route, let params):
            let caller = APICaller.from(h, route: route, config: config, nowSeconds: config.clock.wallMillis() / 1000)
            if let refusal = caller.refusal(for: route) {
                return .error(401, code: refusal.code.rawValue, message: refusal.message)
            }
            // Past the engine's backlog, API calls are refused like
            // technicians' commands: the back end and the mail gateway
            // retry on 429, and nothing queues without limit.
            if hub.server.engine.isOverloaded {
                hub.refusedBusy += 1
                return HTTPResponse(.busy(Engine.busyError.message))
            }
            if let limit = route.maxBodyBytes(config) {
                parser.overrideBodyLimit(limit)
                // Over the limit: refused before it could take a slot.
                if let refusal = declaredBodyRefusal() { return refusal }
                // A chunked body may grow to the limit: it counts as large.
                if h.isChunked || (h.contentLength ?? 0) > Self.defaultMaxBodyBytes {
                    guard hub.server.takeLargeBodySlot() else {
                        return HTTPResponse(.busy("The server is already receiving \(config.maxLargeBodies) large bodies (over 1 MiB), the most at once; nothing was read. Send it again in a moment."))
                    }
                    holdsLargeBody = true
                }
            }
            admitted = (route, params, caller)
            return nil
        case .methodNotAllowed(let allowed):
            return .methodNotAllowed(allowed: allowed)
        case .notFound:
            return .error(404, code: "not_found", message: "No endpoint \(h.method) \(h.path); see protocol.md.")
        case .invalidPath:
            return .error(400, code: "invalid", message: "The path has a malformed escape.")
        }
    }

    /// 413 from the head when the declared Content-Length passes the body
    /// limit now in force (the route's, once `admit` raised it): answered
    /// before `100 Continue` would ask for the body, and the body is never
    /// read (the connection closes after the answer).
    private func declaredBodyRefusal() -> HTTPResponse? {
        parser.declaredBodyRefusal.map { HTTPResponse(parseError: $0) }
    }

    private func releaseLargeBody() {
        guard holdsLargeBody else { return }
        holdsLargeBody = false
        hub.server.releaseLargeBodySlot()
    }

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
        if let api = admitted {
            admitted = nil
            dispatch(connection, h, route: api.route, params: api.params, caller: api.caller, body: body)
            return
        }
        serveStatic(connection, h)
    }

    /// Hands an admitted call on: inbound mail to a mail worker and uploads
    /// to a file worker, which do the parsing, hashing and writing and then
    /// give the engine a prepared job; everything else to the engine at once.
    private func dispatch(_ connection: Connection, _ h: HTTPRequestHead, route: APIRoute, params: RouteParameters,
                          caller: APICaller, body: [UInt8]) {
        let server = hub.server
        let config = server.config
        var decoded = APIRequest(route: route, params: params.byName, method: h.method, path: h.path,
                                 query: h.queryItems.map { ($0.name, $0.value) },
                                 contentType: h.header("content-type"), body: body, caller: caller)
        if route.takesJSONBody {
            // Parsed here, like a WebSocket frame: the engine gets the value
            // (or nil, answered 400) and none of the bytes. At most 1 MiB.
            decoded.prepared = .json(try? JSONParser.parse(body))
            decoded.body = []
        }
        let request = decoded
        awaitingResponse = true
        // The body now belongs to the request, and so does its slot.
        let slot = holdsLargeBody ? LargeBodySlot(server) : nil
        holdsLargeBody = false
        let reply = makeReply(connection, h, slot: slot)
        let prepare: @Sendable (APIRequest) -> Result<APIRequest, APIResponse>
        let pool: WorkerPool
        /// Whose fair share of the pool the work counts against.
        let share: String?
        switch route {
        case .inboundEmail, .tenantInboundEmail:
            let tenant = route == .tenantInboundEmail ? params["tenant"] : nil
            // The global route's tenant is known only once the mail is
            // parsed: all of it shares one lane (a name no tenant id can be).
            share = tenant ?? "global inbound route"
            pool = server.mailWorkers
            prepare = { r in
                MailIntake.prepare(r.body, tenant: tenant, config: config, claims: server.engine.attachmentClaims, logger: server.engine.logger).map { mail in
                    var prepared = r
                    prepared.body = []
                    prepared.prepared = .inbound(mail)
                    return prepared
                }
            }
        case .uploadAttachment:
            if case .technician(let claims) = caller { share = claims.tenant } else { share = nil }
            pool = server.fileWorkers
            prepare = { r in AttachmentFiles.prepareUpload(r, config: server.engine.config, claims: server.engine.attachmentClaims, logger: server.engine.logger) }
        default:
            server.engine.submit(.api(request, reply: server.replies.register(reply)))
            return
        }
        let engine = server.engine
        let replies = server.replies
        let refusal = pool.submit(tenant: share) {
            let prepared = prepare(request)
            // The prepared job carries no body: the bound is over.
            slot?.release()
            switch prepared {
            case .success(let prepared): engine.submit(.api(prepared, reply: replies.register(reply)))
            case .failure(let refusal): reply(refusal)
            }
        }
        switch refusal {
        case nil: break
        case .full: reply(.busy("The server is already working through \(pool.queueCapacity) such requests, the most it queues; nothing was done. Send it again in a moment."))
        case .overShare: reply(.busy("The server is already working through its fair share of such requests for this organisation, while others wait too; nothing was done. Send it again in a moment."))
        }
    }

    /// The engine's answer, delivered on this loop. An attachment download
    /// comes back as the name of its file; a file worker reads it (neither
    /// the engine nor the loop waits on the disk), then the loop sends it.
    private func makeReply(_ connection: Connection, _ h: HTTPRequestHead, slot: LargeBodySlot?) -> @Sendable (APIResponse) -> Void {
        let loop = hub.loop
        let connectionRef = ConnectionRef(connection)
        let files = hub.server.fileWorkers
        let directory = hub.server.config.attachmentsDirectory
        let claims = hub.server.engine.attachmentClaims
        return { response in
            slot?.release()
            if !response.unlinkFiles.isEmpty {
                let doomed = response.unlinkFiles
                let queued = files.submit { for sha256 in doomed { claims.unlinkIfDoomed(sha256, in: directory) } }
                if !queued { for sha256 in doomed { claims.unlinkIfDoomed(sha256, in: directory, unlinkFile: false) } }
            }
            guard let sha256 = response.attachmentFile else {
                loop.execute { _ in connectionRef.deliver(response, head: h) }
                return
            }
            let queued = files.submit {
                var file = response
                file.attachmentFile = nil
                if let bytes = AttachmentFiles.read(sha256: sha256, in: directory) {
                    file.body = bytes
                } else {
                    file = .error(PeekError(.notFound, "No such attachment."))
                }
                let answer = file
                loop.execute { _ in connectionRef.deliver(answer, head: h) }
            }
            if !queued {
                let busy = APIResponse.busy("The server is already reading \(files.queueCapacity) files, the most it queues. Send it again in a moment.")
                loop.execute { _ in connectionRef.deliver(busy, head: h) }
            }
        }
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
        releaseLargeBody()
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

    func connectionDidClose(_ connection: Connection) { releaseLargeBody() }
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
        handler.respond(c, HTTPResponse(response), head: head)
    }
}

extension HTTPResponse {
    init(_ response: APIResponse) {
        self.init(status: response.status, headers: ["Content-Type": response.contentType], body: response.body)
        for (name, value) in response.headers { headers.add(name: name, value: value) }
    }
}
