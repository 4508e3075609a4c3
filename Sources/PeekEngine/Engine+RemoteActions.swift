import PeekCore
import PeekCrypto

/// Remote actions beyond the recorded session: the words their system
/// events use. Kept apart from Engine+Agents so the kinds grow here.
extension Engine {
    /// The system event of `start_session`. The recorded session keeps the
    /// words it has always had (clients and logs already show them).
    static func requestText(_ kind: SessionKind, by technician: String, on asset: String) -> String {
        let what = kind == .recording ? "recorded remote session" : kind.phrase
        return "\(technician) requested a \(what) on \(asset); waiting for the end user's consent."
    }

    /// The system event of a consent outcome; `kind` is the stored raw value.
    static func resolutionText(_ status: SessionStatus, kind: String) -> String {
        let sessionKind = SessionKind(rawValue: kind) ?? .recording
        let what = sessionKind.phrase
        switch status {
        case .active:
            return sessionKind == .recording
                ? "The end user accepted the recorded session; recording started."
                : "The end user accepted the \(what); it is active."
        case .denied: return "The end user declined the \(what)."
        case .expired: return "The consent request for the \(what) expired."
        default: return "The \(what) ended."
        }
    }
}

/// An active shell session's relay state: who may type, and how much output
/// the viewers may be sent.
///
/// It lives on the engine thread, beside the session rows it mirrors, and
/// not on the loops: whether a session is active and who holds its keyboard
/// change inside the engine's batches (consent, `end_session`, hand-over),
/// so checking them anywhere else would race those changes. Relaying costs
/// no store access: `session_input` and `session_output` read and write
/// only this, and their frames leave with the batch's other outputs, in
/// order with the session's `session.status` deltas.
struct ShellRelay {
    let session: String
    let ticket: String
    let tenant: String
    /// The agent's certificate CN: a reconnected agent keeps the shell.
    let agent: String
    let assetName: String
    /// The technician who started it and when it became active: the
    /// transcript's event names them without a read.
    let starter: String
    let startedAt: Int64
    /// The one technician whose `session_input` reaches the agent.
    var holder: PersonRef
    /// Wall-clock time of the last input or output, for the idle timeout.
    var lastActivity: Int64
    /// Output bytes the viewers may still be sent (`shellOutputBytesPerSecond`).
    var viewerBudget: TokenBucket
    /// Every byte of output, dropped-for-viewers included, up to `maxTranscriptBytes`.
    var transcript: [UInt8] = []
    var transcriptTruncated = false

    /// The transcript's bound: a console session, not a log shipper.
    static let maxTranscriptBytes = 1024 * 1024
    static let truncationMarker = "\n[transcript truncated at 1 MiB]\n"

    mutating func record(_ data: String) {
        guard !transcriptTruncated else { return }
        let room = Self.maxTranscriptBytes - transcript.count
        if data.utf8.count <= room {
            transcript.append(contentsOf: data.utf8)
        } else {
            // Cut on a UTF-8 boundary, so the file stays valid text.
            var cut = room
            let bytes = Array(data.utf8)
            while cut > 0 && bytes[cut] & 0xC0 == 0x80 { cut -= 1 }
            transcript.append(contentsOf: bytes[..<cut])
            transcriptTruncated = true
        }
    }
}

extension Engine {
    // MARK: Shell relay (protocol.md §6.1)

    /// A shell the end user just accepted starts relaying, its keyboard held
    /// by the technician who asked.
    func openShell(_ s: RemoteSession, tenant: String, asset: Asset, at: Int64) {
        let rate = config.shellOutputBytesPerSecond
        shells[s.id] = ShellRelay(session: s.id, ticket: s.ticket, tenant: tenant, agent: asset.agent, assetName: asset.name,
                                  starter: s.technician.name, startedAt: at, holder: s.technician, lastActivity: at,
                                  viewerBudget: TokenBucket(ratePerSecond: rate, capacity: 2 * rate, nowMillis: clock.monotonicMillis()))
        timers.schedule(.shellCheck(session: s.id), at: at + Int64(config.shellIdleSeconds) * 1000)
    }

    func relayInput(_ peer: Peer, _ tech: Technician, id: String?, ticket: String, session: String, data: String) {
        // Another tenant's session reads as no session at all.
        guard var relay = shells[session], relay.tenant == tech.tenant, relay.ticket == ticket else {
            sendError(peer, id: id, PeekError(.invalid, "No shell session \(session) is active on ticket \(ticket); start one with start_session (kind shell)."))
            return
        }
        guard relay.holder.id == tech.id else {
            sendError(peer, id: id, PeekError(.forbidden, "\(relay.holder.name) holds the keyboard of this shell; ask them to hand it over (session_handover)."))
            return
        }
        guard let agentPeer = agents[relay.agent] else {
            sendError(peer, id: id, PeekError(.agentOffline, "The device's agent is offline; the input was not sent."))
            return
        }
        relay.lastActivity = now
        shells[session] = relay
        var w = JSONWriter()
        w.beginObject(); w.field("type", "session_input"); w.field("session", session); w.field("data", data); w.endObject()
        outputs.append(.agentSend(agentPeer, w.bytes))
    }

    func relayOutput(_ peer: Peer, _ agent: AgentState, session: String, data: String) {
        guard var relay = shells[session], relay.agent == agent.commonName else {
            refuseAgent(peer, PeekError(.notFound, "No shell session \(session) is active on this device."))
            return
        }
        relay.lastActivity = now
        relay.record(data)
        let forViewers = relay.viewerBudget.take(data.utf8.count, nowMillis: clock.monotonicMillis())
        shells[session] = relay
        // Over the rate the viewers miss this chunk (it is ephemeral); a
        // viewer too slow for what is sent loses it at its own connection's
        // soft limit, like any ephemeral delta, without slowing the others.
        guard forViewers else { return }
        var w = JSONWriter()
        w.beginObject(); w.field("session", session); w.field("data", data); w.endObject()
        publishEphemeral(ticket: relay.ticket, kind: .sessionOutput, data: w.bytes)
    }

    /// `session_handover`: the holder gives the keyboard to another
    /// technician viewing the ticket; every viewer sees it as a system event.
    func handOver(_ t: inout Ticket, session: String, to technician: String, by tech: Technician, at: Int64) throws -> Int {
        guard var relay = shells[session], relay.ticket == t.id else {
            throw PeekError(.invalid, "No shell session \(session) is active on this ticket.")
        }
        guard relay.holder.id == tech.id else {
            throw PeekError(.forbidden, "Only \(relay.holder.name), who holds the keyboard, can hand it over.")
        }
        guard let viewer = viewers[t.id]?.byTechnician[technician] else {
            throw PeekError(.invalid, "\(technician) is not viewing this ticket; the keyboard goes only to someone watching the shell.")
        }
        guard technician != tech.id else { return t.seq }
        try appendSystemMessage(&t, "\(tech.name) handed the shell keyboard to \(viewer.name).", at: at)
        relay.holder = PersonRef(id: technician, name: viewer.name)
        shells[session] = relay
        return t.seq
    }

    /// The shell's timer: it ends once idle too long, or (on a retry after
    /// a failed read or write) once its agent is gone; otherwise it waits
    /// for the next idle deadline.
    func checkShell(_ id: String) {
        guard let relay = shells[id] else { return }
        let at = now
        if agents[relay.agent] == nil {
            finishShell(relay, Self.agentGoneText(relay), at: at)
            return
        }
        let due = relay.lastActivity + Int64(config.shellIdleSeconds) * 1000
        guard at >= due else {
            timers.schedule(.shellCheck(session: id), at: due)
            return
        }
        let minutes = max(1, config.shellIdleSeconds / 60)
        finishShell(relay, "The remote shell session ended after \(minutes) minute\(minutes == 1 ? "" : "s") without input or output.", at: at)
    }

    private static func agentGoneText(_ relay: ShellRelay) -> String {
        "The agent on \(relay.assetName) disconnected; the remote shell session ended."
    }

    static let restartEndText = "The remote shell session ended because the server restarted; its output was not kept."

    /// At start: a shell the previous process left `active` (it was killed,
    /// or its stop could not end it) has no relay any more, so nothing can
    /// reach it; it ends now, with its `session.status` delta and a system
    /// event, rather than blocking the ticket's sessions until someone sends
    /// `end_session`. Its transcript was in that process's memory only.
    /// Recordings and desktop sessions run on the agent, not through peekd,
    /// and stay as they are, as do consent requests (their expiry timers
    /// are re-armed by `recoverTimers`). A store failure leaves them for the
    /// next start, logged.
    func endShellsCutByRestart() {
        let at = now
        runBatch(ifUncommitted: .discard) {
            do {
                for s in try store.activeSessions() where s.kind == SessionKind.shell.rawValue {
                    guard var t = try store.ticket(s.ticket) else { continue }
                    var ended = s
                    ended.status = .ended
                    try store.updateSession(id: s.id, status: .ended, startedAt: nil)
                    try appendDelta(&t, kind: .sessionStatus, data: sessionData(ended), at: at)
                    try appendSystemMessage(&t, Self.restartEndText, at: at)
                    try store.updateTicket(t)
                    log(.info, "shell_ended_by_restart", "shell session \(s.id) was cut off by the restart; ended", tenant: t.tenant, ticket: t.id)
                }
            } catch {
                log(.error, "shell_restart_end_failed", "the shells a restart cut off could not be ended; they stay active until end_session or the next start",
                    error: "\(error)")
                batchFailed = true
            }
        }
    }

    /// The agent holding these shells went away: they cannot go on.
    func endShells(ofAgent agent: String) {
        for relay in shells.values where relay.agent == agent {
            finishShell(relay, Self.agentGoneText(relay), at: now)
        }
    }

    /// Ends a shell the server ends by itself (idle, agent gone), all or
    /// nothing. If the database fails, the relay stays and its timer tries
    /// again in a second: dropping it would leave the session active for good.
    private func finishShell(_ relay: ShellRelay, _ text: String, at: Int64) {
        let retry = { self.timers.schedule(.shellCheck(session: relay.session), at: self.now + 1000) }
        let found: (RemoteSession, Ticket?)?
        do { found = try sessionAndTicket(relay.session) } catch {
            log(.error, "read_failed", "shell session \(relay.session) could not be read to end it; trying again in a second", ticket: relay.ticket, error: "\(error)")
            retry()
            return
        }
        guard let (session, ticket) = found, session.status == .active, var t = ticket else {
            shells[relay.session] = nil   // ended some other way already
            return
        }
        var s = session
        let mark = outputs.count
        do {
            try store.savepoint()
            s.status = .ended
            try store.updateSession(id: s.id, status: .ended, startedAt: nil)
            try appendDelta(&t, kind: .sessionStatus, data: sessionData(s), at: at)
            try appendSystemMessage(&t, text, at: at)
            try store.updateTicket(t)
            try store.releaseSavepoint()
        } catch {
            rollbackCommandOutputs(to: mark)
            log(.error, "session_update_failed", "shell session \(s.id) could not be ended; trying again in a second", ticket: s.ticket, error: "\(error)")
            retry()
            return
        }
        retireShell(s.id, at: at)
        if let agentPeer = agents[relay.agent] {
            var w = JSONWriter()
            w.beginObject(); w.field("type", "session_ended"); w.field("session", s.id); w.endObject()
            outputs.append(.agentSend(agentPeer, w.bytes))
        }
    }
}

extension Engine {
    // MARK: Transcript (protocol.md §6.1)

    /// Stops relaying a shell that ended, however it ended, and stores its
    /// transcript: the file is written and synced on `transcriptWriter`
    /// (through `AttachmentFiles.store`, the uploads' path), then the
    /// engine inserts the attachment and its system event.
    func retireShell(_ id: String, at: Int64) {
        guard let relay = shells.removeValue(forKey: id) else { return }
        let bytes = relay.transcript + (relay.transcriptTruncated ? Array(ShellRelay.truncationMarker.utf8) : [])
        let minutes = max(1, Int((at - relay.startedAt + 30_000) / 60_000))
        let text = "Remote shell session by \(relay.starter), \(minutes) min, transcript attached."
        let filename = "shell-\(id).txt"
        let directory = config.attachmentsDirectory
        let logger = logger
        let ticket = relay.ticket
        let claims = attachmentClaims
        let accepted = transcriptWriter.submit { [weak self] in
            let stored = AttachmentFiles.store(bytes, filename: filename, contentType: "text/plain",
                                               in: directory, claims: claims, logger: logger)
            self?.submit(.run { engine in engine.attachTranscript(ticket: ticket, session: id, stored, text: text) })
        }
        if !accepted { log(.error, "transcript_not_stored", "the transcript of shell session \(id) could not be queued", ticket: ticket) }
    }

    private func attachTranscript(ticket ticketID: String, session: String, _ stored: Result<StoredFile, PeekError>, text: String) {
        // The file is kept whatever happens below: its claim only has to end.
        defer { if case .success(let file) = stored { _ = attachmentClaims.release(file.sha256, unreferenced: false) } }
        let found: Ticket?
        do { found = try store.ticket(ticketID) } catch {
            log(.error, "transcript_not_stored", "ticket \(ticketID) could not be read to attach the transcript of shell session \(session)", ticket: ticketID, error: "\(error)")
            return
        }
        guard var t = found else { return }
        let at = now
        let mark = outputs.count
        do {
            try store.savepoint()
            switch stored {
            case .success(let file):
                let ref = AttachmentRef(id: "A-" + Crypto.hex(Crypto.randomBytes(8)), filename: file.filename,
                                        contentType: file.contentType, size: file.size)
                try store.insertAttachment(ref, ticket: t.id, sha256: file.sha256, at: at)
                let m = Message(id: "M-\(t.number)-\(t.seq + 1)", ticket: t.id, seq: t.seq + 1, channel: .system,
                                author: .system, body: text, via: .system, at: at, attachments: [ref])
                try appendMessage(&t, m)
            case .failure:
                try appendSystemMessage(&t, "The transcript of the remote shell session could not be stored.", at: at)
            }
            try store.updateTicket(t)
            try store.releaseSavepoint()
        } catch {
            rollbackCommandOutputs(to: mark)
            log(.error, "transcript_not_stored", "the transcript of shell session \(session) could not be attached", ticket: ticketID, error: "\(error)")
        }
    }
}

extension Engine {
    // MARK: Remote desktop (protocol.md §6.2)

    /// The agent's join link for an active desktop session goes to the
    /// technician who asked, on each of their connections viewing the
    /// ticket, and to nobody else: it is a key to the end user's screen.
    func forwardJoin(_ peer: Peer, _ agent: AgentState, session: String, url: String, expiresAt: Int64) {
        let found: (RemoteSession, Ticket?)?
        do {
            found = try mustRead("session \(session)", tenant: agent.asset.tenant) { () throws(StoreError) in try sessionAndTicket(session) }
        } catch {
            refuseAgent(peer, error)
            return
        }
        guard let (s, ticket) = found, s.asset == agent.asset.id, s.kind == SessionKind.desktop.rawValue,
              let t = ticket, t.tenant == agent.asset.tenant else {
            refuseAgent(peer, PeekError(.notFound, "No remote desktop session \(session) is on this device."))
            return
        }
        guard s.status == .active else {
            refuseAgent(peer, PeekError(.conflict, "Session \(session) is \(s.status.rawValue), not active; no join link is sent."))
            return
        }
        var w = JSONWriter()
        w.beginObject(); w.field("type", "session_join"); w.field("ticket", t.id); w.field("session", s.id)
        w.field("url", url); w.key("expires_at"); Wire.time(expiresAt, into: &w); w.endObject()
        let frame = w.bytes
        for requester in (viewers[t.id]?.byTechnician[s.technician.id]?.peers.keys).map(Array.init) ?? [] {
            send(requester, frame)
        }
    }
}
