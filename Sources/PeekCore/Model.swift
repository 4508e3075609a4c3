/// The Peek's domain, as plain values. Times are Unix milliseconds (UTC);
/// they become RFC 3339 strings only at the wire (`Timestamp.format`).

public struct Tenant: Equatable, Sendable {
    public var id: String
    public var name: String
    public init(id: String, name: String) { self.id = id; self.name = name }
}

public struct Technician: Equatable, Sendable {
    public var tenant: String
    public var id: String
    public var name: String
    public var email: String
    public init(tenant: String, id: String, name: String, email: String) {
        self.tenant = tenant; self.id = id; self.name = name; self.email = email
    }
}

/// A person or thing on the wire: at least `id` and `name` (CONTRACT).
public struct PersonRef: Equatable, Sendable {
    public var id: String
    public var name: String
    public init(id: String, name: String) { self.id = id; self.name = name }
    public static let system = PersonRef(id: "system", name: "System")
}

public struct Asset: Equatable, Sendable {
    public var tenant: String
    public var id: String
    public var name: String
    /// The certificate CN of its RMM agent.
    public var agent: String
    /// RMM posture as stored JSON (free-form object from the back end), if any.
    public var posture: [UInt8]?
    public init(tenant: String, id: String, name: String, agent: String, posture: [UInt8]? = nil) {
        self.tenant = tenant; self.id = id; self.name = name; self.agent = agent; self.posture = posture
    }
}

public struct Telemetry: Equatable, Sendable {
    public var cpu: Double
    public var ram: Double
    public var disk: Double
    public var at: Int64
    public init(cpu: Double, ram: Double, disk: Double, at: Int64) { self.cpu = cpu; self.ram = ram; self.disk = disk; self.at = at }
}

public struct Contact: Equatable, Sendable {
    public var name: String
    public var email: String?
    public init(name: String, email: String?) { self.name = name; self.email = email }
}

/// SLA clocks of one ticket. Due times move later while the resolution
/// clock is paused (`waiting_on_customer`), so "remaining" is always
/// `due - now` for a running clock.
public struct SLAClocks: Equatable, Sendable {
    public var responseDue: Int64?
    public var resolutionDue: Int64?
    public var pausedSince: Int64?
    public var responseBreached: Bool
    public var resolutionBreached: Bool
    public init(responseDue: Int64? = nil, resolutionDue: Int64? = nil, pausedSince: Int64? = nil,
                responseBreached: Bool = false, resolutionBreached: Bool = false) {
        self.responseDue = responseDue; self.resolutionDue = resolutionDue; self.pausedSince = pausedSince
        self.responseBreached = responseBreached; self.resolutionBreached = resolutionBreached
    }
}

public struct Ticket: Equatable, Sendable {
    public var id: String
    public var tenant: String
    public var number: Int
    public var subject: String
    public var status: TicketStatus
    public var priority: Priority
    public var assignee: PersonRef?
    public var contact: Contact
    public var client: String
    public var asset: PersonRef?
    public var firstResponseAt: Int64?
    public var createdAt: Int64
    public var version: Int
    /// The seq of the last durable delta.
    public var seq: Int
    public var sla: SLAClocks
    /// Contract/billing context shown in the Time + contract card.
    public var contract: String?

    public init(id: String, tenant: String, number: Int, subject: String, status: TicketStatus, priority: Priority,
                assignee: PersonRef?, contact: Contact, client: String, asset: PersonRef?, firstResponseAt: Int64?,
                createdAt: Int64, version: Int, seq: Int, sla: SLAClocks, contract: String? = nil) {
        self.id = id; self.tenant = tenant; self.number = number; self.subject = subject; self.status = status
        self.priority = priority; self.assignee = assignee; self.contact = contact; self.client = client
        self.asset = asset; self.firstResponseAt = firstResponseAt; self.createdAt = createdAt
        self.version = version; self.seq = seq; self.sla = sla; self.contract = contract
    }

    /// `T-<number>`; the number is what mail subjects carry as `[#<number>]`.
    public static func id(forNumber number: Int) -> String { "T-\(number)" }
}

public struct AttachmentRef: Equatable, Sendable {
    public var id: String
    public var filename: String
    public var contentType: String
    public var size: Int
    public init(id: String, filename: String, contentType: String, size: Int) {
        self.id = id; self.filename = filename; self.contentType = contentType; self.size = size
    }
}

public struct Message: Equatable, Sendable {
    public var id: String
    public var ticket: String
    public var seq: Int
    public var channel: Channel
    public var author: PersonRef
    public var body: String
    public var via: Via
    public var at: Int64
    public var attachments: [AttachmentRef]
    public init(id: String, ticket: String, seq: Int, channel: Channel, author: PersonRef, body: String, via: Via,
                at: Int64, attachments: [AttachmentRef] = []) {
        self.id = id; self.ticket = ticket; self.seq = seq; self.channel = channel; self.author = author
        self.body = body; self.via = via; self.at = at; self.attachments = attachments
    }

    /// Messages that make a reply or note stale when unseen: the
    /// conversation with the customer, not notes or system rows (CONTRACT).
    public var countsForStaleness: Bool { Self.stalenessChannels.contains(channel) }
    public static let stalenessChannels: [Channel] = [.customer, .technician]
}

public struct RemoteSession: Equatable, Sendable {
    public var id: String
    public var ticket: String
    public var asset: String
    public var technician: PersonRef
    public var status: SessionStatus
    public var expiresAt: Int64
    public var createdAt: Int64
    /// When the end user's consent made it `active`: the card's recording
    /// clock runs from it. Nil until then, kept once the session ends.
    public var startedAt: Int64?
    /// A `SessionKind` raw value, stored as text so a row written by a
    /// newer server still reads.
    public var kind: String
    public init(id: String, ticket: String, asset: String, technician: PersonRef, status: SessionStatus, expiresAt: Int64, createdAt: Int64,
                startedAt: Int64? = nil, kind: String = RemoteSession.recording) {
        self.id = id; self.ticket = ticket; self.asset = asset; self.technician = technician
        self.status = status; self.expiresAt = expiresAt; self.createdAt = createdAt
        self.startedAt = startedAt; self.kind = kind
    }

    public static let recording = SessionKind.recording.rawValue
}

public struct Summary: Equatable, Sendable {
    public var text: String
    public var model: String
    public var at: Int64
    public var covers: Int?
    public init(text: String, model: String, at: Int64, covers: Int?) { self.text = text; self.model = model; self.at = at; self.covers = covers }
}

public struct TimeEntry: Equatable, Sendable {
    public var technician: PersonRef
    public var startedAt: Int64
    public var seconds: Int
    public var note: String?
    public init(technician: PersonRef, startedAt: Int64, seconds: Int, note: String?) {
        self.technician = technician; self.startedAt = startedAt; self.seconds = seconds; self.note = note
    }
}

/// A ticket's time: the running timer, the most recent entries (a
/// ticket's whole history would make every `time.updated` and snapshot grow
/// without end), and the count and sum of every entry.
public struct TimeState: Equatable, Sendable {
    public var active: (technician: PersonRef, startedAt: Int64)?
    /// The most recent entries, oldest first.
    public var entries: [TimeEntry]
    /// Entries in all, `entries` included.
    public var entryCount: Int
    /// Seconds of every entry, not only of `entries`.
    public var total: Int
    /// `entryCount` and `total` default to those of `entries`, for a state that holds them all.
    public init(active: (technician: PersonRef, startedAt: Int64)?, entries: [TimeEntry], entryCount: Int? = nil, total: Int? = nil) {
        self.active = active
        self.entries = entries
        self.entryCount = entryCount ?? entries.count
        self.total = total ?? entries.reduce(0) { $0 + $1.seconds }
    }
    public static func == (a: TimeState, b: TimeState) -> Bool {
        a.active?.technician == b.active?.technician && a.active?.startedAt == b.active?.startedAt && a.entries == b.entries
            && a.entryCount == b.entryCount && a.total == b.total
    }
}

public struct SLATarget: Equatable, Sendable {
    public var response: Int
    public var resolution: Int
    public init(response: Int, resolution: Int) { self.response = response; self.resolution = resolution }
}

public struct Viewer: Equatable, Sendable {
    public var id: String
    public var name: String
    public var composing: ComposingMode?
    public init(id: String, name: String, composing: ComposingMode?) { self.id = id; self.name = name; self.composing = composing }
}

public enum EmailSecurity: String, Sendable {
    case startTLS = "starttls"
    case tls
    case none
}

public struct EmailAccount: Equatable, Sendable {
    public var host: String
    public var port: Int
    public var security: EmailSecurity
    public var username: String?
    public var password: String?
    public var from: String
    public init(host: String, port: Int, security: EmailSecurity, username: String?, password: String?, from: String) {
        self.host = host; self.port = port; self.security = security; self.username = username; self.password = password; self.from = from
    }
}
