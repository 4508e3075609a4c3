import XCTest
import PeekCore
import PeekTestSupport

/// The send log behind a reply's sending state: a technician of the
/// ticket's tenant reads `GET /v1/tickets/{id}/sends` with their own token
/// (the Peek's "Send log"), and the sent attempt shares its `at` with the
/// stored reply, which is how the Peek shows "Emailed to … at …".
final class SendLogAccessTests: XCTestCase {
    func testTechnicianReadsTheFailedAttemptWithTheServersAnswer_otherTenant404_anonymous401() throws {
        let rejection = "5.1.1 <customer@example.com>: Recipient address rejected: User unknown"
        let h = try MailHarness(smtp: .init(rejectRecipient: .init(550, rejection)))
        defer { h.stop() }
        try h.sendReply(id: "r1", body: "Hello")
        XCTAssertEqual(try h.answer(id: "r1")["code"]?.stringValue, "dispatch_failed")

        let mine = try h.server.request("GET", "/v1/tickets/\(h.ticket)/sends", token: h.server.token(tenant: "acme", user: "tech-2"))
        XCTAssertEqual(mine.status, 200, mine.text)
        let attempt = try XCTUnwrap(mine.json?["attempts"]?.arrayValue?.first)
        XCTAssertEqual(attempt["outcome"]?.stringValue, "failed")
        XCTAssertEqual(attempt["reply"]?.stringValue, "550 " + rejection)
        XCTAssertEqual(attempt["to"]?.stringValue, "customer@example.com")
        XCTAssertEqual(attempt["technician"]?["id"]?.stringValue, "tech-1")

        _ = try h.server.seed(tenant: "globex", technicians: 1, tickets: 0)
        let stranger = try h.server.request("GET", "/v1/tickets/\(h.ticket)/sends", token: h.server.token(tenant: "globex", user: "tech-1"))
        XCTAssertEqual(stranger.status, 404, stranger.text)
        XCTAssertEqual(stranger.json?["error"]?["code"]?.stringValue, "not_found")
        XCTAssertFalse(stranger.text.contains(rejection))
        let anonymous = try h.server.request("GET", "/v1/tickets/\(h.ticket)/sends", service: false)
        XCTAssertEqual(anonymous.status, 401, anonymous.text)
    }

    func testSentAttemptHasTheStoredReplysInstant() throws {
        let h = try MailHarness()
        defer { h.stop() }
        try h.sendReply(id: "r1", body: "All fixed")
        XCTAssertEqual(try h.answer(id: "r1")["type"]?.stringValue, "result")
        let message = try h.b.next { $0["type"]?.stringValue == "delta" && $0["kind"]?.stringValue == "message.created" }
        let log = try h.server.request("GET", "/v1/tickets/\(h.ticket)/sends", token: h.server.token(tenant: "acme", user: "tech-1"))
        let attempt = try XCTUnwrap(log.json?["attempts"]?.arrayValue?.last)
        XCTAssertEqual(attempt["outcome"]?.stringValue, "sent")
        XCTAssertEqual(attempt["at"], message["data"]?["at"], "the Peek matches a reply to its attempt by this instant")
        XCTAssertEqual(attempt["technician"]?["id"], message["data"]?["author"]?["id"])
    }
}
