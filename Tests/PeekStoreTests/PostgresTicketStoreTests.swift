import Foundation
import XCTest
import Synchronization
import PeekCore
import PeekTestSupport
@testable import PeekPostgres
@testable import PeekStore

/// The PostgreSQL store against a real PostgreSQL 15 (one server for the
/// test process, a fresh database per test): the store contract
/// (TicketStoreContractTests), and what is PostgreSQL's own: the migration
/// under an advisory lock, a doomed transaction, read-only batches, and
/// the ticket row lock that keeps a seq from being assigned twice.
final class PostgresTicketStoreTests: TicketStoreContractTests {
    private var url = ""

    override func setUpWithError() throws {
        switch TestPostgres.shared {
        case .success(let server): url = try server.createDatabase()
        case .failure(let error):
            if !TestPostgres.isInstalled { throw XCTSkip("\(error)") }
            throw error
        }
    }

    override func openStore() throws -> any TicketStore { try PostgresTicketStore(url: url) }

    override func deltaRowCount(ticket: String) throws -> Int {
        let db = try PostgresConnection(url: url)
        return Int(try db.queryOne("SELECT COUNT(*) FROM deltas WHERE ticket = $1", .text(ticket))?.first?.int ?? 0)
    }

    private func seededPostgres() throws -> PostgresTicketStore {
        try XCTUnwrap(try seeded() as? PostgresTicketStore)
    }

    // MARK: Migrations

    func testOpen_emptyDatabase_runsEveryMigrationOnceAndAgainNothing() throws {
        let store = try PostgresTicketStore(url: url)
        XCTAssertEqual(try store.schemaVersion(), PostgresSchema.migrations.count)
        let again = try PostgresTicketStore(url: url)
        XCTAssertEqual(try again.schemaVersion(), PostgresSchema.migrations.count)
        XCTAssertEqual(try again.connection.queryOne("SELECT COUNT(*) FROM peek_schema")?.first?.int, 1)
    }

    /// Nodes that start at once against an empty database: the advisory
    /// lock lets one migrate while the others wait, and they find the work
    /// done. Without it, two CREATE TABLEs race and one start fails.
    func testOpen_threeStoresAtOnceOnAnEmptyDatabase_oneSchemaNoError() throws {
        let url = self.url
        let errors = Mutex<[String]>([])
        let group = DispatchGroup()
        for _ in 0..<3 {
            group.enter()
            Thread {
                do { _ = try PostgresTicketStore(url: url) } catch { errors.withLock { $0.append("\(error)") } }
                group.leave()
            }.start()
        }
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success)
        XCTAssertEqual(errors.withLock { $0 }, [])
        let store = try PostgresTicketStore(url: url)
        XCTAssertEqual(try store.schemaVersion(), PostgresSchema.migrations.count)
        XCTAssertEqual(try store.connection.queryOne("SELECT COUNT(*) FROM peek_schema")?.first?.int, 1)
    }

    /// Whether any row still names a file is answered from an index, not a
    /// scan of every attachment (seq scans disabled, so the plan says which).
    func testAttachmentReferenceCheck_usesTheSha256Index() throws {
        let store = try seededPostgres()
        try store.connection.execute("SET enable_seqscan = off")
        let plan = try store.connection.query("EXPLAIN SELECT 1 FROM attachments WHERE sha256 = $1 LIMIT 1", .text("ab"))
            .compactMap { $0.first?.text }.joined(separator: " ")
        XCTAssertTrue(plan.contains("attachments_sha256"), plan)
    }

    // MARK: Transactions

    /// After an error outside a savepoint PostgreSQL dooms the transaction:
    /// the store says so, later statements fail, and COMMIT (which
    /// PostgreSQL answers with ROLLBACK, not an error) fails too.
    func testFailedStatement_losesTheTransaction_commitFailsAndNothingIsSaved() throws {
        let store = try seededPostgres()
        let t = try XCTUnwrap(try store.ticket("T-1001"))
        try store.begin()
        try store.insertMessage(message(t, seq: 1, body: "before the fault"), mailMessageID: nil, delta: nil)
        XCTAssertFalse(store.transactionLost)
        XCTAssertThrowsError(try store.createTenant(Tenant(id: "acme", name: "again"), at: 1)) { error in
            XCTAssertTrue((error as? StoreError)?.kind == .conflict, "\(error)")
            XCTAssertEqual((error as? StoreError)?.backendCode, "SQLSTATE 23505")
        }
        XCTAssertTrue(store.transactionLost)
        XCTAssertThrowsError(try store.insertMessage(message(t, seq: 2, body: "after"), mailMessageID: nil, delta: nil))
        XCTAssertThrowsError(try store.commit())
        store.rollback()
        XCTAssertFalse(store.transactionLost)
        XCTAssertEqual(try store.recentMessages(ticket: t.id, limit: 10).map(\.body), [])
    }

    /// Within a command's savepoint the same error is undone with the
    /// command: the batch goes on and commits.
    func testFailedStatementInASavepoint_rollbackToSavepointKeepsTheBatch() throws {
        let store = try seededPostgres()
        let t = try XCTUnwrap(try store.ticket("T-1001"))
        try store.begin()
        try store.savepoint()
        XCTAssertThrowsError(try store.createTenant(Tenant(id: "acme", name: "again"), at: 1))
        XCTAssertTrue(store.transactionLost)
        store.rollbackToSavepoint()
        XCTAssertFalse(store.transactionLost)
        try store.insertMessage(message(t, seq: 1, body: "kept"), mailMessageID: nil, delta: nil)
        try store.commit()
        XCTAssertEqual(try store.recentMessages(ticket: t.id, limit: 10).map(\.body), ["kept"])
    }

    /// A row another session holds locked past `lock_timeout` is `.busy`
    /// (SQLSTATE 55P03): the same work may succeed later, as SQLite's busy.
    func testRowLockedByAnotherSessionPastLockTimeout_isBusy() throws {
        let holder = try PostgresConnection(url: url)
        let waiter = try PostgresConnection(url: url)
        try holder.execute("CREATE TABLE t (id TEXT PRIMARY KEY, n INT); INSERT INTO t VALUES ('a', 0)")
        try holder.execute("BEGIN; UPDATE t SET n = 1 WHERE id = 'a'")
        defer { try? holder.execute("ROLLBACK") }
        try waiter.execute("SET lock_timeout = '100ms'")
        XCTAssertThrowsError(try waiter.run("UPDATE t SET n = 2 WHERE id = $1", .text("a"))) { error in
            XCTAssertEqual((error as? StoreError)?.kind, .busy, "\(error)")
            XCTAssertEqual((error as? StoreError)?.backendCode, "SQLSTATE 55P03", "\(error)")
        }
    }

    /// `beginReadOnly` (a batch that could not begin): reads work, and each
    /// write fails as read-only, the code the engine treats as a refusal.
    func testReadOnlyTransaction_readsWorkWritesFailAsReadOnly() throws {
        let store = try seededPostgres()
        store.beginReadOnly()
        try store.savepoint()
        let t = try XCTUnwrap(try store.ticket("T-1001"), "read without the row lock, which read-only refuses")
        XCTAssertThrowsError(try store.insertMessage(message(t, seq: 1, body: "refused"), mailMessageID: nil, delta: nil)) { error in
            XCTAssertEqual((error as? StoreError)?.kind, .readOnly, "\(error)")
        }
        store.rollbackToSavepoint()
        store.rollback()
        XCTAssertEqual(try store.recentMessages(ticket: t.id, limit: 10), [])
        try store.begin()
        try store.insertMessage(message(t, seq: 1, body: "after"), mailMessageID: nil, delta: nil)
        try store.commit()
    }

    func testDurability_isNilBecauseCommitReturnsDurable() throws {
        let store = try seededPostgres()
        XCTAssertNil(store.durability)
        XCTAssertEqual(try store.connection.queryOne("SHOW synchronous_commit")?.first?.text, "on")
        XCTAssertEqual(try store.connection.queryOne("SHOW fsync")?.first?.text, "on")
    }

    /// Two writers on one ticket (two nodes, later): the second one's read
    /// of the ticket waits for the first one's commit and sees the seq it
    /// wrote, so both append at distinct seqs. Without the row lock both
    /// read seq 0 and the second insert at seq 1 is refused.
    func testTicketReadForWriting_locksTheRowUntilCommit_seqsStayDistinct() throws {
        let first = try seededPostgres()
        let second = try PostgresTicketStore(url: url)
        try first.begin()
        var a = try XCTUnwrap(try first.ticket("T-1001"))
        let secondRead = Mutex<Result<Ticket?, StoreError>?>(nil)
        let started = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) let other = second
        Thread {
            started.signal()
            let result: Result<Ticket?, StoreError>
            do throws(StoreError) {
                try other.begin()
                result = .success(try other.ticket("T-1001"))
            } catch { result = .failure(error) }
            secondRead.withLock { $0 = result }
            done.signal()
        }.start()
        started.wait()
        XCTAssertEqual(done.wait(timeout: .now() + 1), .timedOut, "the second read waits on the row lock")
        a.seq += 1
        try first.insertMessage(message(a, seq: a.seq, body: "first writer"), mailMessageID: nil, delta: [0x7B, 0x7D])
        try first.updateTicket(a)
        try first.commit()
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success)
        var b = try XCTUnwrap(try XCTUnwrap(secondRead.withLock { $0 }).get())
        XCTAssertEqual(b.seq, 1, "read after the first commit")
        b.seq += 1
        try second.insertMessage(message(b, seq: b.seq, body: "second writer"), mailMessageID: nil, delta: [0x7B, 0x7D])
        try second.updateTicket(b)
        try second.commit()
        XCTAssertEqual(try first.deltas(ticket: "T-1001", after: 0, limit: 10).map(\.seq), [1, 2])
    }

    /// Two nodes create a ticket at the same moment: the second waits for
    /// the first one's commit and takes the next number. With MAX + 1 both
    /// read the same highest number and the second insert failed on the key.
    func testNextTicketNumber_twoNodesAtOnce_secondWaitsAndTakesTheNext() throws {
        let first = try seededPostgres()
        let second = try PostgresTicketStore(url: url)
        try first.begin()
        let a = try first.nextTicketNumber()
        XCTAssertEqual(a, 1002)
        try first.insertTicket(ticket(a))
        let outcome = Mutex<Result<Int, StoreError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) let other = second
        nonisolated(unsafe) let test = self
        Thread {
            let result: Result<Int, StoreError>
            do throws(StoreError) {
                try other.begin()
                let b = try other.nextTicketNumber()
                try other.insertTicket(test.ticket(b))
                try other.commit()
                result = .success(b)
            } catch {
                other.rollback()
                result = .failure(error)
            }
            outcome.withLock { $0 = result }
            done.signal()
        }.start()
        XCTAssertEqual(done.wait(timeout: .now() + 1), .timedOut, "the second node waits for the first one's number")
        try first.commit()
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(try XCTUnwrap(outcome.withLock { $0 }).get(), 1003)
        XCTAssertEqual(try first.tickets(tenant: "acme", limit: 10).map(\.number), [1001, 1002, 1003])
    }

    /// Text and bytes through parameters: quotes, backslashes and non-ASCII
    /// arrive as written (no SQL is built from values), and bytea carries
    /// every byte value.
    func testParameters_textAndBytesRoundTripVerbatim() throws {
        let store = try seededPostgres()
        let name = "O'Brien \\ \"quoted\" ; DROP TABLE tenants; -- é 日本"
        try store.createTechnician(Technician(tenant: "acme", id: "tech-q", name: name, email: "q@acme.example"))
        XCTAssertEqual(try store.technician(tenant: "acme", id: "tech-q")?.name, name)
        let bytes = (0...255).map(UInt8.init)
        try store.saveCommandAnswer(CommandKey(tenant: "acme", technician: "tech-1", id: "b"), at: 1, answer: bytes)
        XCTAssertEqual(try store.commandAnswer(CommandKey(tenant: "acme", technician: "tech-1", id: "b"), notBefore: 0), bytes)
        try store.saveCommandAnswer(CommandKey(tenant: "acme", technician: "tech-1", id: "e"), at: 1, answer: [])
        XCTAssertEqual(try store.commandAnswer(CommandKey(tenant: "acme", technician: "tech-1", id: "e"), notBefore: 0), [])
    }

    /// PostgreSQL text cannot hold U+0000, and libpq reads a text parameter
    /// only up to its first NUL: sent as it was, this body was saved as
    /// "before" with no error. Now it is refused before it reaches the
    /// server, so the batch is not doomed either and the rest commits.
    func testTextWithNUL_isRefusedWholeNotCutAndTheBatchGoesOn() throws {
        let store = try seededPostgres()
        let t = try XCTUnwrap(try store.ticket("T-1001"))
        try store.begin()
        XCTAssertThrowsError(try store.insertMessage(message(t, seq: 1, body: "before\u{0}after"), mailMessageID: nil, delta: nil)) { error in
            XCTAssertTrue("\(error)".contains("U+0000"), "\(error)")
        }
        XCTAssertFalse(store.transactionLost)
        try store.insertMessage(message(t, seq: 2, body: "kept"), mailMessageID: nil, delta: nil)
        try store.commit()
        XCTAssertEqual(try store.messages(ticket: "T-1001", after: 0).map(\.body), ["kept"])
    }

    /// The server closed the store's connection (a restart, a failover, an
    /// administrator): the next transaction reconnects instead of every
    /// batch failing from then on. Nothing was open, so nothing is lost.
    func testConnectionClosedByTheServer_nextBeginReconnects() throws {
        let store = try seededPostgres()
        let pid = try XCTUnwrap(try store.connection.queryOne("SELECT pg_backend_pid()")?.first?.int)
        let admin = try PostgresConnection(url: url)
        XCTAssertEqual(try admin.queryOne("SELECT pg_terminate_backend($1::int)", .int(pid))?.first?.int, 1)
        try store.begin()
        try store.createTenant(Tenant(id: "after", name: "After"), at: 1)
        try store.commit()
        XCTAssertEqual(try store.tenant("after")?.name, "After")
        XCTAssertNotEqual(try store.connection.queryOne("SELECT pg_backend_pid()")?.first?.int, pid)
    }

    func testUnreachableServer_failsWithAConnectionError() {
        XCTAssertThrowsError(try PostgresTicketStore(url: "postgres://postgres@127.0.0.1:1/none?connect_timeout=5")) { error in
            XCTAssertEqual((error as? StoreError)?.kind, .unavailable, "\(error)")
            XCTAssertTrue("\(error)".contains("cannot connect to PostgreSQL"), "\(error)")
        }
    }
}
