import PeekCore
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
    var authorization: String?
    var contentType: String?
    var body: [UInt8]
}

struct APIResponse: Sendable {
    var status: Int
    var body: [UInt8]
    var contentType: String = "application/json"
    var headers: [(String, String)] = []

    static func json(_ status: Int, _ body: [UInt8]) -> APIResponse { APIResponse(status: status, body: body) }
    static func error(_ e: PeekError) -> APIResponse { APIResponse(status: e.code.httpStatus, body: Wire.errorBody(e)) }
}

/// A frame an RMM agent sends.
enum AgentFrame: Equatable, Sendable {
    case chat(ticket: String, body: String)
    case telemetry(cpu: Double, ram: Double, disk: Double)
    case consent(session: String, accept: Bool)

    static func decode(_ bytes: [UInt8]) -> Result<AgentFrame, PeekError> {
        guard let v = try? JSONParser.parse(bytes), case .object = v else {
            return .failure(PeekError(.invalid, "The frame is not a JSON object."))
        }
        switch v["type"]?.stringValue {
        case "chat":
            guard let t = v["ticket"]?.stringValue, let b = v["body"]?.stringValue, !b.isEmpty, b.utf8.count <= CommandRequest.maxBodyBytes else {
                return .failure(PeekError(.invalid, "\"chat\" needs a string \"ticket\" and a non-empty \"body\" of at most 64 KiB."))
            }
            guard Identifier.isValid(t) else { return .failure(PeekError(.invalid, Identifier.refusal("\"ticket\""))) }
            return .success(.chat(ticket: t, body: b))
        case "telemetry":
            guard let c = v["cpu"]?.doubleValue, let r = v["ram"]?.doubleValue, let d = v["disk"]?.doubleValue,
                  [c, r, d].allSatisfy({ $0 >= 0 && $0 <= 100 }) else {
                return .failure(PeekError(.invalid, "\"telemetry\" needs numbers \"cpu\", \"ram\" and \"disk\" between 0 and 100 (percent)."))
            }
            return .success(.telemetry(cpu: c, ram: r, disk: d))
        case "consent":
            guard let s = v["session"]?.stringValue, let d = v["decision"]?.stringValue, d == "accept" || d == "deny" else {
                return .failure(PeekError(.invalid, "\"consent\" needs a string \"session\" and \"decision\": \"accept\" or \"deny\"."))
            }
            guard Identifier.isValid(s) else { return .failure(PeekError(.invalid, Identifier.refusal("\"session\""))) }
            return .success(.consent(session: s, accept: d == "accept"))
        case let t?:
            return .failure(PeekError(.invalid, "Unknown frame type \"\(t)\"; agents send chat, telemetry or consent."))
        case nil:
            return .failure(PeekError(.invalid, "A frame needs a string \"type\"."))
        }
    }
}

/// The back-end and browser API, matched on the loop by `PeekHTTP.Router`
/// and executed on the engine thread.
enum APIRoute: Sendable {
    case createTenant, createTechnician, createAsset, createTicket
    case putEmailAccount, getEmailAccount, putSLAPolicy
    case getTicket, ticketSends, postSummary, uploadAttachment, getAttachment
    case inboundEmail
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
        r.add("GET", "/v1/tickets/{id}/sends", .ticketSends)
        r.add("POST", "/v1/tickets/{id}/summary", .postSummary)
        r.add("POST", "/v1/tickets/{id}/attachments", .uploadAttachment)
        r.add("GET", "/v1/attachments/{id}", .getAttachment)
        r.add("POST", "/v1/inbound-email", .inboundEmail)
        r.add("GET", "/v1/me/tickets", .myTickets)
        r.add("GET", "/v1/me/technicians", .myTechnicians)
        r.add("GET", "/v1/demo/technicians", .demoTechnicians)
        r.add("POST", "/v1/demo/sign-in", .demoSignIn)
        return r
    }()
}
