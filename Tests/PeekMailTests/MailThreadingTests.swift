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
