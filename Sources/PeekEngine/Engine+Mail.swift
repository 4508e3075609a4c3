import Dispatch
import PeekCore
import PeekCrypto
import PeekMail

/// What the engine hands a mail worker, and what it needs back to finish
/// the reply once the mail server has answered.
package struct MailJob: Sendable {
    /// The reply command (its idempotency key, and the key of the replies
    /// in flight that wait for this one).
    package var command: CommandKey
    package var technician: Technician
    package var ticketID: String
    package var body: String
    package var attachments: [AttachmentRef]
    package var mailMessageID: String
    package var recipient: String
    package var account: EmailAccount
    package var draft: MailDraft
    /// Failed attempts to record the outcome (`finishReply`).
    package var recordFailures = 0

    /// The reply's row in the send log while its SMTP conversation runs
    /// (outcome `sending`), unique by its Message-ID.
    package var sendingNote: String { "Being sent as Message-ID <\(mailMessageID)>." }
}

/// A reply's email in parts, as the engine hands it over. The worker reads
/// the attachment files and builds the MIME, base64 of up to 20 files of
/// 10 MiB included, so the thread that owns every durable change never
/// spends its time encoding, and a queued reply holds no encoded copy.
/// Everything random or clock-derived (Message-ID, boundary, date) is
/// already chosen, so the bytes are the same wherever they are built.
package struct MailDraft: Sendable {
    package struct File: Sendable {
        var id: String
        var sha256: String
        var filename: String
        var contentType: String
    }

    /// The whole message except the attachments' bytes.
    package var builder: MIMEMessageBuilder
    package var files: [File]
    package var attachmentsDirectory: String
    package var ticketID: String

    /// The message, or why it cannot be one (answered `invalid`, never sent).
    package func build() -> Result<[UInt8], PeekError> {
        var builder = self.builder
        for file in files {
            guard let bytes = AttachmentFiles.read(sha256: file.sha256, in: attachmentsDirectory) else {
                return .failure(AttachmentFiles.notUploaded(file.id, to: ticketID))
            }
            builder.attachments.append(MailAttachment(filename: file.filename, contentType: file.contentType, bytes: bytes))
        }
        do {
            return .success(try builder.build())
        } catch {
            return .failure(PeekError(.invalid, "The reply cannot be written as an email: \(error.description)"))
        }
    }
}

package enum MailOutcome: Sendable {
    case sent(reply: String)
    case failed(message: String, reply: String)
    /// The message could not be built; no mail server was contacted.
    case refused(PeekError)
}

/// The seam to outbound mail: the real one speaks SMTP on a worker thread.
package protocol Mailer: Sendable {
    func send(_ job: MailJob, completion: @escaping @Sendable (MailOutcome) -> Void)
}

/// Replies are email. The engine validates the reply and hands its parts
/// over; a mail worker builds the message and talks to the tenant's server
/// (never on a loop, never holding the transaction), and only an accepted
/// message is stored and fanned out.
extension Engine {
    package func beginReply(_ peer: Peer, _ tech: Technician, _ c: CommandRequest, key: CommandKey, ticket: Ticket, at: Int64) {
        guard case .reply(let body, let force, let attachmentIDs) = c.args else { return }
        do {
            try checkStale(c, tech: tech, ticket: ticket, force: force)
        } catch {
            answer(peer, tech, c, error: error, at: at)
            return
        }
        guard let to = ticket.contact.email, !to.isEmpty else {
            answer(peer, tech, c, error: PeekError(.noContactEmail, "The contact \(ticket.contact.name) has no email address, so a reply cannot be sent; add one or post an internal note."), at: at)
            return
        }
        // Read up front: a failed read is `internal`, never "no account"
        // or "not uploaded", and never an email outside its thread.
        let reads: (account: EmailAccount?, attachments: [(ref: AttachmentRef, ticket: String, sha256: String)?], thread: [String])
        do {
            reads = try mustRead("the reply's account, attachments and thread", tenant: ticket.tenant, ticket: ticket.id) { () throws(StoreError) in
                (try store.emailAccount(tenant: tech.tenant), try attachmentIDs.map { id throws(StoreError) in try store.attachment(id) },
                 try store.mailThreadIDs(ticket: ticket.id))
            }
        } catch {
            answer(peer, tech, c, error: error, at: at)
            return
        }
        guard let account = reads.account else {
            answer(peer, tech, c, error: PeekError(.noEmailAccount, "No email account is configured"), at: at)
            return
        }
        var attachments: [AttachmentRef] = []
        var files: [MailDraft.File] = []
        for (id, stored) in zip(attachmentIDs, reads.attachments) {
            guard let a = stored, a.ticket == ticket.id else {
                answer(peer, tech, c, error: AttachmentFiles.notUploaded(id, to: ticket.id), at: at)
                return
            }
            attachments.append(a.ref)
            files.append(MailDraft.File(id: id, sha256: a.sha256, filename: a.ref.filename, contentType: a.ref.contentType))
        }
        let attachedBytes = attachments.reduce(0) { $0 + $1.size }
        guard attachedBytes <= config.maxReplyAttachmentBytes else {
            let mib = { (bytes: Int) -> String in
                let tenths = (bytes * 10 + 524_288) / 1_048_576
                return "\(tenths / 10).\(tenths % 10)"
            }
            answer(peer, tech, c, error: PeekError(.tooLarge, "The attachments total \(mib(attachedBytes)) MiB and one email may carry at most \(mib(config.maxReplyAttachmentBytes)) MiB; send some of them in a second reply."), at: at)
            return
        }
        // Replies in flight are capped per technician, per tenant (its fair
        // share of the process's cap, `FairShare`) and for the process, so
        // neither one sender, nor one organisation's flood, nor all of them
        // together can grow the mail queue without bound or hold every
        // slot. Checked last, so only a reply that would really be sent is
        // refused, and not remembered (like every rate_limited): the same id
        // may be sent again once a slot is free.
        let sender = key.sender
        let mine = repliesPerTechnician[sender, default: 0]
        guard mine < config.maxRepliesInFlightPerTechnician else {
            sendError(peer, id: c.id, PeekError(.rateLimited, "You already have \(mine) replies being sent, the most at once; wait for one to finish, then send this one again."))
            return
        }
        guard inFlightReplies.count < config.maxRepliesInFlight else {
            sendError(peer, id: c.id, PeekError(.rateLimited, "The server is already sending \(inFlightReplies.count) replies, the most it queues; wait a minute, then send this one again."))
            return
        }
        let ours = repliesPerTenant[tech.tenant, default: 0]
        let share = FairShare.limit(capacity: config.maxRepliesInFlight, tenants: repliesPerTenant.count + (ours == 0 ? 1 : 0))
        guard ours < share else {
            sendError(peer, id: c.id, PeekError(.rateLimited, "Your organisation already has \(ours) replies being sent, its share while others send too; wait a minute, then send this one again."))
            return
        }
        let thread = reads.thread
        let domain = account.from.split(separator: "@").last.map(String.init) ?? "peek.local"
        let messageID = "\(ticket.id).\(Crypto.hex(Crypto.randomBytes(8)))@\(domain)"
        let builder = MIMEMessageBuilder(
            from: MailAddress(name: tech.name, address: account.from),
            to: MailAddress(name: ticket.contact.name, address: to),
            subject: MailThreading.taggedSubject(ticket.subject, ticketNumber: ticket.number),
            bodyText: body, messageID: messageID, inReplyTo: thread.last, references: MailThreading.replyReferences(thread),
            date: at / 1000, boundary: "peek-" + Crypto.hex(Crypto.randomBytes(12)))
        let draft = MailDraft(builder: builder, files: files, attachmentsDirectory: config.attachmentsDirectory, ticketID: ticket.id)
        let job = MailJob(command: key, technician: tech, ticketID: ticket.id, body: body,
                          attachments: attachments, mailMessageID: messageID, recipient: to, account: account, draft: draft)
        // Durable before the mail server hears of it: the send log's
        // `sending` row and, as the command's answer, "outcome unknown". If
        // the process dies during the conversation (or its outcome cannot be
        // recorded), a restart finds the row and a resend of the id gets
        // that answer: the technician decides, nobody is emailed twice
        // silently. The real outcome replaces both.
        do {
            try store.recordSend(ticket: ticket.id, at: at, technician: tech.id, recipient: to, outcome: "sending", reply: job.sendingNote)
            try store.saveCommandAnswer(key, at: at, answer: Self.unknownOutcome(id: c.id))
        } catch {
            log(.error, "reply_not_started", "reply \(c.id) could not be recorded before sending; nothing was sent",
                tenant: tech.tenant, ticket: ticket.id, error: "\(error)")
            sendError(peer, id: c.id, PeekError(.internal, "The reply could not be saved before sending, so it was not sent. Try again."))
            batchFailed = true
            return
        }
        inFlightReplies[key] = [(peer, c.id)]
        repliesPerTechnician[sender] = mine + 1
        repliesPerTenant[tech.tenant] = ours + 1
        repliesInFlight.add(1, ordering: .relaxed)
        let mailer = self.mailer
        outputs.append(.afterDurable({ [weak self] in
            mailer.send(job) { [weak self] outcome in self?.submit(.mailFinished(job, outcome)) }
        }, ifLost: { [weak self] in
            self?.submit(.run { engine in engine.abandonReply(job) })
        }))
    }

    /// The answer a reply's id keeps while its outcome is unknown (§8.2).
    static func unknownOutcome(id: String) -> [UInt8] {
        Wire.errorFrame(id: id, PeekError(.dispatchFailed, "Whether this reply reached the mail server is unknown: the server stopped, or could not record the outcome, while it was being sent. Check the ticket's send log (outcome \"unknown\") or ask the customer before sending it again with a new id."))
    }

    /// The batch that was to record the reply before sending did not
    /// commit: nothing was sent, and its requests are told so.
    func abandonReply(_ job: MailJob) {
        for w in inFlightReplies[job.command] ?? [] {
            sendError(w.peer, id: w.id, PeekError(.internal, "The reply could not be saved before sending, so it was not sent. Try again."))
        }
        releaseReplySlot(job)
    }

    /// The reply is no longer in flight: its slots are free again.
    private func releaseReplySlot(_ job: MailJob) {
        inFlightReplies.removeValue(forKey: job.command)
        let left = repliesPerTechnician[job.command.sender, default: 1] - 1
        repliesPerTechnician[job.command.sender] = left > 0 ? left : nil
        let tenantLeft = repliesPerTenant[job.command.tenant, default: 1] - 1
        repliesPerTenant[job.command.tenant] = tenantLeft > 0 ? tenantLeft : nil
        repliesInFlight.subtract(1, ordering: .relaxed)
        signalStop()
    }

    /// The mail server has answered. The outcome is recorded in a
    /// transaction of its own, never in a batch with other jobs: an email
    /// that went out must not be rolled back with a note that failed beside
    /// it, nor answered "nothing changed". Its requests are answered only
    /// once that record is committed. A record that cannot be committed (the
    /// database locked or full) is tried again a second later, up to
    /// `replyRecordAttempts` in all, and not again once the server is
    /// stopping; until then the reply stays in flight, so a resend of its
    /// id waits for that answer and the customer is never emailed twice.
    /// Past that the requests are told what is known, and the reply's slot
    /// is freed: its durable "about to send" row and "outcome unknown"
    /// answer (`beginReply`) stand, so a resend still does not email again,
    /// and the next start marks the row `unknown`.
    package func finishReply(_ job: MailJob, _ outcome: MailOutcome) {
        guard runBatch(ifUncommitted: .discard, { recordReply(job, outcome) }) else {
            var counted = job
            counted.recordFailures += 1
            let again = counted
            if again.recordFailures < config.replyRecordAttempts && !stopping.load(ordering: .relaxed) {
                log(.error, "reply_record_retry", "recording the outcome of reply \(job.command.id) on \(job.ticketID) failed; trying again in a second",
                    tenant: job.technician.tenant, ticket: job.ticketID)
                DispatchQueue.global().asyncAfter(deadline: .now() + 1) { [weak self] in self?.submit(.mailFinished(again, outcome)) }
                return
            }
            log(.error, "reply_record_abandoned", "recording the outcome of reply \(job.command.id) on \(job.ticketID) failed \(again.recordFailures) times; its send log row stays 'sending' and its outcome unknown",
                tenant: job.technician.tenant, ticket: job.ticketID)
            let error: PeekError
            switch outcome {
            case .sent: error = PeekError(.internal, "The email was sent but could not be recorded; check the send log before sending again.")
            case .failed(let message, _): error = PeekError(.dispatchFailed, message)
            case .refused(let refusal): error = refusal
            }
            // Outside any batch: a transaction of its own that writes
            // nothing, so the answers leave in order with everything else.
            runBatch {
                for w in inFlightReplies[job.command] ?? [] { outputs.append(.send(w.peer, Wire.errorFrame(id: w.id, error))) }
            }
            releaseReplySlot(job)
            return
        }
        releaseReplySlot(job)
    }

    /// At start: replies whose SMTP conversation the previous process never
    /// saw the end of (it was killed, or gave up recording the outcome).
    /// Whether the customer got them is unknown, so nothing is resent: the
    /// send log says `unknown`, and the ticket gets a system event telling
    /// every viewer to check before sending again (a resend of the same id
    /// gets the "outcome unknown" answer kept since `beginReply`). A store
    /// failure leaves them for the next start, logged.
    func settleRepliesCutByRestart() {
        let at = now
        runBatch(ifUncommitted: .discard) {
            do {
                for s in try store.unsettledSends() {
                    try store.finishSend(ticket: s.ticket, sending: s.note, at: at, outcome: "unknown",
                                         reply: "The server stopped before the mail server's answer was recorded, so whether it accepted the message is unknown. \(s.note)")
                    guard var t = try store.ticket(s.ticket) else { continue }
                    let name = try store.technician(tenant: t.tenant, id: s.technician)?.name ?? s.technician
                    try appendSystemMessage(&t, "A reply by \(name) to \(s.recipient ?? "the contact") may not have been emailed: the server stopped while sending it. Check the send log, or with the customer, before sending it again.", at: at)
                    try store.updateTicket(t)
                    log(.warn, "reply_outcome_unknown", "a reply was being sent when the server stopped; marked unknown", tenant: t.tenant, ticket: t.id)
                }
            } catch {
                log(.error, "reply_settle_failed", "the replies a restart cut off could not be marked unknown; trying at the next start", error: "\(error)")
                batchFailed = true
            }
        }
    }

    /// The send log entry, the stored reply (if sent) and the answer, for
    /// everyone waiting on the reply; a store failure fails the batch.
    private func recordReply(_ job: MailJob, _ outcome: MailOutcome) {
        let at = now
        do {
            // Every attempt is logged, success or not; a message that could
            // not be built reached no mail server and is not an attempt.
            switch outcome {
            case .sent(let reply):
                try store.finishSend(ticket: job.ticketID, sending: job.sendingNote, at: at, outcome: "sent", reply: reply)
                metrics.add(metrics.mailSent)
                log(.info, "reply_sent", "reply \(job.command.id) was accepted by the mail server", tenant: job.technician.tenant, ticket: job.ticketID)
            case .failed(let message, let reply):
                try store.finishSend(ticket: job.ticketID, sending: job.sendingNote, at: at, outcome: "failed", reply: reply)
                metrics.add(metrics.mailFailed)
                log(.warn, "reply_failed", "reply \(job.command.id) was not sent", tenant: job.technician.tenant, ticket: job.ticketID, error: message)
            case .refused:
                try store.finishSend(ticket: job.ticketID, sending: job.sendingNote, at: at, outcome: nil, reply: "")
            }
            let answer: [UInt8]
            switch outcome {
            case .refused(let error):
                answer = Wire.errorFrame(id: job.command.id, error)
            case .failed(let message, _):
                answer = Wire.errorFrame(id: job.command.id, PeekError(.dispatchFailed, message))
            case .sent:
                answer = try storeSentReply(job, at: at)
            }
            try store.saveCommandAnswer(job.command, at: at, answer: answer)
            for w in inFlightReplies[job.command] ?? [] { outputs.append(.result(w.peer, id: w.id, frame: answer)) }
        } catch {
            log(.error, "reply_record_failed", "recording reply \(job.command.id) on \(job.ticketID) failed",
                tenant: job.technician.tenant, ticket: job.ticketID, error: "\(error)")
            batchFailed = true
        }
    }

    /// Stores a reply the mail server accepted; answers its `result`, or the
    /// honest error when its ticket is gone.
    private func storeSentReply(_ job: MailJob, at: Int64) throws(StoreError) -> [UInt8] {
        guard var t = try store.ticket(job.ticketID) else {
            log(.error, "reply_ticket_gone", "reply \(job.command.id) was sent but its ticket \(job.ticketID) is gone",
                tenant: job.technician.tenant, ticket: job.ticketID)
            return Wire.errorFrame(id: job.command.id, PeekError(.internal, "The email was sent but could not be recorded; check the send log before sending again."))
        }
        let m = Message(id: "M-\(t.number)-\(t.seq + 1)", ticket: t.id, seq: t.seq + 1, channel: .technician,
                        author: PersonRef(id: job.technician.id, name: job.technician.name), body: job.body,
                        via: .email, at: at, attachments: job.attachments)
        try appendMessage(&t, m, mailMessageID: job.mailMessageID)
        if t.firstResponseAt == nil {
            // The SLA first-response signal: stamped once, by the first reply that really went out.
            t.firstResponseAt = at
            t.version += 1
            var w = JSONWriter()
            w.beginObject(); w.key("first_response_at"); Wire.time(at, into: &w); w.field("version", t.version); w.endObject()
            try appendDelta(&t, kind: .ticketUpdated, data: w.bytes, at: at)
        }
        try store.updateTicket(t)
        if let ref = t.asset, let asset = try store.asset(tenant: t.tenant, id: ref.id), let agentPeer = agents[asset.agent] {
            var w = JSONWriter()
            w.beginObject(); w.field("type", "reply"); w.field("ticket", t.id); w.field("body", job.body)
            w.key("author"); Wire.person(m.author, into: &w); w.endObject()
            outputs.append(.agentSend(agentPeer, w.bytes))
        }
        return Wire.resultFrame(id: job.command.id, seq: t.seq)
    }
}
