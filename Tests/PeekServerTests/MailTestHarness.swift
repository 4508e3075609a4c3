import Foundation
import XCTest
import PeekCore
import PeekServer
import PeekTestSupport

/// One mail test's world: a test SMTP server (optional), a peekd whose
/// outbound mail trusts the test CA, a ticket, and two technicians of the
/// tenant watching it: `a` (tech-1) sends, `b` (tech-2) only views.
final class MailHarness {
    let pki: CertFactory
    let smtp: TestSMTPServer?
    let server: TestServer
    let ticket: String
    let number: Int
    let a: TestWebSocketClient
    let b: TestWebSocketClient

    static let password = "s3cret-Pa55word!"
    private var probes = 0
    static let from = "support@acme.example"

    /// `smtp` nil: no SMTP server at all. `account`: the security of the
    /// tenant's account pointed at the server, or nil for no account.
    init(smtp options: TestSMTPServer.Options? = TestSMTPServer.Options(), account security: String? = "none",
         username: String? = nil, password: String? = nil, port: UInt16? = nil, smtpTimeoutSeconds: Int = 5,
         subject: String = "Printer jams", contactName: String = "Casey Customer",
         contactEmail: String? = "customer@example.com", slaPolicy: Bool = false,
         configure: (inout ServerConfig) -> Void = { _ in }) throws {
        let pki = try CertFactory()
        self.pki = pki
        smtp = try options.map { try TestSMTPServer(options: $0, pki: pki) }
        let ca = pki.caFile
        server = try TestServer { c in
            c.smtpCA = ca
            c.smtpTimeoutSeconds = smtpTimeoutSeconds
            configure(&c)
        }
        try server.seed(technicians: 2, tickets: 0)
        if slaPolicy {
            let r = try server.api("PUT", "/v1/tenants/acme/sla-policy", ["normal": ["response": 3600, "resolution": 86400]])
            guard r.status == 200 else { throw TestWebSocketClient.Failure("PUT sla-policy: \(r.status) \(r.text)") }
        }
        (ticket, number) = try server.createTicket(subject: subject, contactName: contactName, contactEmail: contactEmail)
        if let security {
            let r = try server.putEmailAccount(port: port ?? smtp?.port ?? 25, security: security, username: username,
                                               password: password, from: Self.from)
            guard r.status == 200 else { throw TestWebSocketClient.Failure("PUT email-account: \(r.status) \(r.text)") }
        }
        a = try server.technician("tech-1")
        b = try server.technician("tech-2")
        for (client, id) in [(a, "sub-a"), (b, "sub-b")] {
            try client.send(["type": "subscribe", "id": .string(id), "ticket": .string(ticket)])
            try client.next(type: "snapshot")
        }
    }

    func stop() {
        a.close()
        b.close()
        server.stop()
        smtp?.stop()
    }

    // MARK: Commands

    func sendReply(_ client: TestWebSocketClient? = nil, id: String, body: String, attachments: [String] = []) throws {
        var args: [String: JSONValue] = ["body": .string(body)]
        if !attachments.isEmpty { args["attachments"] = .array(attachments.map { .string($0) }) }
        try (client ?? a).send(["type": "command", "id": .string(id), "ticket": .string(ticket), "op": "reply", "args": .object(args)])
    }

    /// The `result` or `error` that answers command `id`.
    func answer(_ client: TestWebSocketClient? = nil, id: String, timeout: Double = 15) throws -> JSONValue {
        try (client ?? a).next(timeout: timeout) { m in
            let type = m["type"]?.stringValue
            return (type == "result" || type == "error") && m["id"]?.stringValue == id
        }
    }

    /// Returns once the engine has handled every frame `client` sent before:
    /// frames of one connection are handled in order, and a command on a
    /// ticket that does not exist is answered without changing anything.
    func barrier(_ client: TestWebSocketClient, _ id: String) throws {
        try client.send(["type": "command", "id": .string(id), "ticket": "T-999999", "op": "note", "args": ["body": "x"]])
        let r = try answer(client, id: id)
        guard r["code"]?.stringValue == "not_found" else { throw TestWebSocketClient.Failure("barrier answered \(r)") }
    }

    /// The next delta with a seq (presence and other ephemeral deltas are skipped).
    func nextDurable(_ client: TestWebSocketClient, timeout: Double = 10) throws -> JSONValue {
        try client.next(timeout: timeout) { $0["type"]?.stringValue == "delta" && $0["seq"]?.intValue != nil }
    }

    /// Proves a failed command left nothing behind: the stored seq and
    /// message count are what they were, and the next durable delta `b`
    /// sees is a note posted now, numbered right after `seq`, so no delta of
    /// the failed command can have been fanned out before it.
    func assertNothingStored(since seq: Int, messages: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let stored = try server.storedTicket(ticket)
        XCTAssertEqual(stored.seq, seq, "the ticket's seq moved", file: file, line: line)
        XCTAssertEqual(stored.messages.count, messages, "a message was stored", file: file, line: line)
        probes += 1
        let id = "probe-note-\(probes)"
        try a.send(["type": "command", "id": .string(id), "ticket": .string(ticket), "op": "note", "args": ["body": "probe"]])
        let result = try answer(id: id)
        XCTAssertEqual(result["type"]?.stringValue, "result", file: file, line: line)
        let delta = try nextDurable(b)
        XCTAssertEqual(delta["seq"]?.intValue, seq + 1, "b saw a durable delta before the probe: \(delta)", file: file, line: line)
        XCTAssertEqual(delta["data"]?["body"]?.stringValue, "probe", file: file, line: line)
    }
}

/// A received message split into unfolded header fields and the body.
struct ParsedMail {
    let fields: [(name: String, value: String)]
    let body: [UInt8]

    init(_ data: [UInt8]) throws {
        guard let end = ParsedMail.find([13, 10, 13, 10], in: data) else { throw TestWebSocketClient.Failure("no header/body separator") }
        // Unfold (RFC 5322 §2.2.3): CRLF followed by whitespace continues the field.
        let head = String(decoding: data[..<end], as: UTF8.self)
        var fields: [(String, String)] = []
        for line in head.components(separatedBy: "\r\n") {
            if let first = line.first, first == " " || first == "\t", !fields.isEmpty {
                fields[fields.count - 1].1 += line
            } else if let colon = line.firstIndex(of: ":") {
                fields.append((String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)))
            }
        }
        self.fields = fields
        body = Array(data[(end + 4)...])
    }

    func header(_ name: String) -> String? { fields.first { $0.name.lowercased() == name.lowercased() }?.value }
    func count(_ name: String) -> Int { fields.filter { $0.name.lowercased() == name.lowercased() }.count }

    static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int = 0) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        var i = start
        while i <= haystack.count - needle.count {
            if haystack[i] == needle[0] && Array(haystack[i..<(i + needle.count)]) == needle { return i }
            i += 1
        }
        return nil
    }

    /// Quoted-printable (RFC 2045 §6.7), written here rather than borrowed
    /// from PeekMail so the test does not grade the product with itself.
    static func decodeQuotedPrintable(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        func hex(_ b: UInt8) -> UInt8? {
            switch b {
            case 48...57: b - 48
            case 65...70: b - 55
            default: nil
            }
        }
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "=") {
                if i + 2 < bytes.count, bytes[i + 1] == 13, bytes[i + 2] == 10 { i += 3; continue }  // soft break
                if i + 2 < bytes.count, let h = hex(bytes[i + 1]), let l = hex(bytes[i + 2]) { out.append(h << 4 | l); i += 3; continue }
            }
            out.append(bytes[i])
            i += 1
        }
        return out
    }

    /// RFC 2047 `=?UTF-8?B?...?=` words (what the builder writes), whitespace
    /// between adjacent words dropped; anything else stays as written.
    static func decodeEncodedWords(_ text: String) -> String {
        var result = ""
        var pending: [UInt8] = []
        var between = ""
        var rest = Substring(text)
        while !rest.isEmpty {
            if rest.hasPrefix("=?UTF-8?B?") || rest.hasPrefix("=?utf-8?b?"), let close = rest.dropFirst(10).range(of: "?=") {
                let payload = rest[rest.index(rest.startIndex, offsetBy: 10)..<close.lowerBound]
                pending += Data(base64Encoded: String(payload)).map { Array($0) } ?? []
                between = ""
                rest = rest[close.upperBound...]
                continue
            }
            let c = rest.removeFirst()
            if !pending.isEmpty && (c == " " || c == "\t") { between.append(c); continue }
            if !pending.isEmpty { result += String(decoding: pending, as: UTF8.self); pending = [] }
            result += between
            between = ""
            result.append(c)
        }
        result += String(decoding: pending, as: UTF8.self) + between
        return result
    }
}
