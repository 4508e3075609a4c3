import Foundation
import XCTest
import PeekCore
import PeekTestSupport

/// `reply` end to end: a technician's command over the WebSocket becomes a
/// real SMTP conversation with a test mail server, and only the server's
/// acceptance makes it a stored, fanned-out message.
final class MailReplyTests: XCTestCase {
    func testReply_plainServer_resultOnlyAfterAcceptanceWithExactMessage() throws {
        let h = try MailHarness(smtp: .init(holdMessageReply: true))
        defer { h.stop() }
        let smtp = try XCTUnwrap(h.smtp)
        let before = try h.server.storedTicket(h.ticket)
        // A line that is only "." would end DATA early without dot-stuffing;
        // ".hidden" would lose its dot.
        let body = "Hello Casey,\n\nPlease restart the printer.\n.\n.hidden line\nThanks"
        try h.sendReply(id: "r1", body: body)

        let mail = try smtp.waitForEnvelopes(1)[0]
        // The mail server has the message but has not answered: no answer, no delta.
        let early = h.a.drain(for: 0.3) + h.b.drain(for: 0.1)
        XCTAssertFalse(early.contains { $0["id"]?.stringValue == "r1" }, "answered before the mail server accepted: \(early)")
        XCTAssertFalse(early.contains { $0["kind"]?.stringValue == "message.created" }, "delta before acceptance: \(early)")
        // Logged as being sent before the mail server heard of it (§8.2, "Outcome unknown").
        XCTAssertEqual(try h.server.sendAttempts(h.ticket).map { $0["outcome"]?.stringValue }, ["sending"])
        smtp.releaseMessageReplies()

        let result = try h.answer(id: "r1")
        XCTAssertEqual(result["type"]?.stringValue, "result", "\(result)")
        XCTAssertEqual(result["ok"]?.boolValue, true)
        // The reply and its first_response_at stamp: two deltas, answered with the last seq.
        XCTAssertEqual(result["seq"]?.intValue, before.seq + 2)

        // The envelope and the exact bytes.
        XCTAssertEqual(mail.mailFrom, MailHarness.from)
        XCTAssertEqual(mail.recipients, ["customer@example.com"])
        XCTAssertNil(mail.authenticatedUser)
        XCTAssertFalse(mail.overTLS)
        XCTAssertTrue(mail.data.allSatisfy { $0 < 0x80 }, "the message must be 7-bit")
        let parsed = try ParsedMail(mail.data)
        XCTAssertEqual(parsed.header("From"), "Tech 1 <support@acme.example>")
        XCTAssertEqual(parsed.header("To"), "Casey Customer <customer@example.com>")
        XCTAssertEqual(parsed.header("Subject"), "Re: Printer jams [#\(h.number)]")
        XCTAssertEqual(parsed.header("MIME-Version"), "1.0")
        XCTAssertEqual(parsed.header("Content-Type"), "text/plain; charset=utf-8")
        XCTAssertEqual(parsed.header("Content-Transfer-Encoding"), "quoted-printable")
        XCTAssertNil(parsed.header("In-Reply-To"), "the first mail of a ticket answers nothing we sent")
        let messageID = try XCTUnwrap(parsed.header("Message-ID"))
        XCTAssertNotNil(messageID.range(of: #"^<T-\#(h.number)\.[0-9a-f]{16}@acme\.example>$"#, options: .regularExpression), messageID)
        for name in ["From", "To", "Subject", "Date", "Message-ID", "MIME-Version"] { XCTAssertEqual(parsed.count(name), 1, name) }
        let date = try XCTUnwrap(parsed.header("Date"))
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        let sent = try XCTUnwrap(formatter.date(from: date), "Date \(date) is not RFC 5322")
        XCTAssertLessThan(abs(sent.timeIntervalSinceNow), 120)
        let decoded = String(decoding: ParsedMail.decodeQuotedPrintable(parsed.body), as: UTF8.self)
        XCTAssertEqual(decoded, body.replacingOccurrences(of: "\n", with: "\r\n") + "\r\n")
        // Dot-stuffing on the wire: both lines went out with a doubled dot.
        let raw = String(decoding: mail.rawData, as: UTF8.self)
        XCTAssertTrue(raw.contains("\r\n..\r\n"), raw)
        XCTAssertTrue(raw.contains("\r\n..hidden line\r\n"), raw)

        // The other viewer sees the reply, then the first-response stamp.
        let created = try h.nextDurable(h.b)
        XCTAssertEqual(created["kind"]?.stringValue, "message.created")
        XCTAssertEqual(created["seq"]?.intValue, before.seq + 1)
        XCTAssertEqual(created["data"]?["channel"]?.stringValue, "technician")
        XCTAssertEqual(created["data"]?["via"]?.stringValue, "email")
        XCTAssertEqual(created["data"]?["body"]?.stringValue, body)
        XCTAssertEqual(created["data"]?["author"]?["id"]?.stringValue, "tech-1")
        XCTAssertEqual(created["data"]?["author"]?["name"]?.stringValue, "Tech 1")
        XCTAssertEqual(created["data"]?["attachments"]?.arrayValue?.count, 0)
        let stamped = try h.nextDurable(h.b)
        XCTAssertEqual(stamped["kind"]?.stringValue, "ticket.updated")
        XCTAssertEqual(stamped["seq"]?.intValue, before.seq + 2)
        let firstResponse = try XCTUnwrap(stamped["data"]?["first_response_at"]?.stringValue)
        XCTAssertNotNil(firstResponse.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"#, options: .regularExpression), firstResponse)

        let attempts = try h.server.sendAttempts(h.ticket)
        XCTAssertEqual(attempts.count, 1)
        XCTAssertEqual(attempts.first?["outcome"]?.stringValue, "sent")
        XCTAssertEqual(attempts.first?["reply"]?.stringValue, "250 2.0.0 Ok: queued as TEST")
        XCTAssertEqual(attempts.first?["to"]?.stringValue, "customer@example.com")
        XCTAssertEqual(attempts.first?["technician"]?["id"]?.stringValue, "tech-1")
        XCTAssertEqual(attempts.first?["technician"]?["name"]?.stringValue, "Tech 1")
        XCTAssertNotNil(attempts.first?["at"]?.stringValue)
        let stored = try h.server.storedTicket(h.ticket)
        XCTAssertEqual(stored.seq, before.seq + 2)
        XCTAssertEqual(stored.messages.count, before.messages.count + 1)
        XCTAssertEqual(stored.state["ticket"]?["first_response_at"]?.stringValue, firstResponse)
    }

    func testReply_secondReply_noSecondFirstResponseStampAndThreaded() throws {
        let h = try MailHarness()
        defer { h.stop() }
        let smtp = try XCTUnwrap(h.smtp)
        let before = try h.server.storedTicket(h.ticket)
        try h.sendReply(id: "r1", body: "First answer.")
        XCTAssertEqual(try h.answer(id: "r1")["seq"]?.intValue, before.seq + 2)
        XCTAssertEqual(try h.nextDurable(h.b)["kind"]?.stringValue, "message.created")
        let stamp = try h.nextDurable(h.b)
        XCTAssertEqual(stamp["kind"]?.stringValue, "ticket.updated")
        let firstResponse = stamp["data"]?["first_response_at"]?.stringValue

        try h.sendReply(id: "r2", body: "Second answer.")
        let second = try h.answer(id: "r2")
        XCTAssertEqual(second["type"]?.stringValue, "result", "\(second)")
        XCTAssertEqual(second["seq"]?.intValue, before.seq + 3, "a second reply makes only its message.created")
        let created = try h.nextDurable(h.b)
        XCTAssertEqual(created["kind"]?.stringValue, "message.created")
        XCTAssertEqual(created["data"]?["body"]?.stringValue, "Second answer.")
        // The next durable delta b sees is the probe note: no second ticket.updated.
        try h.assertNothingStored(since: before.seq + 3, messages: before.messages.count + 2)
        XCTAssertEqual(try h.server.storedTicket(h.ticket).state["ticket"]?["first_response_at"]?.stringValue, firstResponse)

        // The second mail answers the first one.
        let mails = try smtp.waitForEnvelopes(2)
        XCTAssertEqual(mails.count, 2)
        let first = try ParsedMail(mails[0].data)
        let next = try ParsedMail(mails[1].data)
        let firstID = try XCTUnwrap(first.header("Message-ID"))
        XCTAssertEqual(next.header("In-Reply-To"), firstID)
        XCTAssertEqual(next.header("References"), firstID)
        XCTAssertNotEqual(next.header("Message-ID"), firstID)
        XCTAssertEqual(try h.server.sendAttempts(h.ticket).map { $0["outcome"]?.stringValue }, ["sent", "sent"])
    }

    func testReply_nonASCIINameSubjectAndBody_encodedWordsAndUTF8QuotedPrintable() throws {
        let subject = "Imprimante bloquée – café ☕"
        let h = try MailHarness(subject: subject, contactName: "José Müller")
        defer { h.stop() }
        let smtp = try XCTUnwrap(h.smtp)
        let created = try h.server.api("POST", "/v1/tenants/acme/technicians",
                                       ["id": "tech-9", "name": "Zoë Ångström", "email": "zoe@acme.example"])
        XCTAssertEqual(created.status, 201)
        let zoe = try h.server.technician("tech-9")
        defer { zoe.close() }
        try zoe.send(["type": "subscribe", "id": "s", "ticket": .string(h.ticket)])
        try zoe.next(type: "snapshot")
        let body = "Grüße aus Zürich — 你好!\nLa ligne suivante est très longue pour forcer des coupures douces dans le quoted-printable: ééééééééééééééééééééé."
        try h.sendReply(zoe, id: "r-utf8", body: body)
        let answer = try h.answer(zoe, id: "r-utf8")
        XCTAssertEqual(answer["type"]?.stringValue, "result", "\(answer)")

        let mail = try smtp.waitForEnvelopes(1)[0]
        XCTAssertTrue(mail.data.allSatisfy { $0 < 0x80 }, "non-ASCII must be encoded, not sent raw")
        let parsed = try ParsedMail(mail.data)
        let from = try XCTUnwrap(parsed.header("From"))
        XCTAssertTrue(from.hasPrefix("=?UTF-8?B?"), from)
        XCTAssertEqual(ParsedMail.decodeEncodedWords(from), "Zoë Ångström <support@acme.example>")
        let to = try XCTUnwrap(parsed.header("To"))
        XCTAssertEqual(ParsedMail.decodeEncodedWords(to), "José Müller <customer@example.com>")
        let rawSubject = try XCTUnwrap(parsed.header("Subject"))
        XCTAssertTrue(rawSubject.contains("=?UTF-8?B?"), rawSubject)
        XCTAssertEqual(ParsedMail.decodeEncodedWords(rawSubject), "Re: \(subject) [#\(h.number)]")
        // Every header line stays within RFC 5322's 998 and the builder's 78 columns.
        let head = String(decoding: mail.data[..<(ParsedMail.find([13, 10, 13, 10], in: mail.data) ?? 0)], as: UTF8.self)
        for line in head.components(separatedBy: "\r\n") { XCTAssertLessThanOrEqual(line.utf8.count, 78, line) }
        for line in String(decoding: parsed.body, as: UTF8.self).components(separatedBy: "\r\n") {
            XCTAssertLessThanOrEqual(line.utf8.count, 76, "quoted-printable line too long: \(line)")
        }
        let decoded = String(decoding: ParsedMail.decodeQuotedPrintable(parsed.body), as: UTF8.self)
        XCTAssertEqual(decoded, body.replacingOccurrences(of: "\n", with: "\r\n") + "\r\n")

        let delta = try h.nextDurable(h.b)
        XCTAssertEqual(delta["data"]?["body"]?.stringValue, body)
        XCTAssertEqual(delta["data"]?["author"]?["name"]?.stringValue, "Zoë Ångström")
    }

    func testReply_startTLSWithAuthPlain_credentialsAndMessageOnlyOverTLS() throws {
        let credentials = TestSMTPServer.Credentials(username: "mailer@acme.example", password: MailHarness.password)
        let h = try MailHarness(smtp: .init(security: .startTLS, credentials: credentials, authMechanisms: ["PLAIN"]),
                                account: "starttls", username: credentials.username, password: credentials.password)
        defer { h.stop() }
        let smtp = try XCTUnwrap(h.smtp)
        try h.sendReply(id: "r-tls", body: "Over STARTTLS.")
        let answer = try h.answer(id: "r-tls")
        XCTAssertEqual(answer["type"]?.stringValue, "result", "\(answer)")
        let mail = try smtp.waitForEnvelopes(1)[0]
        XCTAssertTrue(mail.overTLS)
        XCTAssertEqual(mail.authenticatedUser, credentials.username)
        let commands = smtp.commands
        let plain = commands.filter { !$0.hasPrefix("[tls] ") }
        XCTAssertEqual(plain.map { String($0.prefix(4)) }, ["EHLO", "STAR"], "only EHLO and STARTTLS before TLS: \(commands)")
        XCTAssertTrue(commands.contains { $0.hasPrefix("[tls] AUTH PLAIN ") }, "\(commands)")
        XCTAssertTrue(commands.contains { $0.hasPrefix("[tls] EHLO ") }, "EHLO again after STARTTLS: \(commands)")
        XCTAssertEqual(try ParsedMail(mail.data).header("Subject"), "Re: Printer jams [#\(h.number)]")
    }

    func testReply_implicitTLSWithAuthLogin_sent() throws {
        let credentials = TestSMTPServer.Credentials(username: "mailer", password: MailHarness.password)
        let h = try MailHarness(smtp: .init(security: .implicitTLS, credentials: credentials, authMechanisms: ["LOGIN"]),
                                account: "tls", username: credentials.username, password: credentials.password)
        defer { h.stop() }
        let smtp = try XCTUnwrap(h.smtp)
        try h.sendReply(id: "r-465", body: "Over implicit TLS.")
        let answer = try h.answer(id: "r-465")
        XCTAssertEqual(answer["type"]?.stringValue, "result", "\(answer)")
        let mail = try smtp.waitForEnvelopes(1)[0]
        XCTAssertTrue(mail.overTLS)
        XCTAssertEqual(mail.authenticatedUser, "mailer")
        XCTAssertTrue(smtp.commands.allSatisfy { $0.hasPrefix("[tls] ") }, "\(smtp.commands)")
        XCTAssertTrue(smtp.commands.contains("[tls] AUTH LOGIN"), "\(smtp.commands)")
        XCTAssertEqual(try h.server.sendAttempts(h.ticket).first?["outcome"]?.stringValue, "sent")
    }

    func testReply_sameCommandIDWhileInFlight_oneEmailAndBothGetTheSameAnswer() throws {
        let h = try MailHarness(smtp: .init(holdMessageReply: true))
        defer { h.stop() }
        let smtp = try XCTUnwrap(h.smtp)
        let before = try h.server.storedTicket(h.ticket)
        // The same technician on a second tab, resending after a "reconnect".
        let tab = try h.server.technician("tech-1")
        defer { tab.close() }
        try h.sendReply(id: "dup", body: "Only once, please.")
        try smtp.waitForEnvelopes(1)
        try h.sendReply(id: "dup", body: "Only once, please.")
        try h.sendReply(tab, id: "dup", body: "Only once, please.")
        // The duplicates reach the engine while the first send waits on the mail server.
        try h.barrier(h.a, "sync-a")
        try h.barrier(tab, "sync-tab")
        XCTAssertEqual(h.a.received.filter { $0["id"]?.stringValue == "dup" }.count, 0, "answered while the mail server holds it")
        smtp.releaseMessageReplies()

        let first = try h.answer(id: "dup")
        let second = try h.answer(id: "dup")
        let third = try h.answer(tab, id: "dup")
        for answer in [first, second, third] {
            XCTAssertEqual(answer["type"]?.stringValue, "result", "\(answer)")
            XCTAssertEqual(answer["seq"]?.intValue, before.seq + 2)
        }
        XCTAssertEqual(smtp.envelopes.count, 1)
        XCTAssertEqual(smtp.connectionCount, 1)
        XCTAssertEqual(try h.server.sendAttempts(h.ticket).count, 1)
        // The other viewer got the reply and the stamp once each.
        XCTAssertEqual(try h.nextDurable(h.b)["kind"]?.stringValue, "message.created")
        XCTAssertEqual(try h.nextDurable(h.b)["kind"]?.stringValue, "ticket.updated")
        // A resend after the fact gets the stored answer and sends nothing.
        try h.sendReply(id: "dup", body: "Only once, please.")
        XCTAssertEqual(try h.answer(id: "dup")["seq"]?.intValue, before.seq + 2)
        try h.assertNothingStored(since: before.seq + 2, messages: before.messages.count + 1)
        XCTAssertEqual(smtp.connectionCount, 1)
    }

    func testReply_repeatsOfOneInFlightPastTheCap_rateLimitedAndTheWaitingOnesAnswered() throws {
        let h = try MailHarness(smtp: .init(holdMessageReply: true))
        defer { h.stop() }
        let smtp = try XCTUnwrap(h.smtp)
        let cap = 16   // protocol.md §8.2: requests that may wait for one reply in flight
        let before = try h.server.storedTicket(h.ticket)
        try h.sendReply(id: "loop", body: "Sent by a client that resends.")
        try smtp.waitForEnvelopes(1)
        // The first request and cap - 1 repeats wait; the next two are refused at once.
        for _ in 0..<(cap + 1) { try h.sendReply(id: "loop", body: "Sent by a client that resends.") }
        try h.barrier(h.a, "sync-a")
        let early = h.a.received.filter { $0["id"]?.stringValue == "loop" }
        XCTAssertEqual(early.count, 2, "only the refusals come before the mail server answers: \(early)")
        for refused in early {
            XCTAssertEqual(refused["code"]?.stringValue, "rate_limited", "\(refused)")
            XCTAssertEqual(refused["message"]?.stringValue,
                           "This reply is still being sent and 16 requests already wait for its answer; wait for that answer instead of sending it again.")
        }
        for _ in early { _ = try h.answer(id: "loop") }   // takes the two refusals off the list

        smtp.releaseMessageReplies()
        for _ in 0..<cap {
            let answer = try h.answer(id: "loop")
            XCTAssertEqual(answer["type"]?.stringValue, "result", "\(answer)")
            XCTAssertEqual(answer["seq"]?.intValue, before.seq + 2)
        }
        XCTAssertEqual(smtp.envelopes.count, 1)
        XCTAssertEqual(try h.server.sendAttempts(h.ticket).count, 1)
        // The refusal was not remembered: a repeat now gets the stored answer.
        try h.sendReply(id: "loop", body: "Sent by a client that resends.")
        XCTAssertEqual(try h.answer(id: "loop")["seq"]?.intValue, before.seq + 2)
    }

    func testReply_moreThanTheCapInFlight_restRateLimitedWithNothingSentOrStored() throws {
        let h = try MailHarness(smtp: .init(holdMessageReply: true))
        defer { h.stop() }
        let smtp = try XCTUnwrap(h.smtp)
        let cap = h.server.config.maxRepliesInFlightPerTechnician
        XCTAssertEqual(cap, 4, "protocol.md states 4")
        let before = try h.server.storedTicket(h.ticket)

        for i in 0..<(cap + 2) { try h.sendReply(id: "r\(i)", body: "Reply \(i)") }
        // Over the cap: answered at once, while the first ones are still held.
        for i in cap..<(cap + 2) {
            let refused = try h.answer(id: "r\(i)")
            XCTAssertEqual(refused["type"]?.stringValue, "error")
            XCTAssertEqual(refused["code"]?.stringValue, "rate_limited")
            XCTAssertEqual(refused["message"]?.stringValue,
                           "You already have 4 replies being sent, the most at once; wait for one to finish, then send this one again.")
        }
        // Resending one in flight is not another reply: no refusal, it waits for the first answer.
        try h.sendReply(id: "r0", body: "Reply 0")
        // Another technician has an allowance of their own.
        try h.sendReply(h.b, id: "b0", body: "From b")
        try h.barrier(h.a, "sync-a")
        XCTAssertEqual(h.a.received.filter { $0["id"]?.stringValue == "r0" }.count, 0, "the resend was answered early")
        let held = try smtp.waitForEnvelopes(cap + 1)
        let bodies = try held.map { String(decoding: ParsedMail.decodeQuotedPrintable(try ParsedMail($0.data).body), as: UTF8.self) }
        XCTAssertEqual(Set(bodies), Set((0..<cap).map { "Reply \($0)\r\n" } + ["From b\r\n"]))
        XCTAssertEqual(try h.server.sendAttempts(h.ticket).map { $0["outcome"]?.stringValue }, Array(repeating: "sending", count: cap + 1),
                       "each reply in flight, and only those, is logged as being sent")

        smtp.releaseMessageReplies()
        for _ in 0..<2 { XCTAssertEqual(try h.answer(id: "r0")["type"]?.stringValue, "result") }
        for i in 1..<cap { XCTAssertEqual(try h.answer(id: "r\(i)")["type"]?.stringValue, "result") }
        XCTAssertEqual(try h.answer(h.b, id: "b0")["type"]?.stringValue, "result")
        // Exactly the admitted replies were sent, logged and stored; the refused ones left nothing.
        XCTAssertEqual(smtp.envelopes.count, cap + 1)
        XCTAssertEqual(try h.server.sendAttempts(h.ticket).count, cap + 1)
        let after = try h.server.storedTicket(h.ticket)
        XCTAssertEqual(after.messages.count, before.messages.count + cap + 1)
        XCTAssertFalse(after.messages.contains { ($0["body"]?.stringValue ?? "").hasPrefix("Reply \(cap)") })

        // A refusal is not remembered: the same id, sent again with a slot free, goes out.
        try h.sendReply(id: "r\(cap)", body: "Reply \(cap)")
        XCTAssertEqual(try h.answer(id: "r\(cap)")["type"]?.stringValue, "result")
        XCTAssertEqual(smtp.envelopes.count, cap + 2)
    }

    func testReply_processWideCapReached_rateLimitedForEveryTechnician() throws {
        let h = try MailHarness(smtp: .init(holdMessageReply: true), configure: { $0.maxRepliesInFlight = 2 })
        defer { h.stop() }
        let smtp = try XCTUnwrap(h.smtp)
        try h.sendReply(id: "a0", body: "first")
        try h.sendReply(id: "a1", body: "second")
        try smtp.waitForEnvelopes(2)
        try h.sendReply(id: "a2", body: "third")
        try h.sendReply(h.b, id: "b0", body: "from b")
        for (client, id) in [(h.a, "a2"), (h.b, "b0")] {
            let refused = try h.answer(client, id: id)
            XCTAssertEqual(refused["code"]?.stringValue, "rate_limited", "\(refused)")
            XCTAssertEqual(refused["message"]?.stringValue,
                           "The server is already sending 2 replies, the most it queues; wait a minute, then send this one again.")
        }
        smtp.releaseMessageReplies()
        for id in ["a0", "a1"] { XCTAssertEqual(try h.answer(id: id)["type"]?.stringValue, "result") }
        XCTAssertEqual(try h.server.sendAttempts(h.ticket).count, 2)
        // Room again once they are done.
        try h.sendReply(h.b, id: "b0", body: "from b")
        XCTAssertEqual(try h.answer(h.b, id: "b0")["type"]?.stringValue, "result")
        XCTAssertEqual(smtp.envelopes.count, 3)
    }

    func testReply_withUploadedAttachment_multipartMixedCarriesTheFile() throws {
        let h = try MailHarness()
        defer { h.stop() }
        let smtp = try XCTUnwrap(h.smtp)
        let file = Array("printer log\nE-204 paper jam\n".utf8)
        let upload = try h.server.request("POST", "/v1/tickets/\(h.ticket)/attachments?filename=x.txt", body: file, contentType: "text/plain")
        XCTAssertEqual(upload.status, 201, upload.text)
        let attachmentID = try XCTUnwrap(upload.json?["id"]?.stringValue)
        XCTAssertEqual(upload.json?["filename"]?.stringValue, "x.txt")

        try h.sendReply(id: "r-att", body: "The log is attached.", attachments: [attachmentID])
        let answer = try h.answer(id: "r-att")
        XCTAssertEqual(answer["type"]?.stringValue, "result", "\(answer)")

        let mail = try smtp.waitForEnvelopes(1)[0]
        let parsed = try ParsedMail(mail.data)
        let contentType = try XCTUnwrap(parsed.header("Content-Type"))
        XCTAssertTrue(contentType.hasPrefix("multipart/mixed;"), contentType)
        let boundary = try XCTUnwrap(contentType.range(of: #"boundary="[^"]+""#, options: .regularExpression)
            .map { String(contentType[$0].dropFirst(10).dropLast()) })
        let text = String(decoding: parsed.body, as: UTF8.self)
        let parts = text.components(separatedBy: "--\(boundary)")
        // preamble, text part, attachment part, "--" epilogue
        XCTAssertEqual(parts.count, 4, text)
        XCTAssertTrue(parts.last?.hasPrefix("--") ?? false)
        // Each part starts with the CRLF that ends its delimiter line.
        let textPart = try ParsedMail(Array(parts[1].utf8.dropFirst(2)))
        XCTAssertEqual(textPart.header("Content-Type"), "text/plain; charset=utf-8")
        XCTAssertEqual(String(decoding: ParsedMail.decodeQuotedPrintable(textPart.body), as: UTF8.self), "The log is attached.\r\n")
        let filePart = try ParsedMail(Array(parts[2].utf8.dropFirst(2)))
        XCTAssertEqual(filePart.header("Content-Type"), #"text/plain; name="x.txt""#)
        XCTAssertEqual(filePart.header("Content-Disposition"), #"attachment; filename="x.txt""#)
        XCTAssertEqual(filePart.header("Content-Transfer-Encoding"), "base64")
        let base64 = String(decoding: filePart.body, as: UTF8.self).replacingOccurrences(of: "\r\n", with: "")
        XCTAssertEqual(Data(base64Encoded: base64).map { Array($0) }, file)

        let delta = try h.nextDurable(h.b)
        let attachments = try XCTUnwrap(delta["data"]?["attachments"]?.arrayValue)
        XCTAssertEqual(attachments.count, 1)
        XCTAssertEqual(attachments.first?["id"]?.stringValue, attachmentID)
        XCTAssertEqual(attachments.first?["filename"]?.stringValue, "x.txt")
        XCTAssertEqual(attachments.first?["content_type"]?.stringValue, "text/plain")
        XCTAssertEqual(attachments.first?["size"]?.intValue, file.count)
        let download = try h.server.request("GET", "/v1/attachments/\(attachmentID)")
        XCTAssertEqual(download.status, 200)
        XCTAssertEqual(download.body, file)
    }

    func testEmailAccount_putAndGet_neverEchoThePassword() throws {
        let h = try MailHarness(smtp: nil, account: nil)
        defer { h.stop() }
        let put = try h.server.putEmailAccount(port: 587, security: "starttls", username: "mailer", password: MailHarness.password)
        XCTAssertEqual(put.status, 200, put.text)
        let got = try h.server.api("GET", "/v1/tenants/acme/email-account")
        XCTAssertEqual(got.status, 200, got.text)
        for r in [put, got] {
            XCTAssertFalse(r.text.contains(MailHarness.password), r.text)
            XCTAssertNil(r.json?["password"], r.text)
            XCTAssertEqual(r.json?["password_set"]?.boolValue, true)
            XCTAssertEqual(r.json?["host"]?.stringValue, "127.0.0.1")
            XCTAssertEqual(r.json?["port"]?.intValue, 587)
            XCTAssertEqual(r.json?["security"]?.stringValue, "starttls")
            XCTAssertEqual(r.json?["username"]?.stringValue, "mailer")
            XCTAssertEqual(r.json?["from"]?.stringValue, MailHarness.from)
        }
        let bad = try h.server.putEmailAccount(port: 587, security: "ssl3")
        XCTAssertEqual(bad.status, 400, bad.text)
        XCTAssertEqual(bad.json?["error"]?["code"]?.stringValue, "invalid")
        let unauthorized = try h.server.request("GET", "/v1/tenants/acme/email-account", service: false)
        XCTAssertEqual(unauthorized.status, 401)
        XCTAssertFalse(unauthorized.text.contains(MailHarness.password))
    }

    func testReply_accountHostLocalhost_certificateNameCheckedAndSent() throws {
        // "localhost" may resolve to ::1 first, where nothing listens: the
        // mailer must move on to 127.0.0.1, and check the DNS name there.
        let h = try MailHarness(smtp: .init(security: .implicitTLS), account: nil)
        defer { h.stop() }
        let smtp = try XCTUnwrap(h.smtp)
        XCTAssertEqual(try h.server.putEmailAccount(host: "localhost", port: smtp.port, security: "tls").status, 200)
        try h.sendReply(id: "r-localhost", body: "Via localhost.")
        let answer = try h.answer(id: "r-localhost")
        XCTAssertEqual(answer["type"]?.stringValue, "result", "\(answer)")
        XCTAssertTrue(try smtp.waitForEnvelopes(1)[0].overTLS)
    }

    func testReply_firstReply_stopsTheResponseSLAClock() throws {
        let h = try MailHarness(slaPolicy: true)
        defer { h.stop() }
        let before = try h.server.storedTicket(h.ticket)
        XCTAssertNotNil(before.state["sla"]?["response"]?["due_at"]?.stringValue, "\(before.state["sla"] ?? .null)")
        try h.sendReply(id: "r-sla", body: "On it.")
        XCTAssertEqual(try h.answer(id: "r-sla")["type"]?.stringValue, "result")
        let after = try h.server.storedTicket(h.ticket)
        XCTAssertEqual(after.state["sla"]?["response"], .null, "\(after.state["sla"] ?? .null)")
        XCTAssertNotNil(after.state["sla"]?["resolution"]?["due_at"]?.stringValue)
    }

    func testReply_attachmentsOverTheReplyTotal_tooLargeNothingSentOrStored() throws {
        let h = try MailHarness { $0.maxReplyAttachmentBytes = 1000 }
        defer { h.stop() }
        let smtp = try XCTUnwrap(h.smtp)
        var ids: [String] = []
        for i in 0..<3 {
            let upload = try h.server.request("POST", "/v1/tickets/\(h.ticket)/attachments?filename=part\(i).bin",
                                              body: [UInt8](repeating: UInt8(i), count: 400), contentType: "application/octet-stream")
            XCTAssertEqual(upload.status, 201, upload.text)
            ids.append(try XCTUnwrap(upload.json?["id"]?.stringValue))
        }
        let before = try h.server.durableState(h.ticket)

        // 1,200 bytes against a 1,000-byte total: refused whole, however each one fits.
        try h.sendReply(id: "r-big", body: "Three files.", attachments: ids)
        let refused = try h.answer(id: "r-big")
        XCTAssertEqual(refused["code"]?.stringValue, "too_large", "\(refused)")
        XCTAssertTrue(refused["message"]?.stringValue?.contains("second reply") ?? false, "\(refused)")
        XCTAssertEqual(try h.server.durableState(h.ticket), before)

        // Two of them (800 bytes) go out.
        try h.sendReply(id: "r-two", body: "Two files.", attachments: Array(ids.prefix(2)))
        XCTAssertEqual(try h.answer(id: "r-two")["type"]?.stringValue, "result")
        let envelopes = try smtp.waitForEnvelopes(1)
        XCTAssertEqual(envelopes.count, 1, "only the reply within the limit was sent")
        XCTAssertTrue(String(decoding: envelopes[0].data, as: UTF8.self).contains("Two files."))
    }

    func testReply_largeAttachmentOverStartTLS_arrivesWhole() throws {
        let credentials = TestSMTPServer.Credentials(username: "mailer", password: MailHarness.password)
        let h = try MailHarness(smtp: .init(security: .startTLS, credentials: credentials),
                                account: "starttls", username: "mailer", password: MailHarness.password)
        defer { h.stop() }
        let smtp = try XCTUnwrap(h.smtp)
        // 1 MiB of pseudo-random bytes: 1.3 MiB of base64, ~90 TLS records and partial writes.
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var file = [UInt8](repeating: 0, count: 1 << 20)
        for i in file.indices {
            state = state &* 6364136223846793005 &+ 1442695040888963407  // an LCG: cheap, and no repeating lines
            file[i] = UInt8(truncatingIfNeeded: state >> 56)
        }
        let upload = try h.server.request("POST", "/v1/tickets/\(h.ticket)/attachments?filename=dump.zip", body: file,
                                          contentType: "application/zip")
        XCTAssertEqual(upload.status, 201, upload.text)
        let id = try XCTUnwrap(upload.json?["id"]?.stringValue)
        try h.sendReply(id: "r-big", body: "The dump is attached.", attachments: [id])
        let answer = try h.answer(id: "r-big", timeout: 30)
        XCTAssertEqual(answer["type"]?.stringValue, "result", "\(answer)")
        let mail = try smtp.waitForEnvelopes(1)[0]
        XCTAssertTrue(mail.overTLS)
        let marker = Array("Content-Transfer-Encoding: base64\r\n\r\n".utf8)
        let start = try XCTUnwrap(ParsedMail.find(marker, in: mail.data)) + marker.count
        let end = try XCTUnwrap(mail.data[start...].firstIndex(of: UInt8(ascii: "-")))  // base64 has no "-"
        let base64 = mail.data[start..<end].filter { $0 != 13 && $0 != 10 }
        XCTAssertTrue(Data(base64Encoded: Data(base64)).map { Array($0) } == file, "the attachment arrived changed")
    }

    /// The engine owns every durable change; reading and encoding a reply's
    /// attachments (up to 20 of 10 MiB) is the mail worker's job, done when
    /// the reply's turn comes. Every worker is kept busy by a held send, so
    /// the last reply waits in the queue; its file changes meanwhile, and the
    /// mail carries what the file holds when the worker reads it.
    func testReply_queuedBehindBusyWorkers_attachmentReadWhenItsTurnComes() throws {
        let workers = 16   // SMTPMailer.maxConversations
        let h = try MailHarness(smtp: .init(holdMessageReply: true), configure: { $0.maxRepliesInFlightPerTechnician = workers + 1 })
        defer { h.stop() }
        let smtp = try XCTUnwrap(h.smtp)
        let upload = try h.server.request("POST", "/v1/tickets/\(h.ticket)/attachments?filename=log.txt",
                                          body: Array("as uploaded\n".utf8), contentType: "text/plain")
        XCTAssertEqual(upload.status, 201, upload.text)
        let id = try XCTUnwrap(upload.json?["id"]?.stringValue)
        let sha = try XCTUnwrap(upload.json?["sha256"]?.stringValue)

        for i in 0..<workers { try h.sendReply(id: "busy-\(i)", body: "Reply \(i)") }
        try smtp.waitForEnvelopes(workers)
        try h.sendReply(id: "queued", body: "The log is attached.", attachments: [id])
        try h.barrier(h.a, "handed-over")
        XCTAssertEqual(smtp.connectionCount, workers, "the queued reply found a free worker")
        let changed = Array("as read by the worker\n".utf8)
        try Data(changed).write(to: URL(fileURLWithPath: "\(h.server.directory)/attachments/\(sha.prefix(2))/\(sha)"))
        smtp.releaseMessageReplies()

        XCTAssertEqual(try h.answer(id: "queued")["type"]?.stringValue, "result")
        let mail = try XCTUnwrap(try smtp.waitForEnvelopes(workers + 1).last)
        XCTAssertNotNil(ParsedMail.find(Array(Data(changed).base64EncodedString().utf8), in: mail.data),
                        "the attachment was read before the reply's turn: \(mail.text)")
    }

    func testReply_withStaleSeen_staleWithoutConnectingThenForceSends() throws {
        let h = try MailHarness()
        defer { h.stop() }
        let smtp = try XCTUnwrap(h.smtp)
        let seen = try h.server.storedTicket(h.ticket).seq
        let inbound = "From: Casey Customer <customer@example.com>\r\nSubject: Re: Printer jams [#\(h.number)]\r\n\r\nIt works now!\r\n"
        XCTAssertEqual(try h.server.request("POST", "/v1/tenants/acme/inbound-email", body: Array(inbound.utf8), contentType: "message/rfc822").status, 201)
        try h.a.send(["type": "command", "id": "r-stale", "ticket": .string(h.ticket), "op": "reply", "seen": .int(seen),
                      "args": ["body": "Did you try turning it off and on?"]])
        let stale = try h.answer(id: "r-stale")
        XCTAssertEqual(stale["code"]?.stringValue, "stale", "\(stale)")
        XCTAssertEqual(stale["missed"]?.arrayValue?.first?["body"]?.stringValue, "It works now!")
        XCTAssertEqual(smtp.connectionCount, 0)
        XCTAssertEqual(try h.server.sendAttempts(h.ticket).count, 0)
        try h.a.send(["type": "command", "id": "r-forced", "ticket": .string(h.ticket), "op": "reply", "seen": .int(seen),
                      "args": ["body": "Great, closing.", "force": true]])
        XCTAssertEqual(try h.answer(id: "r-forced")["type"]?.stringValue, "result")
        XCTAssertEqual(try smtp.waitForEnvelopes(1).count, 1)
    }
}
