import Foundation
import PeekCrypto
import XCTest
@testable import PeekMail

final class MIMEMessageBuilderTests: XCTestCase {
    /// 2026-11-29 09:30:00 UTC, a Sunday.
    private let sundayMorning: Int64 = 1_795_944_600

    private func builder(subject: String = "Re: Printer jams [#1042]", body: String = "Hi Ana,\n\nPlease restart the printer.\n",
                         attachments: [MailAttachment] = []) -> MIMEMessageBuilder {
        MIMEMessageBuilder(
            from: MailAddress(name: "Sam Tech", address: "sam@peek.example.com"),
            to: MailAddress(name: "Ana Lopez", address: "ana@client.example"),
            subject: subject, bodyText: body,
            messageID: "r1.1042@peek.example.com", inReplyTo: "<CAF123@mail.gmail.com>",
            references: ["<orig@client.example>"], date: sundayMorning,
            attachments: attachments, boundary: "peek-b1")
    }

    private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    /// The unfolded value of the first `name:` field in the header section of `message`.
    private func headerLines(_ message: String, _ name: String) -> [String] {
        let header = message.components(separatedBy: "\r\n\r\n")[0]
        var lines: [String] = []
        for line in header.components(separatedBy: "\r\n") {
            if line.hasPrefix(name + ":") { lines = [line] } else if !lines.isEmpty && line.hasPrefix(" ") { lines.append(line) } else if !lines.isEmpty { break }
        }
        return lines
    }

    func testBuilder_asciiReply_exactBytes() throws {
        let message = text(try builder().build())
        XCTAssertEqual(message, """
            Date: Sun, 29 Nov 2026 09:30:00 +0000\r
            From: Sam Tech <sam@peek.example.com>\r
            To: Ana Lopez <ana@client.example>\r
            Subject: Re: Printer jams [#1042]\r
            Message-ID: <r1.1042@peek.example.com>\r
            In-Reply-To: <CAF123@mail.gmail.com>\r
            References: <orig@client.example> <CAF123@mail.gmail.com>\r
            MIME-Version: 1.0\r
            Content-Type: text/plain; charset=utf-8\r
            Content-Transfer-Encoding: quoted-printable\r
            \r
            Hi Ana,\r
            \r
            Please restart the printer.\r

            """)
    }

    func testBuilder_nonASCIISubject_encodedWordsSplitOnCharacters() throws {
        let subject = "Re: Café ☕️ — l’imprimante ne répond plus, même après redémarrage 🖨️🔥👩‍💻 [#1042]"
        let message = text(try builder(subject: subject).build())
        let lines = headerLines(message, "Subject")
        XCTAssertGreaterThan(lines.count, 1, "long enough to need folding")
        var decoded = ""
        for line in lines {
            XCTAssertLessThanOrEqual(line.utf8.count, 78, line)
            let words = line.replacingOccurrences(of: "Subject:", with: "").split(separator: " ")
            for word in words {
                XCTAssertLessThanOrEqual(word.count, 75, String(word))
                XCTAssertTrue(word.hasPrefix("=?UTF-8?B?") && word.hasSuffix("?="), String(word))
                // Each word alone is whole UTF-8: no character split across two words.
                let payload = word.dropFirst(10).dropLast(2)
                let bytes = try XCTUnwrap(Base64.decode(payload))
                let piece = try XCTUnwrap(String(validating: bytes, as: UTF8.self), "word \(word) splits a character")
                decoded += piece
            }
        }
        XCTAssertEqual(decoded, subject)
        // And our own decoder (used for inbound mail) reads it back the same.
        XCTAssertEqual(EncodedWord.decode(lines.joined(separator: "\r\n").replacingOccurrences(of: "\r\n", with: "").replacingOccurrences(of: "Subject: ", with: "")), subject)
    }

    func testBuilder_nonASCIIAndSpecialDisplayNames_encodedOrQuoted() throws {
        var reply = builder()
        reply.from = MailAddress(name: "José Pérez", address: "jose@peek.example.com")
        reply.to = MailAddress(name: "Lopez, Ana \"The Boss\"", address: "ana@client.example")
        let message = text(try reply.build())
        // base64("José Pérez") = Sm9zw6kgUMOpcmV6
        XCTAssertTrue(message.contains("\r\nFrom: =?UTF-8?B?Sm9zw6kgUMOpcmV6?= <jose@peek.example.com>\r\n"), message)
        // A comma is a special: the name is quoted, its quotes escaped.
        XCTAssertTrue(message.contains("\r\nTo: \"Lopez, Ana \\\"The Boss\\\"\" <ana@client.example>\r\n"), message)
    }

    func testBuilder_subjectWithCRLF_cannotInjectHeader() throws {
        let message = text(try builder(subject: "Hello\r\nBcc: everyone@example.com").build())
        XCTAssertTrue(message.contains("\r\nSubject: Hello  Bcc: everyone@example.com\r\n"), message)
        XCTAssertFalse(message.contains("\r\nBcc:"))
    }

    func testBuilder_longASCIISubject_foldedAt78AndUnfoldsBack() throws {
        let subject = "Re: " + Array(repeating: "the quarterly backup job failed again", count: 4).joined(separator: " ") + " [#1042]"
        let lines = headerLines(text(try builder(subject: subject).build()), "Subject")
        XCTAssertGreaterThan(lines.count, 1)
        XCTAssertTrue(lines.allSatisfy { $0.utf8.count <= 78 })
        XCTAssertEqual(String(lines.joined().dropFirst("Subject: ".count)), subject)
    }

    func testBuilder_quotedPrintableBody_escapesAndWraps() throws {
        let long = String(repeating: "0123456789", count: 10)       // 100 characters
        let body = "Café = 5€\nends with space \n\(long)\n.\n"
        let message = text(try builder(body: body).build())
        let encoded = message.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
        XCTAssertTrue(encoded.hasPrefix("Caf=C3=A9 =3D 5=E2=82=AC\r\nends with space=20\r\n"), encoded)
        // 100 characters: 75 and a soft break, then the other 25.
        XCTAssertTrue(encoded.contains("\r\n" + String(long.prefix(75)) + "=\r\n" + String(long.suffix(25)) + "\r\n.\r\n"), encoded)
        for line in encoded.components(separatedBy: "\r\n") { XCTAssertLessThanOrEqual(line.utf8.count, 76, line) }
        XCTAssertEqual(text(QuotedPrintable.decode(Array(encoded.utf8))), body.replacingOccurrences(of: "\n", with: "\r\n"))
    }

    func testQuotedPrintable_escapesAtLineEnd_neverPass76() {
        // Every byte escaped (3 columns each): breaks must fall between escapes.
        let bytes = [UInt8](repeating: 0xE9, count: 60)
        let encoded = String(decoding: QuotedPrintable.encode(bytes), as: UTF8.self)
        let lines = encoded.components(separatedBy: "\r\n")
        XCTAssertEqual(lines[0], String(repeating: "=E9", count: 25) + "=")
        XCTAssertTrue(lines.allSatisfy { $0.utf8.count <= 76 })
        XCTAssertEqual(QuotedPrintable.decode(Array(encoded.utf8)), bytes)
    }

    func testBuilder_withAttachments_multipartMixedWithBase64Parts() throws {
        let pdf = Array("%PDF-1.4\n".utf8) + (0..<200).map { UInt8($0) }
        let message = text(try builder(attachments: [
            MailAttachment(filename: "report.pdf", contentType: "application/pdf", bytes: pdf),
            MailAttachment(filename: "résumé.txt", contentType: "text/plain", bytes: Array("cv".utf8)),
        ]).build())

        XCTAssertTrue(message.contains("\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"peek-b1\"\r\n\r\n--peek-b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nHi Ana,\r\n"), message)
        XCTAssertTrue(message.contains("\r\n--peek-b1\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"), message)
        // RFC 2231: UTF-8, percent-encoded.
        XCTAssertTrue(message.contains("Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.txt\r\n"), message)
        XCTAssertTrue(message.hasSuffix("\r\n--peek-b1--\r\n"))

        let pdfPart = message.components(separatedBy: "filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")[1]
            .components(separatedBy: "\r\n--peek-b1")[0]
        let base64Lines = pdfPart.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        XCTAssertEqual(base64Lines.dropLast().map(\.utf8.count), Array(repeating: 76, count: base64Lines.count - 1))
        XCTAssertEqual(Base64.decode(base64Lines.joined()), pdf)

        // What we send, we can read: the inbound parser gets the same parts back.
        let parsed = try InboundMailParser().parse(Array(message.utf8))
        XCTAssertEqual(parsed.bodyText, "Hi Ana,\n\nPlease restart the printer.")
        XCTAssertEqual(parsed.attachments.map(\.filename), ["report.pdf", "résumé.txt"])
        XCTAssertEqual(parsed.attachments.first?.bytes, pdf)
        XCTAssertEqual(parsed.subject, "Re: Printer jams [#1042]")
        XCTAssertEqual(parsed.references, ["orig@client.example", "CAF123@mail.gmail.com"])
    }

    func testBuilder_longNonASCIIFilename_usesRFC2231Continuations() throws {
        let name = String(repeating: "información-", count: 8) + ".pdf"
        let message = text(try builder(attachments: [MailAttachment(filename: name, contentType: "application/pdf", bytes: [1])]).build())
        XCTAssertTrue(message.contains("filename*0*=utf-8''informaci%C3%B3n"), message)
        XCTAssertTrue(message.contains("filename*1*="), message)
        for line in message.components(separatedBy: "\r\n") { XCTAssertLessThanOrEqual(line.utf8.count, 78, line) }
        XCTAssertEqual(try InboundMailParser().parse(Array(message.utf8)).attachments.first?.filename, name)
    }

    func testBuilder_badInputs_throw() {
        var badAddress = builder()
        badAddress.to = MailAddress(name: nil, address: "ana@client.example>\r\nBcc: x@y")
        XCTAssertThrowsError(try badAddress.build())

        var badID = builder()
        badID.messageID = "no at sign"
        XCTAssertThrowsError(try badID.build()) { XCTAssertEqual($0 as? MIMEBuildError, .invalidMessageID("no at sign")) }

        var collision = builder(body: "quoting a boundary:\n--peek-b1\n", attachments: [MailAttachment(filename: "a", contentType: "text/plain", bytes: [])])
        XCTAssertThrowsError(try collision.build()) { XCTAssertEqual($0 as? MIMEBuildError, .boundaryInContent("peek-b1")) }
        collision.boundary = "=_peek_7f3a9c"
        XCTAssertNoThrow(try collision.build())
    }

    func testRFC5322Date_knownInstants() {
        XCTAssertEqual(RFC5322Date.format(unixSeconds: sundayMorning), "Sun, 29 Nov 2026 09:30:00 +0000")
        XCTAssertEqual(RFC5322Date.format(unixSeconds: 0), "Thu, 1 Jan 1970 00:00:00 +0000")
        XCTAssertEqual(RFC5322Date.format(unixSeconds: 951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000")
        XCTAssertEqual(RFC5322Date.format(unixSeconds: -1), "Wed, 31 Dec 1969 23:59:59 +0000")
        XCTAssertEqual(RFC5322Date.format(unixSeconds: 4_102_444_799), "Thu, 31 Dec 2099 23:59:59 +0000")
    }
}
