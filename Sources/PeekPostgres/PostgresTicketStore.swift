import CPostgres
import PeekCore
import PeekStore

/// The store on PostgreSQL (`--database postgres://...`): one connection,
/// used by the engine's thread. A COMMIT with `synchronous_commit` on (the
/// server's default) returns once the WAL is flushed, so `durability` is
/// nil: a commit that returned is durable, and the engine acknowledges then.
///
/// Several nodes share one database: no cache outlives a transaction
/// (another node may have written since), the schema migrates under an
/// advisory lock, `ticket(_:)` locks the ticket's row inside a writing
/// transaction, so the seq the engine assigns from it (`seq + 1`) cannot be
/// assigned twice, and ticket numbers come from a counter row. Deltas reach
/// the other nodes through `PostgresBus` (PeekServer); presence and timers
/// are per node for now (README, "PostgreSQL").
public final class PostgresTicketStore: TicketStore {
    public let connection: PostgresConnection
    public var durability: (any Durability)? { nil }
    /// Inside `beginReadOnly`: PostgreSQL refuses SELECT ... FOR UPDATE there.
    private var readOnly = false

    public init(url: String) throws(StoreError) {
        connection = try PostgresConnection(url: url)
        try Self.migrate(connection)
    }

    /// Applies the migrations not yet applied. Nodes starting at once queue
    /// on the advisory lock; each then finds the version the one before it
    /// left, so every migration runs once.
    static func migrate(_ db: PostgresConnection) throws(StoreError) {
        try db.run("SELECT pg_advisory_lock($1)", .int(PostgresSchema.migrationLock))
        do throws(StoreError) {
            try db.execute("CREATE TABLE IF NOT EXISTS peek_schema (version INTEGER NOT NULL)")
            if try db.queryOne("SELECT version FROM peek_schema") == nil {
                try db.run("INSERT INTO peek_schema(version) VALUES (0)")
            }
            let current = Int(try db.queryOne("SELECT version FROM peek_schema")?.first?.int ?? 0)
            for (i, sql) in PostgresSchema.migrations.enumerated() where i >= current {
                try db.execute("BEGIN")
                do throws(StoreError) {
                    try db.execute(sql)
                    try db.run("UPDATE peek_schema SET version = $1", SQLValue(i + 1))
                    try db.execute("COMMIT")
                } catch {
                    try? db.execute("ROLLBACK")
                    throw error
                }
            }
        } catch {
            _ = try? db.run("SELECT pg_advisory_unlock($1)", .int(PostgresSchema.migrationLock))
            throw error
        }
        try db.run("SELECT pg_advisory_unlock($1)", .int(PostgresSchema.migrationLock))
    }

    /// How many migrations this database has had.
    public func schemaVersion() throws(StoreError) -> Int {
        Int(try connection.queryOne("SELECT version FROM peek_schema")?.first?.int ?? 0)
    }

    // MARK: Transactions

    /// Reconnects first if the server closed the connection since the last
    /// transaction (a restart): nothing was open, so nothing is lost, and
    /// the batch runs instead of failing like every batch after it would.
    public func begin() throws(StoreError) {
        if connection.isBroken { try connection.reconnect() }
        do throws(StoreError) {
            try connection.execute("BEGIN")
        } catch where connection.isBroken {
            // The break was found by this BEGIN itself.
            try connection.reconnect()
            try connection.execute("BEGIN")
        }
    }
    public func beginReadOnly() {
        readOnly = true
        _ = try? connection.execute("BEGIN READ ONLY")
    }
    /// PostgreSQL answers COMMIT of a doomed transaction with ROLLBACK, not
    /// an error: that is a failed commit too.
    public func commit() throws(StoreError) {
        if transactionLost { throw Self.lost }
        let tag = try connection.commandTag("COMMIT")
        guard tag == "COMMIT" else { throw Self.lost }
    }
    public func rollback() {
        readOnly = false
        if connection.transactionStatus != PQTRANS_IDLE { _ = try? connection.execute("ROLLBACK") }
    }
    /// After any error outside a savepoint PostgreSQL keeps the transaction
    /// open but doomed: every statement fails until ROLLBACK.
    public var transactionLost: Bool { connection.transactionStatus == PQTRANS_INERROR }
    public func savepoint() throws(StoreError) { try connection.execute("SAVEPOINT command") }
    public func releaseSavepoint() throws(StoreError) { try connection.execute("RELEASE SAVEPOINT command") }
    public func rollbackToSavepoint() {
        _ = try? connection.execute("ROLLBACK TO SAVEPOINT command")
        _ = try? connection.execute("RELEASE SAVEPOINT command")
    }

    private static let lost = StoreError(sqlState: "25P02", message: "PostgreSQL rolled the transaction back after an earlier error; nothing of it was saved")

    // MARK: Directory

    public func createTenant(_ t: Tenant, at: Int64) throws(StoreError) {
        try connection.run("INSERT INTO tenants(id, name, created_at) VALUES ($1, $2, $3)", .text(t.id), .text(t.name), .int(at))
    }

    public func tenant(_ id: String) throws(StoreError) -> Tenant? {
        try connection.queryOne("SELECT id, name FROM tenants WHERE id = $1", .text(id)).map { Tenant(id: $0[0].text ?? "", name: $0[1].text ?? "") }
    }

    public func createTechnician(_ t: Technician) throws(StoreError) {
        try connection.run("INSERT INTO technicians(tenant, id, name, email) VALUES ($1, $2, $3, $4)",
                           .text(t.tenant), .text(t.id), .text(t.name), .text(t.email))
    }

    public func technician(tenant: String, id: String) throws(StoreError) -> Technician? {
        try connection.queryOne("SELECT tenant, id, name, email FROM technicians WHERE tenant = $1 AND id = $2",
                                .text(tenant), .text(id)).map(StoreRows.technician)
    }

    public func technicians(tenant: String) throws(StoreError) -> [Technician] {
        try connection.query("SELECT tenant, id, name, email FROM technicians WHERE tenant = $1 ORDER BY name", .text(tenant))
            .map(StoreRows.technician)
    }

    public func createAsset(_ a: Asset) throws(StoreError) {
        try connection.run("INSERT INTO assets(tenant, id, name, agent, posture) VALUES ($1, $2, $3, $4, $5)",
                           .text(a.tenant), .text(a.id), .text(a.name), .text(a.agent), a.posture.map { .blob($0) } ?? .null)
    }

    public func asset(tenant: String, id: String) throws(StoreError) -> Asset? {
        try connection.queryOne("SELECT tenant, id, name, agent, posture FROM assets WHERE tenant = $1 AND id = $2",
                                .text(tenant), .text(id)).map(StoreRows.asset)
    }

    public func putAssetPosture(tenant: String, id: String, posture: [UInt8]?) throws(StoreError) {
        try connection.run("UPDATE assets SET posture = $1 WHERE tenant = $2 AND id = $3", posture.map { .blob($0) } ?? .null, .text(tenant), .text(id))
    }

    public func asset(agent: String) throws(StoreError) -> Asset? {
        try connection.queryOne("SELECT tenant, id, name, agent, posture FROM assets WHERE agent = $1 AND revoked = 0",
                                .text(agent)).map(StoreRows.asset)
    }

    public func saveTelemetry(tenant: String, asset: String, _ t: Telemetry) throws(StoreError) {
        try connection.run("UPDATE assets SET cpu = $1, ram = $2, disk = $3, telemetry_at = $4 WHERE tenant = $5 AND id = $6",
                           .double(t.cpu), .double(t.ram), .double(t.disk), .int(t.at), .text(tenant), .text(asset))
    }

    public func telemetry(tenant: String, asset: String) throws(StoreError) -> Telemetry? {
        guard let row = try connection.queryOne("SELECT cpu, ram, disk, telemetry_at FROM assets WHERE tenant = $1 AND id = $2",
                                                .text(tenant), .text(asset)),
              let cpu = row[0].double, let ram = row[1].double, let disk = row[2].double, let at = row[3].int else { return nil }
        return Telemetry(cpu: cpu, ram: ram, disk: disk, at: at)
    }

    // MARK: Tickets

    /// The next number from the `ticket_numbers` row, updated (and so
    /// locked) in the writing transaction: another node creating a ticket
    /// at the same moment waits for this commit and takes the number after,
    /// where MAX + 1 gave both the same number and failed the second insert
    /// on the key. Never below MAX + 1: rows copied in by `peekd migrate`
    /// (or written around the counter) are counted too. A rolled-back
    /// transaction gives its number back, as on SQLite.
    public func nextTicketNumber() throws(StoreError) -> Int {
        let row = try connection.queryOne("""
            UPDATE ticket_numbers SET last = GREATEST(last, (SELECT COALESCE(MAX(number), 1000) FROM tickets)) + 1
            WHERE id = 1 RETURNING last
            """)
        guard let number = row?.first?.int else {
            throw StoreError(sqlState: "P0002", message: "the ticket_numbers row is missing")
        }
        return Int(number)
    }

    public func insertTicket(_ t: Ticket) throws(StoreError) {
        try connection.run("""
            INSERT INTO tickets(number, id, tenant, subject, status, priority, assignee, contact_name, contact_email, client,
                asset, first_response_at, created_at, version, seq, contract, response_due, resolution_due, paused_since,
                response_breached, resolution_breached)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)
            """, StoreRows.insertValues(t))
    }

    public func updateTicket(_ t: Ticket) throws(StoreError) {
        try connection.run("""
            UPDATE tickets SET subject = $1, status = $2, priority = $3, assignee = $4, contact_name = $5, contact_email = $6,
                client = $7, asset = $8, first_response_at = $9, version = $10, seq = $11, contract = $12, response_due = $13,
                resolution_due = $14, paused_since = $15, response_breached = $16, resolution_breached = $17
            WHERE id = $18
            """, StoreRows.updateValues(t))
    }

    /// The engine reads a ticket here before it writes it (its next seq is
    /// `seq + 1`), so in a writing transaction the row is locked until the
    /// commit: a second writer on the same ticket waits and then reads the
    /// seq this one wrote, instead of assigning the same seq again.
    public func ticket(_ id: String) throws(StoreError) -> Ticket? {
        let lock = readOnly ? "" : " FOR UPDATE OF t"
        return try connection.queryOne("SELECT \(StoreRows.ticketColumns) WHERE t.id = $1\(lock)", .text(id)).map(StoreRows.ticket)
    }

    public func tickets(tenant: String, limit: Int) throws(StoreError) -> [Ticket] {
        try connection.query("SELECT \(StoreRows.ticketColumns) WHERE t.tenant = $1 ORDER BY t.number LIMIT $2",
                             .text(tenant), SQLValue(limit)).map(StoreRows.ticket)
    }

    public func ticketsLinked(tenant: String, asset: String) throws(StoreError) -> [String] {
        try connection.query("SELECT id FROM tickets WHERE tenant = $1 AND asset = $2 ORDER BY number", .text(tenant), .text(asset))
            .compactMap { $0[0].text }
    }

    public func related(to t: Ticket, limit: Int) throws(StoreError) -> [Ticket] {
        try connection.query("""
            SELECT \(StoreRows.ticketColumns) WHERE t.tenant = $1 AND t.id <> $2
              AND ((t.contact_email IS NOT NULL AND t.contact_email = $3) OR (t.asset IS NOT NULL AND t.asset = $4))
            ORDER BY t.number DESC LIMIT $5
            """, .text(t.tenant), .text(t.id), SQLValue(t.contact.email), SQLValue(t.asset?.id), SQLValue(limit)).map(StoreRows.ticket)
    }

    public func ticketsWithOpenSLA() throws(StoreError) -> [Ticket] {
        try connection.query("""
            SELECT \(StoreRows.ticketColumns) \(StoreRows.openSLAFilter)
            """).map(StoreRows.ticket)
    }

    // MARK: Log

    /// Message deltas are stored with their message; this takes every other
    /// kind. A seq already logged with a message is refused as the key would.
    public func appendDelta(ticket: String, seq: Int, at: Int64, kind: DeltaKind, data: [UInt8]) throws(StoreError) {
        if try connection.queryOne("SELECT 1 FROM messages WHERE ticket = $1 AND seq = $2 AND delta IS NOT NULL",
                                   .text(ticket), SQLValue(seq)) != nil {
            throw StoreError(sqlState: "23505", message: "duplicate key value violates unique constraint \"deltas_pkey\"")
        }
        try connection.run("INSERT INTO deltas(ticket, seq, at, kind, data) VALUES ($1, $2, $3, $4, $5)",
                           .text(ticket), SQLValue(seq), .int(at), .text(kind.rawValue), .blob(data))
    }

    private static let logAfter = """
        SELECT seq, at, kind, data FROM deltas WHERE ticket = $1 AND seq > $2
        UNION ALL
        SELECT seq, delta_at, '\(DeltaKind.messageCreated.rawValue)', delta FROM messages WHERE ticket = $1 AND seq > $2 AND delta IS NOT NULL
        ORDER BY seq LIMIT $3
        """

    public func deltas(ticket: String, after seq: Int, limit: Int) throws(StoreError) -> [(seq: Int, at: Int64, kind: String, data: [UInt8])] {
        try connection.query(Self.logAfter, .text(ticket), SQLValue(seq), SQLValue(limit)).map { r in
            (Int(r[0].int ?? 0), r[1].int ?? 0, r[2].text ?? "", r[3].blob ?? [])
        }
    }

    public func oldestDeltaSeq(ticket: String) throws(StoreError) -> Int? {
        try connection.queryOne("""
            SELECT LEAST((SELECT MIN(seq) FROM deltas WHERE ticket = $1),
                         (SELECT MIN(seq) FROM messages WHERE ticket = $1 AND delta IS NOT NULL))
            """, .text(ticket))?.first?.int.map(Int.init)
    }

    public func pruneDeltas(ticket: String, keepingAfter seq: Int) throws(StoreError) {
        try connection.run("DELETE FROM deltas WHERE ticket = $1 AND seq <= $2", .text(ticket), SQLValue(seq))
        // The message stays; only its copy in the log goes.
        try connection.run("UPDATE messages SET delta_at = NULL, delta = NULL WHERE ticket = $1 AND seq <= $2 AND delta IS NOT NULL",
                           .text(ticket), SQLValue(seq))
    }

    // MARK: Messages

    public func insertMessage(_ m: Message, mailMessageID: String?, delta: [UInt8]?, command: CommandKey?) throws(StoreError) {
        try connection.run("""
            INSERT INTO messages(id, ticket, seq, channel, author_id, author_name, body, via, at, attachments, mail_message_id,
                delta_at, delta, command_key)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
            """, [.text(m.id), .text(m.ticket), SQLValue(m.seq), .text(m.channel.rawValue), .text(m.author.id),
                  .text(m.author.name), .text(m.body), .text(m.via.rawValue), .int(m.at),
                  StoreRows.encodeAttachments(m.attachments), SQLValue(mailMessageID),
                  delta == nil ? .null : .int(m.at), delta.map { .blob($0) } ?? .null,
                  command.map { .text(StoreRows.text(of: $0)) } ?? .null])
    }

    public func noteSeq(command: CommandKey, notBefore: Int64) throws(StoreError) -> Int? {
        try connection.queryOne("SELECT seq FROM messages WHERE command_key = $1 AND at >= $2 LIMIT 1",
                                .text(StoreRows.text(of: command)), .int(notBefore))?.first?.int.map(Int.init)
    }

    public func recentMessages(ticket: String, limit: Int) throws(StoreError) -> [Message] {
        try connection.query("SELECT \(StoreRows.messageColumns) WHERE ticket = $1 ORDER BY seq DESC LIMIT $2",
                             .text(ticket), SQLValue(limit)).map(StoreRows.message).reversed()
    }

    public func messages(ticket: String, before: Int, limit: Int) throws(StoreError) -> [Message] {
        try connection.query("SELECT \(StoreRows.messageColumns) WHERE ticket = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
                             .text(ticket), SQLValue(before), SQLValue(limit)).map(StoreRows.message).reversed()
    }

    public func messages(ticket: String, after seq: Int) throws(StoreError) -> [Message] {
        try connection.query("SELECT \(StoreRows.messageColumns) WHERE ticket = $1 AND seq > $2 ORDER BY seq",
                             .text(ticket), SQLValue(seq)).map(StoreRows.message)
    }

    public func messages(ticket: String, after seq: Int, channels: [Channel], notBy author: String,
                         limit: Int) throws(StoreError) -> (recent: [Message], total: Int) {
        let channelList = channels.indices.map { "$\($0 + 4)" }.joined(separator: ", ")
        let filter = "ticket = $1 AND seq > $2 AND author_id <> $3 AND channel IN (\(channelList))"
        let values: [SQLValue] = [.text(ticket), SQLValue(seq), .text(author)] + channels.map { .text($0.rawValue) }
        let recent = try connection.query("SELECT \(StoreRows.messageColumns) WHERE \(filter) ORDER BY seq DESC LIMIT $\(values.count + 1)",
                                          values + [SQLValue(limit)]).map(StoreRows.message).reversed()
        // Counted only when the page is full: a short page is all of them.
        guard recent.count == limit else { return (Array(recent), recent.count) }
        let total = try connection.query("SELECT count(*) FROM messages WHERE \(filter)", values).first?.first?.int ?? 0
        return (Array(recent), Int(total))
    }

    public func mailThreadIDs(ticket: String) throws(StoreError) -> [String] {
        try connection.query("SELECT mail_message_id FROM messages WHERE ticket = $1 AND mail_message_id IS NOT NULL ORDER BY seq",
                             .text(ticket)).compactMap { $0[0].text }
    }

    public func message(mailMessageID id: String) throws(StoreError) -> Message? {
        try connection.queryOne("SELECT \(StoreRows.messageColumns) WHERE mail_message_id = $1 ORDER BY ord LIMIT 1", .text(id))
            .map(StoreRows.message)
    }

    public func message(mailMessageID id: String, tenant: String) throws(StoreError) -> Message? {
        try connection.queryOne("""
            SELECT \(StoreRows.messageColumns) WHERE mail_message_id = $1
            AND EXISTS (SELECT 1 FROM tickets WHERE tickets.id = messages.ticket AND tickets.tenant = $2) ORDER BY ord LIMIT 1
            """, .text(id), .text(tenant)).map(StoreRows.message)
    }

    // MARK: Idempotency

    public func commandAnswer(_ command: CommandKey, notBefore: Int64) throws(StoreError) -> [UInt8]? {
        try connection.queryOne("SELECT answer FROM command_answers WHERE tenant = $1 AND technician = $2 AND id = $3 AND at >= $4",
                                .text(command.tenant), .text(command.technician), .text(command.id), .int(notBefore))?.first?.blob
    }

    public func saveCommandAnswer(_ command: CommandKey, at: Int64, answer: [UInt8]) throws(StoreError) {
        try connection.run("""
            INSERT INTO command_answers(tenant, technician, id, at, answer) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (tenant, technician, id) DO UPDATE SET at = EXCLUDED.at, answer = EXCLUDED.answer
            """, .text(command.tenant), .text(command.technician), .text(command.id), .int(at), .blob(answer))
    }

    public func pruneCommandAnswers(before: Int64) throws(StoreError) {
        try connection.run("DELETE FROM command_answers WHERE at < $1", .int(before))
    }

    // MARK: Mail

    public func putEmailAccount(tenant: String, _ a: EmailAccount) throws(StoreError) {
        try connection.run("""
            INSERT INTO email_accounts(tenant, host, port, security, username, password, from_address) VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT (tenant) DO UPDATE SET host = EXCLUDED.host, port = EXCLUDED.port, security = EXCLUDED.security,
                username = EXCLUDED.username, password = EXCLUDED.password, from_address = EXCLUDED.from_address
            """, [.text(tenant), .text(a.host), SQLValue(a.port), .text(a.security.rawValue), SQLValue(a.username),
                  SQLValue(a.password), .text(a.from)])
    }

    public func putTenantEndpoint(tenant: String, kind: String, url: String?) throws(StoreError) {
        if let url {
            try connection.run("""
                INSERT INTO tenant_endpoints(tenant, kind, url) VALUES ($1, $2, $3)
                ON CONFLICT (tenant, kind) DO UPDATE SET url = EXCLUDED.url
                """, .text(tenant), .text(kind), .text(url))
        } else {
            try connection.run("DELETE FROM tenant_endpoints WHERE tenant = $1 AND kind = $2", .text(tenant), .text(kind))
        }
    }

    public func tenantEndpoint(tenant: String, kind: String) throws(StoreError) -> String? {
        try connection.queryOne("SELECT url FROM tenant_endpoints WHERE tenant = $1 AND kind = $2", .text(tenant), .text(kind))?.first?.text
    }

    public func emailAccount(tenant: String) throws(StoreError) -> EmailAccount? {
        try connection.queryOne("SELECT host, port, security, username, password, from_address FROM email_accounts WHERE tenant = $1",
                                .text(tenant)).map(StoreRows.emailAccount)
    }

    public func tenants(outboundAddresses addresses: [String]) throws(StoreError) -> [String] {
        guard !addresses.isEmpty else { return [] }
        let list = addresses.indices.map { "lower($\($0 + 1))" }.joined(separator: ", ")
        return try connection.query("SELECT DISTINCT tenant FROM email_accounts WHERE lower(from_address) IN (\(list)) ORDER BY tenant",
                                    addresses.map { .text($0) }).compactMap { $0[0].text }
    }

    public func recordSend(ticket: String, at: Int64, technician: String, recipient: String?, outcome: String, reply: String) throws(StoreError) {
        try connection.run("INSERT INTO sends(ticket, at, technician, recipient, outcome, reply) VALUES ($1, $2, $3, $4, $5, $6)",
                           .text(ticket), .int(at), .text(technician), SQLValue(recipient), .text(outcome), .text(reply))
    }

    public func sends(ticket: String) throws(StoreError) -> [(at: Int64, technician: String, recipient: String?, outcome: String, reply: String)] {
        try connection.query("SELECT at, technician, recipient, outcome, reply FROM sends WHERE ticket = $1 ORDER BY ord", .text(ticket))
            .map(StoreRows.send)
    }

    public func finishSend(ticket: String, sending note: String, at: Int64, outcome: String?, reply: String) throws(StoreError) {
        if let outcome {
            try connection.run("UPDATE sends SET at = $1, outcome = $2, reply = $3 WHERE ticket = $4 AND outcome = 'sending' AND reply = $5",
                               .int(at), .text(outcome), .text(reply), .text(ticket), .text(note))
        } else {
            try connection.run("DELETE FROM sends WHERE ticket = $1 AND outcome = 'sending' AND reply = $2", .text(ticket), .text(note))
        }
    }

    public func unsettledSends() throws(StoreError) -> [(ticket: String, technician: String, recipient: String?, note: String)] {
        try connection.query("SELECT ticket, technician, recipient, reply FROM sends WHERE outcome = 'sending' ORDER BY ord").map { row in
            (row[0].text ?? "", row[1].text ?? "", row[2].text, row[3].text ?? "")
        }
    }

    // MARK: SLA

    public func putSLAPolicy(tenant: String, priority: Priority, _ target: SLATarget) throws(StoreError) {
        try connection.run("""
            INSERT INTO sla_policies(tenant, priority, response, resolution) VALUES ($1, $2, $3, $4)
            ON CONFLICT (tenant, priority) DO UPDATE SET response = EXCLUDED.response, resolution = EXCLUDED.resolution
            """, .text(tenant), .text(priority.rawValue), SQLValue(target.response), SQLValue(target.resolution))
    }

    public func slaPolicy(tenant: String, priority: Priority) throws(StoreError) -> SLATarget? {
        try connection.queryOne("SELECT response, resolution FROM sla_policies WHERE tenant = $1 AND priority = $2",
                                .text(tenant), .text(priority.rawValue))
            .map { SLATarget(response: Int($0[0].int ?? 0), resolution: Int($0[1].int ?? 0)) }
    }

    public func putBusinessHours(tenant: String, _ hours: BusinessHours?) throws(StoreError) {
        guard let hours else {
            try connection.run("DELETE FROM sla_business_hours WHERE tenant = $1", .text(tenant))
            return
        }
        try connection.run("""
            INSERT INTO sla_business_hours(tenant, days, start_minute, end_minute, utc_offset_minutes) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (tenant) DO UPDATE SET days = EXCLUDED.days, start_minute = EXCLUDED.start_minute,
                end_minute = EXCLUDED.end_minute, utc_offset_minutes = EXCLUDED.utc_offset_minutes
            """, .text(tenant), .text(StoreRows.text(ofDays: hours.days)), SQLValue(hours.startMinute),
            SQLValue(hours.endMinute), SQLValue(hours.utcOffsetMinutes))
    }

    public func businessHours(tenant: String) throws(StoreError) -> BusinessHours? {
        try connection.queryOne("SELECT days, start_minute, end_minute, utc_offset_minutes FROM sla_business_hours WHERE tenant = $1",
                                .text(tenant)).flatMap(StoreRows.businessHours)
    }

    // MARK: Sessions, summaries, time, attachments

    public func insertSession(_ s: RemoteSession) throws(StoreError) {
        try connection.run("""
            INSERT INTO sessions(id, ticket, asset, technician_id, technician_name, status, expires_at, created_at, kind, started_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            """, [.text(s.id), .text(s.ticket), .text(s.asset), .text(s.technician.id), .text(s.technician.name),
                  .text(s.status.rawValue), .int(s.expiresAt), .int(s.createdAt), .text(s.kind), SQLValue(s.startedAt)])
    }

    public func updateSession(id: String, status: SessionStatus, startedAt: Int64?) throws(StoreError) {
        // A nil `startedAt` keeps the one stored: only activation sets it.
        try connection.run("UPDATE sessions SET status = $1, started_at = COALESCE($2, started_at) WHERE id = $3",
                           .text(status.rawValue), SQLValue(startedAt), .text(id))
    }

    public func latestSession(ticket: String) throws(StoreError) -> RemoteSession? {
        try connection.queryOne("SELECT \(StoreRows.sessionColumns) WHERE ticket = $1 ORDER BY created_at DESC, ord DESC LIMIT 1",
                                .text(ticket)).map(StoreRows.session)
    }

    public func session(_ id: String) throws(StoreError) -> RemoteSession? {
        try connection.queryOne("SELECT \(StoreRows.sessionColumns) WHERE id = $1", .text(id)).map(StoreRows.session)
    }

    public func pendingSessions() throws(StoreError) -> [RemoteSession] {
        try connection.query("SELECT \(StoreRows.sessionColumns) WHERE status = 'awaiting_consent' ORDER BY expires_at")
            .map(StoreRows.session)
    }

    public func activeSessions() throws(StoreError) -> [RemoteSession] {
        try connection.query("SELECT \(StoreRows.sessionColumns) WHERE status = 'active' ORDER BY created_at")
            .map(StoreRows.session)
    }

    public func putSummary(ticket: String, _ s: Summary) throws(StoreError) {
        try connection.run("""
            INSERT INTO summaries(ticket, text, model, at, covers) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (ticket) DO UPDATE SET text = EXCLUDED.text, model = EXCLUDED.model, at = EXCLUDED.at, covers = EXCLUDED.covers
            """, .text(ticket), .text(s.text), .text(s.model), .int(s.at), SQLValue(s.covers.map(Int64.init)))
    }

    public func summary(ticket: String) throws(StoreError) -> Summary? {
        try connection.queryOne("SELECT text, model, at, covers FROM summaries WHERE ticket = $1", .text(ticket)).map(StoreRows.summary)
    }

    public func timeState(ticket: String, recentEntries: Int) throws(StoreError) -> TimeState {
        let entries = try connection.query("""
            SELECT technician_id, technician_name, started_at, seconds, note FROM time_entries WHERE ticket = $1 ORDER BY ord DESC LIMIT $2
            """, .text(ticket), SQLValue(recentEntries)).map(StoreRows.timeEntry)
        let sums = try connection.queryOne("SELECT count(*), coalesce(sum(seconds), 0) FROM time_entries WHERE ticket = $1", .text(ticket))
        return TimeState(active: try activeTimer(ticket: ticket), entries: entries.reversed(),
                         entryCount: Int(sums?[0].int ?? 0), total: Int(sums?[1].int ?? 0))
    }

    public func activeTimer(ticket: String) throws(StoreError) -> (technician: PersonRef, startedAt: Int64)? {
        try connection.queryOne("SELECT technician_id, technician_name, started_at FROM active_timers WHERE ticket = $1", .text(ticket))
            .map(StoreRows.activeTimer)
    }

    public func startTimer(ticket: String, technician: PersonRef, at: Int64) throws(StoreError) {
        try connection.run("INSERT INTO active_timers(ticket, technician_id, technician_name, started_at) VALUES ($1, $2, $3, $4)",
                           .text(ticket), .text(technician.id), .text(technician.name), .int(at))
    }

    public func stopTimer(ticket: String) throws(StoreError) -> (technician: PersonRef, startedAt: Int64)? {
        try connection.queryOne("DELETE FROM active_timers WHERE ticket = $1 RETURNING technician_id, technician_name, started_at",
                                .text(ticket)).map(StoreRows.activeTimer)
    }

    public func contractSeconds(tenant: String, client: String, contract: String, since: Int64) throws(StoreError) -> Int {
        Int(try connection.queryOne("""
            SELECT coalesce(sum(e.seconds), 0)::BIGINT FROM time_entries e JOIN tickets t ON t.id = e.ticket
            WHERE t.tenant = $1 AND t.client = $2 AND t.contract = $3 AND e.started_at >= $4
            """, .text(tenant), .text(client), .text(contract), .int(since))?[0].int ?? 0)
    }

    public func addTimeEntry(ticket: String, _ e: TimeEntry) throws(StoreError) {
        try connection.run("""
            INSERT INTO time_entries(ticket, technician_id, technician_name, started_at, seconds, note) VALUES ($1, $2, $3, $4, $5, $6)
            """, .text(ticket), .text(e.technician.id), .text(e.technician.name), .int(e.startedAt), SQLValue(e.seconds), SQLValue(e.note))
    }

    public func insertAttachment(_ a: AttachmentRef, ticket: String, sha256: String, at: Int64) throws(StoreError) {
        try connection.run("""
            INSERT INTO attachments(id, ticket, filename, content_type, size, sha256, uploaded_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
            """, .text(a.id), .text(ticket), .text(a.filename), .text(a.contentType), SQLValue(a.size), .text(sha256), .int(at))
    }

    public func attachment(_ id: String) throws(StoreError) -> (ref: AttachmentRef, ticket: String, sha256: String)? {
        try connection.queryOne("SELECT id, filename, content_type, size, ticket, sha256 FROM attachments WHERE id = $1", .text(id))
            .map(StoreRows.attachment)
    }

    public func isAttachmentFileReferenced(sha256: String) throws(StoreError) -> Bool {
        try connection.queryOne("SELECT 1 FROM attachments WHERE sha256 = $1 LIMIT 1", .text(sha256)) != nil
    }
}
