import XCTest
import PeekCore
import PeekStore
import PeekTestSupport

/// Commands over real sockets: what each op changes, that every viewer sees
/// the same seq sequence, idempotent resends, staleness, and every refusal
/// leaving the ticket exactly as it was.
final class LiveCommandTests: XCTestCase {
    // MARK: Lifecycle and ordering

    func testLifecycleCommands_twoTechnicians_seeSameSeqSequenceAndSystemEvents() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed(technicians: 2, tickets: 1)[0]
        let a = try server.technician("tech-1")
        let b = try server.technician("tech-2")
        let snapA = try a.subscribe(ticket)
        try b.subscribe(ticket)
        XCTAssertEqual(snapA["seq"]?.intValue, 0)
        XCTAssertEqual(snapA["state"]?["ticket"]?["version"]?.intValue, 1)

        // Each client sends some; `seq` of a lifecycle change is that of its system event.
        var results: [(String, Int)] = []
        func run(_ c: TestWebSocketClient, _ id: String, _ op: String, _ args: JSONValue = [:]) throws {
            let r = try c.run(id, ticket, op, args)
            XCTAssertEqual(r["type"]?.stringValue, "result", "\(id): \(r)")
            XCTAssertEqual(r["ok"]?.boolValue, true)
            results.append((op, try XCTUnwrap(r["seq"]?.intValue)))
        }
        try run(a, "a1", "note", ["body": "Looking at it."])
        try run(b, "b1", "set_status", ["status": "in_progress"])
        try run(a, "a2", "set_priority", ["priority": "high"])
        try run(b, "b2", "assign", ["technician": "tech-1"])
        try run(b, "b3", "take_ownership")
        try run(b, "b4", "note", ["body": "Mine now."])
        // note 1, then each change is ticket.updated + message.created.
        XCTAssertEqual(results.map(\.1), [1, 3, 5, 7, 9, 10])

        let streamA = try a.durableDeltas(ticket, through: 10)
        let streamB = try b.durableDeltas(ticket, through: 10)
        for stream in [streamA, streamB] {
            XCTAssertEqual(stream.compactMap { $0["seq"]?.intValue }, Array(1...10))
            XCTAssertEqual(stream.map { $0["kind"]?.stringValue ?? "" }, [
                "message.created",
                "ticket.updated", "message.created",
                "ticket.updated", "message.created",
                "ticket.updated", "message.created",
                "ticket.updated", "message.created",
                "message.created",
            ])
        }
        XCTAssertEqual(streamA, streamB, "both technicians see byte-identical deltas")

        let d = streamA
        XCTAssertEqual(d[1]["data"]?["status"]?.stringValue, "in_progress")
        XCTAssertEqual(d[1]["data"]?["version"]?.intValue, 2)
        XCTAssertEqual(d[3]["data"]?["priority"]?.stringValue, "high")
        XCTAssertEqual(d[3]["data"]?["version"]?.intValue, 3)
        XCTAssertEqual(d[5]["data"]?["assignee"]?["id"]?.stringValue, "tech-1")
        XCTAssertEqual(d[5]["data"]?["assignee"]?["name"]?.stringValue, "Tech 1")
        // take_ownership assigns the signed-in technician (tech-2).
        XCTAssertEqual(d[7]["data"]?["assignee"]?["id"]?.stringValue, "tech-2")
        XCTAssertEqual(d[7]["data"]?["version"]?.intValue, 5)
        for i in [2, 4, 6, 8] {
            XCTAssertEqual(d[i]["data"]?["channel"]?.stringValue, "system", "seq \(i + 1)")
            XCTAssertEqual(d[i]["data"]?["via"]?.stringValue, "system")
            XCTAssertEqual(d[i]["data"]?["seq"]?.intValue, i + 1)
        }
        XCTAssertEqual(d[2]["data"]?["body"]?.stringValue, "Tech 2 changed the status from New to In progress.")
        XCTAssertEqual(d[8]["data"]?["body"]?.stringValue, "Tech 2 took ownership.")
        XCTAssertEqual(d[9]["data"]?["author"]?["id"]?.stringValue, "tech-2")

        let db = try server.ticketState(ticket)
        XCTAssertEqual(db["seq"]?.intValue, 10)
        let t = db["state"]?["ticket"]
        XCTAssertEqual(t?["status"]?.stringValue, "in_progress")
        XCTAssertEqual(t?["priority"]?.stringValue, "high")
        XCTAssertEqual(t?["assignee"]?["id"]?.stringValue, "tech-2")
        XCTAssertEqual(t?["version"]?.intValue, 5)
        XCTAssertEqual(messageIDs(db["state"]), d.filter { $0["kind"]?.stringValue == "message.created" }.compactMap { $0["data"]?["id"]?.stringValue })
    }

    func testCommandResult_arrivesAfterItsDelta() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let a = try server.technician("tech-1")
        try a.subscribe(ticket)
        try a.command("c1", ticket, "set_status", ["status": "open"])
        // Strict arrival order: both deltas, then the result.
        var kinds: [String] = []
        while true {
            let m = try a.next()
            if m["type"]?.stringValue == "result" { break }
            if m["type"]?.stringValue == "delta", m["seq"]?.intValue != nil { kinds.append(m["kind"]?.stringValue ?? "") }
        }
        XCTAssertEqual(kinds, ["ticket.updated", "message.created"])
    }

    // MARK: Idempotency

    func testResentCommandID_afterResult_getsFirstAnswerAndChangesNothing() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let a = try server.technician("tech-1")
        try a.subscribe(ticket)
        let first = try a.run("n1", ticket, "note", ["body": "Once."])
        XCTAssertEqual(first["type"]?.stringValue, "result")
        XCTAssertEqual(first["seq"]?.intValue, 1)
        try a.delta("message.created")
        let before = try server.durableState(ticket)

        // The same id again, even with other args, on a new connection (a reconnect).
        a.close()
        let again = try server.technician("tech-1")
        try again.subscribe(ticket)
        let second = try again.run("n1", ticket, "note", ["body": "Twice?"])
        XCTAssertEqual(second, first)
        let third = try again.run("n1", ticket, "set_status", ["status": "closed"])
        XCTAssertEqual(third, first)
        XCTAssertEqual(try server.durableState(ticket), before)
        XCTAssertTrue(again.drain(for: 0.3).allSatisfy { $0["seq"] == nil }, "a resend publishes no durable delta")
    }

    func testResentCommandID_afterError_getsSameErrorEvenOnceItWouldSucceed() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let a = try server.technician("tech-1")
        try a.subscribe(ticket)
        let first = try a.run("t1", ticket, "timer_stop")
        XCTAssertEqual(first["type"]?.stringValue, "error")
        XCTAssertEqual(first["code"]?.stringValue, "invalid")
        XCTAssertEqual(first["id"]?.stringValue, "t1")
        XCTAssertEqual(try a.run("t0", ticket, "timer_start")["type"]?.stringValue, "result")
        let before = try server.ticketState(ticket)
        // Now a timer runs, so a fresh timer_stop would succeed; the resend must not.
        XCTAssertEqual(try a.run("t1", ticket, "timer_stop"), first)
        XCTAssertEqual(try server.ticketState(ticket)["seq"], before["seq"])
        XCTAssertFalse(try server.ticketState(ticket)["state"]?["time"]?["active"]?.isNull ?? true, "the timer still runs")
    }

    func testSameCommandID_fromAnotherTechnician_isAnotherCommand() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let a = try server.technician("tech-1")
        let b = try server.technician("tech-2")
        XCTAssertEqual(try a.run("x", ticket, "note", ["body": "A"])["seq"]?.intValue, 1)
        XCTAssertEqual(try b.run("x", ticket, "note", ["body": "B"])["seq"]?.intValue, 2)
    }

    // MARK: Staleness

    func testNoteWithSeen_afterCustomerEmail_isStaleWithMissedThenForceSends() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let a = try server.technician("tech-1")
        let snap = try a.subscribe(ticket)
        let seen = try XCTUnwrap(snap["seq"]?.intValue)

        let mail = try server.inboundEmail(ticketNumber: ticketNumber(ticket), body: "It is still broken.")
        XCTAssertEqual(mail.status, 201, mail.text)
        let arrived = try a.delta("message.created", ticket: ticket)
        XCTAssertEqual(arrived["data"]?["channel"]?.stringValue, "customer")
        XCTAssertEqual(arrived["data"]?["via"]?.stringValue, "email")
        let before = try server.durableState(ticket)

        let stale = try a.run("n1", ticket, "note", ["body": "Fixed it."], seen: seen)
        XCTAssertEqual(stale["type"]?.stringValue, "error")
        XCTAssertEqual(stale["code"]?.stringValue, "stale")
        XCTAssertEqual(stale["id"]?.stringValue, "n1")
        let missed = try XCTUnwrap(stale["missed"]?.arrayValue)
        XCTAssertEqual(missed, [arrived["data"]!], "missed holds the customer's message as message.created data")
        XCTAssertEqual(missed.first?["body"]?.stringValue, "It is still broken.")
        XCTAssertEqual(try server.durableState(ticket), before, "a stale command changes nothing")

        // Same seen, force: goes through.
        let forced = try a.run("n2", ticket, "note", ["body": "Fixed it.", "force": true], seen: seen)
        XCTAssertEqual(forced["type"]?.stringValue, "result")
        XCTAssertEqual(forced["seq"]?.intValue, (before["seq"]?.intValue ?? 0) + 1)
        // A seen that covers the email is not stale.
        let fresh = try a.run("n3", ticket, "note", ["body": "And again."], seen: before["seq"]?.intValue)
        XCTAssertEqual(fresh["type"]?.stringValue, "result")
    }

    func testNoteWithSeen_afterOwnMessagesAndOthersInternalNotes_isNotStale() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed(technicians: 2)[0]
        let a = try server.technician("tech-1")
        let b = try server.technician("tech-2")
        let seen = try XCTUnwrap(try a.subscribe(ticket)["seq"]?.intValue)
        // Another technician's internal note and status change (a system event),
        // and A's own note: none of them is something A must read first.
        XCTAssertEqual(try b.run("b1", ticket, "note", ["body": "FYI: internal."])["type"]?.stringValue, "result")
        XCTAssertEqual(try b.run("b2", ticket, "set_status", ["status": "open"])["type"]?.stringValue, "result")
        XCTAssertEqual(try a.run("a1", ticket, "note", ["body": "My first note."])["type"]?.stringValue, "result")
        let r = try a.run("a2", ticket, "note", ["body": "My second note."], seen: seen)
        XCTAssertEqual(r["type"]?.stringValue, "result", "\(r)")
        XCTAssertEqual(r["seq"]?.intValue, 5)
    }

    func testNoteWithSeen_afterAReply_isStaleForOthersButNotForItsAuthor() throws {
        let server = try TestServer()
        defer { server.stop() }
        let smtp = try TestSMTPServer()
        defer { smtp.stop() }
        let ticket = try server.seed(technicians: 2)[0]
        XCTAssertEqual(try server.putEmailAccount(port: smtp.port, security: "none").status, 200)
        let a = try server.technician("tech-1")
        let b = try server.technician("tech-2")
        let seen = try XCTUnwrap(try a.subscribe(ticket)["seq"]?.intValue)
        try b.subscribe(ticket)

        let reply = try a.run("r1", ticket, "reply", ["body": "We are on it."])
        XCTAssertEqual(reply["type"]?.stringValue, "result", "\(reply)")
        let sent = try b.delta("message.created", ticket: ticket)
        XCTAssertEqual(sent["data"]?["channel"]?.stringValue, "technician")

        // Its author wrote it, so it is not news to them...
        XCTAssertEqual(try a.run("a1", ticket, "note", ["body": "Mine."], seen: seen)["type"]?.stringValue, "result")
        // ...but a colleague who had not seen it is stopped, and shown it.
        let stale = try b.run("b1", ticket, "note", ["body": "Me too."], seen: seen)
        XCTAssertEqual(stale["code"]?.stringValue, "stale", "\(stale)")
        XCTAssertEqual(stale["missed"], [sent["data"]!], "A's internal note is not among the missed")
    }

    // MARK: Refusals that change nothing

    func testOtherTenantTechnician_commandAndSubscribe_getNotFoundAndChangeNothing() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed(tenant: "acme")[0]
        try server.seed(tenant: "globex", technicians: 1, tickets: 1)
        let before = try server.durableState(ticket)
        let intruder = try server.technician("tech-1", tenant: "globex")
        let sub = try intruder.subscribe(ticket, id: "s1")
        XCTAssertEqual(sub["type"]?.stringValue, "error")
        XCTAssertEqual(sub["code"]?.stringValue, "not_found")
        XCTAssertEqual(sub["id"]?.stringValue, "s1")
        for (op, args) in [("note", ["body": "hi"]), ("set_status", ["status": "closed"]), ("take_ownership", [:])] as [(String, JSONValue)] {
            let r = try intruder.run("c-\(op)", ticket, op, args)
            XCTAssertEqual(r["type"]?.stringValue, "error", op)
            XCTAssertEqual(r["code"]?.stringValue, "not_found", op)
            XCTAssertEqual(r["id"]?.stringValue, "c-\(op)", op)
        }
        // Same message as for a ticket that does not exist: ids do not leak.
        let missing = try intruder.run("c-none", "T-999999", "note", ["body": "hi"])
        XCTAssertEqual(missing["code"]?.stringValue, "not_found")
        XCTAssertEqual(try server.durableState(ticket), before)
        XCTAssertTrue(intruder.drain(for: 0.3).allSatisfy { $0["ticket"]?.stringValue != ticket }, "nothing of acme's ticket reaches globex")
    }

    func testBadToken_getsUnauthorizedAndClose4401() throws {
        let server = try TestServer()
        defer { server.stop() }
        try server.seed()
        for token in ["not-a-jwt", server.token(tenant: "acme", user: "tech-1", expiresIn: -60), server.token(tenant: "acme", user: "nobody")] {
            let c = try TestWebSocketClient(port: server.port)
            try c.send(["type": "hello", "token": .string(token)])
            let e = try c.next(type: "error")
            XCTAssertEqual(e["code"]?.stringValue, "unauthorized", token)
            XCTAssertEqual(try c.awaitClose(), 4401, token)
        }
        // A token signed with another secret.
        let forged = JWT.sign(TechnicianClaims(subject: "tech-1", tenant: "acme", name: "x", expiresAt: Int64(Date().timeIntervalSince1970) + 600),
                              secret: Array("wrong-secret".utf8))
        let c = try TestWebSocketClient(port: server.port)
        try c.send(["type": "hello", "token": .string(forged)])
        XCTAssertEqual(try c.next(type: "error")["code"]?.stringValue, "unauthorized")
        XCTAssertEqual(try c.awaitClose(), 4401)
    }

    func testBadToken_framesSentBehindTheHello_changeNothing() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let before = try server.durableState(ticket)
        let c = try TestWebSocketClient(port: server.port)
        // Pipelined before the refusal can arrive: they reach the server while
        // the hello is still being checked.
        try c.send(["type": "hello", "token": .string(server.token(tenant: "acme", user: "tech-1", expiresIn: -60))])
        try c.send(["type": "subscribe", "id": "s", "ticket": .string(ticket)])
        try c.command("c", ticket, "set_status", ["status": "closed"])
        XCTAssertEqual(try c.next(type: "error")["code"]?.stringValue, "unauthorized")
        XCTAssertEqual(try c.awaitClose(), 4401)
        XCTAssertFalse(c.drain(for: 0.2).contains { $0["type"]?.stringValue == "snapshot" || $0["type"]?.stringValue == "result" })
        XCTAssertEqual(try server.durableState(ticket), before)
    }

    /// A server with one ticket that tech-1 views, and that ticket's durable state.
    private func viewedTicket() throws -> (TestServer, String, TestWebSocketClient, JSONValue) {
        let server = try TestServer()
        let ticket = try server.seed()[0]
        let a = try server.technician("tech-1")
        try a.subscribe(ticket)
        return (server, ticket, a, try server.durableState(ticket))
    }

    func testMalformedFrames_getInvalidWithTheFrameIDAndChangeNothing() throws {
        let (server, ticket, a, before) = try viewedTicket()
        defer { server.stop() }
        let t = JSONValue.string(ticket)
        let cases: [(String, JSONValue)] = [
            ("unknown op", ["type": "command", "id": "f1", "ticket": t, "op": "explode", "args": [:]]),
            ("missing args.body", ["type": "command", "id": "f2", "ticket": t, "op": "note", "args": [:]]),
            ("ill-typed args.body", ["type": "command", "id": "f3", "ticket": t, "op": "note", "args": ["body": 42]]),
            ("args not an object", ["type": "command", "id": "f4", "ticket": t, "op": "note", "args": "hello"]),
            ("unknown status", ["type": "command", "id": "f5", "ticket": t, "op": "set_status", "args": ["status": "done"]]),
            ("ill-typed priority", ["type": "command", "id": "f6", "ticket": t, "op": "set_priority", "args": ["priority": 3]]),
            ("missing args.technician", ["type": "command", "id": "f7", "ticket": t, "op": "assign", "args": [:]]),
            ("ill-typed force", ["type": "command", "id": "f8", "ticket": t, "op": "note", "args": ["body": "x", "force": "yes"]]),
            ("ill-typed if_version", ["type": "command", "id": "f9", "ticket": t, "op": "note", "args": ["body": "x"], "if_version": "1"]),
            ("unknown type", ["type": "frobnicate", "id": "f10"]),
            ("subscribe without ticket", ["type": "subscribe", "id": "f11"]),
            ("ill-typed since", ["type": "subscribe", "id": "f12", "ticket": t, "since": "3"]),
            ("command without ticket", ["type": "command", "id": "f13", "op": "note", "args": ["body": "x"]]),
        ]
        for (what, frame) in cases {
            try a.send(frame)
            let e = try a.next(type: "error")
            XCTAssertEqual(e["code"]?.stringValue, "invalid", what)
            XCTAssertEqual(e["id"], frame["id"], what)
            XCTAssertFalse(e["message"]?.stringValue?.isEmpty ?? true, what)
        }
        // Not JSON, not an object, no type: invalid (no id to carry).
        for raw in ["{not json", "[1,2]", "{\"id\":\"f20\"}"] {
            try a.sendText(raw)
            let e = try a.next(type: "error")
            XCTAssertEqual(e["code"]?.stringValue, "invalid", raw)
        }
        XCTAssertEqual(try server.durableState(ticket), before)
        // The connection is still usable.
        XCTAssertEqual(try a.run("ok", ticket, "note", ["body": "Still here."])["type"]?.stringValue, "result")
    }

    /// A `\u0000` inside an id is valid JSON; bound to SQLite as a C string
    /// it was cut there, so `T-1001\u0000...` reached T-1001. Every id breaking
    /// the rule (1-128 bytes of printable ASCII) is refused `invalid` where the
    /// frame or body is decoded, and nothing is stored.
    func testNULInsideIDs_refusedInvalidAndNothingStored() throws {
        let (server, ticket, a, before) = try viewedTicket()
        defer { server.stop() }
        let junk = String(repeating: "x", count: 4096)
        let frames: [(String, String, String?)] = [
            ("NUL in ticket", #"{"type":"command","id":"n1","ticket":"\#(ticket)\u0000\#(junk)","op":"note","args":{"body":"smuggled"}}"#, "n1"),
            ("NUL in command id", #"{"type":"command","id":"n2\u0000\#(junk)","ticket":"\#(ticket)","op":"note","args":{"body":"smuggled"}}"#, nil),
            ("NUL in technician", #"{"type":"command","id":"n3","ticket":"\#(ticket)","op":"assign","args":{"technician":"tech-2\u0000x"}}"#, "n3"),
            ("space in attachment id", #"{"type":"command","id":"n4","ticket":"\#(ticket)","op":"note","args":{"body":"x","attachments":["A 1"]}}"#, "n4"),
            ("NUL in subscribe", #"{"type":"subscribe","id":"n5","ticket":"\#(ticket)\u0000"}"#, "n5"),
        ]
        for (what, raw, id) in frames {
            try a.sendText(raw)
            let e = try a.next(type: "error")
            XCTAssertEqual(e["code"]?.stringValue, "invalid", what)
            XCTAssertEqual(e["id"]?.stringValue, id, what)
            XCTAssertTrue(e["message"]?.stringValue?.contains("printable ASCII") ?? false, "\(what): \(e)")
        }
        XCTAssertEqual(try server.durableState(ticket), before)

        // The back-end API: the same rule on ids in bodies.
        let tenant = try server.request("POST", "/v1/tenants", body: Array(#"{"id":"acme\u0000evil","name":"Evil"}"#.utf8))
        XCTAssertEqual(tenant.status, 400, tenant.text)
        XCTAssertEqual(tenant.json?["error"]?["code"]?.stringValue, "invalid", tenant.text)
        let tech = try server.request("POST", "/v1/tenants/acme/technicians",
                                      body: Array(#"{"id":"tech-1\u0000","name":"Impostor","email":"i@evil.example"}"#.utf8))
        XCTAssertEqual(tech.status, 400, tech.text)
        XCTAssertEqual(try server.api("GET", "/v1/tickets/\(ticket)").json?["state"]?["ticket"]?["subject"], before["ticket"]?["subject"])
        XCTAssertEqual(try a.run("ok", ticket, "note", ["body": "Still here."])["type"]?.stringValue, "result")
    }

    func testOversizedFrame_closes1009AndChangesNothing() throws {
        let server = try TestServer { $0.maxMessageBytes = 4096 }
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let a = try server.technician("tech-1")
        try a.subscribe(ticket)
        let before = try server.durableState(ticket)
        try a.command("big", ticket, "note", ["body": .string(String(repeating: "x", count: 5000))])
        XCTAssertEqual(try a.awaitClose(), 1009)
        XCTAssertEqual(try server.durableState(ticket), before)
    }

    func testStaleIfVersion_getsConflictAndChangesNothing() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed(technicians: 2)[0]
        let a = try server.technician("tech-1")
        let b = try server.technician("tech-2")
        let version = try XCTUnwrap(try a.subscribe(ticket)["state"]?["ticket"]?["version"]?.intValue)
        XCTAssertEqual(try b.run("b1", ticket, "set_priority", ["priority": "urgent"], ifVersion: version)["type"]?.stringValue, "result")
        let before = try server.durableState(ticket)
        let r = try a.run("a1", ticket, "set_status", ["status": "resolved"], ifVersion: version)
        XCTAssertEqual(r["type"]?.stringValue, "error")
        XCTAssertEqual(r["code"]?.stringValue, "conflict")
        XCTAssertEqual(r["id"]?.stringValue, "a1")
        XCTAssertEqual(try server.durableState(ticket), before)
        // With the current version it goes through.
        XCTAssertEqual(try a.run("a2", ticket, "set_status", ["status": "resolved"], ifVersion: version + 1)["type"]?.stringValue, "result")
    }

    func testAssign_unknownOrOtherTenantTechnician_isInvalid() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed(tenant: "acme", technicians: 1)[0]
        try server.seed(tenant: "globex", technicians: 3, tickets: 1)
        let a = try server.technician("tech-1")
        try a.subscribe(ticket)
        let before = try server.durableState(ticket)
        for who in ["tech-9", "tech-3"] {   // tech-3 exists, but only in globex
            let r = try a.run("as-\(who)", ticket, "assign", ["technician": .string(who)])
            XCTAssertEqual(r["type"]?.stringValue, "error", who)
            XCTAssertEqual(r["code"]?.stringValue, "invalid", who)
        }
        XCTAssertEqual(try server.durableState(ticket), before)
    }

    func testTakeOwnership_assignsSignedInTechnician_andTwiceIsNoChange() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed(technicians: 2)[0]
        let b = try server.technician("tech-2")
        try b.subscribe(ticket)
        let r = try b.run("own", ticket, "take_ownership")
        XCTAssertEqual(r["seq"]?.intValue, 2)
        let update = try b.delta("ticket.updated")
        XCTAssertEqual(update["data"]?["assignee"], ["id": "tech-2", "name": "Tech 2"])
        let event = try b.delta("message.created")
        XCTAssertEqual(event["data"]?["body"]?.stringValue, "Tech 2 took ownership.")
        // Already the owner: nothing to change, answered with the current seq.
        let again = try b.run("own2", ticket, "take_ownership")
        XCTAssertEqual(again["type"]?.stringValue, "result")
        XCTAssertEqual(again["seq"]?.intValue, 2)
        XCTAssertEqual(try server.ticketState(ticket)["seq"]?.intValue, 2)
    }

    /// Notes run without a savepoint; a write that fails in the middle of
    /// one (here a trigger aborts the update of its ticket's row, after its
    /// message was written) must fail the note and every command that shared
    /// its transaction, and leave nothing of any of them.
    func testNoteWriteFailsMidway_itsWholeBatchFailsAndNothingOfItIsStored() throws {
        let (server, ticket, a, viewer) = try ticketWithNoteBefore()
        defer { server.stop() }

        let db = try server.failWritesAfterNoteBoom()
        let before = try server.durableState(ticket)

        // Back to back: the engine may take them in one batch or in several;
        // either way each answer must match what is on disk.
        let ids = ["mate-1", "boom", "mate-2"]
        for id in ids { try a.command(id, ticket, "note", ["body": .string("note \(id)")]) }
        let answers = try ids.map { try a.answer($0) }
        XCTAssertEqual(answers[1]["type"]?.stringValue, "error")
        XCTAssertEqual(answers[1]["code"]?.stringValue, "internal")

        let succeeded = try assertAnswersMatchTheLog(ids, answers, body: { "note \($0)" }, server: server, ticket: ticket, viewer: viewer)
        let after = try server.durableState(ticket)
        XCTAssertEqual(after["ticket"]?["version"], before["ticket"]?["version"], "notes do not move the version")

        // Its failure was not remembered: once the fault is gone the same id goes through.
        try db.execute("DROP TRIGGER fail_boom")
        let retried = try a.run("boom", ticket, "note", ["body": "note boom"])
        XCTAssertEqual(retried["type"]?.stringValue, "result", "\(retried)")
        XCTAssertEqual(retried["seq"]?.intValue, 2 + succeeded.count)
    }

    /// A subscribe that shares a batch with a failing write, taken before
    /// it, is answered with an error and must leave no trace in presence;
    /// a command queued behind the failing write gets a transaction of its
    /// own and goes through.
    func testFailedBatch_subscribeBeforeItFailsWithoutTrace_commandAfterItSucceeds() throws {
        let server = try TestServer { $0.maxEngineBacklog = 3 }
        defer { server.stop() }
        let ticket = try server.seed(technicians: 2)[0]
        let a = try server.technician("tech-1")
        let b = try server.technician("tech-2")
        try a.subscribe(ticket)
        let db = try server.failWritesAfterNoteBoom()

        // All three in one batch: the engine is held until they are queued.
        let release = try server.holdEngine()
        try b.send(["type": "subscribe", "id": "s-b", "ticket": .string(ticket)])
        try server.waitForQueuedJobs(1)
        try a.command("boom", ticket, "note", ["body": "note boom"])
        try server.waitForQueuedJobs(2)
        try a.command("after", ticket, "note", ["body": "behind the failure"])
        try server.waitForQueuedJobs(3)
        release.signal()

        let refused = try b.next { $0["id"]?.stringValue == "s-b" }
        XCTAssertEqual(refused["code"]?.stringValue, "internal", "\(refused)")
        XCTAssertEqual(try a.answer("boom")["code"]?.stringValue, "internal")
        let after = try a.answer("after")
        XCTAssertEqual(after["type"]?.stringValue, "result", "\(after)")
        XCTAssertEqual(after["seq"]?.intValue, 1)
        let stored = try server.durableState(ticket)
        XCTAssertEqual((stored["messages"]?.arrayValue ?? []).compactMap { $0["body"]?.stringValue }, ["behind the failure"])
        XCTAssertEqual(viewerIDs(try server.ticketState(ticket)["state"]), ["tech-1"], "no phantom viewer")

        try db.execute("DROP TRIGGER fail_boom")
        XCTAssertEqual(try b.subscribe(ticket)["type"]?.stringValue, "snapshot")
        XCTAssertEqual(viewerIDs(try server.ticketState(ticket)["state"]), ["tech-1", "tech-2"])
        XCTAssertEqual(try a.run("n1", ticket, "note", ["body": "for both"])["seq"]?.intValue, 2)
        try b.delta("message.created", ticket: ticket)
    }

    /// Another writer holds the database past the busy timeout, so the
    /// batch's BEGIN fails: the batch is refused whole. Its writes must not
    /// go in one by one outside a transaction (here the lock is let go
    /// while they would run) while the note is answered as failed.
    func testDatabaseLockedByAnotherWriter_batchRefusedWholeNothingStoredThenWorks() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed(technicians: 1)[0]
        let a = try server.technician("tech-1")
        try a.subscribe(ticket)
        let before = try server.durableState(ticket)

        let other = try Database(path: server.directory + "/peek.sqlite")
        try other.execute("BEGIN IMMEDIATE")
        try a.command("locked", ticket, "note", ["body": "while locked"])
        // The engine's BEGIN gives up after the 5 s busy timeout; the lock
        // goes at 7 s, while a statement run after that BEGIN would still
        // be waiting for it (up to 10 s).
        Thread.sleep(forTimeInterval: 7)
        try other.execute("COMMIT")
        let refused = try a.answer("locked", timeout: 20)
        XCTAssertEqual(refused["type"]?.stringValue, "error", "\(refused)")
        XCTAssertEqual(refused["code"]?.stringValue, "internal", "\(refused)")
        XCTAssertEqual(try server.durableState(ticket), before, "a refused batch stored something")

        // The lock is gone: the server works, and the refusal was not remembered.
        let retried = try a.run("locked", ticket, "note", ["body": "while locked"])
        XCTAssertEqual(retried["type"]?.stringValue, "result", "\(retried)")
        XCTAssertEqual(retried["seq"]?.intValue, (before["seq"]?.intValue ?? 0) + 1)
        XCTAssertEqual(try a.delta("message.created", ticket: ticket)["seq"], retried["seq"])
    }

    /// SQLite rolls the whole transaction back by itself after some errors
    /// (SQLITE_FULL here: the engine's connection at a `max_page_count`, as
    /// on a full disk, while an API call writes a 32 KiB summary). Every
    /// answer in and after that batch must match what is stored: nothing
    /// of the batch, and nothing written after the rollback in autocommit
    /// mode and then reported failed.
    func testDatabaseFullMidBatch_transactionRolledBackBySQLite_answersMatchWhatIsStored() throws {
        let (server, ticket, a, viewer) = try ticketWithNoteBefore()
        defer { server.stop() }
        try server.limitDatabasePages(extra: 4)

        let release = try server.holdEngine()
        try a.command("first", ticket, "note", ["body": "first"])
        try server.waitForQueuedJobs(1)
        let summary = Unshared<TestServer.Response?>(nil)
        let summaryDone = DispatchSemaphore(value: 0)
        let text = String(repeating: "All fans replaced. ", count: 1700)
        let (port, token) = (server.port, server.config.serviceToken)
        let summaryBody = JSONWriter.encode(["text": .string(text), "model": "test"])
        DispatchQueue.global().async {
            summary.value = try? TestServer.request(port: port, "POST", "/v1/tickets/\(ticket)/summary", body: summaryBody, bearer: token)
            summaryDone.signal()
        }
        try server.waitForQueuedJobs(2)
        try a.command("third", ticket, "note", ["body": "third"])
        try server.waitForQueuedJobs(3)
        release.signal()

        let ids = ["first", "third"]
        let answers = try ids.map { try a.answer($0) }
        XCTAssertEqual(summaryDone.wait(timeout: .now() + 20), .success)
        XCTAssertEqual(summary.value?.status, 500, summary.value?.text ?? "no answer")
        try assertAnswersMatchTheLog(ids, answers, body: { $0 }, server: server, ticket: ticket, viewer: viewer)
        XCTAssertEqual(try server.durableState(ticket)["summary"], .null)

        // Room again: the same summary and a note go through.
        try server.limitDatabasePages(extra: nil)
        XCTAssertEqual(try server.api("POST", "/v1/tickets/\(ticket)/summary", ["text": .string(text), "model": "test"]).status, 201)
        XCTAssertEqual(try a.run("n9", ticket, "note", ["body": "after"])["type"]?.stringValue, "result")
    }

    /// A server with one ticket that `a` (tech-1) and `viewer` (tech-2)
    /// view, holding one note, "before", at seq 1 (the viewer has seen it).
    private func ticketWithNoteBefore() throws -> (TestServer, String, TestWebSocketClient, TestWebSocketClient) {
        let server = try TestServer()
        let ticket = try server.seed(technicians: 2)[0]
        let a = try server.technician("tech-1")
        let viewer = try server.technician("tech-2")
        try a.subscribe(ticket)
        try viewer.subscribe(ticket)
        XCTAssertEqual(try a.run("n0", ticket, "note", ["body": "before"])["seq"]?.intValue, 1)
        _ = try viewer.durableDeltas(ticket, through: 1)
        return (server, ticket, a, viewer)
    }

    /// Each note command `ids[i]` (body `body(id)`, sent after "before") was
    /// answered `answers[i]`: a `result` only if its note is stored and the
    /// viewer saw it, with seqs following on from 1 and nothing else; every
    /// other answer `internal`. Answers the ids that succeeded.
    @discardableResult
    private func assertAnswersMatchTheLog(_ ids: [String], _ answers: [JSONValue], body: (String) -> String, server: TestServer,
                                          ticket: String, viewer: TestWebSocketClient,
                                          file: StaticString = #filePath, line: UInt = #line) throws -> [String] {
        let succeeded = zip(ids, answers).filter { $0.1["type"]?.stringValue == "result" }.map(\.0)
        for (id, answer) in zip(ids, answers) where answer["type"]?.stringValue != "result" {
            XCTAssertEqual(answer["code"]?.stringValue, "internal", "\(id): \(answer)", file: file, line: line)
        }
        let stored = try server.durableState(ticket)
        let bodies = (stored["messages"]?.arrayValue ?? []).compactMap { $0["body"]?.stringValue }
        XCTAssertEqual(bodies, ["before"] + succeeded.map(body), "answered \(answers)", file: file, line: line)
        XCTAssertEqual(stored["seq"]?.intValue, 1 + succeeded.count, file: file, line: line)
        // The viewer sees exactly the notes that were stored, with contiguous seqs.
        let seen = viewer.drain(for: 0.5).filter { $0["type"]?.stringValue == "delta" && $0["seq"]?.intValue != nil }
        XCTAssertEqual(seen.compactMap { $0["data"]?["body"]?.stringValue }, succeeded.map(body), file: file, line: line)
        XCTAssertEqual(seen.compactMap { $0["seq"]?.intValue }, Array(stride(from: 2, to: 2 + succeeded.count, by: 1)), file: file, line: line)
        return succeeded
    }

    // MARK: Time

    func testTimers_startThenStop_publishTimeUpdatedWithEntriesAndTotal() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let a = try server.technician("tech-1")
        try a.subscribe(ticket)
        let start = try a.run("ts", ticket, "timer_start")
        XCTAssertEqual(start["seq"]?.intValue, 1)
        let started = try a.delta("time.updated")
        XCTAssertEqual(started["seq"]?.intValue, 1)
        XCTAssertEqual(started["data"]?["active"]?["technician"]?["id"]?.stringValue, "tech-1")
        XCTAssertNotNil(started["data"]?["active"]?["started_at"]?.stringValue)
        XCTAssertEqual(started["data"]?["entries"], [])
        XCTAssertEqual(started["data"]?["total"]?.intValue, 0)

        let stop = try a.run("tp", ticket, "timer_stop", ["note": "Replaced the fan"])
        XCTAssertEqual(stop["seq"]?.intValue, 2)
        let stopped = try a.delta("time.updated")
        XCTAssertEqual(stopped["data"]?["active"], .null)
        let entries = try XCTUnwrap(stopped["data"]?["entries"]?.arrayValue)
        XCTAssertEqual(entries.count, 1)
        XCTAssertEqual(entries.first?["technician"]?["id"]?.stringValue, "tech-1")
        XCTAssertEqual(entries.first?["note"]?.stringValue, "Replaced the fan")
        let seconds = try XCTUnwrap(entries.first?["seconds"]?.intValue)
        XCTAssertGreaterThanOrEqual(seconds, 0)
        XCTAssertEqual(stopped["data"]?["total"]?.intValue, seconds)
        XCTAssertEqual(try server.ticketState(ticket)["state"]?["time"], stopped["data"])

        // No timer any more: invalid, nothing changes.
        let none = try a.run("tp2", ticket, "timer_stop")
        XCTAssertEqual(none["code"]?.stringValue, "invalid")
        XCTAssertEqual(try server.ticketState(ticket)["seq"]?.intValue, 2)
    }
}
