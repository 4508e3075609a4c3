import Foundation
import XCTest
@testable import PeekMail

final class InboundMailParserTests: XCTestCase {
    private typealias F = InboundMailFixtures
    private let parser = InboundMailParser()

    func testInbound_outlookAlternative_prefersPlainAndCutsOriginalMessage() throws {
        let mail = try parser.parse(F.crlf(F.outlook))
        XCTAssertEqual(mail.from, MailAddress(name: "Ana Lopez", address: "ana@client.example"))
        XCTAssertEqual(mail.to, [MailAddress(name: "Support", address: "support@peek.example.com")])
        XCTAssertEqual(mail.subject, "RE: Printer jams [#1042]")
        XCTAssertEqual(mail.ticketNumber, 1042)
        XCTAssertEqual(mail.messageID, "DB9PR01MB1234ABCD@DB9PR01MB1234.eurprd01.prod.exchangelabs.com")
        XCTAssertEqual(mail.inReplyTo, ["r1.1042@peek.example.com"])
        XCTAssertEqual(mail.dateText, "Sun, 29 Nov 2026 10:02:11 +0000")
        XCTAssertEqual(mail.bodyText, """
            Hi Sam,

            The printer still jams after the restart. It shows error E-204 on the front panel.

            Thanks,
            Ana
            """)
        XCTAssertTrue(mail.fullBodyText.contains("-----Original Message-----"))
        XCTAssertEqual(mail.attachments, [])
    }

    func testInbound_outlookHTMLOnly_convertsAndCutsFromSentBlock() throws {
        let mail = try parser.parse(F.crlf(F.outlookHTMLOnly))
        // 0x92 in Windows-1252 is a right single quote; &#8211; an en dash.
        XCTAssertEqual(mail.bodyText, "It\u{2019}s working again \u{2013} thanks!")
        XCTAssertTrue(mail.fullBodyText.contains("From: Sam Tech <sam@peek.example.com>\nSent: Sunday"), mail.fullBodyText)
    }

    func testInbound_gmail_cutsAttributionAndQuotes() throws {
        let mail = try parser.parse(F.crlf(F.gmail))
        XCTAssertEqual(mail.bodyText, "Still jams, I\u{2019}m afraid.")
        XCTAssertEqual(mail.messageID, "CAGx8=abc+def@mail.gmail.com")
        XCTAssertEqual(mail.ticketNumber, 1042)
    }

    func testInbound_gmailHTMLPart_blockquoteBecomesQuotedAndIsCut() throws {
        // The same Gmail message with its text/plain part removed.
        let htmlOnly = F.gmail.replacingOccurrences(
            of: #"(?s)--000000000000a1b2c3d4e5f60718\nContent-Type: text/plain.*?(?=--000000000000a1b2c3d4e5f60718\nContent-Type: text/html)"#,
            with: "", options: .regularExpression)
        XCTAssertFalse(htmlOnly.contains("text/plain"))
        let mail = try parser.parse(F.crlf(htmlOnly))
        XCTAssertEqual(mail.bodyText, "Still jams, I\u{2019}m afraid.")
        XCTAssertTrue(mail.fullBodyText.contains("> Please restart the printer."), mail.fullBodyText)
    }

    func testInbound_gmailAttributionWrappedOnTwoLines_stillCut() throws {
        let wrapped = F.gmail.replacingOccurrences(
            of: "On Sun, Nov 29, 2026 at 9:30 AM Ana <ana@x> wrote:",
            with: "On Sun, Nov 29, 2026 at 9:30 AM Peek Support via Helpdesk <\nsupport@peek.example.com> wrote:")
        XCTAssertEqual(try parser.parse(F.crlf(wrapped)).bodyText, "Still jams, I\u{2019}m afraid.")
    }

    func testInbound_appleMail_quotedPrintableDecodedAndHistoryCut() throws {
        let mail = try parser.parse(F.crlf(F.appleMail))
        XCTAssertEqual(mail.from, MailAddress(name: "Ana López", address: "ana@client.example"))
        XCTAssertEqual(mail.cc, [MailAddress(name: "Bob Martin", address: "bob@client.example")])
        XCTAssertEqual(mail.messageID, "5E4C1B2A-7D3F-4C1E-9A8B-0123456789AB@client.example")
        XCTAssertEqual(mail.references, ["r0.1042@peek.example.com", "r1.1042@peek.example.com"])
        XCTAssertEqual(mail.bodyText, """
            Hi Sam,

            I restarted it twice and the display now says \u{201C}Paper jam in tray 2\u{201D} even though the tray is empty. Could someone come by tomorrow morning?

            Ana
            """)
    }

    func testInbound_appleMailQuotedAttribution_trailingQuoteBlockCut() throws {
        // Newer Apple Mail quotes the attribution line too: "> On ... wrote:".
        let quoted = F.appleMail.replacingOccurrences(of: "\nOn 29 Nov 2026, at 09:30, Sam Tech <sam@peek.example.com> wrote:\n\n",
                                                      with: "\n> On 29 Nov 2026, at 09:30, Sam Tech <sam@peek.example.com> wrote:\n>=20\n")
        let mail = try parser.parse(F.crlf(quoted))
        XCTAssertTrue(mail.bodyText.hasSuffix("morning?\n\nAna"), mail.bodyText)
    }

    func testInbound_inlineAnswersBetweenQuotes_kept() throws {
        let message = """
            From: ana@client.example
            Subject: Re: Questions [#7]

            > Which model is it?
            HP LaserJet M404
            > Is it on the network?
            Yes, by cable.

            > Thanks

            """
        XCTAssertEqual(try parser.parse(F.crlf(message)).bodyText,
                       "> Which model is it?\nHP LaserJet M404\n> Is it on the network?\nYes, by cable.")
    }

    func testInbound_onlyQuotedText_keptWhole() throws {
        let message = "From: ana@client.example\nSubject: Fwd\n\n> Everything here is quoted\n> and nothing else\n"
        XCTAssertEqual(try parser.parse(F.crlf(message)).bodyText, "> Everything here is quoted\n> and nothing else")
    }

    func testInbound_encodedSubjects_latin1QAndSplitUTF8B() throws {
        let latin1 = try parser.parse(F.crlf("From: a@b.example\nSubject: =?ISO-8859-1?Q?Caf=E9?= machine [#1042]\n\nx\n"))
        XCTAssertEqual(latin1.subject, "Café machine [#1042]")
        XCTAssertEqual(latin1.ticketNumber, 1042)

        // "Café au lait" with "é" (C3 A9) split across two folded words: Q2Fmww== is
        // "Caf" + C3, qSBhdSBsYWl0 is A9 + " au lait". The folding space between the
        // words is dropped (RFC 2047 §6.2) and the bytes joined before decoding.
        let split = try parser.parse(F.crlf("From: a@b.example\nSubject: Re: =?UTF-8?B?Q2Fmww==?=\n =?UTF-8?B?qSBhdSBsYWl0?= now\n\nx\n"))
        XCTAssertEqual(split.subject, "Re: Café au lait now")

        // Windows-1252 0x80 is the euro sign; "_" is a space in Q.
        let euro = try parser.parse(F.crlf("From: a@b.example\nSubject: =?windows-1252?Q?Invoice_=80100?=\n\nx\n"))
        XCTAssertEqual(euro.subject, "Invoice €100")
    }

    func testEncodedWord_malformedWords_leftAsWritten() {
        XCTAssertEqual(EncodedWord.decode("=?UTF-8?X?abc?= and =?UTF-8?B?not base64!?="), "=?UTF-8?X?abc?= and =?UTF-8?B?not base64!?=")
        XCTAssertEqual(EncodedWord.decode("a =?UTF-8?Q?b?= c"), "a b c")
    }

    func testInbound_latin1EightBitBody_decoded() throws {
        let message = """
            From: =?iso-8859-1?q?Fran=E7ois?= <francois@client.example>
            Subject: Ecran noir [#2001]
            MIME-Version: 1.0
            Content-Type: text/plain; charset=ISO-8859-1
            Content-Transfer-Encoding: 8bit

            Bonjour, l'\u{E9}cran reste noir depuis ce matin.
            Merci d'avance,
            Fran\u{E7}ois

            """
        let bytes = F.latin1(message)
        XCTAssertTrue(bytes.contains(0xE9), "the fixture is raw 8-bit Latin-1, not UTF-8")
        let mail = try parser.parse(bytes)
        XCTAssertEqual(mail.from.name, "François")
        XCTAssertEqual(mail.bodyText, "Bonjour, l'écran reste noir depuis ce matin.\nMerci d'avance,\nFrançois")
    }

    func testInbound_undeclaredLatin1InUTF8Part_fallsBackToWindows1252() throws {
        let message = "From: a@b.example\nSubject: x\nContent-Type: text/plain; charset=utf-8\n\nna\u{EF}ve caf\u{E9}\n"
        XCTAssertEqual(try parser.parse(F.latin1(message)).bodyText, "naïve café")
    }

    func testInbound_base64Body_decoded() throws {
        // base64 of "Olá, o monitor não liga.\r\nObrigado\r\n" in UTF-8.
        let message = """
            From: Joana <joana@client.example>
            Subject: Monitor [#3003]
            Content-Type: text/plain; charset="utf-8"
            Content-Transfer-Encoding: base64

            T2zDoSwgbyBtb25pdG9yIG7Do28gbGlnYS4NCk9icmlnYWRv
            DQo=

            """
        XCTAssertEqual(try parser.parse(F.crlf(message)).bodyText, "Olá, o monitor não liga.\nObrigado")
    }

    func testInbound_htmlOnly_tagsStrippedEntitiesDecoded() throws {
        let message = """
            From: ana@client.example
            Subject: Scanner
            Content-Type: text/html; charset=utf-8

            <!DOCTYPE html><html><head><title>x</title><style>p { color: red; }</style>
            <script>alert("no")</script></head><body>
            <p>Hello&nbsp;Sam,</p>
            <p>The <b>printer</b> &amp; the   scanner
            fail with &quot;E-204&quot;.<br>Steps:</p>
            <ul><li>restart</li><li>unplug &lt;5 min&gt;</li></ul>
            <!-- a comment <p>hidden</p> -->
            <p>Thanks &#8212; Ana &#x1F600;</p>
            </body></html>

            """
        XCTAssertEqual(try parser.parse(F.crlf(message)).bodyText, """
            Hello Sam,

            The printer & the scanner fail with "E-204".
            Steps:

            - restart
            - unplug <5 min>

            Thanks — Ana 😀
            """)
    }

    func testInbound_noTagButInReplyTo_threadedByMessageIDs() throws {
        let message = """
            From: Ana Lopez <ana@client.example>
            To: support@peek.example.com
            Subject: Printer still broken
            Message-ID: <new-1@client.example>
            In-Reply-To: <r2.1042@peek.example.com>
            References: <orig@client.example>
             <r1.1042@peek.example.com> <r2.1042@peek.example.com>

            Any news?

            """
        let mail = try parser.parse(F.crlf(message))
        XCTAssertNil(mail.ticketNumber)
        XCTAssertEqual(mail.inReplyTo, ["r2.1042@peek.example.com"])
        XCTAssertEqual(mail.referencedMessageIDs, ["r2.1042@peek.example.com", "r1.1042@peek.example.com", "orig@client.example"])
        XCTAssertEqual(mail.bodyText, "Any news?")
    }

    func testInbound_mixedWithAttachments_filenamesDecoded() throws {
        // Gmail-style encoded-word filename ("Relatório mensal.pdf"), an RFC 2231 one,
        // a path-traversal name, and a part with no name at all.
        let message = """
            From: ana@client.example
            Subject: Logs [#1042]
            Content-Type: multipart/mixed; boundary="mix"

            preamble, ignored
            --mix
            Content-Type: multipart/alternative; boundary="alt"

            --alt
            Content-Type: text/plain; charset=utf-8

            Logs attached.
            --alt
            Content-Type: text/html; charset=utf-8

            <p>Logs attached (html).</p>
            --alt--

            --mix
            Content-Type: application/pdf; name="=?UTF-8?B?UmVsYXTDs3JpbyBtZW5zYWwucGRm?="
            Content-Disposition: attachment; filename="=?UTF-8?B?UmVsYXTDs3JpbyBtZW5zYWwucGRm?="
            Content-Transfer-Encoding: base64

            JVBERi0xLjQK
            --mix
            Content-Type: text/plain
            Content-Disposition: attachment;
             filename*0*=utf-8''%C3%A9v%C3%A9nements;
             filename*1=".log"

            line 1
            --mix
            Content-Type: image/png
            Content-Disposition: attachment; filename="../../etc/passwd"
            Content-Transfer-Encoding: base64

            iVBORw0KGgo=
            --mix
            Content-Type: application/octet-stream
            Content-Transfer-Encoding: base64

            AAEC
            --mix--
            epilogue, ignored

            """
        let mail = try parser.parse(F.crlf(message))
        XCTAssertEqual(mail.bodyText, "Logs attached.")
        XCTAssertEqual(mail.attachments.map(\.filename), ["Relatório mensal.pdf", "événements.log", "passwd", "attachment-4"])
        XCTAssertEqual(mail.attachments.map(\.contentType), ["application/pdf", "text/plain", "image/png", "application/octet-stream"])
        XCTAssertEqual(mail.attachments[0].bytes, Array("%PDF-1.4\n".utf8))
        XCTAssertEqual(mail.attachments[1].bytes, Array("line 1".utf8))
        XCTAssertEqual(mail.attachments[2].bytes, [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])   // PNG signature
        XCTAssertEqual(mail.attachments[3].bytes, [0, 1, 2])
    }

    func testInbound_relatedHTMLWithInlineImage_imageIsInlineAttachment() throws {
        let message = """
            From: ana@client.example
            Subject: Screenshot
            Content-Type: multipart/related; boundary="rel"; type="text/html"

            --rel
            Content-Type: text/html; charset=utf-8

            <div>See the error:<br><img src="cid:shot1@client.example"></div>
            --rel
            Content-Type: image/png
            Content-ID: <shot1@client.example>
            Content-Transfer-Encoding: base64

            iVBORw0KGgo=
            --rel--

            """
        let mail = try parser.parse(F.crlf(message))
        XCTAssertEqual(mail.bodyText, "See the error:")
        XCTAssertEqual(mail.attachments.count, 1)
        XCTAssertEqual(mail.attachments.first?.contentID, "shot1@client.example")
        XCTAssertEqual(mail.attachments.first?.isInline, true)
        XCTAssertEqual(mail.attachments.first?.filename, "attachment-1.png")
    }

    func testInbound_formatFlowed_paragraphsRejoined() throws {
        let message = """
            From: ana@client.example
            Subject: Flowed
            Content-Type: text/plain; charset=utf-8; format=flowed; delsp=no

            This paragraph was wrapped by the sender\u{20}
            at seventy-two columns and should read\u{20}
            as one line.

            --\u{20}
            Ana

            """
        XCTAssertEqual(try parser.parse(F.crlf(message)).bodyText,
                       "This paragraph was wrapped by the sender at seventy-two columns and should read as one line.\n\n-- \nAna")
    }

    func testInbound_bareLFAndMboxFromLine_accepted() throws {
        let message = "From ana@client.example Sun Nov 29 10:00:00 2026\nFrom: ana@client.example\nSubject: lf only\n\nbody\n"
        let mail = try parser.parse(Array(message.utf8))
        XCTAssertEqual(mail.subject, "lf only")
        XCTAssertEqual(mail.bodyText, "body")
    }

    func testInbound_addressForms_parsed() throws {
        let message = """
            From: "L\\"opez, Ana" (Support) <ana@client.example>
            To: undisclosed-recipients:;
            Cc: bob@client.example (Bob Martin), =?UTF-8?B?Sm9zw6kgUMOpcmV6?= <jose@x.example>,
             Team: c@x.example, d@x.example;
            Reply-To: <replies@client.example>
            Subject: x

            x

            """
        let mail = try parser.parse(F.crlf(message))
        XCTAssertEqual(mail.from, MailAddress(name: "L\"opez, Ana", address: "ana@client.example"))
        XCTAssertEqual(mail.to, [])
        XCTAssertEqual(mail.cc, [
            MailAddress(name: "Bob Martin", address: "bob@client.example"),
            MailAddress(name: "José Pérez", address: "jose@x.example"),
            MailAddress(name: nil, address: "c@x.example"),
            MailAddress(name: nil, address: "d@x.example"),
        ])
        XCTAssertEqual(mail.replyTo, [MailAddress(name: nil, address: "replies@client.example")])
    }

    func testInbound_garbage_throwsWithSentence() {
        let cases: [([UInt8], InboundMailError)] = [
            ([], .empty),
            (Array(" \r\n\r\n".utf8), .empty),
            ([0x00, 0x01, 0xFF, 0x7F, 0x0A, 0x41], .notAMessage),               // binary junk
            (Array("Hello, this is not an email\nat all\n".utf8), .notAMessage),
            (Array(" folded: first\n".utf8), .notAMessage),                       // continuation before any field
            (Array("{\"type\":\"hello\"}".utf8), .notAMessage),                   // JSON sent to the wrong endpoint
            (Array("Subject: no sender\n\nbody\n".utf8), .missingFrom),
            (Array("From: not an address\nSubject: x\n\nbody\n".utf8), .missingFrom),
        ]
        for (bytes, expected) in cases {
            XCTAssertThrowsError(try parser.parse(bytes), "\(bytes)") { error in
                XCTAssertEqual(error as? InboundMailError, expected, "\(bytes)")
                XCTAssertTrue((error as? InboundMailError)?.message.hasSuffix(".") == true)
            }
        }
    }

    func testInbound_limits_enforced() {
        let small = InboundMailParser(limits: .init(maxMessageBytes: 100))
        XCTAssertThrowsError(try small.parse(F.crlf(F.outlook))) {
            XCTAssertEqual($0 as? InboundMailError, .tooLarge(limitBytes: 100))
        }

        let shallow = InboundMailParser(limits: .init(maxDepth: 1))
        let nested = """
            From: a@b.example
            Content-Type: multipart/mixed; boundary="a"

            --a
            Content-Type: multipart/mixed; boundary="b"

            --b
            Content-Type: multipart/mixed; boundary="c"

            --c

            deep
            --c--
            --b--
            --a--

            """
        XCTAssertThrowsError(try shallow.parse(F.crlf(nested))) { XCTAssertEqual($0 as? InboundMailError, .tooDeep(limit: 1)) }
        XCTAssertEqual(try parser.parse(F.crlf(nested)).bodyText, "deep")

        let fewParts = InboundMailParser(limits: .init(maxParts: 3))
        XCTAssertThrowsError(try fewParts.parse(F.crlf(nested))) { XCTAssertEqual($0 as? InboundMailError, .tooManyParts(limit: 3)) }

        let tinyHeader = InboundMailParser(limits: .init(maxHeaderBytes: 64))
        XCTAssertThrowsError(try tinyHeader.parse(F.crlf("From: a@b.example\nX-Long: " + String(repeating: "x", count: 100) + "\n\nbody"))) {
            XCTAssertEqual($0 as? InboundMailError, .headerTooLarge(limitBytes: 64))
        }
    }

    func testInbound_unterminatedMultipart_lastPartKept() throws {
        let message = "From: a@b.example\nContent-Type: multipart/mixed; boundary=\"x\"\n\n--x\nContent-Type: text/plain\n\ncut off here"
        XCTAssertEqual(try parser.parse(F.crlf(message)).bodyText, "cut off here")
    }
}
