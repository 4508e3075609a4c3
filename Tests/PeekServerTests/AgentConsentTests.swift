import XCTest
import Foundation
import PeekCore
import PeekTestSupport

/// Consent-gated remote sessions: a technician asks, the end user answers
/// through the agent (or does not), and every viewer sees each outcome once.
final class AgentConsentTests: XCTestCase {
    /// Starts a session on the linked ticket and checks everything the
    /// request produces; answers the session id.
    /// `kind` nil sends no `args.kind`: the session is a recording.
    private func startSession(_ f: AgentFixture, _ tech: TestWebSocketClient, _ agent: TestWebSocketClient,
                              id: String = "start-1", kind: String? = nil,
                              file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let answer = try tech.commandAnswer(id, f.linkedTicket, "start_session", kind.map { ["kind": .string($0)] } ?? [:])
        XCTAssertEqual(answer["type"]?.stringValue, "result", "\(answer)", file: file, line: line)
        XCTAssertEqual(answer["ok"]?.boolValue, true, file: file, line: line)
        let seq = try XCTUnwrap(answer["seq"]?.intValue)
        let status = try tech.nextDelta("session.status", ticket: f.linkedTicket)
        XCTAssertEqual(status["data"]?["status"]?.stringValue, "awaiting_consent", file: file, line: line)
        XCTAssertEqual(status["seq"]?.intValue, seq - 1, file: file, line: line)
        XCTAssertEqual(status["data"]?["kind"]?.stringValue, kind ?? "recording", file: file, line: line)
        let session = try XCTUnwrap(status["data"]?["session"]?.stringValue)
        let system = try tech.next(where: Match.systemMessage(f.linkedTicket))
        XCTAssertEqual(system["seq"]?.intValue, seq, "the result carries the seq of the last delta", file: file, line: line)
        XCTAssertEqual(system["data"]?["via"]?.stringValue, "system", file: file, line: line)

        let request = try agent.next(type: "consent_request")
        XCTAssertEqual(request["session"]?.stringValue, session, file: file, line: line)
        XCTAssertEqual(request["ticket"]?.stringValue, f.linkedTicket, file: file, line: line)
        XCTAssertEqual(request["kind"]?.stringValue, kind ?? "recording", "the end user sees what is asked", file: file, line: line)
        XCTAssertEqual(request["technician"]?["id"]?.stringValue, "tech-1", file: file, line: line)
        XCTAssertEqual(request["technician"]?["name"]?.stringValue, "Tech 1", file: file, line: line)
        let expires = try XCTUnwrap(request["expires_at"]?.stringValue.flatMap(Timestamp.parse))
        let nowMillis = Int64(Date().timeIntervalSince1970 * 1000)
        XCTAssert(expires > nowMillis - 1000 && expires <= nowMillis + Int64(f.server.config.consentTimeoutSeconds) * 1000 + 1000,
                  "expires_at \(request["expires_at"]!) is not about consentTimeout from now", file: file, line: line)
        return session
    }

    private func sessionStatuses(_ messages: [JSONValue], _ ticket: String) -> [String] {
        messages.filter(Match.delta("session.status", ticket)).compactMap { $0["data"]?["status"]?.stringValue }
    }

    func testStartSession_agentAccepts_activePushedExactlyOnce() throws {
        let f = try AgentFixture(consentTimeout: 2)
        defer { f.stop() }
        let (tech, _) = try f.viewer(f.linkedTicket)
        let agent = try f.agent()
        let session = try startSession(f, tech, agent)

        try agent.send(["type": "consent", "session": .string(session), "decision": "accept"])
        let outcome = try tech.read(until: Match.systemMessage(f.linkedTicket))
        let durable = outcome.filter { $0["seq"] != nil }
        XCTAssertEqual(durable.compactMap { $0["kind"]?.stringValue }, ["session.status", "message.created"], "one status delta, then its system event")
        XCTAssertEqual(durable.last?["data"]?["body"]?.stringValue, "The end user accepted the recorded session; recording started.")
        let active = try XCTUnwrap(durable.first)
        XCTAssertEqual(active["data"]?["status"]?.stringValue, "active")
        XCTAssertEqual(active["data"]?["session"]?.stringValue, session)
        XCTAssertNotNil(active["seq"]?.intValue)
        // Past the consent deadline: the expiry timer must not move an answered session.
        let later = tech.drain(for: 2.5)
        XCTAssertEqual(sessionStatuses(later, f.linkedTicket), [], "\(later)")
        XCTAssertEqual(Match.count(later, Match.systemMessage(f.linkedTicket)), 0, "no further system event")
        // A second answer changes nothing.
        try agent.send(["type": "consent", "session": .string(session), "decision": "deny"])
        XCTAssertEqual(try agent.next(type: "error")["code"]?.stringValue, "conflict")
        XCTAssertEqual(sessionStatuses(tech.drain(for: 0.5), f.linkedTicket), [])

        let state = try f.ticketState(f.linkedTicket)
        XCTAssertEqual(state["state"]?["session"]?["status"]?.stringValue, "active")
        XCTAssertEqual(state["state"]?["session"]?["session"]?.stringValue, session)
    }

    /// The card's recording clock runs from `started_at` (CONTRACT
    /// "Additions"): absent while consent is pending, stamped when the end
    /// user accepts, the same in every later delta and snapshot, restarts included.
    func testSessionClock_activeCarriesKindAndStartedAt_keptAfterRestartAndEnd() throws {
        let f = try AgentFixture(consentTimeout: 30)
        defer { f.stop() }
        let (tech, _) = try f.viewer(f.linkedTicket)
        let agent = try f.agent()
        let session = try startSession(f, tech, agent)
        let pending = try XCTUnwrap(f.ticketState(f.linkedTicket)["state"]?["session"])
        XCTAssertEqual(pending["kind"]?.stringValue, "recording")
        XCTAssertTrue(pending["started_at"]?.isNull ?? false, "no clock before consent: \(pending)")

        try agent.send(["type": "consent", "session": .string(session), "decision": "accept"])
        let active = try tech.nextDelta("session.status", ticket: f.linkedTicket) { $0["data"]?["status"]?.stringValue == "active" }
        XCTAssertEqual(active["data"]?["kind"]?.stringValue, "recording")
        let startedAt = try XCTUnwrap(active["data"]?["started_at"]?.stringValue, "\(active)")
        XCTAssertNotNil(Timestamp.parse(startedAt), startedAt)
        XCTAssertEqual(startedAt, active["at"]?.stringValue, "the clock starts when consent is recorded")

        agent.close()
        tech.close()
        try f.restart(after: 0)
        let restored = try XCTUnwrap(f.ticketState(f.linkedTicket)["state"]?["session"])
        XCTAssertEqual(restored["started_at"]?.stringValue, startedAt)
        XCTAssertEqual(restored["kind"]?.stringValue, "recording")

        let (again, _) = try f.viewer(f.linkedTicket)
        XCTAssertEqual(try again.commandAnswer("end-1", f.linkedTicket, "end_session")["type"]?.stringValue, "result")
        let ended = try again.nextDelta("session.status", ticket: f.linkedTicket) { $0["data"]?["status"]?.stringValue == "ended" }
        XCTAssertEqual(ended["data"]?["started_at"]?.stringValue, startedAt, "an ended session still says when it started")
    }

    // MARK: Kinds (CONTRACT "Additions", remote actions): the same gate for each.

    private let remoteKinds = ["desktop", "shell"]
    private let kindWords = ["desktop": "remote desktop session", "shell": "remote shell session"]

    /// One fixture, one viewer and the agent; `body` runs for each remote
    /// kind with a session of that kind just requested (checked by `startSession`).
    private func forEachRemoteKind(consentTimeout: Int,
                                   _ body: (AgentFixture, TestWebSocketClient, TestWebSocketClient, String, String) throws -> Void) throws {
        let f = try AgentFixture(consentTimeout: consentTimeout)
        defer { f.stop() }
        let (tech, _) = try f.viewer(f.linkedTicket)
        let agent = try f.agent()
        for kind in remoteKinds {
            try body(f, tech, agent, kind, try startSession(f, tech, agent, id: "start-\(kind)", kind: kind))
        }
    }

    func testStartSession_desktopAndShell_acceptedActiveWithKind_thenEnded() throws {
        try forEachRemoteKind(consentTimeout: 5) { f, tech, agent, kind, session in
            try agent.send(["type": "consent", "session": .string(session), "decision": "accept"])
            let outcome = try tech.read(until: Match.systemMessage(f.linkedTicket))
            let active = try XCTUnwrap(outcome.first(where: Match.delta("session.status", f.linkedTicket)), kind)
            XCTAssertEqual(active["data"]?["status"]?.stringValue, "active", kind)
            XCTAssertEqual(active["data"]?["kind"]?.stringValue, kind)
            XCTAssertNotNil(active["data"]?["started_at"]?.stringValue, kind)
            XCTAssertEqual(outcome.last?["data"]?["body"]?.stringValue, "The end user accepted the \(kindWords[kind]!); it is active.")
            XCTAssertEqual(try f.ticketState(f.linkedTicket)["state"]?["session"]?["kind"]?.stringValue, kind)

            XCTAssertEqual(try tech.commandAnswer("end-\(kind)", f.linkedTicket, "end_session")["type"]?.stringValue, "result")
            let ended = try tech.nextDelta("session.status", ticket: f.linkedTicket)
            XCTAssertEqual(ended["data"]?["status"]?.stringValue, "ended", kind)
            XCTAssertEqual(ended["data"]?["kind"]?.stringValue, kind)
            XCTAssertEqual(try tech.next(where: Match.systemMessage(f.linkedTicket))["data"]?["body"]?.stringValue,
                           "Tech 1 ended the \(kindWords[kind]!).")
            XCTAssertEqual(try agent.next(type: "session_ended")["session"]?.stringValue, session)
        }
    }

    func testStartSession_desktopAndShell_deniedWithKind() throws {
        try forEachRemoteKind(consentTimeout: 5) { f, tech, agent, kind, session in
            try agent.send(["type": "consent", "session": .string(session), "decision": "deny"])
            let denied = try tech.nextDelta("session.status", ticket: f.linkedTicket)
            XCTAssertEqual(denied["data"]?["status"]?.stringValue, "denied", kind)
            XCTAssertEqual(denied["data"]?["kind"]?.stringValue, kind)
            XCTAssertEqual(try tech.next(where: Match.systemMessage(f.linkedTicket))["data"]?["body"]?.stringValue,
                           "The end user declined the \(kindWords[kind]!).")
        }
    }

    func testStartSession_desktopAndShell_noAnswer_expiredWithKind() throws {
        try forEachRemoteKind(consentTimeout: 1) { f, tech, agent, kind, session in
            let expired = try tech.nextDelta("session.status", ticket: f.linkedTicket, timeout: 8)
            XCTAssertEqual(expired["data"]?["status"]?.stringValue, "expired", kind)
            XCTAssertEqual(expired["data"]?["session"]?.stringValue, session)
            XCTAssertEqual(expired["data"]?["kind"]?.stringValue, kind)
            XCTAssertEqual(try tech.next(where: Match.systemMessage(f.linkedTicket))["data"]?["body"]?.stringValue,
                           "The consent request for the \(kindWords[kind]!) expired.")
            try agent.send(["type": "consent", "session": .string(session), "decision": "accept"])
            XCTAssertEqual(try agent.next(type: "error")["code"]?.stringValue, "conflict", "a late answer changes nothing")
        }
    }

    func testStartSession_unknownKind_invalidAndNothingChanged() throws {
        let f = try AgentFixture()
        defer { f.stop() }
        let (tech, snaps) = try f.viewer(f.linkedTicket)
        let agent = try f.agent()
        for (n, bad) in [JSONValue.string("vnc"), .int(1), .string("")].enumerated() {
            let answer = try tech.commandAnswer("bad-\(n)", f.linkedTicket, "start_session", ["kind": bad])
            XCTAssertEqual(answer["code"]?.stringValue, "invalid", "\(bad): \(answer)")
            XCTAssertEqual(answer["id"]?.stringValue, "bad-\(n)")
        }
        XCTAssertEqual(try f.ticketState(f.linkedTicket)["seq"]?.intValue, snaps[0]["seq"]?.intValue)
        XCTAssertEqual(agent.drain(for: 0.3).filter { $0["type"]?.stringValue == "consent_request" }.count, 0)
    }

    func testStartSession_shellWithoutAssetOrAgent_invalidThenAgentOffline() throws {
        let f = try AgentFixture()
        defer { f.stop() }
        let (tech, _) = try f.viewer(f.unlinkedTicket, f.linkedTicket)
        XCTAssertEqual(try tech.commandAnswer("s1", f.unlinkedTicket, "start_session", ["kind": "shell"])["code"]?.stringValue, "invalid")
        XCTAssertEqual(try tech.commandAnswer("s2", f.linkedTicket, "start_session", ["kind": "desktop"])["code"]?.stringValue, "agent_offline")
    }

    func testStartSession_agentDenies_deniedPushedOnce() throws {
        let f = try AgentFixture(consentTimeout: 2)
        defer { f.stop() }
        let (tech, _) = try f.viewer(f.linkedTicket)
        let agent = try f.agent()
        let session = try startSession(f, tech, agent)
        try agent.send(["type": "consent", "session": .string(session), "decision": "deny"])
        XCTAssertEqual(try tech.nextDelta("session.status")["data"]?["status"]?.stringValue, "denied")
        XCTAssertEqual(sessionStatuses(tech.drain(for: 2.5), f.linkedTicket), [])
        XCTAssertEqual(try f.ticketState(f.linkedTicket)["state"]?["session"]?["status"]?.stringValue, "denied")
        // A denied session is over: another may be requested.
        XCTAssertEqual(try tech.commandAnswer("again", f.linkedTicket, "start_session")["type"]?.stringValue, "result")
    }

    func testStartSession_noAnswer_expiredPushedExactlyOnce() throws {
        let f = try AgentFixture(consentTimeout: 1)
        defer { f.stop() }
        let (tech, _) = try f.viewer(f.linkedTicket)
        let agent = try f.agent()
        let session = try startSession(f, tech, agent)

        let expired = try tech.nextDelta("session.status", timeout: 8)
        XCTAssertEqual(expired["data"]?["status"]?.stringValue, "expired")
        XCTAssertEqual(expired["data"]?["session"]?.stringValue, session)
        let later = tech.drain(for: 1.5)
        XCTAssertEqual(sessionStatuses(later, f.linkedTicket), [], "\(later)")
        // A late answer is refused and changes nothing.
        try agent.send(["type": "consent", "session": .string(session), "decision": "accept"])
        XCTAssertEqual(try agent.next(type: "error")["code"]?.stringValue, "conflict")
        XCTAssertEqual(sessionStatuses(tech.drain(for: 0.5), f.linkedTicket), [])
        XCTAssertEqual(try f.ticketState(f.linkedTicket)["state"]?["session"]?["status"]?.stringValue, "expired")
    }

    func testStartSession_noLinkedAsset_invalidAndNothingChanged() throws {
        let f = try AgentFixture()
        defer { f.stop() }
        let (tech, snaps) = try f.viewer(f.unlinkedTicket)
        _ = try f.agent()
        let answer = try tech.commandAnswer("s1", f.unlinkedTicket, "start_session")
        XCTAssertEqual(answer["type"]?.stringValue, "error")
        XCTAssertEqual(answer["code"]?.stringValue, "invalid")
        XCTAssertEqual(answer["id"]?.stringValue, "s1")
        XCTAssertEqual(try f.ticketState(f.unlinkedTicket)["seq"]?.intValue, snaps[0]["seq"]?.intValue)
    }

    func testStartSession_agentOffline_agentOfflineAndNothingChanged() throws {
        let f = try AgentFixture()
        defer { f.stop() }
        let (tech, snaps) = try f.viewer(f.linkedTicket)
        XCTAssertEqual(snaps[0]["state"]?["asset"]?["agent_online"]?.boolValue, false)
        let answer = try tech.commandAnswer("s1", f.linkedTicket, "start_session")
        XCTAssertEqual(answer["code"]?.stringValue, "agent_offline")
        XCTAssertEqual(try f.ticketState(f.linkedTicket)["seq"]?.intValue, snaps[0]["seq"]?.intValue)
        XCTAssertEqual(sessionStatuses(tech.drain(for: 0.3), f.linkedTicket), [])
    }

    func testEndSession_activeSession_endedAndAgentToldSessionEnded() throws {
        let f = try AgentFixture(consentTimeout: 5)
        defer { f.stop() }
        let (tech, _) = try f.viewer(f.linkedTicket)
        let agent = try f.agent()

        let none = try tech.commandAnswer("e0", f.linkedTicket, "end_session")
        XCTAssertEqual(none["code"]?.stringValue, "invalid", "no session at all")

        let session = try startSession(f, tech, agent)
        let pending = try tech.commandAnswer("e1", f.linkedTicket, "end_session")
        XCTAssertEqual(pending["code"]?.stringValue, "invalid", "a session awaiting consent is not active")

        try agent.send(["type": "consent", "session": .string(session), "decision": "accept"])
        XCTAssertEqual(try tech.nextDelta("session.status")["data"]?["status"]?.stringValue, "active")

        let end = try tech.commandAnswer("e2", f.linkedTicket, "end_session")
        XCTAssertEqual(end["type"]?.stringValue, "result", "\(end)")
        let ended = try tech.nextDelta("session.status")
        XCTAssertEqual(ended["data"]?["status"]?.stringValue, "ended")
        XCTAssertEqual(ended["data"]?["session"]?.stringValue, session)
        let told = try agent.next(type: "session_ended")
        XCTAssertEqual(told["session"]?.stringValue, session)

        XCTAssertEqual(try tech.commandAnswer("e3", f.linkedTicket, "end_session")["code"]?.stringValue, "invalid", "already ended")
        XCTAssertEqual(agent.drain(for: 0.3).filter { $0["type"]?.stringValue == "session_ended" }.count, 0)
    }

    func testStartSession_starterUnsubscribesMidConsent_otherViewerSeesOutcomeOnce() throws {
        let f = try AgentFixture(consentTimeout: 3)
        defer { f.stop() }
        let (starter, _) = try f.viewer(f.linkedTicket)
        let (other, _) = try f.viewer(f.linkedTicket, as: "tech-2")
        let agent = try f.agent()
        let session = try startSession(f, starter, agent)
        XCTAssertEqual(try other.nextDelta("session.status")["data"]?["status"]?.stringValue, "awaiting_consent")

        try starter.send(["type": "unsubscribe", "ticket": .string(f.linkedTicket)])
        // The unsubscribe reaches the engine before the consent: presence proves it.
        try other.nextDelta("presence.updated") { $0["data"]?["viewers"]?.arrayValue?.count == 1 }
        try agent.send(["type": "consent", "session": .string(session), "decision": "accept"])

        let active = try other.nextDelta("session.status")
        XCTAssertEqual(active["data"]?["status"]?.stringValue, "active")
        XCTAssertEqual(sessionStatuses(other.drain(for: 1.0), f.linkedTicket), [])
        XCTAssertEqual(sessionStatuses(starter.drain(for: 0.3), f.linkedTicket), [], "no deltas after unsubscribe")
        // The starter can still end it.
        XCTAssertEqual(try starter.commandAnswer("end", f.linkedTicket, "end_session")["type"]?.stringValue, "result")
        XCTAssertEqual(try other.nextDelta("session.status")["data"]?["status"]?.stringValue, "ended")
    }

    func testStartSession_oneAlreadyPending_conflict() throws {
        let f = try AgentFixture(consentTimeout: 5)
        defer { f.stop() }
        let (tech, _) = try f.viewer(f.linkedTicket)
        let agent = try f.agent()
        _ = try startSession(f, tech, agent)
        XCTAssertEqual(try tech.commandAnswer("start-2", f.linkedTicket, "start_session")["code"]?.stringValue, "conflict")
        XCTAssertEqual(agent.drain(for: 0.3).filter { $0["type"]?.stringValue == "consent_request" }.count, 0)
    }

    func testStartSession_expiresWhileServerDown_expiredOnRestart() throws {
        let f = try AgentFixture(consentTimeout: 3)
        defer { f.stop() }
        let (tech, _) = try f.viewer(f.linkedTicket)
        let agent = try f.agent()
        let session = try startSession(f, tech, agent)
        let seqBefore = try XCTUnwrap(f.ticketState(f.linkedTicket)["seq"]?.intValue)
        tech.close()
        agent.close()
        // Down past the consent deadline.
        let downtime = 3.0
        let restartedAt = Int64(Date().timeIntervalSince1970 * 1000) + Int64(downtime * 1000)
        try f.restart(after: downtime)
        let (resumer, _) = try f.viewer(as: "tech-2")
        try resumer.send(["type": "subscribe", "id": "r", "ticket": .string(f.linkedTicket), "since": .int(seqBefore)])
        let log = try resumer.read(until: { Match.delta("session.status", f.linkedTicket)($0) && $0["data"]?["status"]?.stringValue == "expired" })
        XCTAssertEqual(log.last?["data"]?["session"]?.stringValue, session)
        let at = try XCTUnwrap(log.last?["at"]?.stringValue.flatMap(Timestamp.parse))
        XCTAssertGreaterThanOrEqual(at, restartedAt - 50, "expired by the restarted server")
        XCTAssertEqual(Match.count(resumer.drain(for: 1.0), Match.delta("session.status")), 0)
        let state = try f.ticketState(f.linkedTicket)
        XCTAssertEqual(state["seq"]?.intValue, seqBefore + 2, "one session.status and one system event")
        XCTAssertEqual(state["state"]?["session"]?["status"]?.stringValue, "expired")
    }

    func testConsentRequest_agentReconnectsWhilePending_notSentAgain() throws {
        let f = try AgentFixture(consentTimeout: 5)
        defer { f.stop() }
        let (tech, _) = try f.viewer(f.linkedTicket)
        let agent = try f.agent()
        let session = try startSession(f, tech, agent)
        let again = try f.agent()
        XCTAssertEqual(try agent.awaitClose(), 4409)
        XCTAssertEqual(again.drain(for: 0.5).filter { $0["type"]?.stringValue == "consent_request" }.count, 0)
        // The new connection may still answer it.
        try again.send(["type": "consent", "session": .string(session), "decision": "accept"])
        XCTAssertEqual(try tech.nextDelta("session.status")["data"]?["status"]?.stringValue, "active")
    }

    func testConsent_fromAnotherAgent_notFoundAndSessionStillPending() throws {
        var otherIdentity: CertFactory.Identity?
        let f = try AgentFixture(consentTimeout: 5, prepare: { otherIdentity = try $0.makeClient(commonName: "agent-acme-2") })
        defer { f.stop() }
        XCTAssertEqual(try f.server.api("POST", "/v1/tenants/acme/assets", ["id": "A-2", "name": "ACME-DESKTOP-02", "agent": "agent-acme-2"]).status, 201)
        let (tech, _) = try f.viewer(f.linkedTicket)
        let agent = try f.agent()
        let session = try startSession(f, tech, agent)
        let other = try f.connectAgent(try XCTUnwrap(otherIdentity))
        XCTAssertEqual(try other.next(type: "welcome")["asset"]?["id"]?.stringValue, "A-2")
        try other.send(["type": "consent", "session": .string(session), "decision": "accept"])
        XCTAssertEqual(try other.next(type: "error")["code"]?.stringValue, "not_found")
        XCTAssertEqual(Match.count(tech.drain(for: 0.5), Match.delta("session.status")), 0)
        XCTAssertEqual(try f.ticketState(f.linkedTicket)["state"]?["session"]?["status"]?.stringValue, "awaiting_consent")
        // The device's own agent still can.
        try agent.send(["type": "consent", "session": .string(session), "decision": "deny"])
        XCTAssertEqual(try tech.nextDelta("session.status")["data"]?["status"]?.stringValue, "denied")
    }

    func testConsent_sessionOfAnotherDevice_notFound() throws {
        let f = try AgentFixture()
        defer { f.stop() }
        let agent = try f.agent()
        try agent.send(["type": "consent", "session": "S-doesnotexist", "decision": "accept"])
        XCTAssertEqual(try agent.next(type: "error")["code"]?.stringValue, "not_found")
    }
}
