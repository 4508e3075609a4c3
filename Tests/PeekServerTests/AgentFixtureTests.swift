import XCTest
import Foundation
import PeekCore
import PeekServer
import PeekTLS
import PeekTestSupport

/// The world the agent, SLA and summary tests share: a real `peekd` with the
/// mutual-TLS agent listener on a throwaway PKI, tenant "acme" (technicians
/// tech-1, tech-2), asset "A-1" whose RMM agent is `AgentFixture.agentCN`, a
/// ticket linked to that asset and one that is not.
///
/// (Named `...Tests.swift` only to sit among the files this suite owns; it
/// holds no test case.)
final class AgentFixture {
    static let agentCN = "agent-acme-1"
    static let assetID = "A-1"
    static let assetName = "ACME-LAPTOP-07"

    let pki: CertFactory
    let tenant: String
    private(set) var server: TestServer
    private let consentTimeout: Int
    private let slaTick: Int
    let agentIdentity: CertFactory.Identity
    let linkedTicket: String
    let unlinkedTicket: String

    /// `prepare` runs on the PKI before the server starts: a context reads
    /// the CRL once, so `.revoked` clients must exist by then.
    init(tenant: String = "acme", consentTimeout: Int = 2, slaTick: Int = 15, prepare: (CertFactory) throws -> Void = { _ in },
         configure: (inout ServerConfig) -> Void = { _ in }) throws {
        self.tenant = tenant
        pki = try CertFactory()
        agentIdentity = try pki.makeClient(commonName: Self.agentCN)
        try prepare(pki)
        self.consentTimeout = consentTimeout
        self.slaTick = slaTick
        server = try Self.makeServer(pki: pki, directory: nil, consentTimeout: consentTimeout, slaTick: slaTick, configure: configure)
        unlinkedTicket = try server.seed(tenant: tenant, technicians: 2, tickets: 1)[0]
        let asset = try server.api("POST", "/v1/tenants/\(TestServer.pathSegment(tenant))/assets",
                                   ["id": .string(Self.assetID), "name": .string(Self.assetName), "agent": .string(Self.agentCN)])
        guard asset.status == 201 else { throw TestWebSocketClient.Failure("asset create failed: \(asset.status) \(asset.text)") }
        linkedTicket = try Self.createTicket(server, tenant: tenant, asset: Self.assetID)
    }

    private static func makeServer(pki: CertFactory, directory: String?, consentTimeout: Int, slaTick: Int,
                                   configure: (inout ServerConfig) -> Void = { _ in }) throws -> TestServer {
        try TestServer(directory: directory, agents: true) { c in
            c.agentCA = pki.caFile
            c.agentCRL = pki.crlFile
            c.tlsCert = pki.serverCertFile
            c.tlsKey = pki.serverKeyFile
            c.consentTimeoutSeconds = consentTimeout
            c.slaTickSeconds = slaTick
            configure(&c)
        }
    }

    func stop() { server.stop() }

    /// Stops the server, lets `downtime` pass with nothing running, and
    /// starts a new one on the same data directory (new ports).
    func restart(after downtime: Double) throws {
        server.stop()
        Thread.sleep(forTimeInterval: downtime)
        server = try Self.makeServer(pki: pki, directory: server.directory, consentTimeout: consentTimeout, slaTick: slaTick)
    }

    /// A ticket in `tenant`, optionally linked to an asset; answers its id.
    @discardableResult
    static func createTicket(_ server: TestServer, tenant: String = "acme", asset: String?, priority: String = "normal", extra: [String: JSONValue] = [:]) throws -> String {
        var body: [String: JSONValue] = ["subject": "Laptop fan is loud", "client": "ACME Corp", "priority": .string(priority),
                                         "contact": ["name": "Casey Customer", "email": "casey@acme.example"]]
        if let asset { body["asset"] = .string(asset) }
        for (k, v) in extra { body[k] = v }
        let r = try server.api("POST", "/v1/tenants/\(TestServer.pathSegment(tenant))/tickets", .object(body))
        guard r.status == 201, let id = r.json?["id"]?.stringValue else {
            throw TestWebSocketClient.Failure("ticket create failed: \(r.status) \(r.text)")
        }
        return id
    }

    func createTicket(asset: String?) throws -> String { try Self.createTicket(server, tenant: tenant, asset: asset) }

    /// A raw agent connection presenting `identity` (the fixture's agent by default).
    func connectAgent(_ identity: CertFactory.Identity? = nil) throws -> TestWebSocketClient {
        guard let port = server.agentPort else { throw TestWebSocketClient.Failure("no agent listener") }
        return try TestWebSocketClient(port: port, path: "/v1/agent", tls: try pki.makeClientContext(presenting: identity ?? agentIdentity))
    }

    /// The fixture's agent, connected and welcomed (welcome checked and consumed).
    func agent() throws -> TestWebSocketClient {
        let a = try connectAgent()
        let welcome = try a.next(type: "welcome")
        XCTAssertEqual(welcome["asset"]?["id"]?.stringValue, Self.assetID)
        XCTAssertEqual(welcome["asset"]?["name"]?.stringValue, Self.assetName)
        return a
    }

    /// A signed-in technician subscribed to `tickets` (snapshots consumed);
    /// answers the client and the snapshots in order.
    func viewer(_ tickets: String..., as user: String = "tech-1") throws -> (TestWebSocketClient, [JSONValue]) {
        let c = try server.technician(user, tenant: tenant)
        var snapshots: [JSONValue] = []
        for (i, t) in tickets.enumerated() { snapshots.append(try subscribe(c, t, id: "sub-\(i)")) }
        return (c, snapshots)
    }

    /// The audience of a per-asset push: a viewer of the linked ticket, a
    /// second linked ticket made here, and the unlinked one, with its presence
    /// deltas already read.
    func viewerOfEveryTicket() throws -> (viewer: TestWebSocketClient, secondLinked: String) {
        let secondLinked = try createTicket(asset: Self.assetID)
        let (viewer, _) = try self.viewer(linkedTicket, secondLinked, unlinkedTicket)
        _ = viewer.drain(for: 0.2)   // presence
        return (viewer, secondLinked)
    }

    func subscribe(_ c: TestWebSocketClient, _ ticket: String, id: String = "sub") throws -> JSONValue {
        try c.send(["type": "subscribe", "id": .string(id), "ticket": .string(ticket)])
        return try c.next { $0["type"]?.stringValue == "snapshot" && $0["id"]?.stringValue == id }
    }

    /// Starts a session of `kind` on the linked ticket and has the agent
    /// accept it; answers the session id once `active` and its system event
    /// reached `tech` (everything before them read).
    func activeSession(_ kind: String, _ tech: TestWebSocketClient, _ agent: TestWebSocketClient) throws -> String {
        let answer = try tech.commandAnswer("start-\(kind)", linkedTicket, "start_session", ["kind": .string(kind)])
        XCTAssertEqual(answer["type"]?.stringValue, "result", "\(answer)")
        let session = try XCTUnwrap(agent.next(type: "consent_request")["session"]?.stringValue)
        try agent.send(["type": "consent", "session": .string(session), "decision": "accept"])
        let seen = try tech.read(until: { Match.systemMessage(self.linkedTicket)($0) && $0["data"]?["body"]?.stringValue?.contains("accepted") == true })
        XCTAssertTrue(seen.contains { Match.delta("session.status", self.linkedTicket)($0) && $0["data"]?["status"]?.stringValue == "active" })
        return session
    }

    /// The ticket as the back-end API sees it: {ticket, seq, state}.
    func ticketState(_ id: String) throws -> JSONValue {
        let r = try server.api("GET", "/v1/tickets/\(id)")
        guard r.status == 200, let json = r.json else { throw TestWebSocketClient.Failure("GET ticket: \(r.status) \(r.text)") }
        return json
    }
}

extension TestWebSocketClient {
    /// Sends a technician command and answers its `result` or `error` (matched by id).
    @discardableResult
    func commandAnswer(_ id: String, _ ticket: String, _ op: String, _ args: JSONValue = [:], timeout: Double = 10) throws -> JSONValue {
        try send(["type": "command", "id": .string(id), "ticket": .string(ticket), "op": .string(op), "args": args])
        return try next(timeout: timeout) { m in
            let type = m["type"]?.stringValue
            return (type == "result" || type == "error") && m["id"]?.stringValue == id
        }
    }

    /// The next delta of `kind` (on `ticket`, when given) that satisfies `where`.
    @discardableResult
    func nextDelta(_ kind: String, ticket: String? = nil, timeout: Double = 8,
                   where extra: (JSONValue) -> Bool = { _ in true }) throws -> JSONValue {
        try next(timeout: timeout) { m in
            m["type"]?.stringValue == "delta" && m["kind"]?.stringValue == kind
                && (ticket == nil || m["ticket"]?.stringValue == ticket) && extra(m)
        }
    }

    /// Reads messages strictly in arrival order until one satisfies
    /// `predicate`; answers everything read, the match last. Unlike
    /// `next(where:)`, nothing older than the match is left behind, so
    /// "the first X after Y" can be asserted.
    func read(until predicate: (JSONValue) -> Bool, timeout: Double = 8) throws -> [JSONValue] {
        let deadline = Date().addingTimeInterval(timeout)
        var seen: [JSONValue] = []
        while true {
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { throw Failure("timed out; read in order: \(seen)") }
            let m = try next(timeout: left)
            seen.append(m)
            if predicate(m) { return seen }
        }
    }
}

/// Message predicates the suites share.
enum Match {
    static func delta(_ kind: String, _ ticket: String? = nil) -> (JSONValue) -> Bool {
        { $0["type"]?.stringValue == "delta" && $0["kind"]?.stringValue == kind && (ticket == nil || $0["ticket"]?.stringValue == ticket) }
    }

    static func systemMessage(_ ticket: String) -> (JSONValue) -> Bool {
        { delta("message.created", ticket)($0) && $0["data"]?["channel"]?.stringValue == "system" }
    }

    static func count(_ messages: [JSONValue], _ predicate: (JSONValue) -> Bool) -> Int { messages.filter(predicate).count }
}
