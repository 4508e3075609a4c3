import Foundation
import XCTest
@testable import PeekMail

final class SMTPDialogueTests: XCTestCase {
    private let message = Array("Subject: hi\r\n\r\nHello\r\n.\r\n".utf8)

    private func configuration(_ security: SMTPDialogue.Configuration.Security,
                               credentials: SMTPDialogue.Credentials? = nil,
                               recipients: [String] = ["ana@client.example"]) -> SMTPDialogue.Configuration {
        SMTPDialogue.Configuration(clientHostname: "peek.example.com", security: security, credentials: credentials,
                                   envelopeFrom: "support@peek.example.com", recipients: recipients, message: message)
    }

    /// The event for a server reply written as it goes over the wire.
    private func reply(_ wire: String, file: StaticString = #filePath, line: UInt = #line) -> SMTPDialogue.Event {
        var parser = SMTPReplyParser()
        let replies = (try? parser.replies(after: Array(wire.utf8))) ?? []
        XCTAssertEqual(replies.count, 1, "fixture \(wire.debugDescription) is not one reply", file: file, line: line)
        return .reply(replies[0])
    }

    private func send(_ line: String) -> SMTPDialogue.Action { .send(Array(line.utf8)) }
    private func secret(_ line: String) -> SMTPDialogue.Action { .sendSecret(Array(line.utf8)) }

    private func failure(_ action: SMTPDialogue.Action, file: StaticString = #filePath, line: UInt = #line) -> SMTPFailure? {
        guard case .failed(let failure) = action else {
            XCTFail("expected .failed, got \(action)", file: file, line: line)
            return nil
        }
        return failure
    }

    /// From MAIL FROM to the answer after the data: identical for every security mode.
    private func assertEnvelopeAndData(_ dialogue: inout SMTPDialogue, after action: SMTPDialogue.Action,
                                       file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(action, send("MAIL FROM:<support@peek.example.com>\r\n"), file: file, line: line)
        XCTAssertEqual(dialogue.handle(reply("250 2.1.0 Ok\r\n")), send("RCPT TO:<ana@client.example>\r\n"), file: file, line: line)
        XCTAssertEqual(dialogue.handle(reply("250 2.1.5 Ok\r\n")), send("DATA\r\n"), file: file, line: line)
        // The message, dot-stuffed: its "." line goes out as "..", then the end marker.
        XCTAssertEqual(dialogue.handle(reply("354 End data with <CR><LF>.<CR><LF>\r\n")),
                       send("Subject: hi\r\n\r\nHello\r\n..\r\n.\r\n"), file: file, line: line)
        let queued = SMTPReply(code: 250, lines: ["2.0.0 Ok: queued as 4F1A2B3C"])
        XCTAssertEqual(dialogue.handle(.reply(queued)), .done(.sent(queued)), file: file, line: line)
        // Final: a later answer (to QUIT) changes nothing.
        XCTAssertEqual(dialogue.handle(reply("221 2.0.0 Bye\r\n")), .done(.sent(queued)), file: file, line: line)
    }

    func testDialogue_plainWithoutCredentials_sendsEnvelopeAndMessage() throws {
        var dialogue = try SMTPDialogue(configuration: configuration(.none))
        XCTAssertEqual(dialogue.handle(.connected), .receive)
        XCTAssertEqual(dialogue.handle(reply("220 mx.client.example ESMTP Postfix\r\n")), send("EHLO peek.example.com\r\n"))
        let afterEHLO = dialogue.handle(reply("250-mx.client.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n"))
        XCTAssertFalse(dialogue.isTLSActive)
        assertEnvelopeAndData(&dialogue, after: afterEHLO)
    }

    func testDialogue_startTLSWithAuthPlain_upgradesThenAuthenticates() throws {
        var dialogue = try SMTPDialogue(configuration: configuration(
            .startTLS, credentials: .init(username: "user", password: "pass")))
        XCTAssertEqual(dialogue.handle(.connected), .receive)
        XCTAssertEqual(dialogue.handle(reply("220 smtp.example.com ESMTP\r\n")), send("EHLO peek.example.com\r\n"))
        // AUTH is advertised in plain text, but nothing is sent before TLS.
        XCTAssertEqual(dialogue.handle(reply("250-smtp.example.com\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n")),
                       send("STARTTLS\r\n"))
        XCTAssertEqual(dialogue.handle(reply("220 2.0.0 Ready to start TLS\r\n")), .startTLS)
        XCTAssertEqual(dialogue.handle(.tlsEstablished), send("EHLO peek.example.com\r\n"))
        XCTAssertTrue(dialogue.isTLSActive)
        // AUTH PLAIN with the initial response base64("\0user\0pass") (RFC 4616).
        XCTAssertEqual(dialogue.handle(reply("250-smtp.example.com\r\n250-AUTH PLAIN LOGIN\r\n250 SIZE 35882577\r\n")),
                       secret("AUTH PLAIN AHVzZXIAcGFzcw==\r\n"))
        let afterAuth = dialogue.handle(reply("235 2.7.0 Authentication successful\r\n"))
        assertEnvelopeAndData(&dialogue, after: afterAuth)
    }

    func testDialogue_implicitTLSWithAuthLogin_answersBothPrompts() throws {
        var dialogue = try SMTPDialogue(configuration: configuration(
            .implicitTLS, credentials: .init(username: "user", password: "pass")))
        XCTAssertEqual(dialogue.handle(.connected), .receive)
        XCTAssertTrue(dialogue.isTLSActive)
        XCTAssertEqual(dialogue.handle(reply("220 smtp.example.com ESMTP\r\n")), send("EHLO peek.example.com\r\n"))
        // Only LOGIN offered, in the pre-RFC 4954 "AUTH=" form as well.
        XCTAssertEqual(dialogue.handle(reply("250-smtp.example.com\r\n250-AUTH=LOGIN\r\n250 AUTH LOGIN\r\n")),
                       secret("AUTH LOGIN\r\n"))
        // 334 "Username:" and "Password:" in base64; answers base64("user"), base64("pass").
        XCTAssertEqual(dialogue.handle(reply("334 VXNlcm5hbWU6\r\n")), secret("dXNlcg==\r\n"))
        XCTAssertEqual(dialogue.handle(reply("334 UGFzc3dvcmQ6\r\n")), secret("cGFzcw==\r\n"))
        let afterAuth = dialogue.handle(reply("235 2.7.0 Authentication successful\r\n"))
        assertEnvelopeAndData(&dialogue, after: afterAuth)
    }

    func testDialogue_ehloRefusedWithoutTLSOrAuth_fallsBackToHELO() throws {
        var dialogue = try SMTPDialogue(configuration: configuration(.none))
        _ = dialogue.handle(.connected)
        _ = dialogue.handle(reply("220 old.example.com SMTP\r\n"))
        XCTAssertEqual(dialogue.handle(reply("502 5.5.2 Error: command not recognized\r\n")),
                       send("HELO peek.example.com\r\n"))
        let afterHELO = dialogue.handle(reply("250 old.example.com\r\n"))
        assertEnvelopeAndData(&dialogue, after: afterHELO)
    }

    func testDialogue_ehloRefusedWithStartTLS_failsWithoutHELO() throws {
        var dialogue = try SMTPDialogue(configuration: configuration(.startTLS))
        _ = dialogue.handle(.connected)
        _ = dialogue.handle(reply("220 old.example.com SMTP\r\n"))
        let failure = failure(dialogue.handle(reply("500 5.5.1 Command unrecognized\r\n")))
        XCTAssertEqual(failure?.kind, .tls)
        XCTAssertEqual(failure?.step, .ehlo)
        XCTAssertTrue(failure?.message.contains("500 5.5.1 Command unrecognized") == true, failure?.message ?? "")
    }

    func testDialogue_ehloRefusedWithCredentials_failsAsAuth() throws {
        var dialogue = try SMTPDialogue(configuration: configuration(.implicitTLS, credentials: .init(username: "u", password: "p")))
        _ = dialogue.handle(.connected)
        _ = dialogue.handle(reply("220 old.example.com SMTP\r\n"))
        XCTAssertEqual(failure(dialogue.handle(reply("502 5.5.2 Error: command not recognized\r\n")))?.kind, .auth)
    }

    func testDialogue_startTLSNotOffered_failsWithoutSendingAnythingElse() throws {
        var dialogue = try SMTPDialogue(configuration: configuration(.startTLS, credentials: .init(username: "user", password: "pass")))
        _ = dialogue.handle(.connected)
        _ = dialogue.handle(reply("220 mx.example.com ESMTP\r\n"))
        let action = dialogue.handle(reply("250-mx.example.com\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n"))
        let failure = failure(action)
        XCTAssertEqual(failure?.kind, .tls)
        XCTAssertEqual(failure?.step, .ehlo)
        XCTAssertTrue(failure?.message.contains("does not offer STARTTLS") == true, failure?.message ?? "")
        // Final: whatever the server says next, no credentials and no envelope go out.
        XCTAssertEqual(dialogue.handle(reply("250 ok\r\n")), action)
    }

    func testDialogue_startTLSRefused_failsAsTLS() throws {
        var dialogue = try SMTPDialogue(configuration: configuration(.startTLS))
        _ = dialogue.handle(.connected)
        _ = dialogue.handle(reply("220 mx.example.com ESMTP\r\n"))
        _ = dialogue.handle(reply("250-mx.example.com\r\n250 STARTTLS\r\n"))
        let failure = failure(dialogue.handle(reply("454 4.7.0 TLS not available due to local problem\r\n")))
        XCTAssertEqual(failure?.kind, .tls)
        XCTAssertEqual(failure?.step, .startTLS)
        XCTAssertTrue(failure?.message.contains("454 4.7.0 TLS not available due to local problem") == true)
    }

    func testDialogue_tlsHandshakeFails_reportsReason() throws {
        var dialogue = try SMTPDialogue(configuration: configuration(.startTLS))
        _ = dialogue.handle(.connected)
        _ = dialogue.handle(reply("220 mx.example.com ESMTP\r\n"))
        _ = dialogue.handle(reply("250-mx.example.com\r\n250 STARTTLS\r\n"))
        XCTAssertEqual(dialogue.handle(reply("220 go ahead\r\n")), .startTLS)
        let failure = failure(dialogue.handle(.tlsFailed(reason: "certificate verify failed")))
        XCTAssertEqual(failure?.kind, .tls)
        XCTAssertTrue(failure?.message.contains("certificate verify failed") == true)
    }

    func testDialogue_authRefused535_failsAsAuthWithServerText() throws {
        var dialogue = try SMTPDialogue(configuration: configuration(.implicitTLS, credentials: .init(username: "user", password: "wrong")))
        _ = dialogue.handle(.connected)
        _ = dialogue.handle(reply("220 smtp.example.com ESMTP\r\n"))
        _ = dialogue.handle(reply("250-smtp.example.com\r\n250 AUTH PLAIN\r\n"))
        let failure = failure(dialogue.handle(reply("535 5.7.8 Error: authentication failed: authentication failure\r\n")))
        XCTAssertEqual(failure?.kind, .auth)
        XCTAssertEqual(failure?.step, .auth)
        XCTAssertEqual(failure?.reply?.code, 535)
        XCTAssertTrue(failure?.message.contains("535 5.7.8 Error: authentication failed: authentication failure") == true,
                      failure?.message ?? "")
        XCTAssertFalse(failure?.message.contains("wrong") == true, "the password must not appear")
    }

    func testDialogue_credentialsButNoAuthAdvertised_failsAsAuth() throws {
        var dialogue = try SMTPDialogue(configuration: configuration(.none, credentials: .init(username: "user", password: "pass")))
        _ = dialogue.handle(.connected)
        _ = dialogue.handle(reply("220 mx.example.com ESMTP\r\n"))
        let failure = failure(dialogue.handle(reply("250-mx.example.com\r\n250 PIPELINING\r\n")))
        XCTAssertEqual(failure?.kind, .auth)
        XCTAssertTrue(failure?.message.contains("starttls") == true, "suggests TLS: \(failure?.message ?? "")")
    }

    func testDialogue_onlyCramMD5Advertised_failsNamingWhatIsOffered() throws {
        var dialogue = try SMTPDialogue(configuration: configuration(.implicitTLS, credentials: .init(username: "user", password: "pass")))
        _ = dialogue.handle(.connected)
        _ = dialogue.handle(reply("220 mx.example.com ESMTP\r\n"))
        let failure = failure(dialogue.handle(reply("250-mx.example.com\r\n250 AUTH CRAM-MD5 XOAUTH2\r\n")))
        XCTAssertEqual(failure?.kind, .auth)
        XCTAssertTrue(failure?.message.contains("CRAM-MD5 XOAUTH2") == true, failure?.message ?? "")
    }

    func testDialogue_recipientRejected550_failsWithRealServerText() throws {
        var dialogue = try SMTPDialogue(configuration: configuration(.none, recipients: ["x@y.example", "ana@client.example"]))
        _ = dialogue.handle(.connected)
        _ = dialogue.handle(reply("220 mx ESMTP\r\n"))
        XCTAssertEqual(dialogue.handle(reply("250 mx\r\n")), send("MAIL FROM:<support@peek.example.com>\r\n"))
        XCTAssertEqual(dialogue.handle(reply("250 2.1.0 Ok\r\n")), send("RCPT TO:<x@y.example>\r\n"))
        let failure = failure(dialogue.handle(reply("550 5.1.1 <x@y.example>: Recipient address rejected: User unknown in virtual mailbox table\r\n")))
        XCTAssertEqual(failure?.kind, .rejected)
        XCTAssertEqual(failure?.step, .rcptTo)
        XCTAssertEqual(failure?.message,
                       "The mail server rejected the recipient <x@y.example> (RCPT TO): 550 5.1.1 <x@y.example>: Recipient address rejected: User unknown in virtual mailbox table")
    }

    func testDialogue_everyRecipientGetsRCPT_inOrder() throws {
        var dialogue = try SMTPDialogue(configuration: configuration(.none, recipients: ["a@x.example", "b@x.example"]))
        _ = dialogue.handle(.connected)
        _ = dialogue.handle(reply("220 mx ESMTP\r\n"))
        _ = dialogue.handle(reply("250 mx\r\n"))
        XCTAssertEqual(dialogue.handle(reply("250 Ok\r\n")), send("RCPT TO:<a@x.example>\r\n"))
        // 251 "will forward" is a success too.
        XCTAssertEqual(dialogue.handle(reply("251 2.1.5 User not local; will forward\r\n")), send("RCPT TO:<b@x.example>\r\n"))
        XCTAssertEqual(dialogue.handle(reply("250 Ok\r\n")), send("DATA\r\n"))
    }

    func testDialogue_dataRefused451_failsAsTemporary() throws {
        var dialogue = try SMTPDialogue(configuration: configuration(.none))
        _ = dialogue.handle(.connected)
        _ = dialogue.handle(reply("220 mx ESMTP\r\n"))
        _ = dialogue.handle(reply("250 mx\r\n"))
        _ = dialogue.handle(reply("250 Ok\r\n"))
        XCTAssertEqual(dialogue.handle(reply("250 Ok\r\n")), send("DATA\r\n"))
        let failure = failure(dialogue.handle(reply("451 4.3.0 Error: queue file write error\r\n")))
        XCTAssertEqual(failure?.kind, .rejected)
        XCTAssertEqual(failure?.step, .data)
        XCTAssertEqual(failure?.message,
                       "The mail server temporarily refused the message at DATA: 451 4.3.0 Error: queue file write error. Try again later.")
    }

    func testDialogue_messageRejectedAfterData_failsWithReply() throws {
        var dialogue = try SMTPDialogue(configuration: configuration(.none))
        _ = dialogue.handle(.connected)
        for wire in ["220 mx ESMTP\r\n", "250 mx\r\n", "250 Ok\r\n", "250 Ok\r\n"] { _ = dialogue.handle(reply(wire)) }
        guard case .send = dialogue.handle(reply("354 go\r\n")) else { return XCTFail("expected the message") }
        let failure = failure(dialogue.handle(reply("554 5.7.1 Message rejected as spam\r\n")))
        XCTAssertEqual(failure?.step, .message)
        XCTAssertEqual(failure?.reply?.code, 554)
    }

    func testDialogue_greeting554_failsAsRefused() throws {
        var dialogue = try SMTPDialogue(configuration: configuration(.none))
        _ = dialogue.handle(.connected)
        let failure = failure(dialogue.handle(reply("554 5.7.1 Your IP is on a blocklist\r\n")))
        XCTAssertEqual(failure?.kind, .refused)
        XCTAssertEqual(failure?.step, .greeting)
        XCTAssertTrue(failure?.message.contains("554 5.7.1 Your IP is on a blocklist") == true)
    }

    func testDialogue_421AtAnyStep_failsAsRefused() throws {
        var dialogue = try SMTPDialogue(configuration: configuration(.none))
        _ = dialogue.handle(.connected)
        _ = dialogue.handle(reply("220 mx ESMTP\r\n"))
        _ = dialogue.handle(reply("250 mx\r\n"))
        let failure = failure(dialogue.handle(reply("421 4.3.2 Service shutting down\r\n")))
        XCTAssertEqual(failure?.kind, .refused)
        XCTAssertEqual(failure?.step, .mailFrom)
    }

    func testDialogue_timeoutAtRCPT_namesTheStep() throws {
        var dialogue = try SMTPDialogue(configuration: configuration(.none))
        _ = dialogue.handle(.connected)
        for wire in ["220 mx ESMTP\r\n", "250 mx\r\n", "250 Ok\r\n"] { _ = dialogue.handle(reply(wire)) }
        let failure = failure(dialogue.handle(.timedOut))
        XCTAssertEqual(failure?.kind, .timeout)
        XCTAssertEqual(failure?.step, .rcptTo)
        XCTAssertEqual(failure?.message, "The mail server did not answer RCPT TO in time.")
    }

    func testDialogue_unreadableReplyOrEOF_failsAsProtocolNamingStep() throws {
        var dialogue = try SMTPDialogue(configuration: configuration(.none))
        _ = dialogue.handle(.connected)
        _ = dialogue.handle(reply("220 mx ESMTP\r\n"))
        var parser = SMTPReplyParser()
        XCTAssertThrowsError(try parser.replies(after: Array("HTTP/1.1 400 Bad Request\r\n".utf8))) { error in
            guard let error = error as? SMTPReplyError else { return XCTFail("\(error)") }
            let failure = failure(dialogue.handle(.unreadableReply(error)))
            XCTAssertEqual(failure?.kind, .protocol)
            XCTAssertEqual(failure?.step, .ehlo)
            XCTAssertTrue(failure?.message.contains("HTTP/1.1 400 Bad Request") == true, failure?.message ?? "")
        }

        var closed = try SMTPDialogue(configuration: configuration(.none))
        _ = closed.handle(.connected)
        XCTAssertEqual(failure(closed.handle(.connectionClosed))?.kind, .refused, "EOF before the greeting")
    }

    func testDialogue_plainTextAfterSTARTTLS220_failsAsTLS() throws {
        var dialogue = try SMTPDialogue(configuration: configuration(.startTLS))
        _ = dialogue.handle(.connected)
        _ = dialogue.handle(reply("220 mx ESMTP\r\n"))
        _ = dialogue.handle(reply("250-mx\r\n250 STARTTLS\r\n"))
        XCTAssertEqual(dialogue.handle(reply("220 Ready\r\n")), .startTLS)
        XCTAssertEqual(failure(dialogue.handle(reply("250 injected\r\n")))?.kind, .tls)
    }

    func testDialogue_messageLargerThanSIZE_failsBeforeMAIL() throws {
        var dialogue = try SMTPDialogue(configuration: configuration(.none))
        _ = dialogue.handle(.connected)
        _ = dialogue.handle(reply("220 mx ESMTP\r\n"))
        let failure = failure(dialogue.handle(reply("250-mx\r\n250 SIZE 10\r\n")))
        XCTAssertEqual(failure?.kind, .rejected)
        XCTAssertTrue(failure?.message.contains("more than the mail server accepts (10 bytes)") == true, failure?.message ?? "")
    }

    func testDialogue_ipAddressHost_sentAsAddressLiteral() throws {
        var config = configuration(.none)
        config.clientHostname = "192.0.2.10"
        var dialogue = try SMTPDialogue(configuration: config)
        _ = dialogue.handle(.connected)
        XCTAssertEqual(dialogue.handle(reply("220 mx ESMTP\r\n")), send("EHLO [192.0.2.10]\r\n"))
    }

    func testDialogue_recipientWithCRLF_refusedAtInit() {
        // "RCPT TO:<x@y>\r\nRCPT TO:<evil@z>": command injection through the address.
        for bad in ["x@y.example>\r\nRCPT TO:<evil@z.example", "no-at-sign", "a b@c.example", "josé@x.example"] {
            XCTAssertThrowsError(try SMTPDialogue(configuration: configuration(.none, recipients: [bad])), bad) { error in
                XCTAssertEqual((error as? SMTPFailure)?.kind, .configuration)
            }
        }
        XCTAssertThrowsError(try SMTPDialogue(configuration: configuration(.none, recipients: [])))
    }

    func testDialogue_authActionsInLogs_areRedacted() throws {
        var dialogue = try SMTPDialogue(configuration: configuration(.implicitTLS, credentials: .init(username: "user", password: "hunter2")))
        _ = dialogue.handle(.connected)
        _ = dialogue.handle(reply("220 smtp.example.com ESMTP\r\n"))
        let plain = dialogue.handle(reply("250-smtp.example.com\r\n250 AUTH PLAIN\r\n"))
        let encoded = "AHVzZXIAaHVudGVyMg=="        // base64("\0user\0hunter2")
        XCTAssertEqual(plain, secret("AUTH PLAIN \(encoded)\r\n"))
        var dumped = ""
        dump(plain, to: &dumped)
        for text in [plain.redactedDescription, "\(plain)", String(describing: plain), String(reflecting: plain), dumped] {
            XCTAssertFalse(text.contains(encoded), text)
            XCTAssertFalse(text.contains("hunter2"), text)
        }
        XCTAssertEqual(plain.redactedDescription, "send \"AUTH PLAIN <redacted>\"")
        XCTAssertEqual(secret("dXNlcg==\r\n").redactedDescription, "send <redacted credentials>")
        XCTAssertEqual(send("RCPT TO:<a@b.example>\r\n").redactedDescription, "send \"RCPT TO:<a@b.example>\"")

        let credentials = SMTPDialogue.Credentials(username: "user", password: "hunter2")
        var dumpedCredentials = ""
        dump(credentials, to: &dumpedCredentials)
        for text in ["\(credentials)", String(reflecting: credentials), dumpedCredentials] {
            XCTAssertFalse(text.contains("hunter2"), text)
        }
    }
}
