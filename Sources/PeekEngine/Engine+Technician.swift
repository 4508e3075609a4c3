import PeekCore

/// Technician connections: sign-in, subscriptions, presence.
extension Engine {
    /// The answer to a second `hello` on one connection (the loop answers these itself).
    package static let helloAgainError = PeekError(.invalid, "Already signed in; send hello only once per connection.")

    func handleHello(_ peer: Peer, token: String) {
        let claims: TechnicianClaims
        do {
            claims = try JWT.verify(token, secret: Array(config.jwtSecret.utf8), nowSeconds: now / 1000)
        } catch {
            refuseHello(peer, error.message)
            return
        }
        let found: Technician?
        do {
            found = try store.technician(tenant: claims.tenant, id: claims.subject)
        } catch {
            // The token is good; only the lookup failed. Not `unauthorized`,
            // which would tell the client to sign in again: try again later.
            log(.error, "read_failed", "technician \(claims.subject) could not be read at sign-in", tenant: claims.tenant, connection: peer, error: "\(error)")
            sendError(peer, id: nil, PeekError(.internal, "Your sign-in could not be checked just now; reconnect to try again."))
            outputs.append(.close(peer, code: 1013, reason: "sign-in could not be checked; try again"))
            return
        }
        guard let tech = found else {
            refuseHello(peer, "No technician \(claims.subject) exists in tenant \(claims.tenant); ask an administrator to add you.", tenant: claims.tenant)
            return
        }
        let count = tenantConnections[tech.tenant, default: 0]
        guard count < config.maxConnectionsPerTenant else {
            sendError(peer, id: nil, PeekError(.rateLimited, "Your organisation has \(count) open connections, the most allowed; close some tabs and reconnect."))
            outputs.append(.close(peer, code: 1013, reason: "too many connections for this tenant"))
            return
        }
        tenantConnections[tech.tenant] = count + 1
        sessions[peer] = TechnicianState(technician: tech)
        log(.info, "signed_in", "technician \(tech.id) signed in", tenant: tech.tenant, connection: peer)
        var w = JSONWriter()
        w.beginObject()
        w.field("type", "welcome")
        w.key("user"); w.beginObject(); w.field("id", tech.id); w.field("name", tech.name); w.field("tenant", tech.tenant); w.endObject()
        w.field("heartbeat", config.heartbeatSeconds)
        w.field("exp", Int(claims.expiresAt))
        // What the composer checks before an upload starts (protocol.md §8.4).
        w.key("limits"); w.beginObject(); w.field("attachment_bytes", config.maxAttachmentBytes)
        w.field("reply_attachment_bytes", config.maxReplyAttachmentBytes); w.endObject()
        w.endObject()
        outputs.append(.welcome(peer, frame: w.bytes, signIn: SignIn(tenant: tech.tenant, technician: tech.id, expiresAt: claims.expiresAt)))
    }

    private func refuseHello(_ peer: Peer, _ message: String, tenant: String? = nil) {
        // The sentence the client gets; the token itself is never logged.
        log(.warn, "sign_in_refused", "a technician sign-in was refused", tenant: tenant, connection: peer, error: message)
        sendError(peer, id: nil, PeekError(.unauthorized, message))
        outputs.append(.close(peer, code: 4401, reason: "unauthorized"))
    }

    func handleFrame(_ peer: Peer, _ frame: ClientFrame) {
        guard let tech = sessions[peer]?.technician else { return }   // hello is enforced by the loop
        switch frame {
        case .hello:
            sendError(peer, id: nil, Self.helloAgainError)   // the loop answers these itself
        case .refresh:
            break   // answered by the loop, which owns the sign-in's expiry
        case .subscribe(let id, let ticketID, let since):
            subscribe(peer, tech, id: id, ticketID: ticketID, since: since)
        case .unsubscribe(let ticketID):
            unsubscribe(peer, tech, ticketID: ticketID)
        case .composing(let ticketID, let mode):
            if viewers[ticketID]?.setComposing(mode, peer: peer, technician: tech.id) == true { publishPresence(ticketID) }
        case .command(let command):
            handleCommand(peer, tech, command)
        case .sessionInput(let id, let ticketID, let session, let data):
            relayInput(peer, tech, id: id, ticket: ticketID, session: session, data: data)
        case .history(let id, let ticketID, let before, let limit):
            history(peer, tech, id: id, ticketID: ticketID, before: before, limit: limit)
        case .assist(let id, let ticketID, let mode, let draft):
            assist(peer, tech, id: id, ticketID: ticketID, mode: mode, draft: draft)
        case .subscribeQueue(let id, let query):
            subscribeQueue(peer, tech, id: id, query)
        case .unsubscribeQueue:
            unsubscribeQueue(peer)
        }
    }

    /// One page of older messages. A read: nothing is written and no seq is
    /// taken, so durable deltas keep their order; one bounded indexed query
    /// (limit + 1 rows, the extra one only says whether more exist). Sent
    /// as a `.result` so that a page read inside a batch whose commit then
    /// fails (it could include that batch's messages) becomes an error.
    private func history(_ peer: Peer, _ tech: Technician, id: String, ticketID: String, before: Int, limit: Int) {
        let rows: [Message]
        do {
            _ = try visibleTicket(ticketID, to: tech)
            rows = try mustRead("older messages", tenant: tech.tenant, ticket: ticketID) { () throws(StoreError) in
                try store.messages(ticket: ticketID, before: before, limit: limit + 1)
            }
        } catch {
            sendError(peer, id: id, error)
            return
        }
        var w = JSONWriter(capacity: 8192)
        w.beginObject()
        w.field("type", "history")
        w.field("id", id)
        w.field("ticket", ticketID)
        w.key("messages"); w.beginArray()
        for m in rows.suffix(limit) { Wire.message(m, into: &w) }
        w.endArray()
        w.field("more", rows.count > limit)
        w.endObject()
        outputs.append(.result(peer, id: id, frame: w.bytes))
    }

    /// Loads a ticket if this technician may see it. Tenant isolation is
    /// enforced here and only here: every path to a ticket comes through.
    /// A failed read is `internal`, never "no such ticket".
    func visibleTicket(_ id: String, to tech: Technician) throws(PeekError) -> Ticket {
        let found = try mustRead("the ticket", tenant: tech.tenant, ticket: id) { () throws(StoreError) in try store.ticket(id) }
        guard let t = found, t.tenant == tech.tenant else { throw Self.notFound(id) }
        return t
    }

    /// A read the answer depends on failed: nothing was changed or sent.
    static let readFailed = PeekError(.internal, "The server could not read what this needs; nothing changed. Try again.")

    /// The answer to a failed write, chosen by the store's `kind` so that
    /// either database gets the same words. Every one is `internal` (§4.2:
    /// nothing changed, never remembered as a command id's answer); a full
    /// disk or a busy database says so, since "try again" alone would not
    /// help the first and should wait a moment for the second.
    static func writeFailed(_ error: any Error, otherwise: PeekError) -> PeekError {
        switch (error as? StoreError)?.kind {
        case .full?:
            return PeekError(.internal, "The server's storage is full; nothing changed. Try again once an administrator has freed space.")
        case .busy?:
            return PeekError(.internal, "The database is busy; nothing changed. Try again in a moment.")
        case .unavailable?:
            return PeekError(.internal, "The database cannot be reached; nothing changed. Try again in a moment.")
        default:
            return otherwise
        }
    }

    /// A read an answer depends on. A failure is logged and becomes
    /// `readFailed`, never an empty answer: nil is "there is none", not
    /// "the database did not say".
    func mustRead<T>(_ what: @autoclosure () -> String, tenant: String?, ticket: String? = nil,
                     _ read: () throws(StoreError) -> T) throws(PeekError) -> T {
        do { return try read() } catch {
            log(.error, "read_failed", "\(what()) could not be read", tenant: tenant, ticket: ticket, error: "\(error)")
            throw Self.readFailed
        }
    }

    static func notFound(_ id: String) -> PeekError {
        PeekError(.notFound, "No ticket \(id) is visible to you; check the ticket id.")
    }

    private func subscribe(_ peer: Peer, _ tech: Technician, id: String?, ticketID: String, since: Int?) {
        // A quota, not a malformed frame: the same subscribe succeeds once the
        // connection lets go of a ticket, hence rate_limited and not invalid.
        // Checked before visibility, so it says nothing about the ticket.
        if let viewing = sessions[peer]?.tickets, !viewing.contains(ticketID), viewing.count >= config.maxSubscriptionsPerConnection {
            sendError(peer, id: id, PeekError(.rateLimited, "This connection already views \(viewing.count) tickets, the most allowed; unsubscribe from one you no longer need, then subscribe again."))
            return
        }
        let ticket: Ticket
        do {
            ticket = try visibleTicket(ticketID, to: tech)
        } catch {
            sendError(peer, id: id, error)
            return
        }
        // Join presence first so the snapshot's viewers include the newcomer.
        let (isNewViewer, isNewConnection) = viewers[ticketID, default: TicketViewers()].add(peer, technician: tech.id, name: tech.name)
        if isNewConnection { subscribedThisBatch.append((peer, tech.id, ticketID)) }
        sessions[peer]?.tickets.insert(ticketID)

        var frames: [[UInt8]] = []
        var served = false
        // The log is pruned only every 64 seqs, so it may still hold more than
        // `--retain` deltas; the window is `--retain` regardless, so a resume
        // costs at most that many frames and behaves the same between prunes.
        if let since, since <= ticket.seq, ticket.seq - since <= config.retainDeltas {
            if since == ticket.seq {
                served = true
            // Best effort: a failed read of the log falls back to a snapshot,
            // which is a whole answer too.
            } else if let oldest = store.bestEffort({ () throws(StoreError) in try store.oldestDeltaSeq(ticket: ticketID) }) ?? nil,
                      oldest <= since + 1,
                      let rows = store.bestEffort({ () throws(StoreError) in
                          try store.deltas(ticket: ticketID, after: since, limit: config.retainDeltas + 64) }),
                      rows.count == ticket.seq - since {
                for row in rows {
                    frames.append(Wire.deltaFrame(ticket: ticketID, seq: row.seq, at: row.at,
                                                  kind: DeltaKind(rawValue: row.kind) ?? .messageCreated, data: row.data))
                }
                served = true
            }
        }
        if served {
            var w = JSONWriter()
            w.beginObject(); w.field("type", "subscribed"); w.field("id", id); w.field("ticket", ticketID); w.field("seq", ticket.seq); w.endObject()
            frames.append(w.bytes)
        } else {
            do {
                frames.append(try snapshotFrame(id: id, ticket))
            } catch {
                // Half a snapshot would look like a ticket without messages.
                // Undone quietly: nobody was told of the join yet.
                log(.error, "read_failed", "the snapshot could not be read", tenant: tech.tenant, ticket: ticketID, connection: peer, error: "\(error)")
                if isNewConnection {
                    _ = viewers[ticketID]?.remove(peer, technician: tech.id)
                    if viewers[ticketID]?.isEmpty == true { viewers[ticketID] = nil }
                    subscribedThisBatch.removeLast()
                    sessions[peer]?.tickets.remove(ticketID)
                }
                sendError(peer, id: id, PeekError(.internal, "Subscribing to \(ticketID) failed; subscribe again."))
                return
            }
        }
        outputs.append(.subscribe(peer, id: id, ticket: ticketID, frames: frames))
        if isNewViewer { publishPresence(ticketID) } else { publishPresence(ticketID, onlyTo: peer) }
    }

    private func unsubscribe(_ peer: Peer, _ tech: Technician, ticketID: String) {
        sessions[peer]?.tickets.remove(ticketID)
        leave(peer, techID: tech.id, ticketID: ticketID)
        outputs.append(.unsubscribe(peer, ticket: ticketID))
    }

    /// Removes one connection from a ticket's viewers; presence changes only
    /// when the technician's last connection on that ticket goes.
    func leave(_ peer: Peer, techID: String, ticketID: String) {
        guard let changed = viewers[ticketID]?.remove(peer, technician: techID) else { return }
        if viewers[ticketID]?.isEmpty == true { viewers[ticketID] = nil }
        if changed { publishPresence(ticketID) }
    }

    func handleDisconnect(_ peer: Peer) {
        guard let state = sessions.removeValue(forKey: peer) else { return }
        dropQueueView(peer)
        if let tech = state.technician {
            tenantConnections[tech.tenant, default: 1] -= 1
            for ticketID in state.tickets { leave(peer, techID: tech.id, ticketID: ticketID) }
        }
    }

    /// Tells this ticket's viewers who views it (every node's), and, in a
    /// cluster, tells the other nodes who views it here.
    func publishPresence(_ ticketID: String, onlyTo peer: Peer? = nil) {
        if peer == nil { queuePresenceChanged(ticketID) }
        if peer == nil && clustered {
            var w = JSONWriter()
            Wire.viewers(viewers[ticketID]?.list ?? [], into: &w)
            outputs.append(.clusterPresence(ticket: ticketID, viewers: w.bytes))
        }
        publishLocalPresence(ticketID, onlyTo: peer)
    }

    /// The union list to this node's viewers of the ticket (or one of them).
    func publishLocalPresence(_ ticketID: String, onlyTo peer: Peer? = nil) {
        let list = presenceList(ticketID)
        var w = JSONWriter()
        w.beginObject(); w.key("viewers"); Wire.viewers(list, into: &w); w.endObject()
        if let peer {
            send(peer, Wire.deltaFrame(ticket: ticketID, seq: nil, at: now, kind: .presenceUpdated, data: w.bytes))
        } else {
            // No viewers here means nobody here to tell.
            guard viewers[ticketID] != nil else { return }
            let delta = Wire.deltaFrame(ticket: ticketID, seq: nil, at: now, kind: .presenceUpdated, data: w.bytes)
            outputs.append(.publish(ticket: ticketID, seq: nil, delta: delta))
        }
    }

    // MARK: Snapshot

    func snapshotFrame(id: String?, _ t: Ticket) throws(StoreError) -> [UInt8] {
        var w = JSONWriter(capacity: 8192)
        w.beginObject()
        w.field("type", "snapshot")
        w.field("id", id)
        w.field("ticket", t.id)
        w.field("seq", t.seq)
        w.key("state")
        try writeState(t, into: &w)
        w.endObject()
        return w.bytes
    }

    /// Every read is `try`: a state with a part left out on a read error
    /// would look whole to the client.
    func writeState(_ t: Ticket, into w: inout JSONWriter) throws(StoreError) {
        let at = now
        w.beginObject()
        w.key("ticket"); Wire.ticket(t, into: &w)
        w.key("messages"); w.beginArray()
        for m in try store.recentMessages(ticket: t.id, limit: Self.snapshotMessages) { Wire.message(m, into: &w) }
        w.endArray()
        w.key("sla"); Wire.sla(t, nowMillis: at, into: &w)
        w.key("asset")
        if let ref = t.asset, let asset = try store.asset(tenant: t.tenant, id: ref.id) {
            w.beginObject()
            w.field("id", asset.id)
            w.field("name", asset.name)
            w.field("agent", asset.agent)
            w.field("agent_online", agents[asset.agent] != nil)
            w.key("telemetry")
            if let latest = try latestTelemetry(tenant: t.tenant, asset: asset.id) {
                Wire.telemetry(asset: PersonRef(id: asset.id, name: asset.name), latest, into: &w)
            } else { w.null() }
            w.key("posture")
            if let posture = asset.posture { w.raw(posture) } else { w.null() }
            w.endObject()
        } else { w.null() }
        w.key("session"); Wire.session(try store.latestSession(ticket: t.id), into: &w)
        w.key("summary"); Wire.summary(try store.summary(ticket: t.id), into: &w)
        w.key("time")
        let time = try store.timeState(ticket: t.id, recentEntries: Self.recentTimeEntries)
        try writeTime(t, time, into: &w)
        w.key("related"); w.beginArray()
        for r in try store.related(to: t, limit: 10) {
            w.beginObject(); w.field("id", r.id); w.field("number", r.number); w.field("subject", r.subject)
            w.field("status", r.status.rawValue); w.endObject()
        }
        w.endArray()
        w.key("viewers"); Wire.viewers(presenceList(t.id), into: &w)
        w.endObject()
    }
}
