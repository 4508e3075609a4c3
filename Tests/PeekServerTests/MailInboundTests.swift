import Foundation
import XCTest
import PeekCore
import PeekTestSupport

/// POST /v1/inbound-email: the mail gateway hands over raw messages as the
/// big clients write them; each lands on its ticket as a customer message
/// without the quoted history, or is refused with 422 and nothing stored.
final class MailInboundTests: XCTestCase {
    /// Raw message text written with "\n"; the wire form has CRLF.
    private func crlf(_ text: String) -> [UInt8] { Array(text.replacingOccurrences(of: "\n", with: "\r\n").utf8) }

    /// The tenant's own route (threading and de-duplication within acme);
    /// `global` posts to /v1/inbound-email, which finds the tenant by recipient.
    private func post(_ h: MailHarness, _ raw: [UInt8], service: Bool = true, global: Bool = false) throws -> TestServer.Response {
        try h.server.request("POST", global ? "/v1/inbound-email" : "/v1/tenants/acme/inbound-email", body: raw,
                             contentType: "message/rfc822", service: service)
    }

    /// Posts `raw`, expects 201 on the harness ticket, and checks that the
    /// viewer `b` receives exactly that message as the next durable delta.
    private func assertStored(_ h: MailHarness, _ raw: [UInt8], body: String, authorName: String, authorID: String, global: Bool = false,
                              file: StaticString = #filePath, line: UInt = #line) throws {
        let before = try h.server.storedTicket(h.ticket)
        let r = try post(h, raw, global: global)
        XCTAssertEqual(r.status, 201, r.text, file: file, line: line)
        XCTAssertEqual(r.json?["ticket"]?.stringValue, h.ticket, file: file, line: line)
        XCTAssertEqual(r.json?["seq"]?.intValue, before.seq + 1, file: file, line: line)
        let delta = try h.nextDurable(h.b)
        XCTAssertEqual(delta["kind"]?.stringValue, "message.created", file: file, line: line)
        XCTAssertEqual(delta["seq"]?.intValue, before.seq + 1, file: file, line: line)
        let data = delta["data"]
        XCTAssertEqual(data?["channel"]?.stringValue, "customer", file: file, line: line)
        XCTAssertEqual(data?["via"]?.stringValue, "email", file: file, line: line)
        XCTAssertEqual(data?["body"]?.stringValue, body, file: file, line: line)
        XCTAssertEqual(data?["author"]?["name"]?.stringValue, authorName, file: file, line: line)
        XCTAssertEqual(data?["author"]?["id"]?.stringValue, authorID, file: file, line: line)
        XCTAssertEqual(r.json?["message"]?["body"]?.stringValue, body, file: file, line: line)
        let stored = try h.server.storedTicket(h.ticket)
        XCTAssertEqual(stored.messages.count, before.messages.count + 1, file: file, line: line)
        XCTAssertEqual(stored.messages.last?["body"]?.stringValue, body, file: file, line: line)
        XCTAssertEqual(stored.messages.last?["channel"]?.stringValue, "customer", file: file, line: line)
    }

    /// Posts `raw`, expects 422 with an error body, and nothing stored or fanned out.
    private func assertRefused(_ h: MailHarness, _ raw: [UInt8], file: StaticString = #filePath, line: UInt = #line) throws -> JSONValue? {
        let before = try h.server.storedTicket(h.ticket)
        let r = try post(h, raw)
        XCTAssertEqual(r.status, 422, r.text, file: file, line: line)
        let error = r.json?["error"]
        XCTAssertNotNil(error?["code"]?.stringValue, r.text, file: file, line: line)
        XCTAssertFalse((error?["message"]?.stringValue ?? "").isEmpty, r.text, file: file, line: line)
        try h.assertNothingStored(since: before.seq, messages: before.messages.count, file: file, line: line)
        return error
    }

    func testInbound_gmailReplyWithTag_storedWithoutQuotedHistoryAndDelivered() throws {
        let h = try MailHarness(smtp: nil, account: nil)
        defer { h.stop() }
        // Gmail: multipart/alternative, QP UTF-8 (a curly apostrophe), the
        // "On ... wrote:" attribution and "> " quotes below the answer.
        let raw = crlf("""
            MIME-Version: 1.0
            References: <unknown.1@peek.example>
            In-Reply-To: <unknown.1@peek.example>
            From: Casey Customer <customer@example.com>
            Date: Sun, 29 Nov 2026 10:05:42 +0100
            Message-ID: <CAGx8=abc+def@mail.gmail.com>
            Subject: Re: Printer jams [#\(h.number)]
            To: Support <support@acme.example>
            Content-Type: multipart/alternative; boundary="000000000000a1b2c3d4e5f60718"

            --000000000000a1b2c3d4e5f60718
            Content-Type: text/plain; charset="UTF-8"
            Content-Transfer-Encoding: quoted-printable

            Still jams, I=E2=80=99m afraid.
            It shows E-204.

            On Sun, Nov 29, 2026 at 9:30 AM Tech 1 <support@acme.example> wrote:

            > Hi Casey,
            >
            > Please restart the printer.
            >

            --000000000000a1b2c3d4e5f60718
            Content-Type: text/html; charset="UTF-8"
            Content-Transfer-Encoding: quoted-printable

            <div dir=3D"ltr">Still jams, I=E2=80=99m afraid.<br>It shows E-204.</div><br><div class=3D"gmai=
            l_quote"><div dir=3D"ltr" class=3D"gmail_attr">On Sun, Nov 29, 2026 at 9:30=
             AM Tech 1 &lt;support@acme.example&gt; wrote:<br></div><blockquo=
            te class=3D"gmail_quote">Hi Casey,<br><br>Please restart the printer.<br></blockquote></div>

            --000000000000a1b2c3d4e5f60718--

            """)
        try assertStored(h, raw, body: "Still jams, I\u{2019}m afraid.\nIt shows E-204.", authorName: "Casey Customer",
                         authorID: "customer@example.com")
    }

    func testInbound_outlookMultipartAlternative_plainPartWithoutOriginalMessage() throws {
        let h = try MailHarness(smtp: nil, account: nil)
        defer { h.stop() }
        // Outlook (Microsoft 365): text/plain first, QP with a soft break,
        // tab-folded Content-Type, "-----Original Message-----" history.
        let raw = crlf("""
            Received: from DB9PR01MB1234.eurprd01.prod.exchangelabs.com (2603:10a6:10:1::1) by
             AM0PR01MB5678.eurprd01.prod.exchangelabs.com with HTTPS; Sun, 29 Nov 2026 10:02:12 +0000
            From: Ana Lopez <ana@client.example>
            To: Support <support@acme.example>
            Subject: RE: Printer jams [#\(h.number)]
            Thread-Topic: Printer jams [#\(h.number)]
            Date: Sun, 29 Nov 2026 10:02:11 +0000
            Message-ID: <DB9PR01MB1234ABCD@DB9PR01MB1234.eurprd01.prod.exchangelabs.com>
            Accept-Language: en-US
            X-MS-Has-Attach:
            Content-Type: multipart/alternative;
            \tboundary="_000_DB9PR01MB1234ABCD_"
            MIME-Version: 1.0

            --_000_DB9PR01MB1234ABCD_
            Content-Type: text/plain; charset="us-ascii"
            Content-Transfer-Encoding: quoted-printable

            Hi,

            The printer still jams after the restart. It shows error E-204 on the front=
             panel.

            Thanks,
            Ana

            -----Original Message-----
            From: Tech 1 <support@acme.example>=20
            Sent: Sunday, November 29, 2026 9:30 AM
            To: Ana Lopez <ana@client.example>
            Subject: Re: Printer jams [#\(h.number)]

            Please restart the printer.

            --_000_DB9PR01MB1234ABCD_
            Content-Type: text/html; charset="us-ascii"
            Content-Transfer-Encoding: quoted-printable

            <html><body><p class=3D"MsoNormal">The printer sti=
            ll jams (HTML part).</p></body></html>

            --_000_DB9PR01MB1234ABCD_--

            """)
        try assertStored(h, raw,
                         body: "Hi,\n\nThe printer still jams after the restart. It shows error E-204 on the front panel.\n\nThanks,\nAna",
                         authorName: "Ana Lopez", authorID: "ana@client.example")
    }

    func testInbound_latin1EncodedSubjectAndName_tagFoundAfterDecoding() throws {
        let h = try MailHarness(smtp: nil, account: nil)
        defer { h.stop() }
        // The tag sits inside an ISO-8859-1 Q-encoded word, and the body is
        // 8-bit Latin-1: "é" is the single byte 0xE9.
        let head = crlf("""
            From: =?ISO-8859-1?Q?Ren=E9e_Dupont?= <renee@client.example>
            To: support@acme.example
            Subject: =?ISO-8859-1?Q?R=E9p=2E_:_imprimante_bloqu=E9e_[#\(h.number)]?=
            Date: Sun, 29 Nov 2026 11:00:00 +0100
            Message-ID: <20261129110000.4711@client.example>
            MIME-Version: 1.0
            Content-Type: text/plain; charset=ISO-8859-1
            Content-Transfer-Encoding: 8bit


            """)
        let body: [UInt8] = Array("L'imprimante est toujours bloqu".utf8) + [0xE9] + Array("e apr".utf8) + [0xE8]
            + Array("s le red".utf8) + [0xE9] + Array("marrage.\r\n".utf8)
        try assertStored(h, head + body, body: "L'imprimante est toujours bloquée après le redémarrage.",
                         authorName: "Renée Dupont", authorID: "renee@client.example")
    }

    func testInbound_unknownTicketNumber_422AndNothingStored() throws {
        let h = try MailHarness(smtp: nil, account: nil)
        defer { h.stop() }
        let raw = crlf("""
            From: Casey Customer <customer@example.com>
            To: support@acme.example
            Subject: Re: Printer jams [#\(h.number + 9000)]
            Message-ID: <nope.1@example.com>
            Content-Type: text/plain; charset=utf-8

            Is anyone there?

            """)
        let error = try assertRefused(h, raw)
        XCTAssertEqual(error?["code"]?.stringValue, "not_found")
    }

    func testInbound_garbageAndMessagesWithoutFrom_422AndNothingStored() throws {
        let h = try MailHarness(smtp: nil, account: nil)
        defer { h.stop() }
        // Not a message at all: binary bytes, then a text line without a header field.
        let binary: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D]
        XCTAssertEqual(try assertRefused(h, binary)?["code"]?.stringValue, "invalid")
        XCTAssertEqual(try assertRefused(h, crlf("just some words\nwithout any header\n"))?["code"]?.stringValue, "invalid")
        // Headers, but no sender to attribute it to, though the tag is right.
        let noFrom = crlf("Subject: Re: Printer jams [#\(h.number)]\nTo: support@acme.example\n\nHello\n")
        XCTAssertEqual(try assertRefused(h, noFrom)?["code"]?.stringValue, "invalid")
        // Whitespace only.
        XCTAssertEqual(try assertRefused(h, crlf("\n\n  \n"))?["code"]?.stringValue, "invalid")
        // And the API needs the service token.
        let before = try h.server.storedTicket(h.ticket)
        XCTAssertEqual(try post(h, crlf("From: a@b.example\nSubject: [#\(h.number)]\n\nhi\n"), service: false).status, 401)
        XCTAssertEqual(try h.server.storedTicket(h.ticket).seq, before.seq)
        XCTAssertFalse(try h.server.storedTicket(h.ticket).messages.contains { $0["channel"]?.stringValue == "customer" })
    }

    func testInbound_inReplyToOurSentMessageID_threadedWithoutTag() throws {
        let h = try MailHarness()
        defer { h.stop() }
        let smtp = try XCTUnwrap(h.smtp)
        // A second ticket, so threading has a wrong answer to give.
        let other = try h.server.createTicket(subject: "Another thing")
        try h.sendReply(id: "r1", body: "Please restart the printer.")
        XCTAssertEqual(try h.answer(id: "r1")["type"]?.stringValue, "result")
        XCTAssertEqual(try h.nextDurable(h.b)["kind"]?.stringValue, "message.created")
        XCTAssertEqual(try h.nextDurable(h.b)["kind"]?.stringValue, "ticket.updated")
        let sentID = try XCTUnwrap(try ParsedMail(smtp.waitForEnvelopes(1)[0].data).header("Message-ID"))

        // The customer's client dropped the tag; only In-Reply-To ties it to our mail.
        let raw = crlf("""
            From: Casey Customer <customer@example.com>
            To: support@acme.example
            Subject: Re: Printer jams
            Message-ID: <reply.42@example.com>
            In-Reply-To: \(sentID)
            References: <something.else@example.com> \(sentID)
            Content-Type: text/plain; charset=utf-8

            Restarted, works now.

            """)
        try assertStored(h, raw, body: "Restarted, works now.", authorName: "Casey Customer", authorID: "customer@example.com")
        XCTAssertEqual(try h.server.storedTicket(other.id).messages.count, 0)

        // A reply to the customer's own mail threads through its stored Message-ID.
        let followUp = crlf("""
            From: Casey Customer <customer@example.com>
            Subject: one more thing
            Message-ID: <reply.43@example.com>
            References: <reply.42@example.com>
            Content-Type: text/plain; charset=utf-8

            It jammed again.

            """)
        try assertStored(h, followUp, body: "It jammed again.", authorName: "Casey Customer", authorID: "customer@example.com")

        // A tag naming no ticket does not stop threading by In-Reply-To.
        let wrongTag = crlf("""
            From: Casey Customer <customer@example.com>
            Subject: Re: Printer jams [#\(h.number + 9000)]
            In-Reply-To: \(sentID)
            Content-Type: text/plain; charset=utf-8

            Third time lucky.

            """)
        try assertStored(h, wrongTag, body: "Third time lucky.", authorName: "Casey Customer", authorID: "customer@example.com")
    }

    func testInbound_sameMessageIDTwice_storedOnceAndTheRetryGetsTheFirstAnswer() throws {
        let h = try MailHarness()
        defer { h.stop() }
        let smtp = try XCTUnwrap(h.smtp)
        let raw = crlf("""
            From: Casey Customer <customer@example.com>
            Subject: Re: Printer jams [#\(h.number)]
            Message-ID: <retry.7@example.com>
            Content-Type: text/plain; charset=utf-8

            Jammed again this morning.

            """)
        try assertStored(h, raw, body: "Jammed again this morning.", authorName: "Casey Customer", authorID: "customer@example.com")
        let first = try h.server.storedTicket(h.ticket)

        // The gateway never heard the 201 and posts the very same message.
        let again = try post(h, raw)
        XCTAssertEqual(again.status, 200, again.text)
        XCTAssertEqual(again.json?["ticket"]?.stringValue, h.ticket)
        XCTAssertEqual(again.json?["seq"]?.intValue, first.seq)
        XCTAssertEqual(again.json?["message"]?["id"]?.stringValue, first.messages.last?["id"]?.stringValue)
        XCTAssertEqual(again.json?["message"]?["body"]?.stringValue, "Jammed again this morning.")
        try h.assertNothingStored(since: first.seq, messages: first.messages.count)

        // Our own sent reply coming back through the gateway is not a customer message either.
        try h.sendReply(id: "r1", body: "Please restart the printer.")
        XCTAssertEqual(try h.answer(id: "r1")["type"]?.stringValue, "result")
        XCTAssertEqual(try h.nextDurable(h.b)["kind"]?.stringValue, "message.created")
        XCTAssertEqual(try h.nextDurable(h.b)["kind"]?.stringValue, "ticket.updated")
        let sent = try smtp.waitForEnvelopes(1)[0].data
        let afterReply = try h.server.storedTicket(h.ticket)
        let echoed = try post(h, sent)
        XCTAssertEqual(echoed.status, 200, echoed.text)
        XCTAssertEqual(echoed.json?["message"]?["channel"]?.stringValue, "technician")
        try h.assertNothingStored(since: afterReply.seq, messages: afterReply.messages.count)
    }

    func testInbound_withPDFAttachment_storedAndDownloadable() throws {
        let h = try MailHarness(smtp: nil, account: nil)
        defer { h.stop() }
        let pdf = Array("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n".utf8)
        let raw = crlf("""
            From: Casey Customer <customer@example.com>
            To: support@acme.example
            Subject: Re: Printer jams [#\(h.number)]
            Message-ID: <with-attachment.1@example.com>
            MIME-Version: 1.0
            Content-Type: multipart/mixed; boundary="mixed-boundary-1"

            --mixed-boundary-1
            Content-Type: text/plain; charset=utf-8

            The error report is attached.

            --mixed-boundary-1
            Content-Type: application/pdf; name="report.pdf"
            Content-Disposition: attachment; filename="report.pdf"
            Content-Transfer-Encoding: base64

            \(Data(pdf).base64EncodedString(options: .lineLength76Characters).replacingOccurrences(of: "\r\n", with: "\n"))
            --mixed-boundary-1--

            """)
        let r = try post(h, raw)
        XCTAssertEqual(r.status, 201, r.text)
        let delta = try h.nextDurable(h.b)
        XCTAssertEqual(delta["data"]?["body"]?.stringValue, "The error report is attached.")
        let attachments = try XCTUnwrap(delta["data"]?["attachments"]?.arrayValue)
        XCTAssertEqual(attachments.count, 1)
        XCTAssertEqual(attachments.first?["filename"]?.stringValue, "report.pdf")
        XCTAssertEqual(attachments.first?["content_type"]?.stringValue, "application/pdf")
        XCTAssertEqual(attachments.first?["size"]?.intValue, pdf.count)
        let id = try XCTUnwrap(attachments.first?["id"]?.stringValue)
        let download = try h.server.request("GET", "/v1/attachments/\(id)")
        XCTAssertEqual(download.status, 200)
        XCTAssertEqual(download.body, pdf)
    }

    func testInbound_thenReply_replyAnswersTheCustomersMessageID() throws {
        let h = try MailHarness()
        defer { h.stop() }
        let smtp = try XCTUnwrap(h.smtp)
        let raw = crlf("""
            From: Casey Customer <customer@example.com>
            Subject: Re: Printer jams [#\(h.number)]
            Message-ID: <customer.first@example.com>
            Content-Type: text/plain; charset=utf-8

            Any news?

            """)
        XCTAssertEqual(try post(h, raw).status, 201)
        try h.sendReply(id: "r1", body: "Yes: a new drum is on its way.")
        XCTAssertEqual(try h.answer(id: "r1")["type"]?.stringValue, "result")
        try h.sendReply(id: "r2", body: "It ships today.")
        XCTAssertEqual(try h.answer(id: "r2")["type"]?.stringValue, "result")
        let mails = try smtp.waitForEnvelopes(2)
        let first = try ParsedMail(mails[0].data)
        XCTAssertEqual(first.header("In-Reply-To"), "<customer.first@example.com>")
        XCTAssertEqual(first.header("References"), "<customer.first@example.com>")
        let second = try ParsedMail(mails[1].data)
        let firstID = try XCTUnwrap(first.header("Message-ID"))
        XCTAssertEqual(second.header("In-Reply-To"), firstID)
        XCTAssertEqual(second.header("References"), "<customer.first@example.com> \(firstID)")
    }

    // MARK: Inbound mail belongs to one tenant (issue 14)

    /// A second tenant, globex, with its own ticket and outbound account.
    private func addGlobex(_ h: MailHarness) throws -> (ticket: String, number: Int) {
        try h.server.seed(tenant: "globex", technicians: 1, tickets: 0)
        let t = try h.server.createTicket(tenant: "globex", subject: "Globex printer")
        XCTAssertEqual(try h.server.putEmailAccount(tenant: "globex", port: 25, security: "none", from: "help@globex.example").status, 200)
        return (t.id, t.number)
    }

    func testInbound_taggedWithAnotherTenantsTicket_refusedOnTheTenantRouteAndTheGlobalRoute() throws {
        let h = try MailHarness(smtp: nil, account: "none")
        defer { h.stop() }
        let globex = try addGlobex(h)
        // Sent to globex's address, tagged with acme's ticket.
        let raw = crlf("""
            From: Mallory <mallory@evil.example>
            To: help@globex.example
            Subject: pwned [#\(h.number)]
            Message-ID: <cross.1@evil.example>

            Posted onto another tenant's ticket.

            """)
        let before = try h.server.storedTicket(h.ticket)
        let tenantRoute = try h.server.request("POST", "/v1/tenants/globex/inbound-email", body: raw, contentType: "message/rfc822")
        XCTAssertEqual(tenantRoute.status, 422, tenantRoute.text)
        XCTAssertEqual(tenantRoute.json?["error"]?["code"]?.stringValue, "not_found")
        let global = try post(h, raw, global: true)
        XCTAssertEqual(global.status, 422, global.text)
        XCTAssertTrue(global.json?["error"]?["message"]?.stringValue?.contains("recipients") ?? false, global.text)
        try h.assertNothingStored(since: before.seq, messages: before.messages.count)
        XCTAssertEqual(try h.server.storedTicket(globex.ticket).messages.count, 0)

        // No recipient is any tenant's address: refused, nothing stored.
        let nobody = crlf("From: a@b.example\nTo: someone@else.example\nSubject: hi [#\(h.number)]\n\nhello\n")
        XCTAssertEqual(try post(h, nobody, global: true).status, 422)

        // The same mail addressed to acme (To, or only Delivered-To as a
        // gateway adds for Bcc) is threaded on the global route.
        let addressed = crlf("""
            From: Casey Customer <customer@example.com>
            To: Someone Else <someone@else.example>
            Delivered-To: Support@Acme.example
            Subject: Re: Printer jams [#\(h.number)]
            Message-ID: <bcc.1@example.com>

            Sent as Bcc.

            """)
        let stored = try post(h, addressed, global: true)
        XCTAssertEqual(stored.status, 201, stored.text)
        XCTAssertEqual(stored.json?["ticket"]?.stringValue, h.ticket)
    }

    func testInbound_sameMessageIDToTwoTenants_storedOncePerTenant() throws {
        let h = try MailHarness(smtp: nil, account: "none")
        defer { h.stop() }
        let globex = try addGlobex(h)
        // One mail copied to both helpdesks: each tags its own ticket.
        func copy(_ number: Int) -> [UInt8] {
            crlf("""
                From: Casey Customer <customer@example.com>
                To: support@acme.example, help@globex.example
                Subject: Both of you [#\(number)]
                Message-ID: <copied.1@example.com>

                Copied to both.

                """)
        }
        let acme = try post(h, copy(h.number))
        XCTAssertEqual(acme.status, 201, acme.text)
        let other = try h.server.request("POST", "/v1/tenants/globex/inbound-email", body: copy(globex.number), contentType: "message/rfc822")
        XCTAssertEqual(other.status, 201, "a Message-ID stored by another tenant is no duplicate here: \(other.text)")
        XCTAssertEqual(other.json?["ticket"]?.stringValue, globex.ticket)
        // Within one tenant it still is.
        let again = try post(h, copy(h.number))
        XCTAssertEqual(again.status, 200, again.text)
        XCTAssertEqual(again.json?["ticket"]?.stringValue, h.ticket)
        XCTAssertEqual(try h.server.storedTicket(globex.ticket).messages.count, 1)
        // The global route finds each copy's tenant by its tag and recipients.
        XCTAssertEqual(try post(h, copy(globex.number), global: true).json?["ticket"]?.stringValue, globex.ticket)
    }

    func testInbound_fromSomeoneOtherThanTheContact_threadedAndShownAsTheSender() throws {
        // The global route, addressed to acme's outbound address: the route
        // and rule that existed before tenants had their own.
        let h = try MailHarness(smtp: nil, account: "none")
        defer { h.stop() }
        let raw = crlf("""
            From: colleague@client.example
            To: support@acme.example
            Subject: Re: Printer jams [#\(h.number)]
            Message-ID: <colleague.1@client.example>

            Same problem on my desk.

            """)
        try assertStored(h, raw, body: "Same problem on my desk.", authorName: "colleague@client.example", authorID: "colleague@client.example",
                         global: true)
    }
}
