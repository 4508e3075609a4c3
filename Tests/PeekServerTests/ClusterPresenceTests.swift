import Foundation
import XCTest
import PeekCore
import PeekPostgres
import PeekTestSupport
@testable import PeekServer

/// Presence and the other ephemeral deltas across peekd nodes on one
/// PostgreSQL (issue 16): the viewers list is the union over nodes, typing
/// and telemetry reach viewers on other nodes, and a node killed with
/// SIGKILL leaves nobody behind for longer than two heartbeats (node
/// leases). Real servers on ephemeral ports, real sockets, PostgreSQL 15.
final class ClusterPresenceTests: XCTestCase {
    private func databaseURL() throws -> String {
        switch TestPostgres.shared {
        case .success(let server): return try server.createDatabase()
        case .failure(let error):
            if !TestPostgres.isInstalled { throw XCTSkip("\(error)") }
            throw error
        }
    }

    /// The next `presence.updated` of `ticket` listing exactly `ids`
    /// (composing as given, where given); earlier lists are passed over.
    @discardableResult
    private func presence(_ client: TestWebSocketClient, _ ticket: String, _ ids: Set<String>, composing: [String: String] = [:],
                          timeout: Double = 20) throws -> JSONValue {
        try client.next(timeout: timeout) { f in
            guard f["type"]?.stringValue == "delta", f["kind"]?.stringValue == "presence.updated",
                  f["ticket"]?.stringValue == ticket, let list = f["data"]?["viewers"]?.arrayValue else { return false }
            guard Set(list.compactMap { $0["id"]?.stringValue }) == ids, list.count == ids.count else { return false }
            return composing.allSatisfy { id, mode in list.contains { $0["id"]?.stringValue == id && $0["composing"]?.stringValue == mode } }
        }
    }

    /// Three nodes: technicians on A, B and C each see all three; one
    /// typing on C shows as composing on B; one leaving C leaves B's list.
    func testThreeNodes_presenceIsTheUnionOverNodes_typingCrosses_leavingCrosses() throws {
        let url = try databaseURL()
        let nodes = try (0..<3).map { _ in try TestServer { $0.databaseURL = url; $0.heartbeatSeconds = 3 } }
        defer { for n in nodes { n.stop() } }
        let ticket = try nodes[0].seed(technicians: 3)[0]
        let viewers = try (0..<3).map { try nodes[$0].technician("tech-\($0 + 1)") }
        defer { for v in viewers { v.close() } }
        for v in viewers { _ = try v.subscribe(ticket) }
        let everyone: Set = ["tech-1", "tech-2", "tech-3"]
        for v in viewers { try presence(v, ticket, everyone) }
        // A newcomer's snapshot lists the other nodes' viewers at once.
        let late = try nodes[1].technician("tech-1")
        defer { late.close() }
        let snapshot = try late.subscribe(ticket)
        XCTAssertEqual(Set(snapshot["state"]?["viewers"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []), everyone, "\(snapshot)")
        late.close()

        try viewers[2].send(["type": "composing", "ticket": .string(ticket), "mode": "note"])
        try presence(viewers[1], ticket, everyone, composing: ["tech-3": "note"])
        try presence(viewers[0], ticket, everyone, composing: ["tech-3": "note"])

        try viewers[2].send(["type": "unsubscribe", "ticket": .string(ticket)])
        try presence(viewers[1], ticket, ["tech-1", "tech-2"])
        try presence(viewers[0], ticket, ["tech-1", "tech-2"])
    }

    /// An agent on node A sends telemetry; a technician viewing its ticket
    /// on node B (nobody views it on A) gets the `asset.telemetry` delta.
    func testTelemetryFromAnAgentOnA_reachesAViewerOnB() throws {
        let url = try databaseURL()
        let f = try AgentFixture(configure: { $0.databaseURL = url })
        defer { f.stop() }
        let b = try TestServer { $0.databaseURL = url }
        defer { b.stop() }
        let viewer = try b.technician("tech-2")
        defer { viewer.close() }
        _ = try viewer.subscribe(f.linkedTicket)
        let agent = try f.agent()
        defer { agent.close() }
        // The viewer on B reaches A's engine through presence first.
        let deadline = Date().addingTimeInterval(20)
        var got: JSONValue?
        var cpu = 1
        while got == nil && Date() < deadline {
            try agent.send(["type": "telemetry", "cpu": .int(cpu), "ram": 20, "disk": 30])
            cpu += 1
            let isTelemetry: (JSONValue) -> Bool = Match.delta("asset.telemetry", f.linkedTicket)
            got = try? viewer.next(timeout: 1.5, where: isTelemetry)
        }
        let push = try XCTUnwrap(got, "no telemetry crossed to node B")
        XCTAssertNil(push["seq"], "ephemeral")
        XCTAssertEqual(push["data"]?["asset"]?["id"]?.stringValue, AgentFixture.assetID)
    }

    /// Three peekd processes with a 3-second heartbeat; technicians on each
    /// see all three; the second is killed with SIGKILL: its technician is
    /// gone from the others' lists within two heartbeats (its lease lapsed).
    func testKill9_theKilledNodesViewersLeaveWithinTwoHeartbeats() throws {
        let url = try databaseURL()
        let base = NSTemporaryDirectory() + "peek-presence-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: base) }
        let secret = String(repeating: "k", count: 32), service = "cluster-service"
        let heartbeat = 3.0
        let nodes = try (0..<3).map { i in
            try PeekdSubprocess(["--port", "0", "--data", base + "/node\(i)", "--threads", "1", "--database", url,
                                 "--jwt-secret", secret, "--service-token", service, "--heartbeat", "3"])
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
        for v in viewers { _ = try v.subscribe(ticket) }
        for v in viewers { try presence(v, ticket, ["tech-1", "tech-2", "tech-3"]) }

        kill(nodes[1].process.processIdentifier, SIGKILL)
        let killedAt = Date()
        nodes[1].process.waitUntilExit()
        for v in [viewers[0], viewers[2]] {
            try presence(v, ticket, ["tech-1", "tech-3"], timeout: 4 * heartbeat)
            let after = Date().timeIntervalSince(killedAt)
            XCTAssertLessThanOrEqual(after, 2 * heartbeat, "tech-2 left \(after) s after the kill")
        }
        let db = try PostgresConnection(url: url)
        XCTAssertEqual(try db.queryOne("SELECT COUNT(*) FROM peek_nodes WHERE expires_at > now()")?.first?.int, 2)
    }
}
