import XCTest
import Foundation
import PeekCore
import PeekTestSupport

/// Nexie over HTTP (protocol.md §11): the tenant's assistant streaming a
/// draft to the technician who asked, the summariser called after customer
/// messages, and the asset's posture pushed live. The assistant and the
/// summariser are real HTTP servers on loopback (`TestHTTPEndpoint`).
final class NexieTests: XCTestCase {
    private func configure(_ server: TestServer, _ kind: String, _ url: String?, tenant: String = "acme") throws -> TestServer.Response {
        try server.api("PUT", "/v1/tenants/\(tenant)/\(kind)", ["url": url.map { .string($0) } ?? .null])
    }

    private func assist(_ tech: TestWebSocketClient, _ id: String, _ ticket: String, draft: String = "hi, looking into it") throws {
        try tech.send(["type": "assist", "id": .string(id), "ticket": .string(ticket), "mode": "reply", "draft": .string(draft)])
    }

    /// The frames answering assist `id`, up to and including its end (`assist_done` or `error`).
    private func assistFrames(_ tech: TestWebSocketClient, _ id: String, timeout: Double = 15) throws -> [JSONValue] {
        var frames: [JSONValue] = []
        while true {
            let f = try tech.next(timeout: timeout) { $0["id"]?.stringValue == id }
            frames.append(f)
            if f["type"]?.stringValue != "assist_chunk" { return frames }
        }
    }

    private static func line(_ fields: [String: JSONValue]) -> String {
        String(decoding: JSONWriter.encode(.object(fields)), as: UTF8.self) + "\n"
    }

    func testAssist_notConfigured_noAssistantAndNoCall() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed(tickets: 1)[0]
        let tech = try server.technician()
        try assist(tech, "a1", ticket)
        let e = try tech.next { $0["id"]?.stringValue == "a1" }
        XCTAssertEqual(e["type"]?.stringValue, "error")
        XCTAssertEqual(e["code"]?.stringValue, "no_assistant")
        XCTAssertEqual(e["message"]?.stringValue, "No assistant is configured")

        // Removing a configured one says the same again.
        let endpoint = try TestHTTPEndpoint { _ in .whole(status: 200, contentType: "application/x-ndjson", body: "") }
        defer { endpoint.stop() }
        XCTAssertEqual(try configure(server, "assistant", endpoint.url).status, 200)
        XCTAssertEqual(try configure(server, "assistant", nil).status, 200)
        try assist(tech, "a2", ticket)
        XCTAssertEqual(try tech.next { $0["id"]?.stringValue == "a2" }["code"]?.stringValue, "no_assistant")
        XCTAssertEqual(endpoint.requests.count, 0)
    }

    func testPutAssistant_validatesAndNormalisesTheURL() throws {
        let server = try TestServer()
        defer { server.stop() }
        try server.seed(tickets: 1)
        for bad in ["ftp://x/y", "http://", "http://user:pw@host/", "http://host:0/", "http://host:70000/", "http://ho st/", "http://host/#frag", "nexie"] {
            let r = try configure(server, "assistant", bad)
            XCTAssertEqual(r.status, 400, "\(bad): \(r.text)")
            XCTAssertEqual(r.json?["error"]?["code"]?.stringValue, "invalid", bad)
        }
        XCTAssertEqual(try server.api("PUT", "/v1/tenants/acme/assistant", ["uri": "http://x/"]).status, 400, "url is required")
        let ok = try configure(server, "summariser", "HTTP://Nexie.Example:80?v=2")
        XCTAssertEqual(ok.status, 200, ok.text)
        XCTAssertEqual(ok.json?["url"]?.stringValue, "http://nexie.example/?v=2")
        XCTAssertEqual(try configure(server, "assistant", "https://nexie.example:8443/v1/assist").json?["url"]?.stringValue,
                       "https://nexie.example:8443/v1/assist")
        XCTAssertEqual(try configure(server, "assistant", "http://x/", tenant: "nobody").status, 404)
        let anonymous = try server.request("PUT", "/v1/tenants/acme/assistant", body: Array(#"{"url":"http://x/"}"#.utf8), service: false)
        XCTAssertEqual(anonymous.status, 401)
    }

    /// Each piece reaches the technician before the assistant writes the
    /// next (the gate holds the endpoint until the test has seen it), in
    /// order, then `assist_done` with the whole text; another viewer of the
    /// same ticket gets none of it.
    func testAssist_streamsEachPieceAsProducedInOrder_toTheAskerOnly() throws {
        let pieces = [Self.line(["model": "nexie-test", "text": "Hi Casey, "]), Self.line(["text": "I have restarted "]),
                      "\n", Self.line(["text": "the print spooler."])]
        let endpoint = try TestHTTPEndpoint { _ in .gated(pieces: pieces) }
        defer { endpoint.stop() }
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed(tickets: 1)[0]
        XCTAssertEqual(try server.inboundEmail(ticketNumber: ticketNumber(ticket), body: "The printer is stuck again.").status, 201)
        XCTAssertEqual(try configure(server, "assistant", endpoint.url).status, 200)
        let tech = try server.technician("tech-1")
        let other = try server.technician("tech-2")
        try tech.subscribe(ticket)
        try other.subscribe(ticket)

        try assist(tech, "a1", ticket, draft: "printer fixed")
        let request = try XCTUnwrap(endpoint.waitForRequests(1).first)
        XCTAssertTrue(request.head.hasPrefix("POST /nexie HTTP/1.1\r\n"), request.head)
        XCTAssertTrue(request.head.lowercased().contains("accept: application/x-ndjson"), request.head)
        let body = try XCTUnwrap(request.body)
        XCTAssertEqual(body["tenant"]?.stringValue, "acme")
        XCTAssertEqual(body["mode"]?.stringValue, "reply")
        XCTAssertEqual(body["draft"]?.stringValue, "printer fixed")
        XCTAssertEqual(body["technician"]?["id"]?.stringValue, "tech-1")
        XCTAssertEqual(body["ticket"]?["id"]?.stringValue, ticket)
        XCTAssertEqual(body["thread"]?.arrayValue?.last?["body"]?.stringValue?.hasPrefix("The printer is stuck again."), true)

        var texts: [String] = []
        for expected in ["Hi Casey, ", "I have restarted ", nil, "the print spooler."] {
            endpoint.release()
            guard let expected else { continue }   // the blank line gives no frame
            let chunk = try tech.next(timeout: 10) { $0["id"]?.stringValue == "a1" }
            XCTAssertEqual(chunk["type"]?.stringValue, "assist_chunk", "\(chunk)")
            XCTAssertEqual(chunk["ticket"]?.stringValue, ticket)
            XCTAssertEqual(chunk["text"]?.stringValue, expected)
            texts.append(expected)
        }
        endpoint.release()
        let done = try tech.next(timeout: 10) { $0["id"]?.stringValue == "a1" }
        XCTAssertEqual(done["type"]?.stringValue, "assist_done", "\(done)")
        XCTAssertEqual(done["text"]?.stringValue, texts.joined())
        XCTAssertEqual(done["model"]?.stringValue, "nexie-test")

        let seen = other.drain(for: 0.5)
        XCTAssertFalse(seen.contains { ($0["type"]?.stringValue ?? "").hasPrefix("assist") || $0["id"]?.stringValue == "a1" }, "\(seen)")
        // Nothing durable: the ticket's seq did not move.
        XCTAssertEqual(try server.durableState(ticket)["seq"]?.intValue, 1)
    }

    func testAssist_closeDelimitedStream_andAssistantErrors() throws {
        let endpoint = try TestHTTPEndpoint { request in
            switch request.body?["draft"]?.stringValue {
            case "plain":
                return .stream(status: 200, contentType: "application/x-ndjson",
                               pieces: [Self.line(["text": "one "]), Self.line(["text": "two"])], delayMillis: 20, chunked: false)
            case "status":
                return .whole(status: 503, contentType: "text/plain", body: "model overloaded")
            case "reported":
                return .stream(status: 200, contentType: "application/x-ndjson",
                               pieces: [Self.line(["text": "Hel"]), Self.line(["error": "content policy"])], delayMillis: 0, chunked: true)
            default:
                return .whole(status: 200, contentType: "application/x-ndjson", body: "this is not json\n")
            }
        }
        defer { endpoint.stop() }
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed(tickets: 1)[0]
        XCTAssertEqual(try configure(server, "assistant", endpoint.url).status, 200)
        let tech = try server.technician()

        try assist(tech, "plain", ticket, draft: "plain")
        let plain = try assistFrames(tech, "plain")
        XCTAssertEqual(plain.map { $0["type"]?.stringValue ?? "" }, ["assist_chunk", "assist_chunk", "assist_done"])
        XCTAssertEqual(plain.last?["text"]?.stringValue, "one two")
        XCTAssertEqual(plain.last?["model"], .null)

        try assist(tech, "status", ticket, draft: "status")
        let status = try XCTUnwrap(assistFrames(tech, "status").last)
        XCTAssertEqual(status["type"]?.stringValue, "error")
        XCTAssertEqual(status["code"]?.stringValue, "assist_failed")
        XCTAssertEqual(status["message"]?.stringValue, "The assistant answered HTTP 503: model overloaded; try again.")

        try assist(tech, "reported", ticket, draft: "reported")
        let reported = try assistFrames(tech, "reported")
        XCTAssertEqual(reported.first?["text"]?.stringValue, "Hel")
        XCTAssertEqual(reported.last?["code"]?.stringValue, "assist_failed")
        XCTAssertTrue(reported.last?["message"]?.stringValue?.contains("stopped: the assistant reported: content policy") == true, "\(reported)")

        try assist(tech, "junk", ticket, draft: "junk")
        let junk = try XCTUnwrap(assistFrames(tech, "junk").last)
        XCTAssertEqual(junk["code"]?.stringValue, "assist_failed")
        XCTAssertTrue(junk["message"]?.stringValue?.contains("could not be read (a line of the assistant's answer is not a JSON object") == true, "\(junk)")
    }

    func testAssist_unreachableAndTimedOut_assistFailed() throws {
        let endpoint = try TestHTTPEndpoint { _ in .silence }
        defer { endpoint.stop() }
        let server = try TestServer { $0.assistTimeoutSeconds = 1 }
        defer { server.stop() }
        let ticket = try server.seed(tickets: 1)[0]
        let tech = try server.technician()
        XCTAssertEqual(try configure(server, "assistant", endpoint.url).status, 200)
        let started = Date()
        try assist(tech, "slow", ticket)
        let slow = try XCTUnwrap(assistFrames(tech, "slow").last)
        XCTAssertEqual(slow["code"]?.stringValue, "assist_failed")
        XCTAssertEqual(slow["message"]?.stringValue, "The assistant did not answer within 1 seconds; try again.")
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.9)

        // A port nobody listens on: refused at once, said so.
        let closed = try TestHTTPEndpoint { _ in .silence }
        let deadURL = closed.url
        closed.stop()
        usleep(300_000)   // the accept loop closes its socket within its 100 ms poll
        XCTAssertEqual(try configure(server, "assistant", deadURL).status, 200)
        try assist(tech, "dead", ticket)
        let dead = try XCTUnwrap(assistFrames(tech, "dead").last)
        XCTAssertEqual(dead["code"]?.stringValue, "assist_failed")
        XCTAssertTrue(dead["message"]?.stringValue?.contains("could not connect") == true, "\(dead)")
    }

    /// A tenant's assistant is called for its own tickets only, and one
    /// tenant's assist on another's ticket is `not_found`, calling nobody.
    func testAssist_tenantIsolation() throws {
        let acmeAssistant = try TestHTTPEndpoint { _ in .whole(status: 200, contentType: "application/x-ndjson", body: Self.line(["text": "acme"])) }
        let globexAssistant = try TestHTTPEndpoint { _ in .whole(status: 200, contentType: "application/x-ndjson", body: Self.line(["text": "globex"])) }
        defer { acmeAssistant.stop(); globexAssistant.stop() }
        let server = try TestServer()
        defer { server.stop() }
        let acmeTicket = try server.seed(tenant: "acme", tickets: 1)[0]
        let globexTicket = try server.seed(tenant: "globex", tickets: 1)[0]
        XCTAssertEqual(try configure(server, "assistant", acmeAssistant.url, tenant: "acme").status, 200)
        XCTAssertEqual(try configure(server, "assistant", globexAssistant.url, tenant: "globex").status, 200)
        let globex = try server.technician("tech-1", tenant: "globex")

        try assist(globex, "cross", acmeTicket)
        XCTAssertEqual(try globex.next { $0["id"]?.stringValue == "cross" }["code"]?.stringValue, "not_found")
        try assist(globex, "own", globexTicket)
        XCTAssertEqual(try assistFrames(globex, "own").last?["text"]?.stringValue, "globex")
        XCTAssertEqual(acmeAssistant.requests.count, 0)
        XCTAssertEqual(globexAssistant.requests.count, 1)
        XCTAssertEqual(globexAssistant.requests.first?.body?["tenant"]?.stringValue, "globex")
    }

    func testAssist_badFrames_invalid() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed(tickets: 1)[0]
        let tech = try server.technician()
        let frames: [JSONValue] = [
            ["type": "assist", "id": "b1", "ticket": .string(ticket), "draft": "x"],
            ["type": "assist", "id": "b2", "ticket": .string(ticket), "mode": "email", "draft": "x"],
            ["type": "assist", "id": "b3", "ticket": .string(ticket), "mode": "note", "draft": 5],
            ["type": "assist", "id": "b4", "ticket": .string(ticket), "mode": "note", "draft": .string(String(repeating: "x", count: 64 * 1024 + 1))],
        ]
        for (i, frame) in frames.enumerated() {
            try tech.send(frame)
            let e = try tech.next { $0["id"]?.stringValue == "b\(i + 1)" }
            XCTAssertEqual(e["code"]?.stringValue, "invalid", "\(frame)")
        }
    }

    // MARK: Summaries on demand

    /// Three customer messages close together make one summariser call,
    /// after the quiet time, with all three in its thread; its answer is
    /// stored as `summary.updated` with `covers` the last message's seq,
    /// after a `summary.pending` that the card shows while it waits.
    func testSummariser_debouncedAfterCustomerMessages_storedAndPushed() throws {
        let summariser = try TestHTTPEndpoint { request in
            let count = request.body?["thread"]?.arrayValue?.count ?? -1
            return .whole(status: 200, contentType: "application/json",
                          body: #"{"text": "Casey reports \#(count) printer problems.", "model": "nexie-sum"}"#)
        }
        defer { summariser.stop() }
        let server = try TestServer { $0.summaryDebounceMillis = 600 }
        defer { server.stop() }
        let tickets = try server.seed(tickets: 2)
        let ticket = tickets[0]
        XCTAssertEqual(try configure(server, "summariser", summariser.url).status, 200)
        let tech = try server.technician()
        try tech.subscribe(ticket)

        for i in 1...3 {
            XCTAssertEqual(try server.inboundEmail(ticketNumber: ticketNumber(ticket), body: "Problem \(i)").status, 201)
        }
        // A note is not a customer message: it does not call the summariser.
        XCTAssertEqual(try tech.run("n1", ticket, "note", ["body": "checking"])["type"]?.stringValue, "result")
        let pending = try tech.delta("summary.pending", ticket: ticket)
        XCTAssertEqual(pending["data"]?["pending"], .bool(true))
        let updated = try tech.delta("summary.updated", ticket: ticket)
        XCTAssertEqual(updated["data"]?["text"]?.stringValue, "Casey reports 4 printer problems.")
        XCTAssertEqual(updated["data"]?["model"]?.stringValue, "nexie-sum")
        XCTAssertEqual(updated["data"]?["covers"]?.intValue, 4, "the last message the summariser was sent")
        XCTAssertEqual(updated["seq"]?.intValue, 5)

        let requests = summariser.requests
        XCTAssertEqual(requests.count, 1, "debounced into one call")
        XCTAssertEqual(requests[0].body?["covers"]?.intValue, 4)
        XCTAssertEqual(requests[0].body?["previous"], .null)
        XCTAssertEqual(requests[0].body?["thread"]?.arrayValue?.compactMap { $0["channel"]?.stringValue },
                       ["customer", "customer", "customer", "internal_note"])
        XCTAssertEqual(try server.ticketState(ticket)["state"]?["summary"]?["text"]?.stringValue, "Casey reports 4 printer problems.")

        // Quiet: no further call. The next customer message sends the previous summary along.
        XCTAssertTrue(tech.drain(for: 1.0).allSatisfy { $0["kind"]?.stringValue != "summary.updated" })
        XCTAssertEqual(summariser.requests.count, 1)
        XCTAssertEqual(try server.inboundEmail(ticketNumber: ticketNumber(ticket), body: "Fixed, thanks").status, 201)
        let second = try summariser.waitForRequests(2)[1]
        XCTAssertEqual(second.body?["previous"]?.stringValue, "Casey reports 4 printer problems.")
        // The other ticket never had a customer message: never summarised.
        XCTAssertFalse(summariser.requests.contains { $0.body?["ticket"]?["id"]?.stringValue == tickets[1] })
    }

    func testSummariser_failureStoresNothing_andNoneConfiguredCallsNothing() throws {
        let summariser = try TestHTTPEndpoint { _ in .whole(status: 500, contentType: "text/plain", body: "boom") }
        defer { summariser.stop() }
        let server = try TestServer { $0.summaryDebounceMillis = 200 }
        defer { server.stop() }
        let acme = try server.seed(tenant: "acme", tickets: 1)[0]
        let tech = try server.technician()
        try tech.subscribe(acme)
        XCTAssertEqual(try server.inboundEmail(ticketNumber: ticketNumber(acme), body: "Hello?").status, 201)
        XCTAssertTrue(tech.drain(for: 0.8).allSatisfy { $0["kind"]?.stringValue != "summary.pending" }, "no summariser: no call")

        XCTAssertEqual(try configure(server, "summariser", summariser.url).status, 200)
        XCTAssertEqual(try server.inboundEmail(ticketNumber: ticketNumber(acme), body: "Anyone?").status, 201)
        XCTAssertEqual(try tech.delta("summary.pending", ticket: acme)["data"]?["pending"], .bool(true))
        XCTAssertEqual(try tech.delta("summary.pending", ticket: acme)["data"]?["pending"], .bool(false))
        XCTAssertEqual(summariser.requests.count, 1)
        XCTAssertEqual(try server.ticketState(acme)["state"]?["summary"], .null)
        XCTAssertEqual(try server.durableState(acme)["seq"]?.intValue, 2, "two messages, no summary delta")
    }

    // MARK: Posture

    func testPosture_backEndPut_pushedToViewersAndInSnapshot() throws {
        let server = try TestServer()
        defer { server.stop() }
        _ = try server.api("POST", "/v1/tenants", ["id": "acme", "name": "Acme"])
        _ = try server.api("POST", "/v1/tenants/acme/technicians", ["id": "tech-1", "name": "Tech 1", "email": "t1@acme.example"])
        XCTAssertEqual(try server.api("POST", "/v1/tenants/acme/assets", ["id": "pc-1", "name": "PC-1", "agent": "agent-pc-1"]).status, 201)
        let ticket = try server.seed(tenant: "acme", technicians: 1, tickets: 1, asset: "pc-1")[0]
        let tech = try server.technician()
        let snapshot = try tech.subscribe(ticket)
        XCTAssertEqual(snapshot["state"]?["asset"]?["posture"], .null)

        let posture: JSONValue = ["antivirus": "healthy", "firewall": "off", "disk_encryption": "on", "pending_patches": 4]
        let r = try server.api("PUT", "/v1/tenants/acme/assets/pc-1", ["posture": posture])
        XCTAssertEqual(r.status, 200, r.text)
        XCTAssertEqual(r.json?["posture"], posture)
        let delta = try tech.delta("asset.posture", ticket: ticket)
        XCTAssertNil(delta["seq"], "ephemeral")
        XCTAssertEqual(delta["data"]?["asset"]?["id"]?.stringValue, "pc-1")
        XCTAssertEqual(delta["data"]?["asset"]?["name"]?.stringValue, "PC-1")
        XCTAssertEqual(delta["data"]?["posture"], posture)
        XCTAssertEqual(try server.ticketState(ticket)["state"]?["asset"]?["posture"], posture)

        XCTAssertEqual(try server.api("PUT", "/v1/tenants/acme/assets/pc-1", ["posture": .null]).status, 200)
        XCTAssertEqual(try tech.delta("asset.posture", ticket: ticket)["data"]?["posture"], .null)
        XCTAssertEqual(try server.api("PUT", "/v1/tenants/acme/assets/pc-1", ["posture": "green"]).status, 400)
        XCTAssertEqual(try server.api("PUT", "/v1/tenants/acme/assets/pc-1", ["name": "x"]).status, 400)
        XCTAssertEqual(try server.api("PUT", "/v1/tenants/acme/assets/nope", ["posture": [:]]).status, 404)
        _ = try server.api("POST", "/v1/tenants", ["id": "globex", "name": "Globex"])
        XCTAssertEqual(try server.api("PUT", "/v1/tenants/globex/assets/pc-1", ["posture": [:]]).status, 404, "another tenant's asset")
    }
}

extension NexieTests {
    /// The agent's own posture report: stored, pushed to viewers of the
    /// linked ticket, not pushed again when unchanged, refused when not an object.
    func testPosture_fromTheAgent_storedAndPushed() throws {
        let f = try AgentFixture()
        defer { f.stop() }
        let (viewer, _) = try f.viewer(f.linkedTicket)
        let agent = try f.agent()
        let posture: JSONValue = ["antivirus": "outdated", "firewall": "on", "pending_patches": 2]
        try agent.send(["type": "posture", "posture": posture])
        let delta = try viewer.delta("asset.posture", ticket: f.linkedTicket)
        XCTAssertEqual(delta["data"]?["posture"], posture)
        XCTAssertEqual(try f.ticketState(f.linkedTicket)["state"]?["asset"]?["posture"], posture)
        try agent.send(["type": "posture", "posture": posture])
        try agent.send(["type": "posture", "posture": ["antivirus", "on"]])
        XCTAssertEqual(try agent.next(type: "error")["code"]?.stringValue, "invalid")
        XCTAssertFalse(viewer.drain(for: 0.5).contains { $0["kind"]?.stringValue == "asset.posture" }, "an unchanged posture is not pushed again")
    }
}
