import PeekCore
@testable import PeekEngine
import PeekTestSupport
import XCTest

/// The engine's rules, run without sockets on the in-memory store with a
/// manual clock (`EngineHarness`): each test is milliseconds, and time
/// (SLA deadlines, consent expiry, the idempotency window) moves by
/// `advance`, not by waiting. The socket tests in PeekServerTests stay the
/// integration layer; these say what the engine decides.
final class EngineRuleTests: XCTestCase {
    // MARK: Idempotency

    func testRepeatedCommandID_getsTheFirstAnswer_andChangesNothing() throws {
        let h = EngineHarness()
        let ticket = h.seed()
        let a = h.connect("tech-1")

        let first = h.answer(h.send(a, EngineHarness.note("n1", ticket, "Once.")), to: a, id: "n1")
        XCTAssertEqual(first["type"]?.stringValue, "result")
        XCTAssertEqual(first["seq"]?.intValue, 1)
        let afterFirst = try h.durable(ticket)

        // The same id, even with another body: the first answer, nothing written.
        let again = h.send(a, EngineHarness.note("n1", ticket, "Twice?"))
        XCTAssertEqual(h.answer(again, to: a, id: "n1"), first)
        XCTAssertEqual(again.deltas, [], "a repeat publishes nothing")
        XCTAssertEqual(try h.durable(ticket), afterFirst)

        // Any other command: its stored answer, byte for byte.
        let status = h.answer(h.send(a, EngineHarness.command("c1", ticket, "set_status", ["status": "in_progress"])), to: a, id: "c1")
        XCTAssertEqual(status["type"]?.stringValue, "result")
        let afterStatus = try h.durable(ticket)
        XCTAssertEqual(h.answer(h.send(a, EngineHarness.command("c1", ticket, "set_status", ["status": "closed"])), to: a, id: "c1"), status)
        XCTAssertEqual(try h.durable(ticket), afterStatus)

        // A refusal is an answer too (not `internal`): repeated as it was.
        let refused = h.answer(h.send(a, EngineHarness.command("c2", ticket, "assign", ["technician": "nobody"])), to: a, id: "c2")
        XCTAssertEqual(refused["type"]?.stringValue, "error")
        XCTAssertEqual(h.answer(h.send(a, EngineHarness.command("c2", ticket, "assign", ["technician": "tech-2"])), to: a, id: "c2"), refused)

        // Another technician's command with the same id is another command.
        let b = h.connect("tech-2")
        let next = try XCTUnwrap(try h.memory.ticket(ticket)).seq + 1
        XCTAssertEqual(h.answer(h.send(b, EngineHarness.note("n1", ticket, "Mine.")), to: b, id: "n1")["seq"]?.intValue, next)
    }

    func testRepeatInsideOneBatch_isAnsweredOnce_asTheFirst() throws {
        let h = EngineHarness()
        let ticket = h.seed()
        let a = h.connect("tech-1")
        let outs = h.run(h.frame(a, EngineHarness.note("n1", ticket, "Once.")), h.frame(a, EngineHarness.note("n1", ticket, "Once.")))
        let answers = outs.filter { $0.peer == a }.flatMap(\.frames).filter { $0["id"]?.stringValue == "n1" }
        XCTAssertEqual(answers.count, 2)
        XCTAssertEqual(answers.first, answers.last)
        XCTAssertEqual(try h.memory.messages(ticket: ticket, after: 0).count, 1)
    }

    func testCommandID_pastTheTenMinuteWindow_isANewCommand() throws {
        let h = EngineHarness()
        let ticket = h.seed()
        let a = h.connect("tech-1")
        XCTAssertEqual(h.answer(h.send(a, EngineHarness.note("n1", ticket, "First.")), to: a, id: "n1")["seq"]?.intValue, 1)
        h.advance(seconds: 9 * 60)
        XCTAssertEqual(h.answer(h.send(a, EngineHarness.note("n1", ticket, "First.")), to: a, id: "n1")["seq"]?.intValue, 1, "inside the window")
        h.advance(seconds: 61)
        XCTAssertEqual(h.answer(h.send(a, EngineHarness.note("n1", ticket, "Later.")), to: a, id: "n1")["seq"]?.intValue, 2, "past it")
    }

    // MARK: Stale

    /// A customer message the technician has not seen makes their note
    /// `stale` (with what they missed); `force`, or having seen it, sends.
    func testNoteOverAnUnseenCustomerMessage_isStale_untilSeenOrForced() throws {
        let h = EngineHarness()
        let ticket = h.seed()
        let a = h.connect("tech-1")
        let seen = try XCTUnwrap(h.answer(h.send(a, EngineHarness.subscribe(ticket)), to: a, id: "s1")["seq"]?.intValue)
        try addCustomerMessage(h, ticket, "It is still on fire.")

        let stale = h.answer(h.send(a, EngineHarness.note("n1", ticket, "Fixed.", seen: seen)), to: a, id: "n1")
        XCTAssertEqual(stale["code"]?.stringValue, "stale")
        XCTAssertEqual(stale["missed_total"]?.intValue, 1)
        XCTAssertEqual(stale["missed"]?.arrayValue?.first?["body"]?.stringValue, "It is still on fire.")
        XCTAssertEqual(try h.memory.messages(ticket: ticket, after: 0).count, 1, "nothing sent over it")

        let now = try XCTUnwrap(try h.memory.ticket(ticket)).seq
        XCTAssertEqual(h.answer(h.send(a, EngineHarness.note("n2", ticket, "Fixed, really.", seen: now)), to: a, id: "n2")["type"]?.stringValue, "result")
        XCTAssertEqual(h.answer(h.send(a, EngineHarness.note("n3", ticket, "Anyway.", seen: seen, force: true)), to: a, id: "n3")["type"]?.stringValue, "result")
        // The technician's own notes never make them stale.
        XCTAssertEqual(h.answer(h.send(a, EngineHarness.note("n4", ticket, "Me again.", seen: now)), to: a, id: "n4")["type"]?.stringValue, "result")
    }

    /// Writes a customer's message as inbound mail does: the next seq, in
    /// the store, outside any command.
    private func addCustomerMessage(_ h: EngineHarness, _ ticket: String, _ body: String) throws {
        var t = try XCTUnwrap(try h.memory.ticket(ticket))
        t.seq += 1
        try h.memory.insertMessage(Message(id: "M-\(t.number)-\(t.seq)", ticket: ticket, seq: t.seq, channel: .customer,
                                           author: PersonRef(id: "casey@example.com", name: "Casey"), body: body, via: .email,
                                           at: h.clock.wallMillis()), mailMessageID: nil, delta: [0x7B, 0x7D])
        try h.memory.updateTicket(t)
    }

    // MARK: SLA

    /// The response target falls due: one `sla.breached` delta and a system
    /// message, once however often the timer or the tick comes back; the
    /// viewers get `sla.tick` every `slaTickSeconds` meanwhile.
    func testSLA_ticksWhileWatched_andBreachesOnceAtTheDueTime() throws {
        let h = EngineHarness(configure: { $0.slaTickSeconds = 15 })
        let ticket = h.seed(sla: SLATarget(response: 60, resolution: 3600))
        let a = h.connect("tech-1")
        h.send(a, EngineHarness.subscribe(ticket))

        let tick = h.advance(seconds: 15)
        XCTAssertEqual(tick.deltas(kind: "sla.tick").count, 1, "\(tick)")
        XCTAssertNil(tick.deltas(kind: "sla.tick").first?["seq"], "a tick is ephemeral")
        XCTAssertEqual(tick.deltas(kind: "sla.breached"), [])

        h.advance(seconds: 44)   // 59 s: not yet
        XCTAssertFalse(try XCTUnwrap(try h.memory.ticket(ticket)).sla.responseBreached)
        let due = h.advance(seconds: 1)   // 60 s
        let breached = due.deltas(kind: "sla.breached")
        XCTAssertEqual(breached.count, 1, "\(due)")
        XCTAssertEqual(breached.first?["data"]?["target"]?.stringValue, "response")
        XCTAssertNotNil(breached.first?["seq"]?.intValue, "a breach is durable")
        let t = try XCTUnwrap(try h.memory.ticket(ticket))
        XCTAssertTrue(t.sla.responseBreached)
        XCTAssertFalse(t.sla.resolutionBreached)
        XCTAssertEqual(try h.memory.messages(ticket: ticket, after: 0).last?.channel, .system)

        var later: [Out] = []
        for _ in 0..<8 { later += h.advance(seconds: 15) }
        XCTAssertEqual(later.deltas(kind: "sla.breached"), [], "recorded once")
        XCTAssertEqual(later.deltas(kind: "sla.tick").count, 8)
    }

    /// Deadlines kept in the store are armed again on start: a breach that
    /// fell due while the engine was down fires on its first pass.
    func testSLADeadline_recoveredFromTheStore_afterARestart() throws {
        let first = EngineHarness()
        let ticket = first.seed(sla: SLATarget(response: 60, resolution: 3600))
        let h = EngineHarness(restarting: first)
        let outs = h.advance(seconds: 61)
        XCTAssertTrue(try XCTUnwrap(try h.memory.ticket(ticket)).sla.responseBreached, "\(outs)")
    }

    // MARK: Consent

    /// A session waits for the device's consent; unanswered past
    /// `consentTimeoutSeconds`, it expires, once, with a delta and a system
    /// message; an answer after that is refused.
    func testConsentRequest_unanswered_expiresAtItsDeadline() throws {
        let h = EngineHarness(configure: { $0.consentTimeoutSeconds = 120 })
        let ticket = h.seed(asset: "pc-1")
        let agent = h.connectAgent("agent-pc-1")
        let a = h.connect("tech-1")
        h.send(a, EngineHarness.subscribe(ticket))

        let start = h.send(a, EngineHarness.command("c1", ticket, "start_session", ["kind": "shell"]))
        XCTAssertEqual(h.answer(start, to: a, id: "c1")["type"]?.stringValue, "result", "\(start)")
        let request = try XCTUnwrap(start.first { $0.kind == .agent && $0.peer == agent }?.frames.first)
        XCTAssertEqual(request["type"]?.stringValue, "consent_request")
        let session = try XCTUnwrap(request["session"]?.stringValue)
        XCTAssertEqual(start.deltas(kind: "session.status").first?["data"]?["status"]?.stringValue, "awaiting_consent")

        XCTAssertEqual(h.advance(seconds: 119).deltas(kind: "session.status"), [])
        let expired = h.advance(seconds: 1).deltas(kind: "session.status")
        let statuses: [String?] = expired.map { $0["data"]?["status"]?.stringValue }
        XCTAssertEqual(statuses, ["expired"])
        XCTAssertEqual(try h.memory.session(session)?.status, .expired)

        let late = h.run(.agentFrame(agent, .consent(session: session, accept: true)))
        XCTAssertEqual(late.first { $0.peer == agent }?.frames.first?["code"]?.stringValue, "conflict", "\(late)")
        XCTAssertEqual(try h.memory.session(session)?.status, .expired)
        XCTAssertEqual(h.advance(seconds: 600).deltas(kind: "session.status"), [], "expired once")
    }

    func testConsentAnswered_beforeItsDeadline_activatesAndNeverExpires() throws {
        let h = EngineHarness(configure: { $0.consentTimeoutSeconds = 120 })
        let ticket = h.seed(asset: "pc-1")
        let agent = h.connectAgent("agent-pc-1")
        let a = h.connect("tech-1")
        let start = h.send(a, EngineHarness.command("c1", ticket, "start_session", ["kind": "desktop"]))
        let session = try XCTUnwrap(start.first { $0.kind == .agent }?.frames.first?["session"]?.stringValue, "\(start)")
        h.advance(seconds: 60)
        h.run(.agentFrame(agent, .consent(session: session, accept: true)))
        XCTAssertEqual(try h.memory.session(session)?.status, .active)
        h.advance(seconds: 120)
        XCTAssertEqual(try h.memory.session(session)?.status, .active, "the expiry timer found it answered")
    }

    // MARK: Presence

    /// One entry per technician however many tabs; it goes when their last
    /// tab goes; a change to one technician is published to every viewer.
    func testPresence_perTechnician_acrossTabsAndDisconnects() throws {
        let h = EngineHarness()
        let ticket = h.seed()
        let a1 = h.connect("tech-1"), a2 = h.connect("tech-1"), b = h.connect("tech-2")
        func viewers(_ outs: [Out]) -> [String]? {
            outs.deltas(kind: "presence.updated").last?["data"]?["viewers"]?.arrayValue?.compactMap { $0["id"]?.stringValue }
        }
        let firstSnapshot = h.answer(h.send(a1, EngineHarness.subscribe(ticket)), to: a1, id: "s1")
        XCTAssertEqual(firstSnapshot["state"]?["viewers"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, ["tech-1"])
        XCTAssertNil(viewers(h.send(a2, EngineHarness.subscribe(ticket))), "a second tab of the same technician changes nobody's presence")
        XCTAssertEqual(viewers(h.send(b, EngineHarness.subscribe(ticket))), ["tech-1", "tech-2"])

        XCTAssertNil(viewers(h.run(.disconnected(a1))), "tech-1 still has a tab")
        XCTAssertEqual(viewers(h.run(.disconnected(a2))), ["tech-2"])
        XCTAssertEqual(viewers(h.send(b, ["type": "unsubscribe", "ticket": .string(ticket)])), nil, "nobody left to tell")
        XCTAssertTrue(h.engine.viewers[ticket]?.isEmpty ?? true)
    }

    func testComposing_isPresence_andClearsWhenTheTabGoes() throws {
        let h = EngineHarness()
        let ticket = h.seed()
        let a = h.connect("tech-1"), b = h.connect("tech-2")
        h.send(a, EngineHarness.subscribe(ticket))
        h.send(b, EngineHarness.subscribe(ticket))
        let composing = h.send(a, ["type": "composing", "ticket": .string(ticket), "mode": "note"])
        XCTAssertEqual(composing.deltas(kind: "presence.updated").last?["data"]?["viewers"]?.arrayValue?.first?["composing"]?.stringValue, "note")
        let gone = h.run(.disconnected(a))
        XCTAssertEqual(gone.deltas(kind: "presence.updated").last?["data"]?["viewers"]?.arrayValue?.count, 1)
    }

    // MARK: Ordering

    /// In one batch: each command's deltas before its result, seqs in
    /// order with no gaps, and every command of the batch answered.
    func testOneBatch_deltasPrecedeTheirResult_inSeqOrder() throws {
        let h = EngineHarness()
        let ticket = h.seed()
        let a = h.connect("tech-1"), b = h.connect("tech-2")
        h.send(a, EngineHarness.subscribe(ticket))
        var jobs: [EngineJob] = []
        for i in 1...5 {
            jobs.append(h.frame(a, EngineHarness.note("a\(i)", ticket, "From A \(i)")))
            jobs.append(h.frame(b, EngineHarness.note("b\(i)", ticket, "From B \(i)")))
        }
        jobs.append(h.frame(a, EngineHarness.command("s", ticket, "set_status", ["status": "in_progress"])))
        for job in jobs { h.engine.submit(job) }
        h.engine.runPass()
        let outs = h.bus.take()

        let seqs = outs.deltas.compactMap { $0["seq"]?.intValue }
        XCTAssertEqual(seqs, Array(1...seqs.count), "durable deltas in seq order without gaps")
        var published = Set<Int>()
        var answered: [String] = []
        for o in outs {
            if let seq = o.delta?["seq"]?.intValue { published.insert(seq) }
            if o.kind == .result, let frame = o.frames.first, let seq = frame["seq"]?.intValue {
                XCTAssertTrue(published.contains(seq), "result \(frame) came before its delta")
                answered.append(frame["id"]?.stringValue ?? "")
            }
        }
        XCTAssertEqual(answered.count, 11)
        XCTAssertEqual(answered.filter { $0.hasPrefix("a") }, ["a1", "a2", "a3", "a4", "a5"], "one technician's answers in the order sent")
    }

    /// A subscribe in the middle of a batch: its snapshot is at the seq the
    /// batch had reached, and it is sent before the deltas after it.
    func testSubscribeInABatch_snapshotThenOnlyLaterDeltas() throws {
        let h = EngineHarness()
        let ticket = h.seed()
        let a = h.connect("tech-1"), b = h.connect("tech-2")
        let outs = h.run(h.frame(a, EngineHarness.note("n1", ticket, "one")), h.frame(b, EngineHarness.subscribe(ticket)),
                         h.frame(a, EngineHarness.note("n2", ticket, "two")))
        let snapshotIndex = try XCTUnwrap(outs.firstIndex { $0.kind == .subscribe && $0.peer == b })
        XCTAssertEqual(outs[snapshotIndex].frames.first?["seq"]?.intValue, 1)
        let later = outs[(snapshotIndex + 1)...].compactMap { $0.delta?["seq"]?.intValue }
        XCTAssertEqual(later, [2])
    }
}

extension EngineHarness {
    /// A second engine on the first one's committed data, as after a restart.
    convenience init(restarting previous: EngineHarness) {
        self.init(database: previous.memory.database, clock: previous.clock, configure: { _ in })
    }
}
