import Foundation
import XCTest
import CSQLite
import PeekCore
@testable import PeekStore

/// The SQLite store on a real temp file: the store contract
/// (TicketStoreContractTests), and what is SQLite's own: migrations from
/// older schemas, WAL durability and checkpoints, SQLite's own rollback.
final class SQLiteTicketStoreTests: TicketStoreContractTests {
    private var directory = ""
    private var path: String { directory + "/peek.sqlite" }

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "peek-store-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    override func openStore() throws -> any TicketStore { try SQLiteTicketStore(path: path) }

    override func deltaRowCount(ticket: String) throws -> Int {
        let store = try SQLiteTicketStore(path: path)
        return Int(try store.db.queryOne("SELECT COUNT(*) FROM deltas WHERE ticket = ?", .text(ticket))?.first?.int ?? 0)
    }

    private func seededSQLite() throws -> SQLiteTicketStore {
        try XCTUnwrap(try seeded() as? SQLiteTicketStore)
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
        _ = try seededSQLite()
        // Re-running migration 1 would fail on CREATE TABLE; opening must not.
        let again = try SQLiteTicketStore(path: path)
        XCTAssertEqual(again.db.userVersion, Schema.migrations.count)
        XCTAssertEqual(try again.ticket("T-1001")?.subject, "Subject 1001")
    }

    // MARK: Errors as domain kinds

    /// A second row with the same key is a `.conflict`, what the API
    /// answers 409 for; SQLite's code is kept for the log only.
    func testUniqueViolation_isConflict() throws {
        let db = try Database(path: path)
        try db.execute("CREATE TABLE t (id TEXT PRIMARY KEY)")
        _ = try db.run("INSERT INTO t VALUES ('a')")
        XCTAssertThrowsError(try db.run("INSERT INTO t VALUES ('a')")) { error in
            XCTAssertEqual((error as? StoreError)?.kind, .conflict, "\(error)")
            XCTAssertTrue((error as? StoreError)?.backendCode.hasPrefix("SQLITE_CONSTRAINT") ?? false, "\(error)")
        }
    }

    /// Another connection holding the write lock past the busy timeout
    /// (100 ms here) is `.busy`: the same work may succeed later.
    func testWriteLockHeldByAnotherConnection_isBusyAfterTheTimeout() throws {
        let holder = try Database(path: path)
        let writer = try Database(path: path)
        try writer.execute("PRAGMA busy_timeout = 100")
        try holder.execute("CREATE TABLE t (id TEXT PRIMARY KEY)")
        try holder.beginTransaction("BEGIN IMMEDIATE")
        defer { holder.rollbackTransaction() }
        XCTAssertThrowsError(try writer.beginTransaction("BEGIN IMMEDIATE")) { error in
            XCTAssertEqual((error as? StoreError)?.kind, .busy, "\(error)")
            XCTAssertTrue((error as? StoreError)?.backendCode.hasPrefix("SQLITE_BUSY") ?? false, "\(error)")
        }
    }

    // MARK: SQLite's own rollback

    /// SQLITE_FULL (here the connection's `max_page_count`, as on a full
    /// disk) makes SQLite roll the whole transaction back by itself, the
    /// savepoint with it. Nothing may then run outside a transaction: a
    /// later write or RELEASE must fail rather than autocommit, and COMMIT
    /// must fail, so the batch is known to be lost.
    func testTransactionRolledBackBySQLite_laterWritesAndCommitFailUntilRollback() throws {
        let store = try seededSQLite()
        var t = try XCTUnwrap(try store.ticket("T-1001"))
        try store.begin()
        t.seq = 1
        try store.insertMessage(message(t, seq: 1, body: "before the fault"), mailMessageID: nil, delta: nil)
        let pages = try XCTUnwrap(try store.db.queryOne("PRAGMA page_count")?.first?.int)
        try store.db.execute("PRAGMA max_page_count = \(pages + 2)")
        try store.savepoint()
        XCTAssertThrowsError(try store.insertMessage(message(t, seq: 2, body: String(repeating: "x", count: 64 * 1024)),
                                                     mailMessageID: nil, delta: nil)) { error in
            XCTAssertEqual((error as? StoreError)?.kind, .full, "\(error)")
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

    // MARK: Older schemas, durability

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

    /// Whether any row still names a file is answered from an index, not a
    /// scan of every attachment row.
    func testAttachmentReferenceCheck_usesTheSha256Index() throws {
        let store = try XCTUnwrap(try openStore() as? SQLiteTicketStore)
        let plan = try store.db.query("EXPLAIN QUERY PLAN SELECT 1 FROM attachments WHERE sha256 = 'ab' LIMIT 1")
            .compactMap { $0.last?.text }.joined(separator: " ")
        XCTAssertTrue(plan.contains("attachments_sha256"), plan)
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

    func testDurability_fileStoreSyncsTheWAL_memoryStoreNeedsNone() throws {
        let store = try seededSQLite()
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
        let store = try seededSQLite()
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
        let store = try seededSQLite()
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
