/// Schema migrations, applied in order; `PRAGMA user_version` records how
/// many ran. A migration is never edited once released: add a new one.
enum Schema {
    static let migrations: [String] = [
        // 1: the whole first schema.
        """
        CREATE TABLE tenants (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at INTEGER NOT NULL);
        CREATE TABLE technicians (
            tenant TEXT NOT NULL REFERENCES tenants(id), id TEXT NOT NULL, name TEXT NOT NULL, email TEXT NOT NULL,
            PRIMARY KEY (tenant, id)) WITHOUT ROWID;
        CREATE TABLE assets (
            tenant TEXT NOT NULL REFERENCES tenants(id), id TEXT NOT NULL, name TEXT NOT NULL,
            agent TEXT NOT NULL UNIQUE, posture BLOB, revoked INTEGER NOT NULL DEFAULT 0,
            cpu REAL, ram REAL, disk REAL, telemetry_at INTEGER,
            PRIMARY KEY (tenant, id)) WITHOUT ROWID;
        -- Ticket numbers are global: inbound mail carries only [#<number>].
        CREATE TABLE tickets (
            number INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, tenant TEXT NOT NULL REFERENCES tenants(id),
            subject TEXT NOT NULL, status TEXT NOT NULL, priority TEXT NOT NULL,
            assignee TEXT, contact_name TEXT NOT NULL, contact_email TEXT, client TEXT NOT NULL,
            asset TEXT, first_response_at INTEGER, created_at INTEGER NOT NULL,
            version INTEGER NOT NULL, seq INTEGER NOT NULL, contract TEXT,
            response_due INTEGER, resolution_due INTEGER, paused_since INTEGER,
            response_breached INTEGER NOT NULL DEFAULT 0, resolution_breached INTEGER NOT NULL DEFAULT 0,
            message_id TEXT);
        CREATE INDEX tickets_tenant ON tickets(tenant, number);
        CREATE INDEX tickets_contact ON tickets(tenant, contact_email);
        CREATE INDEX tickets_asset ON tickets(tenant, asset);
        CREATE TABLE messages (
            id TEXT PRIMARY KEY, ticket TEXT NOT NULL, seq INTEGER NOT NULL, channel TEXT NOT NULL,
            author_id TEXT NOT NULL, author_name TEXT NOT NULL, body TEXT NOT NULL, via TEXT NOT NULL,
            at INTEGER NOT NULL, attachments BLOB, mail_message_id TEXT);
        CREATE INDEX messages_ticket ON messages(ticket, seq);
        -- The durable delta log: a change, its row and its seq commit together.
        CREATE TABLE deltas (
            ticket TEXT NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL, kind TEXT NOT NULL, data BLOB NOT NULL,
            PRIMARY KEY (ticket, seq)) WITHOUT ROWID;
        -- Idempotency: the first answer to (technician, command id), for 10 minutes.
        CREATE TABLE command_answers (
            tenant TEXT NOT NULL, technician TEXT NOT NULL, id TEXT NOT NULL, at INTEGER NOT NULL, answer BLOB NOT NULL,
            PRIMARY KEY (tenant, technician, id)) WITHOUT ROWID;
        CREATE INDEX command_answers_at ON command_answers(at);
        CREATE TABLE email_accounts (
            tenant TEXT PRIMARY KEY REFERENCES tenants(id), host TEXT NOT NULL, port INTEGER NOT NULL,
            security TEXT NOT NULL, username TEXT, password TEXT, from_address TEXT NOT NULL);
        CREATE TABLE sla_policies (
            tenant TEXT NOT NULL, priority TEXT NOT NULL, response INTEGER NOT NULL, resolution INTEGER NOT NULL,
            PRIMARY KEY (tenant, priority)) WITHOUT ROWID;
        CREATE TABLE sends (
            rowid INTEGER PRIMARY KEY, ticket TEXT NOT NULL, at INTEGER NOT NULL, technician TEXT NOT NULL,
            recipient TEXT, outcome TEXT NOT NULL, reply TEXT NOT NULL);
        CREATE INDEX sends_ticket ON sends(ticket, rowid);
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY, ticket TEXT NOT NULL, asset TEXT NOT NULL, technician_id TEXT NOT NULL,
            technician_name TEXT NOT NULL, status TEXT NOT NULL, expires_at INTEGER NOT NULL, created_at INTEGER NOT NULL);
        CREATE INDEX sessions_ticket ON sessions(ticket, created_at);
        CREATE INDEX sessions_pending ON sessions(status, expires_at);
        CREATE TABLE summaries (
            ticket TEXT PRIMARY KEY, text TEXT NOT NULL, model TEXT NOT NULL, at INTEGER NOT NULL, covers INTEGER);
        CREATE TABLE time_entries (
            rowid INTEGER PRIMARY KEY, ticket TEXT NOT NULL, technician_id TEXT NOT NULL, technician_name TEXT NOT NULL,
            started_at INTEGER NOT NULL, seconds INTEGER NOT NULL, note TEXT);
        CREATE INDEX time_entries_ticket ON time_entries(ticket, rowid);
        CREATE TABLE active_timers (
            ticket TEXT PRIMARY KEY, technician_id TEXT NOT NULL, technician_name TEXT NOT NULL, started_at INTEGER NOT NULL);
        CREATE TABLE attachments (
            id TEXT PRIMARY KEY, ticket TEXT NOT NULL, filename TEXT NOT NULL, content_type TEXT NOT NULL,
            size INTEGER NOT NULL, sha256 TEXT NOT NULL, uploaded_at INTEGER NOT NULL);
        """,
        // 2: SLA business hours, one working week per tenant.
        """
        CREATE TABLE sla_business_hours (
            tenant TEXT PRIMARY KEY REFERENCES tenants(id), days TEXT NOT NULL,
            start_minute INTEGER NOT NULL, end_minute INTEGER NOT NULL, utc_offset_minutes INTEGER NOT NULL);
        """,
        // 3: messages clustered by (ticket, seq). Every read of messages is by
        // ticket in seq order, and a message's id is derived from its ticket
        // number and seq, so the rowid table, its `id` key and the
        // (ticket, seq) index (three B-trees written per note) become one.
        // Inbound mail looks a thread up by Message-ID: a partial index holds
        // only the messages that carry one (replies and inbound mail).
        """
        CREATE TABLE messages_by_ticket (
            ticket TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, channel TEXT NOT NULL,
            author_id TEXT NOT NULL, author_name TEXT NOT NULL, body TEXT NOT NULL, via TEXT NOT NULL,
            at INTEGER NOT NULL, attachments BLOB, mail_message_id TEXT,
            PRIMARY KEY (ticket, seq)) WITHOUT ROWID;
        INSERT INTO messages_by_ticket(ticket, seq, id, channel, author_id, author_name, body, via, at, attachments, mail_message_id)
            SELECT ticket, seq, id, channel, author_id, author_name, body, via, at, attachments, mail_message_id FROM messages;
        DROP TABLE messages;
        ALTER TABLE messages_by_ticket RENAME TO messages;
        CREATE INDEX messages_mail_id ON messages(mail_message_id) WHERE mail_message_id IS NOT NULL;
        """,
        // 4: a message's `message.created` delta lives in the message's own
        // row. The delta log is then the `deltas` table plus these columns
        // (a seq is in exactly one of them; older rows keep theirs in
        // `deltas`), and a note dirties one leaf per ticket instead of two:
        // under load every group commit writes each dirty page whole to the
        // WAL, so this halves what most commits write.
        """
        ALTER TABLE messages ADD COLUMN delta_at INTEGER;
        ALTER TABLE messages ADD COLUMN delta BLOB;
        """,
        // 5: messages back in arrival order, found by a (ticket, seq) index.
        // Clustered by ticket (3), every note lands in the middle of the
        // B-tree, at the end of its ticket's run; a leaf holds about nine
        // rows, so every few notes the leaf is full and SQLite rebalances
        // it with its siblings, rewriting three or four leaves and their
        // parent. Measured at 1,000 tickets x 5 viewers: 428 of a commit's
        // 505 WAL frames were message pages, five per note. In rowid order
        // the notes of one commit share the last leaves (appends split
        // without rebalancing), and the index entry a note adds elsewhere is
        // twenty bytes, so its leaves split a tenth as often.
        """
        CREATE TABLE messages_by_arrival (
            rowid INTEGER PRIMARY KEY, ticket TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, channel TEXT NOT NULL,
            author_id TEXT NOT NULL, author_name TEXT NOT NULL, body TEXT NOT NULL, via TEXT NOT NULL,
            at INTEGER NOT NULL, attachments BLOB, mail_message_id TEXT, delta_at INTEGER, delta BLOB);
        INSERT INTO messages_by_arrival(ticket, seq, id, channel, author_id, author_name, body, via, at, attachments, mail_message_id, delta_at, delta)
            SELECT ticket, seq, id, channel, author_id, author_name, body, via, at, attachments, mail_message_id, delta_at, delta
            FROM messages ORDER BY at, ticket, seq;
        DROP TABLE messages;
        ALTER TABLE messages_by_arrival RENAME TO messages;
        CREATE UNIQUE INDEX messages_ticket_seq ON messages(ticket, seq);
        CREATE INDEX messages_mail_id ON messages(mail_message_id) WHERE mail_message_id IS NOT NULL;
        """,
        // 6: a note remembers the command that wrote it. Its first answer is
        // `result` with the message's seq, so a resend can be answered from
        // the message and the note needs no row of its own in
        // `command_answers` (a row, an `at` index entry and their pages per
        // note: measured, a third of durable throughput). Only technicians'
        // notes carry a key, so the index is partial.
        """
        ALTER TABLE messages ADD COLUMN command_key TEXT;
        CREATE INDEX messages_command ON messages(command_key) WHERE command_key IS NOT NULL;
        """,
        // 7: the global inbound route finds a message's tenant by its
        // recipients: the tenant whose outbound `from` received it. Looked up
        // once per recipient, without case, as mail systems compare domains.
        """
        CREATE INDEX email_accounts_from ON email_accounts(lower(from_address));
        """,
        // 8: a session remembers its kind and when consent made it active,
        // so the Peek's recording clock survives a reload and a restart.
        // Sessions stored before were all recordings.
        """
        ALTER TABLE sessions ADD COLUMN kind TEXT NOT NULL DEFAULT 'recording';
        ALTER TABLE sessions ADD COLUMN started_at INTEGER;
        """,
        // 9: whether any row still names a file (the refused-upload and
        // refused-mail check) is looked up by digest; without an index it
        // read every attachment row.
        """
        CREATE INDEX attachments_sha256 ON attachments(sha256);
        """,
        // 10: the HTTP endpoints peekd calls for a tenant (its assistant and
        // its summariser), one URL per kind.
        """
        CREATE TABLE tenant_endpoints (
            tenant TEXT NOT NULL REFERENCES tenants(id), kind TEXT NOT NULL, url TEXT NOT NULL,
            PRIMARY KEY (tenant, kind)) WITHOUT ROWID;
        """,
    ]
}
