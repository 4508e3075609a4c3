import PeekCore

/// Ticket lifecycle commands. Each either changes everything it says (the
/// field, the system event, the log rows, the new seq) or nothing: inside
/// the batch's transaction, in its own savepoint, or for a note (the hot
/// path) by rolling back the whole batch if one of its writes fails.
extension Engine {
    func handleCommand(_ peer: Peer, _ tech: Technician, _ c: CommandRequest) {
        let at = now
        // Idempotency: the same technician's command id within 10 minutes
        // gets the first answer again and changes nothing. A note's first
        // answer is kept as its message's seq, every other answer as bytes.
        let key = CommandKey(c, from: tech)
        if let waiting = inFlightReplies[key] {
            // The same reply is being sent right now; answer every repeat
            // when it is done. Asked before the stored answers: a reply in
            // flight has one there already, the "outcome unknown" kept in
            // case the process dies before the mail server answers (§8.2).
            // A client that keeps resending would grow the list for as long
            // as the mail server takes, so past a few it is told to wait
            // (rate_limited: not remembered, nothing changed).
            guard waiting.count < Self.maxReplyRepeatsWaiting else {
                sendError(peer, id: c.id, PeekError(.rateLimited, "This reply is still being sent and \(waiting.count) requests already wait for its answer; wait for that answer instead of sending it again."))
                return
            }
            inFlightReplies[key]?.append((peer, c.id))
            return
        }
        let first: [UInt8]?
        do {
            first = try firstAnswer(key, notBefore: at - Self.idempotencyWindowMillis)
        } catch {
            // Not knowing whether it ran is not "it never ran": applying it
            // again could apply it twice. Not remembered, so a repeat asks again.
            log(.error, "read_failed", "whether command \(c.op.rawValue) was already answered could not be read", tenant: tech.tenant, ticket: c.ticket, error: "\(error)")
            sendError(peer, id: c.id, Self.readFailed)
            return
        }
        if let answer = first {
            // A `.result`, not a plain send: the first answer may have been
            // saved earlier in this very batch, and if its commit fails the
            // repeat must not claim a change that never reached the disk.
            outputs.append(.result(peer, id: c.id, frame: answer))
            return
        }
        var ticket: Ticket
        do {
            ticket = try visibleTicket(c.ticket, to: tech)
        } catch {
            answer(peer, tech, c, error: error, at: at)
            return
        }
        if let expected = c.ifVersion, expected != ticket.version {
            answer(peer, tech, c, error: PeekError(.conflict, "The ticket changed since you loaded it (now version \(ticket.version), you had \(expected)); review the change and try again."), at: at)
            return
        }
        if case .reply = c.args {
            beginReply(peer, tech, c, key: key, ticket: ticket, at: at)
            return
        }
        // A note runs without a savepoint. Everything that can refuse it
        // (stale, attachments) is checked before its first write, so what can
        // still fail is the database itself (disk full, I/O error), and then
        // the whole batch rolls back and every command in it is told, as when
        // COMMIT fails. A savepoint per note cost a fifth of durable
        // throughput: SQLite copies each page the note touches into the
        // statement journal first, in case of a ROLLBACK TO that never comes.
        let isNote = if case .note = c.args { true } else { false }
        do {
            if !isNote { try store.savepoint() }
        } catch {
            answer(peer, tech, c, error: Self.writeFailed(error, otherwise: PeekError(.internal, "The change could not be saved; try again.")), at: at)
            return
        }
        let mark = outputs.count
        do {
            let seq = try apply(c, tech: tech, ticket: &ticket, at: at)
            try store.updateTicket(ticket)
            let frame = Wire.resultFrame(id: c.id, seq: seq)
            // A note's message carries its command key instead (schema 6):
            // one B-tree write fewer on the hot path.
            if !isNote {
                try store.saveCommandAnswer(key, at: at, answer: frame)
                try store.releaseSavepoint()
            }
            outputs.append(.result(peer, id: c.id, frame: frame))
            commandsThisBatch += 1
            afterCommand(c, ticket: ticket)
        } catch let error as PeekError {
            // A refusal: for a note, necessarily before its first write.
            rollbackCommandOutputs(to: mark, savepoint: !isNote)
            answer(peer, tech, c, error: error, at: at)
        } catch {
            rollbackCommandOutputs(to: mark, savepoint: !isNote)
            if isNote { batchFailed = true }
            log(.error, "command_failed", "command \(c.op.rawValue) on \(c.ticket) failed", tenant: tech.tenant, ticket: c.ticket,
                connection: peer, error: "\(error)")
            answer(peer, tech, c, error: Self.writeFailed(error, otherwise: PeekError(.internal, "The change could not be saved; nothing changed. Try again.")), at: at)
        }
    }

    /// The answer a command with this key was first given, if within the
    /// window: a note's is its message's seq, every other one stored bytes.
    private func firstAnswer(_ key: CommandKey, notBefore: Int64) throws(StoreError) -> [UInt8]? {
        if let stored = try store.commandAnswer(key, notBefore: notBefore) { return stored }
        guard let seq = try store.noteSeq(command: key, notBefore: notBefore) else { return nil }
        return Wire.resultFrame(id: key.id, seq: seq)
    }

    /// Undo what a failed command queued: none of its deltas may go out, and
    /// its savepoint, if it had one, is rolled back.
    func rollbackCommandOutputs(to mark: Int, savepoint: Bool = true) {
        if savepoint { store.rollbackToSavepoint() }
        outputs.removeSubrange(mark...)
        pendingAgentMessages.removeAll()
    }

    /// Sends an error answer and remembers it for resends of the same id,
    /// unless it is `internal`: that one changed nothing and a repeat runs again.
    func answer(_ peer: Peer, _ tech: Technician, _ c: CommandRequest, error: PeekError, at: Int64) {
        guard error.code != .internal else {
            outputs.append(.send(peer, Wire.errorFrame(id: c.id, error)))
            return
        }
        // `stale` and `conflict` depend on what the client had seen; a retry
        // with a fresh id is how a client moves on, so they are remembered too.
        // A refusal is an answer the id keeps: one that could not be
        // remembered is not given (a repeat, judged afresh, could succeed),
        // and it goes out as a `.result`, so that if the batch does not
        // commit, taking the memory with it, the client hears `internal`.
        // The write is best effort only in that its failure must not doom
        // the batch (PostgreSQL): it is undone alone, and answered.
        let frame = Wire.errorFrame(id: c.id, error)
        let remembered: Void? = store.bestEffort { () throws(StoreError) in try store.saveCommandAnswer(CommandKey(c, from: tech), at: at, answer: frame) }
        guard remembered != nil else {
            log(.error, "write_failed", "the refusal of command \(c.op.rawValue) could not be remembered", tenant: tech.tenant, ticket: c.ticket)
            outputs.append(.send(peer, Wire.errorFrame(id: c.id, PeekError(.internal, "The answer could not be saved; nothing changed. Try again."))))
            return
        }
        outputs.append(.result(peer, id: c.id, frame: frame))
    }

    /// "No reply over an unseen message": customer or technician messages
    /// after `seen` by someone else make a reply or note stale.
    func checkStale(_ c: CommandRequest, tech: Technician, ticket: Ticket, force: Bool) throws(PeekError) {
        guard let seen = c.seen, !force, seen < ticket.seq else { return }
        // Only the most recent are loaded and answered: a `seen: 0` on a
        // long ticket must not cost (and be remembered as) its whole history.
        // Unread is not "nothing new": sending now could bury what the customer said.
        let (missed, total) = try mustRead("the messages after \(seen)", tenant: ticket.tenant, ticket: ticket.id) { () throws(StoreError) in
            try store.messages(ticket: ticket.id, after: seen, channels: Message.stalenessChannels, notBy: tech.id, limit: Self.maxMissed)
        }
        guard total > 0 else { return }
        throw PeekError(.stale, "\(total) new message\(total == 1 ? "" : "s") arrived since you started writing; read \(total == 1 ? "it" : "them"), then send again (or send anyway with force).",
                        missed: missed.map(Wire.messageBytes), missedTotal: total)
    }

    private func apply(_ c: CommandRequest, tech: Technician, ticket t: inout Ticket, at: Int64) throws -> Int {
        let me = PersonRef(id: tech.id, name: tech.name)
        switch c.args {
        case .reply:
            preconditionFailure("reply is dispatched by beginReply")
        case .note(let body, let force, let attachmentIDs):
            try checkStale(c, tech: tech, ticket: t, force: force)
            let attachments = try resolveAttachments(attachmentIDs, ticket: t)
            let m = Message(id: "M-\(t.number)-\(t.seq + 1)", ticket: t.id, seq: t.seq + 1, channel: .internalNote,
                            author: me, body: body, via: .web, at: at, attachments: attachments)
            return try appendMessage(&t, m, command: CommandKey(c, from: tech))
        case .setStatus(let status):
            guard status != t.status else { return t.seq }
            let old = t.status
            t.status = status
            try adjustPause(&t, from: old, to: status, at: at)
            t.version += 1
            var w = JSONWriter()
            w.beginObject(); w.field("status", status.rawValue); w.field("version", t.version); w.endObject()
            try appendDelta(&t, kind: .ticketUpdated, data: w.bytes, at: at)
            try appendSystemMessage(&t, "\(tech.name) changed the status from \(old.label) to \(status.label).", at: at)
            return t.seq
        case .setPriority(let priority):
            guard priority != t.priority else { return t.seq }
            let old = t.priority
            t.priority = priority
            if let policy = try store.slaPolicy(tenant: t.tenant, priority: priority) {
                try retarget(&t, from: try store.slaPolicy(tenant: t.tenant, priority: old), to: policy)
            }
            t.version += 1
            var w = JSONWriter()
            w.beginObject(); w.field("priority", priority.rawValue); w.field("version", t.version); w.endObject()
            try appendDelta(&t, kind: .ticketUpdated, data: w.bytes, at: at)
            try appendSystemMessage(&t, "\(tech.name) changed the priority from \(old.rawValue.capitalized) to \(priority.rawValue.capitalized).", at: at)
            return t.seq
        case .assign(let technicianID):
            guard let assignee = try store.technician(tenant: t.tenant, id: technicianID) else {
                throw PeekError(.invalid, "No technician \(technicianID) exists in your organisation; pick one from the list.")
            }
            return try assign(&t, to: assignee, by: tech, at: at)
        case .takeOwnership:
            return try assign(&t, to: tech, by: tech, at: at)
        case .timerStart:
            if let active = try store.activeTimer(ticket: t.id) {
                throw PeekError(.conflict, "A timer is already running on this ticket (started by \(active.technician.name)); stop it first.")
            }
            try store.startTimer(ticket: t.id, technician: me, at: at)
            return try appendDelta(&t, kind: .timeUpdated, data: timeData(t), at: at)
        case .timerStop(let note):
            guard let active = try store.stopTimer(ticket: t.id) else {
                throw PeekError(.invalid, "No timer is running on this ticket.")
            }
            let seconds = Int(max(0, at - active.startedAt) / 1000)
            try store.addTimeEntry(ticket: t.id, TimeEntry(technician: me, startedAt: active.startedAt, seconds: seconds, note: note))
            return try appendDelta(&t, kind: .timeUpdated, data: timeData(t), at: at)
        case .timeAdd(let seconds, let note):
            // Work done away from the timer, ending now.
            try store.addTimeEntry(ticket: t.id, TimeEntry(technician: me, startedAt: at - Int64(seconds) * 1000, seconds: seconds, note: note))
            return try appendDelta(&t, kind: .timeUpdated, data: timeData(t), at: at)
        case .startSession(let kind):
            return try startSession(&t, kind: kind, by: tech, at: at)
        case .endSession:
            return try endSession(&t, by: tech, at: at)
        case .sessionHandover(let session, let technician):
            return try handOver(&t, session: session, to: technician, by: tech, at: at)
        }
    }

    func timeData(_ t: Ticket) throws(StoreError) -> [UInt8] {
        var w = JSONWriter()
        try writeTime(t, store.timeState(ticket: t.id, recentEntries: Self.recentTimeEntries), into: &w)
        return w.bytes
    }

    private func assign(_ t: inout Ticket, to assignee: Technician, by tech: Technician, at: Int64) throws -> Int {
        guard t.assignee?.id != assignee.id else { return t.seq }
        t.assignee = PersonRef(id: assignee.id, name: assignee.name)
        t.version += 1
        var w = JSONWriter()
        w.beginObject(); w.key("assignee"); Wire.person(t.assignee, into: &w); w.field("version", t.version); w.endObject()
        try appendDelta(&t, kind: .ticketUpdated, data: w.bytes, at: at)
        let text = assignee.id == tech.id ? "\(tech.name) took ownership." : "\(tech.name) assigned the ticket to \(assignee.name)."
        try appendSystemMessage(&t, text, at: at)
        return t.seq
    }

    /// Waiting on the customer pauses the resolution clock; leaving that
    /// status resumes it with the paused span added to its due time.
    func adjustPause(_ t: inout Ticket, from old: TicketStatus, to new: TicketStatus, at: Int64) throws(StoreError) {
        if new.pausesResolutionClock && !old.pausesResolutionClock && t.sla.pausedSince == nil {
            t.sla.pausedSince = at
        } else if !new.pausesResolutionClock, let since = t.sla.pausedSince {
            if let due = t.sla.resolutionDue {
                if let hours = try store.businessHours(tenant: t.tenant) {
                    // What was left of working time when the pause began.
                    t.sla.resolutionDue = hours.adding(seconds: hours.seconds(from: since, to: due), to: at)
                } else {
                    t.sla.resolutionDue = due + (at - since)
                }
            }
            t.sla.pausedSince = nil
        }
    }

    private func resolveAttachments(_ ids: [String], ticket: Ticket) throws -> [AttachmentRef] {
        try ids.map { id in
            guard let a = try store.attachment(id), a.ticket == ticket.id else {
                throw AttachmentFiles.notUploaded(id, to: ticket.id)
            }
            return a.ref
        }
    }

    /// Follow-ups outside the transaction's data: SLA deadlines to re-arm,
    /// agent notifications of what this command did.
    func afterCommand(_ c: CommandRequest, ticket: Ticket) {
        if let next = SLAClock.nextDeadline(ticket) { timers.schedule(.slaDeadline(ticket: ticket.id), at: next.dueAt) }
        for (peer, bytes) in pendingAgentMessages { outputs.append(.agentSend(peer, bytes)) }
        pendingAgentMessages.removeAll()
    }
}

extension TicketStatus {
    /// How a system event names a status.
    var label: String {
        switch self {
        case .new: "New"
        case .open: "Open"
        case .inProgress: "In progress"
        case .waitingOnCustomer: "Waiting on customer"
        case .resolved: "Resolved"
        case .closed: "Closed"
        }
    }
}

extension CommandKey {
    /// Commands are told apart per technician of a tenant.
    init(_ command: CommandRequest, from tech: Technician) {
        self.init(tenant: tech.tenant, technician: tech.id, id: command.id)
    }

    /// Who sent the command.
    var sender: TenantScopedID { TenantScopedID(tenant: tenant, id: technician) }
}
