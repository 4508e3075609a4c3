import XCTest
@testable import PeekMail

final class MailThreadingTests: XCTestCase {
    func testTaggedSubject_plainSubject_getsReAndTag() {
        XCTAssertEqual(MailThreading.taggedSubject("Printer jams", ticketNumber: 1042), "Re: Printer jams [#1042]")
    }

    func testTaggedSubject_alreadyTagged_notTaggedTwice() {
        XCTAssertEqual(MailThreading.taggedSubject("Re: Printer jams [#1042]", ticketNumber: 1042), "Re: Printer jams [#1042]")
        XCTAssertEqual(MailThreading.taggedSubject("[#1042] Printer jams", ticketNumber: 1042), "Re: [#1042] Printer jams")
    }

    func testTaggedSubject_repeatedReplyPrefixes_collapseToOne() {
        XCTAssertEqual(MailThreading.taggedSubject("RE: re:Re[2]: Printer jams", ticketNumber: 7), "Re: Printer jams [#7]")
        // "Regarding" is not a prefix.
        XCTAssertEqual(MailThreading.taggedSubject("Regarding: invoices", ticketNumber: 7), "Re: Regarding: invoices [#7]")
    }

    func testTaggedSubject_empty_isJustTheTag() {
        XCTAssertEqual(MailThreading.taggedSubject("  ", ticketNumber: 7), "Re: [#7]")
    }

    func testTicketNumber_findsFirstWellFormedTag() {
        XCTAssertEqual(MailThreading.ticketNumber(fromSubject: "RE: Printer jams [#1042]"), 1042)
        XCTAssertEqual(MailThreading.ticketNumber(fromSubject: "[#abc] then [#12]"), 12)
        XCTAssertNil(MailThreading.ticketNumber(fromSubject: "Printer jams #1042"))
        XCTAssertNil(MailThreading.ticketNumber(fromSubject: "[#]"))
        XCTAssertNil(MailThreading.ticketNumber(fromSubject: "[#12"))
        XCTAssertNil(MailThreading.ticketNumber(fromSubject: "[#99999999999999999999999]"), "does not fit an Int")
    }

    func testBareMessageID_stripsBracketsAndValidates() {
        XCTAssertEqual(MailThreading.bareMessageID(" <abc@x.example> "), "abc@x.example")
        XCTAssertEqual(MailThreading.bareMessageID("abc@x.example"), "abc@x.example")
        XCTAssertNil(MailThreading.bareMessageID("<a b@x>"))
        XCTAssertNil(MailThreading.bareMessageID("<@x>"))
    }
}

/// A reply on a long ticket must stay a message its customer's answer can
/// come back through: quoting every Message-ID of 3,000 messages in
/// References made a field past the inbound parser's 64 KiB bound.
final class ReplyReferencesTests: XCTestCase {
    private let thread = (1...3_000).map { "T-1.\($0)@help.example" }

    func testReplyReferences_longThread_keepsRootAndNewest() {
        let kept = MailThreading.replyReferences(thread)
        XCTAssertEqual(kept.count, 20)
        XCTAssertEqual(kept.first, thread.first)
        XCTAssertEqual(Array(kept.dropFirst()), Array(thread.suffix(19)))
        XCTAssertEqual(MailThreading.replyReferences(Array(thread.prefix(5))), Array(thread.prefix(5)))
    }

    func testReplyOnLongThread_answerQuotingItsHeaders_isAccepted() throws {
        let reply = try MIMEMessageBuilder(
            from: MailAddress(name: "Ana", address: "help@help.example"), to: MailAddress(name: "Pat", address: "pat@x.example"),
            subject: "Re: VPN [#1]", bodyText: "Try again now.", messageID: "T-1.3001@help.example",
            inReplyTo: thread.last, references: MailThreading.replyReferences(thread), date: 1_796_000_000,
            boundary: "peek-b").build()
        // The customer's client answers with the reply's References plus its Message-ID.
        let text = String(decoding: reply, as: UTF8.self)
        let lines = text.components(separatedBy: "\r\n")
        let start = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("References:") })
        let folded = lines[(start + 1)...].prefix { $0.hasPrefix(" ") || $0.hasPrefix("\t") }
        let references = ([lines[start]] + folded).joined(separator: "\r\n")
        XCTAssertLessThan(references.utf8.count, 2_000)
        let answer = "From: Pat <pat@x.example>\r\nTo: help@help.example\r\nSubject: Re: VPN [#1]\r\n"
            + "Message-ID: <a1@x.example>\r\nIn-Reply-To: <T-1.3001@help.example>\r\n" + references + "\r\n\r\nThanks\r\n"
        let mail = try InboundMailParser().parse(Array(answer.utf8))
        XCTAssertTrue(mail.referencedMessageIDs.contains(thread[0]))
        XCTAssertTrue(mail.referencedMessageIDs.contains(thread[2_999]))
        XCTAssertTrue(mail.referencedMessageIDs.contains("T-1.3001@help.example"))
    }
}
