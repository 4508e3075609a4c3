import Foundation
import PeekCore
import PeekHTTP
@testable import PeekEngine
@testable import PeekServer
import PeekTestSupport
import Synchronization
import XCTest

/// The engine without sockets, threads or a database file: jobs go in by
/// `submit`, one `runPass` runs them (and the timers due) on the test's
/// thread, and what the engine hands the bus is read back from a
/// `RecordingBus`. Time is a `ManualTimeSource`: it moves only by `advance`.
final class EngineHarness {
    let clock: ManualTimeSource
    let memory: InMemoryTicketStore
    /// What the engine uses: `memory`, or a wrapper around it.
    let store: any TicketStore
    let bus = RecordingBus()
    let engine: Engine
    let config: EngineConfig
    private var nextPeer: UInt64 = 0

    static let secret = "engine-rules-test-secret-0123456789abcdef"

    /// `wrap`: puts a store (a `FailingStore`) between the engine and
    /// memory. `database` and `clock`: another engine's, for a restart.
    init(database: InMemoryDatabase = InMemoryDatabase(), clock: ManualTimeSource = ManualTimeSource(),
         wrap: (any TicketStore) -> any TicketStore = { $0 }, configure: (inout EngineConfig) -> Void = { _ in }) {
        self.clock = clock
        memory = InMemoryTicketStore(database: database)
        store = wrap(memory)
        var config = EngineConfig()
        config.jwtSecret = Self.secret
        config.serviceToken = "service-token-for-engine-tests"
        config.clock = clock
        configure(&config)
        self.config = config
        engine = Engine(config: config, store: store, bus: bus, mailer: SilentMailer(),
                        logger: ServerLog(format: .text, fd: EngineHarness.devNull))
        engine.prepareToRun()
    }

    private static let devNull: Int32 = open("/dev/null", O_WRONLY)

    // MARK: Running

    /// Runs `jobs` in one pass (one batch, unless a write ends it early) and
    /// answers what the bus was handed.
    @discardableResult
    func run(_ jobs: EngineJob...) -> [Out] {
        for job in jobs { engine.submit(job) }
        engine.runPass()
        return bus.take()
    }

    /// Moves time on and runs the timers it made due.
    @discardableResult
    func advance(seconds: Int64) -> [Out] {
        clock.advance(seconds: seconds)
        engine.runPass()
        return bus.take()
    }

    func newPeer() -> Peer {
        nextPeer += 1
        return Peer(raw: nextPeer)
    }

    // MARK: The back-end API

    struct Response { var status: Int; var json: JSONValue }

    @discardableResult
    func api(_ method: String, _ path: String, _ body: JSONValue? = nil, file: StaticString = #filePath, line: UInt = #line) -> Response {
        guard case .matched(let route, let params) = APIRoute.router.match(method: method, path: path) else {
            XCTFail("no route \(method) \(path)", file: file, line: line)
            return Response(status: 0, json: .null)
        }
        // The loop parses a JSON route's body before the engine sees it.
        let request = APIRequest(route: route, params: params.byName, method: method, path: path, query: [], contentType: "application/json",
                                 body: body.map { JSONWriter.encode($0) } ?? [], caller: .service,
                                 prepared: route.takesJSONBody ? .json(body) : nil)
        nextPeer += 1
        let outs = run(.api(request, reply: APIReplyID(raw: nextPeer)))
        guard let response = outs.compactMap(\.http).first else {
            XCTFail("no answer to \(method) \(path): \(outs)", file: file, line: line)
            return Response(status: 0, json: .null)
        }
        return Response(status: response.status, json: (try? JSONParser.parse(response.body)) ?? .null)
    }

    /// Tenant `acme`, technicians tech-1 and tech-2, an SLA policy for
    /// `normal` when given, and one ticket: its id.
    func seed(sla: SLATarget? = nil, asset: String? = nil) -> String {
        api("POST", "/v1/tenants", ["id": "acme", "name": "Acme"])
        for i in 1...2 {
            api("POST", "/v1/tenants/acme/technicians", ["id": .string("tech-\(i)"), "name": .string("Tech \(i)"), "email": .string("t\(i)@acme.example")])
        }
        if let sla {
            api("PUT", "/v1/tenants/acme/sla-policy", ["normal": ["response": .int(sla.response), "resolution": .int(sla.resolution)]])
        }
        var body: JSONValue = ["subject": "Printer on fire", "client": "Client Co", "priority": "normal",
                               "contact": ["name": "Casey", "email": "casey@example.com"]]
        if let asset {
            api("POST", "/v1/tenants/acme/assets", ["id": .string(asset), "name": "Front desk PC", "agent": .string("agent-\(asset)")])
            body = .object(body.objectValue!.merging(["asset": .string(asset)]) { $1 })
        }
        let created = api("POST", "/v1/tenants/acme/tickets", body)
        XCTAssertEqual(created.status, 201, "\(created.json)")
        return created.json["id"]?.stringValue ?? ""
    }

    // MARK: Technicians

    func token(_ user: String, tenant: String = "acme") -> String {
        JWT.sign(TechnicianClaims(subject: user, tenant: tenant, name: user, expiresAt: clock.wallMillis() / 1000 + 3600),
                 secret: Array(Self.secret.utf8))
    }

    /// A technician connection signed in (welcome seen).
    func connect(_ user: String, file: StaticString = #filePath, line: UInt = #line) -> Peer {
        let peer = newPeer()
        let outs = run(.hello(peer, token: token(user)))
        XCTAssertTrue(outs.contains { $0.kind == .welcome && $0.peer == peer }, "\(user) not welcomed: \(outs)", file: file, line: line)
        return peer
    }

    /// Sends one client frame, as the loop decodes it.
    @discardableResult
    func send(_ peer: Peer, _ frame: JSONValue, file: StaticString = #filePath, line: UInt = #line) -> [Out] {
        guard case .success(let decoded) = ClientFrame.decode(JSONWriter.encode(frame)) else {
            XCTFail("the loop would refuse \(frame)", file: file, line: line)
            return []
        }
        return run(.frame(peer, decoded))
    }

    func frame(_ peer: Peer, _ frame: JSONValue) -> EngineJob {
        guard case .success(let decoded) = ClientFrame.decode(JSONWriter.encode(frame)) else { preconditionFailure("\(frame)") }
        return .frame(peer, decoded)
    }

    static func note(_ id: String, _ ticket: String, _ body: String, seen: Int? = nil, force: Bool = false) -> JSONValue {
        var args: [String: JSONValue] = ["body": .string(body)]
        if force { args["force"] = true }
        var v: [String: JSONValue] = ["type": "command", "id": .string(id), "ticket": .string(ticket), "op": "note", "args": .object(args)]
        if let seen { v["seen"] = .int(seen) }
        return .object(v)
    }

    static func command(_ id: String, _ ticket: String, _ op: String, _ args: [String: JSONValue] = [:]) -> JSONValue {
        ["type": "command", "id": .string(id), "ticket": .string(ticket), "op": .string(op), "args": .object(args)]
    }

    static func subscribe(_ ticket: String, id: String = "s1") -> JSONValue {
        ["type": "subscribe", "id": .string(id), "ticket": .string(ticket)]
    }

    /// The one answer to `peer` carrying `id` (a result, an error, a snapshot).
    func answer(_ outs: [Out], to peer: Peer, id: String, file: StaticString = #filePath, line: UInt = #line) -> JSONValue {
        let found = outs.filter { $0.peer == peer && [.send, .result, .subscribe].contains($0.kind) }.flatMap(\.frames)
            .filter { $0["id"]?.stringValue == id }
        XCTAssertEqual(found.count, 1, "answers to \(id): \(outs)", file: file, line: line)
        return found.first ?? .null
    }

    // MARK: Agents

    func connectAgent(_ commonName: String, file: StaticString = #filePath, line: UInt = #line) -> Peer {
        let peer = newPeer()
        let outs = run(.agentConnected(peer, commonName: commonName))
        XCTAssertTrue(outs.contains { $0.kind == .agent && $0.peer == peer }, "\(commonName) not welcomed: \(outs)", file: file, line: line)
        return peer
    }

    // MARK: What is durable

    /// Everything the store holds for a ticket, as comparable text.
    func durable(_ ticket: String) throws -> String {
        let s = memory
        let t = try s.ticket(ticket)
        let messages = try s.messages(ticket: ticket, after: 0).map { "\($0.seq) \($0.channel.rawValue) \($0.body)" }
        let log = try s.deltas(ticket: ticket, after: 0, limit: 10_000).map { "\($0.seq) \($0.kind)" }
        let session = try s.latestSession(ticket: ticket).map { "\($0.id) \($0.status.rawValue)" }
        let time = try s.timeState(ticket: ticket, recentEntries: 100)
        return "\(String(describing: t))\n\(messages)\n\(log)\n\(String(describing: session))\n\(time.entries) \(String(describing: time.active))"
    }
}

/// A bus that keeps what it is handed, in order.
final class RecordingBus: DeltaBus {
    private let delivered = Mutex<[Out]>([])

    func deliver(_ outputs: [EngineOutput]) {
        let outs = outputs.map(Out.init)
        delivered.withLock { $0 += outs }
    }

    /// What was delivered since the last `take`.
    func take() -> [Out] { delivered.withLock { d in defer { d.removeAll() }; return d } }
}

/// One output as the tests read it: which kind, to whom, and its frames
/// parsed. The one place that knows the engine's output type.
struct Out: CustomStringConvertible, Sendable {
    enum Kind: Sendable { case publish, send, result, subscribe, unsubscribe, close, welcome, http, agent, afterDurable, clusterPresence }
    var kind: Kind
    var peer: Peer?
    var ticket: String?
    var durable = false
    var frames: [JSONValue] = []
    var closeCode: UInt16?
    var http: APIResponse?

    init(_ o: EngineOutput) {
        func parse(_ b: [UInt8]) -> JSONValue { (try? JSONParser.parse(b)) ?? .string(String(decoding: b, as: UTF8.self)) }
        switch o {
        case .publish(let ticket, let seq, let delta):
            kind = .publish; self.ticket = ticket; durable = seq != nil; frames = [parse(delta)]
        case .publishTopic(let topic, let delta):
            kind = .publish; ticket = topic; durable = true; frames = [parse(delta)]
        case .send(let p, let b): kind = .send; peer = p; frames = [parse(b)]
        case .result(let p, _, let b): kind = .result; peer = p; frames = [parse(b)]
        case .subscribe(let p, _, let ticket, let fs): kind = .subscribe; peer = p; self.ticket = ticket; frames = fs.map(parse)
        case .unsubscribe(let p, let ticket): kind = .unsubscribe; peer = p; self.ticket = ticket
        case .close(let p, let code, _): kind = .close; peer = p; closeCode = code
        case .welcome(let p, let b, _): kind = .welcome; peer = p; frames = [parse(b)]
        case .http(_, let r): kind = .http; http = r
        case .agentSend(let p, let b): kind = .agent; peer = p; frames = [parse(b)]
        case .clusterPresence(let ticket, let viewers):
            kind = .clusterPresence; self.ticket = ticket; frames = [parse(viewers)]
        case .afterDurable(let run, _):
            // The in-memory store's commit is durable at once: run it as the bus would.
            kind = .afterDurable
            run()
        }
    }

    /// The delta a `publish` carries.
    var delta: JSONValue? { kind == .publish ? frames.first : nil }

    var description: String {
        "\(kind) \(peer.map { "\($0)" } ?? ticket ?? "") \(frames.map { String(decoding: JSONWriter.encode($0), as: UTF8.self) })\(http.map { " \($0.status)" } ?? "")"
    }
}

/// The engine's mailer, never called by these tests' commands.
struct SilentMailer: Mailer {
    func send(_ job: MailJob, completion: @escaping @Sendable (MailOutcome) -> Void) {}
}

extension Array where Element == Out {
    /// The deltas published, in order.
    var deltas: [JSONValue] { compactMap(\.delta) }
    func deltas(kind: String) -> [JSONValue] { deltas.filter { $0["kind"]?.stringValue == kind } }
}
