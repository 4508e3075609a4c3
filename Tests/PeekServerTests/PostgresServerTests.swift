import Foundation
import XCTest
import PeekCore
import PeekPostgres
import PeekTestSupport

/// peekd with `--database postgres://...` (config.databaseURL) against a
/// real PostgreSQL 15: the whole path from a technician's note to the
/// database and back after a restart. Several nodes: ClusterTests.
final class PostgresServerTests: XCTestCase {
    func testPeekd_onPostgres_noteCommitsSurvivesRestartAndResumeMissesNothing() throws {
        let postgres: TestPostgres
        switch TestPostgres.shared {
        case .success(let server): postgres = server
        case .failure(let error):
            if !TestPostgres.isInstalled { throw XCTSkip("\(error)") }
            throw error
        }
        let url = try postgres.createDatabase()
        let directory = NSTemporaryDirectory() + "peekd-pg-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }

        var server = try TestServer(directory: directory) { $0.databaseURL = url }
        let ticket = try server.seed()[0]
        var tech = try server.technician("tech-1")
        try tech.subscribe(ticket)
        let posted = try tech.run("n-1", ticket, "note", ["body": "kept in PostgreSQL"])
        XCTAssertEqual(posted["type"]?.stringValue, "result", "\(posted)")
        let seq = try XCTUnwrap(posted["seq"]?.intValue)
        XCTAssertEqual(try tech.durableDeltas(ticket, through: seq).last?["data"]?["body"]?.stringValue, "kept in PostgreSQL")
        tech.close()
        server.stop()
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/peek.sqlite"), "no SQLite file beside PostgreSQL")

        // The note is in the database, committed when `result` was sent.
        let db = try PostgresConnection(url: url)
        XCTAssertEqual(try db.queryOne("SELECT body FROM messages WHERE ticket = $1 AND seq = $2", .text(ticket), .int(Int64(seq)))?.first?.text,
                       "kept in PostgreSQL")

        // A new process on the same database: resume from before the note
        // gets exactly it, resume from it gets nothing, a resend of the
        // command id gets its first answer.
        server = try TestServer(directory: directory) { $0.databaseURL = url }
        defer { server.stop() }
        tech = try server.technician("tech-1")
        let (missed, end) = try tech.resume(ticket, since: seq - 1)
        XCTAssertEqual(missed.compactMap { $0["seq"]?.intValue }, [seq])
        XCTAssertEqual(missed.first?["data"]?["body"]?.stringValue, "kept in PostgreSQL")
        XCTAssertEqual(end["type"]?.stringValue, "subscribed", "\(end)")
        XCTAssertEqual(end["seq"]?.intValue, seq)
        let (none, upToDate) = try tech.resume(ticket, since: seq, id: "r2")
        XCTAssertEqual(none, [])
        XCTAssertEqual(upToDate["seq"]?.intValue, seq)
        let resent = try tech.run("n-1", ticket, "note", ["body": "kept in PostgreSQL"])
        XCTAssertEqual(resent["seq"]?.intValue, seq, "the first answer, not a second note: \(resent)")
        XCTAssertEqual(try db.queryOne("SELECT COUNT(*) FROM messages WHERE ticket = $1", .text(ticket))?.first?.int, 1)
    }
}
