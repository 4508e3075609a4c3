import XCTest
import Foundation
import PeekCore
import PeekTLS
import PeekTestSupport

/// The RMM agent socket over real mutual TLS: who may connect, what its
/// chat and telemetry become for technicians, and what never reaches it.
final class AgentSocketTests: XCTestCase {
    // MARK: Chat

    func testAgentChat_linkedTicket_storedAsCustomerMessageViaAgentMTLS() throws {
        let f = try AgentFixture()
        defer { f.stop() }
        let (viewer, snapshots) = try f.viewer(f.linkedTicket)
        let seqBefore = try XCTUnwrap(snapshots[0]["seq"]?.intValue)
        let agent = try f.agent()

        // The frame claims another channel and transport; the server's word is final.
        try agent.send(["type": "chat", "ticket": .string(f.linkedTicket), "body": "My screen went black again.",
                        "via": "email", "channel": "internal_note"])
        let delta = try viewer.nextDelta("message.created", ticket: f.linkedTicket)
        XCTAssertEqual(delta["seq"]?.intValue, seqBefore + 1)
        let data = try XCTUnwrap(delta["data"])
        XCTAssertEqual(data["channel"]?.stringValue, "customer")
        XCTAssertEqual(data["via"]?.stringValue, "agent_mtls")
        XCTAssertEqual(data["body"]?.stringValue, "My screen went black again.")
        XCTAssertEqual(data["author"]?["name"]?.stringValue, "Casey Customer")
        XCTAssertEqual(data["author"]?["id"]?.stringValue, "contact")
        XCTAssertEqual(data["attachments"]?.arrayValue, [])

        // Durable: a fresh snapshot has it as the newest message.
        let state = try f.ticketState(f.linkedTicket)
        XCTAssertEqual(state["seq"]?.intValue, seqBefore + 1)
        let last = try XCTUnwrap(state["state"]?["messages"]?.arrayValue?.last)
        XCTAssertEqual(last["via"]?.stringValue, "agent_mtls")
        XCTAssertEqual(last["channel"]?.stringValue, "customer")
        XCTAssertEqual(last["body"]?.stringValue, "My screen went black again.")
        // Nothing went back to the agent for its own chat.
        XCTAssertEqual(agent.drain(for: 0.3).count, 0)
    }

    func testAgentChat_ticketNotLinkedToItsAsset_errorToAgentAndNothingStored() throws {
        let f = try AgentFixture()
        defer { f.stop() }
        let (viewer, snapshots) = try f.viewer(f.unlinkedTicket)
        let seqBefore = try XCTUnwrap(snapshots[0]["seq"]?.intValue)
        let agent = try f.agent()

        try agent.send(["type": "chat", "ticket": .string(f.unlinkedTicket), "body": "Let me into this one."])
        let error = try agent.next(type: "error")
        XCTAssertEqual(error["code"]?.stringValue, "not_found")
        try agent.send(["type": "chat", "ticket": "T-999999", "body": "Or this one."])
        XCTAssertEqual(try agent.next(type: "error")["code"]?.stringValue, "not_found")

        XCTAssertEqual(Match.count(viewer.drain(for: 0.5), Match.delta("message.created")), 0)
        let state = try f.ticketState(f.unlinkedTicket)
        XCTAssertEqual(state["seq"]?.intValue, seqBefore)
        XCTAssertEqual(state["state"]?["messages"]?.arrayValue?.count, snapshots[0]["state"]?["messages"]?.arrayValue?.count)
    }

    func testAgentFrame_malformed_invalidErrorAndConnectionStays() throws {
        let f = try AgentFixture()
        defer { f.stop() }
        let agent = try f.agent()
        try agent.sendText("{not json")
        XCTAssertEqual(try agent.next(type: "error")["code"]?.stringValue, "invalid")
        try agent.send(["type": "telemetry", "cpu": 150, "ram": 10, "disk": 10])
        XCTAssertEqual(try agent.next(type: "error")["code"]?.stringValue, "invalid")
        try agent.send(["type": "reboot"])
        XCTAssertEqual(try agent.next(type: "error")["code"]?.stringValue, "invalid")
        // Still usable afterwards.
        let (viewer, _) = try f.viewer(f.linkedTicket)
        try agent.send(["type": "chat", "ticket": .string(f.linkedTicket), "body": "still here"])
        XCTAssertEqual(try viewer.nextDelta("message.created")["data"]?["body"]?.stringValue, "still here")
    }

    func testAgentChat_flood_overTheRateRefusedAndStoredChatsBounded() throws {
        let f = try AgentFixture(configure: { $0.agentFramesPerSecond = 1 })   // a bucket of 2; technicians keep theirs
        defer { f.stop() }
        let (viewer, snapshots) = try f.viewer(f.linkedTicket)
        let seqBefore = try XCTUnwrap(snapshots[0]["seq"]?.intValue)
        let agent = try f.agent()

        let flood = 60
        let started = Date()
        for i in 0..<flood { try agent.send(["type": "chat", "ticket": .string(f.linkedTicket), "body": .string("flood \(i)")]) }
        // A second later the bucket holds a token again and the agent is heard.
        Thread.sleep(forTimeInterval: 1.2)
        try agent.send(["type": "chat", "ticket": .string(f.linkedTicket), "body": "after the flood"])
        let seen = try viewer.read(until: { Match.delta("message.created")($0) && $0["data"]?["body"]?.stringValue == "after the flood" })
        let elapsed = Date().timeIntervalSince(started)

        // An admitted chat is answered with nothing, a refused one with rate_limited (no id: agent frames have none).
        let refusals = agent.drain(for: 0.5).filter { $0["type"]?.stringValue == "error" }
        XCTAssertTrue(refusals.allSatisfy { $0["code"]?.stringValue == "rate_limited" && $0["id"] == nil }, "\(refusals)")
        XCTAssertEqual(refusals.first?["message"]?.stringValue, "Too many frames; slow down to 1 per second.")
        XCTAssertNil(agent.closeCode, "over the rate is refused frame by frame, not closed")
        let admitted = flood - refusals.count
        // The burst, plus one token a second until the last chat was read.
        XCTAssertGreaterThanOrEqual(admitted, 2)
        XCTAssertLessThanOrEqual(admitted + 1, 2 + Int(elapsed.rounded(.up)), "elapsed \(elapsed)s")

        // Each admitted chat is stored once; no refused one is.
        let stored = seen.filter(Match.delta("message.created"))
        XCTAssertEqual(stored.count, admitted + 1)
        XCTAssertEqual(stored.last?["seq"]?.intValue, seqBefore + admitted + 1)
        XCTAssertEqual(try f.ticketState(f.linkedTicket)["seq"]?.intValue, seqBefore + admitted + 1)
    }

    // MARK: Telemetry

    func testTelemetry_burstOfTwenty_coalescedToEveryLinkedTicketAndLastValueWins() throws {
        let f = try AgentFixture()
        defer { f.stop() }
        let (viewer, secondLinked) = try f.viewerOfEveryTicket()
        let agent = try f.agent()

        for i in 0..<20 {
            try agent.send(["type": "telemetry", "cpu": .double(Double(i) + 0.5), "ram": .int(40 + i), "disk": .int(70)])
        }
        // One reading now, the latest when the second is up: two pushes per
        // ticket, never one per reading.
        let got = viewer.drain(for: 2.5)
        for ticket in [f.linkedTicket, secondLinked] {
            let pushes = got.filter(Match.delta("asset.telemetry", ticket))
            XCTAssert((1...2).contains(pushes.count), "\(ticket): \(pushes.count) telemetry pushes: \(pushes)")
            for p in pushes {
                XCTAssertNil(p["seq"], "telemetry is ephemeral")
                XCTAssertEqual(p["data"]?["asset"]?["id"]?.stringValue, AgentFixture.assetID)
                XCTAssertEqual(p["data"]?["asset"]?["name"]?.stringValue, AgentFixture.assetName)
                XCTAssertNotNil(p["data"]?["at"]?.stringValue)
            }
            let last = try XCTUnwrap(pushes.last?["data"])
            XCTAssertEqual(last["cpu"]?.doubleValue, 19.5)
            XCTAssertEqual(last["ram"]?.doubleValue, 59)
            XCTAssertEqual(last["disk"]?.doubleValue, 70)
        }
        XCTAssertEqual(Match.count(got, Match.delta("asset.telemetry", f.unlinkedTicket)), 0)
        XCTAssertEqual(Match.count(got) { $0["type"]?.stringValue == "delta" && $0["seq"] != nil }, 0, "telemetry made durable deltas")

        // The latest values are in a snapshot taken afterwards.
        let (_, snaps) = try f.viewer(f.linkedTicket, as: "tech-2")
        let tile = try XCTUnwrap(snaps[0]["state"]?["asset"]?["telemetry"])
        XCTAssertEqual(tile["cpu"]?.doubleValue, 19.5)
        XCTAssertEqual(tile["ram"]?.doubleValue, 59)
        XCTAssertEqual(tile["disk"]?.doubleValue, 70)
        XCTAssertEqual(snaps[0]["state"]?["asset"]?["id"]?.stringValue, AgentFixture.assetID)
        XCTAssertEqual(snaps[0]["state"]?["asset"]?["agent_online"]?.boolValue, true)
    }

    func testTelemetry_coalescedReading_inSnapshotAfterRestart() throws {
        let f = try AgentFixture()
        defer { f.stop() }
        let (viewer, _) = try f.viewer(f.linkedTicket)
        let agent = try f.agent()
        for i in 0..<5 { try agent.send(["type": "telemetry", "cpu": .int(10 + i), "ram": 20, "disk": 30]) }
        // The flushed (latest) reading is what gets stored.
        try viewer.nextDelta("asset.telemetry", timeout: 5) { $0["data"]?["cpu"]?.doubleValue == 14 }
        agent.close()
        viewer.close()
        try f.restart(after: 0)
        let tile = try XCTUnwrap(f.ticketState(f.linkedTicket)["state"]?["asset"]?["telemetry"])
        XCTAssertEqual(tile["cpu"]?.doubleValue, 14)
        XCTAssertEqual(tile["ram"]?.doubleValue, 20)
        XCTAssertEqual(tile["disk"]?.doubleValue, 30)
        XCTAssertEqual(tile["asset"]?["id"]?.stringValue, AgentFixture.assetID)
        XCTAssertEqual(tile["asset"]?["name"]?.stringValue, AgentFixture.assetName)
    }

    /// Coalescing keys an asset by tenant and id together; a tenant id with
    /// a `/` (the back end may use one) must not be split into another
    /// tenant's asset when the held reading is flushed.
    func testTelemetry_tenantIDWithASlash_heldReadingFlushedToItsTicket() throws {
        let f = try AgentFixture(tenant: "acme/eu")
        defer { f.stop() }
        let (viewer, _) = try f.viewer(f.linkedTicket)
        let agent = try f.agent()
        for i in 0..<5 { try agent.send(["type": "telemetry", "cpu": .int(10 + i), "ram": 20, "disk": 30]) }
        // The first reading goes out at once; the last is held for the second and then flushed.
        try viewer.nextDelta("asset.telemetry", ticket: f.linkedTicket, timeout: 5) { $0["data"]?["cpu"]?.doubleValue == 14 }
        XCTAssertEqual(try f.ticketState(f.linkedTicket)["state"]?["asset"]?["telemetry"]?["cpu"]?.doubleValue, 14)
    }

    func testAgentSocket_binaryFrame_closed1003() throws {
        let f = try AgentFixture()
        defer { f.stop() }
        let agent = try f.agent()
        try agent.sendFrame(.binary, [1, 2, 3])
        XCTAssertEqual(try agent.awaitClose(), 1003)
    }

    func testTelemetry_readingsASecondApart_eachPushed() throws {
        let f = try AgentFixture()
        defer { f.stop() }
        let (viewer, _) = try f.viewer(f.linkedTicket)
        let agent = try f.agent()
        try agent.send(["type": "telemetry", "cpu": 10, "ram": 20, "disk": 30])
        XCTAssertEqual(try viewer.nextDelta("asset.telemetry")["data"]?["cpu"]?.doubleValue, 10)
        Thread.sleep(forTimeInterval: 1.1)   // let the coalescing window pass; not an assertion
        try agent.send(["type": "telemetry", "cpu": 11, "ram": 20, "disk": 30])
        XCTAssertEqual(try viewer.nextDelta("asset.telemetry")["data"]?["cpu"]?.doubleValue, 11)
    }

    // MARK: What reaches an agent

    func testAgentSocket_noteAndStatusChange_nothingReachesAgent() throws {
        let f = try AgentFixture()
        defer { f.stop() }
        let (tech, _) = try f.viewer(f.linkedTicket)
        let agent = try f.agent()

        XCTAssertEqual(try tech.commandAnswer("n1", f.linkedTicket, "note", ["body": "Customer's VPN cert is expired, do not tell them yet."])["type"]?.stringValue, "result")
        XCTAssertEqual(try tech.commandAnswer("s1", f.linkedTicket, "set_status", ["status": "in_progress"])["type"]?.stringValue, "result")
        XCTAssertEqual(try tech.commandAnswer("p1", f.linkedTicket, "set_priority", ["priority": "high"])["type"]?.stringValue, "result")
        XCTAssertEqual(try tech.commandAnswer("a1", f.linkedTicket, "take_ownership")["type"]?.stringValue, "result")
        // The technician did see the note and the system events...
        XCTAssertEqual(try tech.nextDelta("message.created") { $0["data"]?["channel"]?.stringValue == "internal_note" }["data"]?["via"]?.stringValue, "web")
        try tech.next(where: Match.systemMessage(f.linkedTicket))
        // ...the agent saw nothing at all.
        let leaked = agent.drain(for: 1.0)
        XCTAssertEqual(leaked.count, 0, "agent received \(leaked)")
    }

    func testAgentSocket_technicianReply_reachesAgentButNotOnUnlinkedTickets() throws {
        let f = try AgentFixture()
        defer { f.stop() }
        let smtp = try TestSMTPServer()
        defer { smtp.stop() }
        XCTAssertEqual(try f.server.putEmailAccount(port: smtp.port, security: "none").status, 200)
        let (tech, _) = try f.viewer(f.linkedTicket, f.unlinkedTicket)
        let agent = try f.agent()

        let answer = try tech.commandAnswer("r1", f.linkedTicket, "reply", ["body": "Please restart the laptop and tell me what you see."], timeout: 20)
        XCTAssertEqual(answer["type"]?.stringValue, "result", "\(answer)")
        let reply = try agent.next(type: "reply", timeout: 10)
        XCTAssertEqual(reply["ticket"]?.stringValue, f.linkedTicket)
        XCTAssertEqual(reply["body"]?.stringValue, "Please restart the laptop and tell me what you see.")
        XCTAssertEqual(reply["author"]?["id"]?.stringValue, "tech-1")
        XCTAssertEqual(reply["author"]?["name"]?.stringValue, "Tech 1")
        XCTAssertEqual(try smtp.waitForEnvelopes(1).count, 1)

        // A reply on a ticket of no asset of this agent's does not reach it.
        let other = try tech.commandAnswer("r2", f.unlinkedTicket, "reply", ["body": "Unrelated ticket."], timeout: 20)
        XCTAssertEqual(other["type"]?.stringValue, "result", "\(other)")
        XCTAssertEqual(try smtp.waitForEnvelopes(2).count, 2)
        XCTAssertEqual(try tech.commandAnswer("n1", f.linkedTicket, "note", ["body": "internal only"])["type"]?.stringValue, "result")
        let leaked = agent.drain(for: 0.8)
        XCTAssertEqual(leaked.count, 0, "agent received \(leaked)")
    }

    func testAgentSocket_technicianReplyRefusedByMailServer_nothingReachesAgent() throws {
        let f = try AgentFixture()
        defer { f.stop() }
        let smtp = try TestSMTPServer(options: .init(messageReply: .init(554, "5.7.1 Message rejected")))
        defer { smtp.stop() }
        XCTAssertEqual(try f.server.putEmailAccount(port: smtp.port, security: "none").status, 200)
        let (tech, _) = try f.viewer(f.linkedTicket)
        let agent = try f.agent()
        let answer = try tech.commandAnswer("r1", f.linkedTicket, "reply", ["body": "This one bounces."], timeout: 20)
        XCTAssertEqual(answer["code"]?.stringValue, "dispatch_failed", "\(answer)")
        let leaked = agent.drain(for: 0.8)
        XCTAssertEqual(leaked.count, 0, "agent received \(leaked)")
    }

    // MARK: Identity

    func testAgentConnect_validCertUnknownCommonName_closed4403() throws {
        var stranger: CertFactory.Identity?
        let f = try AgentFixture(prepare: { stranger = try $0.makeClient(commonName: "agent-nobody-knows") })
        defer { f.stop() }
        let client = try f.connectAgent(try XCTUnwrap(stranger))
        XCTAssertEqual(try client.awaitClose(), 4403)
        let frames = client.received
        XCTAssertEqual(frames.first?["type"]?.stringValue, "error")
        XCTAssertEqual(frames.first?["code"]?.stringValue, "forbidden")
        XCTAssertFalse(frames.contains { $0["type"]?.stringValue == "welcome" })
    }

    func testAgentConnect_foreignExpiredOrRevokedCert_refusedAtTLSHandshake() throws {
        var refused: [(String, CertFactory.Identity)] = []
        let f = try AgentFixture(prepare: { pki in
            // Each CN is registered below, so only the certificate can be the reason.
            refused = [
                ("foreign CA", try pki.makeClient(commonName: "agent-foreign", kind: .foreignCA)),
                ("expired", try pki.makeClient(commonName: "agent-expired", kind: .expired)),
                ("revoked", try pki.makeClient(commonName: "agent-revoked", kind: .revoked)),
            ]
        })
        defer { f.stop() }
        for (i, cn) in ["agent-foreign", "agent-expired", "agent-revoked"].enumerated() {
            let r = try f.server.api("POST", "/v1/tenants/acme/assets", ["id": .string("A-x\(i)"), "name": "Spare", "agent": .string(cn)])
            XCTAssertEqual(r.status, 201)
        }
        for (what, identity) in refused {
            do {
                let client = try f.connectAgent(identity)
                XCTFail("\(what): upgraded anyway: \(client.handshakeResponse)")
            } catch let e as TestSocketError {
                // TLS 1.3: the client's handshake completes first; the
                // server's alert arrives on the first read.
                XCTAssertNotNil(e.tlsError, "\(what): expected a TLS alert, got \(e)")
            }
        }
        // No certificate at all is refused the same way.
        XCTAssertThrowsError(try TestWebSocketClient(port: try XCTUnwrap(f.server.agentPort), path: "/v1/agent",
                                                     tls: try f.pki.makeClientContext(presenting: nil)))
        // And the listener still serves a good agent afterwards.
        _ = try f.agent()
    }

    func testAgentConnect_agentPathOnPlainListener_refused() throws {
        let f = try AgentFixture()
        defer { f.stop() }
        XCTAssertThrowsError(try TestWebSocketClient(port: f.server.port, path: "/v1/agent")) { error in
            XCTAssert("\(error)".contains("403"), "\(error)")
        }
    }

    func testAgentConnect_sameCommonNameTwice_firstClosed4409AndSecondWorks() throws {
        let f = try AgentFixture()
        defer { f.stop() }
        let (tech, _) = try f.viewer(f.linkedTicket)
        let first = try f.agent()
        let second = try f.agent()
        XCTAssertEqual(try first.awaitClose(), 4409)

        try second.send(["type": "chat", "ticket": .string(f.linkedTicket), "body": "from the new connection"])
        let delta = try tech.nextDelta("message.created")
        XCTAssertEqual(delta["data"]?["body"]?.stringValue, "from the new connection")
        XCTAssertEqual(delta["data"]?["via"]?.stringValue, "agent_mtls")
        // The engine routes to the newer connection: a consent request lands there.
        XCTAssertEqual(try tech.commandAnswer("ss", f.linkedTicket, "start_session")["type"]?.stringValue, "result")
        XCTAssertEqual(try second.next(type: "consent_request")["ticket"]?.stringValue, f.linkedTicket)
        // The replaced connection going away does not mark the agent offline.
        first.close()
        Thread.sleep(forTimeInterval: 0.3)   // let its disconnect reach the engine; not an assertion
        let (_, snaps) = try f.viewer(f.linkedTicket, as: "tech-2")
        XCTAssertEqual(snaps[0]["state"]?["asset"]?["agent_online"]?.boolValue, true)
    }

    // MARK: Agent status

    /// The badge follows the agent live (CONTRACT "Additions"): `agent.status`
    /// reaches the viewers of every ticket linked to the asset, and nobody else.
    func testAgentStatus_connectAndDisconnect_pushedToViewersOfLinkedTicketsOnly() throws {
        let f = try AgentFixture()
        defer { f.stop() }
        let (viewer, secondLinked) = try f.viewerOfEveryTicket()

        let agent = try f.agent()
        for ticket in [f.linkedTicket, secondLinked] {
            let d = try viewer.nextDelta("agent.status", ticket: ticket) { $0["data"]?["online"]?.boolValue == true }
            XCTAssertNil(d["seq"], "agent.status is ephemeral")
            XCTAssertEqual(d["data"]?["asset"]?["id"]?.stringValue, AgentFixture.assetID)
            XCTAssertEqual(d["data"]?["asset"]?["name"]?.stringValue, AgentFixture.assetName)
        }
        agent.close()
        for ticket in [f.linkedTicket, secondLinked] {
            try viewer.nextDelta("agent.status", ticket: ticket) { $0["data"]?["online"]?.boolValue == false }
        }
        let rest = viewer.drain(for: 0.5)
        XCTAssertEqual(Match.count(rest, Match.delta("agent.status", f.unlinkedTicket)), 0, "\(rest)")
        XCTAssertEqual(Match.count(rest) { $0["type"]?.stringValue == "delta" && $0["seq"] != nil }, 0, "agent.status made durable deltas")
    }

    /// A connection replaced by a newer one of the same agent going away is
    /// not the agent going offline.
    func testAgentStatus_replacedConnectionCloses_noOfflinePushed() throws {
        let f = try AgentFixture()
        defer { f.stop() }
        let (viewer, _) = try f.viewer(f.linkedTicket)
        let first = try f.agent()
        try viewer.nextDelta("agent.status", ticket: f.linkedTicket) { $0["data"]?["online"]?.boolValue == true }
        let second = try f.agent()
        defer { second.close() }
        XCTAssertEqual(try first.awaitClose(), 4409)
        first.close()
        let rest = viewer.drain(for: 1)
        let offline = rest.filter { Match.delta("agent.status", f.linkedTicket)($0) && $0["data"]?["online"]?.boolValue == false }
        XCTAssertEqual(offline.count, 0, "\(rest)")
    }

    func testAgentDisconnect_startSessionAfterwards_agentOffline() throws {
        let f = try AgentFixture()
        defer { f.stop() }
        let (tech, _) = try f.viewer(f.linkedTicket)
        let agent = try f.agent()
        agent.close()
        // The close reaches the engine asynchronously; poll until it shows.
        let deadline = Date().addingTimeInterval(8)
        var online = true
        while online && Date() < deadline {
            online = try f.ticketState(f.linkedTicket)["state"]?["asset"]?["agent_online"]?.boolValue ?? true
            if online { Thread.sleep(forTimeInterval: 0.05) }
        }
        XCTAssertFalse(online)
        XCTAssertEqual(try tech.commandAnswer("ss", f.linkedTicket, "start_session")["code"]?.stringValue, "agent_offline")
    }
}
