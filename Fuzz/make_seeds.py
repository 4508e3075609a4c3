#!/usr/bin/env python3
"""Writes the seed corpora in Fuzz/corpus/TARGET/ from the unit tests' vectors.

Run it after changing a target's input layout (the seeds encode the layout:
split counts, mode bytes, lengths). Inputs libFuzzer found and that were merged
with `scripts/fuzz.sh --update-corpus` live beside these and are not touched.
Standard library only.
"""
import hashlib
import hmac
import base64
import os
import re
import struct
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "Fuzz", "corpus")


def write(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(folder, "seed-" + name), "wb") as f:
        f.write(data)


def crlf(text):
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def mail_fixtures():
    """The multi-line strings of Tests/PeekMailTests/InboundMailFixtures.swift, in wire form."""
    path = os.path.join(ROOT, "Tests", "PeekMailTests", "InboundMailFixtures.swift")
    source = open(path, encoding="utf-8").read()
    out = {}
    for name, body in re.findall(r'static let (\w+) = """\n(.*?)\n\s*"""', source, re.S):
        lines = [line[8:] if line.startswith("        ") else line.strip() for line in body.split("\n")]
        out[name] = crlf("\n".join(lines).replace("\\t", "\t") + "\n").encode()
    return out


# --- PeekCore ---------------------------------------------------------------
frames = {
    "hello": '{"type":"hello","token":"abc"}',
    "subscribe": '{"type":"subscribe","id":"s1","ticket":"T-1001","since":7}',
    "subscribe-null": '{"type":"subscribe","ticket":"T-1001","since":null}',
    "note": '{"type":"command","id":"c1","ticket":"T-1","op":"note","args":{"body":"hi"},"seen":3,"if_version":2}',
    "status": '{"type":"command","id":"c2","ticket":"T-1","op":"set_status","args":{"status":"waiting_on_customer"}}',
    "reply": '{"type": "command", "id": "c-7f3a", "ticket": "T-1001", "op": "reply", "args": {"body": "Hi Maya, I will clean the fan remotely this afternoon."}, "if_version": 2, "seen": 5}',
    "composing": '{"type":"composing","ticket":"T-1","mode":"note"}',
    "unsubscribe": '{"type":"unsubscribe","ticket":"T-1"}',
    "refresh": '{"type":"refresh","id":"r1","token":"eyJhbGciOiJIUzI1NiJ9.e30.sig"}',
}
for name, text in frames.items():
    write("client_frame", name, text)
    write("json", name, text)
write("json", "escapes", r'{"a":"\u00e9\ud83d\ude00\n\t\"\\\/","b":[1,-0,2.5e-3,1E+400,true,false,null],"c":{}}')
write("json", "numbers", "[0,-1,9223372036854775807,9223372036854775808,1.0,1e16,-2.5E-7]")
write("json", "nested", "[[[[{\"x\":[[]]}]]]]")

agent = {
    "chat": '{"type":"chat","ticket":"T-1001","body":"The fan is loud again."}',
    "telemetry": '{"type":"telemetry","cpu":12.5,"ram":61,"disk":88.25}',
    "consent": '{"type":"consent","session":"rs-42","decision":"accept"}',
    "deny": '{"type":"consent","session":"rs-42","decision":"deny"}',
}
for name, text in agent.items():
    write("agent_frame", name, text)

SECRET = b"fuzz-secret-0123456789abcdef"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=")


header = b'{"alg":"HS256","typ":"JWT"}'
payload = b'{"sub":"tech-1","tenant":"acme","name":"Ana","role":"technician","exp":1900000000}'
signing = b64url(header) + b"." + b64url(payload)
token = signing + b"." + b64url(hmac.new(SECRET, signing, hashlib.sha256).digest())
write("jwt", "valid-token", b"\x00" + token)
write("jwt", "none-alg", b"\x00" + b64url(b'{"alg":"none"}') + b"." + b64url(payload) + b".")
write("jwt", "signed-claims", b"\x80" + bytes([len(header)]) + header + payload)
write("jwt", "expired-claims", b"\x80" + bytes([len(header)]) + header + payload.replace(b"1900000000", b"1000"))
write("jwt", "sign-verify", b"\x00tech-1|acme|Ana L\xc3\xb3pez|technician")

for name, data in {"short": b"", "one": b"f", "two": b"fo", "three": b"foo", "binary": bytes(range(256)),
                   "text": b"TWFu\r\nIGlz=", "url": b"-_-_AA=="}.items():
    write("base64", name, data)

# --- PeekHTTP: limits byte, split count, split lengths, request bytes --------
requests = {
    "get": "GET /v1/tickets/T-1001?x=1 HTTP/1.1\r\nHost: peek.example.com\r\nAccept: */*\r\n\r\n",
    "post": 'POST /v1/tenants HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{"id":"acme"}',
    "chunked": "POST /v1/tickets/T-1/attachments HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n",
    "pipelined": "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    "upgrade": "GET /v1/ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
    "http10": "GET /index.html HTTP/1.0\r\n\r\n",
    "folded": "GET / HTTP/1.1\r\nHost: a\r\nX-Long: a\r\n b\r\n\r\n",
}
for name, text in requests.items():
    write("http_request", name, b"\x00\x00" + text.encode())
    write("http_request", name + "-small-split", b"\x01\x03\x05\x10\x02" + text.encode())

# http_response: mode byte (+1 small limits, +2 the peer closes after the last byte), then splits
responses = {
    "length": 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 37\r\n\r\n{"text": "Summary.", "model": "nexie"}',
    "ndjson-chunked": 'HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n1a\r\n{"model":"m","text":"Hi "}\n\r\n11\r\n{"text":"there"}\n\r\n0\r\n\r\n',
    "until-close": 'HTTP/1.1 200 OK\r\n\r\n{"text":"a"}\n{"error":"stop"}\n',
    "continue": "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy",
    "no-content": "HTTP/1.1 204 No Content\r\n\r\n",
    "trailers": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
}
for name, text in responses.items():
    write("http_response", name, b"\x02\x00" + text.encode())
    write("http_response", name + "-small-split", b"\x03\x03\x05\x10\x02" + text.encode())

# http_fields: first byte picks the parser (see the target)
fields = {
    "query": b"\x00" + b"a=1&b=%20x+y&c&=&d=%zz",
    "percent": b"\x01" + b"/v1/tickets/T%2D1%2Fx%00%e9",
    "date": b"\x02" + b"Sun, 06 Nov 1994 08:49:37 GMT",
    "etag": b"\x03" + b'W/"abc", "def", *',
    "route": b"\x04" + b"/v1/tickets/T-1001/attachments",
    "static": b"\x05" + b"/assets/app.js",
    "static-dots": b"\x05" + b"/a/%2e%2e/b/",
    "host": b"\x07" + b"peek.example.com:8443",
    "upgrade": b"\x06" + b"Upgrade: websocket\nConnection: keep-alive, Upgrade\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n"
               b"Sec-WebSocket-Version: 13\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits; "
               b"server_max_window_bits=10, x-webkit-deflate-frame\nOrigin: https://peek.example.com",
}
for name, data in fields.items():
    write("http_fields", name, data)

# --- PeekWebSocket: masked client frames -----------------------------------
MASK = b"\x37\xfa\x21\x3d"


def frame(opcode, payload, fin=True, rsv1=False, mask=MASK):
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    if n < 126:
        head = bytes([first, 0x80 | n])
    elif n < 65536:
        head = bytes([first, 0x80 | 126]) + struct.pack(">H", n)
    else:
        head = bytes([first, 0x80 | 127]) + struct.pack(">Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def deflate(data, bits=15):
    c = zlib.compressobj(6, zlib.DEFLATED, -bits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


ws = {
    "text": frame(1, b"Hello"),
    "fragmented": frame(1, b"Hel", fin=False) + frame(0, b"lo", fin=False) + frame(9, b"ping") + frame(0, b"!"),
    "binary": frame(2, bytes(range(200))),
    "ping-close": frame(9, b"are you there") + frame(8, struct.pack(">H", 1000) + b"bye"),
    "utf8": frame(1, "Grüße 😀".encode()),
    "json": frame(1, frames["note"].encode()),
    "close-empty": frame(8, b""),
}
for name, data in ws.items():
    write("websocket", name, b"\x00" + data)
    write("websocket_deflate", name, b"\x07\x00" + data)
write("websocket", "split", b"\x03\x01\x02\x05" + ws["fragmented"])
message = frames["reply"].encode() * 3
write("websocket_deflate", "compressed", b"\x07\x00" + frame(1, deflate(message), rsv1=True))
write("websocket_deflate", "compressed-9bits", b"\x01\x00" + frame(1, deflate(message, 9), rsv1=True))
write("websocket_deflate", "compressed-fragments",
      b"\x07\x00" + frame(1, deflate(message)[:10], fin=False, rsv1=True) + frame(0, deflate(message)[10:]))

# --- PeekMail: SMTP ---------------------------------------------------------
greeting = "220 mail.example.com ESMTP ready\r\n"
ehlo = "250-mail.example.com\r\n250-PIPELINING\r\n250-SIZE 35882577\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"
session = {
    "plain": greeting + ehlo + "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as 12345\r\n",
    "starttls": greeting + ehlo + "220 2.0.0 Ready to start TLS\r\n" + ehlo + "250 Ok\r\n250 Ok\r\n250 Ok\r\n354 go\r\n250 queued\r\n",
    "auth": greeting + ehlo + "235 2.7.0 Authentication successful\r\n250 Ok\r\n250 Ok\r\n250 Ok\r\n354 go\r\n250 queued\r\n",
    "login": greeting + ehlo.replace("PLAIN LOGIN", "LOGIN") + "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 ok\r\n250 Ok\r\n250 Ok\r\n250 Ok\r\n354 go\r\n250 queued\r\n",
    "helo-fallback": greeting + "502 5.5.1 EHLO not supported\r\n250 mail.example.com\r\n250 Ok\r\n250 Ok\r\n250 Ok\r\n354 go\r\n250 queued\r\n",
    "rejected": greeting + ehlo + "250 Ok\r\n550 5.1.1 No such user\r\n250 Ok\r\n354 go\r\n250 queued\r\n",
    "busy": "421 4.3.2 Service not available, closing transmission channel\r\n",
}
for name, text in session.items():
    write("smtp_reply", name, b"\x00" + text.encode())
# choice byte: security (0 none, 1 STARTTLS, 2 implicit TLS), +4 credentials, +8 TLS fails
for name, choice in {"plain": 0, "starttls": 1, "auth": 6, "login": 4, "helo-fallback": 0, "rejected": 2, "busy": 0}.items():
    write("smtp_dialogue", name, bytes([choice, 0]) + session[name].encode())
write("smtp_dialogue", "starttls-auth", bytes([5, 0]) + (greeting + ehlo + "220 go\r\n" + ehlo + "235 ok\r\n250 Ok\r\n250 Ok\r\n250 Ok\r\n354 go\r\n250 queued\r\n").encode())

# --- PeekTLS: suite byte, then operations (see tls_records.swift) -----------


def seal(content_type, content, padding=0):
    return bytes([0, content_type, padding]) + struct.pack(">H", len(content)) + content


for suite in range(3):
    ops = seal(23, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n") + b"\x03" + seal(23, b"more", padding=7) + b"\x03"
    write("tls_records", "appdata-%d" % suite, bytes([suite]) + ops)
    keyupdate = seal(23, b"before") + seal(22, bytes([24, 0, 0, 1, 1])) + b"\x02" + seal(23, b"after") + b"\x03"
    write("tls_records", "keyupdate-%d" % suite, bytes([suite]) + keyupdate)
    closing = seal(23, b"bye") + seal(21, bytes([1, 0])) + b"\x03"
    write("tls_records", "close-notify-%d" % suite, bytes([suite]) + closing)
write("tls_records", "raw-header", b"\x00" + b"\x01\x00\x05\x17\x03\x03\x40\x11" + b"\x03")
write("tls_records", "many-records", b"\x01" + (seal(23, b"x" * 40) + b"\x03") * 6)

# --- PeekMail: inbound ------------------------------------------------------
fixtures = mail_fixtures()
for name, data in fixtures.items():
    write("mail_inbound", name, data)
simple = crlf("From: Ana <ana@client.example>\nTo: help@acme.test\nSubject: hi [#1001]\nMessage-ID: <x1@b.c>\n\nhello\n").encode()
write("mail_inbound", "simple", simple)
write("mail_inbound", "attachment", crlf(
    "From: a@b.c\nTo: help@acme.test\nSubject: =?utf-8?B?w6lyw6k=?= log\nMIME-Version: 1.0\n"
    "Content-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain; format=flowed; delsp=yes\n\n"
    "A flowed \nline.\n--b1\nContent-Type: application/pdf; name=\"r.pdf\"\nContent-Disposition: attachment; "
    "filename*=utf-8''r%C3%A9.pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--b1--\n").encode())

write("mime_roundtrip", "plain", b"\x00" + bytes([24]) + b"Re: Printer jams [#1042]" + struct.pack(">H", 37) + b"Hi Ana,\n\nPlease restart the printer.\n")
write("mime_roundtrip", "attachment-base64", b"\x03" + bytes([12]) + "Grüße [#1]".encode() + struct.pack(">H", 8) + "Café = 5".encode()[:8] + b"%PDF-1.4\n\x00\x01\x02")

for name, text in {
    "angle": "Ana Lopez <ana@client.example>",
    "quoted": '"Pérez, Ana" <ana@x.example>, Bob <bob@y.example>',
    "comment": "ana@x.example (Ana), bob@y.example",
    "group": "Team: a@x.example, b@x.example;, c@y.example",
    "encoded": "=?utf-8?Q?Ana_L=C3=B3pez?= <ana@client.example>",
}.items():
    write("mail_address", name, text)

for name, text in {
    "b": "=?utf-8?B?w6lyw6k=?= =?utf-8?B?IGxvZw==?=",
    "q": "Re: =?iso-8859-1?Q?caf=E9?= [#1042]",
    "split": "=?UTF-8?B?8J+Y?= =?UTF-8?B?gA==?=",
    "language": "=?utf-8*en?Q?hello_world?=",
}.items():
    write("encoded_word", name, text)

write("quoted_printable", "soft-breaks", "Caf=C3=A9 =3D 5=E2=82=AC\r\nends with space=20\r\n0123456789=\r\n0123\r\n")
write("quoted_printable", "bad-escapes", "=ZZ=4=\r=\n=0A trailing   \r\n")
write("mail_base64", "lines", "JVBERi0xLjQK\r\nAAECAwQF\r\nBgc=\r\n")
write("mail_base64", "junk", "SGVsbG8=\r\n-- \r\nsignature")
write("flowed_text", "flowed", b"\x00" + b"A paragraph that \nflows on. \n> quoted and \n> flowing\n-- \nSam")
write("flowed_text", "delsp", b"\x01" + b"Word-\nbreak and  \nmore \n\n>> deep \n>> er")
html = {
    "gmail": '<div dir="ltr">Still jams.</div><br><div class="gmail_quote"><blockquote class="gmail_quote">Hi Ana,<br><br>Please restart.<br></blockquote></div>',
    "table": "<html><head><style>p{}</style></head><body><p>One &amp; two&nbsp;&lt;three&gt; &#233; &#x1F600;</p><table><tr><td>a</td><td>b</td></tr></table><ul><li>x</li></ul></body></html>",
    "nested": "<blockquote><blockquote><p>deep</p></blockquote></blockquote>" ,
}
for name, text in html.items():
    write("html_text", name, text)
for name, text in {
    "gmail": "Still jams, I'm afraid.\n\nOn Sun, Nov 29, 2026 at 9:30 AM Ana <ana@x> wrote:\n\n> Hi Ana,\n>\n> Please restart the printer.\n",
    "outlook": "Thanks,\nAna\n\n-----Original Message-----\nFrom: Sam Tech <sam@peek.example.com>\nSent: Sunday, November 29, 2026 9:30 AM\n\nHi Ana,\n",
    "german": "Danke!\n\nAm 29.11.2026 um 09:30 schrieb Sam <sam@x>:\n> Hallo\n",
    "inline": "> question one\nanswer one\n> question two\nanswer two\n",
}.items():
    write("quoted_history", name, text)

print("seeds written to", CORPUS)
