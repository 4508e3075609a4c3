import PeekCore

/// Back-end API calls the mail tests share: the tenant's outbound account,
/// tickets with chosen contacts, and what the server has stored.
extension TestServer {
    /// PUT /v1/tenants/{tenant}/email-account; answers the response (200 on success).
    @discardableResult
    public func putEmailAccount(tenant: String = "acme", host: String = "127.0.0.1", port: UInt16, security: String,
                                username: String? = nil, password: String? = nil, from: String = "support@acme.example") throws -> Response {
        var body: [String: JSONValue] = ["host": .string(host), "port": .int(Int(port)), "security": .string(security),
                                         "from": .string(from)]
        if let username { body["username"] = .string(username) }
        if let password { body["password"] = .string(password) }
        return try api("PUT", "/v1/tenants/\(tenant)/email-account", .object(body))
    }

    /// A ticket with the given subject and contact; answers its id and number.
    public func createTicket(tenant: String = "acme", subject: String, contactName: String = "Casey Customer",
                             contactEmail: String? = "customer@example.com") throws -> (id: String, number: Int) {
        let r = try api("POST", "/v1/tenants/\(tenant)/tickets",
                        ["subject": .string(subject), "client": "Client Co", "priority": "normal",
                         "contact": .object(["name": .string(contactName), "email": contactEmail.map { .string($0) } ?? .null])])
        guard r.status == 201, let id = r.json?["id"]?.stringValue, let number = r.json?["number"]?.intValue else {
            throw TestWebSocketClient.Failure("ticket create failed: \(r.status) \(r.text)")
        }
        return (id, number)
    }

    /// GET /v1/tickets/{id}: the ticket's seq and the messages of its state.
    public func storedTicket(_ id: String) throws -> (seq: Int, messages: [JSONValue], state: JSONValue) {
        let r = try api("GET", "/v1/tickets/\(id)")
        guard r.status == 200, let json = r.json, let seq = json["seq"]?.intValue, let state = json["state"],
              let messages = state["messages"]?.arrayValue else {
            throw TestWebSocketClient.Failure("GET /v1/tickets/\(id) failed: \(r.status) \(r.text)")
        }
        return (seq, messages, state)
    }

    /// GET /v1/tickets/{id}/sends: the attempts, oldest first.
    public func sendAttempts(_ id: String) throws -> [JSONValue] {
        let r = try api("GET", "/v1/tickets/\(id)/sends")
        guard r.status == 200, let attempts = r.json?["attempts"]?.arrayValue else {
            throw TestWebSocketClient.Failure("GET /v1/tickets/\(id)/sends failed: \(r.status) \(r.text)")
        }
        return attempts
    }
}
