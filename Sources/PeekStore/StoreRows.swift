import PeekCore

/// What both stores share: the columns they select and how a row of them
/// becomes a domain value. The SQL here is plain enough for SQLite and
/// PostgreSQL alike, so a row means the same thing from either.
public enum StoreRows {
    public static func technician(_ row: [SQLValue]) -> Technician {
        Technician(tenant: row[0].text ?? "", id: row[1].text ?? "", name: row[2].text ?? "", email: row[3].text ?? "")
    }

    public static func asset(_ row: [SQLValue]) -> Asset {
        Asset(tenant: row[0].text ?? "", id: row[1].text ?? "", name: row[2].text ?? "", agent: row[3].text ?? "", posture: row[4].blob)
    }

    public static let ticketColumns = """
        t.id, t.tenant, t.number, t.subject, t.status, t.priority, t.assignee, tech.name, t.contact_name, t.contact_email,
        t.client, t.asset, a.name, t.first_response_at, t.created_at, t.version, t.seq, t.contract,
        t.response_due, t.resolution_due, t.paused_since, t.response_breached, t.resolution_breached
        FROM tickets t LEFT JOIN technicians tech ON tech.tenant = t.tenant AND tech.id = t.assignee
        LEFT JOIN assets a ON a.tenant = t.tenant AND a.id = t.asset
        """

    public static func ticket(_ r: [SQLValue]) -> Ticket {
        let assignee = r[6].text.map { PersonRef(id: $0, name: r[7].text ?? $0) }
        let asset = r[11].text.map { PersonRef(id: $0, name: r[12].text ?? $0) }
        return Ticket(
            id: r[0].text ?? "", tenant: r[1].text ?? "", number: Int(r[2].int ?? 0), subject: r[3].text ?? "",
            status: TicketStatus(rawValue: r[4].text ?? "") ?? .open, priority: Priority(rawValue: r[5].text ?? "") ?? .normal,
            assignee: assignee, contact: Contact(name: r[8].text ?? "", email: r[9].text), client: r[10].text ?? "",
            asset: asset, firstResponseAt: r[13].int, createdAt: r[14].int ?? 0, version: Int(r[15].int ?? 0),
            seq: Int(r[16].int ?? 0),
            sla: SLAClocks(responseDue: r[18].int, resolutionDue: r[19].int, pausedSince: r[20].int,
                           responseBreached: r[21].int == 1, resolutionBreached: r[22].int == 1),
            contract: r[17].text)
    }

    public static func encodeAttachments(_ list: [AttachmentRef]) -> SQLValue {
        guard !list.isEmpty else { return .null }
        var w = JSONWriter()
        w.beginArray()
        for a in list {
            w.beginObject(); w.field("id", a.id); w.field("filename", a.filename)
            w.field("content_type", a.contentType); w.field("size", a.size); w.endObject()
        }
        w.endArray()
        return .blob(w.bytes)
    }

    public static func decodeAttachments(_ value: SQLValue) -> [AttachmentRef] {
        guard let bytes = value.blob, let list = (try? JSONParser.parse(bytes))?.arrayValue else { return [] }
        return list.compactMap { v in
            guard let id = v["id"]?.stringValue, let name = v["filename"]?.stringValue else { return nil }
            return AttachmentRef(id: id, filename: name, contentType: v["content_type"]?.stringValue ?? "application/octet-stream",
                                 size: v["size"]?.intValue ?? 0)
        }
    }

    /// Length-prefixed, so no choice of ids can make two keys one text.
    public static func text(of key: CommandKey) -> String {
        "\(key.tenant.utf8.count):\(key.tenant)\(key.technician.utf8.count):\(key.technician)\(key.id)"
    }

    public static func message(_ r: [SQLValue]) -> Message {
        Message(id: r[0].text ?? "", ticket: r[1].text ?? "", seq: Int(r[2].int ?? 0),
                channel: Channel(rawValue: r[3].text ?? "") ?? .system,
                author: PersonRef(id: r[4].text ?? "", name: r[5].text ?? ""), body: r[6].text ?? "",
                via: Via(rawValue: r[7].text ?? "") ?? .system, at: r[8].int ?? 0,
                attachments: decodeAttachments(r[9]))
    }

    public static let messageColumns = "id, ticket, seq, channel, author_id, author_name, body, via, at, attachments FROM messages"

    public static let sessionColumns = "id, ticket, asset, technician_id, technician_name, status, expires_at, created_at, kind, started_at FROM sessions"

    public static func session(_ r: [SQLValue]) -> RemoteSession {
        RemoteSession(id: r[0].text ?? "", ticket: r[1].text ?? "", asset: r[2].text ?? "",
                      technician: PersonRef(id: r[3].text ?? "", name: r[4].text ?? ""),
                      status: SessionStatus(rawValue: r[5].text ?? "") ?? .ended, expiresAt: r[6].int ?? 0, createdAt: r[7].int ?? 0,
                      startedAt: r[9].int, kind: r[8].text ?? RemoteSession.recording)
    }

    public static func emailAccount(_ r: [SQLValue]) -> EmailAccount {
        EmailAccount(host: r[0].text ?? "", port: Int(r[1].int ?? 25), security: EmailSecurity(rawValue: r[2].text ?? "") ?? .startTLS,
                     username: r[3].text, password: r[4].text, from: r[5].text ?? "")
    }

    public static func send(_ r: [SQLValue]) -> (at: Int64, technician: String, recipient: String?, outcome: String, reply: String) {
        (r[0].int ?? 0, r[1].text ?? "", r[2].text, r[3].text ?? "", r[4].text ?? "")
    }

    /// Business days as stored: "1,2,3,4,5".
    public static func text(ofDays days: Set<Int>) -> String {
        days.sorted().map(String.init).joined(separator: ",")
    }

    public static func businessHours(_ r: [SQLValue]) -> BusinessHours? {
        let days = Set((r[0].text ?? "").split(separator: ",").compactMap { Int($0) })
        return BusinessHours(days: days, startMinute: Int(r[1].int ?? 0), endMinute: Int(r[2].int ?? 0), utcOffsetMinutes: Int(r[3].int ?? 0))
    }

    public static func summary(_ r: [SQLValue]) -> Summary {
        Summary(text: r[0].text ?? "", model: r[1].text ?? "", at: r[2].int ?? 0, covers: r[3].int.map(Int.init))
    }

    public static func timeEntry(_ r: [SQLValue]) -> TimeEntry {
        TimeEntry(technician: PersonRef(id: r[0].text ?? "", name: r[1].text ?? ""), startedAt: r[2].int ?? 0,
                  seconds: Int(r[3].int ?? 0), note: r[4].text)
    }

    public static func activeTimer(_ r: [SQLValue]) -> (technician: PersonRef, startedAt: Int64) {
        (technician: PersonRef(id: r[0].text ?? "", name: r[1].text ?? ""), startedAt: r[2].int ?? 0)
    }

    public static func attachment(_ r: [SQLValue]) -> (ref: AttachmentRef, ticket: String, sha256: String) {
        (AttachmentRef(id: r[0].text ?? "", filename: r[1].text ?? "", contentType: r[2].text ?? "", size: Int(r[3].int ?? 0)),
         r[4].text ?? "", r[5].text ?? "")
    }

    /// `insertTicket`'s values, in its column order: number, id, tenant,
    /// subject, status, priority, assignee, contact name and email, client,
    /// asset, first response, created, version, seq, contract, the SLA clocks.
    public static func insertValues(_ t: Ticket) -> [SQLValue] {
        [.int(Int64(t.number)), .text(t.id), .text(t.tenant), .text(t.subject), .text(t.status.rawValue),
         .text(t.priority.rawValue), SQLValue(t.assignee?.id), .text(t.contact.name), SQLValue(t.contact.email),
         .text(t.client), SQLValue(t.asset?.id), SQLValue(t.firstResponseAt), .int(t.createdAt), SQLValue(t.version),
         SQLValue(t.seq), SQLValue(t.contract), SQLValue(t.sla.responseDue), SQLValue(t.sla.resolutionDue),
         SQLValue(t.sla.pausedSince), .int(t.sla.responseBreached ? 1 : 0), .int(t.sla.resolutionBreached ? 1 : 0)]
    }

    /// `updateTicket`'s values: every column but the keys, then the id.
    public static func updateValues(_ t: Ticket) -> [SQLValue] {
        [.text(t.subject), .text(t.status.rawValue), .text(t.priority.rawValue), SQLValue(t.assignee?.id),
         .text(t.contact.name), SQLValue(t.contact.email), .text(t.client), SQLValue(t.asset?.id),
         SQLValue(t.firstResponseAt), SQLValue(t.version), SQLValue(t.seq), SQLValue(t.contract),
         SQLValue(t.sla.responseDue), SQLValue(t.sla.resolutionDue), SQLValue(t.sla.pausedSince),
         .int(t.sla.responseBreached ? 1 : 0), .int(t.sla.resolutionBreached ? 1 : 0), .text(t.id)]
    }

    /// Tickets whose SLA can still breach: open, and a response or resolution due and not yet breached.
    public static let openSLAFilter = """
        WHERE t.status NOT IN ('resolved', 'closed')
          AND ((t.response_due IS NOT NULL AND t.response_breached = 0 AND t.first_response_at IS NULL)
            OR (t.resolution_due IS NOT NULL AND t.resolution_breached = 0))
        """
}
