/// Inbound messages as the big mail clients write them, trimmed to what matters.
/// Written with "\n" for readability; `crlf` turns them into wire form.
enum InboundMailFixtures {
    static func crlf(_ text: String) -> [UInt8] {
        Array(text.replacingOccurrences(of: "\n", with: "\r\n").utf8)
    }

    /// Text to ISO-8859-1 bytes (every scalar below 256), for 8-bit Latin-1 bodies.
    static func latin1(_ text: String) -> [UInt8] {
        text.replacingOccurrences(of: "\n", with: "\r\n").unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) }
    }

    /// Outlook (Microsoft 365): multipart/alternative, text/plain first, QP, tab-folded
    /// Content-Type, empty X-MS fields, and the "-----Original Message-----" history.
    static let outlook = """
        Received: from DB9PR01MB1234.eurprd01.prod.exchangelabs.com (2603:10a6:10:1::1) by
         AM0PR01MB5678.eurprd01.prod.exchangelabs.com with HTTPS; Sun, 29 Nov 2026 10:02:12 +0000
        From: Ana Lopez <ana@client.example>
        To: Support <support@peek.example.com>
        Subject: RE: Printer jams [#1042]
        Thread-Topic: Printer jams [#1042]
        Thread-Index: AQHbQ2zN3m4qR1b2T0y8e7kq5nK9Ww==
        Date: Sun, 29 Nov 2026 10:02:11 +0000
        Message-ID: <DB9PR01MB1234ABCD@DB9PR01MB1234.eurprd01.prod.exchangelabs.com>
        References: <r1.1042@peek.example.com>
        In-Reply-To: <r1.1042@peek.example.com>
        Accept-Language: en-US
        Content-Language: en-US
        X-MS-Has-Attach:
        X-MS-TNEF-Correlator:
        Content-Type: multipart/alternative;
        \tboundary="_000_DB9PR01MB1234ABCD_"
        MIME-Version: 1.0

        --_000_DB9PR01MB1234ABCD_
        Content-Type: text/plain; charset="us-ascii"
        Content-Transfer-Encoding: quoted-printable

        Hi Sam,

        The printer still jams after the restart. It shows error E-204 on the front=
         panel.

        Thanks,
        Ana

        -----Original Message-----
        From: Sam Tech <sam@peek.example.com>=20
        Sent: Sunday, November 29, 2026 9:30 AM
        To: Ana Lopez <ana@client.example>
        Subject: Re: Printer jams [#1042]

        Hi Ana,

        Please restart the printer.

        --_000_DB9PR01MB1234ABCD_
        Content-Type: text/html; charset="us-ascii"
        Content-Transfer-Encoding: quoted-printable

        <html xmlns:o=3D"urn:schemas-microsoft-com:office:office"><head><style><!--
        p.MsoNormal {margin:0cm;font-size:11.0pt;}
        --></style></head><body lang=3D"EN-US"><div class=3D"WordSection1"><p class=
        =3D"MsoNormal">Hi Sam,<o:p></o:p></p><p class=3D"MsoNormal">The printer sti=
        ll jams (HTML part).<o:p></o:p></p></div></body></html>

        --_000_DB9PR01MB1234ABCD_--

        """

    /// Outlook HTML only: the history below a "From: / Sent:" block after an <hr>.
    static let outlookHTMLOnly = """
        From: Ana Lopez <ana@client.example>
        To: Support <support@peek.example.com>
        Subject: RE: Printer jams [#1042]
        Date: Sun, 29 Nov 2026 10:02:11 +0000
        Message-ID: <DB9PR01MB9999@eurprd01.prod.exchangelabs.com>
        Content-Type: text/html; charset="windows-1252"
        Content-Transfer-Encoding: quoted-printable
        MIME-Version: 1.0

        <html><head><meta http-equiv=3D"Content-Type" content=3D"text/html; charset=
        =3Dwindows-1252"><style>body{font-family:Calibri}</style></head><body>
        <div>It=92s working again &#8211; thanks!</div>
        <div id=3D"divRplyFwdMsg"><hr style=3D"display:inline-block;width:98%"><font=
         face=3D"Calibri"><b>From:</b> Sam Tech &lt;sam@peek.example.com&gt;<br><b>=
        Sent:</b> Sunday, November 29, 2026 9:30 AM<br><b>To:</b> Ana Lopez<br><b>S=
        ubject:</b> Re: Printer jams [#1042]</font><div>&nbsp;</div></div>
        <div>Hi Ana, please restart the printer.</div>
        </body></html>

        """

    /// Gmail: multipart/alternative, QP UTF-8, "On ... wrote:" then "> " quotes; the
    /// HTML part keeps the history in a gmail_quote blockquote.
    static let gmail = """
        MIME-Version: 1.0
        References: <r1.1042@peek.example.com>
        In-Reply-To: <r1.1042@peek.example.com>
        From: Ana Lopez <ana@client.example>
        Date: Sun, 29 Nov 2026 10:05:42 +0100
        Message-ID: <CAGx8=abc+def@mail.gmail.com>
        Subject: Re: Printer jams [#1042]
        To: Sam Tech <sam@peek.example.com>
        Content-Type: multipart/alternative; boundary="000000000000a1b2c3d4e5f60718"

        --000000000000a1b2c3d4e5f60718
        Content-Type: text/plain; charset="UTF-8"
        Content-Transfer-Encoding: quoted-printable

        Still jams, I=E2=80=99m afraid.

        On Sun, Nov 29, 2026 at 9:30 AM Ana <ana@x> wrote:

        > Hi Ana,
        >
        > Please restart the printer.
        >

        --000000000000a1b2c3d4e5f60718
        Content-Type: text/html; charset="UTF-8"
        Content-Transfer-Encoding: quoted-printable

        <div dir=3D"ltr">Still jams, I=E2=80=99m afraid.</div><br><div class=3D"gmai=
        l_quote"><div dir=3D"ltr" class=3D"gmail_attr">On Sun, Nov 29, 2026 at 9:30=
         AM Ana &lt;<a href=3D"mailto:ana@x">ana@x</a>&gt; wrote:<br></div><blockquo=
        te class=3D"gmail_quote" style=3D"margin:0px 0px 0px 0.8ex">Hi Ana,<br><br>=
        Please restart the printer.<br></blockquote></div>

        --000000000000a1b2c3d4e5f60718--

        """

    /// Apple Mail: single text/plain part, QP with soft breaks, encoded-word From,
    /// "On 29 Nov 2026, at 09:30, ... wrote:" then "> " quotes.
    static let appleMail = """
        Content-Type: text/plain;
        \tcharset=utf-8
        Content-Transfer-Encoding: quoted-printable
        Mime-Version: 1.0 (Mac OS X Mail 16.0)
        Subject: Re: Printer jams [#1042]
        From: =?utf-8?Q?Ana_L=C3=B3pez?= <ana@client.example>
        In-Reply-To: <r1.1042@peek.example.com>
        Date: Sun, 29 Nov 2026 10:07:00 +0100
        Cc: Bob Martin <bob@client.example>
        Message-Id: <5E4C1B2A-7D3F-4C1E-9A8B-0123456789AB@client.example>
        References: <r0.1042@peek.example.com>
         <r1.1042@peek.example.com>
        To: Sam Tech <sam@peek.example.com>
        X-Mailer: Apple Mail (2.3774.600.62)

        Hi Sam,

        I restarted it twice and the display now says =E2=80=9CPaper jam in tray =
        2=E2=80=9D even though the tray is empty. Could someone come by tomorrow =
        morning?

        Ana

        On 29 Nov 2026, at 09:30, Sam Tech <sam@peek.example.com> wrote:

        > Hi Ana,
        >=20
        > Please restart the printer.
        >=20
        > Sam

        """
}
