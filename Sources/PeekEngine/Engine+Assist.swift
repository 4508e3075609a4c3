import PeekCore

/// Nexie: the tenant's assistant and summariser, models that live outside
/// peekd and are reached over HTTP (protocol.md §11), and the asset's
/// posture. The engine reads what a call needs (the ticket, its recent
/// thread, the endpoint) and hands the call to the `AssistantCaller`
/// (PeekServer's `AssistantRelay` and its workers); nothing here waits on
/// the network.
extension Engine {
    static let assistantEndpoint = "assistant"
    static let summariserEndpoint = "summariser"
    static let noAssistant = PeekError(.noAssistant, "No assistant is configured")
    /// Messages of the thread an assistant or summariser is sent (the most recent).
    static let endpointThreadMessages = 30
    /// Largest posture object stored (encoded JSON).
    static let maxPostureBytes = 16 * 1024

    // MARK: Assist

    func assist(_ peer: Peer, _ tech: Technician, id: String, ticketID: String, mode: ComposingMode, draft: String) {
        do throws(PeekError) {
            let t = try visibleTicket(ticketID, to: tech)
            let stored = try mustRead("the assistant", tenant: tech.tenant, ticket: ticketID) { () throws(StoreError) in
                try store.tenantEndpoint(tenant: tech.tenant, kind: Self.assistantEndpoint)
            }
            guard let stored, let url = try? HTTPEndpointURL(stored) else { throw Self.noAssistant }
            let thread = try mustRead("the thread", tenant: tech.tenant, ticket: ticketID) { () throws(StoreError) in
                try store.recentMessages(ticket: t.id, limit: Self.endpointThreadMessages)
            }
            let body = Self.endpointRequest(t, thread: thread) { w in
                w.field("mode", mode.rawValue)
                w.field("draft", draft)
                w.key("technician"); Wire.person(PersonRef(id: tech.id, name: tech.name), into: &w)
            }
            guard let assistant else { throw PeekError(.assistFailed, "This server cannot call assistants; ask an administrator.") }
            if let refusal = assistant.assist(url: url, body: body, technician: TenantScopedID(tenant: tech.tenant, id: tech.id), peer: peer,
                                          id: id, ticket: t.id, bus: bus, logger: logger) {
                throw refusal
            }
        } catch {
            sendError(peer, id: id, error)
        }
    }

    /// The JSON body every endpoint call carries: the tenant, the ticket and
    /// its recent thread (internal notes included: the assistant works for
    /// the technician), then the call's own fields.
    static func endpointRequest(_ t: Ticket, thread: [Message], _ extra: (inout JSONWriter) -> Void) -> [UInt8] {
        var w = JSONWriter(capacity: 4096)
        w.beginObject()
        w.field("tenant", t.tenant)
        w.key("ticket"); w.beginObject()
        w.field("id", t.id); w.field("number", t.number); w.field("subject", t.subject)
        w.field("status", t.status.rawValue); w.field("priority", t.priority.rawValue)
        w.key("contact"); w.beginObject(); w.field("name", t.contact.name); w.endObject()
        w.field("client", t.client)
        w.endObject()
        w.key("thread"); w.beginArray()
        for m in thread { Wire.message(m, into: &w) }
        w.endArray()
        extra(&w)
        w.endObject()
        return w.bytes
    }

    // MARK: Summaries on demand

    /// A customer message arrived: the summariser is called once the ticket
    /// has been quiet for `summaryDebounceMillis` (each message starts the
    /// wait again). Tenants without a summariser cost a dictionary entry
    /// until the timer fires.
    func noteCustomerMessage(ticket: String) {
        let due = now + config.summaryDebounceMillis
        summaryDue[ticket] = due
        timers.schedule(.summaryDue(ticket: ticket), at: due)
    }

    func summaryTimerFired(_ ticketID: String) {
        guard let due = summaryDue[ticketID] else { return }
        if due > now {
            timers.schedule(.summaryDue(ticket: ticketID), at: due)
            return
        }
        summaryDue[ticketID] = nil
        guard let t = try? store.ticket(ticketID),
              let stored = try? store.tenantEndpoint(tenant: t.tenant, kind: Self.summariserEndpoint),
              let url = try? HTTPEndpointURL(stored),
              let thread = try? store.recentMessages(ticket: t.id, limit: Self.endpointThreadMessages) else { return }
        let previous = try? store.summary(ticket: t.id)
        let covers = thread.last?.seq
        let body = Self.endpointRequest(t, thread: thread) { w in
            w.field("covers", covers)
            w.field("previous", previous?.text)
        }
        let tenant = t.tenant
        guard let assistant else { return }
        let accepted = assistant.summarise(url: url, body: body, tenant: tenant) { [weak self] result in
            self?.submit(.run { engine in engine.finishSummary(ticketID, covers: covers, result) })
        }
        if accepted {
            publishEphemeral(ticket: t.id, kind: .summaryPending, data: Array(#"{"pending":true}"#.utf8))
        } else {
            log(.warn, "summary_skipped", "the summariser's workers are full; the summary waits for the next customer message", tenant: tenant, ticket: ticketID)
        }
    }

    private func finishSummary(_ ticketID: String, covers: Int?, _ result: Result<(text: String, model: String), EndpointFailure>) {
        switch result {
        case .failure(let f):
            guard let t = try? store.ticket(ticketID) else { return }
            log(.warn, "summary_failed", "the summariser failed", tenant: t.tenant, ticket: ticketID, error: f.text)
            publishEphemeral(ticket: ticketID, kind: .summaryPending, data: Array(#"{"pending":false}"#.utf8))
        case .success(let answer):
            do {
                guard var t = try store.ticket(ticketID) else { return }
                try storeSummary(&t, Summary(text: answer.text, model: answer.model, at: now, covers: covers))
            } catch {
                log(.error, "summary_failed", "the summary could not be stored", ticket: ticketID, error: "\(error)")
            }
        }
    }

    /// Stores a summary with its durable `summary.updated` delta, as
    /// `POST /v1/tickets/{id}/summary` does; answers the delta's seq.
    @discardableResult
    func storeSummary(_ t: inout Ticket, _ s: Summary) throws -> Int {
        let mark = outputs.count
        do {
            try store.savepoint()
            try store.putSummary(ticket: t.id, s)
            var w = JSONWriter()
            Wire.summary(s, into: &w)
            let seq = try appendDelta(&t, kind: .summaryUpdated, data: w.bytes, at: s.at)
            try store.updateTicket(t)
            try store.releaseSavepoint()
            return seq
        } catch {
            rollbackCommandOutputs(to: mark)
            throw error
        }
    }

    // MARK: Back-end API

    /// `PUT /v1/tenants/{tenant}/assistant`, `.../summariser` and
    /// `PUT /v1/tenants/{tenant}/assets/{asset}`.
    func routeNexie(_ r: APIRequest, tenant: Tenant, body v: JSONValue) throws -> APIResponse {
        switch r.route {
        case .putAssistant, .putSummariser:
            let kind = r.route == .putAssistant ? Self.assistantEndpoint : Self.summariserEndpoint
            guard let u = v["url"] else { throw PeekError(.invalid, "\"url\" is required: an http:// or https:// URL, or null to remove the \(kind).") }
            var url: HTTPEndpointURL?
            if !u.isNull {
                guard let s = u.stringValue else { throw PeekError(.invalid, "\"url\" must be a string or null.") }
                do { url = try HTTPEndpointURL(s) } catch { throw PeekError(.invalid, "\"url\" \(error.text).") }
            }
            try store.putTenantEndpoint(tenant: tenant.id, kind: kind, url: url?.description)
            var w = JSONWriter()
            w.beginObject(); w.field("url", url?.description); w.endObject()
            return .json(200, w.bytes)
        case .putAsset:
            guard let id = r.params["asset"], var asset = try store.asset(tenant: tenant.id, id: id) else {
                throw PeekError(.notFound, "No asset \(r.params["asset"] ?? "") in tenant \(tenant.id).")
            }
            guard let p = v["posture"] else { throw PeekError(.invalid, "\"posture\" is required: an object, or null to clear it.") }
            asset.posture = try Self.postureBytes(p)
            try store.putAssetPosture(tenant: tenant.id, id: id, posture: asset.posture)
            publishPosture(asset)
            var w = JSONWriter()
            w.beginObject(); w.field("id", asset.id); w.field("name", asset.name); w.field("agent", asset.agent); w.field("tenant", asset.tenant)
            w.key("posture"); if let bytes = asset.posture { w.raw(bytes) } else { w.null() }
            w.endObject()
            return .json(200, w.bytes)
        default:
            throw PeekError(.notFound, "No such endpoint.")
        }
    }

    static func postureBytes(_ p: JSONValue) throws(PeekError) -> [UInt8]? {
        if p.isNull { return nil }
        guard case .object = p else { throw PeekError(.invalid, "\"posture\" must be an object or null.") }
        let bytes = JSONWriter.encode(p)
        guard bytes.count <= maxPostureBytes else { throw PeekError(.invalid, "\"posture\" is over \(maxPostureBytes / 1024) KiB.") }
        return bytes
    }

    /// `asset.posture` to the viewers of every ticket linked to the asset.
    func publishPosture(_ asset: Asset) {
        var w = JSONWriter()
        w.beginObject()
        w.key("asset"); Wire.person(PersonRef(id: asset.id, name: asset.name), into: &w)
        w.key("posture"); if let bytes = asset.posture { w.raw(bytes) } else { w.null() }
        w.endObject()
        publishToLinkedViewers(asset, kind: .assetPosture, data: w.bytes)
    }

    /// An agent's own posture report: stored and pushed like the back end's.
    func agentPosture(_ peer: Peer, _ value: JSONValue) {
        guard var state = agentPeers[peer] else { return }
        let bytes: [UInt8]?
        do { bytes = try Self.postureBytes(value) } catch {
            outputs.append(.agentSend(peer, Wire.errorFrame(id: nil, error)))
            return
        }
        guard bytes != state.asset.posture else { return }
        do { try store.putAssetPosture(tenant: state.asset.tenant, id: state.asset.id, posture: bytes) } catch {
            log(.error, "write_failed", "an agent's posture could not be stored", tenant: state.asset.tenant, connection: peer, error: "\(error)")
            return
        }
        state.asset.posture = bytes
        agentPeers[peer] = state
        publishPosture(state.asset)
    }
}
