import Foundation
import XCTest
import PeekCore
import PeekPostgres
import PeekStore
import PeekTestSupport
@testable import PeekServer

/// Several peekd nodes on one PostgreSQL (issue 16): a delta committed on
/// one node reaches viewers on every node, in seq order, once each, also
/// when a notification is lost; any node answers a resent command id with
/// its first answer; a node killed with SIGKILL leaves the others serving.
/// Real servers on ephemeral ports, real sockets, a real PostgreSQL 15.
final class ClusterTests: XCTestCase {
    private func databaseURL() throws -> String {
        switch TestPostgres.shared {
        case .success(let server): return try server.createDatabase()
        case .failure(let error):
            if !TestPostgres.isInstalled { throw XCTSkip("\(error)") }
            throw error
        }
    }

    private func node(_ url: String) throws -> TestServer {
        try TestServer { $0.databaseURL = url }
    }

    /// Durable deltas of `ticket` after `after` through `through`, then a
    /// short wait that must bring no more of them (no duplicate follows).
    private func exactly(_ client: TestWebSocketClient, _ ticket: String, after: Int, through: Int,
                         file: StaticString = #filePath, line: UInt = #line) throws -> [JSONValue] {
        let got = try client.durableDeltas(ticket, through: through, timeout: 20)
        XCTAssertEqual(got.compactMap { $0["seq"]?.intValue }, Array((after + 1)...through), file: file, line: line)
        let extra = client.drain(for: 0.3).filter { $0["type"]?.stringValue == "delta" && $0["seq"] != nil }
        XCTAssertEqual(extra.compactMap { $0["seq"]?.intValue }, [], "no duplicate after", file: file, line: line)
        return got
    }

    /// Three nodes: notes posted on A and B in turn reach the viewers on A,
    /// B and C, each seq once and in order; a command id resent by the same
    /// technician on C gets the first answer, not a second note.
    func testThreeNodes_notesFromTwoNodesReachEveryViewerInSeqOrder_resendOnAnotherNodeGetsTheFirstAnswer() throws {
        let url = try databaseURL()
        let nodes = try (0..<3).map { _ in try node(url) }
        defer { for n in nodes { n.stop() } }
        let ticket = try nodes[0].seed(technicians: 3)[0]
        let viewers = try (0..<3).map { try nodes[$0].technician("tech-\($0 + 1)") }
        defer { for v in viewers { v.close() } }
        var start = 0
        for v in viewers {
            let snapshot = try v.subscribe(ticket)
            start = try XCTUnwrap(snapshot["seq"]?.intValue)
        }
        var last = start
        for i in 0..<6 {
            let author = viewers[i % 2]
            let posted = try author.run("n-\(i)", ticket, "note", ["body": .string("note \(i)")])
            XCTAssertEqual(posted["type"]?.stringValue, "result", "\(posted)")
            last = try XCTUnwrap(posted["seq"]?.intValue)
        }
        XCTAssertEqual(last, start + 6)
        for v in viewers {
            let got = try exactly(v, ticket, after: start, through: last)
            XCTAssertEqual(got.map { $0["data"]?["body"]?.stringValue }, (0..<6).map { "note \($0)" })
        }

        // tech-1 posted n-0 on A; the same technician resends it on C.
        let again = try nodes[2].technician("tech-1")
        defer { again.close() }
        let resent = try again.run("n-0", ticket, "note", ["body": "note 0"])
        XCTAssertEqual(resent["type"]?.stringValue, "result", "\(resent)")
        XCTAssertEqual(resent["seq"]?.intValue, start + 1, "the first answer")
        let db = try PostgresConnection(url: url)
        XCTAssertEqual(try db.queryOne("SELECT COUNT(*) FROM messages WHERE ticket = $1 AND body = 'note 0'", .text(ticket))?.first?.int, 1)
        XCTAssertEqual(viewers[1].drain(for: 0.3).filter { $0["type"]?.stringValue == "delta" && $0["seq"] != nil }.count, 0)
    }

    /// A delta committed with no notification (a node killed between its
    /// COMMIT and its NOTIFY) reaches the other nodes' viewers from the
    /// log: at once when the next notified delta shows the gap, and within
    /// the resync second when nothing follows it.
    func testLostNotification_gapIsReadFromTheLog_inOrderAndOnce() throws {
        let url = try databaseURL()
        let a = try node(url)
        let b = try node(url)
        defer { a.stop(); b.stop() }
        let ticket = try a.seed()[0]
        let viewer = try b.technician("tech-2")
        defer { viewer.close() }
        let start = try XCTUnwrap(try viewer.subscribe(ticket)["seq"]?.intValue)
        let author = try a.technician("tech-1")
        defer { author.close() }

        // Lost, then a notified note: the notification shows the gap.
        try commitUnnotified(url, ticket: ticket, body: "silent 1")
        let posted = try author.run("n-1", ticket, "note", ["body": "after the silent one"])
        let seq = try XCTUnwrap(posted["seq"]?.intValue)
        XCTAssertEqual(seq, start + 2)
        let got = try exactly(viewer, ticket, after: start, through: seq)
        XCTAssertEqual(got.map { $0["data"]?["body"]?.stringValue }, ["silent 1", "after the silent one"])

        // Lost, and nothing after it: the resync finds it.
        try commitUnnotified(url, ticket: ticket, body: "silent 2")
        let alone = try exactly(viewer, ticket, after: seq, through: seq + 1)
        XCTAssertEqual(alone.first?["data"]?["body"]?.stringValue, "silent 2")
    }

    /// Three real peekd processes on one PostgreSQL; one is killed with
    /// SIGKILL. The other two keep serving, deltas posted on them reach each
    /// other's viewers, and the killed node's viewer resumes with `since` on
    /// another node: every seq after the one it had, once, in order, and
    /// nothing acknowledged is lost.
    func testKill9_oneNodeOfThree_othersKeepServing_itsViewerResumesElsewhereWithoutGapOrDuplicate() throws {
        let url = try databaseURL()
        let base = NSTemporaryDirectory() + "peek-cluster-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: base) }
        let secret = String(repeating: "k", count: 32), service = "cluster-service"
        let nodes = try (0..<3).map { i in
            try PeekdSubprocess(["--port", "0", "--data", base + "/node\(i)", "--threads", "1", "--database", url,
                                 "--jwt-secret", secret, "--service-token", service])
        }
        defer { for n in nodes { n.stop() } }
        let ports = try nodes.map { try $0.readyPort("plain") }
        func api(_ path: String, _ json: String) throws -> TestServer.Response {
            let r = try TestServer.request(port: ports[0], "POST", path, body: Array(json.utf8), bearer: service)
            XCTAssertEqual(r.status, 201, "\(path): \(r.text)")
            return r
        }
        _ = try api("/v1/tenants", #"{"id":"acme","name":"Acme"}"#)
        for i in 1...3 { _ = try api("/v1/tenants/acme/technicians", #"{"id":"tech-\#(i)","name":"Tech \#(i)","email":"t\#(i)@acme.example"}"#) }
        let ticket = try XCTUnwrap(try api("/v1/tenants/acme/tickets",
            #"{"subject":"Printer","client":"Client Co","priority":"normal","contact":{"name":"Casey","email":"c@example.com"}}"#).json?["id"]?.stringValue)
        func technician(_ user: String, on port: UInt16) throws -> TestWebSocketClient {
            let client = try TestWebSocketClient(port: port)
            let token = JWT.sign(TechnicianClaims(subject: user, tenant: "acme", name: user, expiresAt: Int64(Date().timeIntervalSince1970) + 3600),
                                 secret: Array(secret.utf8))
            try client.send(["type": "hello", "token": .string(token)])
            try client.next(type: "welcome", timeout: 20)
            return client
        }
        let viewers = try (0..<3).map { try technician("tech-\($0 + 1)", on: ports[$0]) }
        defer { for v in viewers { v.close() } }
        var start = 0
        for v in viewers { start = try XCTUnwrap(try v.subscribe(ticket)["seq"]?.intValue) }
        let first = try XCTUnwrap(try viewers[0].run("k-1", ticket, "note", ["body": "before the kill"])["seq"]?.intValue)
        for v in viewers { _ = try exactly(v, ticket, after: start, through: first) }

        kill(nodes[1].process.processIdentifier, SIGKILL)
        nodes[1].process.waitUntilExit()
        XCTAssertThrowsError(try viewers[1].next(timeout: 10), "the killed node's socket ends")

        var last = first
        for (i, author) in [viewers[0], viewers[2], viewers[0]].enumerated() {
            let posted = try author.run("k-\(i + 2)", ticket, "note", ["body": .string("after the kill \(i)")])
            XCTAssertEqual(posted["type"]?.stringValue, "result", "\(posted)")
            last = try XCTUnwrap(posted["seq"]?.intValue)
        }
        XCTAssertEqual(last, first + 3)
        for v in [viewers[0], viewers[2]] { _ = try exactly(v, ticket, after: first, through: last) }

        let moved = try technician("tech-2", on: ports[2])
        defer { moved.close() }
        let (missed, end) = try moved.resume(ticket, since: first)
        XCTAssertEqual(missed.compactMap { $0["seq"]?.intValue }, Array((first + 1)...last))
        XCTAssertEqual(end["type"]?.stringValue, "subscribed", "\(end)")
        XCTAssertEqual(end["seq"]?.intValue, last)
        let db = try PostgresConnection(url: url)
        XCTAssertEqual(try db.queryOne("SELECT COUNT(*) FROM messages WHERE ticket = $1 AND author_id LIKE 'tech-%'", .text(ticket))?.first?.int, 4)
    }

    /// SLA deadlines on three nodes: a ticket created on A is armed on B and
    /// C by their rescan, all three fire, and each target is breached once
    /// (the ticket row lock and the flag). A second ticket's node is
    /// stopped before its deadlines: another node records them, once.
    func testSLADeadlines_firedOnceClusterWide_alsoWhenTheNodeThatArmedThemIsGone() throws {
        let url = try databaseURL()
        let nodes = try (0..<3).map { _ in try TestServer { $0.databaseURL = url; $0.clusterRescanSeconds = 1 } }
        defer { for n in nodes { n.stop() } }
        try nodes[0].seed(tenant: "acme", technicians: 2, tickets: 0)
        let policy = try nodes[0].api("PUT", "/v1/tenants/acme/sla-policy", ["normal": ["response": 3, "resolution": 4]])
        XCTAssertEqual(policy.status, 200, policy.text)

        func breaches(of ticket: String, on viewer: TestWebSocketClient) throws {
            try viewer.send(["type": "subscribe", "id": "s", "ticket": .string(ticket), "since": 0])
            let log = try viewer.read(until: { Match.delta("sla.breached", ticket)($0) && $0["data"]?["target"]?.stringValue == "resolution" },
                                      timeout: 20) + viewer.drain(for: 2.5)
            let durable = log.filter { $0["type"]?.stringValue == "delta" && $0["ticket"]?.stringValue == ticket && $0["seq"] != nil }
            XCTAssertEqual(durable.compactMap { $0["seq"]?.intValue }, Array(1...max(1, durable.count)), "every seq once, in order")
            XCTAssertEqual(durable.filter(Match.delta("sla.breached")).compactMap { $0["data"]?["target"]?.stringValue },
                           ["response", "resolution"], "each target breached once")
            XCTAssertEqual(durable.filter(Match.systemMessage(ticket)).count, 2, "one system event per breach")
        }

        let shared = try AgentFixture.createTicket(nodes[0], asset: nil)
        let onC = try nodes[2].technician("tech-1")
        defer { onC.close() }
        try breaches(of: shared, on: onC)

        let orphan = try AgentFixture.createTicket(nodes[0], asset: nil)
        nodes[0].stop()
        let onB = try nodes[1].technician("tech-2")
        defer { onB.close() }
        try breaches(of: orphan, on: onB)
    }

    /// The notification payloads: every delta of the batches queued, in
    /// order, under PostgreSQL's 8000-byte limit; a frame too large for a
    /// payload of its own travels as `ticket seq` only (read from the log).
    func testPayloads_underTheLimitInOrder_largeFramesLeftOut() {
        let small = (1...300).map { PostgresBus.PendingDelta(ticket: "T-1001", seq: $0, frame: Array("{\"seq\":\($0),\"x\":\"\(String(repeating: "é", count: 20))\"}".utf8)) }
        let large = PostgresBus.PendingDelta(ticket: "T-1002", seq: 7, frame: Array(String(repeating: "a", count: 9000).utf8))
        let payloads = PostgresBus.payloads(node: "n1", small + [large])
        XCTAssertGreaterThan(payloads.count, 1)
        var seqs: [String] = []
        for p in payloads {
            XCTAssertLessThanOrEqual(p.utf8.count, PostgresConnection.maxNotifyPayloadBytes)
            let lines = p.split(separator: "\n")
            XCTAssertEqual(lines.first, "n1")
            seqs += lines.dropFirst().map { $0.split(separator: " ", maxSplits: 2).prefix(2).joined(separator: " ") }
        }
        XCTAssertEqual(seqs, (1...300).map { "T-1001 \($0)" } + ["T-1002 7"])
        XCTAssertTrue(payloads.last?.hasSuffix("\nT-1002 7\n") ?? false)
        XCTAssertEqual(PostgresBus.seq(in: Array("{\"type\":\"snapshot\",\"id\":\"\\\"seq\\\":9\",\"ticket\":\"T-1\",\"seq\":42,\"state\":{\"seq\":1}}".utf8)), 42)
        XCTAssertNil(PostgresBus.seq(in: Array("{\"type\":\"delta\",\"ticket\":\"T-1\",\"kind\":\"presence.updated\"}".utf8)))
    }

    /// A note committed straight into the database, as a node would, but
    /// with no NOTIFY after it.
    private func commitUnnotified(_ url: String, ticket: String, body: String) throws {
        let store = try PostgresTicketStore(url: url)
        try store.begin()
        var t = try XCTUnwrap(try store.ticket(ticket))
        t.seq += 1
        let m = Message(id: "M-\(t.number)-\(t.seq)", ticket: t.id, seq: t.seq, channel: .internalNote,
                        author: PersonRef(id: "tech-1", name: "Tech 1"), body: body, via: .web, at: 1_800_000_000_000)
        try store.insertMessage(m, mailMessageID: nil, delta: Wire.messageBytes(m))
        try store.updateTicket(t)
        try store.commit()
    }
}
