import Foundation
import XCTest
import PeekCore
@testable import PeekStore

/// What every `TicketStore` must do, whatever its database: savepoints (one
/// command's undo), whole-batch rollback, the delta log, the idempotency
/// window, re-opening, and every table read back as written. Each store's
/// test class inherits these tests and says how to open its store; tests
/// that only make sense for one database stay in that store's class.
class TicketStoreContractTests: XCTestCase {
    /// A store on this test's database: empty at the test's first call,
    /// the same database on later calls (a re-open).
    func openStore() throws -> any TicketStore {
        throw XCTSkip("the store contract runs in each store's test class")
    }

    /// Rows of the `deltas` table for `ticket` (message deltas live in their message's row).
    func deltaRowCount(ticket: String) throws -> Int {
        throw XCTSkip("the store contract runs in each store's test class")
    }

    func ticket(_ number: Int, tenant: String = "acme", seq: Int = 0) -> Ticket {
        Ticket(id: Ticket.id(forNumber: number), tenant: tenant, number: number, subject: "Subject \(number)", status: .new,
               priority: .normal, assignee: nil, contact: Contact(name: "Casey", email: "casey@example.com"), client: "Client Co",
               asset: nil, firstResponseAt: nil, createdAt: 1_000, version: 1, seq: seq, sla: SLAClocks())
    }

    func message(_ ticket: Ticket, seq: Int, body: String) -> Message {
        Message(id: "M-\(ticket.number)-\(seq)", ticket: ticket.id, seq: seq, channel: .internalNote,
                author: PersonRef(id: "tech-1", name: "Tech 1"), body: body, via: .web, at: 2_000 + Int64(seq))
    }

    /// A store with tenant `acme`, technician `tech-1` and ticket T-1001, committed.
    func seeded() throws -> any TicketStore {
        let store = try openStore()
        try store.begin()
        try store.createTenant(Tenant(id: "acme", name: "Acme"), at: 1_000)
        try store.createTechnician(Technician(tenant: "acme", id: "tech-1", name: "Tech 1", email: "t1@acme.example"))
        try store.insertTicket(ticket(1001))
        try store.commit()
        return store
    }

    // MARK: Savepoints and rollback

    func testSavepoint_rolledBack_leavesNothingAndKeepsTheBatch() throws {
        let store = try seeded()
        var t = try XCTUnwrap(try store.ticket("T-1001"))
        try store.begin()

        // Command 1: kept.
        try store.savepoint()
        t.seq = 1
        try store.insertMessage(message(t, seq: 1, body: "kept"), mailMessageID: nil, delta: nil)
        try store.appendDelta(ticket: t.id, seq: 1, at: 2_001, kind: .messageCreated, data: Array("{\"kept\":1}".utf8))
        try store.updateTicket(t)
        try store.saveCommandAnswer(CommandKey(tenant: "acme", technician: "tech-1", id: "c1"), at: 2_001, answer: Array("r1".utf8))
        try store.releaseSavepoint()

        // Command 2: every kind of write, then undone.
        try store.savepoint()
        var t2 = t
        t2.seq = 2; t2.status = .closed; t2.version = 2
        try store.insertMessage(message(t2, seq: 2, body: "undone"), mailMessageID: "<undone@x>", delta: nil)
        try store.appendDelta(ticket: t.id, seq: 2, at: 2_002, kind: .ticketUpdated, data: Array("{}".utf8))
        try store.updateTicket(t2)
        try store.saveCommandAnswer(CommandKey(tenant: "acme", technician: "tech-1", id: "c2"), at: 2_002, answer: Array("r2".utf8))
        try store.startTimer(ticket: t.id, technician: PersonRef(id: "tech-1", name: "Tech 1"), at: 2_002)
        store.rollbackToSavepoint()

        // The same savepoint name is usable again after a rollback.
        try store.savepoint()
        try store.saveCommandAnswer(CommandKey(tenant: "acme", technician: "tech-1", id: "c3"), at: 2_003, answer: Array("r3".utf8))
        try store.releaseSavepoint()
        try store.commit()

        let after = try XCTUnwrap(try store.ticket("T-1001"))
        XCTAssertEqual(after.seq, 1)
        XCTAssertEqual(after.status, .new)
        XCTAssertEqual(after.version, 1)
        XCTAssertEqual(try store.messages(ticket: t.id, after: 0).map(\.body), ["kept"])
        XCTAssertEqual(try store.deltas(ticket: t.id, after: 0, limit: 10).map(\.seq), [1])
        XCTAssertNil(try store.message(mailMessageID: "<undone@x>")?.ticket)
        XCTAssertNil(try store.activeTimer(ticket: t.id))
        XCTAssertEqual(try store.commandAnswer(CommandKey(tenant: "acme", technician: "tech-1", id: "c1"), notBefore: 0), Array("r1".utf8))
        XCTAssertNil(try store.commandAnswer(CommandKey(tenant: "acme", technician: "tech-1", id: "c2"), notBefore: 0))
        XCTAssertEqual(try store.commandAnswer(CommandKey(tenant: "acme", technician: "tech-1", id: "c3"), notBefore: 0), Array("r3".utf8))
    }

    /// A statement whose failure the engine tolerates (a telemetry save, a
    /// read of the log with a fallback) runs in `bestEffort`: its failure
    /// leaves the batch whole. With `try?` alone, PostgreSQL dooms the
    /// transaction at the failure and the COMMIT saves none of the batch.
    func testBestEffort_failingStatement_answersNilAndTheBatchCommits() throws {
        let store = try seeded()
        let t = try XCTUnwrap(try store.ticket("T-1001"))
        try store.begin()
        try store.insertMessage(message(t, seq: 1, body: "before"), mailMessageID: nil, delta: nil)
        let failed: Void? = store.bestEffort { () throws(StoreError) in try store.createTenant(Tenant(id: "acme", name: "again"), at: 1) }
        XCTAssertNil(failed)
        XCTAssertEqual(store.bestEffort { () throws(StoreError) in try store.tenant("acme")?.name }, "Acme")
        try store.insertMessage(message(t, seq: 2, body: "after"), mailMessageID: nil, delta: nil)
        XCTAssertFalse(store.transactionLost)
        try store.commit()
        XCTAssertEqual(try store.messages(ticket: "T-1001", after: 0).map(\.body), ["before", "after"])
    }

    func testRollback_wholeBatch_leavesNothing() throws {
        let store = try seeded()
        try store.begin()
        try store.appendDelta(ticket: "T-1001", seq: 1, at: 1, kind: .messageCreated, data: [0x7B, 0x7D])
        try store.createTenant(Tenant(id: "globex", name: "Globex"), at: 1)
        var t = try XCTUnwrap(try store.ticket("T-1001"))
        t.status = .closed
        t.seq = 1
        try store.updateTicket(t)   // now in the store's ticket cache too
        store.rollback()
        XCTAssertNil(try store.oldestDeltaSeq(ticket: "T-1001"))
        XCTAssertNil(try store.tenant("globex"))
        // The cache must not serve the rolled-back update.
        XCTAssertEqual(try store.ticket("T-1001")?.status, .new)
        XCTAssertEqual(try store.ticket("T-1001")?.seq, 0)
    }

    func testDeltas_afterOldestAndPrune_perTicket() throws {
        let store = try seeded()
        try store.begin()
        try store.insertTicket(ticket(1002))
        for seq in 1...10 {
            try store.appendDelta(ticket: "T-1001", seq: seq, at: Int64(seq), kind: .messageCreated, data: Array("{\"n\":\(seq)}".utf8))
        }
        try store.appendDelta(ticket: "T-1002", seq: 1, at: 1, kind: .timeUpdated, data: Array("{}".utf8))
        try store.commit()

        XCTAssertEqual(try store.oldestDeltaSeq(ticket: "T-1001"), 1)
        XCTAssertNil(try store.oldestDeltaSeq(ticket: "T-9999"))
        let after3 = try store.deltas(ticket: "T-1001", after: 3, limit: 100)
        XCTAssertEqual(after3.map(\.seq), Array(4...10))
        XCTAssertEqual(after3.first?.kind, "message.created")
        XCTAssertEqual(after3.first?.at, 4)
        XCTAssertEqual(after3.first?.data, Array("{\"n\":4}".utf8))
        XCTAssertEqual(try store.deltas(ticket: "T-1001", after: 3, limit: 2).map(\.seq), [4, 5], "limit bounds the read")
        XCTAssertEqual(try store.deltas(ticket: "T-1001", after: 10, limit: 5).map(\.seq), [])

        try store.pruneDeltas(ticket: "T-1001", keepingAfter: 6)
        XCTAssertEqual(try store.oldestDeltaSeq(ticket: "T-1001"), 7)
        XCTAssertEqual(try store.deltas(ticket: "T-1001", after: 0, limit: 100).map(\.seq), [7, 8, 9, 10])
        XCTAssertEqual(try store.deltas(ticket: "T-1002", after: 0, limit: 100).map(\.seq), [1], "pruning is per ticket")
    }

    func testAppendDelta_sameSeqTwice_isAConstraintViolation() throws {
        let store = try seeded()
        try store.appendDelta(ticket: "T-1001", seq: 1, at: 1, kind: .messageCreated, data: [0x7B, 0x7D])
        XCTAssertThrowsError(try store.appendDelta(ticket: "T-1001", seq: 1, at: 2, kind: .messageCreated, data: [0x7B, 0x7D])) { error in
            XCTAssertTrue((error as? StoreError)?.kind == .conflict, "\(error)")
        }
    }

    func testMessageDelta_storedWithItsMessage_mergesWithTheLogInSeqOrder() throws {
        let store = try seeded()
        let t = try XCTUnwrap(try store.ticket("T-1001"))
        try store.begin()
        // seq 1 and 3 are messages (their deltas go to the row), 2 and 4 are not.
        var one = message(t, seq: 1, body: "one"); one.at = 11
        try store.insertMessage(one, mailMessageID: nil, delta: Array("{\"m\":1}".utf8))
        try store.appendDelta(ticket: t.id, seq: 2, at: 12, kind: .ticketUpdated, data: Array("{\"s\":2}".utf8))
        var three = message(t, seq: 3, body: "three"); three.at = 13
        try store.insertMessage(three, mailMessageID: nil, delta: Array("{\"m\":3}".utf8))
        try store.appendDelta(ticket: t.id, seq: 4, at: 14, kind: .timeUpdated, data: Array("{\"t\":4}".utf8))
        try store.commit()

        XCTAssertEqual(try deltaRowCount(ticket: t.id), 2,
                       "message deltas are not written to the deltas table")
        let log = try store.deltas(ticket: t.id, after: 0, limit: 100)
        XCTAssertEqual(log.map(\.seq), [1, 2, 3, 4])
        XCTAssertEqual(log.map(\.kind), ["message.created", "ticket.updated", "message.created", "time.updated"])
        XCTAssertEqual(log.map(\.at), [11, 12, 13, 14])
        XCTAssertEqual(log[2].data, Array("{\"m\":3}".utf8), "stored verbatim")
        XCTAssertEqual(try store.deltas(ticket: t.id, after: 1, limit: 2).map(\.seq), [2, 3], "the limit applies to the merged log")
        XCTAssertEqual(try store.oldestDeltaSeq(ticket: t.id), 1)

        try store.pruneDeltas(ticket: t.id, keepingAfter: 2)
        XCTAssertEqual(try store.oldestDeltaSeq(ticket: t.id), 3)
        XCTAssertEqual(try store.deltas(ticket: t.id, after: 0, limit: 100).map(\.seq), [3, 4])
        XCTAssertEqual(try store.messages(ticket: t.id, after: 0).map(\.body), ["one", "three"], "pruning the log keeps messages")

        // Re-logging a seq is refused, wherever the first entry lives.
        for seq in [3, 4] {
            XCTAssertThrowsError(try store.appendDelta(ticket: t.id, seq: seq, at: 20, kind: .ticketUpdated, data: [0x7B, 0x7D])) { error in
                XCTAssertTrue((error as? StoreError)?.kind == .conflict, "\(error)")
            }
        }
        XCTAssertThrowsError(try store.insertMessage(message(t, seq: 3, body: "again"), mailMessageID: nil, delta: [0x7B, 0x7D])) { error in
            XCTAssertTrue((error as? StoreError)?.kind == .conflict, "\(error)")
        }
    }

    func testMessageDelta_rolledBackWithItsSavepoint() throws {
        let store = try seeded()
        let t = try XCTUnwrap(try store.ticket("T-1001"))
        try store.begin()
        try store.savepoint()
        try store.insertMessage(message(t, seq: 1, body: "undone"), mailMessageID: nil, delta: [0x7B, 0x7D])
        store.rollbackToSavepoint()
        try store.commit()
        XCTAssertEqual(try store.deltas(ticket: t.id, after: 0, limit: 10).count, 0)
        XCTAssertNil(try store.oldestDeltaSeq(ticket: t.id))
    }

    func testCommandAnswers_windowTechnicianAndTenantScoped_prunable() throws {
        let store = try seeded()
        let answer = Array("{\"type\":\"result\"}".utf8)
        try store.saveCommandAnswer(CommandKey(tenant: "acme", technician: "tech-1", id: "c1"), at: 10_000, answer: answer)
        XCTAssertEqual(try store.commandAnswer(CommandKey(tenant: "acme", technician: "tech-1", id: "c1"), notBefore: 10_000), answer, "inclusive at the edge")
        XCTAssertNil(try store.commandAnswer(CommandKey(tenant: "acme", technician: "tech-1", id: "c1"), notBefore: 10_001), "outside the window")
        XCTAssertNil(try store.commandAnswer(CommandKey(tenant: "acme", technician: "tech-2", id: "c1"), notBefore: 0), "another technician")
        XCTAssertNil(try store.commandAnswer(CommandKey(tenant: "globex", technician: "tech-1", id: "c1"), notBefore: 0), "another tenant")
        XCTAssertNil(try store.commandAnswer(CommandKey(tenant: "acme", technician: "tech-1", id: "c2"), notBefore: 0))

        try store.saveCommandAnswer(CommandKey(tenant: "acme", technician: "tech-1", id: "c2"), at: 20_000, answer: answer)
        try store.pruneCommandAnswers(before: 15_000)
        XCTAssertNil(try store.commandAnswer(CommandKey(tenant: "acme", technician: "tech-1", id: "c1"), notBefore: 0), "pruned")
        XCTAssertEqual(try store.commandAnswer(CommandKey(tenant: "acme", technician: "tech-1", id: "c2"), notBefore: 0), answer, "kept")
    }

    func testReopen_keepsCommittedDataAndDropsUncommitted() throws {
        do {
            let store = try seeded()
            var t = try XCTUnwrap(try store.ticket("T-1001"))
            try store.begin()
            t.seq = 1; t.status = .inProgress; t.version = 2
            try store.insertMessage(message(t, seq: 1, body: "durable"), mailMessageID: nil, delta: nil)
            try store.appendDelta(ticket: t.id, seq: 1, at: 2_001, kind: .messageCreated, data: Array("{}".utf8))
            try store.updateTicket(t)
            try store.commit()
            // Begun and never committed: gone when the connection goes.
            try store.begin()
            try store.createTenant(Tenant(id: "ghost", name: "Ghost"), at: 1)
        }
        let reopened = try openStore()
        let t = try XCTUnwrap(try reopened.ticket("T-1001"))
        XCTAssertEqual(t.seq, 1)
        XCTAssertEqual(t.status, .inProgress)
        XCTAssertEqual(t.version, 2)
        XCTAssertEqual(t.contact, Contact(name: "Casey", email: "casey@example.com"))
        XCTAssertEqual(try reopened.recentMessages(ticket: t.id, limit: 10).map(\.body), ["durable"])
        XCTAssertEqual(try reopened.deltas(ticket: t.id, after: 0, limit: 10).map(\.seq), [1])
        XCTAssertEqual(try reopened.technician(tenant: "acme", id: "tech-1")?.name, "Tech 1")
        XCTAssertNil(try reopened.tenant("ghost"))
        XCTAssertEqual(try reopened.nextTicketNumber(), 1002)
    }

    /// Contract hours: entries started since the period's start, on the
    /// tenant's tickets of one client under one contract.
    func testContractSeconds_sumsTheClientsContractSince() throws {
        let store = try seeded()
        try store.begin()
        try store.createTenant(Tenant(id: "globex", name: "Globex"), at: 1_000)
        var gold = ticket(1002); gold.contract = "Gold"
        var gold2 = ticket(1003); gold2.contract = "Gold"
        var silver = ticket(1004); silver.contract = "Silver"
        var otherClient = ticket(1005); otherClient.contract = "Gold"; otherClient.client = "Other Co"
        var otherTenant = ticket(1006, tenant: "globex"); otherTenant.contract = "Gold"
        for t in [gold, gold2, silver, otherClient, otherTenant] { try store.insertTicket(t) }
        let me = PersonRef(id: "tech-1", name: "Tech 1")
        for (t, startedAt, seconds) in [(gold, 5_000, 60), (gold2, 6_000, 120), (gold, 4_999, 1_000), (silver, 5_000, 7),
                                        (otherClient, 5_000, 11), (otherTenant, 5_000, 13), (ticket(1001), 5_000, 17)] as [(Ticket, Int64, Int)] {
            try store.addTimeEntry(ticket: t.id, TimeEntry(technician: me, startedAt: startedAt, seconds: seconds, note: nil))
        }
        try store.commit()
        XCTAssertEqual(try store.contractSeconds(tenant: "acme", client: "Client Co", contract: "Gold", since: 5_000), 180)
        XCTAssertEqual(try store.contractSeconds(tenant: "acme", client: "Client Co", contract: "Gold", since: 0), 1_180)
        XCTAssertEqual(try store.contractSeconds(tenant: "acme", client: "Client Co", contract: "Silver", since: 0), 7)
        XCTAssertEqual(try store.contractSeconds(tenant: "acme", client: "Other Co", contract: "Gold", since: 0), 11)
        XCTAssertEqual(try store.contractSeconds(tenant: "globex", client: "Client Co", contract: "Gold", since: 0), 13)
        XCTAssertEqual(try store.contractSeconds(tenant: "acme", client: "Client Co", contract: "None", since: 0), 0)
    }

    func testMessages_recentAreOldestFirstAndAfterFilters() throws {
        let store = try seeded()
        let t = try XCTUnwrap(try store.ticket("T-1001"))
        for seq in 1...5 { try store.insertMessage(message(t, seq: seq, body: "m\(seq)"), mailMessageID: nil, delta: nil) }
        XCTAssertEqual(try store.recentMessages(ticket: t.id, limit: 3).map(\.seq), [3, 4, 5])
        XCTAssertEqual(try store.messages(ticket: t.id, after: 3).map(\.body), ["m4", "m5"])
        let first = try XCTUnwrap(try store.messages(ticket: t.id, after: 0).first)
        XCTAssertEqual(first, message(t, seq: 1, body: "m1"), "a message reads back as written")
    }

    func testMessagesBefore_pageOldestFirstStrictlyBeforeAndPerTicket() throws {
        let store = try seeded()
        let t = try XCTUnwrap(try store.ticket("T-1001"))
        try store.insertTicket(ticket(1002))
        let other = try XCTUnwrap(try store.ticket("T-1002"))
        for seq in 1...7 {
            try store.insertMessage(message(t, seq: seq, body: "m\(seq)"), mailMessageID: nil, delta: nil)
            try store.insertMessage(message(other, seq: seq, body: "other\(seq)"), mailMessageID: nil, delta: nil)
        }
        XCTAssertEqual(try store.messages(ticket: t.id, before: 6, limit: 3).map(\.seq), [3, 4, 5], "the page just before, oldest first")
        XCTAssertEqual(try store.messages(ticket: t.id, before: 3, limit: 3).map(\.body), ["m1", "m2"], "a short last page")
        XCTAssertEqual(try store.messages(ticket: t.id, before: 1, limit: 3), [], "nothing before the first")
        XCTAssertEqual(try store.messages(ticket: other.id, before: 100, limit: 2).map(\.body), ["other6", "other7"], "another ticket's own messages only")
    }

    func testNoteSeq_foundByItsCommandWithinTheWindowOnly() throws {
        let store = try seeded()
        let t = try XCTUnwrap(try store.ticket("T-1001"))
        let key = CommandKey(tenant: "acme", technician: "tech-1", id: "c-1")
        try store.insertMessage(message(t, seq: 1, body: "first"), mailMessageID: nil, delta: nil, command: key)
        try store.insertMessage(message(t, seq: 2, body: "no command"), mailMessageID: nil, delta: nil)
        // message(_:seq:body:) stamps at = 2,000 + seq.
        XCTAssertEqual(try store.noteSeq(command: key, notBefore: 2_001), 1)
        XCTAssertNil(try store.noteSeq(command: key, notBefore: 2_002), "older than the window")
        XCTAssertNil(try store.noteSeq(command: CommandKey(tenant: "acme", technician: "tech-2", id: "c-1"), notBefore: 0))
        XCTAssertNil(try store.noteSeq(command: CommandKey(tenant: "other", technician: "tech-1", id: "c-1"), notBefore: 0))
        // Ids cannot borrow from the technician's name to match another key.
        try store.insertMessage(message(t, seq: 3, body: "slash"), mailMessageID: nil, delta: nil,
                                command: CommandKey(tenant: "acme", technician: "a/b", id: "c"))
        XCTAssertNil(try store.noteSeq(command: CommandKey(tenant: "acme", technician: "a", id: "/bc"), notBefore: 0))
        XCTAssertEqual(try store.noteSeq(command: CommandKey(tenant: "acme", technician: "a/b", id: "c"), notBefore: 0), 3)
    }

    func testUpdateTicket_seqOnlyThenOtherFields_bothReachTheFile() throws {
        let store = try seeded()
        var t = try XCTUnwrap(try store.ticket("T-1001"))
        try store.begin()
        t.seq = 7; t.version = 3                  // the narrow path
        try store.updateTicket(t)
        t.status = .waitingOnCustomer; t.contact = Contact(name: "Casey", email: nil); t.seq = 8   // the full path
        try store.updateTicket(t)
        t.seq = 9                                   // narrow again, on top of the full write
        try store.updateTicket(t)
        try store.commit()
        let reopened = try openStore()
        let read = try XCTUnwrap(try reopened.ticket("T-1001"))
        XCTAssertEqual(read, t)
        XCTAssertEqual(read.seq, 9)
        XCTAssertEqual(read.contact.email, nil)
    }

    func testUpdateTicket_narrowWriteRolledBack_isUndoneInFileAndCache() throws {
        let store = try seeded()
        var t = try XCTUnwrap(try store.ticket("T-1001"))
        try store.begin()
        try store.savepoint()
        t.seq = 5
        try store.updateTicket(t)
        store.rollbackToSavepoint()
        try store.commit()
        XCTAssertEqual(try store.ticket("T-1001")?.seq, 0)
        XCTAssertEqual(try openStore().ticket("T-1001")?.seq, 0)
    }

    // MARK: Every table

    /// Each table's write and read, so a store whose SQL differs (another
    /// dialect) is held to the same answers: upserts replace, orders hold,
    /// missing rows read as nil.
    func testEveryTable_readsBackAsWrittenAndUpsertsReplace() throws {
        let store = try seeded()
        try store.begin()
        try store.createTechnician(Technician(tenant: "acme", id: "tech-0", name: "Avery", email: "a@acme.example"))
        XCTAssertEqual(try store.technicians(tenant: "acme").map(\.id), ["tech-0", "tech-1"], "by name")
        try store.createAsset(Asset(tenant: "acme", id: "pc-1", name: "PC 1", agent: "agent-1", posture: [0, 1, 255]))
        XCTAssertEqual(try store.asset(agent: "agent-1")?.posture, [0, 1, 255])
        XCTAssertEqual(try store.asset(tenant: "acme", id: "pc-1")?.name, "PC 1")
        XCTAssertNil(try store.telemetry(tenant: "acme", asset: "pc-1"))
        try store.saveTelemetry(tenant: "acme", asset: "pc-1", Telemetry(cpu: 12.5, ram: 40, disk: 0.25, at: 77))
        XCTAssertEqual(try store.telemetry(tenant: "acme", asset: "pc-1"), Telemetry(cpu: 12.5, ram: 40, disk: 0.25, at: 77))

        var linked = ticket(1002)
        linked.asset = PersonRef(id: "pc-1", name: "PC 1")
        linked.assignee = PersonRef(id: "tech-0", name: "Avery")
        linked.sla = SLAClocks(responseDue: 5_000, resolutionDue: 9_000, pausedSince: nil, responseBreached: false, resolutionBreached: true)
        try store.insertTicket(linked)
        XCTAssertEqual(try store.ticket(linked.id), linked, "joined names and SLA clocks read back")
        XCTAssertEqual(try store.nextTicketNumber(), 1003)
        XCTAssertEqual(try store.tickets(tenant: "acme", limit: 10).map(\.number), [1001, 1002])
        XCTAssertEqual(try store.ticketsLinked(tenant: "acme", asset: "pc-1"), [linked.id])
        XCTAssertEqual(try store.related(to: ticket(1001), limit: 5).map(\.id), [linked.id], "same contact")
        XCTAssertEqual(try store.ticketsWithOpenSLA().map(\.id), [linked.id], "response due, not yet breached")

        let mail = EmailAccount(host: "smtp.acme.example", port: 587, security: .startTLS, username: "u", password: "p", from: "help@acme.example")
        try store.putEmailAccount(tenant: "acme", mail)
        try store.putEmailAccount(tenant: "acme", EmailAccount(host: "mx", port: 25, security: .none, username: nil, password: nil, from: "f@x"))
        XCTAssertEqual(try store.tenants(outboundAddresses: ["F@X", "nobody@x"]), ["acme"], "without case")
        XCTAssertEqual(try store.tenants(outboundAddresses: []), [])
        XCTAssertEqual(try store.emailAccount(tenant: "acme")?.host, "mx", "replaced")
        XCTAssertNil(try store.emailAccount(tenant: "acme")?.username)
        try store.recordSend(ticket: linked.id, at: 1, technician: "tech-1", recipient: "c@x", outcome: "sent", reply: "250 ok")
        try store.recordSend(ticket: linked.id, at: 2, technician: "tech-1", recipient: nil, outcome: "failed", reply: "550 no")
        XCTAssertEqual(try store.sends(ticket: linked.id).map(\.reply), ["250 ok", "550 no"], "in order")
        // A reply's "about to send" rows, settled in place, removed, or left for the next start.
        for note in ["Being sent as <a@x>.", "Being sent as <b@x>.", "Being sent as <c@x>."] {
            try store.recordSend(ticket: linked.id, at: 3, technician: "tech-1", recipient: "c@x", outcome: "sending", reply: note)
        }
        XCTAssertEqual(try store.unsettledSends().map(\.note), ["Being sent as <a@x>.", "Being sent as <b@x>.", "Being sent as <c@x>."])
        try store.finishSend(ticket: linked.id, sending: "Being sent as <a@x>.", at: 4, outcome: "sent", reply: "250 queued")
        try store.finishSend(ticket: linked.id, sending: "Being sent as <b@x>.", at: 4, outcome: nil, reply: "")
        XCTAssertEqual(try store.unsettledSends().map(\.note), ["Being sent as <c@x>."])
        XCTAssertEqual(try store.sends(ticket: linked.id).map(\.outcome), ["sent", "failed", "sent", "sending"])
        XCTAssertEqual(try store.sends(ticket: linked.id)[2].reply, "250 queued")
        XCTAssertEqual(try store.sends(ticket: linked.id)[2].at, 4)

        try store.putSLAPolicy(tenant: "acme", priority: .high, SLATarget(response: 60, resolution: 600))
        try store.putSLAPolicy(tenant: "acme", priority: .high, SLATarget(response: 30, resolution: 300))
        XCTAssertEqual(try store.slaPolicy(tenant: "acme", priority: .high), SLATarget(response: 30, resolution: 300))
        XCTAssertNil(try store.slaPolicy(tenant: "acme", priority: .low))
        let hours = BusinessHours(days: [1, 2, 3], startMinute: 540, endMinute: 1020, utcOffsetMinutes: -300)
        try store.putBusinessHours(tenant: "acme", hours)
        try store.putBusinessHours(tenant: "acme", hours)
        XCTAssertEqual(try store.businessHours(tenant: "acme"), hours)
        try store.putBusinessHours(tenant: "acme", nil)
        XCTAssertNil(try store.businessHours(tenant: "acme"))

        let tech = PersonRef(id: "tech-1", name: "Tech 1")
        let first = RemoteSession(id: "S-1", ticket: linked.id, asset: "pc-1", technician: tech, status: .awaitingConsent, expiresAt: 90, createdAt: 10)
        var second = first; second.id = "S-2"; second.expiresAt = 80
        try store.insertSession(first)
        try store.insertSession(second)
        XCTAssertEqual(try store.latestSession(ticket: linked.id)?.id, "S-2", "same created_at: the later insert")
        XCTAssertEqual(try store.pendingSessions().map(\.id), ["S-2", "S-1"], "by expiry")
        XCTAssertEqual(try store.activeSessions().map(\.id), [])
        try store.updateSession(id: "S-2", status: .active, startedAt: 85)
        XCTAssertEqual(try store.activeSessions().map(\.id), ["S-2"])
        try store.updateSession(id: "S-2", status: .ended, startedAt: nil)
        XCTAssertEqual(try store.activeSessions().map(\.id), [])
        XCTAssertEqual(try store.session("S-2")?.status, .ended)
        XCTAssertEqual(try store.session("S-2")?.startedAt, 85, "kept once the session ends")
        XCTAssertEqual(try store.session("S-2")?.kind, RemoteSession.recording)
        XCTAssertEqual(try store.pendingSessions().map(\.id), ["S-1"])

        try store.putSummary(ticket: linked.id, Summary(text: "old", model: "m", at: 1, covers: nil))
        try store.putSummary(ticket: linked.id, Summary(text: "new", model: "m", at: 2, covers: 7))
        XCTAssertEqual(try store.summary(ticket: linked.id), Summary(text: "new", model: "m", at: 2, covers: 7))

        try store.startTimer(ticket: linked.id, technician: tech, at: 100)
        XCTAssertEqual(try store.activeTimer(ticket: linked.id)?.startedAt, 100)
        for (i, seconds) in [30, 45, 60].enumerated() {
            try store.addTimeEntry(ticket: linked.id, TimeEntry(technician: tech, startedAt: Int64(i), seconds: seconds, note: i == 0 ? "n" : nil))
        }
        let time = try store.timeState(ticket: linked.id, recentEntries: 2)
        XCTAssertEqual(time.entries.map(\.seconds), [45, 60], "the most recent, oldest first")
        XCTAssertEqual(time.entryCount, 3)
        XCTAssertEqual(time.total, 135)
        XCTAssertEqual(time.active?.technician, tech)
        XCTAssertEqual(try store.stopTimer(ticket: linked.id)?.startedAt, 100)
        XCTAssertNil(try store.stopTimer(ticket: linked.id))

        let file = AttachmentRef(id: "A-1", filename: "log.txt", contentType: "text/plain", size: 12)
        try store.insertAttachment(file, ticket: linked.id, sha256: "abc", at: 5)
        XCTAssertEqual(try store.attachment("A-1")?.ref, file)
        XCTAssertEqual(try store.attachment("A-1")?.sha256, "abc")
        XCTAssertNil(try store.attachment("A-2"))

        // Messages: attachments, mail threads, and the unread filter.
        var reply = message(linked, seq: 1, body: "from the customer")
        reply.channel = .customer; reply.author = PersonRef(id: "casey", name: "Casey"); reply.attachments = [file]
        try store.insertMessage(reply, mailMessageID: "<1@mail>", delta: nil)
        try store.insertMessage(message(linked, seq: 2, body: "note"), mailMessageID: nil, delta: nil)
        var again = reply; again.seq = 3; again.id = "M-1002-3"
        try store.insertMessage(again, mailMessageID: "<3@mail>", delta: nil)
        XCTAssertEqual(try store.message(mailMessageID: "<1@mail>"), reply)
        XCTAssertEqual(try store.message(mailMessageID: "<1@mail>", tenant: "acme"), reply)
        XCTAssertNil(try store.message(mailMessageID: "<1@mail>", tenant: "globex"), "another tenant's thread")
        XCTAssertEqual(try store.mailThreadIDs(ticket: linked.id), ["<1@mail>", "<3@mail>"])
        let unread = try store.messages(ticket: linked.id, after: 0, channels: [.customer, .technician], notBy: "tech-1", limit: 1)
        XCTAssertEqual(unread.recent.map(\.seq), [3])
        XCTAssertEqual(unread.total, 2)
        try store.commit()
    }
}
