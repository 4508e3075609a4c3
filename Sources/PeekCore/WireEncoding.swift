/// Encoders for the shapes of CONTRACT.md, each written once. They append
/// to a `JSONWriter` so a caller can nest them inside a frame.
public enum Wire {
    public static func person(_ p: PersonRef?, into w: inout JSONWriter) {
        guard let p else { w.null(); return }
        w.beginObject(); w.field("id", p.id); w.field("name", p.name); w.endObject()
    }

    public static func time(_ millis: Int64?, into w: inout JSONWriter) {
        if let millis { w.string(Timestamp.format(millis: millis)) } else { w.null() }
    }

    public static func message(_ m: Message, into w: inout JSONWriter) {
        w.beginObject()
        w.field("id", m.id)
        w.field("seq", m.seq)
        w.field("channel", m.channel.rawValue)
        w.key("author"); person(m.author, into: &w)
        w.field("body", m.body)
        w.field("via", m.via.rawValue)
        w.key("at"); time(m.at, into: &w)
        w.key("attachments"); w.beginArray()
        for a in m.attachments {
            w.beginObject(); w.field("id", a.id); w.field("filename", a.filename)
            w.field("content_type", a.contentType); w.field("size", a.size)
            w.field("url", "/v1/attachments/\(a.id)"); w.endObject()
        }
        w.endArray()
        w.endObject()
    }

    public static func messageBytes(_ m: Message) -> [UInt8] {
        var w = JSONWriter(capacity: 256 + m.body.utf8.count)
        message(m, into: &w)
        return w.bytes
    }

    public static func ticket(_ t: Ticket, into w: inout JSONWriter) {
        w.beginObject()
        w.field("id", t.id)
        w.field("number", t.number)
        w.field("subject", t.subject)
        w.field("status", t.status.rawValue)
        w.field("priority", t.priority.rawValue)
        w.key("assignee"); person(t.assignee, into: &w)
        w.key("contact"); w.beginObject(); w.field("name", t.contact.name); w.field("email", t.contact.email); w.endObject()
        w.field("client", t.client)
        w.key("asset"); person(t.asset, into: &w)
        w.key("first_response_at"); time(t.firstResponseAt, into: &w)
        w.key("created_at"); time(t.createdAt, into: &w)
        w.field("version", t.version)
        w.endObject()
    }

    /// `sla.tick` data and the snapshot's `sla`: {response, resolution}, each
    /// {due_at, remaining, breached, paused} or null when that clock is stopped.
    public static func sla(_ t: Ticket, nowMillis: Int64, into w: inout JSONWriter) {
        let clocks = SLAClock.evaluate(t, nowMillis: nowMillis)
        w.beginObject()
        for (name, clock) in [("response", clocks.response), ("resolution", clocks.resolution)] {
            w.key(name)
            if let clock {
                w.beginObject()
                w.key("due_at"); time(clock.dueAt, into: &w)
                w.field("remaining", clock.remainingSeconds)
                w.field("breached", clock.breached)
                w.field("paused", clock.paused)
                w.endObject()
            } else {
                w.null()
            }
        }
        let targets = SLAClock.targets(t, nowMillis: nowMillis)
        w.key("targets"); w.beginObject()
        for (name, target) in [("response", targets.response), ("resolution", targets.resolution)] {
            w.key(name)
            if let target {
                w.beginObject()
                w.key("due_at"); time(target.dueAt, into: &w)
                w.field("breached", target.breached)
                w.endObject()
            } else {
                w.null()
            }
        }
        w.endObject()
        w.endObject()
    }

    public static func session(_ s: RemoteSession?, into w: inout JSONWriter) {
        guard let s else { w.null(); return }
        w.beginObject()
        w.field("session", s.id)
        w.field("id", s.id)
        w.field("status", s.status.rawValue)
        w.field("kind", s.kind)
        w.key("technician"); person(s.technician, into: &w)
        w.key("expires_at"); time(s.expiresAt, into: &w)
        w.key("created_at"); time(s.createdAt, into: &w)
        w.key("started_at")
        if let started = s.startedAt { time(started, into: &w) } else { w.null() }
        w.endObject()
    }

    public static func summary(_ s: Summary?, into w: inout JSONWriter) {
        guard let s else { w.null(); return }
        w.beginObject()
        w.field("text", s.text)
        w.field("model", s.model)
        w.key("at"); time(s.at, into: &w)
        w.field("covers", s.covers)
        w.endObject()
    }

    /// `time`: {active, entries (the most recent), entry_count, total} plus
    /// the ticket's contract/billing context, so the Time + contract card
    /// has one source.
    /// `contractUsed`: seconds logged against the contract this month
    /// (`contract_used`, null without a contract), from `periodStart`.
    public static func timeState(_ t: TimeState, contract: String?, contractUsed: Int? = nil, periodStart: Int64? = nil, into w: inout JSONWriter) {
        w.beginObject()
        w.key("active")
        if let active = t.active {
            w.beginObject(); w.key("technician"); person(active.technician, into: &w)
            w.key("started_at"); time(active.startedAt, into: &w); w.endObject()
        } else { w.null() }
        w.key("entries"); w.beginArray()
        for e in t.entries {
            w.beginObject(); w.key("technician"); person(e.technician, into: &w)
            w.key("started_at"); time(e.startedAt, into: &w)
            w.field("seconds", e.seconds); w.field("note", e.note); w.endObject()
        }
        w.endArray()
        w.field("entry_count", t.entryCount)
        w.field("total", t.total)
        w.field("contract", contract)
        w.field("contract_used", contract == nil ? nil : contractUsed)
        w.key("contract_period_start"); time(contract == nil ? nil : periodStart, into: &w)
        w.endObject()
    }

    /// `asset` is a reference {`id`, `name`} like every other (CONTRACT "Additions").
    public static func telemetry(asset: PersonRef, _ t: Telemetry, into w: inout JSONWriter) {
        w.beginObject()
        w.key("asset"); person(asset, into: &w)
        w.key("cpu"); w.double(t.cpu)
        w.key("ram"); w.double(t.ram)
        w.key("disk"); w.double(t.disk)
        w.key("at"); time(t.at, into: &w)
        w.endObject()
    }

    public static func viewers(_ viewers: [Viewer], into w: inout JSONWriter) {
        w.beginArray()
        for v in viewers {
            w.beginObject(); w.field("id", v.id); w.field("name", v.name); w.field("composing", v.composing?.rawValue); w.endObject()
        }
        w.endArray()
    }

    /// A whole `delta` frame around already-encoded `data`.
    public static func deltaFrame(ticket: String, seq: Int?, at: Int64, kind: DeltaKind, data: some Collection<UInt8>) -> [UInt8] {
        var w = JSONWriter(capacity: 96 + data.count)
        w.beginObject()
        w.field("type", "delta")
        w.field("ticket", ticket)
        if let seq { w.field("seq", seq) }
        w.key("at"); time(at, into: &w)
        w.field("kind", kind.rawValue)
        w.key("data"); w.raw(data)
        w.endObject()
        return w.bytes
    }

    public static func errorFrame(id: String?, _ error: PeekError) -> [UInt8] {
        var w = JSONWriter()
        w.beginObject()
        w.field("type", "error")
        if let id { w.field("id", id) }
        w.field("code", error.code.rawValue)
        w.field("message", error.message)
        if let missed = error.missed {
            w.key("missed"); w.beginArray(); for m in missed { w.raw(m) }; w.endArray()
            w.field("missed_total", error.missedTotal ?? missed.count)
        }
        w.endObject()
        return w.bytes
    }

    public static func resultFrame(id: String, seq: Int?, extra: ((inout JSONWriter) -> Void)? = nil) -> [UInt8] {
        var w = JSONWriter()
        w.beginObject()
        w.field("type", "result")
        w.field("id", id)
        w.field("ok", true)
        w.field("seq", seq)
        extra?(&w)
        w.endObject()
        return w.bytes
    }

    /// The HTTP API's error body: {"error": {"code", "message"}}.
    public static func errorBody(_ error: PeekError) -> [UInt8] {
        errorBody(code: error.code.rawValue, message: error.message)
    }

    /// The same body for the HTTP layer's own codes (`uri_too_long`, ...),
    /// which are not the contract's `ErrorCode`s.
    public static func errorBody(code: String, message: String) -> [UInt8] {
        var w = JSONWriter()
        w.beginObject(); w.key("error"); w.beginObject()
        w.field("code", code); w.field("message", message)
        w.endObject(); w.endObject()
        return w.bytes
    }
}
