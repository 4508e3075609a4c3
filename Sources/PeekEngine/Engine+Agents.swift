import PeekCore
import PeekCrypto

/// RMM agents (mutual TLS) and the consent-gated remote sessions they answer.
extension Engine {
    func handleAgentConnected(_ peer: Peer, commonName: String) {
        let found: Asset?
        do { found = try store.asset(agent: commonName) } catch {
            // Not "unknown agent", which tells it to give up: try again later.
            log(.error, "read_failed", "the asset of agent \(commonName) could not be read", connection: peer, error: "\(error)")
            refuseAgent(peer, Self.readFailed)
            outputs.append(.close(peer, code: 1013, reason: "could not be checked; try again"))
            return
        }
        guard let asset = found else {
            refuseAgent(peer, PeekError(.forbidden, "No asset is linked to agent \(commonName); register it through the back-end API."))
            outputs.append(.close(peer, code: 4403, reason: "unknown agent"))
            return
        }
        // One connection per agent identity: the newer one wins (a restarted
        // agent must not be locked out by its own half-dead predecessor).
        if let old = agents[commonName], old != peer {
            agentPeers[old] = nil
            outputs.append(.close(old, code: 4409, reason: "replaced by a newer connection"))
        }
        agents[commonName] = peer
        agentPeers[peer] = AgentState(commonName: commonName, asset: asset)
        metrics.agentsOnline.store(agents.count, ordering: .relaxed)
        log(.info, "agent_connected", "agent \(commonName) connected for asset \(asset.id)", tenant: asset.tenant, connection: peer)
        var w = JSONWriter()
        w.beginObject(); w.field("type", "welcome")
        w.key("asset"); w.beginObject(); w.field("id", asset.id); w.field("name", asset.name); w.endObject()
        w.endObject()
        outputs.append(.agentSend(peer, w.bytes))
        publishToLinkedViewers(asset, kind: .agentStatus, data: agentStatusData(asset, online: true))
    }

    func handleAgentDisconnected(_ peer: Peer) {
        guard let state = agentPeers.removeValue(forKey: peer) else { return }
        log(.info, "agent_disconnected", "agent \(state.commonName) disconnected", tenant: state.asset.tenant, connection: peer)
        // A connection replaced by a newer one is not the agent going away.
        guard agents[state.commonName] == peer else { return }
        agents[state.commonName] = nil
        metrics.agentsOnline.store(agents.count, ordering: .relaxed)
        endShells(ofAgent: state.commonName)
        publishToLinkedViewers(state.asset, kind: .agentStatus, data: agentStatusData(state.asset, online: false))
    }

    private func agentStatusData(_ asset: Asset, online: Bool) -> [UInt8] {
        var w = JSONWriter()
        w.beginObject()
        w.key("asset"); Wire.person(PersonRef(id: asset.id, name: asset.name), into: &w)
        w.field("online", online)
        w.endObject()
        return w.bytes
    }

    /// An ephemeral delta to the viewers of every ticket linked to `asset`
    /// (live tiles, the agent badge); tickets nobody views cost nothing.
    func publishToLinkedViewers(_ asset: Asset, kind: DeltaKind, data: [UInt8]) {
        // Best effort: an ephemeral push, like one shed to a slow consumer;
        // a snapshot (any resubscribe) reads the agent and telemetry afresh.
        let linked = store.bestEffort { () throws(StoreError) in try store.ticketsLinked(tenant: asset.tenant, asset: asset.id) }
        for ticketID in linked ?? [] where hasViewers(ticketID) {
            publishEphemeral(ticket: ticketID, kind: kind, data: data)
        }
    }

    func handleAgentFrame(_ peer: Peer, _ frame: AgentFrame) {
        guard let agent = agentPeers[peer] else { return }
        let at = now
        switch frame {
        case .chat(let ticketID, let body):
            let found: Ticket?
            do { found = try mustRead("the ticket", tenant: agent.asset.tenant, ticket: ticketID) { () throws(StoreError) in try store.ticket(ticketID) } } catch {
                refuseAgent(peer, error)
                return
            }
            guard var t = found, t.tenant == agent.asset.tenant, t.asset?.id == agent.asset.id else {
                refuseAgent(peer, PeekError(.notFound, "Ticket \(ticketID) is not linked to this device."))
                return
            }
            let mark = outputs.count
            do {
                try store.savepoint()
                // `via` is the server's word, never the frame's: the mTLS
                // identity is what makes this message the end user's.
                let m = Message(id: "M-\(t.number)-\(t.seq + 1)", ticket: t.id, seq: t.seq + 1, channel: .customer,
                                author: PersonRef(id: "contact", name: t.contact.name), body: body, via: .agentMTLS, at: at)
                try appendMessage(&t, m)
                try store.updateTicket(t)
                try store.releaseSavepoint()
                agentWrote(peer, refusalIfUncommitted: Self.chatNotSaved)
            } catch {
                rollbackCommandOutputs(to: mark)
                refuseAgent(peer, Self.chatNotSaved)
            }
        case .telemetry(let cpu, let ram, let disk):
            receiveTelemetry(agent.asset, Telemetry(cpu: cpu, ram: ram, disk: disk, at: at))
        case .consent(let sessionID, let accept):
            let found: (RemoteSession, Ticket?)?
            do {
                found = try mustRead("session \(sessionID)", tenant: agent.asset.tenant) { () throws(StoreError) in try sessionAndTicket(sessionID) }
            } catch {
                refuseAgent(peer, error)
                return
            }
            guard let (s, ticket) = found, s.asset == agent.asset.id, var t = ticket,
                  t.tenant == agent.asset.tenant else {
                refuseAgent(peer, PeekError(.notFound, "No session \(sessionID) is waiting on this device."))
                return
            }
            guard s.status == .awaitingConsent else {
                refuseAgent(peer, PeekError(.conflict, "Session \(sessionID) is already \(s.status.rawValue)."))
                return
            }
            if at >= s.expiresAt {
                // Past the deadline, its timer just has not run yet (timers
                // run after the batch): the answer is late, the session expired.
                resolveSession(s, ticket: &t, to: .expired, at: at)
                refuseAgent(peer, PeekError(.conflict, "Session \(sessionID) expired before the answer arrived."))
                return
            }
            // The agent hears nothing when its answer is saved; when it is
            // not, it is told to answer again, else the session would wait
            // for an answer already given and then expire.
            let notSaved = PeekError(.internal, "Your answer to session \(sessionID) could not be saved; send it again.")
            if resolveSession(s, ticket: &t, to: accept ? .active : .denied, at: at) {
                agentWrote(peer, refusalIfUncommitted: notSaved)
            } else {
                refuseAgent(peer, notSaved)
            }
        case .sessionOutput(let session, let data):
            relayOutput(peer, agent, session: session, data: data)
        case .sessionJoin(let session, let url, let expiresAt):
            forwardJoin(peer, agent, session: session, url: url, expiresAt: expiresAt)
        case .posture(let value):
            agentPosture(peer, value)
        }
    }

    static let chatNotSaved = PeekError(.internal, "The message could not be saved; send it again.")

    /// An `error` frame to an agent: sent whether or not the batch commits,
    /// since it promises no change.
    func refuseAgent(_ peer: Peer, _ error: PeekError) {
        outputs.append(.agentSend(peer, Wire.errorFrame(id: nil, error)))
        agentAnswersIfUncommitted.append((peer, error))
    }

    /// An agent's frame wrote, and the agent is told nothing: if the batch
    /// does not commit it is sent `refusal` instead.
    func agentWrote(_ peer: Peer, refusalIfUncommitted refusal: PeekError) {
        agentAnswersIfUncommitted.append((peer, refusal))
    }

    /// Moves a pending session to its outcome, pushed once: a session
    /// resolves at most once because only `awaiting_consent` may move here.
    /// False if it could not be saved (nothing changed): the caller tells
    /// the agent, or tries the expiry again.
    @discardableResult
    func resolveSession(_ s: RemoteSession, ticket t: inout Ticket, to status: SessionStatus, at: Int64) -> Bool {
        let mark = outputs.count
        do {
            try store.savepoint()
            let startedAt: Int64? = status == .active ? at : nil
            try store.updateSession(id: s.id, status: status, startedAt: startedAt)
            var updated = s
            updated.status = status
            if let startedAt { updated.startedAt = startedAt }
            try appendDelta(&t, kind: .sessionStatus, data: sessionData(updated), at: at)
            try appendSystemMessage(&t, Self.resolutionText(status, kind: s.kind), at: at)
            try store.updateTicket(t)
            // Read before the release, so that its failure undoes the rest.
            let shellAsset = status == .active && s.kind == SessionKind.shell.rawValue ? try store.asset(tenant: t.tenant, id: s.asset) : nil
            try store.releaseSavepoint()
            if let shellAsset { openShell(updated, tenant: t.tenant, asset: shellAsset, at: at) }
        } catch {
            rollbackCommandOutputs(to: mark)
            log(.error, "session_update_failed", "remote session \(s.id) could not move to \(status.rawValue)", ticket: s.ticket, error: "\(error)")
            return false
        }
        return true
    }

    func sessionData(_ s: RemoteSession) -> [UInt8] {
        var w = JSONWriter()
        Wire.session(s, into: &w)
        return w.bytes
    }

    func startSession(_ t: inout Ticket, kind: SessionKind, by tech: Technician, at: Int64) throws -> Int {
        guard let ref = t.asset, let asset = try store.asset(tenant: t.tenant, id: ref.id) else {
            throw PeekError(.invalid, "This ticket has no linked asset, so there is no device to start a session on.")
        }
        guard let agentPeer = agents[asset.agent] else {
            throw PeekError(.agentOffline, "The agent on \(asset.name) is offline; a session can start once it reconnects.")
        }
        if let open = try store.latestSession(ticket: t.id), open.status.isOpen {
            throw PeekError(.conflict, "A session is already \(open.status == .active ? "active" : "waiting for consent") on this ticket.")
        }
        let s = RemoteSession(id: "S-" + Crypto.hex(Crypto.randomBytes(8)), ticket: t.id, asset: asset.id,
                              technician: PersonRef(id: tech.id, name: tech.name), status: .awaitingConsent,
                              expiresAt: at + Int64(config.consentTimeoutSeconds) * 1000, createdAt: at, kind: kind.rawValue)
        try store.insertSession(s)
        try appendDelta(&t, kind: .sessionStatus, data: sessionData(s), at: at)
        try appendSystemMessage(&t, Self.requestText(kind, by: tech.name, on: asset.name), at: at)
        var w = JSONWriter()
        w.beginObject(); w.field("type", "consent_request"); w.field("session", s.id); w.field("ticket", t.id)
        w.field("kind", kind.rawValue)
        w.key("technician"); Wire.person(s.technician, into: &w)
        w.key("expires_at"); Wire.time(s.expiresAt, into: &w); w.endObject()
        pendingAgentMessages.append((agentPeer, w.bytes))
        // One timer per pending session; answered sessions are skipped when it fires.
        timers.schedule(.consentExpiry(session: s.id), at: s.expiresAt)
        return t.seq
    }

    func endSession(_ t: inout Ticket, by tech: Technician, at: Int64) throws -> Int {
        guard var s = try store.latestSession(ticket: t.id), s.status == .active else {
            throw PeekError(.invalid, "No remote session is active on this ticket.")
        }
        s.status = .ended
        try store.updateSession(id: s.id, status: .ended, startedAt: nil)
        try appendDelta(&t, kind: .sessionStatus, data: sessionData(s), at: at)
        try appendSystemMessage(&t, "\(tech.name) ended the \(SessionKind(rawValue: s.kind)?.phrase ?? s.kind).", at: at)
        // Last, once nothing here can fail: a refused end keeps the shell relaying.
        retireShell(s.id, at: at)
        if let asset = try store.asset(tenant: t.tenant, id: s.asset), let agentPeer = agents[asset.agent] {
            var w = JSONWriter()
            w.beginObject(); w.field("type", "session_ended"); w.field("session", s.id); w.endObject()
            pendingAgentMessages.append((agentPeer, w.bytes))
        }
        return t.seq
    }

    func sessionAndTicket(_ id: String) throws(StoreError) -> (RemoteSession, Ticket?)? {
        guard let s = try store.session(id) else { return nil }
        let ticket = try store.ticket(s.ticket)
        // Read again now that the ticket row is locked: another node that
        // changed the session meanwhile (an answer, an expiry) has committed,
        // and this node must act on that, not on the first read.
        return (try store.session(id) ?? s, ticket)
    }

    func expireSession(_ id: String) {
        let found: (RemoteSession, Ticket?)?
        do { found = try sessionAndTicket(id) } catch {
            // Dropping the timer would leave the session waiting for good.
            log(.error, "read_failed", "session \(id) could not be read to expire it; trying again in a second", error: "\(error)")
            timers.schedule(.consentExpiry(session: id), at: now + 1000)
            return
        }
        guard let (s, ticket) = found, s.status == .awaitingConsent, var t = ticket else { return }
        // Not saved: left waiting for good unless its timer comes back.
        if !resolveSession(s, ticket: &t, to: .expired, at: now) { timers.schedule(.consentExpiry(session: id), at: now + 1000) }
    }

    // MARK: Telemetry

    /// Live tiles, coalesced to at most one push per asset per second: the
    /// latest value wins, and one that arrives inside the second is sent
    /// when the second is up, so the screen never shows a stale reading.
    func receiveTelemetry(_ asset: Asset, _ value: Telemetry) {
        let key = TenantScopedID(tenant: asset.tenant, id: asset.id)
        let mono = clock.monotonicMillis()
        if var state = telemetry[key] {
            state.latest = value
            if mono - state.lastSentMonotonic >= 1000 {
                state.lastSentMonotonic = mono
                state.pending = false
                telemetry[key] = state
                pushTelemetry(asset, value)
            } else if !state.pending {
                state.pending = true
                telemetry[key] = state
                timers.schedule(.telemetryFlush(asset: key), at: now + (1000 - (mono - state.lastSentMonotonic)))
            } else {
                telemetry[key] = state
            }
        } else {
            telemetry[key] = TelemetryState(asset: asset, latest: value, lastSentMonotonic: mono, pending: false)
            pushTelemetry(asset, value)
        }
    }

    func flushTelemetry(_ asset: TenantScopedID) {
        guard var state = telemetry[asset], state.pending else { return }
        state.pending = false
        state.lastSentMonotonic = clock.monotonicMillis()
        telemetry[asset] = state
        pushTelemetry(state.asset, state.latest)
    }

    private func pushTelemetry(_ asset: Asset, _ value: Telemetry) {
        // Persisted at the coalesced rate, so a snapshot after a restart
        // still has the last reading.
        // Best effort: the live value is pushed from memory either way; only
        // a snapshot right after a restart would show an older reading.
        _ = store.bestEffort { () throws(StoreError) in try store.saveTelemetry(tenant: asset.tenant, asset: asset.id, value) }
        var w = JSONWriter()
        Wire.telemetry(asset: PersonRef(id: asset.id, name: asset.name), value, into: &w)
        publishToLinkedViewers(asset, kind: .assetTelemetry, data: w.bytes)
    }

    func latestTelemetry(tenant: String, asset: String) throws(StoreError) -> Telemetry? {
        if let latest = telemetry[TenantScopedID(tenant: tenant, id: asset)]?.latest { return latest }
        return try store.telemetry(tenant: tenant, asset: asset)
    }
}
