import XCTest
import Foundation
import PeekCore
import PeekStore
import PeekTestSupport

/// SLA clocks end to end: the tenant's policy, `sla.tick`s counting down,
/// each breach recorded and pushed exactly once (also across a restart),
/// and the statuses that stop or pause the resolution clock.
final class SLALiveTests: XCTestCase {
    private func putPolicy(_ server: TestServer, response: Int, resolution: Int) throws {
        let r = try server.api("PUT", "/v1/tenants/acme/sla-policy",
                               ["normal": ["response": .int(response), "resolution": .int(resolution)]])
        XCTAssertEqual(r.status, 200, r.text)
        XCTAssertEqual(r.json?["normal"]?["response"]?.intValue, response)
    }

    /// A server with tenant acme and the given normal-priority policy, set
    /// BEFORE any ticket exists (targets are fixed at creation).
    private func makeServer(response: Int, resolution: Int, directory: String? = nil) throws -> TestServer {
        let server = try TestServer(directory: directory) { $0.slaTickSeconds = 1 }
        try server.seed(tenant: "acme", technicians: 2, tickets: 0)
        try putPolicy(server, response: response, resolution: resolution)
        return server
    }

    private func ticks(_ messages: [JSONValue], _ ticket: String) -> [JSONValue] {
        messages.filter(Match.delta("sla.tick", ticket)).compactMap { $0["data"] }
    }

    func testSLATick_shortTargets_ticksCountDownWithFullShape() throws {
        let server = try makeServer(response: 60, resolution: 120)
        defer { server.stop() }
        let ticket = try AgentFixture.createTicket(server, asset: nil)
        let tech = try server.technician()
        try tech.send(["type": "subscribe", "id": "s", "ticket": .string(ticket)])
        let snapshot = try tech.next(type: "snapshot")
        let sla = try XCTUnwrap(snapshot["state"]?["sla"])
        XCTAssertEqual(sla["response"]?["breached"]?.boolValue, false)
        XCTAssertEqual(sla["response"]?["paused"]?.boolValue, false)
        XCTAssert((58...60).contains(sla["response"]?["remaining"]?.intValue ?? -1), "\(sla)")
        XCTAssert((118...120).contains(sla["resolution"]?["remaining"]?.intValue ?? -1), "\(sla)")

        var seen: [JSONValue] = []
        for _ in 0..<3 {
            let tick = try tech.nextDelta("sla.tick", ticket: ticket, timeout: 5)
            XCTAssertNil(tick["seq"], "sla.tick is ephemeral")
            seen.append(try XCTUnwrap(tick["data"]))
        }
        for data in seen {
            for target in ["response", "resolution"] {
                let clock = try XCTUnwrap(data[target]?.objectValue, "\(target) in \(data)")
                XCTAssertEqual(Set(clock.keys), ["due_at", "remaining", "breached", "paused"])
                XCTAssertEqual(clock["due_at"], sla[target]?["due_at"], "due_at is fixed")
                XCTAssertEqual(clock["breached"], false)
                XCTAssertEqual(clock["paused"], false)
            }
        }
        // Ticks are at least a second apart, so whole seconds strictly fall.
        let remaining = seen.compactMap { $0["response"]?["remaining"]?.intValue }
        XCTAssertEqual(remaining.count, 3)
        XCTAssert(remaining[0] > remaining[1] && remaining[1] > remaining[2], "\(remaining)")
        XCTAssert(remaining[0] <= 60 && remaining[2] >= 50, "\(remaining)")
        let due = try XCTUnwrap(seen[0]["response"]?["due_at"]?.stringValue.flatMap(Timestamp.parse))
        let created = try XCTUnwrap(snapshot["state"]?["ticket"]?["created_at"]?.stringValue.flatMap(Timestamp.parse))
        XCTAssertEqual(due - created, 60_000)
    }

    func testSLABreach_twoViewers_eachTargetBreachedExactlyOnceWithSystemMessage() throws {
        let server = try makeServer(response: 2, resolution: 3)
        defer { server.stop() }
        let ticket = try AgentFixture.createTicket(server, asset: nil)
        // `since: 0` on a fresh ticket: every durable delta exactly once,
        // whether the breach lands before or after the subscribe.
        var viewers: [TestWebSocketClient] = []
        for user in ["tech-1", "tech-2"] {
            let c = try server.technician(user)
            try c.send(["type": "subscribe", "id": "s", "ticket": .string(ticket), "since": 0])
            try c.next(type: "subscribed")
            viewers.append(c)
        }
        for c in viewers {
            let log = try c.read(until: { Match.delta("sla.breached", ticket)($0) && $0["data"]?["target"]?.stringValue == "resolution" },
                                 timeout: 10)
            let durable = log.filter { $0["type"]?.stringValue == "delta" && $0["seq"] != nil }
            XCTAssertEqual(durable.compactMap { $0["seq"]?.intValue }, Array(1...durable.count), "durable seqs 1, 2, ... in order")
            let breaches = durable.filter(Match.delta("sla.breached"))
            XCTAssertEqual(breaches.compactMap { $0["data"]?["target"]?.stringValue }, ["response", "resolution"])
            for b in breaches { XCTAssertNotNil(b["data"]?["due_at"]?.stringValue.flatMap(Timestamp.parse)) }
            // Each breach is followed by its system event.
            let systems = durable.filter(Match.systemMessage(ticket))
            XCTAssertEqual(systems.count, 1, "the resolution's system event comes after the delta read up to")
            XCTAssert(systems.first?["data"]?["body"]?.stringValue?.contains("response SLA was breached") == true, "\(systems)")
            let rest = c.drain(for: 2.0)
            XCTAssertEqual(Match.count(rest, Match.delta("sla.breached")), 0, "a breach pushed twice: \(rest)")
            let restSystem = rest.filter(Match.systemMessage(ticket))
            XCTAssertEqual(restSystem.count, 1)
            XCTAssert(restSystem.first?["data"]?["body"]?.stringValue?.contains("resolution SLA was breached") == true)
            // Ticks now read breached with negative remaining.
            let lastTick = try XCTUnwrap(ticks(rest, ticket).last)
            XCTAssertEqual(lastTick["response"]?["breached"]?.boolValue, true)
            XCTAssertLessThan(lastTick["response"]?["remaining"]?.intValue ?? 0, 0)
            XCTAssertEqual(lastTick["resolution"]?["breached"]?.boolValue, true)
        }
        let state = try XCTUnwrap(server.api("GET", "/v1/tickets/\(ticket)").json)
        XCTAssertEqual(state["seq"]?.intValue, 4, "two breaches and two system events")
        XCTAssertEqual(state["state"]?["sla"]?["response"]?["breached"]?.boolValue, true)
    }

    /// A breach whose batch the database rolls back (a full disk, a lost
    /// connection) used to be dropped: the timer was popped, the ticket in
    /// memory already said breached, and the next deadline was the later
    /// target's, so the breach stayed unrecorded until a restart. Now the
    /// check runs again a second later until it is stored.
    func testSLABreach_batchRolledBackByTheDatabase_recordedOnceItWorksAgain() throws {
        let server = try makeServer(response: 2, resolution: 3600)
        defer { server.stop() }
        let ticket = try AgentFixture.createTicket(server, asset: nil)
        let db = try Database(path: server.directory + "/peek.sqlite")
        try db.execute("""
            CREATE TRIGGER fail_breach BEFORE INSERT ON deltas WHEN NEW.kind = 'sla.breached'
            BEGIN SELECT RAISE(ROLLBACK, 'simulated rollback by the database'); END;
            """)
        let tech = try server.technician()
        try tech.send(["type": "subscribe", "id": "s", "ticket": .string(ticket), "since": 0])
        let base = try XCTUnwrap(tech.next(type: "subscribed")["seq"]?.intValue)
        // Past the response target: the breach is tried and rolled back.
        Thread.sleep(forTimeInterval: 4)
        XCTAssertEqual(try server.api("GET", "/v1/tickets/\(ticket)").json?["seq"]?.intValue, base, "nothing stored yet")
        try db.execute("DROP TRIGGER fail_breach")
        let breach = try tech.nextDelta("sla.breached", ticket: ticket, timeout: 10)
        XCTAssertEqual(breach["data"]?["target"]?.stringValue, "response")
        XCTAssertEqual(breach["seq"]?.intValue, base + 1)
        XCTAssertEqual(Match.count(tech.drain(for: 2.5), Match.delta("sla.breached")), 0, "the breach is recorded once")
    }

    func testSLABreach_fellDueWhileServerDown_pushedOnceAfterRestart() throws {
        let directory = NSTemporaryDirectory() + "peekd-sla-restart-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var server: TestServer? = try makeServer(response: 3, resolution: 4, directory: directory)
        let ticket = try AgentFixture.createTicket(server!, asset: nil)
        let createdSeq = try XCTUnwrap(server!.api("GET", "/v1/tickets/\(ticket)").json?["seq"]?.intValue)
        server!.stop()
        server = nil
        Thread.sleep(forTimeInterval: 4.5)   // let both targets fall due while nothing runs; not an assertion

        let restartedAt = Int64(Date().timeIntervalSince1970 * 1000)
        let again = try TestServer(directory: directory) { $0.slaTickSeconds = 1 }
        defer { again.stop() }
        let live = try again.technician()
        try live.send(["type": "subscribe", "id": "s", "ticket": .string(ticket), "since": .int(createdSeq)])
        let log = try live.read(until: { Match.delta("sla.breached", ticket)($0) && $0["data"]?["target"]?.stringValue == "resolution" },
                                timeout: 10)
        let breaches = log.filter(Match.delta("sla.breached", ticket))
        XCTAssertEqual(breaches.compactMap { $0["data"]?["target"]?.stringValue }, ["response", "resolution"])
        for b in breaches {
            // Recorded by the restarted server, not before the stop.
            let at = try XCTUnwrap(b["at"]?.stringValue.flatMap(Timestamp.parse))
            XCTAssertGreaterThanOrEqual(at, restartedAt - 50, "\(b)")
        }
        XCTAssertEqual(Match.count(live.drain(for: 1.5), Match.delta("sla.breached")), 0)

        // In the log and the snapshot after the restart.
        let state = try XCTUnwrap(again.api("GET", "/v1/tickets/\(ticket)").json)
        XCTAssertEqual(state["seq"]?.intValue, createdSeq + 4)
        XCTAssertEqual(state["state"]?["sla"]?["response"]?["breached"]?.boolValue, true)
        XCTAssertEqual(state["state"]?["sla"]?["resolution"]?["breached"]?.boolValue, true)
        let bodies = state["state"]?["messages"]?.arrayValue?.filter { $0["channel"]?.stringValue == "system" }.compactMap { $0["body"]?.stringValue } ?? []
        XCTAssertEqual(bodies.count, 2, "\(bodies)")
        // A resume from before the outage replays each breach exactly once.
        let resumer = try again.technician("tech-2")
        try resumer.send(["type": "subscribe", "id": "r", "ticket": .string(ticket), "since": .int(createdSeq)])
        let replay = try resumer.read(until: { $0["type"]?.stringValue == "subscribed" })
        XCTAssertEqual(Match.count(replay, Match.delta("sla.breached", ticket)), 2)
    }

    func testResolutionClock_waitingOnCustomerPausesAndResolvedStops() throws {
        let server = try makeServer(response: 60, resolution: 120)
        defer { server.stop() }
        let ticket = try AgentFixture.createTicket(server, asset: nil)
        let tech = try server.technician()
        try tech.send(["type": "subscribe", "id": "s", "ticket": .string(ticket)])
        let dueBefore = try XCTUnwrap(tech.next(type: "snapshot")["state"]?["sla"]?["resolution"]?["due_at"]?.stringValue.flatMap(Timestamp.parse))

        XCTAssertEqual(try tech.commandAnswer("w", ticket, "set_status", ["status": "waiting_on_customer"])["type"]?.stringValue, "result")
        _ = try tech.read(until: Match.delta("ticket.updated", ticket))
        // Every tick after the change reads paused, with the remaining frozen.
        var paused: [JSONValue] = []
        for _ in 0..<2 { paused.append(try XCTUnwrap(tech.nextDelta("sla.tick", ticket: ticket, timeout: 5)["data"])) }
        for p in paused {
            XCTAssertEqual(p["resolution"]?["paused"]?.boolValue, true, "\(p)")
            XCTAssertEqual(p["resolution"]?["breached"]?.boolValue, false)
            XCTAssertEqual(p["response"]?["paused"]?.boolValue, false, "the response clock never pauses")
        }
        XCTAssertEqual(paused[0]["resolution"]?["remaining"], paused[1]["resolution"]?["remaining"])
        XCTAssertNotEqual(paused[0]["response"]?["remaining"], paused[1]["response"]?["remaining"])

        // Back to open: running again, due later by the paused span.
        XCTAssertEqual(try tech.commandAnswer("o", ticket, "set_status", ["status": "open"])["type"]?.stringValue, "result")
        _ = try tech.read(until: Match.delta("ticket.updated", ticket))
        let resumed = try XCTUnwrap(tech.nextDelta("sla.tick", ticket: ticket, timeout: 5)["data"])
        XCTAssertEqual(resumed["resolution"]?["paused"]?.boolValue, false)
        let dueAfter = try XCTUnwrap(resumed["resolution"]?["due_at"]?.stringValue.flatMap(Timestamp.parse))
        XCTAssertGreaterThanOrEqual(dueAfter - dueBefore, 1000, "the paused span (two ticks) moves the due time")

        // Resolved: both clocks stop (null), in ticks and in the snapshot.
        XCTAssertEqual(try tech.commandAnswer("r", ticket, "set_status", ["status": "resolved"])["type"]?.stringValue, "result")
        _ = try tech.read(until: Match.delta("ticket.updated", ticket))
        let stopped = try XCTUnwrap(tech.nextDelta("sla.tick", ticket: ticket, timeout: 5)["data"])
        XCTAssertEqual(stopped["resolution"], .null)
        XCTAssertEqual(stopped["response"], .null)
        let sla = try XCTUnwrap(server.api("GET", "/v1/tickets/\(ticket)").json?["state"]?["sla"])
        XCTAssertEqual(sla["resolution"], .null)
        XCTAssertEqual(sla["response"], .null)
    }

    /// A stopped clock is null, so the card cannot tell "met" from "missed"
    /// without the targets: `sla.targets` keeps each target's due time and
    /// whether it was breached, running or not, in snapshots and ticks.
    func testSLATargets_resolvedAfterABreach_stillSayDueAtAndBreached() throws {
        let server = try makeServer(response: 60, resolution: 1)
        defer { server.stop() }
        let ticket = try AgentFixture.createTicket(server, asset: nil)
        let tech = try server.technician()
        try tech.send(["type": "subscribe", "id": "s", "ticket": .string(ticket)])
        let first = try XCTUnwrap(tech.next(type: "snapshot")["state"]?["sla"])
        let responseDue = try XCTUnwrap(first["response"]?["due_at"]?.stringValue)
        let resolutionDue = try XCTUnwrap(first["resolution"]?["due_at"]?.stringValue)
        XCTAssertEqual(first["targets"]?["response"]?["due_at"]?.stringValue, responseDue)
        XCTAssertEqual(first["targets"]?["resolution"]?["breached"]?.boolValue, false)

        try tech.nextDelta("sla.breached", ticket: ticket, timeout: 10)
        XCTAssertEqual(try tech.commandAnswer("r", ticket, "set_status", ["status": "resolved"])["type"]?.stringValue, "result")
        _ = try tech.read(until: Match.delta("ticket.updated", ticket))
        let tick = try XCTUnwrap(tech.nextDelta("sla.tick", ticket: ticket, timeout: 5)["data"])
        let sla = try XCTUnwrap(server.api("GET", "/v1/tickets/\(ticket)").json?["state"]?["sla"])
        for stopped in [tick, sla] {
            XCTAssertEqual(stopped["resolution"], .null, "the clocks stop as before: \(stopped)")
            XCTAssertEqual(stopped["response"], .null)
            XCTAssertEqual(stopped["targets"]?["resolution"]?["due_at"]?.stringValue, resolutionDue)
            XCTAssertEqual(stopped["targets"]?["resolution"]?["breached"]?.boolValue, true)
            XCTAssertEqual(stopped["targets"]?["response"]?["due_at"]?.stringValue, responseDue)
            XCTAssertEqual(stopped["targets"]?["response"]?["breached"]?.boolValue, false)
        }
    }

    func testResponseClock_firstReplySent_clockStopsAndNeverBreaches() throws {
        let server = try makeServer(response: 3, resolution: 60)
        defer { server.stop() }
        let smtp = try TestSMTPServer()
        defer { smtp.stop() }
        XCTAssertEqual(try server.putEmailAccount(port: smtp.port, security: "none").status, 200)
        let ticket = try AgentFixture.createTicket(server, asset: nil)
        let tech = try server.technician()
        try tech.send(["type": "subscribe", "id": "s", "ticket": .string(ticket)])
        XCTAssertEqual(try tech.next(type: "snapshot")["state"]?["sla"]?["response"]?["paused"]?.boolValue, false)

        let answer = try tech.commandAnswer("r1", ticket, "reply", ["body": "On it."], timeout: 20)
        XCTAssertEqual(answer["type"]?.stringValue, "result", "\(answer)")
        let stamped = try tech.read(until: { Match.delta("ticket.updated", ticket)($0) && $0["data"]?["first_response_at"] != nil })
        XCTAssertNotNil(stamped.last?["data"]?["first_response_at"]?.stringValue.flatMap(Timestamp.parse))
        let tick = try XCTUnwrap(tech.nextDelta("sla.tick", ticket: ticket, timeout: 5)["data"])
        XCTAssertEqual(tick["response"], .null, "the first response stops the response clock")
        XCTAssertEqual(tick["resolution"]?["paused"]?.boolValue, false)
        // Past the response target: no breach follows.
        let later = tech.drain(for: 3.5)
        XCTAssertEqual(Match.count(later, Match.delta("sla.breached")), 0, "\(later)")
        XCTAssertEqual(try server.api("GET", "/v1/tickets/\(ticket)").json?["state"]?["sla"]?["response"], .null)
    }

    func testResolutionClock_pausedPastItsDueTime_noBreach() throws {
        let server = try makeServer(response: 60, resolution: 2)
        defer { server.stop() }
        let ticket = try AgentFixture.createTicket(server, asset: nil)
        let tech = try server.technician()
        try tech.send(["type": "subscribe", "id": "s", "ticket": .string(ticket)])
        try tech.next(type: "snapshot")
        XCTAssertEqual(try tech.commandAnswer("w", ticket, "set_status", ["status": "waiting_on_customer"])["type"]?.stringValue, "result")
        let later = tech.drain(for: 3.0)
        XCTAssertEqual(Match.count(later, Match.delta("sla.breached")), 0, "a paused clock cannot breach: \(later)")
        let last = try XCTUnwrap(ticks(later, ticket).last)
        XCTAssertEqual(last["resolution"]?["breached"]?.boolValue, false)
        XCTAssertEqual(last["resolution"]?["paused"]?.boolValue, true)
    }

    func testResolutionClock_ticketCreatedWaitingOnCustomer_startsPausedAndCannotBreach() throws {
        let server = try makeServer(response: 60, resolution: 2)
        defer { server.stop() }
        let ticket = try AgentFixture.createTicket(server, asset: nil, extra: ["status": "waiting_on_customer"])
        let tech = try server.technician()
        try tech.send(["type": "subscribe", "id": "s", "ticket": .string(ticket)])
        let resolution = try XCTUnwrap(tech.next(type: "snapshot")["state"]?["sla"]?["resolution"])
        XCTAssertEqual(resolution["paused"]?.boolValue, true, "\(resolution)")
        let later = tech.drain(for: 3.0)
        XCTAssertEqual(Match.count(later, Match.delta("sla.breached")), 0, "\(later)")
        let last = try XCTUnwrap(ticks(later, ticket).last)
        XCTAssertEqual(last["resolution"]?["paused"]?.boolValue, true)
        XCTAssertEqual(last["resolution"]?["remaining"], resolution["remaining"], "frozen since creation")
    }

    func testSLAPolicy_badBody_400() throws {
        let server = try TestServer()
        defer { server.stop() }
        try server.seed(tenant: "acme", technicians: 1, tickets: 0)
        let r = try server.api("PUT", "/v1/tenants/acme/sla-policy", ["normal": ["response": 0, "resolution": 10]])
        XCTAssertEqual(r.status, 400)
        XCTAssertEqual(r.json?["error"]?["code"]?.stringValue, "invalid")
        let unknown = try server.api("PUT", "/v1/tenants/nobody/sla-policy", ["normal": ["response": 1, "resolution": 10]])
        XCTAssertEqual(unknown.status, 404)
    }
}
