import XCTest
import Foundation
import PeekCore
import PeekTestSupport

/// Remote desktop (protocol.md §6.2): the pixels are the RMM vendor's; peekd
/// carries the agent's join link to the technician who asked, and only them.
final class DesktopJoinTests: XCTestCase {
    private func join(_ session: String, url: String = "https://rmm.example/join/abc123", expires: String = "2030-01-01T00:00:00.000Z") -> JSONValue {
        ["type": "session_join", "session": .string(session), "url": .string(url), "expires_at": .string(expires)]
    }

    func testDesktopJoin_reachesOnlyTheRequester() throws {
        let f = try AgentFixture(consentTimeout: 10)
        defer { f.stop() }
        let (ana, _) = try f.viewer(f.linkedTicket)
        let (anaSecondTab, _) = try f.viewer(f.linkedTicket)
        let (ben, _) = try f.viewer(f.linkedTicket, as: "tech-2")
        let agent = try f.agent()
        let session = try f.activeSession("desktop", ana, agent)
        _ = ben.drain(for: 0.3)

        try agent.send(join(session))
        for tab in [ana, anaSecondTab] {
            let frame = try tab.next(type: "session_join")
            XCTAssertEqual(frame["ticket"]?.stringValue, f.linkedTicket)
            XCTAssertEqual(frame["session"]?.stringValue, session)
            XCTAssertEqual(frame["url"]?.stringValue, "https://rmm.example/join/abc123")
            XCTAssertEqual(frame["expires_at"]?.stringValue, "2030-01-01T00:00:00.000Z")
        }
        let others = ben.drain(for: 0.5)
        XCTAssertEqual(others.filter { $0["type"]?.stringValue == "session_join" || "\($0)".contains("rmm.example") }.count, 0,
                       "the link is a key to the end user's screen: \(others)")
        XCTAssertEqual(Match.count(agent.drain(for: 0.3), { $0["type"]?.stringValue == "error" }), 0)
    }

    func testDesktopJoin_badLinkOrWrongSession_refusedToAgentAndNothingSent() throws {
        let f = try AgentFixture(consentTimeout: 10)
        defer { f.stop() }
        let (ana, _) = try f.viewer(f.linkedTicket)
        let agent = try f.agent()

        try agent.send(join("S-doesnotexist"))
        XCTAssertEqual(try agent.next(type: "error")["code"]?.stringValue, "not_found")

        let answer = try ana.commandAnswer("start", f.linkedTicket, "start_session", ["kind": "desktop"])
        XCTAssertEqual(answer["type"]?.stringValue, "result")
        let pending = try XCTUnwrap(agent.next(type: "consent_request")["session"]?.stringValue)
        try agent.send(join(pending))
        XCTAssertEqual(try agent.next(type: "error")["code"]?.stringValue, "conflict", "not before consent")
        try agent.send(["type": "consent", "session": .string(pending), "decision": "accept"])
        try ana.nextDelta("session.status", ticket: f.linkedTicket) { $0["data"]?["status"]?.stringValue == "active" }

        for url in ["http://rmm.example/join", "javascript:alert(1)", "https://", "https://rmm.example/a b",
                    "https://rmm.example/" + String(repeating: "a", count: 2048)] {
            try agent.send(join(pending, url: url))
            XCTAssertEqual(try agent.next(type: "error")["code"]?.stringValue, "invalid", url)
        }
        try agent.send(join(pending, expires: "tomorrow"))
        XCTAssertEqual(try agent.next(type: "error")["code"]?.stringValue, "invalid", "expires_at must be a time")
        XCTAssertEqual(ana.drain(for: 0.5).filter { $0["type"]?.stringValue == "session_join" }.count, 0)
    }

    func testDesktopJoin_forAShell_notFound() throws {
        let f = try AgentFixture(consentTimeout: 10)
        defer { f.stop() }
        let (ana, _) = try f.viewer(f.linkedTicket)
        let agent = try f.agent()
        let session = try f.activeSession("shell", ana, agent)
        try agent.send(join(session))
        XCTAssertEqual(try agent.next(type: "error")["code"]?.stringValue, "not_found")
        XCTAssertEqual(ana.drain(for: 0.3).filter { $0["type"]?.stringValue == "session_join" }.count, 0)
    }

    func testDesktopJoin_fromAnotherTenantsAgent_notFoundAndNothingSent() throws {
        var otherIdentity: CertFactory.Identity?
        let f = try AgentFixture(consentTimeout: 10, prepare: { otherIdentity = try $0.makeClient(commonName: "agent-globex-1") })
        defer { f.stop() }
        _ = try f.server.seed(tenant: "globex", technicians: 1, tickets: 1)
        XCTAssertEqual(try f.server.api("POST", "/v1/tenants/globex/assets", ["id": "A-9", "name": "GLOBEX-PC", "agent": "agent-globex-1"]).status, 201)
        let (ana, _) = try f.viewer(f.linkedTicket)
        let agent = try f.agent()
        let session = try f.activeSession("desktop", ana, agent)
        let intruder = try f.connectAgent(try XCTUnwrap(otherIdentity))
        XCTAssertEqual(try intruder.next(type: "welcome")["asset"]?["id"]?.stringValue, "A-9")
        try intruder.send(join(session, url: "https://evil.example/phish"))
        XCTAssertEqual(try intruder.next(type: "error")["code"]?.stringValue, "not_found")
        XCTAssertEqual(ana.drain(for: 0.5).filter { $0["type"]?.stringValue == "session_join" }.count, 0)
    }
}
