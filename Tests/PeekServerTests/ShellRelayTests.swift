import XCTest
import Foundation
import PeekCore
import PeekServer
import PeekStore
import PeekTestSupport

/// The shell relay (protocol.md §6.1) with the real mutual-TLS test agent:
/// the keyboard holder's input reaches the agent, the agent's output reaches
/// every viewer of the ticket, and nobody else types.
final class ShellRelayTests: XCTestCase {
    private func activeShell(_ f: AgentFixture, _ tech: TestWebSocketClient, _ agent: TestWebSocketClient) throws -> String {
        try f.activeSession("shell", tech, agent)
    }

    /// A shell active on the linked ticket, started by Ana (tech-1), with
    /// Ben (tech-2) viewing too. The caller stops the fixture.
    private func shellWithTwoViewers(configure: (inout ServerConfig) -> Void = { _ in }) throws
        -> (f: AgentFixture, ana: TestWebSocketClient, ben: TestWebSocketClient, agent: TestWebSocketClient, session: String) {
        let f = try AgentFixture(consentTimeout: 10, configure: configure)
        do {
            let (ana, _) = try f.viewer(f.linkedTicket)
            let (ben, _) = try f.viewer(f.linkedTicket, as: "tech-2")
            let agent = try f.agent()
            return (f, ana, ben, agent, try activeShell(f, ana, agent))
        } catch {
            f.stop()
            throw error
        }
    }

    private func input(_ tech: TestWebSocketClient, _ f: AgentFixture, _ session: String, _ data: String, id: String? = nil) throws {
        var frame: [String: JSONValue] = ["type": "session_input", "ticket": .string(f.linkedTicket), "session": .string(session), "data": .string(data)]
        if let id { frame["id"] = .string(id) }
        try tech.send(.object(frame))
    }

    private func error(_ c: TestWebSocketClient, id: String) throws -> JSONValue {
        try c.next { $0["type"]?.stringValue == "error" && $0["id"]?.stringValue == id }
    }

    private func outputs(_ messages: [JSONValue], _ ticket: String) -> [String] {
        messages.filter(Match.delta("session.output", ticket)).compactMap { $0["data"]?["data"]?.stringValue }
    }

    func testShell_inputReachesAgent_outputReachesTwoViewersInOrder() throws {
        let (f, ana, ben, agent, session) = try shellWithTwoViewers()
        defer { f.stop() }

        try input(ana, f, session, "echo hello\n")
        let relayed = try agent.next(type: "session_input")
        XCTAssertEqual(relayed["session"]?.stringValue, session)
        XCTAssertEqual(relayed["data"]?.stringValue, "echo hello\n")
        XCTAssertNil(relayed["ticket"], "the agent gets the session, nothing of the ticket")

        let chunks = (1...5).map { "line \($0)\n" }
        for c in chunks { try agent.send(["type": "session_output", "session": .string(session), "data": .string(c)]) }
        for viewer in [ana, ben] {
            let seen = try viewer.read(until: { Match.delta("session.output", f.linkedTicket)($0) && $0["data"]?["data"]?.stringValue == chunks.last })
            XCTAssertEqual(outputs(seen, f.linkedTicket), chunks, "every chunk, in order")
            let delta = try XCTUnwrap(seen.last)
            XCTAssertNil(delta["seq"], "session.output is ephemeral")
            XCTAssertEqual(delta["data"]?["session"]?.stringValue, session)
        }
        XCTAssertEqual(Match.count(agent.drain(for: 0.3), { $0["type"]?.stringValue == "error" }), 0)
    }

    func testShell_inputFromNonHolderOrForNoActiveShell_refusedAndNotRelayed() throws {
        let f = try AgentFixture(consentTimeout: 10)
        defer { f.stop() }
        let (ana, _) = try f.viewer(f.linkedTicket)
        let (ben, _) = try f.viewer(f.linkedTicket, as: "tech-2")
        let agent = try f.agent()

        try input(ana, f, "S-0000000000000000", "ls\n", id: "none")
        XCTAssertEqual(try error(ana, id: "none")["code"]?.stringValue, "invalid", "no such shell")

        let session = try activeShell(f, ana, agent)
        try input(ben, f, session, "rm -rf /\n", id: "ben-1")
        let refused = try error(ben, id: "ben-1")
        XCTAssertEqual(refused["code"]?.stringValue, "forbidden")
        XCTAssertTrue(refused["message"]?.stringValue?.contains("Tech 1") ?? false, "says who holds it: \(refused)")
        try input(ana, f, session, String(repeating: "x", count: 4097), id: "big")
        XCTAssertEqual(try error(ana, id: "big")["code"]?.stringValue, "invalid", "over 4 KiB of input")
        XCTAssertEqual(agent.drain(for: 0.5).filter { $0["type"]?.stringValue == "session_input" }.count, 0, "nothing reached the agent")

        // A recording is not a shell: no input goes to it.
        XCTAssertEqual(try ana.commandAnswer("end", f.linkedTicket, "end_session")["type"]?.stringValue, "result")
        try input(ana, f, session, "ls\n", id: "after-end")
        XCTAssertEqual(try error(ana, id: "after-end")["code"]?.stringValue, "invalid", "an ended shell takes no input")
    }

    func testShell_handover_keyboardMovesToAnotherViewer() throws {
        let (f, ana, ben, agent, session) = try shellWithTwoViewers()
        defer { f.stop() }

        let notHolder = try ben.commandAnswer("grab", f.linkedTicket, "session_handover", ["session": .string(session), "technician": "tech-2"])
        XCTAssertEqual(notHolder["code"]?.stringValue, "forbidden", "only the holder hands over")
        let notViewer = try ana.commandAnswer("h0", f.linkedTicket, "session_handover", ["session": .string(session), "technician": "tech-9"])
        XCTAssertEqual(notViewer["code"]?.stringValue, "invalid", "only to someone watching")

        let handed = try ana.commandAnswer("h1", f.linkedTicket, "session_handover", ["session": .string(session), "technician": "tech-2"])
        XCTAssertEqual(handed["type"]?.stringValue, "result", "\(handed)")
        let event = try ben.next { Match.systemMessage(f.linkedTicket)($0) && $0["data"]?["body"]?.stringValue?.contains("handed") == true }
        XCTAssertEqual(event["data"]?["body"]?.stringValue, "Tech 1 handed the shell keyboard to Tech 2.", "every viewer sees who types")

        try input(ben, f, session, "uptime\n", id: "ben-1")
        XCTAssertEqual(try agent.next(type: "session_input")["data"]?.stringValue, "uptime\n")
        try input(ana, f, session, "whoami\n", id: "ana-1")
        XCTAssertEqual(try error(ana, id: "ana-1")["code"]?.stringValue, "forbidden", "the keyboard left Ana")
        XCTAssertEqual(agent.drain(for: 0.3).filter { $0["type"]?.stringValue == "session_input" }.count, 0)
    }

    func testShell_agentDisconnects_sessionEndedForEveryViewer() throws {
        let f = try AgentFixture(consentTimeout: 10)
        defer { f.stop() }
        let (ana, _) = try f.viewer(f.linkedTicket)
        let agent = try f.agent()
        let session = try activeShell(f, ana, agent)
        agent.close()
        let ended = try ana.nextDelta("session.status", ticket: f.linkedTicket)
        XCTAssertEqual(ended["data"]?["status"]?.stringValue, "ended")
        XCTAssertEqual(ended["data"]?["session"]?.stringValue, session)
        XCTAssertEqual(try ana.next(where: Match.systemMessage(f.linkedTicket))["data"]?["body"]?.stringValue,
                       "The agent on \(AgentFixture.assetName) disconnected; the remote shell session ended.")
        XCTAssertEqual(try f.ticketState(f.linkedTicket)["state"]?["session"]?["status"]?.stringValue, "ended")
    }

    /// A shell cut off by a crash: the killed process ended nothing, so its
    /// row is still `active` (made so here after a clean stop, whose agent
    /// disconnect had ended it). The restarted server ends it with a system
    /// event, pushed as `session.status` to a viewer resuming with `since`;
    /// before, it stayed `active` until someone sent `end_session`.
    func testShell_leftActiveByAKilledServer_endedOnStart() throws {
        let f = try AgentFixture(consentTimeout: 10)
        defer { f.stop() }
        let (ana, _) = try f.viewer(f.linkedTicket)
        let agent = try f.agent()
        let session = try activeShell(f, ana, agent)
        ana.close()
        agent.close()
        f.server.stop()
        // What SIGKILL leaves: the session still active, nothing after it.
        let seqBefore: Int = try {
            let store = try SQLiteTicketStore(path: f.server.directory + "/peek.sqlite")
            try store.updateSession(id: session, status: .active, startedAt: nil)
            XCTAssertEqual(try store.session(session)?.status, .active)
            return try XCTUnwrap(store.ticket(f.linkedTicket)?.seq)
        }()

        try f.restart(after: 0)
        let (resumer, _) = try f.viewer(as: "tech-2")
        try resumer.send(["type": "subscribe", "id": "r", "ticket": .string(f.linkedTicket), "since": .int(seqBefore)])
        let log = try resumer.read(until: Match.systemMessage(f.linkedTicket))
        let ended = try XCTUnwrap(log.first(where: Match.delta("session.status", f.linkedTicket)), "no session.status: \(log)")
        XCTAssertEqual(ended["data"]?["status"]?.stringValue, "ended")
        XCTAssertEqual(ended["data"]?["session"]?.stringValue, session)
        XCTAssertEqual(log.last?["data"]?["body"]?.stringValue,
                       "The remote shell session ended because the server restarted; its output was not kept.")
        let state = try f.ticketState(f.linkedTicket)
        XCTAssertEqual(state["state"]?["session"]?["status"]?.stringValue, "ended")
        XCTAssertEqual(state["seq"]?.intValue, seqBefore + 2, "one session.status and one system event")
        // A new shell may start at once: the cut one no longer blocks it.
        let again = try f.agent()
        XCTAssertNotEqual(try activeShell(f, resumer, again), session)
    }

    func testShell_idle_endsWithSystemEvent() throws {
        let f = try AgentFixture(consentTimeout: 10, configure: { $0.shellIdleSeconds = 1 })
        defer { f.stop() }
        let (ana, _) = try f.viewer(f.linkedTicket)
        let agent = try f.agent()
        let session = try activeShell(f, ana, agent)
        let ended = try ana.nextDelta("session.status", ticket: f.linkedTicket, timeout: 10)
        XCTAssertEqual(ended["data"]?["status"]?.stringValue, "ended")
        XCTAssertEqual(try ana.next(where: Match.systemMessage(f.linkedTicket))["data"]?["body"]?.stringValue,
                       "The remote shell session ended after 1 minute without input or output.")
        XCTAssertEqual(try agent.next(type: "session_ended")["session"]?.stringValue, session)
    }

    func testShell_outputOverRate_droppedForViewers() throws {
        let f = try AgentFixture(consentTimeout: 10, configure: { $0.shellOutputBytesPerSecond = 1024 })
        defer { f.stop() }
        let (ana, _) = try f.viewer(f.linkedTicket)
        let agent = try f.agent()
        let session = try activeShell(f, ana, agent)
        let sent = 30
        for n in 0..<sent {
            let chunk = String(format: "%04d", n) + String(repeating: ".", count: 1020)
            try agent.send(["type": "session_output", "session": .string(session), "data": .string(chunk)])
        }
        let seen = outputs(ana.drain(for: 2.0), f.linkedTicket)
        // Burst 2 KiB, then 1 KiB a second: far fewer than sent, however slow the machine.
        XCTAssertGreaterThanOrEqual(seen.count, 2, "the burst gets through")
        XCTAssertLessThan(seen.count, sent / 2, "over the rate, viewers miss output: saw \(seen.count)")
        XCTAssertEqual(seen.first.map { String($0.prefix(4)) }, "0000")
        XCTAssertEqual(Match.count(agent.drain(for: 0.3), { $0["type"]?.stringValue == "error" }), 0, "the agent is not refused")
    }

    func testShell_otherTenant_cannotTypeOrHandOver() throws {
        let f = try AgentFixture(consentTimeout: 10)
        defer { f.stop() }
        let (ana, _) = try f.viewer(f.linkedTicket)
        let agent = try f.agent()
        let session = try activeShell(f, ana, agent)
        _ = try f.server.seed(tenant: "globex", technicians: 1, tickets: 1)
        let intruder = try f.server.technician("tech-1", tenant: "globex")
        try input(intruder, f, session, "cat /etc/passwd\n", id: "x1")
        XCTAssertEqual(try error(intruder, id: "x1")["code"]?.stringValue, "invalid", "another tenant's shell reads as none")
        let handover = try intruder.commandAnswer("x2", f.linkedTicket, "session_handover", ["session": .string(session), "technician": "tech-1"])
        XCTAssertEqual(handover["code"]?.stringValue, "not_found")
        XCTAssertEqual(agent.drain(for: 0.5).filter { $0["type"]?.stringValue == "session_input" }.count, 0)
        // Output never reaches the other tenant either.
        try agent.send(["type": "session_output", "session": .string(session), "data": "secret\n"])
        XCTAssertEqual(outputs(try ana.read(until: Match.delta("session.output", f.linkedTicket)), f.linkedTicket), ["secret\n"])
        XCTAssertEqual(Match.count(intruder.drain(for: 0.3), Match.delta("session.output")), 0)
    }

    func testShell_outputForAnotherDevicesSession_notFound() throws {
        let f = try AgentFixture()
        defer { f.stop() }
        let agent = try f.agent()
        try agent.send(["type": "session_output", "session": "S-doesnotexist", "data": "x"])
        XCTAssertEqual(try agent.next(type: "error")["code"]?.stringValue, "not_found")
    }

    // MARK: Transcript

    /// Reads up to the transcript's system event; checks its attachment
    /// and answers the downloaded transcript.
    private func transcript(_ f: AgentFixture, _ viewer: TestWebSocketClient, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let event = try viewer.next(timeout: 10) { Match.systemMessage(f.linkedTicket)($0) && $0["data"]?["body"]?.stringValue?.contains("transcript") == true }
        XCTAssertEqual(event["data"]?["body"]?.stringValue, "Remote shell session by Tech 1, 1 min, transcript attached.", file: file, line: line)
        XCTAssertNotNil(event["seq"], "a durable system event", file: file, line: line)
        let attachment = try XCTUnwrap(event["data"]?["attachments"]?.arrayValue?.first, "\(event)", file: file, line: line)
        XCTAssertEqual(attachment["content_type"]?.stringValue, "text/plain", file: file, line: line)
        let id = try XCTUnwrap(attachment["id"]?.stringValue)
        let download = try f.server.request("GET", "/v1/attachments/\(id)")
        XCTAssertEqual(download.status, 200, download.text, file: file, line: line)
        XCTAssertEqual(attachment["size"]?.intValue, download.body.count, file: file, line: line)
        return download.text
    }

    func testShell_endSession_transcriptOfAllOutputAttached_evenWhatViewersMissed() throws {
        let (f, ana, ben, agent, session) = try shellWithTwoViewers(configure: { $0.shellOutputBytesPerSecond = 1024 })
        defer { f.stop() }
        let chunks = (0..<12).map { String(format: "%04d ", $0) + String(repeating: "é", count: 300) + "\n" }   // 600+ bytes each
        for c in chunks { try agent.send(["type": "session_output", "session": .string(session), "data": .string(c)]) }
        // The last chunk is in the engine once an answer to a later agent frame is.
        try agent.send(["type": "session_output", "session": "S-doesnotexist", "data": "x"])
        _ = try agent.next(type: "error")
        XCTAssertEqual(try ana.commandAnswer("end", f.linkedTicket, "end_session")["type"]?.stringValue, "result")
        XCTAssertEqual(try transcript(f, ben), chunks.joined(), "every chunk, in order, the rate-dropped ones included")
    }

    func testShell_agentDisconnects_transcriptAttached() throws {
        let f = try AgentFixture(consentTimeout: 10)
        defer { f.stop() }
        let (ana, _) = try f.viewer(f.linkedTicket)
        let agent = try f.agent()
        let session = try activeShell(f, ana, agent)
        try agent.send(["type": "session_output", "session": .string(session), "data": "before the cable was pulled\n"])
        _ = try ana.nextDelta("session.output", ticket: f.linkedTicket)
        agent.close()
        XCTAssertEqual(try transcript(f, ana), "before the cable was pulled\n")
    }

    func testShell_transcriptOverBound_truncatedWithMarker() throws {
        let f = try AgentFixture(consentTimeout: 10, configure: { $0.agentFramesPerSecond = 200 })
        defer { f.stop() }
        let (ana, _) = try f.viewer(f.linkedTicket)
        let agent = try f.agent()
        let session = try activeShell(f, ana, agent)
        let chunk = String(repeating: "0123456789abcdef", count: 1024)   // 16 KiB
        for _ in 0..<66 { try agent.send(["type": "session_output", "session": .string(session), "data": .string(chunk)]) }
        try agent.send(["type": "session_output", "session": "S-doesnotexist", "data": "x"])
        _ = try agent.next(type: "error", timeout: 15)
        XCTAssertEqual(try ana.commandAnswer("end", f.linkedTicket, "end_session")["type"]?.stringValue, "result")
        let text = try transcript(f, ana)
        XCTAssertEqual(text.utf8.count, 1024 * 1024 + "\n[transcript truncated at 1 MiB]\n".utf8.count)
        XCTAssertTrue(text.hasSuffix("\n[transcript truncated at 1 MiB]\n"))
        XCTAssertTrue(text.hasPrefix(chunk))
    }
}
