import PeekCore
import Synchronization

/// A `TicketStore` in memory, for tests of the engine's rules without a
/// database file: it keeps the store contract (`TicketStoreContractTests`)
/// like the SQLite and PostgreSQL stores, so what the engine does on it is
/// what it does on them.
///
/// Transactions are copies: `begin` takes the committed tables, writes
/// change the copy, `commit` puts it back; each savepoint keeps a copy to
/// return to. A statement that fails changes nothing (as a database's
/// statement does); keys and references are checked as the schema does,
/// and answer `.conflict`. Outside a transaction every write commits at
/// once. A second store on the same `InMemoryDatabase` is a re-open: it
/// sees what was committed, nothing of an open transaction.
public final class InMemoryTicketStore: TicketStore {
    public let database: InMemoryDatabase
    private var transaction: Tables?
    private var readOnly = false
    /// One copy per open savepoint, innermost last.
    private var savepoints: [Tables] = []

    public init(database: InMemoryDatabase = InMemoryDatabase()) { self.database = database }

    public var durability: (any Durability)? { nil }
    public var transactionLost: Bool { false }
    /// Savepoints open now (for tests of nesting).
    public var savepointDepth: Int { savepoints.count }

    // MARK: Transactions

    public func begin() throws(StoreError) {
        guard transaction == nil else { throw Self.failure("cannot start a transaction within a transaction") }
        transaction = database.committed
        readOnly = false
    }

    public func beginReadOnly() {
        if transaction == nil { transaction = database.committed }
        readOnly = true
    }

    public func commit() throws(StoreError) {
        guard let tables = transaction else { throw Self.failure("cannot commit - no transaction is active") }
        if !readOnly { database.committed = tables }
        end()
    }

    public func rollback() { end() }

    private func end() {
        transaction = nil
        savepoints.removeAll()
        readOnly = false
    }

    public func savepoint() throws(StoreError) {
        guard let tables = transaction else { throw Self.failure("a savepoint needs a transaction (begin first)") }
        savepoints.append(tables)
    }

    public func releaseSavepoint() throws(StoreError) {
        guard savepoints.popLast() != nil else { throw Self.failure("no such savepoint") }
    }

    public func rollbackToSavepoint() {
        guard let saved = savepoints.popLast() else { return }
        transaction = saved
    }

    // MARK: Reading and writing the tables

    private var tables: Tables { transaction ?? database.committed }

    /// One statement: all of it or, if it throws, none of it.
    private func write(_ body: (inout Tables) throws(StoreError) -> Void) throws(StoreError) {
        if readOnly { throw StoreError(.readOnly, "attempt to write in a read-only transaction", backendCode: "memory") }
        var copy = tables
        try body(&copy)
        if transaction != nil { transaction = copy } else { database.committed = copy }
    }

    private static func failure(_ message: String) -> StoreError { StoreError(.failed, message, backendCode: "memory") }
    private static func conflict(_ message: String) -> StoreError { StoreError(.conflict, message, backendCode: "memory") }

    private static func requireTenant(_ id: String, in t: Tables) throws(StoreError) {
        guard t.tenants[id] != nil else { throw conflict("FOREIGN KEY constraint failed: no tenant \(id)") }
    }

    /// Rows of the log table proper (message deltas live in their message).
    public func deltaRowCount(ticket: String) -> Int { tables.deltas[ticket]?.count ?? 0 }

    // MARK: Directory

    public func createTenant(_ t: Tenant, at: Int64) throws(StoreError) {
        try write { (x: inout Tables) throws(StoreError) in
            guard x.tenants[t.id] == nil else { throw Self.conflict("UNIQUE constraint failed: tenants.id") }
            x.tenants[t.id] = t
        }
    }

    public func tenant(_ id: String) throws(StoreError) -> Tenant? { tables.tenants[id] }

    public func createTechnician(_ t: Technician) throws(StoreError) {
        try write { (x: inout Tables) throws(StoreError) in
            try Self.requireTenant(t.tenant, in: x)
            let key = Scoped(t.tenant, t.id)
            guard x.technicians[key] == nil else { throw Self.conflict("UNIQUE constraint failed: technicians.tenant, technicians.id") }
            x.technicians[key] = t
        }
    }

    public func technician(tenant: String, id: String) throws(StoreError) -> Technician? { tables.technicians[Scoped(tenant, id)] }

    public func technicians(tenant: String) throws(StoreError) -> [Technician] {
        tables.technicians.values.filter { $0.tenant == tenant }.sorted { ($0.name, $0.id) < ($1.name, $1.id) }
    }

    public func createAsset(_ a: Asset) throws(StoreError) {
        try write { (x: inout Tables) throws(StoreError) in
            try Self.requireTenant(a.tenant, in: x)
            let key = Scoped(a.tenant, a.id)
            guard x.assets[key] == nil else { throw Self.conflict("UNIQUE constraint failed: assets.tenant, assets.id") }
            guard !x.assets.values.contains(where: { $0.agent == a.agent }) else { throw Self.conflict("UNIQUE constraint failed: assets.agent") }
            x.assets[key] = a
        }
    }

    public func asset(tenant: String, id: String) throws(StoreError) -> Asset? { tables.assets[Scoped(tenant, id)] }
    public func putAssetPosture(tenant: String, id: String, posture: [UInt8]?) throws(StoreError) {
        try write { x in x.assets[Scoped(tenant, id)]?.posture = posture }
    }

    public func asset(agent: String) throws(StoreError) -> Asset? { tables.assets.values.first { $0.agent == agent } }

    public func saveTelemetry(tenant: String, asset: String, _ t: Telemetry) throws(StoreError) {
        try write { x in
            let key = Scoped(tenant, asset)
            if x.assets[key] != nil { x.telemetry[key] = t }
        }
    }

    public func telemetry(tenant: String, asset: String) throws(StoreError) -> Telemetry? { tables.telemetry[Scoped(tenant, asset)] }

    // MARK: Tickets

    public func nextTicketNumber() throws(StoreError) -> Int { (tables.tickets.keys.max() ?? 1000) + 1 }

    public func insertTicket(_ t: Ticket) throws(StoreError) {
        try write { (x: inout Tables) throws(StoreError) in
            try Self.requireTenant(t.tenant, in: x)
            guard x.tickets[t.number] == nil, x.ticketNumbers[t.id] == nil else { throw Self.conflict("UNIQUE constraint failed: tickets") }
            x.tickets[t.number] = t
            x.ticketNumbers[t.id] = t.number
        }
    }

    public func ticket(_ id: String) throws(StoreError) -> Ticket? {
        let t = tables
        return t.ticketNumbers[id].flatMap { t.tickets[$0] }
    }

    private func allTickets(_ filter: (Ticket) -> Bool) -> [Ticket] {
        tables.tickets.values.filter(filter).sorted { $0.number < $1.number }
    }

    public func tickets(tenant: String, limit: Int) throws(StoreError) -> [Ticket] { Array(allTickets { $0.tenant == tenant }.prefix(limit)) }

    public func ticketsLinked(tenant: String, asset: String) throws(StoreError) -> [String] {
        allTickets { $0.tenant == tenant && $0.asset?.id == asset }.map(\.id)
    }

    public func related(to t: Ticket, limit: Int) throws(StoreError) -> [Ticket] {
        let found = allTickets { o in
            o.tenant == t.tenant && o.id != t.id
                && ((o.contact.email != nil && o.contact.email == t.contact.email) || (o.asset != nil && o.asset?.id == t.asset?.id))
        }
        return Array(found.reversed().prefix(limit))
    }

    public func updateTicket(_ t: Ticket) throws(StoreError) {
        try write { x in
            guard let number = x.ticketNumbers[t.id] else { return }
            var updated = t
            updated.number = number
            x.tickets[number] = updated
        }
    }

    public func ticketsWithOpenSLA() throws(StoreError) -> [Ticket] {
        allTickets { t in
            !t.status.stopsResolutionClock
                && ((t.sla.responseDue != nil && !t.sla.responseBreached && t.firstResponseAt == nil)
                    || (t.sla.resolutionDue != nil && !t.sla.resolutionBreached))
        }
    }

    // MARK: The log

    public func appendDelta(ticket: String, seq: Int, at: Int64, kind: DeltaKind, data: [UInt8]) throws(StoreError) {
        try write { (x: inout Tables) throws(StoreError) in
            let logged = x.deltas[ticket]?[seq] != nil || x.messages[ticket]?[seq]?.delta != nil
            guard !logged else { throw Self.conflict("UNIQUE constraint failed: deltas.ticket, deltas.seq") }
            x.deltas[ticket, default: [:]][seq] = LogEntry(at: at, kind: kind.rawValue, data: data)
        }
    }

    public func deltas(ticket: String, after seq: Int, limit: Int) throws(StoreError) -> [(seq: Int, at: Int64, kind: String, data: [UInt8])] {
        let t = tables
        var log: [(seq: Int, at: Int64, kind: String, data: [UInt8])] = []
        for (s, e) in t.deltas[ticket] ?? [:] where s > seq { log.append((s, e.at, e.kind, e.data)) }
        for (s, m) in t.messages[ticket] ?? [:] where s > seq {
            if let delta = m.delta { log.append((s, delta.at, DeltaKind.messageCreated.rawValue, delta.data)) }
        }
        return Array(log.sorted { $0.seq < $1.seq }.prefix(limit))
    }

    public func oldestDeltaSeq(ticket: String) throws(StoreError) -> Int? {
        let t = tables
        let inLog = t.deltas[ticket]?.keys.min()
        let inMessages = t.messages[ticket]?.filter { $0.value.delta != nil }.keys.min()
        return [inLog, inMessages].compactMap { $0 }.min()
    }

    public func pruneDeltas(ticket: String, keepingAfter seq: Int) throws(StoreError) {
        try write { x in
            x.deltas[ticket] = x.deltas[ticket]?.filter { $0.key > seq }
            guard var rows = x.messages[ticket] else { return }
            for (s, row) in rows where s <= seq && row.delta != nil { rows[s]?.delta = nil }
            x.messages[ticket] = rows
        }
    }

    // MARK: Messages

    public func insertMessage(_ m: Message, mailMessageID: String?, delta: [UInt8]?, command: CommandKey?) throws(StoreError) {
        try write { (x: inout Tables) throws(StoreError) in
            guard x.messages[m.ticket]?[m.seq] == nil else { throw Self.conflict("UNIQUE constraint failed: messages.ticket, messages.seq") }
            x.nextRow += 1
            x.messages[m.ticket, default: [:]][m.seq] = MessageRow(row: x.nextRow, message: m, mailMessageID: mailMessageID,
                                                                   delta: delta.map { LogEntry(at: m.at, kind: DeltaKind.messageCreated.rawValue, data: $0) },
                                                                   command: command)
        }
    }

    private func rows(_ ticket: String) -> [MessageRow] { (tables.messages[ticket] ?? [:]).values.sorted { $0.message.seq < $1.message.seq } }
    private var allRows: [MessageRow] { tables.messages.values.flatMap(\.values).sorted { $0.row < $1.row } }

    public func recentMessages(ticket: String, limit: Int) throws(StoreError) -> [Message] { rows(ticket).suffix(limit).map(\.message) }

    public func messages(ticket: String, before: Int, limit: Int) throws(StoreError) -> [Message] {
        rows(ticket).filter { $0.message.seq < before }.suffix(limit).map(\.message)
    }

    public func messages(ticket: String, after seq: Int) throws(StoreError) -> [Message] {
        rows(ticket).filter { $0.message.seq > seq }.map(\.message)
    }

    public func messages(ticket: String, after seq: Int, channels: [Channel], notBy author: String,
                         limit: Int) throws(StoreError) -> (recent: [Message], total: Int) {
        let all = rows(ticket).map(\.message).filter { $0.seq > seq && channels.contains($0.channel) && $0.author.id != author }
        return (Array(all.suffix(limit)), all.count)
    }

    public func mailThreadIDs(ticket: String) throws(StoreError) -> [String] { rows(ticket).compactMap(\.mailMessageID) }

    public func message(mailMessageID id: String) throws(StoreError) -> Message? {
        allRows.first { $0.mailMessageID == id }?.message
    }

    public func message(mailMessageID id: String, tenant: String) throws(StoreError) -> Message? {
        let t = tables
        return allRows.first { row in
            row.mailMessageID == id && t.ticketNumbers[row.message.ticket].flatMap { t.tickets[$0] }?.tenant == tenant
        }?.message
    }

    // MARK: Idempotency

    public func noteSeq(command: CommandKey, notBefore: Int64) throws(StoreError) -> Int? {
        allRows.first { $0.command == command && $0.message.at >= notBefore }?.message.seq
    }

    public func commandAnswer(_ command: CommandKey, notBefore: Int64) throws(StoreError) -> [UInt8]? {
        guard let saved = tables.commandAnswers[command], saved.at >= notBefore else { return nil }
        return saved.answer
    }

    public func saveCommandAnswer(_ command: CommandKey, at: Int64, answer: [UInt8]) throws(StoreError) {
        try write { x in x.commandAnswers[command] = (at, answer) }
    }

    public func pruneCommandAnswers(before: Int64) throws(StoreError) {
        try write { x in x.commandAnswers = x.commandAnswers.filter { $0.value.at >= before } }
    }

    // MARK: Mail

    public func putEmailAccount(tenant: String, _ a: EmailAccount) throws(StoreError) {
        try write { (x: inout Tables) throws(StoreError) in
            try Self.requireTenant(tenant, in: x)
            x.emailAccounts[tenant] = a
        }
    }

    public func emailAccount(tenant: String) throws(StoreError) -> EmailAccount? { tables.emailAccounts[tenant] }

    public func putTenantEndpoint(tenant: String, kind: String, url: String?) throws(StoreError) {
        try write { (x: inout Tables) throws(StoreError) in
            if url != nil { try Self.requireTenant(tenant, in: x) }
            x.endpoints[Scoped(tenant, kind)] = url
        }
    }

    public func tenantEndpoint(tenant: String, kind: String) throws(StoreError) -> String? { tables.endpoints[Scoped(tenant, kind)] }

    public func tenants(outboundAddresses addresses: [String]) throws(StoreError) -> [String] {
        let wanted = Set(addresses.map { $0.lowercased() })
        return tables.emailAccounts.filter { wanted.contains($0.value.from.lowercased()) }.keys.sorted()
    }

    public func recordSend(ticket: String, at: Int64, technician: String, recipient: String?, outcome: String, reply: String) throws(StoreError) {
        try write { x in x.sends.append(Send(ticket: ticket, at: at, technician: technician, recipient: recipient, outcome: outcome, reply: reply)) }
    }

    public func sends(ticket: String) throws(StoreError) -> [(at: Int64, technician: String, recipient: String?, outcome: String, reply: String)] {
        tables.sends.filter { $0.ticket == ticket }.map { ($0.at, $0.technician, $0.recipient, $0.outcome, $0.reply) }
    }

    public func finishSend(ticket: String, sending note: String, at: Int64, outcome: String?, reply: String) throws(StoreError) {
        try write { x in
            let matches = { (s: Send) in s.ticket == ticket && s.outcome == "sending" && s.reply == note }
            guard let outcome else { x.sends.removeAll(where: matches); return }
            for i in x.sends.indices where matches(x.sends[i]) {
                x.sends[i].at = at; x.sends[i].outcome = outcome; x.sends[i].reply = reply
            }
        }
    }

    public func unsettledSends() throws(StoreError) -> [(ticket: String, technician: String, recipient: String?, note: String)] {
        tables.sends.filter { $0.outcome == "sending" }.map { ($0.ticket, $0.technician, $0.recipient, $0.reply) }
    }

    // MARK: SLA

    public func putSLAPolicy(tenant: String, priority: Priority, _ target: SLATarget) throws(StoreError) {
        try write { x in x.slaPolicies[Scoped(tenant, priority.rawValue)] = target }
    }

    public func slaPolicy(tenant: String, priority: Priority) throws(StoreError) -> SLATarget? {
        tables.slaPolicies[Scoped(tenant, priority.rawValue)]
    }

    public func putBusinessHours(tenant: String, _ hours: BusinessHours?) throws(StoreError) {
        try write { (x: inout Tables) throws(StoreError) in
            if hours != nil { try Self.requireTenant(tenant, in: x) }
            x.businessHours[tenant] = hours
        }
    }

    public func businessHours(tenant: String) throws(StoreError) -> BusinessHours? { tables.businessHours[tenant] }

    // MARK: Sessions, summaries, time, attachments

    public func insertSession(_ s: RemoteSession) throws(StoreError) {
        try write { (x: inout Tables) throws(StoreError) in
            guard !x.sessions.contains(where: { $0.id == s.id }) else { throw Self.conflict("UNIQUE constraint failed: sessions.id") }
            x.sessions.append(s)
        }
    }

    public func updateSession(id: String, status: SessionStatus, startedAt: Int64?) throws(StoreError) {
        try write { x in
            guard let i = x.sessions.firstIndex(where: { $0.id == id }) else { return }
            x.sessions[i].status = status
            if let startedAt { x.sessions[i].startedAt = startedAt }
        }
    }

    public func latestSession(ticket: String) throws(StoreError) -> RemoteSession? {
        // By creation, then the later insert (the array's order is rowid's).
        tables.sessions.enumerated().filter { $0.element.ticket == ticket }
            .max { ($0.element.createdAt, $0.offset) < ($1.element.createdAt, $1.offset) }?.element
    }

    public func session(_ id: String) throws(StoreError) -> RemoteSession? { tables.sessions.first { $0.id == id } }

    public func activeSessions() throws(StoreError) -> [RemoteSession] {
        tables.sessions.enumerated().filter { $0.element.status == .active }
            .sorted { ($0.element.createdAt, $0.offset) < ($1.element.createdAt, $1.offset) }.map(\.element)
    }

    public func pendingSessions() throws(StoreError) -> [RemoteSession] {
        tables.sessions.enumerated().filter { $0.element.status == .awaitingConsent }
            .sorted { ($0.element.expiresAt, $0.offset) < ($1.element.expiresAt, $1.offset) }.map(\.element)
    }

    public func putSummary(ticket: String, _ s: Summary) throws(StoreError) {
        try write { x in x.summaries[ticket] = s }
    }

    public func summary(ticket: String) throws(StoreError) -> Summary? { tables.summaries[ticket] }

    public func timeState(ticket: String, recentEntries: Int) throws(StoreError) -> TimeState {
        let entries = tables.timeEntries[ticket] ?? []
        return TimeState(active: try activeTimer(ticket: ticket), entries: Array(entries.suffix(recentEntries)),
                         entryCount: entries.count, total: entries.reduce(0) { $0 + $1.seconds })
    }

    public func activeTimer(ticket: String) throws(StoreError) -> (technician: PersonRef, startedAt: Int64)? { tables.activeTimers[ticket] }

    public func startTimer(ticket: String, technician: PersonRef, at: Int64) throws(StoreError) {
        try write { (x: inout Tables) throws(StoreError) in
            guard x.activeTimers[ticket] == nil else { throw Self.conflict("UNIQUE constraint failed: active_timers.ticket") }
            x.activeTimers[ticket] = (technician, at)
        }
    }

    public func stopTimer(ticket: String) throws(StoreError) -> (technician: PersonRef, startedAt: Int64)? {
        let active = try activeTimer(ticket: ticket)
        try write { x in x.activeTimers[ticket] = nil }
        return active
    }

    public func contractSeconds(tenant: String, client: String, contract: String, since: Int64) throws(StoreError) -> Int {
        let t = tables
        var seconds = 0
        for (ticket, entries) in t.timeEntries {
            guard let row = t.ticketNumbers[ticket].flatMap({ t.tickets[$0] }),
                  row.tenant == tenant, row.client == client, row.contract == contract else { continue }
            seconds += entries.filter { $0.startedAt >= since }.reduce(0) { $0 + $1.seconds }
        }
        return seconds
    }

    public func addTimeEntry(ticket: String, _ e: TimeEntry) throws(StoreError) {
        try write { x in x.timeEntries[ticket, default: []].append(e) }
    }

    public func insertAttachment(_ a: AttachmentRef, ticket: String, sha256: String, at: Int64) throws(StoreError) {
        try write { (x: inout Tables) throws(StoreError) in
            guard x.attachments[a.id] == nil else { throw Self.conflict("UNIQUE constraint failed: attachments.id") }
            x.attachments[a.id] = (a, ticket, sha256)
        }
    }

    public func attachment(_ id: String) throws(StoreError) -> (ref: AttachmentRef, ticket: String, sha256: String)? { tables.attachments[id] }

    public func isAttachmentFileReferenced(sha256: String) throws(StoreError) -> Bool {
        tables.attachments.values.contains { $0.sha256 == sha256 }
    }
}

/// What an `InMemoryTicketStore` has committed: the "file" that outlives a
/// store, so a second store on it is a re-open. Safe from any thread.
public final class InMemoryDatabase: Sendable {
    private let state = Mutex(Tables())
    public init() {}
    var committed: Tables {
        get { state.withLock { $0 } }
        set { state.withLock { $0 = newValue } }
    }
}

/// A key scoped by tenant (or by any first part).
struct Scoped: Hashable, Sendable {
    let first: String
    let second: String
    init(_ first: String, _ second: String) { self.first = first; self.second = second }
}

struct LogEntry: Sendable {
    var at: Int64
    var kind: String
    var data: [UInt8]
}

struct Send: Sendable {
    var ticket: String
    var at: Int64
    var technician: String
    var recipient: String?
    var outcome: String
    var reply: String
}

struct MessageRow: Sendable {
    /// Insertion order, like SQLite's rowid.
    var row: Int
    var message: Message
    var mailMessageID: String?
    var delta: LogEntry?
    var command: CommandKey?
}

/// Every table, as values: copying it is a snapshot.
struct Tables: Sendable {
    var tenants: [String: Tenant] = [:]
    var technicians: [Scoped: Technician] = [:]
    var assets: [Scoped: Asset] = [:]
    var telemetry: [Scoped: Telemetry] = [:]
    var tickets: [Int: Ticket] = [:]
    var ticketNumbers: [String: Int] = [:]
    var messages: [String: [Int: MessageRow]] = [:]
    var nextRow = 0
    var deltas: [String: [Int: LogEntry]] = [:]
    var commandAnswers: [CommandKey: (at: Int64, answer: [UInt8])] = [:]
    var emailAccounts: [String: EmailAccount] = [:]
    var endpoints: [Scoped: String] = [:]
    var sends: [Send] = []
    var slaPolicies: [Scoped: SLATarget] = [:]
    var businessHours: [String: BusinessHours] = [:]
    var sessions: [RemoteSession] = []
    var summaries: [String: Summary] = [:]
    var timeEntries: [String: [TimeEntry]] = [:]
    var activeTimers: [String: (technician: PersonRef, startedAt: Int64)] = [:]
    var attachments: [String: (ref: AttachmentRef, ticket: String, sha256: String)] = [:]
}
