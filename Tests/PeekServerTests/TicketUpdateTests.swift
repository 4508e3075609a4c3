import XCTest
import Foundation
import PeekCore
import PeekTestSupport

/// The back end updates a ticket's contact and subject (`PATCH
/// /v1/tickets/{id}`, protocol.md §9.2): a durable `ticket.updated` with the
/// changed fields reaches every viewer, and replies go to the new address.
final class TicketUpdateTests: XCTestCase {
    func testPatch_contactEmailAndSubject_durableTicketUpdatedToViewersAndReplyUsesIt() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed(tenant: "acme", technicians: 2, tickets: 1, contactEmail: nil)[0]
        let tech = try server.technician()
        try tech.send(["type": "subscribe", "id": "s", "ticket": .string(ticket)])
        let snapshot = try tech.next(type: "snapshot")
        let seqBefore = try XCTUnwrap(snapshot["seq"]?.intValue)
        let version = try XCTUnwrap(snapshot["state"]?["ticket"]?["version"]?.intValue)
        let name = try XCTUnwrap(snapshot["state"]?["ticket"]?["contact"]?["name"]?.stringValue)
        XCTAssertEqual(try tech.commandAnswer("r1", ticket, "reply", ["body": "Hello"])["code"]?.stringValue, "no_contact_email")

        let r = try server.api("PATCH", "/v1/tickets/\(ticket)",
                               ["subject": "Printer jams on tray 2", "contact": ["email": "pat@example.com"]])
        XCTAssertEqual(r.status, 200, r.text)
        XCTAssertEqual(r.json?["seq"]?.intValue, seqBefore + 1)
        XCTAssertEqual(r.json?["changed"], ["subject", "contact"])

        let delta = try tech.nextDelta("ticket.updated", ticket: ticket)
        XCTAssertEqual(delta["seq"]?.intValue, seqBefore + 1)
        let data = try XCTUnwrap(delta["data"])
        XCTAssertEqual(data["subject"]?.stringValue, "Printer jams on tray 2")
        XCTAssertEqual(data["contact"]?["email"]?.stringValue, "pat@example.com")
        XCTAssertEqual(data["contact"]?["name"]?.stringValue, name, "the name not sent is kept")
        XCTAssertEqual(data["version"]?.intValue, version, "version guards technicians' fields; a contact edit leaves it")
        XCTAssertNil(data["status"], "only the changed fields")

        let state = try XCTUnwrap(server.api("GET", "/v1/tickets/\(ticket)").json?["state"]?["ticket"])
        XCTAssertEqual(state["subject"]?.stringValue, "Printer jams on tray 2")
        XCTAssertEqual(state["contact"]?["email"]?.stringValue, "pat@example.com")
        // The reply now gets as far as the (missing) email account.
        XCTAssertEqual(try tech.commandAnswer("r2", ticket, "reply", ["body": "Hello"])["code"]?.stringValue, "no_email_account")

        // The same values again: nothing changes, no delta.
        let same = try server.api("PATCH", "/v1/tickets/\(ticket)", ["contact": ["email": "pat@example.com"]])
        XCTAssertEqual(same.status, 200, same.text)
        XCTAssertEqual(same.json?["changed"], [])
        XCTAssertEqual(same.json?["seq"]?.intValue, seqBefore + 1)
        // Email null removes it.
        let cleared = try server.api("PATCH", "/v1/tickets/\(ticket)", ["contact": ["name": "Pat Lee", "email": .null]])
        XCTAssertEqual(cleared.status, 200, cleared.text)
        let second = try tech.nextDelta("ticket.updated", ticket: ticket)
        XCTAssertEqual(second["seq"]?.intValue, seqBefore + 2)
        XCTAssertEqual(second["data"]?["contact"], ["name": "Pat Lee", "email": .null])
        XCTAssertEqual(Match.count(tech.drain(for: 0.3), Match.delta("ticket.updated", ticket)), 0, "the no-op made no delta")
    }

    func testPatch_badBodiesUnknownTicketAndNoToken_refusedAndNothingChanged() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed(tenant: "acme", technicians: 1, tickets: 1)[0]
        let before = try XCTUnwrap(server.api("GET", "/v1/tickets/\(ticket)").json)
        // The ticket and its seq; the SLA's `remaining` moves with time.
        let unchanged = { (v: JSONValue) in [v["seq"], v["state"]?["ticket"]] }

        let bad: [JSONValue] = [
            ["contact": ["email": "not-an-address"]],
            ["contact": ["name": ""]],
            ["contact": "Pat"],
            ["subject": ""],
            ["subject": .string(String(repeating: "x", count: 501))],
            ["priority": "high"],   // not a field this call changes: nothing to do is a mistake worth telling
            [:],
        ]
        for body in bad {
            let r = try server.api("PATCH", "/v1/tickets/\(ticket)", body)
            XCTAssertEqual(r.status, 400, "\(body): \(r.text)")
            XCTAssertEqual(r.json?["error"]?["code"]?.stringValue, "invalid", "\(body)")
            XCTAssertFalse(r.json?["error"]?["message"]?.stringValue?.isEmpty ?? true)
        }
        XCTAssertEqual(try server.api("PATCH", "/v1/tickets/T-999999", ["subject": "x"]).status, 404)
        let noToken = try server.request("PATCH", "/v1/tickets/\(ticket)", body: JSONWriter.encode(["subject": "x"]), service: false)
        XCTAssertEqual(noToken.status, 401)
        let after = try XCTUnwrap(server.api("GET", "/v1/tickets/\(ticket)").json)
        XCTAssertEqual(unchanged(after), unchanged(before), "nothing changed")
    }
}
