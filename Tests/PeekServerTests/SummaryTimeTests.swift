import XCTest
import Foundation
import PeekCore
import PeekTestSupport

/// The out-of-band AI summary (`POST /v1/tickets/{id}/summary`) and the
/// Time + contract card (`time` in the snapshot, `time.updated`).
final class SummaryTimeTests: XCTestCase {
    private func summaryRequest(_ server: TestServer, _ ticket: String, _ body: [UInt8], service: Bool = true) throws -> TestServer.Response {
        try server.request("POST", "/v1/tickets/\(ticket)/summary", body: body, service: service)
    }

    func testSummary_post_201AndDurableDeltaToViewersAndInSnapshot() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed(tenant: "acme", technicians: 2, tickets: 1)[0]
        let tech = try server.technician()
        try tech.send(["type": "subscribe", "id": "s", "ticket": .string(ticket)])
        let snapshot = try tech.next(type: "snapshot")
        XCTAssertEqual(snapshot["state"]?["summary"], .null, "nothing to show is null, never missing")
        let seqBefore = try XCTUnwrap(snapshot["seq"]?.intValue)

        let r = try server.api("POST", "/v1/tickets/\(ticket)/summary",
                               ["text": "Fan noise after BIOS update; rollback suggested.", "model": "peek-summarizer-2", "covers": .int(seqBefore)])
        XCTAssertEqual(r.status, 201, r.text)
        XCTAssertEqual(r.json?["seq"]?.intValue, seqBefore + 1)
        XCTAssertEqual(r.json?["summary"]?["text"]?.stringValue, "Fan noise after BIOS update; rollback suggested.")

        let delta = try tech.nextDelta("summary.updated", ticket: ticket)
        XCTAssertEqual(delta["seq"]?.intValue, seqBefore + 1)
        let data = try XCTUnwrap(delta["data"])
        XCTAssertEqual(data["text"]?.stringValue, "Fan noise after BIOS update; rollback suggested.")
        XCTAssertEqual(data["model"]?.stringValue, "peek-summarizer-2")
        XCTAssertEqual(data["covers"]?.intValue, seqBefore)
        let at = try XCTUnwrap(data["at"]?.stringValue.flatMap(Timestamp.parse))
        XCTAssertLessThan(abs(at - Int64(Date().timeIntervalSince1970 * 1000)), 10_000)

        // A second summary without `covers`: the field is there, null.
        let second = try server.api("POST", "/v1/tickets/\(ticket)/summary", ["text": "Resolved by rollback.", "model": "peek-summarizer-2"])
        XCTAssertEqual(second.status, 201, second.text)
        let next = try tech.nextDelta("summary.updated", ticket: ticket)
        XCTAssertEqual(next["seq"]?.intValue, seqBefore + 2)
        XCTAssertEqual(next["data"]?["covers"], .null)

        let other = try server.technician("tech-2")
        try other.send(["type": "subscribe", "id": "s2", "ticket": .string(ticket)])
        let summary = try XCTUnwrap(other.next(type: "snapshot")["state"]?["summary"])
        XCTAssertEqual(summary["text"]?.stringValue, "Resolved by rollback.")
        XCTAssertEqual(summary["model"]?.stringValue, "peek-summarizer-2")
        XCTAssertEqual(summary["covers"], .null)
        XCTAssertNotNil(summary["at"]?.stringValue)
    }

    func testSummary_badBody_400JSONErrorAndNothingChanged() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed(tenant: "acme", technicians: 1, tickets: 1)[0]
        let bodies: [(String, [UInt8])] = [
            ("not JSON", Array("summary: yes".utf8)),
            ("an array", Array("[1,2]".utf8)),
            ("no text", JSONWriter.encode(["model": "m"])),
            ("empty text", JSONWriter.encode(["text": "", "model": "m"])),
            ("no model", JSONWriter.encode(["text": "t"])),
            ("text not a string", JSONWriter.encode(["text": 5, "model": "m"])),
            ("negative covers", JSONWriter.encode(["text": "t", "model": "m", "covers": -1])),
            ("covers a string", JSONWriter.encode(["text": "t", "model": "m", "covers": "7"])),
        ]
        for (what, body) in bodies {
            let r = try summaryRequest(server, ticket, body)
            XCTAssertEqual(r.status, 400, "\(what): \(r.text)")
            XCTAssertEqual(r.headers["content-type"]?.hasPrefix("application/json"), true, what)
            XCTAssertEqual(r.json?["error"]?["code"]?.stringValue, "invalid", "\(what): \(r.text)")
            XCTAssertFalse(r.json?["error"]?["message"]?.stringValue?.isEmpty ?? true, what)
        }
        let state = try XCTUnwrap(server.api("GET", "/v1/tickets/\(ticket)").json)
        XCTAssertEqual(state["seq"]?.intValue, 0)
        XCTAssertEqual(state["state"]?["summary"], .null)
    }

    func testSummary_unknownTicket_404() throws {
        let server = try TestServer()
        defer { server.stop() }
        try server.seed(tenant: "acme", technicians: 1, tickets: 1)
        let r = try server.api("POST", "/v1/tickets/T-424242/summary", ["text": "t", "model": "m"])
        XCTAssertEqual(r.status, 404)
        XCTAssertEqual(r.json?["error"]?["code"]?.stringValue, "not_found")
    }

    func testSummary_withoutServiceToken_401() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed(tenant: "acme", technicians: 1, tickets: 1)[0]
        let body = JSONWriter.encode(["text": "t", "model": "m"])
        XCTAssertEqual(try summaryRequest(server, ticket, body, service: false).status, 401)
        // A technician's token is not the service token either.
        let asTech = try server.request("POST", "/v1/tickets/\(ticket)/summary", body: body, token: server.token(tenant: "acme", user: "tech-1"))
        XCTAssertEqual(asTech.status, 401)
        XCTAssertEqual(try server.api("GET", "/v1/tickets/\(ticket)").json?["seq"]?.intValue, 0)
    }

    // MARK: Time + contract

    func testTime_snapshotAndTimer_activeEntriesTotalContract() throws {
        let server = try TestServer()
        defer { server.stop() }
        try server.seed(tenant: "acme", technicians: 2, tickets: 0)
        let ticket = try AgentFixture.createTicket(server, asset: nil, extra: ["contract": "Gold 24x7, 10 h/month"])
        let tech = try server.technician()
        try tech.send(["type": "subscribe", "id": "s", "ticket": .string(ticket)])
        let time = try XCTUnwrap(tech.next(type: "snapshot")["state"]?["time"]?.objectValue)
        XCTAssertEqual(Set(time.keys), ["active", "entries", "entry_count", "total", "contract", "contract_used", "contract_period_start"])
        XCTAssertEqual(time["contract_used"], .int(0))
        XCTAssertEqual(time["active"], .null)
        XCTAssertEqual(time["entries"], .array([]))
        XCTAssertEqual(time["entry_count"], .int(0))
        XCTAssertEqual(time["total"], .int(0))
        XCTAssertEqual(time["contract"]?.stringValue, "Gold 24x7, 10 h/month")

        XCTAssertEqual(try tech.commandAnswer("t1", ticket, "timer_start")["type"]?.stringValue, "result")
        let started = try tech.nextDelta("time.updated", ticket: ticket)
        XCTAssertNotNil(started["seq"]?.intValue)
        XCTAssertEqual(started["data"]?["active"]?["technician"]?["id"]?.stringValue, "tech-1")
        XCTAssertNotNil(started["data"]?["active"]?["started_at"]?.stringValue.flatMap(Timestamp.parse))
        XCTAssertEqual(started["data"]?["contract"]?.stringValue, "Gold 24x7, 10 h/month")
        XCTAssertEqual(try tech.commandAnswer("t2", ticket, "timer_start")["code"]?.stringValue, "conflict")

        XCTAssertEqual(try tech.commandAnswer("t3", ticket, "timer_stop", ["note": "Rolled back BIOS"])["type"]?.stringValue, "result")
        let stopped = try tech.nextDelta("time.updated", ticket: ticket)
        XCTAssertEqual(stopped["data"]?["active"], .null)
        let entries = try XCTUnwrap(stopped["data"]?["entries"]?.arrayValue)
        XCTAssertEqual(entries.count, 1)
        XCTAssertEqual(entries.first?["note"]?.stringValue, "Rolled back BIOS")
        XCTAssertEqual(entries.first?["technician"]?["name"]?.stringValue, "Tech 1")
        XCTAssertEqual(stopped["data"]?["total"]?.intValue, entries.first?["seconds"]?.intValue)
        XCTAssertEqual(try tech.commandAnswer("t4", ticket, "timer_stop")["code"]?.stringValue, "invalid")

        let other = try server.technician("tech-2")
        try other.send(["type": "subscribe", "id": "s2", "ticket": .string(ticket)])
        let after = try XCTUnwrap(other.next(type: "snapshot")["state"]?["time"])
        XCTAssertEqual(after["entries"]?.arrayValue?.count, 1)
        XCTAssertEqual(after["active"], .null)
        XCTAssertEqual(after["contract"]?.stringValue, "Gold 24x7, 10 h/month")
    }

    /// Contract hours are computed from logged time: entries on every
    /// ticket of the same client and contract this month count; another
    /// client's, another contract's and no-contract tickets' do not.
    func testTime_manualEntriesMoveContractHoursAcrossTheContractsTickets() throws {
        let server = try TestServer()
        defer { server.stop() }
        try server.seed(tenant: "acme", technicians: 1, tickets: 0)
        let gold = ["contract": JSONValue.string("Gold, 10 h/month")]
        let first = try AgentFixture.createTicket(server, asset: nil, extra: gold)
        let second = try AgentFixture.createTicket(server, asset: nil, extra: gold)
        let otherClient = try AgentFixture.createTicket(server, asset: nil, extra: gold.merging(["client": "Globex"]) { $1 })
        let otherContract = try AgentFixture.createTicket(server, asset: nil, extra: ["contract": "Silver, 4 h/month"])
        let tech = try server.technician()
        try tech.send(["type": "subscribe", "id": "s", "ticket": .string(first)])
        let snapshot = try XCTUnwrap(tech.next(type: "snapshot")["state"]?["time"])
        XCTAssertEqual(snapshot["contract_used"], .int(0))
        let periodStart = try XCTUnwrap(snapshot["contract_period_start"]?.stringValue.flatMap(Timestamp.parse))
        var utc = Calendar(identifier: .gregorian)
        utc.timeZone = TimeZone(identifier: "UTC")!
        let parts = utc.dateComponents([.year, .month, .day, .hour, .minute], from: Date(timeIntervalSince1970: Double(periodStart) / 1000))
        XCTAssertEqual([parts.day, parts.hour, parts.minute], [1, 0, 0], "the first of the month, UTC")
        XCTAssertLessThan(periodStart, Int64(Date().timeIntervalSince1970 * 1000))

        XCTAssertEqual(try tech.commandAnswer("m1", first, "time_add", ["seconds": 1800, "note": "Phone call with Casey"])["type"]?.stringValue, "result")
        let added = try tech.nextDelta("time.updated", ticket: first)
        XCTAssertEqual(added["data"]?["total"], .int(1800))
        XCTAssertEqual(added["data"]?["contract_used"], .int(1800))
        XCTAssertEqual(added["data"]?["active"], .null, "a manual entry starts no timer")
        let entry = try XCTUnwrap(added["data"]?["entries"]?.arrayValue?.last)
        XCTAssertEqual(entry["note"]?.stringValue, "Phone call with Casey")
        XCTAssertEqual(entry["seconds"], .int(1800))
        XCTAssertEqual(entry["technician"]?["id"]?.stringValue, "tech-1")
        let started = try XCTUnwrap(entry["started_at"]?.stringValue.flatMap(Timestamp.parse))
        XCTAssertLessThan(abs(started + 1_800_000 - Int64(Date().timeIntervalSince1970 * 1000)), 10_000, "the entry ends now")

        for (i, ticket) in [second, otherClient, otherContract].enumerated() {
            XCTAssertEqual(try tech.commandAnswer("m\(i + 2)", ticket, "time_add", ["seconds": 600])["type"]?.stringValue, "result")
        }
        // The second ticket of the same contract counts; the other two do not.
        XCTAssertEqual(try server.api("GET", "/v1/tickets/\(first)").json?["state"]?["time"]?["contract_used"], .int(2400))
        XCTAssertEqual(try server.api("GET", "/v1/tickets/\(second)").json?["state"]?["time"]?["contract_used"], .int(2400))
        XCTAssertEqual(try server.api("GET", "/v1/tickets/\(otherClient)").json?["state"]?["time"]?["contract_used"], .int(600))
        XCTAssertEqual(try server.api("GET", "/v1/tickets/\(otherContract)").json?["state"]?["time"]?["contract_used"], .int(600))

        for (args, what) in [(JSONValue.object([:]), "no seconds"), (["seconds": 59], "under a minute"), (["seconds": 86401], "over a day"),
                             (["seconds": "600"], "a string"), (["seconds": 600, "note": 5], "a bad note")] {
            let answer = try tech.commandAnswer("bad-\(what.replacingOccurrences(of: " ", with: "-"))", first, "time_add", args)
            XCTAssertEqual(answer["code"]?.stringValue, "invalid", what)
        }
        XCTAssertEqual(try server.api("GET", "/v1/tickets/\(first)").json?["state"]?["time"]?["entry_count"], .int(1), "refusals logged nothing")
    }

    func testTime_ticketWithoutContract_contractNull() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed(tenant: "acme", technicians: 1, tickets: 1)[0]
        let time = try XCTUnwrap(server.api("GET", "/v1/tickets/\(ticket)").json?["state"]?["time"])
        XCTAssertEqual(time["contract"], .null, "present and null, never missing")
        XCTAssertEqual(time["contract_used"], .null)
        XCTAssertEqual(time["contract_period_start"], .null)
        XCTAssertEqual(time["total"], .int(0))
    }
}
