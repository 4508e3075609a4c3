import XCTest
@testable import PeekMail

final class SMTPReplyParserTests: XCTestCase {
    /// A Postfix answer to EHLO: four continuation lines ("250-") and the last ("250 ").
    private let ehloReply = Array("250-mail.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n".utf8)
    private let ehloLines = ["mail.example.com", "PIPELINING", "SIZE 10240000", "STARTTLS", "AUTH PLAIN LOGIN"]

    func testReplyParser_singleLine_returnsCodeAndText() throws {
        var parser = SMTPReplyParser()
        let replies = try parser.replies(after: Array("220 mx.example.com ESMTP Postfix\r\n".utf8))
        XCTAssertEqual(replies, [SMTPReply(code: 220, lines: ["mx.example.com ESMTP Postfix"])])
        XCTAssertFalse(replies[0].isMultiline)
        XCTAssertEqual(replies[0].text, "220 mx.example.com ESMTP Postfix")
    }

    func testReplyParser_multilineSplitAtEveryByte_returnsOneReply() throws {
        for split in 0...ehloReply.count {
            var parser = SMTPReplyParser()
            var replies = try parser.replies(after: ehloReply[..<split])
            if split < ehloReply.count { XCTAssertEqual(replies, [], "split at \(split)") }
            replies += try parser.replies(after: ehloReply[split...])
            XCTAssertEqual(replies.count, 1, "split at \(split)")
            XCTAssertEqual(replies.first?.code, 250)
            XCTAssertEqual(replies.first?.lines, ehloLines, "split at \(split)")
            XCTAssertEqual(replies.first?.isMultiline, true)
            XCTAssertFalse(parser.hasUnconsumedInput)
        }
    }

    func testReplyParser_multilineFedByteByByte_returnsReplyOnlyAfterLastLine() throws {
        var parser = SMTPReplyParser()
        var seen: [SMTPReply] = []
        for (index, byte) in ehloReply.enumerated() {
            let replies = try parser.replies(after: [byte])
            if index < ehloReply.count - 1 { XCTAssertEqual(replies, [], "byte \(index)") }
            seen += replies
        }
        XCTAssertEqual(seen.map(\.lines), [ehloLines])
    }

    func testReplyParser_twoRepliesInOneRead_returnsBothInOrder() throws {
        var parser = SMTPReplyParser()
        let replies = try parser.replies(after: Array("250 2.1.0 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n".utf8))
        XCTAssertEqual(replies.map(\.code), [250, 354])
        XCTAssertEqual(replies[1].lines, ["End data with <CR><LF>.<CR><LF>"])
    }

    func testReplyParser_bareCodeAndBareLF_accepted() throws {
        var parser = SMTPReplyParser()
        // "250" with no text (RFC 5321 allows it), then a line ended by LF alone.
        let replies = try parser.replies(after: Array("250\r\n221 bye\n".utf8))
        XCTAssertEqual(replies, [SMTPReply(code: 250, lines: [""]), SMTPReply(code: 221, lines: ["bye"])])
        XCTAssertEqual(replies[0].text, "250")
    }

    func testReplyParser_lineAtLimit_accepted() throws {
        var parser = SMTPReplyParser()
        let text = String(repeating: "x", count: 4096 - 4)    // "250 " + text = 4096 bytes
        let replies = try parser.replies(after: Array("250 \(text)\r\n".utf8))
        XCTAssertEqual(replies.first?.lines, [text])
    }

    func testReplyParser_unterminatedLineOverLimit_throwsLineTooLong() {
        var parser = SMTPReplyParser()
        // 4097 bytes and no LF yet: refused before the buffer can grow further.
        let bytes = Array("250 ".utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: 4093)
        XCTAssertThrowsError(try parser.replies(after: bytes)) { error in
            XCTAssertEqual(error as? SMTPReplyError, .lineTooLong(limit: 4096))
        }
        // Sticky: the stream cannot be framed any more.
        XCTAssertThrowsError(try parser.replies(after: Array("\r\n250 ok\r\n".utf8)))
    }

    func testReplyParser_hundredLines_acceptedButHundredAndOne_rejected() throws {
        var accepted = SMTPReplyParser()
        let ninetyNine = String(repeating: "250-x\r\n", count: 99) + "250 last\r\n"
        XCTAssertEqual(try accepted.replies(after: Array(ninetyNine.utf8)).first?.lines.count, 100)

        var rejected = SMTPReplyParser()
        let hundred = String(repeating: "250-x\r\n", count: 100) + "250 last\r\n"
        XCTAssertThrowsError(try rejected.replies(after: Array(hundred.utf8))) { error in
            XCTAssertEqual(error as? SMTPReplyError, .tooManyLines(limit: 100))
        }
    }

    func testReplyParser_notAReply_throwsMalformed() {
        for garbage in ["HTTP/1.1 400 Bad Request\r\n", "25\r\n", "250x\r\n", "650 six\r\n", "250-a\r\n550 b\r\n"] {
            var parser = SMTPReplyParser()
            XCTAssertThrowsError(try parser.replies(after: Array(garbage.utf8)), garbage) { error in
                guard case .malformed = error as? SMTPReplyError else { return XCTFail("\(error)") }
            }
        }
    }

    func testReplyParser_bytesAfterReply_reportedAsUnconsumed() throws {
        var parser = SMTPReplyParser()
        // A STARTTLS answer followed by plain text injected before the handshake.
        let replies = try parser.replies(after: Array("220 2.0.0 Ready to start TLS\r\n250 injected".utf8))
        XCTAssertEqual(replies.map(\.code), [220])
        XCTAssertTrue(parser.hasUnconsumedInput)
    }
}
