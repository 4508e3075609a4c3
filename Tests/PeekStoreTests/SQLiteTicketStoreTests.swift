import Foundation
import XCTest
import CSQLite
import PeekCore
@testable import PeekStore

/// The SQLite store on a real temp file: migrations, savepoints (one
/// command's undo), the delta log, the idempotency window, re-opening.
final class SQLiteTicketStoreTests: XCTestCase {
    private var directory = ""
    private var path: String { directory + "/peek.sqlite" }

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "peek-store-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func ticket(_ number: Int, tenant: String = "acme", seq: Int = 0) -> Ticket {
        Ticket(id: Ticket.id(forNumber: number), tenant: tenant, number: number, subject: "Subject \(number)", status: .new,
               priority: .normal, assignee: nil, contact: Contact(name: "Casey", email: "casey@example.com"), client: "Client Co",
               asset: nil, firstResponseAt: nil, createdAt: 1_000, version: 1, seq: seq, sla: SLAClocks())
    }

    private func message(_ ticket: Ticket, seq: Int, body: String) -> Message {
        Message(id: "M-\(ticket.number)-\(seq)", ticket: ticket.id, seq: seq, channel: .internalNote,
                author: PersonRef(id: "tech-1", name: "Tech 1"), body: body, via: .web, at: 2_000 + Int64(seq))
    }

    /// A store with tenant `acme` and ticket T-1001, committed.
    private func seeded() throws -> SQLiteTicketStore {
        let store = try SQLiteTicketStore(path: path)
        try store.begin()
        try store.createTenant(Tenant(id: "acme", name: "Acme"), at: 1_000)
        try store.createTechnician(Technician(tenant: "acme", id: "tech-1", name: "Tech 1", email: "t1@acme.example"))
        try store.insertTicket(ticket(1001))
        try store.commit()
        return store
    }

    // MARK: Migrations

    func testOpen_freshFile_runsEveryMigrationAndSetsUserVersion() throws {
        XCTAssertGreaterThan(Schema.migrations.count, 0)
        let store = try SQLiteTicketStore(path: path)
        XCTAssertEqual(store.db.userVersion, Schema.migrations.count)
        let tables = try store.db.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").compactMap { $0[0].text }
        for table in ["tenants", "technicians", "tickets", "messages", "deltas", "command_answers"] {
            XCTAssertTrue(tables.contains(table), "table \(table) in \(tables)")
        }
        XCTAssertEqual(try store.db.queryOne("PRAGMA journal_mode")?.first?.text, "wal")
    }

    func testOpen_migratedFile_runsNothingTwice() throws {
        _ = try seeded()
        // Re-running migration 1 would fail on CREATE TABLE; opening must not.
        let again = try SQLiteTicketStore(path: path)
        XCTAssertEqual(again.db.userVersion, Schema.migrations.count)
        XCTAssertEqual(try again.ticket("T-1001")?.subject, "Subject 1001")
    }

    // MARK: Savepoints

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

    /// SQLITE_FULL (here the connection's `max_page_count`, as on a full
    /// disk) makes SQLite roll the whole transaction back by itself, the
    /// savepoint with it. Nothing may then run outside a transaction: a
    /// later write or RELEASE must fail rather than autocommit, and COMMIT
    /// must fail, so the batch is known to be lost.
    func testTransactionRolledBackBySQLite_laterWritesAndCommitFailUntilRollback() throws {
        let store = try seeded()
        var t = try XCTUnwrap(try store.ticket("T-1001"))
        try store.begin()
        t.seq = 1
        try store.insertMessage(message(t, seq: 1, body: "before the fault"), mailMessageID: nil, delta: nil)
        let pages = try XCTUnwrap(try store.db.queryOne("PRAGMA page_count")?.first?.int)
        try store.db.execute("PRAGMA max_page_count = \(pages + 2)")
        try store.savepoint()
        XCTAssertThrowsError(try store.insertMessage(message(t, seq: 2, body: String(repeating: "x", count: 64 * 1024)),
                                                     mailMessageID: nil, delta: nil)) { error in
            XCTAssertEqual((error as? StoreError).map { $0.code & 0xFF }, SQLITE_FULL, "\(error)")
        }
        XCTAssertTrue(store.transactionLost)
        XCTAssertThrowsError(try store.releaseSavepoint())
        XCTAssertThrowsError(try store.insertMessage(message(t, seq: 3, body: "after the fault"), mailMessageID: nil, delta: nil))
        XCTAssertThrowsError(try store.commit())
        store.rollback()
        XCTAssertFalse(store.transactionLost)
        XCTAssertEqual(try store.recentMessages(ticket: t.id, limit: 10).map(\.body), [], "written outside the lost transaction")

        // With room again, the store works as before.
        try store.db.execute("PRAGMA max_page_count = \(Int32.max)")
        try store.begin()
        try store.insertMessage(message(t, seq: 1, body: "after"), mailMessageID: nil, delta: nil)
        try store.commit()
        XCTAssertEqual(try store.recentMessages(ticket: t.id, limit: 10).map(\.body), ["after"])
    }

    // MARK: The delta log

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
            XCTAssertTrue((error as? StoreError)?.isConstraintViolation ?? false, "\(error)")
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

        XCTAssertEqual(try store.db.queryOne("SELECT COUNT(*) FROM deltas WHERE ticket = ?", .text(t.id))?.first?.int, 2,
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
                XCTAssertTrue((error as? StoreError)?.isConstraintViolation ?? false, "\(error)")
            }
        }
        XCTAssertThrowsError(try store.insertMessage(message(t, seq: 3, body: "again"), mailMessageID: nil, delta: [0x7B, 0x7D])) { error in
            XCTAssertTrue((error as? StoreError)?.isConstraintViolation ?? false, "\(error)")
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

    // MARK: Command answers

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

    // MARK: Re-opening

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
        let reopened = try SQLiteTicketStore(path: path)
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

    func testMessages_recentAreOldestFirstAndAfterFilters() throws {
        let store = try seeded()
        let t = try XCTUnwrap(try store.ticket("T-1001"))
        for seq in 1...5 { try store.insertMessage(message(t, seq: seq, body: "m\(seq)"), mailMessageID: nil, delta: nil) }
        XCTAssertEqual(try store.recentMessages(ticket: t.id, limit: 3).map(\.seq), [3, 4, 5])
        XCTAssertEqual(try store.messages(ticket: t.id, after: 3).map(\.body), ["m4", "m5"])
        let first = try XCTUnwrap(try store.messages(ticket: t.id, after: 0).first)
        XCTAssertEqual(first, message(t, seq: 1, body: "m1"), "a message reads back as written")
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

    // MARK: Schema 3, narrow updates, durability

    func testMigration3_keepsMessagesWrittenUnderSchema2AndTheirMailThread() throws {
        // A file as schema 2 left it, with messages in the old rowid table.
        do {
            let old = try Database(path: path)
            try old.execute("PRAGMA journal_mode=WAL;")
            for sql in Schema.migrations.prefix(2) { try old.execute(sql) }
            try old.setUserVersion(2)
            try old.execute("INSERT INTO tenants(id, name, created_at) VALUES ('acme', 'Acme', 1)")
            for (seq, mailID) in [(2, "<b@mail>"), (1, nil)] as [(Int, String?)] {
                try old.run("""
                    INSERT INTO messages(id, ticket, seq, channel, author_id, author_name, body, via, at, attachments, mail_message_id)
                    VALUES (?, 'T-1001', ?, 'customer', 'c', 'Casey', ?, 'email', 5, NULL, ?)
                    """, .text("M-1001-\(seq)"), SQLValue(seq), .text("body \(seq)"), SQLValue(mailID))
            }
        }
        let store = try SQLiteTicketStore(path: path)
        XCTAssertEqual(store.db.userVersion, Schema.migrations.count)
        XCTAssertEqual(try store.messages(ticket: "T-1001", after: 0).map(\.body), ["body 1", "body 2"])
        XCTAssertEqual(try store.message(mailMessageID: "<b@mail>")?.ticket, "T-1001")
        XCTAssertEqual(try store.mailThreadIDs(ticket: "T-1001"), ["<b@mail>"])
        // A ticket's messages are read through the (ticket, seq) index, in order.
        let plan = try store.db.query("EXPLAIN QUERY PLAN SELECT body FROM messages WHERE ticket = 'T-1001' ORDER BY seq")
            .compactMap { $0.last?.text }.joined(separator: " ")
        XCTAssertTrue(plan.contains("messages_ticket_seq"), plan)
        XCTAssertFalse(plan.contains("TEMP B-TREE"), plan)
    }

    func testMigration5_keepsMessagesAndTheirLoggedDeltasWrittenUnderSchema4() throws {
        // A file as schema 4 left it: messages clustered by (ticket, seq), deltas in their rows.
        do {
            let old = try Database(path: path)
            try old.execute("PRAGMA journal_mode=WAL;")
            for sql in Schema.migrations.prefix(4) { try old.execute(sql) }
            try old.setUserVersion(4)
            try old.execute("INSERT INTO tenants(id, name, created_at) VALUES ('acme', 'Acme', 1)")
            for seq in [3, 1, 2] {
                try old.run("""
                    INSERT INTO messages(ticket, seq, id, channel, author_id, author_name, body, via, at, attachments, mail_message_id, delta_at, delta)
                    VALUES ('T-1001', ?, ?, 'note', 't', 'Tess', ?, 'web', ?, NULL, ?, ?, ?)
                    """, SQLValue(seq), .text("M-1001-\(seq)"), .text("body \(seq)"), .int(Int64(10 + seq)),
                    seq == 2 ? .text("<m2@mail>") : .null, seq == 1 ? .null : .int(Int64(10 + seq)),
                    seq == 1 ? .null : .blob(Array("delta \(seq)".utf8)))
            }
        }
        let store = try SQLiteTicketStore(path: path)
        XCTAssertEqual(store.db.userVersion, Schema.migrations.count)
        XCTAssertEqual(try store.messages(ticket: "T-1001", after: 0).map(\.body), ["body 1", "body 2", "body 3"])
        XCTAssertEqual(try store.deltas(ticket: "T-1001", after: 0, limit: 10).map(\.seq), [2, 3], "a pruned delta stays pruned")
        XCTAssertEqual(try store.deltas(ticket: "T-1001", after: 0, limit: 10).map { Array($0.data) }, [Array("delta 2".utf8), Array("delta 3".utf8)])
        XCTAssertEqual(try store.message(mailMessageID: "<m2@mail>")?.ticket, "T-1001")
        // (ticket, seq) is still unique: a second message at a taken seq is refused.
        let t = ticket(1001)
        XCTAssertThrowsError(try store.insertMessage(message(t, seq: 3, body: "again"), mailMessageID: nil, delta: nil))
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
        let reopened = try SQLiteTicketStore(path: path)
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
        XCTAssertEqual(try SQLiteTicketStore(path: path).ticket("T-1001")?.seq, 0)
    }

    func testDurability_fileStoreSyncsTheWAL_memoryStoreNeedsNone() throws {
        let store = try seeded()
        let durability = try XCTUnwrap(store.durability)
        try durability.sync()
        XCTAssertTrue(FileManager.default.fileExists(atPath: path + "-wal"))
        XCTAssertEqual(try store.db.queryOne("PRAGMA synchronous")?.first?.int, 1, "NORMAL: the pipeline syncs")
        XCTAssertNil(try SQLiteTicketStore(path: ":memory:").durability)
    }

    func testDurability_walRecreated_isSyncedThroughTheNewFile() throws {
        let sync = WALSync(databasePath: path)
        try sync.sync()                             // no WAL yet: nothing to do
        FileManager.default.createFile(atPath: path + "-wal", contents: Data([1]))
        try sync.sync()
        try FileManager.default.removeItem(atPath: path + "-wal")
        FileManager.default.createFile(atPath: path + "-wal", contents: Data([2]))
        try sync.sync()                             // a new inode: reopened, not the deleted one
        try FileManager.default.removeItem(atPath: path + "-wal")
        try sync.sync()
    }

    func testCheckpointer_copiesTheWALIntoTheDatabase() throws {
        let store = try seeded()
        let before = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        // Enough pages to pass the checkpointer's threshold in one commit.
        let body = String(repeating: "x", count: 3_000)
        try store.begin()
        let t = try XCTUnwrap(try store.ticket("T-1001"))
        for seq in 1...12_000 { try store.insertMessage(message(t, seq: seq, body: body), mailMessageID: nil, delta: nil) }
        try store.commit()
        var after = before
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            after = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? before
            if after > before + 20_000_000 { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        XCTAssertGreaterThan(after, before + 20_000_000, "the checkpoint thread copied the pages into the database file")
    }

    /// Text is bound with its byte length: a NUL inside a string is stored
    /// and read back whole, and a key with a NUL never matches the key it
    /// starts with (bound as a C string it was cut at the NUL).
    func testText_withEmbeddedNUL_roundTripsWholeAndMatchesOnlyItself() throws {
        let store = try seeded()
        let withNUL = "tech-1\u{0}" + String(repeating: "x", count: 1000)
        XCTAssertNil(try store.technician(tenant: "acme", id: withNUL), "a NUL-suffixed id matched tech-1")
        try store.begin()
        try store.createTechnician(Technician(tenant: "acme", id: "tech-2", name: "Two\u{0}Halves", email: "t2@acme.example"))
        try store.commit()
        XCTAssertEqual(try store.technician(tenant: "acme", id: "tech-2")?.name, "Two\u{0}Halves")
        let db = try Database(path: ":memory:")
        try db.execute("CREATE TABLE t (v TEXT)")
        try db.run("INSERT INTO t VALUES (?)", .text("a\u{0}b"))
        try db.run("INSERT INTO t VALUES (?)", .text(""))
        XCTAssertEqual(try db.query("SELECT v, length(CAST(v AS BLOB)) FROM t ORDER BY rowid"),
                       [[.text("a\u{0}b"), .int(3)], [.text(""), .int(0)]])
    }
}
