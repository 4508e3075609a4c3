import CSQLite
import PeekCore

/// The embedded default store: one SQLite file in WAL mode. The engine is
/// its only writer, and commits in groups (many commands per transaction),
/// so throughput does not collapse to one fsync per message.
///
/// Durability is pipelined: `synchronous=NORMAL` lets COMMIT return once
/// the WAL frames are written (not synced), and `durability` (a `WALSync`)
/// fdatasyncs the WAL on the engine's commit-pipeline thread while the
/// engine already runs the next batch. Nothing is acknowledged before that
/// sync, so an acknowledged change survives `kill -9` and power loss alike;
/// the CPU of batch N+1 and the disk flush of batch N overlap instead of
/// taking turns. Checkpoints run on a thread of their own (WALCheckpointer).
public final class SQLiteTicketStore: TicketStore {
    public let db: Database
    public let durability: (any Durability)?
    private let checkpointer: WALCheckpointer?

    /// Tickets as last written or read, so a command does not re-read its
    /// ticket (a three-table join) every time. Write-through: insert and
    /// update refresh it; any rollback empties it, because a rolled-back
    /// update may already be in it. Bounded: emptied past `ticketCacheLimit`.
    private var ticketCache: [String: Ticket] = [:]
    static let ticketCacheLimit = 50_000

    public init(path: String) throws(StoreError) {
        db = try Database(path: path)
        try db.execute("PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;")
        // A busy server touches pages all over the tables (notes land on
        // random tickets): a 64 MiB page cache keeps them in memory instead
        // of the 2 MiB default, and checkpointing every 8192 WAL pages
        // (32 MiB) rather than 1000 copies each hot page to the database far
        // less often. Both trade memory and WAL size for fewer writes.
        try db.execute("PRAGMA cache_size=-65536;")
        try Self.migrate(db)
        let inWALMode = try db.queryOne("PRAGMA journal_mode")?.first?.text == "wal"
        if inWALMode {
            try db.execute("PRAGMA synchronous=NORMAL;")
            let checkpointer = WALCheckpointer(path: path)
            try checkpointer.start()
            db.handCheckpointsTo(checkpointer)
            self.checkpointer = checkpointer
            durability = WALSync(databasePath: path)
        } else {
            // ":memory:" (echo mode, tests): nothing to make durable.
            try db.execute("PRAGMA synchronous=FULL;")
            checkpointer = nil
            durability = nil
        }
    }

    deinit { checkpointer?.stop() }

    /// The `user_version` this peekd's migrations leave: a database at any
    /// other version was written by an older (not yet upgraded) or newer peekd.
    public static var schemaVersion: Int { Schema.migrations.count }

    private static func migrate(_ db: Database) throws(StoreError) {
        let current = db.userVersion
        guard current < Schema.migrations.count else { return }
        for (i, sql) in Schema.migrations.enumerated() where i >= current {
            try db.execute("BEGIN IMMEDIATE")
            do {
                try db.execute(sql)
                try db.setUserVersion(i + 1)
                try db.execute("COMMIT")
            } catch {
                try? db.execute("ROLLBACK")
                throw error
            }
        }
    }

    // MARK: Transactions

    public func begin() throws(StoreError) { try db.beginTransaction("BEGIN IMMEDIATE") }
    /// A deferred transaction takes no lock, so it opens even while another
    /// writer holds the database; `refusesWrites` keeps it read-only.
    public func beginReadOnly() {
        db.refusesWrites = true
        _ = try? db.beginTransaction("BEGIN")
    }
    public func commit() throws(StoreError) { try db.commitTransaction() }
    public func rollback() {
        ticketCache.removeAll()
        db.rollbackTransaction()
        db.refusesWrites = false
    }
    public var transactionLost: Bool { db.transactionLost }
    public func savepoint() throws(StoreError) { try db.run("SAVEPOINT command") }
    public func releaseSavepoint() throws(StoreError) { try db.run("RELEASE command") }
    public func rollbackToSavepoint() {
        ticketCache.removeAll()
        _ = try? db.run("ROLLBACK TO command"); _ = try? db.run("RELEASE command")
    }

    private func remember(_ t: Ticket) {
        if ticketCache.count >= Self.ticketCacheLimit { ticketCache.removeAll(keepingCapacity: true) }
        ticketCache[t.id] = t
    }

    // MARK: Directory

    public func createTenant(_ t: Tenant, at: Int64) throws(StoreError) {
        try db.run("INSERT INTO tenants(id, name, created_at) VALUES (?, ?, ?)", .text(t.id), .text(t.name), .int(at))
    }

    public func tenant(_ id: String) throws(StoreError) -> Tenant? {
        try db.queryOne("SELECT id, name FROM tenants WHERE id = ?", .text(id)).map { Tenant(id: $0[0].text ?? "", name: $0[1].text ?? "") }
    }

    public func createTechnician(_ t: Technician) throws(StoreError) {
        try db.run("INSERT INTO technicians(tenant, id, name, email) VALUES (?, ?, ?, ?)", .text(t.tenant), .text(t.id), .text(t.name), .text(t.email))
    }

    public func technician(tenant: String, id: String) throws(StoreError) -> Technician? {
        try db.queryOne("SELECT tenant, id, name, email FROM technicians WHERE tenant = ? AND id = ?", .text(tenant), .text(id)).map(StoreRows.technician)
    }

    public func technicians(tenant: String) throws(StoreError) -> [Technician] {
        try db.query("SELECT tenant, id, name, email FROM technicians WHERE tenant = ? ORDER BY name", .text(tenant)).map(StoreRows.technician)
    }

    public func createAsset(_ a: Asset) throws(StoreError) {
        try db.run("INSERT INTO assets(tenant, id, name, agent, posture) VALUES (?, ?, ?, ?, ?)",
                   .text(a.tenant), .text(a.id), .text(a.name), .text(a.agent), a.posture.map { .blob($0) } ?? .null)
    }

    public func asset(tenant: String, id: String) throws(StoreError) -> Asset? {
        try db.queryOne("SELECT tenant, id, name, agent, posture FROM assets WHERE tenant = ? AND id = ?", .text(tenant), .text(id)).map(StoreRows.asset)
    }

    public func asset(agent: String) throws(StoreError) -> Asset? {
        try db.queryOne("SELECT tenant, id, name, agent, posture FROM assets WHERE agent = ? AND revoked = 0", .text(agent)).map(StoreRows.asset)
    }

    public func putAssetPosture(tenant: String, id: String, posture: [UInt8]?) throws(StoreError) {
        try db.run("UPDATE assets SET posture = ? WHERE tenant = ? AND id = ?", posture.map { .blob($0) } ?? .null, .text(tenant), .text(id))
    }

    public func saveTelemetry(tenant: String, asset: String, _ t: Telemetry) throws(StoreError) {
        try db.run("UPDATE assets SET cpu = ?, ram = ?, disk = ?, telemetry_at = ? WHERE tenant = ? AND id = ?",
                   .double(t.cpu), .double(t.ram), .double(t.disk), .int(t.at), .text(tenant), .text(asset))
    }

    public func telemetry(tenant: String, asset: String) throws(StoreError) -> Telemetry? {
        guard let row = try db.queryOne("SELECT cpu, ram, disk, telemetry_at FROM assets WHERE tenant = ? AND id = ?", .text(tenant), .text(asset)),
              let cpu = row[0].double, let ram = row[1].double, let disk = row[2].double, let at = row[3].int else { return nil }
        return Telemetry(cpu: cpu, ram: ram, disk: disk, at: at)
    }

    // MARK: Tickets

    public func nextTicketNumber() throws(StoreError) -> Int {
        let max = try db.queryOne("SELECT MAX(number) FROM tickets")?.first?.int ?? 1000
        return Int(max) + 1
    }

    public func insertTicket(_ t: Ticket) throws(StoreError) {
        try db.run("""
            INSERT INTO tickets(number, id, tenant, subject, status, priority, assignee, contact_name, contact_email, client,
                asset, first_response_at, created_at, version, seq, contract, response_due, resolution_due, paused_since,
                response_breached, resolution_breached)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, StoreRows.insertValues(t))
        remember(t)
    }

    public func updateTicket(_ t: Ticket) throws(StoreError) {
        // Most commands (every note) change only the seq and the version: a
        // narrow UPDATE then rewrites two integers, where the full one would
        // rewrite every column and, because `contact_email` and `asset` are
        // in its SET list, delete and re-insert two index entries as well.
        if var unchanged = ticketCache[t.id] {
            unchanged.seq = t.seq
            unchanged.version = t.version
            if unchanged == t {
                try db.run("UPDATE tickets SET seq = ?, version = ? WHERE number = ?", SQLValue(t.seq), SQLValue(t.version), SQLValue(t.number))
                remember(t)
                return
            }
        }
        try db.run("""
            UPDATE tickets SET subject = ?, status = ?, priority = ?, assignee = ?, contact_name = ?, contact_email = ?,
                client = ?, asset = ?, first_response_at = ?, version = ?, seq = ?, contract = ?, response_due = ?,
                resolution_due = ?, paused_since = ?, response_breached = ?, resolution_breached = ?
            WHERE id = ?
            """, StoreRows.updateValues(t))
        remember(t)
    }

    public func ticket(_ id: String) throws(StoreError) -> Ticket? {
        if let cached = ticketCache[id] { return cached }
        guard let t = try db.queryOne("SELECT \(StoreRows.ticketColumns) WHERE t.id = ?", .text(id)).map(StoreRows.ticket) else { return nil }
        remember(t)
        return t
    }

    public func tickets(tenant: String, limit: Int) throws(StoreError) -> [Ticket] {
        try db.query("SELECT \(StoreRows.ticketColumns) WHERE t.tenant = ? ORDER BY t.number LIMIT ?", .text(tenant), SQLValue(limit)).map(StoreRows.ticket)
    }

    public func ticketsLinked(tenant: String, asset: String) throws(StoreError) -> [String] {
        try db.query("SELECT id FROM tickets WHERE tenant = ? AND asset = ? ORDER BY number", .text(tenant), .text(asset)).compactMap { $0[0].text }
    }

    /// Other tickets of the same contact or asset, newest first.
    public func related(to t: Ticket, limit: Int) throws(StoreError) -> [Ticket] {
        try db.query("""
            SELECT \(StoreRows.ticketColumns) WHERE t.tenant = ? AND t.id <> ?
              AND ((t.contact_email IS NOT NULL AND t.contact_email = ?) OR (t.asset IS NOT NULL AND t.asset = ?))
            ORDER BY t.number DESC LIMIT ?
            """, .text(t.tenant), .text(t.id), SQLValue(t.contact.email), SQLValue(t.asset?.id), SQLValue(limit)).map(StoreRows.ticket)
    }

    public func ticketsWithOpenSLA() throws(StoreError) -> [Ticket] {
        try db.query("""
            SELECT \(StoreRows.ticketColumns) \(StoreRows.openSLAFilter)
            """).map(StoreRows.ticket)
    }

    // MARK: Log

    /// Message deltas are stored with their message (`insertMessage(_:delta:)`);
    /// this takes every other kind. A seq lives in one place only: one
    /// already logged with a message is refused as the table's key would.
    public func appendDelta(ticket: String, seq: Int, at: Int64, kind: DeltaKind, data: [UInt8]) throws(StoreError) {
        if try db.queryOne("SELECT 1 FROM messages WHERE ticket = ? AND seq = ? AND delta IS NOT NULL", .text(ticket), SQLValue(seq)) != nil {
            throw Self.seqTaken
        }
        try db.run("INSERT INTO deltas(ticket, seq, at, kind, data) VALUES (?, ?, ?, ?, ?)",
                   .text(ticket), SQLValue(seq), .int(at), .text(kind.rawValue), .blob(data))
    }

    /// What the `deltas` key answers for a seq already logged
    /// (SQLITE_CONSTRAINT_PRIMARYKEY, a macro Swift does not import).
    private static let seqTaken = StoreError(sqlite: SQLITE_CONSTRAINT | (6 << 8), message: "UNIQUE constraint failed: deltas.ticket, deltas.seq")

    private static let logAfter = """
        SELECT seq, at, kind, data FROM deltas WHERE ticket = ?1 AND seq > ?2
        UNION ALL
        SELECT seq, delta_at, '\(DeltaKind.messageCreated.rawValue)', delta FROM messages WHERE ticket = ?1 AND seq > ?2 AND delta IS NOT NULL
        ORDER BY seq LIMIT ?3
        """

    public func deltas(ticket: String, after seq: Int, limit: Int) throws(StoreError) -> [(seq: Int, at: Int64, kind: String, data: [UInt8])] {
        try db.query(Self.logAfter, .text(ticket), SQLValue(seq), SQLValue(limit)).map { r in
            (Int(r[0].int ?? 0), r[1].int ?? 0, r[2].text ?? "", r[3].blob ?? [])
        }
    }

    public func oldestDeltaSeq(ticket: String) throws(StoreError) -> Int? {
        let inTable = try db.queryOne("SELECT MIN(seq) FROM deltas WHERE ticket = ?", .text(ticket))?.first?.int
        let inMessages = try db.queryOne("SELECT MIN(seq) FROM messages WHERE ticket = ? AND delta IS NOT NULL", .text(ticket))?.first?.int
        return [inTable, inMessages].compactMap { $0 }.min().map(Int.init)
    }

    public func pruneDeltas(ticket: String, keepingAfter seq: Int) throws(StoreError) {
        try db.run("DELETE FROM deltas WHERE ticket = ? AND seq <= ?", .text(ticket), SQLValue(seq))
        // The message stays; only its copy in the log goes.
        try db.run("UPDATE messages SET delta_at = NULL, delta = NULL WHERE ticket = ? AND seq <= ? AND delta IS NOT NULL",
                   .text(ticket), SQLValue(seq))
    }

    // MARK: Messages

    /// With `delta`, the message's `message.created` delta (at `m.at`) is
    /// logged in the same row: one B-tree write per note, where a separate
    /// log row dirtied a second page per ticket in every group commit.
    public func insertMessage(_ m: Message, mailMessageID: String?, delta: [UInt8]?, command: CommandKey?) throws(StoreError) {
        try db.run("""
            INSERT INTO messages(id, ticket, seq, channel, author_id, author_name, body, via, at, attachments, mail_message_id, delta_at, delta, command_key)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [.text(m.id), .text(m.ticket), SQLValue(m.seq), .text(m.channel.rawValue), .text(m.author.id),
                  .text(m.author.name), .text(m.body), .text(m.via.rawValue), .int(m.at),
                  StoreRows.encodeAttachments(m.attachments), SQLValue(mailMessageID),
                  delta == nil ? .null : .int(m.at), delta.map { .blob($0) } ?? .null,
                  command.map { .text(StoreRows.text(of: $0)) } ?? .null])
    }

    public func noteSeq(command: CommandKey, notBefore: Int64) throws(StoreError) -> Int? {
        try db.queryOne("SELECT seq FROM messages WHERE command_key = ? AND at >= ? LIMIT 1",
                        .text(StoreRows.text(of: command)), .int(notBefore))?.first?.int.map(Int.init)
    }

    public func recentMessages(ticket: String, limit: Int) throws(StoreError) -> [Message] {
        try db.query("SELECT \(StoreRows.messageColumns) WHERE ticket = ? ORDER BY seq DESC LIMIT ?", .text(ticket), SQLValue(limit))
            .map(StoreRows.message).reversed()
    }

    public func messages(ticket: String, before: Int, limit: Int) throws(StoreError) -> [Message] {
        try db.query("SELECT \(StoreRows.messageColumns) WHERE ticket = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
                     .text(ticket), SQLValue(before), SQLValue(limit)).map(StoreRows.message).reversed()
    }

    public func messages(ticket: String, after seq: Int) throws(StoreError) -> [Message] {
        try db.query("SELECT \(StoreRows.messageColumns) WHERE ticket = ? AND seq > ? ORDER BY seq", .text(ticket), SQLValue(seq)).map(StoreRows.message)
    }

    public func messages(ticket: String, after seq: Int, channels: [Channel], notBy author: String,
                         limit: Int) throws(StoreError) -> (recent: [Message], total: Int) {
        let channelList = channels.map { _ in "?" }.joined(separator: ", ")
        let filter = "ticket = ? AND seq > ? AND channel IN (\(channelList)) AND author_id <> ?"
        let values: [SQLValue] = [.text(ticket), SQLValue(seq)] + channels.map { .text($0.rawValue) } + [.text(author)]
        let recent = try db.query("SELECT \(StoreRows.messageColumns) WHERE \(filter) ORDER BY seq DESC LIMIT ?", values + [SQLValue(limit)])
            .map(StoreRows.message).reversed()
        // Counted only when the page is full: a short page is all of them.
        guard recent.count == limit else { return (Array(recent), recent.count) }
        let total = try db.query("SELECT count(*) FROM messages WHERE \(filter)", values).first?.first?.int ?? 0
        return (Array(recent), Int(total))
    }

    public func mailThreadIDs(ticket: String) throws(StoreError) -> [String] {
        try db.query("SELECT mail_message_id FROM messages WHERE ticket = ? AND mail_message_id IS NOT NULL ORDER BY seq", .text(ticket))
            .compactMap { $0[0].text }
    }

    public func message(mailMessageID id: String) throws(StoreError) -> Message? {
        try db.queryOne("SELECT \(StoreRows.messageColumns) WHERE mail_message_id = ? LIMIT 1", .text(id)).map(StoreRows.message)
    }

    public func message(mailMessageID id: String, tenant: String) throws(StoreError) -> Message? {
        // EXISTS, not a join: the columns stay `messageColumns`, and each
        // candidate (usually one) costs one lookup by the tickets' id key.
        try db.queryOne("""
            SELECT \(StoreRows.messageColumns) WHERE mail_message_id = ?
            AND EXISTS (SELECT 1 FROM tickets WHERE tickets.id = messages.ticket AND tickets.tenant = ?) LIMIT 1
            """, .text(id), .text(tenant)).map(StoreRows.message)
    }

    // MARK: Idempotency

    public func commandAnswer(_ command: CommandKey, notBefore: Int64) throws(StoreError) -> [UInt8]? {
        try db.queryOne("SELECT answer FROM command_answers WHERE tenant = ? AND technician = ? AND id = ? AND at >= ?",
                        .text(command.tenant), .text(command.technician), .text(command.id), .int(notBefore))?.first?.blob
    }

    public func saveCommandAnswer(_ command: CommandKey, at: Int64, answer: [UInt8]) throws(StoreError) {
        try db.run("INSERT OR REPLACE INTO command_answers(tenant, technician, id, at, answer) VALUES (?, ?, ?, ?, ?)",
                   .text(command.tenant), .text(command.technician), .text(command.id), .int(at), .blob(answer))
    }

    public func pruneCommandAnswers(before: Int64) throws(StoreError) {
        try db.run("DELETE FROM command_answers WHERE at < ?", .int(before))
    }

    // MARK: Mail

    public func putEmailAccount(tenant: String, _ a: EmailAccount) throws(StoreError) {
        try db.run("INSERT OR REPLACE INTO email_accounts(tenant, host, port, security, username, password, from_address) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   [.text(tenant), .text(a.host), SQLValue(a.port), .text(a.security.rawValue), SQLValue(a.username), SQLValue(a.password), .text(a.from)])
    }

    public func tenants(outboundAddresses addresses: [String]) throws(StoreError) -> [String] {
        var tenants = Set<String>()
        for address in addresses {
            for row in try db.query("SELECT tenant FROM email_accounts WHERE lower(from_address) = lower(?)", .text(address)) {
                if let t = row[0].text { tenants.insert(t) }
            }
        }
        return tenants.sorted()
    }

    public func putTenantEndpoint(tenant: String, kind: String, url: String?) throws(StoreError) {
        if let url {
            try db.run("INSERT OR REPLACE INTO tenant_endpoints(tenant, kind, url) VALUES (?, ?, ?)", .text(tenant), .text(kind), .text(url))
        } else {
            try db.run("DELETE FROM tenant_endpoints WHERE tenant = ? AND kind = ?", .text(tenant), .text(kind))
        }
    }

    public func tenantEndpoint(tenant: String, kind: String) throws(StoreError) -> String? {
        try db.queryOne("SELECT url FROM tenant_endpoints WHERE tenant = ? AND kind = ?", .text(tenant), .text(kind))?.first?.text
    }

    public func emailAccount(tenant: String) throws(StoreError) -> EmailAccount? {
        try db.queryOne("SELECT host, port, security, username, password, from_address FROM email_accounts WHERE tenant = ?", .text(tenant)).map(StoreRows.emailAccount)
    }

    public func recordSend(ticket: String, at: Int64, technician: String, recipient: String?, outcome: String, reply: String) throws(StoreError) {
        try db.run("INSERT INTO sends(ticket, at, technician, recipient, outcome, reply) VALUES (?, ?, ?, ?, ?, ?)",
                   .text(ticket), .int(at), .text(technician), SQLValue(recipient), .text(outcome), .text(reply))
    }

    public func sends(ticket: String) throws(StoreError) -> [(at: Int64, technician: String, recipient: String?, outcome: String, reply: String)] {
        try db.query("SELECT at, technician, recipient, outcome, reply FROM sends WHERE ticket = ? ORDER BY rowid", .text(ticket)).map(StoreRows.send)
    }

    public func finishSend(ticket: String, sending note: String, at: Int64, outcome: String?, reply: String) throws(StoreError) {
        if let outcome {
            try db.run("UPDATE sends SET at = ?, outcome = ?, reply = ? WHERE ticket = ? AND outcome = 'sending' AND reply = ?",
                       .int(at), .text(outcome), .text(reply), .text(ticket), .text(note))
        } else {
            try db.run("DELETE FROM sends WHERE ticket = ? AND outcome = 'sending' AND reply = ?", .text(ticket), .text(note))
        }
    }

    public func unsettledSends() throws(StoreError) -> [(ticket: String, technician: String, recipient: String?, note: String)] {
        try db.query("SELECT ticket, technician, recipient, reply FROM sends WHERE outcome = 'sending' ORDER BY rowid").map { row in
            (row[0].text ?? "", row[1].text ?? "", row[2].text, row[3].text ?? "")
        }
    }

    // MARK: SLA

    public func putSLAPolicy(tenant: String, priority: Priority, _ target: SLATarget) throws(StoreError) {
        try db.run("INSERT OR REPLACE INTO sla_policies(tenant, priority, response, resolution) VALUES (?, ?, ?, ?)",
                   .text(tenant), .text(priority.rawValue), SQLValue(target.response), SQLValue(target.resolution))
    }

    public func slaPolicy(tenant: String, priority: Priority) throws(StoreError) -> SLATarget? {
        try db.queryOne("SELECT response, resolution FROM sla_policies WHERE tenant = ? AND priority = ?", .text(tenant), .text(priority.rawValue))
            .map { SLATarget(response: Int($0[0].int ?? 0), resolution: Int($0[1].int ?? 0)) }
    }

    public func putBusinessHours(tenant: String, _ hours: BusinessHours?) throws(StoreError) {
        guard let hours else {
            try db.run("DELETE FROM sla_business_hours WHERE tenant = ?", .text(tenant))
            return
        }
        try db.run("INSERT OR REPLACE INTO sla_business_hours(tenant, days, start_minute, end_minute, utc_offset_minutes) VALUES (?, ?, ?, ?, ?)",
                   .text(tenant), .text(StoreRows.text(ofDays: hours.days)), SQLValue(hours.startMinute),
                   SQLValue(hours.endMinute), SQLValue(hours.utcOffsetMinutes))
    }

    public func businessHours(tenant: String) throws(StoreError) -> BusinessHours? {
        try db.queryOne("SELECT days, start_minute, end_minute, utc_offset_minutes FROM sla_business_hours WHERE tenant = ?", .text(tenant))
            .flatMap(StoreRows.businessHours)
    }

    // MARK: Sessions, summaries, time, attachments

    public func insertSession(_ s: RemoteSession) throws(StoreError) {
        try db.run("INSERT INTO sessions(id, ticket, asset, technician_id, technician_name, status, expires_at, created_at, kind, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [.text(s.id), .text(s.ticket), .text(s.asset), .text(s.technician.id), .text(s.technician.name),
                    .text(s.status.rawValue), .int(s.expiresAt), .int(s.createdAt), .text(s.kind), s.startedAt.map { .int($0) } ?? .null])
    }

    public func updateSession(id: String, status: SessionStatus, startedAt: Int64?) throws(StoreError) {
        // A nil `startedAt` keeps the one stored: only activation sets it.
        try db.run("UPDATE sessions SET status = ?, started_at = COALESCE(?, started_at) WHERE id = ?",
                   .text(status.rawValue), startedAt.map { .int($0) } ?? .null, .text(id))
    }

    public func latestSession(ticket: String) throws(StoreError) -> RemoteSession? {
        try db.queryOne("SELECT \(StoreRows.sessionColumns) WHERE ticket = ? ORDER BY created_at DESC, rowid DESC LIMIT 1", .text(ticket)).map(StoreRows.session)
    }

    public func session(_ id: String) throws(StoreError) -> RemoteSession? {
        try db.queryOne("SELECT \(StoreRows.sessionColumns) WHERE id = ?", .text(id)).map(StoreRows.session)
    }

    public func pendingSessions() throws(StoreError) -> [RemoteSession] {
        try db.query("SELECT \(StoreRows.sessionColumns) WHERE status = 'awaiting_consent' ORDER BY expires_at").map(StoreRows.session)
    }

    public func activeSessions() throws(StoreError) -> [RemoteSession] {
        try db.query("SELECT \(StoreRows.sessionColumns) WHERE status = 'active' ORDER BY created_at").map(StoreRows.session)
    }

    public func putSummary(ticket: String, _ s: Summary) throws(StoreError) {
        try db.run("INSERT OR REPLACE INTO summaries(ticket, text, model, at, covers) VALUES (?, ?, ?, ?, ?)",
                   .text(ticket), .text(s.text), .text(s.model), .int(s.at), SQLValue(s.covers.map(Int64.init)))
    }

    public func summary(ticket: String) throws(StoreError) -> Summary? {
        try db.queryOne("SELECT text, model, at, covers FROM summaries WHERE ticket = ?", .text(ticket)).map(StoreRows.summary)
    }

    public func timeState(ticket: String, recentEntries: Int) throws(StoreError) -> TimeState {
        let entries = try db.query("SELECT technician_id, technician_name, started_at, seconds, note FROM time_entries WHERE ticket = ? ORDER BY rowid DESC LIMIT ?",
                                   .text(ticket), SQLValue(recentEntries)).map(StoreRows.timeEntry)
        let sums = try db.queryOne("SELECT count(*), coalesce(sum(seconds), 0) FROM time_entries WHERE ticket = ?", .text(ticket))
        return TimeState(active: try activeTimer(ticket: ticket), entries: entries.reversed(),
                         entryCount: Int(sums?[0].int ?? 0), total: Int(sums?[1].int ?? 0))
    }

    public func contractSeconds(tenant: String, client: String, contract: String, since: Int64) throws(StoreError) -> Int {
        Int(try db.queryOne("""
            SELECT coalesce(sum(e.seconds), 0) FROM time_entries e JOIN tickets t ON t.id = e.ticket
            WHERE t.tenant = ? AND t.client = ? AND t.contract = ? AND e.started_at >= ?
            """, .text(tenant), .text(client), .text(contract), .int(since))?[0].int ?? 0)
    }

    public func activeTimer(ticket: String) throws(StoreError) -> (technician: PersonRef, startedAt: Int64)? {
        try db.queryOne("SELECT technician_id, technician_name, started_at FROM active_timers WHERE ticket = ?", .text(ticket)).map(StoreRows.activeTimer)
    }

    public func startTimer(ticket: String, technician: PersonRef, at: Int64) throws(StoreError) {
        try db.run("INSERT INTO active_timers(ticket, technician_id, technician_name, started_at) VALUES (?, ?, ?, ?)",
                   .text(ticket), .text(technician.id), .text(technician.name), .int(at))
    }

    public func stopTimer(ticket: String) throws(StoreError) -> (technician: PersonRef, startedAt: Int64)? {
        let active = try activeTimer(ticket: ticket)
        try db.run("DELETE FROM active_timers WHERE ticket = ?", .text(ticket))
        return active
    }

    public func addTimeEntry(ticket: String, _ e: TimeEntry) throws(StoreError) {
        try db.run("INSERT INTO time_entries(ticket, technician_id, technician_name, started_at, seconds, note) VALUES (?, ?, ?, ?, ?, ?)",
                   .text(ticket), .text(e.technician.id), .text(e.technician.name), .int(e.startedAt), SQLValue(e.seconds), SQLValue(e.note))
    }

    public func insertAttachment(_ a: AttachmentRef, ticket: String, sha256: String, at: Int64) throws(StoreError) {
        try db.run("INSERT INTO attachments(id, ticket, filename, content_type, size, sha256, uploaded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   .text(a.id), .text(ticket), .text(a.filename), .text(a.contentType), SQLValue(a.size), .text(sha256), .int(at))
    }

    public func attachment(_ id: String) throws(StoreError) -> (ref: AttachmentRef, ticket: String, sha256: String)? {
        try db.queryOne("SELECT id, filename, content_type, size, ticket, sha256 FROM attachments WHERE id = ?", .text(id)).map(StoreRows.attachment)
    }

    public func isAttachmentFileReferenced(sha256: String) throws(StoreError) -> Bool {
        try db.queryOne("SELECT 1 FROM attachments WHERE sha256 = ? LIMIT 1", .text(sha256)) != nil
    }
}
