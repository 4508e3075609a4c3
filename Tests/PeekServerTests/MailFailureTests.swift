import XCTest
import PeekCore
import PeekStore
import PeekTestSupport

/// A reply that cannot go out answers its error code with the real cause,
/// logs the attempt, and stores and fans out nothing.
final class MailFailureTests: XCTestCase {
    /// Sends `r1`, expects `error` with `code`, checks nothing changed; answers the error.
    private func failedReply(_ h: MailHarness, code: String, file: StaticString = #filePath, line: UInt = #line) throws -> JSONValue {
        let before = try h.server.storedTicket(h.ticket)
        try h.sendReply(id: "r1", body: "This should not be stored.")
        let answer = try h.answer(id: "r1")
        XCTAssertEqual(answer["type"]?.stringValue, "error", "\(answer)", file: file, line: line)
        XCTAssertEqual(answer["code"]?.stringValue, code, "\(answer)", file: file, line: line)
        XCTAssertEqual(answer["id"]?.stringValue, "r1", file: file, line: line)
        try h.assertNothingStored(since: before.seq, messages: before.messages.count, file: file, line: line)
        XCTAssertEqual(try h.server.storedTicket(h.ticket).state["ticket"]?["first_response_at"], .null,
                       "a failed reply stamped first_response_at", file: file, line: line)
        return answer
    }

    func testReply_noEmailAccount_noEmailAccountAndNoAttempt() throws {
        let h = try MailHarness(smtp: nil, account: nil)
        defer { h.stop() }
        let answer = try failedReply(h, code: "no_email_account")
        XCTAssertEqual(answer["message"]?.stringValue, "No email account is configured")
        XCTAssertEqual(try h.server.sendAttempts(h.ticket).count, 0)
        // The same id again: the first answer, still nothing sent.
        try h.sendReply(id: "r1", body: "again")
        XCTAssertEqual(try h.answer(id: "r1")["code"]?.stringValue, "no_email_account")
    }

    func testReply_contactWithoutEmail_noContactEmailAndNoConnection() throws {
        let h = try MailHarness(contactEmail: nil)
        defer { h.stop() }
        let answer = try failedReply(h, code: "no_contact_email")
        XCTAssertFalse((answer["message"]?.stringValue ?? "").isEmpty)
        XCTAssertEqual(h.smtp?.connectionCount, 0)
        XCTAssertEqual(try h.server.sendAttempts(h.ticket).count, 0)
    }

    func testReply_connectionRefused_dispatchFailedWithTheRealCause() throws {
        let closed = try RefusingPort()
        let h = try MailHarness(smtp: nil, port: closed.port)
        defer { h.stop() }
        let answer = try failedReply(h, code: "dispatch_failed")
        let message = answer["message"]?.stringValue ?? ""
        XCTAssertTrue(message.contains("127.0.0.1:\(closed.port)"), message)
        XCTAssertTrue(message.contains("Connection refused"), message)
        let attempts = try h.server.sendAttempts(h.ticket)
        XCTAssertEqual(attempts.count, 1)
        XCTAssertEqual(attempts.first?["outcome"]?.stringValue, "failed")
        XCTAssertEqual(attempts.first?["reply"]?.stringValue, "Connection refused")
        XCTAssertEqual(attempts.first?["to"]?.stringValue, "customer@example.com")
        XCTAssertEqual(attempts.first?["technician"]?["id"]?.stringValue, "tech-1")
        XCTAssertEqual(attempts.first?["technician"]?["name"]?.stringValue, "Tech 1")
    }

    func testReply_recipientRejected550_dispatchFailedCarriesTheServersText() throws {
        let rejection = "5.1.1 <customer@example.com>: Recipient address rejected: User unknown in virtual mailbox table"
        let h = try MailHarness(smtp: .init(rejectRecipient: .init(550, rejection)))
        defer { h.stop() }
        let answer = try failedReply(h, code: "dispatch_failed")
        let message = answer["message"]?.stringValue ?? ""
        XCTAssertTrue(message.contains("550 " + rejection), message)
        XCTAssertEqual(h.smtp?.envelopes.count, 0)
        let attempts = try h.server.sendAttempts(h.ticket)
        XCTAssertEqual(attempts.map { $0["outcome"]?.stringValue }, ["failed"])
        XCTAssertEqual(attempts.first?["reply"]?.stringValue, "550 " + rejection)
    }

    func testReply_wrongPassword_dispatchFailedAuthWithoutThePassword() throws {
        let credentials = TestSMTPServer.Credentials(username: "mailer", password: "the-right-one")
        let h = try MailHarness(smtp: .init(credentials: credentials), username: "mailer", password: MailHarness.password)
        defer { h.stop() }
        let answer = try failedReply(h, code: "dispatch_failed")
        let message = answer["message"]?.stringValue ?? ""
        XCTAssertTrue(message.contains("535 5.7.8"), message)
        XCTAssertTrue(message.contains("\"mailer\""), message)
        XCTAssertFalse(message.contains(MailHarness.password), message)
        XCTAssertFalse(h.smtp?.commands.contains { $0.hasPrefix("MAIL") } ?? true, "MAIL FROM after a refused login")
        let attempts = try h.server.sendAttempts(h.ticket)
        XCTAssertEqual(attempts.first?["reply"]?.stringValue, "535 5.7.8 Error: authentication failed: authentication failure")
        XCTAssertFalse(try h.server.api("GET", "/v1/tickets/\(h.ticket)/sends").text.contains(MailHarness.password))
    }

    func testReply_serverNeverAnswers_dispatchFailedAfterTheTimeout() throws {
        let h = try MailHarness(smtp: .init(silent: true), smtpTimeoutSeconds: 1)
        defer { h.stop() }
        let answer = try failedReply(h, code: "dispatch_failed")
        XCTAssertEqual(answer["message"]?.stringValue, "The mail server accepted the connection but sent no greeting in time.")
        XCTAssertEqual(h.smtp?.connectionCount, 1)
        XCTAssertEqual(try h.server.sendAttempts(h.ticket).first?["outcome"]?.stringValue, "failed")
    }

    func testReply_startTLSRequiredButNotOffered_dispatchFailedNothingInPlainText() throws {
        let credentials = TestSMTPServer.Credentials(username: "mailer", password: MailHarness.password)
        let h = try MailHarness(smtp: .init(security: .plain, credentials: credentials), account: "starttls",
                                username: "mailer", password: MailHarness.password)
        defer { h.stop() }
        let answer = try failedReply(h, code: "dispatch_failed")
        XCTAssertTrue((answer["message"]?.stringValue ?? "").contains("does not offer STARTTLS"), "\(answer)")
        let commands = h.smtp?.commands ?? []
        XCTAssertFalse(commands.contains { $0.hasPrefix("AUTH") || $0.hasPrefix("MAIL") || $0.hasPrefix("RCPT") || $0.hasPrefix("DATA") },
                       "credentials or envelope went out in plain text: \(commands)")
        XCTAssertEqual(h.smtp?.envelopes.count, 0)
    }

    func testReply_dataRefused451_dispatchFailedTryLater() throws {
        let h = try MailHarness(smtp: .init(dataReply: .init(451, "4.3.0 Mail server temporarily rejected message")))
        defer { h.stop() }
        let answer = try failedReply(h, code: "dispatch_failed")
        let message = answer["message"]?.stringValue ?? ""
        XCTAssertTrue(message.contains("451 4.3.0 Mail server temporarily rejected message"), message)
        XCTAssertTrue(message.contains("Try again later"), message)
        XCTAssertEqual(h.smtp?.envelopes.count, 0)
        // The failure is the id's answer; a fresh id is how the technician retries.
        try h.sendReply(id: "r1", body: "again")
        XCTAssertEqual(try h.answer(id: "r1")["message"]?.stringValue, message)
        XCTAssertEqual(try h.server.sendAttempts(h.ticket).count, 1)
    }

    func testReply_tlsServerWithUntrustedCertificate_dispatchFailed() throws {
        // An implicit-TLS server whose certificate the peekd does not trust
        // (its smtpCA is another factory's CA).
        let other = try CertFactory()
        let smtp = try TestSMTPServer(options: .init(security: .implicitTLS), pki: other)
        defer { smtp.stop() }
        let h = try MailHarness(smtp: nil, account: "tls", port: smtp.port)
        defer { h.stop() }
        let answer = try failedReply(h, code: "dispatch_failed")
        let message = answer["message"]?.stringValue ?? ""
        XCTAssertTrue(message.contains("TLS handshake"), message)
        XCTAssertTrue(smtp.commands.isEmpty, "\(smtp.commands)")
    }

    func testReply_serverThatIsNotSMTP_dispatchFailedSaysItsAnswerIsNotSMTP() throws {
        // Someone put the web server's port in the account.
        let h = try MailHarness(smtp: .init(rawGreeting: "HTTP/1.1 400 Bad Request"))
        defer { h.stop() }
        let answer = try failedReply(h, code: "dispatch_failed")
        let message = answer["message"]?.stringValue ?? ""
        XCTAssertTrue(message.contains("not SMTP"), message)
        XCTAssertTrue(message.contains("HTTP/1.1 400 Bad Request"), message)
        XCTAssertEqual(try h.server.sendAttempts(h.ticket).first?["outcome"]?.stringValue, "failed")
    }

    func testReply_messageLargerThanAdvertisedSize_dispatchFailedBeforeMailFrom() throws {
        let h = try MailHarness(smtp: .init(maxMessageBytes: 200))
        defer { h.stop() }
        let answer = try failedReply(h, code: "dispatch_failed")
        let message = answer["message"]?.stringValue ?? ""
        XCTAssertTrue(message.contains("more than the mail server accepts (200 bytes)"), message)
        XCTAssertFalse(h.smtp?.commands.contains { $0.hasPrefix("MAIL") } ?? true, "\(h.smtp?.commands ?? [])")
    }

    func testReply_loginConfiguredButServerOffersNoAuth_dispatchFailed() throws {
        let h = try MailHarness(smtp: .init(), username: "mailer", password: MailHarness.password)
        defer { h.stop() }
        let answer = try failedReply(h, code: "dispatch_failed")
        XCTAssertTrue((answer["message"]?.stringValue ?? "").contains("does not offer login"), "\(answer)")
        XCTAssertFalse(h.smtp?.commands.contains { $0.hasPrefix("MAIL") } ?? true)
    }

    func testReply_certificateDoesNotNameTheHost_dispatchFailed() throws {
        // The certificate is from the trusted CA but names localhost and
        // 127.0.0.1 only; the account says 127.0.0.2.
        let h = try MailHarness(smtp: nil, account: nil)
        defer { h.stop() }
        let smtp = try TestSMTPServer(options: .init(security: .implicitTLS), pki: h.pki, host: "127.0.0.2")
        defer { smtp.stop() }
        XCTAssertEqual(try h.server.putEmailAccount(host: "127.0.0.2", port: smtp.port, security: "tls").status, 200)
        let answer = try failedReply(h, code: "dispatch_failed")
        XCTAssertTrue((answer["message"]?.stringValue ?? "").contains("TLS handshake"), "\(answer)")
        XCTAssertTrue(smtp.commands.isEmpty)
    }

    func testReply_contactAddressNotSendable_invalidWithoutAttempt() throws {
        let h = try MailHarness(contactEmail: "casey customer@example.com")
        defer { h.stop() }
        let answer = try failedReply(h, code: "invalid")
        let message = answer["message"]?.stringValue ?? ""
        XCTAssertEqual(message, "The reply cannot be written as an email: The address \"casey customer@example.com\" is not a valid email address.")
        XCTAssertEqual(h.smtp?.connectionCount, 0)
        XCTAssertEqual(try h.server.sendAttempts(h.ticket).count, 0)
    }

    func testReply_plainTextInjectedAfterStartTLSReply_dispatchFailedNothingSent() throws {
        let credentials = TestSMTPServer.Credentials(username: "mailer", password: MailHarness.password)
        let h = try MailHarness(smtp: .init(security: .startTLS, credentials: credentials, injectAfterStartTLSReply: "250 2.1.0 Ok"),
                                account: "starttls", username: "mailer", password: MailHarness.password)
        defer { h.stop() }
        let answer = try failedReply(h, code: "dispatch_failed")
        XCTAssertTrue((answer["message"]?.stringValue ?? "").contains("before the TLS handshake"), "\(answer)")
        let commands = h.smtp?.commands ?? []
        XCTAssertFalse(commands.contains { $0.contains("AUTH") || $0.contains("MAIL") }, "\(commands)")
        XCTAssertEqual(h.smtp?.envelopes.count, 0)
    }

    func testEmailAccount_fromWithDisplayName_refusedAtPut() throws {
        let h = try MailHarness(smtp: nil, account: nil)
        defer { h.stop() }
        for from in ["Acme Support <support@acme.example>", "support@acme.example\r\nBcc: x@evil.example", "sup port@acme.example"] {
            let r = try h.server.putEmailAccount(port: 25, security: "none", from: from)
            XCTAssertEqual(r.status, 400, "\(from): \(r.text)")
            XCTAssertEqual(r.json?["error"]?["code"]?.stringValue, "invalid")
        }
        XCTAssertEqual(try h.server.api("GET", "/v1/tenants/acme/email-account").status, 404)
        // Replies still say exactly what is missing.
        let answer = try failedReply(h, code: "no_email_account")
        XCTAssertEqual(answer["message"]?.stringValue, "No email account is configured")
    }

    // MARK: A sent reply and a failing batch

    /// The mail server accepted the reply; a note that fails in the batch
    /// the mail's outcome arrives in must not undo its record nor answer it
    /// "nothing changed" (the customer has the email). The reply is answered
    /// `result` with the seq it is stored at, emailed once, and a resend of
    /// its id gets that answer without a second email.
    func testReplySent_inABatchWhoseNoteFails_isStoredAnsweredTruthfullyAndEmailedOnce() throws {
        let h = try MailHarness(smtp: .init(holdMessageReply: true))
        defer { h.stop() }
        let smtp = try XCTUnwrap(h.smtp)
        let before = try h.server.storedTicket(h.ticket)
        let body = "Please restart the printer."
        try h.sendReply(id: "r1", body: body)
        _ = try smtp.waitForEnvelopes(1)
        let db = try h.server.failWritesAfterNoteBoom()

        // The mail's outcome and the failing note, in one batch, in that order.
        let release = try h.server.holdEngine()
        smtp.releaseMessageReplies()
        try h.server.waitForQueuedJobs(1)
        try h.a.command("boom", h.ticket, "note", ["body": "note boom"])
        try h.server.waitForQueuedJobs(2)
        release.signal()

        let first = try h.answer(id: "r1")
        XCTAssertEqual(first["type"]?.stringValue, "result", "the sent reply was answered \(first)")
        XCTAssertEqual(try h.answer(id: "boom")["code"]?.stringValue, "internal")
        let stored = try h.server.storedTicket(h.ticket)
        let bodies = stored.messages.compactMap { $0["body"]?.stringValue }
        XCTAssertEqual(bodies.filter { $0 == body }.count, 1, "the sent reply is stored once: \(bodies)")
        XCTAssertFalse(bodies.contains("note boom"))
        XCTAssertEqual(first["seq"]?.intValue, stored.seq)
        XCTAssertEqual(stored.seq, before.seq + 2, "the reply and its first_response_at stamp")
        XCTAssertEqual(try h.server.sendAttempts(h.ticket).map { $0["outcome"]?.stringValue }, ["sent"])

        // The same id again, on another connection too: the first answer, no second email.
        try h.sendReply(id: "r1", body: body)
        XCTAssertEqual(try h.answer(id: "r1"), first)
        let again = try h.server.technician("tech-1")
        try h.sendReply(again, id: "r1", body: body)
        XCTAssertEqual(try h.answer(again, id: "r1"), first)
        try h.barrier(h.a, "barrier-1")
        XCTAssertEqual(smtp.envelopes.count, 1, "the customer was emailed twice")
        XCTAssertEqual(smtp.connectionCount, 1)
        again.close()
        try db.execute("DROP TRIGGER fail_boom")
    }

    /// A sent reply whose own record cannot be committed (here a trigger
    /// refuses storing it for a while) is neither lost nor answered "not
    /// recorded": it is tried again every second, stays in flight so a
    /// resend waits instead of emailing again, and is answered once stored.
    func testReplySent_recordFailsForAWhile_isRetriedAndAnsweredOnceStored() throws {
        let h = try MailHarness()
        defer { h.stop() }
        let smtp = try XCTUnwrap(h.smtp)
        let db = try Database(path: h.server.directory + "/peek.sqlite")
        try db.execute("""
            CREATE TRIGGER fail_reply BEFORE INSERT ON messages WHEN NEW.via = 'email'
            BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END;
            """)
        let body = "Please restart the printer."
        try h.sendReply(id: "r1", body: body)
        _ = try smtp.waitForEnvelopes(1)
        let early = h.a.drain(for: 2.5)
        XCTAssertFalse(early.contains { $0["id"]?.stringValue == "r1" }, "answered before the reply was stored: \(early)")
        try h.sendReply(h.b, id: "r1", body: body)  // another technician: another command
        try h.sendReply(id: "r1", body: body)       // the same command: waits with the first
        try db.execute("DROP TRIGGER fail_reply")

        let first = try h.answer(id: "r1")
        XCTAssertEqual(first["type"]?.stringValue, "result", "\(first)")
        XCTAssertEqual(try h.answer(id: "r1"), first)
        XCTAssertEqual(try h.answer(h.b, id: "r1")["type"]?.stringValue, "result")
        let stored = try h.server.storedTicket(h.ticket)
        XCTAssertEqual(stored.messages.compactMap { $0["body"]?.stringValue }.filter { $0 == body }.count, 2,
                       "tech-1's reply once, tech-2's once")
        XCTAssertEqual(smtp.envelopes.count, 2, "tech-1's reply was emailed twice")
        XCTAssertEqual(try h.server.sendAttempts(h.ticket).map { $0["outcome"]?.stringValue }, ["sent", "sent"])
    }

    // MARK: Killed mid-send, and a record that never succeeds

    private static let failReplyTrigger = """
        CREATE TRIGGER fail_reply BEFORE INSERT ON messages WHEN NEW.via = 'email'
        BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END;
        """

    /// The mail server accepted the reply, its record fails, and the server
    /// stops (as a kill would, nothing of the outcome recorded). Before, the
    /// stop waited out the SMTP timeout for the retry, and after the restart
    /// a resend of the same id emailed the customer again. Now the stop does
    /// not wait for the retry, the restarted server marks the attempt
    /// `unknown` with a system event, and the resend gets "outcome unknown"
    /// without a second email.
    func testReplySent_serverStopsWhileItsRecordFails_resendAfterRestartIsNotEmailedAgain() throws {
        let h = try MailHarness(smtpTimeoutSeconds: 8)
        defer { h.stop() }
        let smtp = try XCTUnwrap(h.smtp)
        let db = try Database(path: h.server.directory + "/peek.sqlite")
        try db.execute(Self.failReplyTrigger)
        let body = "Please restart the printer."
        try h.sendReply(id: "r1", body: body)
        _ = try smtp.waitForEnvelopes(1)
        // Stopped now, the outcome reaches the engine before or during the
        // stop (which waits for replies in flight); either way its record fails.
        let stopStarted = Date()
        h.server.stop()
        XCTAssertLessThan(Date().timeIntervalSince(stopStarted), 6, "the stop waited for a record that kept failing")
        try db.execute("DROP TRIGGER fail_reply")

        let ca = h.pki.caFile
        let restarted = try TestServer(directory: h.server.directory) { c in
            c.smtpCA = ca
            c.smtpTimeoutSeconds = 8
        }
        defer { restarted.stop() }
        let a = try restarted.technician("tech-1")
        defer { a.close() }
        try h.sendReply(a, id: "r1", body: body)
        let answer = try h.answer(a, id: "r1")
        XCTAssertEqual(answer["code"]?.stringValue, "dispatch_failed", "\(answer)")
        XCTAssertTrue(answer["message"]?.stringValue?.contains("is unknown") ?? false, "\(answer)")
        try h.barrier(a, "barrier-1")
        XCTAssertEqual(smtp.envelopes.count, 1, "the customer was emailed twice")
        let attempts = try restarted.sendAttempts(h.ticket)
        XCTAssertEqual(attempts.map { $0["outcome"]?.stringValue }, ["unknown"], "\(attempts)")
        XCTAssertTrue(attempts.first?["reply"]?.stringValue?.contains("Message-ID <") ?? false, "\(attempts)")
        let stored = try restarted.storedTicket(h.ticket)
        XCTAssertFalse(stored.messages.contains { $0["body"]?.stringValue == body }, "stored as sent")
        XCTAssertEqual(stored.messages.last?["body"]?.stringValue,
                       "A reply by Tech 1 to customer@example.com may not have been emailed: the server stopped while sending it. Check the send log, or with the customer, before sending it again.")
    }

    /// A record that fails for good no longer holds the reply in flight for
    /// ever: after `replyRecordAttempts` the request is told the email went
    /// out unrecorded, the slot is free for the next reply, and a resend of
    /// the id gets "outcome unknown", not a second email.
    func testReplySent_recordFailsForGood_answeredAfterBoundedRetries_slotFreed_notEmailedAgain() throws {
        let h = try MailHarness(configure: { c in
            c.replyRecordAttempts = 2
            c.maxRepliesInFlightPerTechnician = 1
        })
        defer { h.stop() }
        let smtp = try XCTUnwrap(h.smtp)
        let db = try Database(path: h.server.directory + "/peek.sqlite")
        try db.execute(Self.failReplyTrigger)
        try h.sendReply(id: "r1", body: "Please restart the printer.")
        _ = try smtp.waitForEnvelopes(1)
        let first = try h.answer(id: "r1", timeout: 20)
        XCTAssertEqual(first["code"]?.stringValue, "internal", "\(first)")
        XCTAssertEqual(first["message"]?.stringValue, "The email was sent but could not be recorded; check the send log before sending again.")
        try db.execute("DROP TRIGGER fail_reply")

        // The one slot of this technician is free again.
        try h.sendReply(id: "r2", body: "And check the toner.")
        XCTAssertEqual(try h.answer(id: "r2")["type"]?.stringValue, "result")
        // r1 again: what is durable says unknown; not emailed again.
        try h.sendReply(id: "r1", body: "Please restart the printer.")
        let again = try h.answer(id: "r1")
        XCTAssertEqual(again["code"]?.stringValue, "dispatch_failed", "\(again)")
        XCTAssertTrue(again["message"]?.stringValue?.contains("is unknown") ?? false, "\(again)")
        try h.barrier(h.a, "barrier-1")
        XCTAssertEqual(smtp.envelopes.count, 2, "r1 was emailed twice")
        XCTAssertEqual(try h.server.sendAttempts(h.ticket).map { $0["outcome"]?.stringValue }, ["sending", "sent"],
                       "r1's attempt stays 'sending' until the next start marks it unknown")
    }
}
