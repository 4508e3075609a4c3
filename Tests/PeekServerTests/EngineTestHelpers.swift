import Foundation
import XCTest
import PeekCore
import PeekStore
@testable import PeekEngine
@testable import PeekServer
import PeekTestSupport

extension TestServer {
    /// Holds the engine thread, as a long batch would, until the returned
    /// semaphore is signalled; returns once the engine is held. Whatever
    /// arrives meanwhile is taken as one batch when it is released.
    func holdEngine(file: StaticString = #filePath, line: UInt = #line) throws -> DispatchSemaphore {
        let release = DispatchSemaphore(value: 0)
        let holding = DispatchSemaphore(value: 0)
        let engine = try XCTUnwrap(server.engine, file: file, line: line)
        // Never held for good: a test that throws before it signals must
        // not leave `stop()` waiting on the engine forever.
        engine.submit(.run { _ in holding.signal(); _ = release.wait(timeout: .now() + 30) })
        XCTAssertEqual(holding.wait(timeout: .now() + 10), .success, "the engine never took the holding job", file: file, line: line)
        return release
    }

    /// Waits until `count` jobs (by default the server's `maxEngineBacklog`)
    /// are queued behind a held engine.
    func waitForQueuedJobs(_ count: Int? = nil, timeout: Double = 10, file: StaticString = #filePath, line: UInt = #line) throws {
        let engine = try XCTUnwrap(server.engine, file: file, line: line)
        let deadline = Date().addingTimeInterval(timeout)
        while engine.queuedJobs < (count ?? engine.config.maxEngineBacklog) {
            guard Date() < deadline else { return XCTFail("the jobs never reached the engine's queue", file: file, line: line) }
            usleep(5_000)
        }
    }

    /// A real write failure in the middle of a note: once a note with the
    /// body "note boom" is written, updating its ticket's row aborts. Drop
    /// the trigger `fail_boom` on the returned connection to end it.
    func failWritesAfterNoteBoom() throws -> Database {
        let db = try Database(path: directory + "/peek.sqlite")
        try db.execute("""
            CREATE TRIGGER fail_boom BEFORE UPDATE ON tickets
            WHEN EXISTS (SELECT 1 FROM messages WHERE ticket = NEW.id AND body = 'note boom')
            BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END;
            """)
        return db
    }

    /// Caps the engine's own SQLite connection at `extra` pages more than
    /// the database has (nil lifts the cap). Past it SQLite fails writes
    /// with SQLITE_FULL exactly as on a full disk.
    func limitDatabasePages(extra: Int?, file: StaticString = #filePath, line: UInt = #line) throws {
        let engine = try XCTUnwrap(server.engine, file: file, line: line)
        let done = DispatchSemaphore(value: 0)
        let outcome = Unshared<String?>(nil)
        engine.submit(.run { engine in
            do {
                guard let db = (engine.store as? SQLiteTicketStore)?.db else { throw TestWebSocketClient.Failure("the store is not SQLite") }
                let pages = try db.queryOne("PRAGMA page_count")?.first?.int ?? 0
                // SQLite clamps the limit to its own maximum.
                try db.execute("PRAGMA max_page_count = \(extra.map { pages + Int64($0) } ?? Int64(Int32.max))")
            } catch {
                outcome.value = "\(error)"
            }
            done.signal()
        })
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success, file: file, line: line)
        XCTAssertNil(outcome.value, file: file, line: line)
    }
}
