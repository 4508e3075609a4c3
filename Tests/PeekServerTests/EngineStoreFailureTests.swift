import XCTest
import PeekCore
import PeekStore
import PeekTestSupport

/// A read that fails must not be taken for an empty answer: the engine
/// answers `internal` and changes nothing, where it used to apply a command
/// twice, let a stale note through, call a technician unknown or send half
/// a snapshot. The store fails one chosen call on cue (`FailingStore`).
final class EngineStoreFailureTests: XCTestCase {
    private func failingServer() throws -> (TestServer, FailingStore) {
        let box = Unshared<FailingStore?>(nil)
        let server = try TestServer { c in
            c.wrapStore = { store in
                let failing = FailingStore(store)
                box.value = failing
                return failing
            }
        }
        return (server, try XCTUnwrap(box.value))
    }

    private func assertInternal(_ answer: JSONValue, id: String?, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(answer["type"]?.stringValue, "error", "\(answer)", file: file, line: line)
        XCTAssertEqual(answer["code"]?.stringValue, "internal", "\(answer)", file: file, line: line)
        XCTAssertEqual(answer["id"]?.stringValue, id, file: file, line: line)
        XCTAssertTrue(answer["message"]?.stringValue?.lowercased().hasSuffix("again.") == true, "\(answer)", file: file, line: line)
    }

    /// A failed write is answered by the store's kind, never by a
    /// database's code, so SQLite and PostgreSQL get the same words: a
    /// conflict is 409, a full disk or a busy database says so, anything
    /// else is the plain `internal`; nothing is saved by any of them.
    func testFailedApiWrite_isAnsweredByTheStoreErrorKind() throws {
        let (server, store) = try failingServer()
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let body: JSONValue = ["text": "Fans replaced.", "model": "test"]
        let cases: [(StoreError.Kind, Int, String, String)] = [
            (.conflict, 409, "conflict", "already exists"),
            (.full, 500, "internal", "storage is full"),
            (.busy, 500, "internal", "busy"),
            (.unavailable, 500, "internal", "cannot be reached"),
            (.failed, 500, "internal", "could not be completed"),
        ]
        for (kind, status, code, words) in cases {
            store.arm("putSummary(ticket:_:)", error: StoreError(kind, "a \(kind) failure (test)", backendCode: "test"))
            let answer = try server.api("POST", "/v1/tickets/\(ticket)/summary", body)
            XCTAssertEqual(store.failed, "putSummary(ticket:_:)", "\(kind)")
            XCTAssertEqual(answer.status, status, "\(kind): \(answer.text)")
            let error = answer.json?["error"]
            XCTAssertEqual(error?["code"]?.stringValue, code, "\(kind): \(answer.text)")
            XCTAssertTrue(error?["message"]?.stringValue?.contains(words) == true, "\(kind): \(answer.text)")
            XCTAssertEqual(try server.durableState(ticket)["summary"], .null, "\(kind): nothing saved")
        }
        XCTAssertEqual(try server.api("POST", "/v1/tickets/\(ticket)/summary", body).status, 201)
    }

    func testFailedIdempotencyRead_answersInternal_andDoesNotApplyTheNoteTwice() throws {
        let (server, store) = try failingServer()
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let a = try server.technician("tech-1")
        XCTAssertEqual(try a.run("n1", ticket, "note", ["body": "Once."])["seq"]?.intValue, 1)
        let before = try server.durableState(ticket)

        store.arm("noteSeq(command:notBefore:)")
        let repeated = try a.run("n1", ticket, "note", ["body": "Once."])
        XCTAssertEqual(store.failed, "noteSeq(command:notBefore:)")
        assertInternal(repeated, id: "n1")
        XCTAssertEqual(try server.durableState(ticket), before, "the repeat wrote nothing")

        // Once the store answers again, the repeat gets the first answer.
        XCTAssertEqual(try a.run("n1", ticket, "note", ["body": "Once."])["seq"]?.intValue, 1)
        XCTAssertEqual(try server.durableState(ticket), before)
    }

    func testFailedReadInStaleCheck_answersInternal_notASend() throws {
        let (server, store) = try failingServer()
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let a = try server.technician("tech-1")
        let seen = try XCTUnwrap(try a.subscribe(ticket)["seq"]?.intValue)
        XCTAssertEqual(try server.inboundEmail(ticketNumber: ticketNumber(ticket), body: "Still broken.").status, 201)
        try a.delta("message.created", ticket: ticket)
        let before = try server.durableState(ticket)

        store.arm("messages(ticket:after:channels:notBy:limit:)")
        let r = try a.run("n1", ticket, "note", ["body": "Fixed it."], seen: seen)
        XCTAssertEqual(store.failed, "messages(ticket:after:channels:notBy:limit:)")
        assertInternal(r, id: "n1")
        XCTAssertEqual(try server.durableState(ticket), before, "nothing was sent over the unseen message")

        // Not remembered: the repeat is checked again, and is stale.
        XCTAssertEqual(try a.run("n1", ticket, "note", ["body": "Fixed it."], seen: seen)["code"]?.stringValue, "stale")
    }

    func testFailedTechnicianReadAtHello_answersInternal_notUnknownTechnician() throws {
        let (server, store) = try failingServer()
        defer { server.stop() }
        _ = try server.seed()
        store.arm("technician(tenant:id:)")
        let client = try TestWebSocketClient(port: server.port)
        try client.send(["type": "hello", "token": .string(server.token(tenant: "acme", user: "tech-1"))])
        let refused = try client.next { $0["type"]?.stringValue == "error" || $0["type"]?.stringValue == "welcome" }
        XCTAssertEqual(store.failed, "technician(tenant:id:)")
        assertInternal(refused, id: nil)
        XCTAssertEqual(try client.awaitClose(), 1013, "try again later, not unauthorized")

        // The same token signs in once the store answers.
        XCTAssertNoThrow(try server.technician("tech-1"))
    }

    func testFailedSnapshotRead_answersInternal_notAHalfSnapshot() throws {
        let (server, store) = try failingServer()
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let a = try server.technician("tech-1")
        XCTAssertEqual(try a.run("n1", ticket, "note", ["body": "Something to show."])["type"]?.stringValue, "result")

        store.arm("recentMessages(ticket:limit:)")
        let r = try a.subscribe(ticket, id: "s1")
        XCTAssertEqual(store.failed, "recentMessages(ticket:limit:)")
        assertInternal(r, id: "s1")

        // Not counted as a viewer: subscribing again is a fresh snapshot, whole.
        let again = try a.subscribe(ticket, id: "s2")
        XCTAssertEqual(again["type"]?.stringValue, "snapshot")
        XCTAssertEqual(messageIDs(again["state"]).count, 1)
        XCTAssertEqual(viewerIDs(again["state"]), ["tech-1"])
    }

    func testFailedEmailAccountRead_answersInternal_notNoEmailAccount() throws {
        let (server, store) = try failingServer()
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let a = try server.technician("tech-1")
        let before = try server.durableState(ticket)
        store.arm("emailAccount(tenant:)")
        let r = try a.run("r1", ticket, "reply", ["body": "On it."])
        XCTAssertEqual(store.failed, "emailAccount(tenant:)")
        assertInternal(r, id: "r1")
        XCTAssertEqual(try server.durableState(ticket), before)
        // Not remembered: the repeat reads again and gets the real answer.
        XCTAssertEqual(try a.run("r1", ticket, "reply", ["body": "On it."])["code"]?.stringValue, "no_email_account")
    }

    /// The proof: in a fixed scenario (subscribe, then a note), the
    /// store fails each call in turn. Every answer is whole or `internal`,
    /// an `internal` note changed nothing, and once the store answers again
    /// the same command id lands exactly once.
    func testEachStoreCallFailingInTurn_isAnsweredWithACode_andNothingHalfDone() throws {
        var n = 1
        while true {
            let (server, store) = try failingServer()
            defer { server.stop() }
            let ticket = try server.seed()[0]
            let a = try server.technician("tech-1")
            let before = try server.durableState(ticket)

            store.arm(nil, nth: n)
            let sub = try a.subscribe(ticket, id: "s1")
            let note = try a.run("n1", ticket, "note", ["body": "Exactly once."], seen: 0)
            guard let failed = store.failed else { break }   // past the scenario's last call
            for (what, frame, ok) in [("subscribe", sub, "snapshot"), ("note", note, "result")] {
                if frame["type"]?.stringValue != ok {
                    XCTAssertEqual(frame["code"]?.stringValue, "internal", "call \(n) (\(failed)) failed, \(what) answered \(frame)")
                }
            }
            if sub["type"]?.stringValue == "snapshot" {
                XCTAssertEqual(sub["state"]?["messages"], before["messages"], "call \(n) (\(failed)): a snapshot is whole")
            }
            if note["type"]?.stringValue != "result" {
                XCTAssertEqual(try server.durableState(ticket), before, "call \(n) (\(failed)): a failed note changed nothing")
            }
            let repeated = try a.run("n1", ticket, "note", ["body": "Exactly once."], seen: 0)
            XCTAssertEqual(repeated["type"]?.stringValue, "result", "call \(n) (\(failed)): \(repeated)")
            XCTAssertEqual(messageIDs(try server.ticketState(ticket)["state"]).count, 1, "call \(n) (\(failed)): the note landed exactly once")
            n += 1
            guard n <= 200 else { return XCTFail("the scenario never ran out of store calls") }
        }
        XCTAssertGreaterThan(n, 5, "the scenario made store calls to fail")
    }
}
