import PeekCore
import PeekCrypto
import PeekMail

/// Work handed to the engine thread. Everything durable, and everything
/// whose order matters against durable changes (subscribing, presence),
/// goes through this one queue, so it is serialised without locks.
package enum EngineJob: Sendable {
    case hello(Peer, token: String)
    case frame(Peer, ClientFrame)
    case disconnected(Peer)
    case api(APIRequest, reply: APIReplyID)
    case agentConnected(Peer, commonName: String)
    case agentFrame(Peer, AgentFrame)
    case agentDisconnected(Peer)
    case mailFinished(MailJob, MailOutcome)
    case run(@Sendable (Engine) -> Void)

    package var isMailOutcome: Bool { if case .mailFinished = self { true } else { false } }
}

/// Who a signed-in connection is, and until when (the token's `exp`, Unix
/// seconds). The engine hands it over with `welcome`; `refresh` moves `expiresAt`.
package struct SignIn: Sendable {
    package var tenant: String
    package var technician: String
    package var expiresAt: Int64

    package init(tenant: String, technician: String, expiresAt: Int64) {
        self.tenant = tenant
        self.technician = technician
        self.expiresAt = expiresAt
    }
}

/// A back-end API call, already parsed by the loop.
package struct APIRequest: Sendable {
    package var route: APIRoute
    /// The path's parameters by name (`{tenant}`, `{id}`).
    package var params: [String: String]
    package var method: String
    package var path: String
    package var query: [(String, String)]
    package var contentType: String?
    package var body: [UInt8]
    /// Who sent it, as the loop found from the head (`APICaller.from`).
    package var caller: APICaller = .anonymous(reason: nil)
    /// The body as a worker left it for the engine: a written upload, or a
    /// parsed inbound message. The engine then does no parsing or file I/O.
    package var prepared: PreparedBody?

    package init(route: APIRoute, params: [String: String], method: String, path: String, query: [(String, String)],
                 contentType: String?, body: [UInt8], caller: APICaller = .anonymous(reason: nil), prepared: PreparedBody? = nil) {
        self.route = route
        self.params = params
        self.method = method
        self.path = path
        self.query = query
        self.contentType = contentType
        self.body = body
        self.caller = caller
        self.prepared = prepared
    }
}

package enum PreparedBody: Sendable {
    /// A JSON body, parsed on the loop (`APIRoute.takesJSONBody`); nil
    /// when it was not JSON. The engine parses no request bytes.
    case json(JSONValue?)
    case upload(StoredFile)
    case inbound(InboundDelivery)
}

/// An inbound message as the engine receives it: parsed, size-checked, its
/// attachment files already written and synced by a mail worker. The
/// engine only threads it and stores the rows.
package struct InboundDelivery: Sendable {
    /// The tenant of `POST /v1/tenants/{tenant}/inbound-email`; nil for the
    /// global route, which must find the tenant among the recipients.
    package var tenant: String?
    package var from: MailAddress
    /// Bare (no angle brackets), or nil when the mail has none usable.
    package var messageID: String?
    package var ticketNumber: Int?
    package var referencedMessageIDs: [String]
    /// To, Cc, Delivered-To and X-Original-To addresses, lower case.
    package var recipients: [String]
    package var body: String
    package var files: [StoredFile]

    package init(tenant: String?, from: MailAddress, messageID: String?, ticketNumber: Int?, referencedMessageIDs: [String],
                 recipients: [String], body: String, files: [StoredFile]) {
        self.tenant = tenant
        self.from = from
        self.messageID = messageID
        self.ticketNumber = ticketNumber
        self.referencedMessageIDs = referencedMessageIDs
        self.recipients = recipients
        self.body = body
        self.files = files
    }
}

/// A file a worker hashed, wrote and synced (file and directory) under its
/// digest; the engine only inserts the row that names it.
package struct StoredFile: Sendable {
    package var sha256: String
    package var size: Int
    package var filename: String
    package var contentType: String
}

/// The credential of an API call, checked on the loop from the head alone:
/// the service token is compared there, a technician token's signature and
/// expiry verified there (pure). Whether the technician and tenant exist is
/// the engine's to say, since only it reads the store.
package enum APICaller: Sendable, Equatable {
    /// No credential, or one that failed; `reason` says why when one was sent.
    case anonymous(reason: String?)
    case service
    case technician(TechnicianClaims)

    /// Why `route` refuses this caller (401), or nil when it may go on.
    package func refusal(for route: APIRoute) -> PeekError? {
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

package struct APIResponse: Sendable {
    package var status: Int
    package var body: [UInt8]
    package var contentType: String = "application/json"
    package var headers: [(String, String)] = []
    /// The body is this attachment file (its SHA-256), read by a file
    /// worker after the engine answered: the engine does no file I/O.
    package var attachmentFile: String?
    /// Attachment files (SHA-256) a refused request brought and no row
    /// names: a file worker deletes them after the engine answered.
    package var unlinkFiles: [String] = []

    package static func json(_ status: Int, _ body: [UInt8]) -> APIResponse { APIResponse(status: status, body: body) }
    package static func error(_ e: PeekError) -> APIResponse { APIResponse(status: e.code.httpStatus, body: Wire.errorBody(e)) }
    /// 429 `rate_limited` with Retry-After: nothing was done; send it again.
    package static func busy(_ message: String) -> APIResponse {
        APIResponse(status: 429, body: Wire.errorBody(PeekError(.rateLimited, message)), headers: [("Retry-After", "1")])
    }

    package init(status: Int, body: [UInt8], contentType: String = "application/json", headers: [(String, String)] = [],
                 attachmentFile: String? = nil, unlinkFiles: [String] = []) {
        self.status = status
        self.body = body
        self.contentType = contentType
        self.headers = headers
        self.attachmentFile = attachmentFile
        self.unlinkFiles = unlinkFiles
    }
}

/// The back-end and browser API, matched on the loop by `PeekHTTP.Router`
/// and executed on the engine thread.
package enum APIRoute: Sendable {
    case createTenant, createTechnician, createAsset, createTicket
    case putEmailAccount, getEmailAccount, putSLAPolicy
    case getTicket, patchTicket, ticketSends, postSummary, uploadAttachment, getAttachment
    case attachmentLink, signedDownload
    case inboundEmail, tenantInboundEmail
    case myTickets, myTechnicians
    case demoTechnicians, demoSignIn
    case putAssistant, putSummariser, putAsset

    package enum Access: Sendable { case anyone, service, technician, technicianOrService }

    /// Whether the route's body is a JSON object: parsed where it arrives
    /// (the loop), so the engine thread reads a `JSONValue`, never bytes.
    package var takesJSONBody: Bool {
        switch self {
        case .createTenant, .createTechnician, .createAsset, .createTicket, .putEmailAccount, .putSLAPolicy,
             .patchTicket, .postSummary, .demoSignIn, .putAssistant, .putSummariser, .putAsset: true
        default: false
        }
    }

    /// Who may call the route; checked on the loop from the head.
    package var access: Access {
        switch self {
        case .demoTechnicians, .demoSignIn: .anyone   // the engine answers 404 without --demo
        case .signedDownload: .anyone                 // the link's signature is the credential
        case .myTickets, .myTechnicians: .technician
        case .uploadAttachment, .getAttachment, .attachmentLink, .ticketSends: .technicianOrService
        default: .service
        }
    }
}

/// A worker's `Result` fails with the answer to give in place of going on
/// (a 422 for a refused message, a 500 for a file that could not be written).
extension APIResponse: Error {}
