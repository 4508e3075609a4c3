import Foundation
import XCTest
import PeekCore
import PeekTestSupport

/// Small conveniences the Live*Tests share: the contract's frames written
/// once, and the back end's view of a ticket to check "nothing changed".
extension TestWebSocketClient {
    /// Sends `subscribe` and answers the snapshot (no `since`).
    @discardableResult
    func subscribe(_ ticket: String, id: String = "sub-\(UUID().uuidString.prefix(8))") throws -> JSONValue {
        try send(["type": "subscribe", "id": .string(id), "ticket": .string(ticket)])
        return try next { $0["id"]?.stringValue == id && ($0["type"]?.stringValue == "snapshot" || $0["type"]?.stringValue == "error") }
    }

    /// Sends `subscribe` with `since` and reads its answer: the deltas that
    /// come first, then `subscribed` (or the `snapshot` that replaces them all).
    func resume(_ ticket: String, since: Int, id: String = "r1") throws -> (deltas: [JSONValue], end: JSONValue) {
        try send(["type": "subscribe", "id": .string(id), "ticket": .string(ticket), "since": .int(since)])
        var deltas: [JSONValue] = []
        while true {
            let m = try next()
            switch m["type"]?.stringValue {
            case "subscribed", "snapshot", "error": return (deltas, m)
            case "delta" where m["seq"] != nil: deltas.append(m)
            default: continue   // presence and other ephemeral frames
            }
        }
    }

    /// Sends a `command` frame; `args` defaults to `{}`.
    func command(_ id: String, _ ticket: String, _ op: String, _ args: JSONValue = [:],
                 seen: Int? = nil, ifVersion: Int? = nil) throws {
        var frame: [String: JSONValue] = ["type": "command", "id": .string(id), "ticket": .string(ticket), "op": .string(op), "args": args]
        if let seen { frame["seen"] = .int(seen) }
        if let ifVersion { frame["if_version"] = .int(ifVersion) }
        try send(.object(frame))
    }

    /// The `result` or `error` that answers the frame with `id`.
    @discardableResult
    func answer(_ id: String, timeout: Double = 10) throws -> JSONValue {
        try next(timeout: timeout) {
            $0["id"]?.stringValue == id && ($0["type"]?.stringValue == "result" || $0["type"]?.stringValue == "error")
        }
    }

    /// Sends a command and waits for its answer.
    @discardableResult
    func run(_ id: String, _ ticket: String, _ op: String, _ args: JSONValue = [:],
             seen: Int? = nil, ifVersion: Int? = nil) throws -> JSONValue {
        try command(id, ticket, op, args, seen: seen, ifVersion: ifVersion)
        return try answer(id)
    }

    /// The next durable or ephemeral delta of `kind` (any ticket unless given).
    @discardableResult
    func delta(_ kind: String, ticket: String? = nil, timeout: Double = 10) throws -> JSONValue {
        try next(timeout: timeout) {
            $0["type"]?.stringValue == "delta" && $0["kind"]?.stringValue == kind
                && (ticket == nil || $0["ticket"]?.stringValue == ticket)
        }
    }

    /// Takes every queued durable delta of `ticket` whose seq is at most
    /// `through`, waiting for the missing ones; answers them in arrival order.
    func durableDeltas(_ ticket: String, through: Int, timeout: Double = 10) throws -> [JSONValue] {
        var got: [JSONValue] = []
        while got.last?["seq"]?.intValue ?? Int.min < through {
            got.append(try next(timeout: timeout) {
                $0["type"]?.stringValue == "delta" && $0["ticket"]?.stringValue == ticket && $0["seq"]?.intValue != nil
            })
        }
        return got
    }

    /// Takes this ticket's `presence.updated` frames in arrival order until
    /// one lists exactly `ids`; the lists before it are dropped, so an old
    /// frame can never satisfy a later expectation.
    @discardableResult
    func presence(_ ticket: String, is ids: [String], timeout: Double = 10) throws -> JSONValue {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let m = try next(timeout: max(0.01, deadline.timeIntervalSinceNow)) {
                $0["type"]?.stringValue == "delta" && $0["kind"]?.stringValue == "presence.updated" && $0["ticket"]?.stringValue == ticket
            }
            if viewerIDs(m["data"]) == ids { return m }
        }
    }
}

/// The ids of a `viewers` list (from a snapshot's state or presence data).
func viewerIDs(_ container: JSONValue?) -> [String] {
    (container?["viewers"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
}

extension TestServer {
    /// `GET /v1/tickets/{id}` with the service token: {"ticket", "seq", "state"}.
    func ticketState(_ id: String, file: StaticString = #filePath, line: UInt = #line) throws -> JSONValue {
        let r = try request("GET", "/v1/tickets/\(id)")
        XCTAssertEqual(r.status, 200, r.text, file: file, line: line)
        return try XCTUnwrap(r.json, "GET /v1/tickets/\(id) answered no JSON: \(r.text)", file: file, line: line)
    }

    /// What a refused command must leave untouched: the seq and every durable
    /// part of the state (not `viewers` or `sla`, which move on their own).
    func durableState(_ id: String, file: StaticString = #filePath, line: UInt = #line) throws -> JSONValue {
        let whole = try ticketState(id, file: file, line: line)
        let s = whole["state"]
        return ["seq": whole["seq"] ?? .null, "ticket": s?["ticket"] ?? .null, "messages": s?["messages"] ?? .null,
                "time": s?["time"] ?? .null, "session": s?["session"] ?? .null, "summary": s?["summary"] ?? .null]
    }

    /// Polls `/metrics` until the loops report exactly `count` open
    /// connections (sampled once a second by each loop's sweep).
    func waitForOpenConnections(_ count: Int, timeout: Double = 10) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var last = ""
        while Date() < deadline {
            let r = try request("GET", "/metrics", service: false)
            last = r.text.split(separator: "\n").first { $0.hasPrefix("peekd_connections ") }.map(String.init) ?? ""
            if last == "peekd_connections \(count)" { return }
            usleep(100_000)
        }
        throw TestWebSocketClient.Failure("open connections never reached \(count); last \(last)")
    }

    /// Posts a customer's email threaded onto ticket number `number` by its
    /// subject tag, the way the mail gateway does.
    @discardableResult
    func inboundEmail(ticketNumber number: Int, body: String, messageID: String = "\(UUID().uuidString)@client.example") throws -> Response {
        // A minimal RFC 5322 message: the [#<number>] tag in the subject is
        // what threads it; CRLF line ends as on the wire.
        let raw = [
            "From: Casey Customer <customer@example.com>",
            "To: Support <support@acme.example>",
            "Subject: Re: Ticket [#\(number)]",
            "Date: Sun, 29 Nov 2026 10:02:11 +0000",
            "Message-ID: <\(messageID)>",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "",
            body,
            "",
        ].joined(separator: "\r\n")
        return try request("POST", "/v1/tenants/acme/inbound-email", body: Array(raw.utf8), contentType: "message/rfc822")
    }
}

/// The number of a ticket id `T-<number>`.
func ticketNumber(_ id: String) -> Int { Int(id.dropFirst(2)) ?? -1 }

/// The message ids of a state's `messages` list, oldest first.
func messageIDs(_ state: JSONValue?) -> [String] {
    (state?["messages"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
}

/// Hands a value to another thread when the test itself guarantees that
/// only one thread uses it at a time (each client belongs to one thread).
final class Unshared<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}

