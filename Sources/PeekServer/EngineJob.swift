import PeekCore
import PeekCrypto
import PeekTLS
import PeekHTTP

/// Work handed to the engine thread. Everything durable, and everything
/// whose order matters against durable changes (subscribing, presence),
/// goes through this one queue, so it is serialised without locks.
enum EngineJob: Sendable {
    case hello(Peer, token: String)
    case frame(Peer, ClientFrame)
    case disconnected(Peer)
    case api(APIRequest, reply: @Sendable (APIResponse) -> Void)
    case agentConnected(Peer, commonName: String)
    case agentFrame(Peer, AgentFrame)
    case agentDisconnected(Peer)
    case mailFinished(MailJob, MailOutcome)
    case run(@Sendable (Engine) -> Void)

    var isMailOutcome: Bool { if case .mailFinished = self { true } else { false } }
}

/// A back-end API call, already parsed by the loop.
struct APIRequest: Sendable {
    var route: APIRoute
    var params: RouteParameters
    var method: String
    var path: String
    var query: [(String, String)]
    var contentType: String?
    var body: [UInt8]
    /// Who sent it, as the loop found from the head (`APICaller.from`).
    var caller: APICaller = .anonymous(reason: nil)
    /// The body as a worker left it for the engine: a written upload, or a
    /// parsed inbound message. The engine then does no parsing or file I/O.
    var prepared: PreparedBody?
}

enum PreparedBody: Sendable {
    case upload(StoredFile)
    case inbound(InboundDelivery)
}

/// The credential of an API call, checked on the loop from the head alone:
/// the service token is compared there, a technician token's signature and
/// expiry verified there (pure). Whether the technician and tenant exist is
/// the engine's to say, since only it reads the store.
enum APICaller: Sendable, Equatable {
    /// No credential, or one that failed; `reason` says why when one was sent.
    case anonymous(reason: String?)
    case service
    case technician(TechnicianClaims)

    static func from(_ head: HTTPRequestHead, route: APIRoute, config: ServerConfig, nowSeconds: Int64) -> APICaller {
        var token = head.header("authorization").flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
        // Browsers follow plain links (an attachment, a list) with the
        // technician token as ?token=.
        if token == nil, route.access != .service { token = head.queryItems.first { $0.name == "token" }?.value }
        guard let token, !token.isEmpty else { return .anonymous(reason: nil) }
        // An empty configured token (possible only in demo mode) matches nothing.
        if !config.serviceToken.isEmpty, Crypto.constantTimeEquals(Array(token.utf8), Array(config.serviceToken.utf8)) { return .service }
        do {
            return .technician(try JWT.verify(token, secret: Array(config.jwtSecret.utf8), nowSeconds: nowSeconds))
        } catch {
            return .anonymous(reason: error.message)
        }
    }

    /// Why `route` refuses this caller (401), or nil when it may go on.
    func refusal(for route: APIRoute) -> PeekError? {
        switch (route.access, self) {
        case (.anyone, _), (.service, .service), (.technician, .technician), (.technicianOrService, .service), (.technicianOrService, .technician):
            return nil
        case (.service, _):
            return PeekError(.unauthorized, "This API needs \"Authorization: Bearer <service token>\".")
        case (.technician, .anonymous(let reason?)), (.technicianOrService, .anonymous(let reason?)):
            return PeekError(.unauthorized, reason)
        case (.technician, _):
            return PeekError(.unauthorized, "Sign in first: send \"Authorization: Bearer <technician token>\".")
        case (.technicianOrService, _):
            return PeekError(.unauthorized, route == .getAttachment ? "Sign in to download attachments."
                                                                   : "Send a service token or a technician token.")
        }
    }
}

struct APIResponse: Sendable {
    var status: Int
    var body: [UInt8]
    var contentType: String = "application/json"
    var headers: [(String, String)] = []
    /// The body is this attachment file (its SHA-256), read by a file
    /// worker after the engine answered: the engine does no file I/O.
    var attachmentFile: String?
    /// Attachment files (SHA-256) a refused request brought and no row
    /// names: a file worker deletes them after the engine answered.
    var unlinkFiles: [String] = []

    static func json(_ status: Int, _ body: [UInt8]) -> APIResponse { APIResponse(status: status, body: body) }
    static func error(_ e: PeekError) -> APIResponse { APIResponse(status: e.code.httpStatus, body: Wire.errorBody(e)) }
    /// 429 `rate_limited` with Retry-After: nothing was done; send it again.
    static func busy(_ message: String) -> APIResponse {
        APIResponse(status: 429, body: Wire.errorBody(PeekError(.rateLimited, message)), headers: [("Retry-After", "1")])
    }
}

/// The back-end and browser API, matched on the loop by `PeekHTTP.Router`
/// and executed on the engine thread.
enum APIRoute: Sendable {
    case createTenant, createTechnician, createAsset, createTicket
    case putEmailAccount, getEmailAccount, putSLAPolicy
    case getTicket, patchTicket, ticketSends, postSummary, uploadAttachment, getAttachment
    case inboundEmail, tenantInboundEmail
    case myTickets, myTechnicians
    case demoTechnicians, demoSignIn

    static let router: Router<APIRoute> = {
        var r = Router<APIRoute>()
        r.add("POST", "/v1/tenants", .createTenant)
        r.add("POST", "/v1/tenants/{tenant}/technicians", .createTechnician)
        r.add("POST", "/v1/tenants/{tenant}/assets", .createAsset)
        r.add("POST", "/v1/tenants/{tenant}/tickets", .createTicket)
        r.add("PUT", "/v1/tenants/{tenant}/email-account", .putEmailAccount)
        r.add("GET", "/v1/tenants/{tenant}/email-account", .getEmailAccount)
        r.add("PUT", "/v1/tenants/{tenant}/sla-policy", .putSLAPolicy)
        r.add("GET", "/v1/tickets/{id}", .getTicket)
        r.add("PATCH", "/v1/tickets/{id}", .patchTicket)
        r.add("GET", "/v1/tickets/{id}/sends", .ticketSends)
        r.add("POST", "/v1/tickets/{id}/summary", .postSummary)
        r.add("POST", "/v1/tickets/{id}/attachments", .uploadAttachment)
        r.add("GET", "/v1/attachments/{id}", .getAttachment)
        r.add("POST", "/v1/inbound-email", .inboundEmail)
        r.add("POST", "/v1/tenants/{tenant}/inbound-email", .tenantInboundEmail)
        r.add("GET", "/v1/me/tickets", .myTickets)
        r.add("GET", "/v1/me/technicians", .myTechnicians)
        r.add("GET", "/v1/demo/technicians", .demoTechnicians)
        r.add("POST", "/v1/demo/sign-in", .demoSignIn)
        return r
    }()

    enum Access: Sendable { case anyone, service, technician, technicianOrService }

    /// Who may call the route; checked on the loop from the head.
    var access: Access {
        switch self {
        case .demoTechnicians, .demoSignIn: .anyone   // the engine answers 404 without --demo
        case .myTickets, .myTechnicians: .technician
        case .uploadAttachment, .getAttachment: .technicianOrService
        default: .service
        }
    }

    /// The body limit of routes that take more than the 1 MiB of a JSON call.
    func maxBodyBytes(_ config: ServerConfig) -> Int? {
        switch self {
        case .uploadAttachment: config.maxAttachmentBytes
        case .inboundEmail, .tenantInboundEmail: HTTPConnectionHandler.inboundMailMaxBytes
        default: nil
        }
    }
}

/// A worker's `Result` fails with the answer to give in place of going on
/// (a 422 for a refused message, a 500 for a file that could not be written).
extension APIResponse: Error {}
