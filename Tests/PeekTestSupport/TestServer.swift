import Foundation
import PeekCore
import PeekServer
import PeekTLS

/// A real `peekd` in the test process: its own temp data directory, port 0
/// for every listener, and a back-end API client. One per test.
public final class TestServer {
    public let server: Server
    public let config: ServerConfig
    public let directory: String
    public var port: UInt16 { server.plainPort }
    public var tlsPort: UInt16? { server.tlsPort }
    public var agentPort: UInt16? { server.agentPort }

    /// `configure` may change anything; ports are forced to 0 unless a
    /// listener is switched off by setting it to nil.
    public init(directory: String? = nil, tls: Bool = false, agents: Bool = false, configure: (inout ServerConfig) -> Void = { _ in }) throws {
        let dir = directory ?? NSTemporaryDirectory() + "peekd-test-" + UUID().uuidString
        self.directory = dir
        var c = ServerConfig()
        c.port = 0
        c.dataDirectory = dir
        c.jwtSecret = "test-secret-test-secret-test-secret"
        c.serviceToken = "test-service-token"
        c.threads = 2
        c.heartbeatSeconds = 30
        c.clientDirectory = TestServer.repositoryRoot + "/client"
        if tls { c.tlsPort = 0 }
        if agents { c.agentPort = 0 }
        configure(&c)
        config = c
        server = Server(config: c)
        try server.start()
    }

    /// The package root, found from this file's path (tests run from anywhere).
    public static let repositoryRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// Tests close their clients first or not at all; a short drain keeps
    /// a test from waiting on sockets nobody reads.
    public func stop() { server.stop(drainSeconds: 0.5) }

    deinit { server.stop(drainSeconds: 0.5) }

    /// A technician token signed with this server's secret.
    public func token(tenant: String, user: String, name: String? = nil, expiresIn: Int64 = 3600) -> String {
        JWT.sign(TechnicianClaims(subject: user, tenant: tenant, name: name ?? user,
                                  expiresAt: Int64(Date().timeIntervalSince1970) + expiresIn),
                 secret: Array(config.jwtSecret.utf8))
    }

    // MARK: HTTP

    public struct Response {
        public let status: Int
        public let headers: [String: String]
        public let body: [UInt8]
        public var json: JSONValue? { try? JSONParser.parse(body) }
        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// One HTTP/1.1 request over a fresh connection (Connection: close).
    public func request(_ method: String, _ path: String, body: [UInt8]? = nil, contentType: String = "application/json",
                        token: String? = nil, service: Bool = true, headers: [(String, String)] = []) throws -> Response {
        try Self.request(port: port, method, path, body: body, contentType: contentType,
                         bearer: token ?? (service ? config.serviceToken : nil), headers: headers)
    }

    /// The same request to any server on loopback (a child process, say).
    public static func request(port: UInt16, _ method: String, _ path: String, body: [UInt8]? = nil, contentType: String = "application/json",
                               bearer: String?, headers: [(String, String)] = []) throws -> Response {
        let socket = try TestSocket.connect(port: port)
        defer { socket.close() }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        if let bearer { head += "Authorization: Bearer \(bearer)\r\n" }
        for (n, v) in headers { head += "\(n): \(v)\r\n" }
        if let body { head += "Content-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n" }
        head += "\r\n"
        try socket.write(Array(head.utf8) + (body ?? []))
        var raw: [UInt8] = []
        while true {
            let chunk = try socket.read(timeout: 10)
            if chunk.isEmpty { break }
            raw += chunk
        }
        return try TestServer.parseResponse(raw)
    }

    public func api(_ method: String, _ path: String, _ json: JSONValue? = nil) throws -> Response {
        try request(method, path, body: json.map { JSONWriter.encode($0) })
    }

    public static func parseResponse(_ raw: [UInt8]) throws -> Response {
        guard let end = TestWebSocketClient.headerEnd(raw) else { throw TestWebSocketClient.Failure("no response head in \(raw.count) bytes") }
        let lines = String(decoding: raw[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let parts = lines[0].split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { throw TestWebSocketClient.Failure("bad status line \(lines[0])") }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() where line.contains(":") {
            let i = line.firstIndex(of: ":")!
            headers[line[..<i].lowercased()] = line[line.index(after: i)...].trimmingCharacters(in: .whitespaces)
        }
        return Response(status: status, headers: headers, body: Array(raw[end...]))
    }

    // MARK: Fixtures

    /// A tenant with technicians `tech-1`...`tech-N` and `tickets` tickets;
    /// answers the ticket ids.
    @discardableResult
    public func seed(tenant: String = "acme", technicians: Int = 2, tickets: Int = 1, contactEmail: String? = "customer@example.com",
                     asset: String? = nil) throws -> [String] {
        _ = try api("POST", "/v1/tenants", ["id": .string(tenant), "name": .string(tenant.capitalized)])
        let tenantPath = Self.pathSegment(tenant)
        for i in 1...max(1, technicians) {
            _ = try api("POST", "/v1/tenants/\(tenantPath)/technicians",
                        ["id": .string("tech-\(i)"), "name": .string("Tech \(i)"), "email": .string("tech\(i)@\(tenant).example")])
        }
        var ids: [String] = []
        for i in 0..<tickets {
            var body: [String: JSONValue] = ["subject": .string("Ticket \(i)"), "client": "Client Co", "priority": "normal",
                                             "contact": .object(["name": "Casey Customer", "email": contactEmail.map { .string($0) } ?? .null])]
            if let asset { body["asset"] = .string(asset) }
            let r = try api("POST", "/v1/tenants/\(tenantPath)/tickets", .object(body))
            guard r.status == 201, let id = r.json?["id"]?.stringValue else { throw TestWebSocketClient.Failure("ticket create failed: \(r.status) \(r.text)") }
            ids.append(id)
        }
        return ids
    }

    /// An id as one URL path segment (a tenant id may hold a `/`).
    public static func pathSegment(_ id: String) -> String {
        id.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? id
    }

    /// A signed-in technician socket (hello answered by welcome).
    public func technician(_ user: String = "tech-1", tenant: String = "acme") throws -> TestWebSocketClient {
        let client = try TestWebSocketClient(port: port)
        try client.send(["type": "hello", "token": .string(token(tenant: tenant, user: user))])
        try client.next(type: "welcome")
        return client
    }
}
