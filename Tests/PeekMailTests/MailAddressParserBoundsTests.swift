import XCTest
@testable import PeekMail

/// Address lists that used to hang the parser, or grow without bound.
final class MailAddressParserBoundsTests: XCTestCase {
    /// Issue 13: a ":" after an angle address matched no branch that consumed it, so
    /// the loop read an empty word forever and the phrase grew until memory ran out.
    func testColonAfterAngleAddress_terminatesAndKeepsTheMailbox() throws {
        XCTAssertEqual(try MailAddressParser.parseList("<a@b.c>:"), [MailAddress(address: "a@b.c")])
        XCTAssertEqual(try MailAddressParser.parseList("Ana <a@b.c>:::, bob@x.example"),
                       [MailAddress(name: "Ana", address: "a@b.c"), MailAddress(address: "bob@x.example")])
        let message = "From: <a@b.c>:\nTo: help@acme.test\nSubject: hi [#1001]\nMessage-ID: <x1@b.c>\n\nhello\n"
        let mail = try InboundMailParser().parse(InboundMailFixtures.crlf(message))
        XCTAssertEqual(mail.from, MailAddress(address: "a@b.c"))
        XCTAssertEqual(mail.bodyText, "hello")
    }

    func testMoreMailboxesThanTheLimit_refused() throws {
        let limits = InboundMailLimits(maxAddressesPerField: 3)
        XCTAssertEqual(try MailAddressParser.parseList("a@x.example, b@x.example, c@x.example", limits: limits).count, 3)
        XCTAssertThrowsError(try MailAddressParser.parseList("a@x.example, b@x.example, c@x.example, d@x.example", limits: limits)) {
            XCTAssertEqual($0 as? InboundMailError, .tooManyAddresses(limit: 3))
        }
        // Empty list entries are not mailboxes and do not count.
        XCTAssertEqual(try MailAddressParser.parseList(String(repeating: ",", count: 10_000) + "a@x.example", limits: limits).count, 1)
    }

    func testUnterminatedQuoteCommentOrAngle_runToTheEndOfTheField() throws {
        let long = String(repeating: "x", count: 256 * 1024)
        for opener in ["\"", "(", "<", "((((", "\\"] {
            _ = try MailAddressParser.parseList("Ana " + opener + long)    // returns: a hang would time the test out
        }
        XCTAssertEqual(try MailAddressParser.parseList("(unclosed comment a@b.c"), [])
        XCTAssertEqual(try MailAddressParser.parseList("Ana <ana@x.example"), [MailAddress(name: "Ana", address: "ana@x.example")])
    }

    func testEveryPunctuationAfterEveryToken_terminates() throws {
        // Each branch must consume: try each stop character after each kind of token.
        let tokens = ["<a@b.c>", "\"q\"", "(c)", "word", "a@b.c", ":", ";", ","]
        let stops = [":", ";", ",", "<", ">", "(", ")", "\"", "\\", "@", " ", "\t", "\r\n", ""]
        for token in tokens {
            for stop in stops {
                for second in tokens {
                    _ = try MailAddressParser.parseList(token + stop + second + stop)
                }
            }
        }
    }
}
