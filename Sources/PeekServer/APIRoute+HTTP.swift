import PeekCore
import PeekCrypto
import PeekEngine
import PeekHTTP

/// The API's HTTP side, on the loops: which route a request names, who
/// sent it and how large its body may be. The engine sees only the
/// `APIRequest` these produce.
extension APIRoute {
    static let router: Router<APIRoute> = {
        var r = Router<APIRoute>()
        r.add("POST", "/v1/tenants", .createTenant)
        r.add("POST", "/v1/tenants/{tenant}/technicians", .createTechnician)
        r.add("POST", "/v1/tenants/{tenant}/assets", .createAsset)
        r.add("POST", "/v1/tenants/{tenant}/tickets", .createTicket)
        r.add("PUT", "/v1/tenants/{tenant}/email-account", .putEmailAccount)
        r.add("GET", "/v1/tenants/{tenant}/email-account", .getEmailAccount)
        r.add("PUT", "/v1/tenants/{tenant}/sla-policy", .putSLAPolicy)
        r.add("PUT", "/v1/tenants/{tenant}/assistant", .putAssistant)
        r.add("PUT", "/v1/tenants/{tenant}/summariser", .putSummariser)
        r.add("PUT", "/v1/tenants/{tenant}/assets/{asset}", .putAsset)
        r.add("GET", "/v1/tickets/{id}", .getTicket)
        r.add("PATCH", "/v1/tickets/{id}", .patchTicket)
        r.add("GET", "/v1/tickets/{id}/sends", .ticketSends)
        r.add("POST", "/v1/tickets/{id}/summary", .postSummary)
        r.add("POST", "/v1/tickets/{id}/attachments", .uploadAttachment)
        r.add("GET", "/v1/attachments/{id}", .getAttachment)
        r.add("POST", "/v1/tickets/{id}/attachments/{attachment}/link", .attachmentLink)
        r.add("GET", "/v1/files/{attachment}", .signedDownload)
        r.add("POST", "/v1/inbound-email", .inboundEmail)
        r.add("POST", "/v1/tenants/{tenant}/inbound-email", .tenantInboundEmail)
        r.add("GET", "/v1/me/tickets", .myTickets)
        r.add("GET", "/v1/me/technicians", .myTechnicians)
        r.add("GET", "/v1/demo/technicians", .demoTechnicians)
        r.add("POST", "/v1/demo/sign-in", .demoSignIn)
        return r
    }()

    /// The body limit of routes that take more than the 1 MiB of a JSON call.
    func maxBodyBytes(_ config: ServerConfig) -> Int? {
        switch self {
        case .uploadAttachment: config.maxAttachmentBytes
        case .inboundEmail, .tenantInboundEmail: HTTPConnectionHandler.inboundMailMaxBytes
        default: nil
        }
    }
}

extension APICaller {
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
}

extension RouteParameters {
    /// As the engine's `APIRequest.params` takes them.
    var byName: [String: String] {
        Dictionary(pairs.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
    }
}
