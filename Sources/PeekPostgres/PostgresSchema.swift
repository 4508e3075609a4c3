/// The PostgreSQL schema's migrations, applied in order under an advisory
/// lock (see `PostgresTicketStore.migrate`); `peek_schema.version` records
/// how many ran. A migration is never edited once released: add a new one.
///
/// Migration 1 is SQLite's schema as its first six migrations left it, in
/// PostgreSQL's types: the same tables, columns and keys, so `StoreRows`
/// reads a row of either. Where SQLite orders by its implicit `rowid`,
/// an `ord` identity column keeps the order of insertion.
enum PostgresSchema {
    /// The key of the advisory lock that serialises migrations across
    /// nodes starting at once ("peek" in ASCII).
    static let migrationLock: Int64 = 0x7065_656B

    static let migrations: [String] = [
        """
        CREATE TABLE tenants (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at BIGINT NOT NULL);
        CREATE TABLE technicians (
            tenant TEXT NOT NULL REFERENCES tenants(id), id TEXT NOT NULL, name TEXT NOT NULL, email TEXT NOT NULL,
            PRIMARY KEY (tenant, id));
        CREATE TABLE assets (
            tenant TEXT NOT NULL REFERENCES tenants(id), id TEXT NOT NULL, name TEXT NOT NULL,
            agent TEXT NOT NULL UNIQUE, posture BYTEA, revoked INTEGER NOT NULL DEFAULT 0,
            cpu DOUBLE PRECISION, ram DOUBLE PRECISION, disk DOUBLE PRECISION, telemetry_at BIGINT,
            PRIMARY KEY (tenant, id));
        -- Ticket numbers are global: inbound mail carries only [#<number>].
        CREATE TABLE tickets (
            number BIGINT PRIMARY KEY, id TEXT NOT NULL UNIQUE, tenant TEXT NOT NULL REFERENCES tenants(id),
            subject TEXT NOT NULL, status TEXT NOT NULL, priority TEXT NOT NULL,
            assignee TEXT, contact_name TEXT NOT NULL, contact_email TEXT, client TEXT NOT NULL,
            asset TEXT, first_response_at BIGINT, created_at BIGINT NOT NULL,
            version BIGINT NOT NULL, seq BIGINT NOT NULL, contract TEXT,
            response_due BIGINT, resolution_due BIGINT, paused_since BIGINT,
            response_breached INTEGER NOT NULL DEFAULT 0, resolution_breached INTEGER NOT NULL DEFAULT 0,
            message_id TEXT);
        CREATE INDEX tickets_tenant ON tickets(tenant, number);
        CREATE INDEX tickets_contact ON tickets(tenant, contact_email);
        CREATE INDEX tickets_asset ON tickets(tenant, asset);
        -- A message's `message.created` delta lives in its own row (delta_at,
        -- delta); the log is `deltas` plus those columns, a seq in one of them.
        CREATE TABLE messages (
            ord BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, ticket TEXT NOT NULL, seq BIGINT NOT NULL,
            id TEXT NOT NULL, channel TEXT NOT NULL, author_id TEXT NOT NULL, author_name TEXT NOT NULL,
            body TEXT NOT NULL, via TEXT NOT NULL, at BIGINT NOT NULL, attachments BYTEA, mail_message_id TEXT,
            delta_at BIGINT, delta BYTEA, command_key TEXT);
        CREATE UNIQUE INDEX messages_ticket_seq ON messages(ticket, seq);
        CREATE INDEX messages_mail_id ON messages(mail_message_id) WHERE mail_message_id IS NOT NULL;
        CREATE INDEX messages_command ON messages(command_key) WHERE command_key IS NOT NULL;
        CREATE TABLE deltas (
            ticket TEXT NOT NULL, seq BIGINT NOT NULL, at BIGINT NOT NULL, kind TEXT NOT NULL, data BYTEA NOT NULL,
            PRIMARY KEY (ticket, seq));
        -- Idempotency: the first answer to (technician, command id), for 10 minutes.
        CREATE TABLE command_answers (
            tenant TEXT NOT NULL, technician TEXT NOT NULL, id TEXT NOT NULL, at BIGINT NOT NULL, answer BYTEA NOT NULL,
            PRIMARY KEY (tenant, technician, id));
        CREATE INDEX command_answers_at ON command_answers(at);
        CREATE TABLE email_accounts (
            tenant TEXT PRIMARY KEY REFERENCES tenants(id), host TEXT NOT NULL, port BIGINT NOT NULL,
            security TEXT NOT NULL, username TEXT, password TEXT, from_address TEXT NOT NULL);
        CREATE TABLE sla_policies (
            tenant TEXT NOT NULL, priority TEXT NOT NULL, response BIGINT NOT NULL, resolution BIGINT NOT NULL,
            PRIMARY KEY (tenant, priority));
        CREATE TABLE sla_business_hours (
            tenant TEXT PRIMARY KEY REFERENCES tenants(id), days TEXT NOT NULL,
            start_minute BIGINT NOT NULL, end_minute BIGINT NOT NULL, utc_offset_minutes BIGINT NOT NULL);
        CREATE TABLE sends (
            ord BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, ticket TEXT NOT NULL, at BIGINT NOT NULL,
            technician TEXT NOT NULL, recipient TEXT, outcome TEXT NOT NULL, reply TEXT NOT NULL);
        CREATE INDEX sends_ticket ON sends(ticket, ord);
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY, ord BIGINT GENERATED ALWAYS AS IDENTITY, ticket TEXT NOT NULL, asset TEXT NOT NULL,
            technician_id TEXT NOT NULL, technician_name TEXT NOT NULL, status TEXT NOT NULL,
            expires_at BIGINT NOT NULL, created_at BIGINT NOT NULL);
        CREATE INDEX sessions_ticket ON sessions(ticket, created_at);
        CREATE INDEX sessions_pending ON sessions(status, expires_at);
        CREATE TABLE summaries (
            ticket TEXT PRIMARY KEY, text TEXT NOT NULL, model TEXT NOT NULL, at BIGINT NOT NULL, covers BIGINT);
        CREATE TABLE time_entries (
            ord BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, ticket TEXT NOT NULL, technician_id TEXT NOT NULL,
            technician_name TEXT NOT NULL, started_at BIGINT NOT NULL, seconds BIGINT NOT NULL, note TEXT);
        CREATE INDEX time_entries_ticket ON time_entries(ticket, ord);
        CREATE TABLE active_timers (
            ticket TEXT PRIMARY KEY, technician_id TEXT NOT NULL, technician_name TEXT NOT NULL, started_at BIGINT NOT NULL);
        CREATE TABLE attachments (
            id TEXT PRIMARY KEY, ticket TEXT NOT NULL, filename TEXT NOT NULL, content_type TEXT NOT NULL,
            size BIGINT NOT NULL, sha256 TEXT NOT NULL, uploaded_at BIGINT NOT NULL);
        """,
        // 2: SQLite's 7 and 8. The inbound route finds a tenant by the
        // outbound `from` that received a mail, without case; a session
        // keeps its kind and when consent made it active.
        """
        CREATE INDEX email_accounts_from ON email_accounts(lower(from_address));
        ALTER TABLE sessions ADD COLUMN kind TEXT NOT NULL DEFAULT 'recording';
        ALTER TABLE sessions ADD COLUMN started_at BIGINT;
        """,
        // 3: SQLite's 9. Whether any row still names a file is looked up
        // by digest.
        """
        CREATE INDEX attachments_sha256 ON attachments(sha256);
        """,
        // 4: PostgreSQL only. The last ticket number handed out, one row
        // (numbers are global: inbound mail carries only [#<number>]).
        // Taking a number updates the row, so a second node's transaction
        // waits for the first one's commit and takes the next number,
        // instead of computing the same MAX + 1 and failing on the key.
        """
        CREATE TABLE ticket_numbers (id INTEGER PRIMARY KEY CHECK (id = 1), last BIGINT NOT NULL);
        INSERT INTO ticket_numbers(id, last) SELECT 1, COALESCE(MAX(number), 1000) FROM tickets;
        """,
        // 5: SQLite's 10, the HTTP endpoints peekd calls for a tenant.
        """
        CREATE TABLE tenant_endpoints (
            tenant TEXT NOT NULL REFERENCES tenants(id), kind TEXT NOT NULL, url TEXT NOT NULL,
            PRIMARY KEY (tenant, kind));
        """,
        // 6: PostgreSQL only. One lease per running node (PostgresBus):
        // renewed every third of a heartbeat; a node whose lease lapsed is
        // taken for dead and its viewers leave the others' presence.
        """
        CREATE TABLE peek_nodes (id TEXT PRIMARY KEY, expires_at TIMESTAMPTZ NOT NULL);
        """,
    ]

    /// Tables only the PostgreSQL store has (cluster bookkeeping): `peekd
    /// migrate` neither expects them in SQLite nor copies into them.
    static let postgresOnlyTables: Set<String> = ["peek_schema", "ticket_numbers", "peek_nodes"]
}
