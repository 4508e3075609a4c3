import XCTest
@testable import PeekMail

/// Address lists that used to hang the parser, or grow without bound.
final class MailAddressParserBoundsTests: XCTestCase {
    /// Issue 13: a ":" after an angle address matched no branch that consumed it, so
    /// the loop read an empty word forever and the phrase grew until memory ran out.
    func testColonAfterAngleAddress_terminatesAndKeepsTheMailbox() throws {
        XCTAssertEqual(MailAddressParser.parseList("<a@b.c>:"), [MailAddress(address: "a@b.c")])
        XCTAssertEqual(MailAddressParser.parseList("Ana <a@b.c>:::, bob@x.example"),
                       [MailAddress(name: "Ana", address: "a@b.c"), MailAddress(address: "bob@x.example")])
        let message = "From: <a@b.c>:\nTo: help@acme.test\nSubject: hi [#1001]\nMessage-ID: <x1@b.c>\n\nhello\n"
        let mail = try InboundMailParser().parse(InboundMailFixtures.crlf(message))
        XCTAssertEqual(mail.from, MailAddress(address: "a@b.c"))
        XCTAssertEqual(mail.bodyText, "hello")
    }
}
