import XCTest
@testable import PeekCore

final class ClientFrameTests: XCTestCase {
    func decode(_ text: String) -> Result<ClientFrame, ClientFrame.Refusal> { ClientFrame.decode(Array(text.utf8)) }

    func testClientFrame_hello_decodes() {
        XCTAssertEqual(try decode(#"{"type":"hello","token":"abc"}"#).get(), .hello(token: "abc"))
    }

    func testClientFrame_subscribeWithSince_decodes() {
        XCTAssertEqual(try decode(#"{"type":"subscribe","id":"s1","ticket":"T-1001","since":7}"#).get(),
                       .subscribe(id: "s1", ticket: "T-1001", since: 7))
        XCTAssertEqual(try decode(#"{"type":"subscribe","ticket":"T-1001","since":null}"#).get(),
                       .subscribe(id: nil, ticket: "T-1001", since: nil))
    }

    func testClientFrame_refresh_needsAnIdAndAToken() {
        XCTAssertEqual(try decode(#"{"type":"refresh","id":"r1","token":"abc"}"#).get(), .refresh(id: "r1", token: "abc"))
        guard case .failure(let noID) = decode(#"{"type":"refresh","token":"abc"}"#),
              case .failure(let noToken) = decode(#"{"type":"refresh","id":"r2"}"#) else { return XCTFail() }
        XCTAssertEqual([noID.error.code, noToken.error.code], [.invalid, .invalid])
        XCTAssertEqual(noToken.id, "r2")
    }

    func testClientFrame_history_defaultsAndBounds() {
        XCTAssertEqual(try decode(#"{"type":"history","id":"h1","ticket":"T-1001","before":71}"#).get(),
                       .history(id: "h1", ticket: "T-1001", before: 71, limit: 50))
        XCTAssertEqual(try decode(#"{"type":"history","id":"h1","ticket":"T-1001","before":71,"limit":100}"#).get(),
                       .history(id: "h1", ticket: "T-1001", before: 71, limit: 100))
        for frame in [#"{"type":"history","ticket":"T-1","before":5}"#, #"{"type":"history","id":"h2","before":5}"#,
                      #"{"type":"history","id":"h2","ticket":"T-1"}"#, #"{"type":"history","id":"h2","ticket":"T-1","before":0}"#,
                      #"{"type":"history","id":"h2","ticket":"T-1","before":5,"limit":101}"#,
                      #"{"type":"history","id":"h2","ticket":"T 1","before":5}"#] {
            guard case .failure(let r) = decode(frame) else { XCTFail(frame); continue }
            XCTAssertEqual(r.error.code, .invalid, frame)
            if frame.contains("h2") { XCTAssertEqual(r.id, "h2", frame) }
        }
    }

    /// One rule for ids: printable ASCII without spaces, 1-128 bytes; a
    /// refused id is not echoed.
    func testClientFrame_idsBreakingTheRule_areInvalidAndNotEchoed() {
        for (frame, echoed) in [(#"{"type":"subscribe","id":"s\u0000","ticket":"T-1"}"#, nil),
                                (#"{"type":"subscribe","id":"s1","ticket":"T-1\u0000"}"#, "s1"),
                                (#"{"type":"subscribe","id":"s1","ticket":"T 1"}"#, "s1"),
                                (#"{"type":"subscribe","id":"s1","ticket":"T-é"}"#, "s1"),
                                ("{\"type\":\"subscribe\",\"id\":\"s1\",\"ticket\":\"" + String(repeating: "T", count: 129) + "\"}", "s1")] as [(String, String?)] {
            guard case .failure(let r) = decode(frame) else { XCTFail(frame); continue }
            XCTAssertEqual(r.error.code, .invalid, frame)
            XCTAssertEqual(r.id, echoed, frame)
        }
        XCTAssertNoThrow(try decode(#"{"type":"subscribe","id":"sub-0123abcd","ticket":""# + String(repeating: "T", count: 128) + #""}"#).get())
    }

    func testClientFrame_negativeSince_isInvalidWithId() {
        guard case .failure(let r) = decode(#"{"type":"subscribe","id":"s1","ticket":"T-1","since":-1}"#) else { return XCTFail() }
        XCTAssertEqual(r.id, "s1")
        XCTAssertEqual(r.error.code, .invalid)
    }

    func testClientFrame_commandOps_decodeTheirArgs() throws {
        let note = try decode(#"{"type":"command","id":"c1","ticket":"T-1","op":"note","args":{"body":"hi"},"seen":3,"if_version":2}"#).get()
        XCTAssertEqual(note, .command(CommandRequest(id: "c1", ticket: "T-1", op: .note, args: .note(body: "hi", force: false, attachments: []), ifVersion: 2, seen: 3)))
        let status = try decode(#"{"type":"command","id":"c2","ticket":"T-1","op":"set_status","args":{"status":"waiting_on_customer"}}"#).get()
        guard case .command(let c) = status else { return XCTFail() }
        XCTAssertEqual(c.args, .setStatus(.waitingOnCustomer))
        let own = try decode(#"{"type":"command","id":"c3","ticket":"T-1","op":"take_ownership"}"#).get()
        guard case .command(let o) = own else { return XCTFail() }
        XCTAssertEqual(o.args, .takeOwnership)
    }

    func testClientFrame_badInputs_areInvalidWithASentence() {
        let cases: [(String, String?)] = [
            ("not json", nil),
            ("[1,2]", nil),
            (#"{"id":"x"}"#, "x"),
            (#"{"type":"dance","id":"d"}"#, "d"),
            (#"{"type":"command","id":"c","ticket":"T-1","op":"fly","args":{}}"#, "c"),
            (#"{"type":"command","id":"c","ticket":"T-1","op":"note","args":{}}"#, "c"),
            (#"{"type":"command","id":"c","ticket":"T-1","op":"note","args":{"body":"   "}}"#, "c"),
            (#"{"type":"command","id":"c","ticket":"T-1","op":"set_status","args":{"status":"done"}}"#, "c"),
            (#"{"type":"command","id":"c","ticket":"T-1","op":"set_priority","args":{"priority":5}}"#, "c"),
            (#"{"type":"command","id":"c","ticket":"T-1","op":"assign","args":{}}"#, "c"),
            (#"{"type":"command","id":"c","ticket":"T-1","op":"note","args":"body"}"#, "c"),
            (#"{"type":"command","ticket":"T-1","op":"note","args":{"body":"x"}}"#, nil),
            (#"{"type":"composing","ticket":"T-1","mode":"shout"}"#, nil),
        ]
        for (text, id) in cases {
            guard case .failure(let r) = decode(text) else { XCTFail("accepted \(text)"); continue }
            XCTAssertEqual(r.error.code, .invalid, text)
            XCTAssertEqual(r.id, id, text)
            XCTAssertTrue(r.error.message.hasSuffix(".") || r.error.message.hasSuffix(")."), "message should be a sentence: \(r.error.message)")
        }
    }

    func testClientFrame_composingNull_decodes() {
        XCTAssertEqual(try decode(#"{"type":"composing","ticket":"T-1","mode":null}"#).get(), .composing(ticket: "T-1", mode: nil))
        XCTAssertEqual(try decode(#"{"type":"composing","ticket":"T-1","mode":"reply"}"#).get(), .composing(ticket: "T-1", mode: .reply))
    }

    func testClientFrame_sessionInput_boundedAndEchoesItsID() {
        XCTAssertEqual(try decode(#"{"type":"session_input","id":"i1","ticket":"T-1","session":"S-1","data":"ls\n"}"#).get(),
                       .sessionInput(id: "i1", ticket: "T-1", session: "S-1", data: "ls\n"))
        let max = String(repeating: "é", count: ClientFrame.maxSessionInputBytes / 2)
        XCTAssertNoThrow(try decode(#"{"type":"session_input","ticket":"T-1","session":"S-1","data":""# + max + #""}"#).get())
        for bad in [#"{"type":"session_input","id":"i2","ticket":"T-1","session":"S-1","data":""}"#,
                    #"{"type":"session_input","id":"i2","ticket":"T-1","session":"S-1","data":""# + max + #"x"}"#,
                    #"{"type":"session_input","id":"i2","ticket":"T-1","data":"ls"}"#,
                    #"{"type":"session_input","id":"i2","ticket":"T-1","session":"S 1","data":"ls"}"#] {
            guard case .failure(let r) = decode(bad) else { XCTFail(bad); continue }
            XCTAssertEqual(r.error.code, .invalid, bad)
            XCTAssertEqual(r.id, "i2", bad)
        }
    }

    func testCommand_startSessionKind_defaultsToRecording_unknownInvalid() {
        func command(_ args: String) -> Result<ClientFrame, ClientFrame.Refusal> {
            decode(#"{"type":"command","id":"c1","ticket":"T-1","op":"start_session","args":"# + args + "}")
        }
        for (args, kind) in [("{}", SessionKind.recording), (#"{"kind":null}"#, .recording), (#"{"kind":"shell"}"#, .shell), (#"{"kind":"desktop"}"#, .desktop)] {
            guard case .success(.command(let c)) = command(args) else { XCTFail(args); continue }
            XCTAssertEqual(c.args, .startSession(kind: kind), args)
        }
        for args in [#"{"kind":"vnc"}"#, #"{"kind":1}"#, #"{"kind":"Shell"}"#] {
            guard case .failure(let r) = command(args) else { XCTFail(args); continue }
            XCTAssertEqual(r.error.code, .invalid, args)
        }
    }
}

final class WireEncodingTests: XCTestCase {
    func testDeltaFrame_carriesContractFields() throws {
        let m = Message(id: "M-1-3", ticket: "T-1", seq: 3, channel: .customer, author: PersonRef(id: "contact", name: "Casey"),
                        body: "Hello", via: .agentMTLS, at: 1_795_937_400_123)
        let frame = try JSONParser.parse(Wire.deltaFrame(ticket: "T-1", seq: 3, at: m.at, kind: .messageCreated, data: Wire.messageBytes(m)))
        XCTAssertEqual(frame["type"], "delta")
        XCTAssertEqual(frame["ticket"], "T-1")
        XCTAssertEqual(frame["seq"], 3)
        XCTAssertEqual(frame["at"], "2026-11-29T07:30:00.123Z")
        XCTAssertEqual(frame["kind"], "message.created")
        let data = try XCTUnwrap(frame["data"])
        XCTAssertEqual(data["id"], "M-1-3")
        XCTAssertEqual(data["channel"], "customer")
        XCTAssertEqual(data["via"], "agent_mtls")
        XCTAssertEqual(data["author"], ["id": "contact", "name": "Casey"])
        XCTAssertEqual(data["attachments"], [])
    }

    func testEphemeralDelta_hasNoSeq() throws {
        let frame = try JSONParser.parse(Wire.deltaFrame(ticket: "T-1", seq: nil, at: 0, kind: .presenceUpdated, data: Array("{}".utf8)))
        XCTAssertNil(frame["seq"])
    }

    func testErrorFrame_staleCarriesMissed() throws {
        let missed = [Array(#"{"id":"M-1-2"}"#.utf8)]
        let frame = try JSONParser.parse(Wire.errorFrame(id: "c9", PeekError(.stale, "New messages.", missed: missed)))
        XCTAssertEqual(frame["type"], "error")
        XCTAssertEqual(frame["id"], "c9")
        XCTAssertEqual(frame["code"], "stale")
        XCTAssertEqual(frame["missed"], [["id": "M-1-2"]])
    }

    func testTicket_nothingToShowIsNullNotMissing() throws {
        let t = Ticket(id: "T-1", tenant: "a", number: 1, subject: "s", status: .open, priority: .normal, assignee: nil,
                       contact: Contact(name: "c", email: nil), client: "x", asset: nil, firstResponseAt: nil,
                       createdAt: 0, version: 1, seq: 0, sla: SLAClocks())
        var w = JSONWriter()
        Wire.ticket(t, into: &w)
        let v = try JSONParser.parse(w.bytes)
        for key in ["assignee", "asset", "first_response_at"] { XCTAssertEqual(v[key], .null, key) }
        XCTAssertEqual(v["contact"]?["email"], .null)
        var s = JSONWriter()
        Wire.sla(t, nowMillis: 0, into: &s)
        XCTAssertEqual(try JSONParser.parse(s.bytes), ["response": nil, "resolution": nil, "targets": ["response": nil, "resolution": nil]])
    }
}
