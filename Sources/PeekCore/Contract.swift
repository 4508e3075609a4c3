/// The wire vocabulary of ../shared/CONTRACT.md, mapped once. Every string
/// that crosses the wire is spelled here and nowhere else.

public enum ErrorCode: String, Sendable, CaseIterable {
    case unauthorized, forbidden, invalid, conflict, stale
    case `internal`
    case notFound = "not_found"
    case agentOffline = "agent_offline"
    case noEmailAccount = "no_email_account"
    case noContactEmail = "no_contact_email"
    case dispatchFailed = "dispatch_failed"
    case rateLimited = "rate_limited"
    case tooLarge = "too_large"
    case noAssistant = "no_assistant"
    case assistFailed = "assist_failed"

    /// The HTTP status the back-end API answers this code with.
    public var httpStatus: Int {
        switch self {
        case .unauthorized: 401
        case .forbidden: 403
        case .notFound: 404
        case .invalid: 400
        case .conflict, .stale: 409
        case .rateLimited: 429
        case .tooLarge: 413
        case .agentOffline, .dispatchFailed, .noEmailAccount, .noContactEmail, .noAssistant: 422
        case .assistFailed: 502
        case .internal: 500
        }
    }
}

/// An error a person can act on: the code for programs, the sentence for people.
public struct PeekError: Error, Equatable, Sendable {
    public var code: ErrorCode
    public var message: String
    /// For `stale`: the most recent messages the sender had not seen, as
    /// encoded JSON objects, and how many there are in all.
    public var missed: [[UInt8]]?
    public var missedTotal: Int?

    public init(_ code: ErrorCode, _ message: String, missed: [[UInt8]]? = nil, missedTotal: Int? = nil) {
        self.code = code
        self.message = message
        self.missed = missed
        self.missedTotal = missedTotal
    }
}

public enum DeltaKind: String, Sendable {
    case messageCreated = "message.created"
    case ticketUpdated = "ticket.updated"
    case sessionStatus = "session.status"
    case summaryUpdated = "summary.updated"
    case timeUpdated = "time.updated"
    case slaBreached = "sla.breached"
    case slaTick = "sla.tick"
    case assetTelemetry = "asset.telemetry"
    case presenceUpdated = "presence.updated"
    case agentStatus = "agent.status"
    case sessionOutput = "session.output"
    case assetPosture = "asset.posture"
    case summaryPending = "summary.pending"

    public var isDurable: Bool {
        switch self {
        case .slaTick, .assetTelemetry, .presenceUpdated, .agentStatus, .sessionOutput, .assetPosture, .summaryPending: false
        default: true
        }
    }
}

public enum Channel: String, Sendable {
    case customer, technician, system
    case internalNote = "internal_note"
}

public enum Via: String, Sendable {
    case email, web, system
    case agentMTLS = "agent_mtls"
}

public enum TicketStatus: String, Sendable, CaseIterable {
    case new, open, resolved, closed
    case inProgress = "in_progress"
    case waitingOnCustomer = "waiting_on_customer"

    /// Resolved and closed tickets stop the resolution clock for good.
    public var stopsResolutionClock: Bool { self == .resolved || self == .closed }
    /// Waiting on the customer pauses the resolution clock (protocol.md, SLA).
    public var pausesResolutionClock: Bool { self == .waitingOnCustomer }
}

public enum Priority: String, Sendable, CaseIterable {
    case low, normal, high, urgent
}

/// What a remote session is for (`start_session` `args.kind`): the end
/// user consents to one kind, and the agent is told which in `consent_request`.
public enum SessionKind: String, Sendable, CaseIterable {
    case recording, desktop, shell

    /// How system events and the end user's prompt name the session.
    public var phrase: String {
        switch self {
        case .recording: "recorded session"
        case .desktop: "remote desktop session"
        case .shell: "remote shell session"
        }
    }
}

public enum SessionStatus: String, Sendable {
    case awaitingConsent = "awaiting_consent"
    case active, denied, expired, ended

    public var isPending: Bool { self == .awaitingConsent }
    public var isOpen: Bool { self == .awaitingConsent || self == .active }
}

public enum CommandOp: String, Sendable, CaseIterable {
    case reply, note, assign
    case setStatus = "set_status"
    case setPriority = "set_priority"
    case takeOwnership = "take_ownership"
    case startSession = "start_session"
    case endSession = "end_session"
    case timerStart = "timer_start"
    case timerStop = "timer_stop"
    case timeAdd = "time_add"
    case sessionHandover = "session_handover"
}

public enum ComposingMode: String, Sendable {
    case reply, note
}
