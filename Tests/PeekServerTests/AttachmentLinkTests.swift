import XCTest
import Foundation
import Synchronization
import PeekCore
import PeekTestSupport

/// Signed, expiring, ticket-scoped attachment links (protocol.md §8.4
/// "Signed links"): issued by `POST /v1/tickets/{id}/attachments/{a}/link`
/// to a technician of the ticket's tenant, followed by `GET /v1/files/{a}`
/// with no credential but the link's own signature.
final class AttachmentLinkTests: XCTestCase {
    /// A wall clock the test can move forward (the monotonic one runs as usual).
    private final class Clock: TimeSource {
        let offset = Mutex<Int64>(0)
        func now() -> Int64 { wallMillis() }
        func wallMillis() -> Int64 { wallClockMillis() + offset.withLock { $0 } }
        func monotonicMillis() -> Int64 { PeekCore.monotonicMillis() }
        func monotonicMicros() -> Int { PeekCore.monotonicMicros() }
        func advance(seconds: Int64) { offset.withLock { $0 += seconds * 1000 } }
    }

    private struct Fixture {
        let server: TestServer
        let clock: Clock
        let tickets: [String]
        let attachment: String
        let bytes: [UInt8]
        var token: String { server.token(tenant: "acme", user: "tech-1") }
    }

    private func fixture() throws -> Fixture {
        let clock = Clock()
        let server = try TestServer { $0.clock = clock }
        let tickets = try server.seed(tickets: 2)
        let bytes = Array("%PDF-1.4\n% a small report\n%%EOF\n".utf8)
        let up = try server.request("POST", "/v1/tickets/\(tickets[0])/attachments?filename=report.pdf", body: bytes,
                                    contentType: "application/pdf", token: server.token(tenant: "acme", user: "tech-1"))
        XCTAssertEqual(up.status, 201, up.text)
        return Fixture(server: server, clock: clock, tickets: tickets, attachment: try XCTUnwrap(up.json?["id"]?.stringValue), bytes: bytes)
    }

    private func issue(_ f: Fixture, ticket: String? = nil, attachment: String? = nil, token: String? = nil) throws -> TestServer.Response {
        try f.server.request("POST", "/v1/tickets/\(ticket ?? f.tickets[0])/attachments/\(attachment ?? f.attachment)/link",
                             body: [], token: token ?? f.token)
    }

    private func follow(_ f: Fixture, _ url: String) throws -> TestServer.Response {
        try f.server.request("GET", url, service: false)
    }

    private func errorCode(_ r: TestServer.Response) -> String? { r.json?["error"]?["code"]?.stringValue }

    func testLink_issuedToTechnician_downloadsWithoutAnyToken() throws {
        let f = try fixture()
        defer { f.server.stop() }
        let r = try issue(f)
        XCTAssertEqual(r.status, 200, r.text)
        let url = try XCTUnwrap(r.json?["url"]?.stringValue)
        XCTAssertTrue(url.hasPrefix("/v1/files/\(f.attachment)?"), url)
        XCTAssertFalse(url.contains(f.token), "the sign-in token must not be in the link")
        XCTAssertFalse(url.contains("token="), url)
        let expires = try XCTUnwrap(r.json?["expires_at"]?.stringValue.flatMap(Timestamp.parse))
        let lifetime = (expires - f.clock.now()) / 1000
        XCTAssertTrue((295...300).contains(lifetime), "lifetime \(lifetime) s")

        let d = try follow(f, url)
        XCTAssertEqual(d.status, 200, d.text)
        XCTAssertEqual(d.body, f.bytes)
        XCTAssertEqual(d.headers["content-type"], "application/pdf")
        XCTAssertEqual(d.headers["content-disposition"], "attachment; filename=\"report.pdf\"")
        XCTAssertEqual(d.headers["x-content-type-options"], "nosniff")
        // The service token may issue links too (the back end's own pages).
        XCTAssertEqual(try f.server.request("POST", "/v1/tickets/\(f.tickets[0])/attachments/\(f.attachment)/link", body: []).status, 200)
    }

    func testLink_expired_403WithClearJSON() throws {
        let f = try fixture()
        defer { f.server.stop() }
        let url = try XCTUnwrap(try issue(f).json?["url"]?.stringValue)
        f.clock.advance(seconds: 299)
        XCTAssertEqual(try follow(f, url).status, 200, "still valid just before it expires")
        f.clock.advance(seconds: 2)
        let d = try follow(f, url)
        XCTAssertEqual(d.status, 403, d.text)
        XCTAssertEqual(d.headers["content-type"], "application/json")
        XCTAssertEqual(errorCode(d), "forbidden")
        let message = try XCTUnwrap(d.json?["error"]?["message"]?.stringValue)
        XCTAssertTrue(message.contains("expired"), message)
        XCTAssertFalse(d.body.starts(with: f.bytes))
    }

    func testLink_wrongTicket_tampered_orOtherAttachment_403_andMalformed_400() throws {
        let f = try fixture()
        defer { f.server.stop() }
        let url = try XCTUnwrap(try issue(f).json?["url"]?.stringValue)
        let other = try f.server.request("POST", "/v1/tickets/\(f.tickets[1])/attachments?filename=other.txt", body: Array("other".utf8),
                                         contentType: "text/plain")
        let otherID = try XCTUnwrap(other.json?["id"]?.stringValue)

        var forged: [(String, String)] = []
        // Issued for T-a, presented as T-b: the signature covers the ticket.
        forged.append(("wrong ticket", url.replacingOccurrences(of: "ticket=\(f.tickets[0])", with: "ticket=\(f.tickets[1])")))
        // A later expiry than the one signed.
        let expires = try XCTUnwrap(url.split(separator: "&").first { $0.hasPrefix("expires=") }?.dropFirst(8))
        forged.append(("extended", url.replacingOccurrences(of: "expires=\(expires)", with: "expires=\(Int64(expires)! + 3600)")))
        // One character of the signature changed.
        var sig = Array(url)
        sig[sig.count - 1] = sig[sig.count - 1] == "A" ? "B" : "A"
        forged.append(("tampered signature", String(sig)))
        // The same signature on another attachment id.
        forged.append(("other attachment", url.replacingOccurrences(of: "/v1/files/\(f.attachment)", with: "/v1/files/\(otherID)")))
        forged.append(("unknown attachment", url.replacingOccurrences(of: "/v1/files/\(f.attachment)", with: "/v1/files/A-0000000000000000")))
        for (what, link) in forged {
            let d = try follow(f, link)
            XCTAssertEqual(d.status, 403, "\(what): \(d.text)")
            XCTAssertEqual(errorCode(d), "forbidden", what)
            XCTAssertTrue(d.json?["error"]?["message"]?.stringValue?.contains("not valid") == true, "\(what): \(d.text)")
        }
        let base = "/v1/files/\(f.attachment)"
        for link in [base, base + "?ticket=\(f.tickets[0])&expires=abc&sig=x", base + "?ticket=\(f.tickets[0])&sig=x",
                     url + "&sig=again"] {
            let d = try follow(f, link)
            XCTAssertEqual(d.status, 400, "\(link): \(d.text)")
            XCTAssertEqual(errorCode(d), "invalid")
        }
        // The untouched link still works: the refusals changed nothing.
        XCTAssertEqual(try follow(f, url).body, f.bytes)
    }

    func testIssue_onlyForTheTicketsOwnAttachment_andTheTechniciansTenant() throws {
        let f = try fixture()
        defer { f.server.stop() }
        // The attachment is on tickets[0]; asking for it through tickets[1] is 404.
        let wrong = try issue(f, ticket: f.tickets[1])
        XCTAssertEqual(wrong.status, 404, wrong.text)
        XCTAssertEqual(errorCode(wrong), "not_found")
        // Another tenant's technician cannot see the ticket at all.
        _ = try f.server.seed(tenant: "globex", technicians: 1, tickets: 1)
        let stranger = try issue(f, token: f.server.token(tenant: "globex", user: "tech-1"))
        XCTAssertEqual(stranger.status, 404, stranger.text)
        // No credential: 401, as for the plain download.
        let anonymous = try f.server.request("POST", "/v1/tickets/\(f.tickets[0])/attachments/\(f.attachment)/link", body: [], service: false)
        XCTAssertEqual(anonymous.status, 401, anonymous.text)
        XCTAssertEqual(errorCode(anonymous), "unauthorized")
    }

    /// The composer reads the limits from `welcome` to refuse a file at once.
    func testWelcome_carriesTheAttachmentLimits() throws {
        let server = try TestServer { $0.maxAttachmentBytes = 3 * 1024 * 1024 }
        defer { server.stop() }
        _ = try server.seed()
        let client = try TestWebSocketClient(port: server.port)
        try client.send(["type": "hello", "token": .string(server.token(tenant: "acme", user: "tech-1"))])
        let welcome = try client.next(type: "welcome")
        XCTAssertEqual(welcome["limits"]?["attachment_bytes"]?.intValue, 3 * 1024 * 1024)
        XCTAssertEqual(welcome["limits"]?["reply_attachment_bytes"]?.intValue, 25 * 1024 * 1024)
    }
}
