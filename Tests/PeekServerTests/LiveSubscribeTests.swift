import XCTest
import PeekCore
import PeekTestSupport
import PeekWebSocket

/// Subscribing and presence: the snapshot's shape, who is watching, what
/// they are writing, one entry per technician however many tabs, and dead
/// connections leaving the list on their own.
final class LiveSubscribeTests: XCTestCase {
    func testSubscribe_snapshotHasEveryStateFieldAndTheNewViewer() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let a = try server.technician("tech-1")
        let snap = try a.subscribe(ticket, id: "s1")
        XCTAssertEqual(snap["type"]?.stringValue, "snapshot")
        XCTAssertEqual(snap["id"]?.stringValue, "s1")
        XCTAssertEqual(snap["ticket"]?.stringValue, ticket)
        XCTAssertEqual(snap["seq"]?.intValue, 0)
        let state = try XCTUnwrap(snap["state"]?.objectValue)
        for key in ["ticket", "messages", "sla", "asset", "session", "summary", "time", "related", "viewers"] {
            XCTAssertNotNil(state[key], "state.\(key) is never missing")
        }
        let t = try XCTUnwrap(state["ticket"])
        for key in ["id", "number", "subject", "status", "priority", "assignee", "contact", "client", "asset", "first_response_at", "version"] {
            XCTAssertNotNil(t[key], "ticket.\(key) is never missing")
        }
        XCTAssertEqual(t["id"]?.stringValue, ticket)
        XCTAssertEqual(t["number"]?.intValue, ticketNumber(ticket))
        XCTAssertEqual(t["status"]?.stringValue, "new")
        XCTAssertEqual(t["assignee"], .null)
        XCTAssertEqual(t["contact"]?["email"]?.stringValue, "customer@example.com")
        XCTAssertEqual(state["messages"], [])
        XCTAssertEqual(state["time"]?["entries"], [])
        XCTAssertEqual(state["time"]?["active"], .null)
        XCTAssertEqual(state["viewers"], [["id": "tech-1", "name": "Tech 1", "composing": nil]])
        // ...and the newcomer is told the list too.
        try a.presence(ticket, is: ["tech-1"])
    }

    func testSubscribe_unknownTicket_notFoundWithID() throws {
        let server = try TestServer()
        defer { server.stop() }
        try server.seed()
        let a = try server.technician("tech-1")
        let e = try a.subscribe("T-424242", id: "s9")
        XCTAssertEqual(e["type"]?.stringValue, "error")
        XCTAssertEqual(e["code"]?.stringValue, "not_found")
        XCTAssertEqual(e["id"]?.stringValue, "s9")
    }

    func testSubscribe_overTheCapPerConnection_rateLimitedWhileTheFirstKeepWorking() throws {
        let server = try TestServer()
        defer { server.stop() }
        let cap = server.config.maxSubscriptionsPerConnection
        XCTAssertEqual(cap, 100, "protocol.md states 100")
        let tickets = try server.seed(technicians: 2, tickets: cap + 1)
        let extra = tickets[cap]
        let a = try server.technician("tech-1")
        let b = try server.technician("tech-2")
        defer { a.close(); b.close() }
        for (i, t) in tickets.prefix(cap).enumerated() {
            XCTAssertEqual(try a.subscribe(t, id: "s\(i)")["type"]?.stringValue, "snapshot")
        }

        let refused = try a.subscribe(extra, id: "s-over")
        XCTAssertEqual(refused["type"]?.stringValue, "error")
        XCTAssertEqual(refused["code"]?.stringValue, "rate_limited")
        XCTAssertEqual(refused["message"]?.stringValue,
                       "This connection already views 100 tickets, the most allowed; unsubscribe from one you no longer need, then subscribe again.")
        // Subscribing again to a ticket it views adds nothing and is answered as before.
        XCTAssertEqual(try a.subscribe(tickets[0], id: "s-again")["type"]?.stringValue, "snapshot")
        // The cap is per connection: another one views the ticket.
        XCTAssertEqual(try b.subscribe(extra)["type"]?.stringValue, "snapshot")

        // The first hundred keep working, and nothing of the refused ticket arrives.
        XCTAssertEqual(try b.run("n-extra", extra, "note", ["body": "not for a"])["type"]?.stringValue, "result")
        for (i, t) in [tickets[0], tickets[cap - 1]].enumerated() {
            XCTAssertEqual(try b.run("n\(i)", t, "note", ["body": "for a"])["type"]?.stringValue, "result")
            XCTAssertEqual(try a.delta("message.created", ticket: t)["data"]?["body"]?.stringValue, "for a")
        }
        XCTAssertFalse(a.received.contains { $0["ticket"]?.stringValue == extra }, "a delta of the refused ticket arrived")

        // Letting go of one ticket makes room for another.
        try a.send(["type": "unsubscribe", "ticket": .string(tickets[1])])
        XCTAssertEqual(try a.subscribe(extra, id: "s-room")["type"]?.stringValue, "snapshot")
        XCTAssertEqual(try a.subscribe(tickets[1], id: "s-full")["code"]?.stringValue, "rate_limited")
    }

    func testFirstFrameNotHello_unauthorizedAndClosed() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let c = try TestWebSocketClient(port: server.port)
        try c.send(["type": "subscribe", "id": "s1", "ticket": .string(ticket)])
        XCTAssertEqual(try c.next(type: "error")["code"]?.stringValue, "unauthorized")
        XCTAssertEqual(try c.awaitClose(), 4401)
    }

    func testUnsubscribe_stopsDeltasAndLeavesPresence() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed(technicians: 2)[0]
        let a = try server.technician("tech-1")
        let b = try server.technician("tech-2")
        try a.subscribe(ticket)
        try b.subscribe(ticket)
        try a.presence(ticket, is: ["tech-1", "tech-2"])
        try b.send(["type": "unsubscribe", "ticket": .string(ticket)])
        try a.presence(ticket, is: ["tech-1"])
        _ = b.drain(for: 0.2)   // what b had before unsubscribing
        XCTAssertEqual(try a.run("n1", ticket, "note", ["body": "hello"])["seq"]?.intValue, 1)
        try a.delta("message.created", ticket: ticket)
        XCTAssertFalse(b.drain(for: 0.5).contains { $0["ticket"]?.stringValue == ticket }, "no delta after unsubscribe")
    }

    /// The loop keeps each ticket's viewers in a list with O(1) removal (the
    /// last viewer moves into the leaver's slot). Leaving from the front, the
    /// middle and the end, by unsubscribe and by closing, must leave every
    /// remaining viewer in the list exactly once.
    func testViewersLeavingInAnyOrder_eachRemainingViewerGetsEachNoteOnce() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed(technicians: 4)[0]
        var viewers: [TestWebSocketClient] = []
        for i in 0..<10 {
            let v = try server.technician("tech-\(i % 4 + 1)")
            try v.subscribe(ticket)
            viewers.append(v)
        }
        let publisher = viewers[4]
        func notesSeen(by v: TestWebSocketClient, seq: Int) -> Int {
            v.drain(for: 0.15).filter {
                $0["type"]?.stringValue == "delta" && $0["ticket"]?.stringValue == ticket && $0["seq"]?.intValue == seq
            }.count
        }
        _ = viewers.map { $0.drain(for: 0.1) }

        // First, last, then one that has since moved into a freed slot.
        for i in [0, 9, 8] { try viewers[i].send(["type": "unsubscribe", "ticket": .string(ticket)]) }
        viewers[1].close()
        viewers[6].close()
        _ = viewers.map { $0.drain(for: 0.2) }
        let first = try XCTUnwrap(try publisher.run("n1", ticket, "note", ["body": "after leaving"])["seq"]?.intValue)
        for i in [2, 3, 4, 5, 7] { XCTAssertEqual(notesSeen(by: viewers[i], seq: first), 1, "viewer \(i)") }
        for i in [0, 8, 9] { XCTAssertEqual(notesSeen(by: viewers[i], seq: first), 0, "viewer \(i) unsubscribed") }

        // Coming back takes a fresh slot; the others keep theirs.
        try viewers[9].subscribe(ticket)
        _ = viewers[9].drain(for: 0.2)
        let second = try XCTUnwrap(try publisher.run("n2", ticket, "note", ["body": "after returning"])["seq"]?.intValue)
        for i in [2, 3, 4, 5, 7, 9] { XCTAssertEqual(notesSeen(by: viewers[i], seq: second), 1, "viewer \(i)") }
        XCTAssertEqual(notesSeen(by: viewers[0], seq: second), 0)
    }

    /// Subscribe and unsubscribe in one write: the loop reads the unsubscribe
    /// before the engine's snapshot comes back. The connection must end up
    /// not viewing, on the loop as in the engine (one loop, so that another
    /// viewer there would carry the ticket's deltas to it).
    func testSubscribeThenUnsubscribeInOneWrite_noDeltasAfterwards() throws {
        let server = try TestServer { $0.threads = 1 }
        defer { server.stop() }
        let ticket = try server.seed(technicians: 2)[0]
        let a = try server.technician("tech-1")
        let b = try server.technician("tech-2")
        try a.subscribe(ticket)
        let mask: [UInt8] = [1, 2, 3, 4]
        let both = FrameEncoder.frame(opcode: .text, payload: JSONWriter.encode(["type": "subscribe", "id": "s1", "ticket": .string(ticket)]), fin: true, mask: mask)
            + FrameEncoder.frame(opcode: .text, payload: JSONWriter.encode(["type": "unsubscribe", "ticket": .string(ticket)]), fin: true, mask: mask)
        try b.sendRaw(both)
        XCTAssertEqual(try b.next { $0["id"]?.stringValue == "s1" }["type"]?.stringValue, "snapshot")
        try a.presence(ticket, is: ["tech-1"])   // the engine has b gone
        let seq = try XCTUnwrap(try a.run("n1", ticket, "note", ["body": "after b left"])["seq"]?.intValue)
        XCTAssertFalse(b.drain(for: 0.5).contains { $0["ticket"]?.stringValue == ticket && $0["seq"]?.intValue == seq },
                       "a delta reached a connection that unsubscribed")
    }

    func testSecondHello_invalidAndTheConnectionCarriesOn() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed(technicians: 1)[0]
        let a = try server.technician("tech-1")
        try a.send(["type": "hello", "token": .string(server.token(tenant: "acme", user: "tech-1"))])
        let refused = try a.next { $0["type"]?.stringValue == "error" }
        XCTAssertEqual(refused["code"]?.stringValue, "invalid")
        XCTAssertEqual(refused["message"]?.stringValue, "Already signed in; send hello only once per connection.")
        XCTAssertEqual(try a.subscribe(ticket)["type"]?.stringValue, "snapshot")
        XCTAssertEqual(try a.run("n1", ticket, "note", ["body": "still here"])["seq"]?.intValue, 1)
    }

    // MARK: Presence

    func testPresence_everyViewerIsToldWhenTheListChanges() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed(technicians: 3)[0]
        let a = try server.technician("tech-1")
        let b = try server.technician("tech-2")
        let c = try server.technician("tech-3")
        try a.subscribe(ticket)
        try a.presence(ticket, is: ["tech-1"])
        let snapB = try b.subscribe(ticket)
        XCTAssertEqual(viewerIDs(snapB["state"]), ["tech-1", "tech-2"])
        for x in [a, b] { try x.presence(ticket, is: ["tech-1", "tech-2"]) }
        let snapC = try c.subscribe(ticket)
        XCTAssertEqual(viewerIDs(snapC["state"]), ["tech-1", "tech-2", "tech-3"])
        for x in [a, b, c] { try x.presence(ticket, is: ["tech-1", "tech-2", "tech-3"]) }
        b.close()
        for x in [a, c] { try x.presence(ticket, is: ["tech-1", "tech-3"]) }
    }

    func testComposing_showsInPresenceAndClears() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed(technicians: 2)[0]
        let a = try server.technician("tech-1")
        let b = try server.technician("tech-2")
        try a.subscribe(ticket)
        try b.subscribe(ticket)
        try a.presence(ticket, is: ["tech-1", "tech-2"])
        try b.send(["type": "composing", "ticket": .string(ticket), "mode": "reply"])
        let composing = try a.next {
            $0["kind"]?.stringValue == "presence.updated" && $0["data"]?["viewers"]?.arrayValue?.last?["composing"]?.stringValue == "reply"
        }
        XCTAssertEqual(composing["data"]?["viewers"], [["id": "tech-1", "name": "Tech 1", "composing": nil],
                                                       ["id": "tech-2", "name": "Tech 2", "composing": "reply"]])
        try b.send(["type": "composing", "ticket": .string(ticket), "mode": "note"])
        try a.next { $0["kind"]?.stringValue == "presence.updated" && $0["data"]?["viewers"]?.arrayValue?.last?["composing"]?.stringValue == "note" }
        try b.send(["type": "composing", "ticket": .string(ticket), "mode": nil])
        try a.next { $0["kind"]?.stringValue == "presence.updated" && $0["data"]?["viewers"]?.arrayValue?.last?["composing"] == .null }
        // A newcomer's snapshot shows who is composing.
        try b.send(["type": "composing", "ticket": .string(ticket), "mode": "note"])
        try a.next { $0["kind"]?.stringValue == "presence.updated" && $0["data"]?["viewers"]?.arrayValue?.last?["composing"]?.stringValue == "note" }
        let late = try server.technician("tech-1")
        let snap = try late.subscribe(ticket)
        XCTAssertEqual(snap["state"]?["viewers"]?.arrayValue?.last?["composing"]?.stringValue, "note")
    }

    func testPresence_twoTabsOfOneTechnician_areOneEntryUntilBothClose() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed(technicians: 2)[0]
        let watcher = try server.technician("tech-2")
        try watcher.subscribe(ticket)
        try watcher.presence(ticket, is: ["tech-2"])
        let tab1 = try server.technician("tech-1")
        let tab2 = try server.technician("tech-1")
        try tab1.subscribe(ticket)
        try watcher.presence(ticket, is: ["tech-2", "tech-1"])
        let snap2 = try tab2.subscribe(ticket)
        XCTAssertEqual(viewerIDs(snap2["state"]), ["tech-2", "tech-1"], "the second tab is not a second entry")
        try tab2.presence(ticket, is: ["tech-2", "tech-1"])

        // Closing one tab keeps the entry: the watcher hears nothing about it.
        tab1.close()
        // Once the loop has dropped the socket, its disconnect is queued to
        // the engine ahead of this command; the command's answer orders the check.
        try server.waitForOpenConnections(2)
        try watcher.run("n1", ticket, "note", ["body": "sync"])
        let seen = watcher.drain(for: 0.5)
        XCTAssertFalse(seen.contains { $0["kind"]?.stringValue == "presence.updated" }, "one tab of two closing changes nothing: \(seen)")
        let mid = try server.ticketState(ticket)
        XCTAssertEqual(viewerIDs(mid["state"]), ["tech-2", "tech-1"])

        tab2.close()
        try watcher.presence(ticket, is: ["tech-2"])
    }

    func testPresence_deadConnection_leavesWithinTwoHeartbeats() throws {
        // Heartbeat 2 s rather than 1: the live client must answer each ping
        // before the dead-peer deadline, and a loaded machine needs the slack.
        let server = try TestServer { $0.heartbeatSeconds = 2 }
        defer { server.stop() }
        let ticket = try server.seed(technicians: 2)[0]
        let live = try server.technician("tech-1")
        let dead = try server.technician("tech-2")
        try live.subscribe(ticket)
        try dead.subscribe(ticket)
        try live.presence(ticket, is: ["tech-1", "tech-2"])
        // `dead` is never read again: it answers no ping and sends no close
        // frame, like a laptop that lost its network. `live` keeps answering
        // pings while it waits (next() pumps the socket).
        let started = Date()
        try live.presence(ticket, is: ["tech-1"], timeout: 15)
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertGreaterThanOrEqual(elapsed, 1.9, "a quiet connection is not dropped before a heartbeat passes")
        XCTAssertNil(live.closeCode, "the live connection survives")
        // The server closed the dead socket for good: reading its raw bytes
        // (without answering the pings among them) ends in EOF.
        var reachedEOF = false
        for _ in 0..<64 where !reachedEOF {
            reachedEOF = try dead.socket.read(timeout: 5).isEmpty
        }
        XCTAssertTrue(reachedEOF)
    }
}
