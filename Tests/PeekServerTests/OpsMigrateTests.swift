import Foundation
import XCTest
import PeekCore
import PeekPostgres
import PeekStore
import PeekTestSupport

/// `peekd migrate` (the real binary) from a SQLite server's --data into a
/// PostgreSQL database, and a server started on that database: the same
/// log, the same first answers, the same attachment files.
final class OpsMigrateTests: TemporaryDirectoryTestCase {
    private func newDatabase() throws -> String {
        switch TestPostgres.shared {
        case .success(let server): return try server.createDatabase()
        case .failure(let error):
            if !TestPostgres.isInstalled { throw XCTSkip("\(error)") }
            throw error
        }
    }

    private func crlf(_ text: String) -> [UInt8] { Array(text.replacingOccurrences(of: "\n", with: "\r\n").utf8) }

    private func count(_ table: String, in db: PostgresConnection) throws -> Int64? {
        try db.queryOne("SELECT COUNT(*) FROM \(table)")?.first?.int
    }

    func testMigrate_populatedServer_postgresNodeResumesWithExactlyWhatWasMissed() throws {
        _ = try PeekdSubprocess.binary()
        let url = try newDatabase()
        let data = directory + "/data"
        let source = try TestServer(directory: data)
        // Two tenants; acme's SLA policy set before its tickets (targets are fixed at creation).
        _ = try source.api("POST", "/v1/tenants", ["id": "acme", "name": "Acme"])
        let policy = try source.api("PUT", "/v1/tenants/acme/sla-policy", ["normal": ["response": 3600, "resolution": 7200]])
        XCTAssertEqual(policy.status, 200, policy.text)
        let ticket = try source.seed(tickets: 2)[0]
        let other = try source.seed(tenant: "globex", tickets: 1)[0]
        let (mailTicket, number) = try source.createTicket(subject: "Printer jams")

        let tech = try source.technician("tech-1")
        XCTAssertEqual(try tech.run("n-1", ticket, "note", ["body": "seen by the viewer"])["type"]?.stringValue, "result")
        let globexTech = try source.technician("tech-1", tenant: "globex")
        XCTAssertEqual(try globexTech.run("g-1", other, "note", ["body": "globex's own"])["type"]?.stringValue, "result")
        globexTech.close()
        // The viewer records where it is, then goes away.
        let lastSeen = try source.storedTicket(ticket).seq
        // Posted while the viewer is away: what it must get back, in order.
        var missed: [(seq: Int, body: String)] = []
        for i in 2...4 {
            let answer = try tech.run("n-\(i)", ticket, "note", ["body": .string("missed \(i)")])
            missed.append((try XCTUnwrap(answer["seq"]?.intValue, "\(answer)"), "missed \(i)"))
        }
        // A change that is not a message (its delta in the `deltas` table),
        // answered from `command_answers` when resent.
        let timerAnswer = try tech.run("timer-1", ticket, "timer_start")
        XCTAssertEqual(timerAnswer["type"]?.stringValue, "result", "\(timerAnswer)")
        let statusAnswer = try tech.run("status-1", ticket, "set_status", ["status": "open"])
        XCTAssertEqual(statusAnswer["type"]?.stringValue, "result", "\(statusAnswer)")
        tech.close()
        let pdf = Array("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n".utf8)
        let mail = try source.request("POST", "/v1/tenants/acme/inbound-email", body: crlf("""
            From: Casey Customer <customer@example.com>
            To: support@acme.example
            Subject: Re: Printer jams [#\(number)]
            Message-ID: <migrate.1@example.com>
            MIME-Version: 1.0
            Content-Type: multipart/mixed; boundary="b1"

            --b1
            Content-Type: text/plain; charset=utf-8

            The report is attached.

            --b1
            Content-Type: application/pdf; name="report.pdf"
            Content-Disposition: attachment; filename="report.pdf"
            Content-Transfer-Encoding: base64

            \(Data(pdf).base64EncodedString(options: .lineLength76Characters).replacingOccurrences(of: "\r\n", with: "\n"))
            --b1--

            """), contentType: "message/rfc822")
        XCTAssertEqual(mail.status, 201, mail.text)
        let attachment = try XCTUnwrap(mail.json?["message"]?["attachments"]?.arrayValue?.first?["id"]?.stringValue, mail.text)
        let sourceEnd = try source.storedTicket(ticket)
        source.stop()
        let sqliteDue = try Database(path: data + "/peek.sqlite").queryOne("SELECT response_due, resolution_due FROM tickets WHERE id = ?", .text(ticket))

        let migrate = try PeekdSubprocess.run(["migrate", "--data", data, "--database", url])
        XCTAssertEqual(migrate.status, 0, migrate.stderr)
        XCTAssertTrue(migrate.stdout.hasPrefix("peekd migrate: copied tenants 2, "), migrate.stdout)
        XCTAssertTrue(migrate.stdout.contains("attachments stay in \(data)/attachments"), migrate.stdout)

        let target = try TestServer(directory: data) { $0.databaseURL = url }
        defer { target.stop() }
        let viewer = try target.technician("tech-2")
        defer { viewer.close() }
        let (deltas, end) = try viewer.resume(ticket, since: lastSeen)
        XCTAssertEqual(end["type"]?.stringValue, "subscribed", "\(end)")
        let seqs = deltas.compactMap { $0["seq"]?.intValue }
        XCTAssertEqual(seqs, Array((lastSeen + 1)...sourceEnd.seq), "not exactly the seqs missed, in order")
        let notes = deltas.filter { $0["kind"]?.stringValue == "message.created" && $0["data"]?["author"]?["id"]?.stringValue == "tech-1" }
        XCTAssertEqual(notes.compactMap { $0["seq"]?.intValue }, missed.map(\.seq))
        XCTAssertEqual(notes.compactMap { $0["data"]?["body"]?.stringValue }, missed.map(\.body))
        XCTAssertEqual(end["seq"]?.intValue, sourceEnd.seq)

        // The same command id gets its first answer; a new note follows the copied log.
        let author = try target.technician("tech-1")
        defer { author.close() }
        let resent = try author.run("n-4", ticket, "note", ["body": "missed 4"])
        XCTAssertEqual(resent["seq"]?.intValue, missed.last?.seq, "not the first answer: \(resent)")
        XCTAssertEqual(try author.run("timer-1", ticket, "timer_start"), timerAnswer)
        XCTAssertEqual(try author.run("status-1", ticket, "set_status", ["status": "open"]), statusAnswer)
        XCTAssertEqual(try author.run("n-5", ticket, "note", ["body": "after the move"])["seq"]?.intValue, sourceEnd.seq + 1)

        let download = try target.request("GET", "/v1/attachments/\(attachment)")
        XCTAssertEqual(download.status, 200, download.text)
        XCTAssertEqual(download.body, pdf, "the attachment came back different")
        XCTAssertEqual(try target.storedTicket(mailTicket).messages.last?["body"]?.stringValue, "The report is attached.")
        let globex = try target.technician("tech-1", tenant: "globex")
        defer { globex.close() }
        let (globexLog, _) = try globex.resume(other, since: 0)
        XCTAssertTrue(globexLog.contains { $0["data"]?["body"]?.stringValue == "globex's own" }, "\(globexLog)")
        // SLA state: the policy, and the ticket's targets as SQLite held them.
        let db = try PostgresConnection(url: url)
        XCTAssertEqual(try db.queryOne("SELECT response, resolution FROM sla_policies WHERE tenant = 'acme' AND priority = 'normal'"),
                       [.int(3600), .int(7200)])
        let dueSQL = "SELECT response_due, resolution_due FROM tickets WHERE id = $1"
        let due = try db.queryOne(dueSQL, .text(ticket))
        XCTAssertEqual(due, sqliteDue)
        XCTAssertNotEqual(due?.first, .null, "the policy gave the ticket no target: nothing was compared")
    }

    func testMigrate_intoNonEmptyDatabase_refusedAndNothingChanged() throws {
        _ = try PeekdSubprocess.binary()
        let url = try newDatabase()
        let source = try TestServer(directory: directory + "/data")
        try source.seed(tickets: 2)
        source.stop()
        let occupied = try TestServer(directory: directory + "/occupied") { $0.databaseURL = url }
        try occupied.seed(tenant: "already-here", tickets: 1)
        occupied.stop()
        let db = try PostgresConnection(url: url)
        let before = try ["tenants", "tickets", "deltas", "messages"].map { try count($0, in: db) }

        let refused = try PeekdSubprocess.run(["migrate", "--data", directory + "/data", "--database", url])
        XCTAssertEqual(refused.status, 2, refused.stdout)
        XCTAssertTrue(refused.stderr.contains("already holds 1 tenant(s)"), refused.stderr)
        XCTAssertTrue(refused.stderr.contains("nothing was copied"), refused.stderr)
        XCTAssertEqual(try ["tenants", "tickets", "deltas", "messages"].map { try count($0, in: db) }, before)
    }

    /// A column one store has and the other lacks stops the copy by name,
    /// before a row is written: it would otherwise be dropped silently.
    func testMigrate_schemasDiffer_refusedNamingTheColumn() throws {
        _ = try PeekdSubprocess.binary()
        let url = try newDatabase()
        let source = try TestServer(directory: directory + "/data")
        try source.seed(tickets: 1)
        source.stop()
        try Database(path: directory + "/data/peek.sqlite").execute("ALTER TABLE tickets ADD COLUMN colour TEXT")

        let refused = try PeekdSubprocess.run(["migrate", "--data", directory + "/data", "--database", url])
        XCTAssertEqual(refused.status, 2, refused.stdout)
        XCTAssertTrue(refused.stderr.contains("column tickets.colour is in SQLite only"), refused.stderr)
        XCTAssertEqual(try count("tenants", in: try PostgresConnection(url: url)), 0)
    }
}
