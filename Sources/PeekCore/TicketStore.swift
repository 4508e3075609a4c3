/// The storage seam. Everything above it (the engine, the API) speaks in
/// domain values, transactions and `StoreError.Kind`; only the stores know
/// SQL and their database's error codes. A
/// PostgreSQL store implements the same protocol: nothing here assumes one
/// process or SQLite's locking, and every time is passed in, never read
/// from this machine's clock.
///
/// Threading: a store is used by one thread at a time (the engine's).
public protocol TicketStore: AnyObject {
    // Transactions. `commit` returning means the batch is committed: later
    // transactions see it and it can no longer be rolled back. It is
    // durable once `durability.sync()` has returned after it, or at once
    // when `durability` is nil. Nothing may be acknowledged before that.
    var durability: (any Durability)? { get }
    func begin() throws(StoreError)
    /// For a batch whose `begin` failed (the database locked by another
    /// writer past the busy timeout): a transaction in which reads work and
    /// every write fails (PostgreSQL's BEGIN READ ONLY), so the batch is
    /// refused whole instead of autocommitting write by write. Ended by
    /// `rollback`.
    func beginReadOnly()
    func commit() throws(StoreError)
    /// Ends the transaction, also one the database already rolled back.
    func rollback()
    /// True when the database rolled the open transaction back by itself
    /// after an error (SQLite on a full disk or an I/O error, PostgreSQL on
    /// any error): nothing of it is saved, every later statement fails, and
    /// the caller must `rollback` and tell every command in it.
    var transactionLost: Bool { get }
    func savepoint() throws(StoreError)
    func releaseSavepoint() throws(StoreError)
    func rollbackToSavepoint()

    // Directory.
    func createTenant(_ t: Tenant, at: Int64) throws(StoreError)
    func tenant(_ id: String) throws(StoreError) -> Tenant?
    func createTechnician(_ t: Technician) throws(StoreError)
    func technician(tenant: String, id: String) throws(StoreError) -> Technician?
    func technicians(tenant: String) throws(StoreError) -> [Technician]
    func createAsset(_ a: Asset) throws(StoreError)
    func asset(tenant: String, id: String) throws(StoreError) -> Asset?
    func asset(agent: String) throws(StoreError) -> Asset?
    /// Replaces the asset's posture object (stored JSON), or clears it.
    func putAssetPosture(tenant: String, id: String, posture: [UInt8]?) throws(StoreError)
    func saveTelemetry(tenant: String, asset: String, _ t: Telemetry) throws(StoreError)
    func telemetry(tenant: String, asset: String) throws(StoreError) -> Telemetry?

    // Tickets.
    func nextTicketNumber() throws(StoreError) -> Int
    func insertTicket(_ t: Ticket) throws(StoreError)
    func ticket(_ id: String) throws(StoreError) -> Ticket?
    func tickets(tenant: String, limit: Int) throws(StoreError) -> [Ticket]
    func ticketsLinked(tenant: String, asset: String) throws(StoreError) -> [String]
    func related(to t: Ticket, limit: Int) throws(StoreError) -> [Ticket]
    func updateTicket(_ t: Ticket) throws(StoreError)
    func ticketsWithOpenSLA() throws(StoreError) -> [Ticket]

    // The log.
    func appendDelta(ticket: String, seq: Int, at: Int64, kind: DeltaKind, data: [UInt8]) throws(StoreError)
    func deltas(ticket: String, after seq: Int, limit: Int) throws(StoreError) -> [(seq: Int, at: Int64, kind: String, data: [UInt8])]
    func oldestDeltaSeq(ticket: String) throws(StoreError) -> Int?
    func pruneDeltas(ticket: String, keepingAfter seq: Int) throws(StoreError)

    // Messages.
    /// `delta`: the message's `message.created` delta, logged with it at
    /// seq `m.seq` (the engine allocates each seq once). `command`: the
    /// technician's command that wrote it (a note), remembered with the
    /// message for `noteSeq(command:notBefore:)`.
    func insertMessage(_ m: Message, mailMessageID: String?, delta: [UInt8]?, command: CommandKey?) throws(StoreError)
    func recentMessages(ticket: String, limit: Int) throws(StoreError) -> [Message]
    /// The `limit` messages just before seq `before` (seq < before), oldest
    /// first: one page of older history, read through the (ticket, seq) index.
    func messages(ticket: String, before: Int, limit: Int) throws(StoreError) -> [Message]
    func messages(ticket: String, after seq: Int) throws(StoreError) -> [Message]
    /// Messages after `seq` on one of `channels` by anyone but `author`: the
    /// most recent `limit` of them, oldest first, and how many there are.
    func messages(ticket: String, after seq: Int, channels: [Channel], notBy author: String,
                  limit: Int) throws(StoreError) -> (recent: [Message], total: Int)
    func mailThreadIDs(ticket: String) throws(StoreError) -> [String]
    /// The message stored with this Message-ID (inbound mail or a sent reply).
    func message(mailMessageID id: String) throws(StoreError) -> Message?
    /// The same, among the tenant's tickets only: inbound mail threads and
    /// de-duplicates within one tenant.
    func message(mailMessageID id: String, tenant: String) throws(StoreError) -> Message?

    // Idempotency.
    /// The seq of the message a note command stored, if it was stored at or
    /// after `notBefore`: a note's first answer is `result` with that seq,
    /// so notes need no answer of their own in `saveCommandAnswer`.
    func noteSeq(command: CommandKey, notBefore: Int64) throws(StoreError) -> Int?
    func commandAnswer(_ command: CommandKey, notBefore: Int64) throws(StoreError) -> [UInt8]?
    func saveCommandAnswer(_ command: CommandKey, at: Int64, answer: [UInt8]) throws(StoreError)
    func pruneCommandAnswers(before: Int64) throws(StoreError)

    // Mail.
    func putEmailAccount(tenant: String, _ a: EmailAccount) throws(StoreError)
    func emailAccount(tenant: String) throws(StoreError) -> EmailAccount?
    /// The URL of an HTTP endpoint peekd calls for the tenant (`kind`:
    /// "assistant" or "summariser"); nil removes it.
    func putTenantEndpoint(tenant: String, kind: String, url: String?) throws(StoreError)
    func tenantEndpoint(tenant: String, kind: String) throws(StoreError) -> String?
    /// The tenants whose outbound `from` is one of `addresses` (compared
    /// without case), sorted: the global inbound route's candidates.
    func tenants(outboundAddresses addresses: [String]) throws(StoreError) -> [String]
    func recordSend(ticket: String, at: Int64, technician: String, recipient: String?, outcome: String, reply: String) throws(StoreError)
    func sends(ticket: String) throws(StoreError) -> [(at: Int64, technician: String, recipient: String?, outcome: String, reply: String)]
    /// Settles the send recorded as outcome `sending` with `reply` equal to
    /// `note` (a reply's "about to send" row): its time, outcome and the
    /// mail server's answer; with `outcome` nil the row is removed (no mail
    /// server was contacted, so it was no attempt).
    func finishSend(ticket: String, sending note: String, at: Int64, outcome: String?, reply: String) throws(StoreError)
    /// Every send still `sending`, oldest first: at start, the replies whose
    /// SMTP conversation the previous process never saw the end of.
    func unsettledSends() throws(StoreError) -> [(ticket: String, technician: String, recipient: String?, note: String)]

    // SLA.
    func putSLAPolicy(tenant: String, priority: Priority, _ target: SLATarget) throws(StoreError)
    func slaPolicy(tenant: String, priority: Priority) throws(StoreError) -> SLATarget?
    func putBusinessHours(tenant: String, _ hours: BusinessHours?) throws(StoreError)
    func businessHours(tenant: String) throws(StoreError) -> BusinessHours?

    // Sessions, summaries, time, attachments.
    func insertSession(_ s: RemoteSession) throws(StoreError)
    /// `startedAt`, when given, records when the session became active.
    func updateSession(id: String, status: SessionStatus, startedAt: Int64?) throws(StoreError)
    func latestSession(ticket: String) throws(StoreError) -> RemoteSession?
    func session(_ id: String) throws(StoreError) -> RemoteSession?
    func pendingSessions() throws(StoreError) -> [RemoteSession]
    /// Sessions whose status is `active`, oldest first: at start, the shells
    /// among them were cut off by the previous process.
    func activeSessions() throws(StoreError) -> [RemoteSession]
    func putSummary(ticket: String, _ s: Summary) throws(StoreError)
    func summary(ticket: String) throws(StoreError) -> Summary?
    /// The running timer, the most recent `recentEntries` entries, and the
    /// count and sum of them all.
    func timeState(ticket: String, recentEntries: Int) throws(StoreError) -> TimeState
    func activeTimer(ticket: String) throws(StoreError) -> (technician: PersonRef, startedAt: Int64)?
    func startTimer(ticket: String, technician: PersonRef, at: Int64) throws(StoreError)
    func stopTimer(ticket: String) throws(StoreError) -> (technician: PersonRef, startedAt: Int64)?
    func addTimeEntry(ticket: String, _ e: TimeEntry) throws(StoreError)
    /// Seconds logged since `since` (unix ms, by entry start) on every
    /// ticket of `tenant` with this `client` and `contract`: the hours a
    /// contract has used.
    func contractSeconds(tenant: String, client: String, contract: String, since: Int64) throws(StoreError) -> Int
    func insertAttachment(_ a: AttachmentRef, ticket: String, sha256: String, at: Int64) throws(StoreError)
    func attachment(_ id: String) throws(StoreError) -> (ref: AttachmentRef, ticket: String, sha256: String)?
    /// Whether any attachment row names the file with this digest: a file
    /// none names may be deleted (`AttachmentClaims`).
    func isAttachmentFileReferenced(sha256: String) throws(StoreError) -> Bool
}

/// A technician's command as idempotency knows it: the same id from the
/// same technician of the same tenant is the same command.
public struct CommandKey: Hashable, Sendable {
    public var tenant: String
    public var technician: String
    public var id: String
    public init(tenant: String, technician: String, id: String) {
        self.tenant = tenant
        self.technician = technician
        self.id = id
    }
}

extension TicketStore {
    /// Runs a statement whose failure the caller can live with (a telemetry
    /// save, a read of the delta log with a fallback) in a savepoint of its
    /// own, and answers nil when it fails. Without the savepoint, one
    /// failing statement dooms a PostgreSQL transaction, and with it every
    /// command of the batch that had nothing to do with it; `try?` alone
    /// only hides that until COMMIT. Call it inside a transaction.
    public func bestEffort<T>(_ body: () throws(StoreError) -> T) -> T? {
        do { try savepoint() } catch { return nil }
        do {
            let value = try body()
            try releaseSavepoint()
            return value
        } catch {
            rollbackToSavepoint()
            return nil
        }
    }

    public func insertMessage(_ m: Message, mailMessageID: String?, delta: [UInt8]?) throws(StoreError) {
        try insertMessage(m, mailMessageID: mailMessageID, delta: delta, command: nil)
    }
}

/// A store failure in the domain's terms. Each store maps its database's
/// codes onto `kind` in one place (SQLite: `Database.swift`; PostgreSQL:
/// `PeekPostgres`), so the engine chooses its answer by `kind` alone and it
/// means the same on either database.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable {
        /// A constraint or unique violation: the row already exists.
        case conflict
        /// Another writer held the lock too long, a serialization failure
        /// or a deadlock: the same work may succeed later.
        case busy
        /// The disk or a quota is full.
        case full
        /// A write refused inside a read-only batch (`beginReadOnly`).
        case readOnly
        /// The database rolled the transaction back by itself.
        case aborted
        /// The connection was lost or the disk failed (an I/O error).
        case unavailable
        /// Anything else.
        case failed
    }

    public let kind: Kind
    /// The database's own message.
    public let message: String
    /// The database's own code as text, for logs only: "SQLITE_BUSY (5)",
    /// "SQLSTATE 40001". Nothing decides by it.
    public let backendCode: String

    public init(_ kind: Kind, _ message: String, backendCode: String) {
        self.kind = kind
        self.message = message
        self.backendCode = backendCode
    }

    public var description: String { "\(kind.rawValue) (\(backendCode)): \(message)" }
}
