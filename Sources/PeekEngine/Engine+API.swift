import PeekCore
import PeekCrypto
import PeekMail

/// The back-end API (service token), the browser's small HTTP needs
/// (technician token) and the demo sign-in (`--demo` only).
extension Engine {
    func handleAPI(_ r: APIRequest, reply: APIReplyID) {
        var response: APIResponse
        let mark = outputs.count
        do {
            try store.savepoint()
            response = try route(r)
            try store.releaseSavepoint()
        } catch let e as PeekError {
            rollbackCommandOutputs(to: mark)
            response = .error(e)
        } catch let e as UnprocessableError {
            rollbackCommandOutputs(to: mark)
            response = APIResponse(status: 422, body: Wire.errorBody(e.error))
        } catch let e as StoreError where e.kind == .conflict {
            rollbackCommandOutputs(to: mark)
            response = .error(PeekError(.conflict, "That already exists (\(e.message)); use another id."))
        } catch {
            rollbackCommandOutputs(to: mark)
            log(.error, "api_failed", "API \(r.method) \(r.path) failed", error: "\(error)")
            response = .error(Self.writeFailed(error, otherwise: PeekError(.internal, "The request could not be completed; try again.")))
        }
        response.unlinkFiles = releaseFiles(of: r, stored: (200..<300).contains(response.status))
        outputs.append(.http(reply, response))
    }

    /// Gives back the claims on the files a worker wrote for `r` and
    /// returns those no row names once a refusal stored nothing: a
    /// stranger's mail to no ticket, an upload to a ticket that does not
    /// exist. A file worker deletes them (`AttachmentClaims`); the engine
    /// does no file I/O. A file a row already names is kept.
    private func releaseFiles(of r: APIRequest, stored: Bool) -> [String] {
        let files: [StoredFile]
        switch r.prepared {
        case .upload(let file): files = [file]
        case .inbound(let mail): files = mail.files
        case .json, nil: return []
        }
        return files.map(\.sha256).filter { sha256 in
            // A failing lookup keeps the file: a stray file costs disk, a
            // missing one loses a customer's attachment.
            let unreferenced = !stored
                && store.bestEffort({ () throws(StoreError) in try store.isAttachmentFileReferenced(sha256: sha256) }) == false
            return attachmentClaims.release(sha256, unreferenced: unreferenced)
        }
    }

    private func route(_ r: APIRequest) throws -> APIResponse {
        // The loop refused these from the head already; checked again so
        // that no path into the engine skips it.
        if let refusal = r.caller.refusal(for: r.route) { throw refusal }
        switch r.route {
        case .demoTechnicians, .demoSignIn:
            guard config.demo else { throw PeekError(.notFound, "Demo sign-in exists only when peekd runs with --demo.") }
            return try demo(r)
        case .myTickets, .myTechnicians:
            let tech = try technician(r)
            if r.route == .myTechnicians {
                var w = JSONWriter()
                w.beginObject(); w.key("technicians"); w.beginArray()
                for t in try store.technicians(tenant: tech.tenant) { w.beginObject(); w.field("id", t.id); w.field("name", t.name); w.endObject() }
                w.endArray(); w.endObject()
                return .json(200, w.bytes)
            }
            var w = JSONWriter()
            w.beginObject(); w.key("tickets"); w.beginArray()
            for t in try store.tickets(tenant: tech.tenant, limit: 500) { Wire.ticket(t, into: &w) }
            w.endArray(); w.endObject()
            return .json(200, w.bytes)
        case .getAttachment:
            let tech = r.caller == .service ? nil : try technician(r)
            guard let id = r.params["id"], let a = try store.attachment(id), let t = try store.ticket(a.ticket),
                  tech == nil || tech?.tenant == t.tenant, a.sha256.allSatisfy(\.isHexDigit) else {
                throw PeekError(.notFound, "No such attachment.")
            }
            // The engine answers which file; a file worker reads it.
            return APIResponse(status: 200, body: [], contentType: a.ref.contentType,
                               headers: [("Content-Disposition", "attachment; filename=\"\(a.ref.filename.filter { $0 != "\"" && $0.isASCII })\""),
                                         ("X-Content-Type-Options", "nosniff")],
                               attachmentFile: a.sha256)
        case .uploadAttachment:
            return try uploadAttachment(r, tech: r.caller == .service ? nil : try technician(r))
        case .ticketSends where r.caller != .service:
            // A technician reads the send log of their own tenant's tickets:
            // the Peek's "Send log" behind a reply that failed.
            let tech = try technician(r)
            guard let id = r.params["id"], let t = try store.ticket(id), t.tenant == tech.tenant else {
                throw PeekError(.notFound, "No ticket \(r.params["id"] ?? "").")
            }
            return try backend(r)
        case .attachmentLink, .signedDownload:
            return try attachmentLink(r, tech: r.route == .attachmentLink && r.caller != .service ? try technician(r) : nil)
        default:
            return try backend(r)
        }
    }

    /// The technician whose token the loop verified; that they (and their
    /// tenant) still exist is checked here, where the store is.
    private func technician(_ r: APIRequest) throws -> Technician {
        guard case .technician(let claims) = r.caller else {
            throw PeekError(.unauthorized, "Sign in first: send \"Authorization: Bearer <technician token>\".")
        }
        guard let tech = try store.technician(tenant: claims.tenant, id: claims.subject) else {
            throw PeekError(.unauthorized, "No technician \(claims.subject) exists in tenant \(claims.tenant).")
        }
        return tech
    }

    /// The request's JSON object, as the loop parsed it.
    private func body(_ r: APIRequest) throws -> JSONValue {
        guard case .json(let parsed)? = r.prepared, let v = parsed, case .object = v else {
            throw PeekError(.invalid, "The body must be a JSON object.")
        }
        return v
    }

    private func string(_ v: JSONValue, _ key: String, max: Int = 200, optional: Bool = false) throws -> String? {
        guard let raw = v[key], !raw.isNull else {
            if optional { return nil }
            throw PeekError(.invalid, "\"\(key)\" is required.")
        }
        guard let s = raw.stringValue, !s.isEmpty, s.utf8.count <= max else {
            throw PeekError(.invalid, "\"\(key)\" must be a non-empty string of at most \(max) bytes.")
        }
        return s
    }

    /// An id or code field: present (unless optional) and within `Identifier`'s rule.
    private func identifier(_ v: JSONValue, _ key: String, optional: Bool = false) throws -> String? {
        guard let s = try string(v, key, max: Identifier.maxBytes, optional: optional) else { return nil }
        guard Identifier.isValid(s) else { throw PeekError(.invalid, Identifier.refusal("\"\(key)\"")) }
        return s
    }

    private func requireTenant(_ r: APIRequest) throws -> Tenant {
        guard let id = r.params["tenant"], let t = try store.tenant(id) else {
            throw PeekError(.notFound, "No tenant \(r.params["tenant"] ?? "") exists; create it with POST /v1/tenants.")
        }
        return t
    }

    private func backend(_ r: APIRequest) throws -> APIResponse {
        switch r.route {
        case .createTenant:
            let v = try body(r)
            let t = Tenant(id: try identifier(v, "id")!, name: try string(v, "name")!)
            try store.createTenant(t, at: now)
            var w = JSONWriter()
            w.beginObject(); w.field("id", t.id); w.field("name", t.name); w.endObject()
            return .json(201, w.bytes)
        case .createTechnician:
            let tenant = try requireTenant(r)
            let v = try body(r)
            let email = try string(v, "email", max: 320)!
            guard email.contains("@") else { throw PeekError(.invalid, "\"email\" must be an email address.") }
            let t = Technician(tenant: tenant.id, id: try identifier(v, "id")!, name: try string(v, "name")!, email: email)
            try store.createTechnician(t)
            var w = JSONWriter()
            w.beginObject(); w.field("id", t.id); w.field("name", t.name); w.field("email", t.email); w.field("tenant", t.tenant); w.endObject()
            return .json(201, w.bytes)
        case .createAsset:
            let tenant = try requireTenant(r)
            let v = try body(r)
            var posture: [UInt8]?
            if let p = v["posture"], !p.isNull {
                guard case .object = p else { throw PeekError(.invalid, "\"posture\" must be an object.") }
                posture = JSONWriter.encode(p)
            }
            let a = Asset(tenant: tenant.id, id: try identifier(v, "id")!, name: try string(v, "name")!, agent: try identifier(v, "agent")!, posture: posture)
            if try store.asset(agent: a.agent) != nil {
                throw PeekError(.conflict, "Agent \(a.agent) is already linked to an asset; each agent certificate belongs to one asset.")
            }
            try store.createAsset(a)
            var w = JSONWriter()
            w.beginObject(); w.field("id", a.id); w.field("name", a.name); w.field("agent", a.agent); w.field("tenant", a.tenant); w.endObject()
            return .json(201, w.bytes)
        case .createTicket:
            let tenant = try requireTenant(r)
            let t = try createTicket(tenant: tenant.id, try body(r))
            var w = JSONWriter()
            Wire.ticket(t, into: &w)
            return .json(201, w.bytes)
        case .putAssistant, .putSummariser, .putAsset:
            return try routeNexie(r, tenant: try requireTenant(r), body: try body(r))
        case .putEmailAccount:
            let tenant = try requireTenant(r)
            let v = try body(r)
            guard let port = v["port"]?.intValue, (1...65535).contains(port) else { throw PeekError(.invalid, "\"port\" must be a TCP port (1-65535).") }
            guard let sec = v["security"]?.stringValue, let security = EmailSecurity(rawValue: sec) else {
                throw PeekError(.invalid, "\"security\" must be \"starttls\", \"tls\" or \"none\".")
            }
            let from = try string(v, "from", max: 320)!
            // The address goes into MAIL FROM and the From field as is (the
            // technician's name is the display name), so "Name <a@b>" would
            // make every reply fail later, far from this mistake.
            let at = from.lastIndex(of: "@")
            guard let at, at != from.startIndex, from.index(after: at) != from.endIndex,
                  from.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "<") && $0 != UInt8(ascii: ">") }) else {
                throw PeekError(.invalid, "\"from\" must be a bare email address such as support@example.com, without a display name or spaces.")
            }
            let account = EmailAccount(host: try string(v, "host", max: 253)!, port: port, security: security,
                                       username: try string(v, "username", max: 320, optional: true),
                                       password: try string(v, "password", max: 1024, optional: true), from: from)
            try store.putEmailAccount(tenant: tenant.id, account)
            return .json(200, emailAccountBody(account))
        case .getEmailAccount:
            let tenant = try requireTenant(r)
            guard let account = try store.emailAccount(tenant: tenant.id) else { throw PeekError(.notFound, "No email account is configured") }
            return .json(200, emailAccountBody(account))
        case .putSLAPolicy:
            let tenant = try requireTenant(r)
            let v = try body(r)
            // Everything is validated before anything is written.
            var targets: [(Priority, SLATarget)] = []
            for p in Priority.allCases {
                guard let entry = v[p.rawValue], !entry.isNull else { continue }
                guard let resp = entry["response"]?.intValue, let res = entry["resolution"]?.intValue, resp > 0, res > 0 else {
                    throw PeekError(.invalid, "\"\(p.rawValue)\" needs positive integer \"response\" and \"resolution\" (seconds).")
                }
                targets.append((p, SLATarget(response: resp, resolution: res)))
            }
            var hoursGiven = false
            var hours: BusinessHours?
            if let bh = v["business_hours"] {
                hoursGiven = true
                if !bh.isNull {
                    guard let days = bh["days"]?.arrayValue?.compactMap({ $0.intValue }), let start = bh["start"]?.stringValue.flatMap(BusinessHours.minutes),
                          let end = bh["end"]?.stringValue.flatMap(BusinessHours.minutes),
                          let h = BusinessHours(days: Set(days), startMinute: start, endMinute: end, utcOffsetMinutes: bh["utc_offset_minutes"]?.intValue ?? 0) else {
                        throw PeekError(.invalid, "\"business_hours\" needs \"days\" (ISO weekdays 1-7), \"start\" and \"end\" as \"HH:MM\" with start before end, and optionally \"utc_offset_minutes\" (-840 to 840); or null to count every hour.")
                    }
                    hours = h
                }
            }
            if hoursGiven { try store.putBusinessHours(tenant: tenant.id, hours) }
            queuePolicyChanged(tenant: tenant.id)
            for (p, target) in targets {
                let old = try store.slaPolicy(tenant: tenant.id, priority: p)
                try store.putSLAPolicy(tenant: tenant.id, priority: p, target)
                try remeasureOpenTickets(tenant: tenant.id, priority: p, from: old, to: target)
            }
            var w = JSONWriter()
            w.beginObject()
            for p in Priority.allCases {
                guard let target = try store.slaPolicy(tenant: tenant.id, priority: p) else { continue }
                w.key(p.rawValue); w.beginObject(); w.field("response", target.response); w.field("resolution", target.resolution); w.endObject()
            }
            w.key("business_hours")
            if let h = try store.businessHours(tenant: tenant.id) {
                w.beginObject()
                w.key("days"); w.beginArray(); for d in h.days.sorted() { w.int(d) }; w.endArray()
                w.field("start", String(format: "%02d:%02d", h.startMinute / 60, h.startMinute % 60))
                w.field("end", String(format: "%02d:%02d", h.endMinute / 60, h.endMinute % 60))
                w.field("utc_offset_minutes", h.utcOffsetMinutes)
                w.endObject()
            } else { w.null() }
            w.endObject()
            return .json(200, w.bytes)
        case .getTicket:
            guard let id = r.params["id"], let t = try store.ticket(id) else { throw PeekError(.notFound, "No ticket \(r.params["id"] ?? "").") }
            var w = JSONWriter(capacity: 8192)
            w.beginObject(); w.field("ticket", t.id); w.field("seq", t.seq); w.key("state"); try writeState(t, into: &w); w.endObject()
            return .json(200, w.bytes)
        case .patchTicket:
            return try patchTicket(r)
        case .ticketSends:
            guard let id = r.params["id"], let ticket = try store.ticket(id) else { throw PeekError(.notFound, "No ticket \(r.params["id"] ?? "").") }
            var w = JSONWriter()
            w.beginObject(); w.key("attempts"); w.beginArray()
            for s in try store.sends(ticket: id) {
                // People are objects with id and name (CONTRACT).
                let name = try store.technician(tenant: ticket.tenant, id: s.technician)?.name ?? s.technician
                w.beginObject(); w.key("at"); Wire.time(s.at, into: &w)
                w.key("technician"); Wire.person(PersonRef(id: s.technician, name: name), into: &w)
                w.field("to", s.recipient); w.field("outcome", s.outcome); w.field("reply", s.reply); w.endObject()
            }
            w.endArray(); w.endObject()
            return .json(200, w.bytes)
        case .postSummary:
            guard let id = r.params["id"], var t = try store.ticket(id) else { throw PeekError(.notFound, "No ticket \(r.params["id"] ?? "").") }
            let v = try body(r)
            let text = try string(v, "text", max: 32 * 1024)!
            let model = try string(v, "model", max: 200)!
            var covers: Int?
            if let c = v["covers"], !c.isNull {
                guard let n = c.intValue, n >= 0 else { throw PeekError(.invalid, "\"covers\" must be a seq (a non-negative integer) or null.") }
                covers = n
            }
            let at = now
            let s = Summary(text: text, model: model, at: at, covers: covers)
            let mark = outputs.count
            do {
                try store.savepoint()
                try store.putSummary(ticket: id, s)
                var w = JSONWriter()
                Wire.summary(s, into: &w)
                let seq = try appendDelta(&t, kind: .summaryUpdated, data: w.bytes, at: at)
                try store.updateTicket(t)
                try store.releaseSavepoint()
                var out = JSONWriter()
                out.beginObject(); out.field("ticket", id); out.field("seq", seq); out.key("summary"); Wire.summary(s, into: &out); out.endObject()
                return .json(201, out.bytes)
            } catch {
                rollbackCommandOutputs(to: mark)
                throw error
            }
        case .inboundEmail, .tenantInboundEmail:
            return try inboundEmail(r)
        default:
            throw PeekError(.notFound, "No such endpoint.")
        }
    }

    /// A new policy applies to open tickets too (CONTRACT: "the SLA targets
    /// new and open tickets are measured against"). A clock keeps the pauses
    /// it already had: its due time moves by the change of target. Breached
    /// targets stay breached: a breach is recorded once and never undone.
    private func remeasureOpenTickets(tenant: String, priority: Priority, from old: SLATarget?, to new: SLATarget) throws {
        for var t in try store.tickets(tenant: tenant, limit: Int.max) where t.priority == priority && !t.status.stopsResolutionClock {
            let before = t.sla
            try retarget(&t, from: old, to: new)
            guard t.sla != before else { continue }
            try store.updateTicket(t)
            queueTouched(t.id, tenant: tenant)
            if let next = SLAClock.nextDeadline(t) { timers.schedule(.slaDeadline(ticket: t.id), at: next.dueAt) }
        }
    }

    /// The account as the API shows it: the password is never echoed.
    private func emailAccountBody(_ a: EmailAccount) -> [UInt8] {
        var w = JSONWriter()
        w.beginObject(); w.field("host", a.host); w.field("port", a.port); w.field("security", a.security.rawValue)
        w.field("username", a.username); w.field("password_set", a.password != nil); w.field("from", a.from); w.endObject()
        return w.bytes
    }

    /// A contact's `email`: an address, or null (or absent) for none.
    private func contactEmail(_ e: JSONValue?) throws -> String? {
        guard let e, !e.isNull else { return nil }
        guard let s = e.stringValue, s.contains("@"), s.utf8.count <= 320 else {
            throw PeekError(.invalid, "\"contact.email\" must be an email address (at most 320 bytes) or null.")
        }
        return s
    }

    /// The back end corrects what the PSA owns and the Peek shows: the
    /// subject and the contact. Only the fields sent change; the viewers get
    /// one durable `ticket.updated` with them. `version` stays: it guards the
    /// fields technicians change (status, priority, assignee), and a contact
    /// edit must not turn their in-flight commands into conflicts.
    private func patchTicket(_ r: APIRequest) throws -> APIResponse {
        guard let id = r.params["id"], var t = try store.ticket(id) else { throw PeekError(.notFound, "No ticket \(r.params["id"] ?? "").") }
        let v = try body(r)
        guard v["subject"] != nil || v["contact"] != nil else {
            throw PeekError(.invalid, "Send \"subject\" and/or \"contact\" {\"name\", \"email\"}: the fields this call changes.")
        }
        var changed: [String] = []
        if v["subject"] != nil, let subject = try string(v, "subject", max: 500), subject != t.subject {
            t.subject = subject
            changed.append("subject")
        }
        if let c = v["contact"] {
            guard case .object = c else { throw PeekError(.invalid, "\"contact\" must be an object with \"name\" and/or \"email\".") }
            var contact = t.contact
            if let name = c["name"] {
                guard let s = name.stringValue, !s.isEmpty, s.utf8.count <= 200 else {
                    throw PeekError(.invalid, "\"contact.name\" must be a non-empty string of at most 200 bytes.")
                }
                contact.name = s
            }
            if c["email"] != nil { contact.email = try contactEmail(c["email"]) }
            if contact != t.contact {
                t.contact = contact
                changed.append("contact")
            }
        }
        if !changed.isEmpty {
            var w = JSONWriter()
            w.beginObject()
            if changed.contains("subject") { w.field("subject", t.subject) }
            if changed.contains("contact") {
                w.key("contact"); w.beginObject(); w.field("name", t.contact.name); w.field("email", t.contact.email); w.endObject()
            }
            w.field("version", t.version)
            w.endObject()
            try appendDelta(&t, kind: .ticketUpdated, data: w.bytes, at: now)
            try store.updateTicket(t)
        }
        var out = JSONWriter()
        out.beginObject(); out.field("ticket", t.id); out.field("seq", t.seq)
        out.key("changed"); out.beginArray(); for name in changed { out.string(name) }; out.endArray()
        out.endObject()
        return .json(200, out.bytes)
    }

    func createTicket(tenant: String, _ v: JSONValue) throws -> Ticket {
        let subject = try string(v, "subject", max: 500)!
        guard let contactValue = v["contact"], case .object = contactValue,
              let contactName = contactValue["name"]?.stringValue, !contactName.isEmpty else {
            throw PeekError(.invalid, "\"contact\" must be an object with a \"name\" (and optionally \"email\").")
        }
        let email = try contactEmail(contactValue["email"])
        let client = try string(v, "client")!
        let priority: Priority
        if let p = v["priority"]?.stringValue {
            guard let pp = Priority(rawValue: p) else { throw PeekError(.invalid, "\"priority\" must be low, normal, high or urgent.") }
            priority = pp
        } else { priority = .normal }
        var status = TicketStatus.new
        if let s = v["status"]?.stringValue {
            guard let st = TicketStatus(rawValue: s) else { throw PeekError(.invalid, "\"status\" is not a ticket status.") }
            status = st
        }
        var assetRef: PersonRef?
        if let a = try identifier(v, "asset", optional: true) {
            guard let asset = try store.asset(tenant: tenant, id: a) else { throw PeekError(.invalid, "No asset \(a) in this tenant; create it first.") }
            assetRef = PersonRef(id: asset.id, name: asset.name)
        }
        var assignee: PersonRef?
        if let a = try identifier(v, "assignee", optional: true) {
            guard let tech = try store.technician(tenant: tenant, id: a) else { throw PeekError(.invalid, "No technician \(a) in this tenant.") }
            assignee = PersonRef(id: tech.id, name: tech.name)
        }
        let at = now
        var sla = SLAClocks()
        if let policy = try store.slaPolicy(tenant: tenant, priority: priority) {
            sla.responseDue = try dueTime(tenant: tenant, from: at, seconds: policy.response)
            sla.resolutionDue = try dueTime(tenant: tenant, from: at, seconds: policy.resolution)
        }
        if status.pausesResolutionClock { sla.pausedSince = at }
        let number = try store.nextTicketNumber()
        var t = Ticket(id: Ticket.id(forNumber: number), tenant: tenant, number: number, subject: subject, status: status,
                       priority: priority, assignee: assignee, contact: Contact(name: contactName, email: email), client: client,
                       asset: assetRef, firstResponseAt: nil, createdAt: at, version: 1, seq: 0, sla: sla,
                       contract: try string(v, "contract", max: 500, optional: true))
        try store.insertTicket(t)
        queueTouched(t.id, tenant: tenant)
        if let body = try string(v, "body", max: CommandRequest.maxBodyBytes, optional: true) {
            let m = Message(id: "M-\(number)-1", ticket: t.id, seq: 1, channel: .customer,
                            author: PersonRef(id: "contact", name: contactName), body: body, via: .email, at: at)
            try appendMessage(&t, m)
            try store.updateTicket(t)
        }
        if let next = SLAClock.nextDeadline(t) { timers.schedule(.slaDeadline(ticket: t.id), at: next.dueAt) }
        return t
    }

    /// The file was validated, hashed, written and synced by a file worker
    /// (`AttachmentFiles.prepareUpload`); the engine checks the ticket and inserts the row.
    private func uploadAttachment(_ r: APIRequest, tech: Technician?) throws -> APIResponse {
        guard let id = r.params["id"], let t = try store.ticket(id), tech == nil || tech?.tenant == t.tenant else {
            throw PeekError(.notFound, "No ticket \(r.params["id"] ?? "") is visible to you.")
        }
        guard case .upload(let file) = r.prepared else { throw PeekError(.internal, "The upload was not prepared; try again.") }
        let ref = AttachmentRef(id: "A-" + Crypto.hex(Crypto.randomBytes(8)), filename: file.filename, contentType: file.contentType, size: file.size)
        try store.insertAttachment(ref, ticket: t.id, sha256: file.sha256, at: now)
        var w = JSONWriter()
        w.beginObject(); w.field("id", ref.id); w.field("ticket", t.id); w.field("filename", ref.filename)
        w.field("content_type", ref.contentType); w.field("size", ref.size); w.field("sha256", file.sha256); w.endObject()
        return .json(201, w.bytes)
    }

    /// An inbound message a mail worker parsed (`MailIntake.prepare`): the
    /// engine finds its tenant and ticket and stores it. Threading and
    /// de-duplication look only at the tenant's own tickets and messages.
    private func inboundEmail(_ r: APIRequest) throws -> APIResponse {
        guard case .inbound(let mail) = r.prepared else { throw PeekError(.internal, "The message was not prepared; try again.") }
        if let tenant = mail.tenant {
            guard try store.tenant(tenant) != nil else {
                throw PeekError(.notFound, "No tenant \(tenant) exists; create it with POST /v1/tenants.")
            }
            return try storeInbound(mail, tenant: tenant)
        }
        // The global route: the tenant is the one the mail was sent to, the
        // one whose outbound `from` is among its recipients. A tag alone
        // would let anyone post onto any tenant's ticket.
        let recipientTenants = try store.tenants(outboundAddresses: mail.recipients)
        if let n = mail.ticketNumber, let tagged = try store.ticket(Ticket.id(forNumber: n)) {
            guard recipientTenants.contains(tagged.tenant) else {
                throw PeekError(.invalid, "The message is tagged [#\(n)], but that ticket's tenant's outbound address is not among its recipients (To, Cc, Delivered-To, X-Original-To); nothing was stored. Post it to /v1/tenants/{tenant}/inbound-email, or address it to that tenant.").unprocessable
            }
            return try storeInbound(mail, tenant: tagged.tenant)
        }
        guard let last = recipientTenants.last else {
            throw PeekError(.notFound, "None of the message's recipients (To, Cc, Delivered-To, X-Original-To) is a tenant's outbound address, so it belongs to no tenant; nothing was stored. Post it to /v1/tenants/{tenant}/inbound-email.").unprocessable
        }
        // Several tenants may share a mailbox: the one that holds the thread.
        for tenant in recipientTenants.dropLast() where try isStored(mail, tenant: tenant) || threadedTicket(mail, tenant: tenant) != nil {
            return try storeInbound(mail, tenant: tenant)
        }
        return try storeInbound(mail, tenant: last)
    }

    private func isStored(_ mail: InboundDelivery, tenant: String) throws -> Bool {
        guard let id = mail.messageID else { return false }
        return try store.message(mailMessageID: id, tenant: tenant) != nil
    }

    /// The tenant's ticket the mail belongs to: its `[#N]` tag if that names
    /// one of the tenant's tickets, else the newest of its In-Reply-To and
    /// References that the tenant holds.
    private func threadedTicket(_ mail: InboundDelivery, tenant: String) throws -> Ticket? {
        if let n = mail.ticketNumber, let t = try store.ticket(Ticket.id(forNumber: n)), t.tenant == tenant { return t }
        for ref in mail.referencedMessageIDs {
            if let m = try store.message(mailMessageID: ref, tenant: tenant), let t = try store.ticket(m.ticket) { return t }
        }
        return nil
    }

    private func storeInbound(_ mail: InboundDelivery, tenant: String) throws -> APIResponse {
        // A gateway that did not hear our answer posts the same message
        // again: the Message-ID says it is stored already, so the first
        // answer is repeated (200, not 201) and nothing is stored twice.
        if let messageID = mail.messageID, let stored = try store.message(mailMessageID: messageID, tenant: tenant) {
            var w = JSONWriter()
            w.beginObject(); w.field("ticket", stored.ticket); w.field("seq", stored.seq)
            w.key("message"); Wire.message(stored, into: &w); w.endObject()
            return .json(200, w.bytes)
        }
        guard var t = try threadedTicket(mail, tenant: tenant) else {
            throw PeekError(.notFound, "No ticket of tenant \(tenant) matches this message: its subject has no [#<number>] tag of the tenant's tickets and it does not reply to a message the tenant holds; nothing was stored.").unprocessable
        }
        let at = now
        var attachments: [AttachmentRef] = []
        let mark = outputs.count
        do {
            try store.savepoint()
            for file in mail.files {
                let ref = AttachmentRef(id: "A-" + Crypto.hex(Crypto.randomBytes(8)), filename: file.filename,
                                        contentType: file.contentType, size: file.size)
                try store.insertAttachment(ref, ticket: t.id, sha256: file.sha256, at: at)
                attachments.append(ref)
            }
            // The author is whoever sent it. The contact's name stands in only
            // for the contact's own address without a display name, so a
            // colleague's mail never appears under the contact's name.
            let isContact = t.contact.email.map { $0.lowercased() == mail.from.address.lowercased() } ?? false
            let name = mail.from.name ?? (isContact ? t.contact.name : mail.from.address)
            let m = Message(id: "M-\(t.number)-\(t.seq + 1)", ticket: t.id, seq: t.seq + 1, channel: .customer,
                            author: PersonRef(id: mail.from.address, name: name), body: mail.body, via: .email, at: at, attachments: attachments)
            let seq = try appendMessage(&t, m, mailMessageID: mail.messageID)
            try store.updateTicket(t)
            try store.releaseSavepoint()
            var w = JSONWriter()
            w.beginObject(); w.field("ticket", t.id); w.field("seq", seq); w.key("message"); Wire.message(m, into: &w); w.endObject()
            return .json(201, w.bytes)
        } catch {
            rollbackCommandOutputs(to: mark)
            throw error
        }
    }

    private func demo(_ r: APIRequest) throws -> APIResponse {
        let tenant = DemoData.tenant
        if r.route == .demoTechnicians {
            var w = JSONWriter()
            w.beginObject(); w.key("technicians"); w.beginArray()
            for t in try store.technicians(tenant: tenant) { w.beginObject(); w.field("id", t.id); w.field("name", t.name); w.endObject() }
            w.endArray(); w.endObject()
            return .json(200, w.bytes)
        }
        let v = try body(r)
        let id = try identifier(v, "technician")!
        guard let tech = try store.technician(tenant: tenant, id: id) else { throw PeekError(.notFound, "No demo technician \(id).") }
        let token = JWT.sign(TechnicianClaims(subject: tech.id, tenant: tenant, name: tech.name, expiresAt: now / 1000 + 12 * 3600),
                             secret: Array(config.jwtSecret.utf8))
        var w = JSONWriter()
        w.beginObject(); w.field("token", token)
        w.key("user"); w.beginObject(); w.field("id", tech.id); w.field("name", tech.name); w.field("tenant", tenant); w.endObject()
        w.endObject()
        return .json(200, w.bytes)
    }
}

extension PeekError {
    /// The inbound-mail contract answers 422 for unknown tickets and
    /// unparsable mail; the code stays the closest contract code.
    var unprocessable: UnprocessableError { UnprocessableError(error: self) }
}

struct UnprocessableError: Error { var error: PeekError }
