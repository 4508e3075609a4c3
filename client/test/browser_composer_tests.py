"""Browser tests of the composer's attachments, a reply's sending state and
the Time + contract card (issue 18), run by browser_test.py in its TESTS
order with the same context (ctx.a: tech-ana, ctx.b: tech-ben, ctx.server).

They end the suite: the send-state test configures the demo tenant's
outbound account (a local SMTP server this file starts), which the earlier
"no email account" test must not see.
"""

import base64
import json
import os
import socket
import struct
import tempfile
import threading
import time
import uuid
import zlib

from selenium.webdriver.common.by import By


def tid(name):
    return f'[data-testid="{name}"]'


def temp_file(name, size, fill=b"peek "):
    directory = tempfile.mkdtemp(prefix="peek-attach-")
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        if size > 0:
            chunk = (fill * (65536 // len(fill) + 1))[:65536]
            left = size
            while left > 0:
                f.write(chunk[:min(left, len(chunk))])
                left -= min(left, len(chunk))
    return path


def pick_files(browser, *paths):
    """The file picker, as a person's choice arrives: the input's files."""
    browser.js("document.querySelector(arguments[0]).hidden = false", tid("attach-input"))
    browser.find(tid("attach-input")).send_keys("\n".join(paths))
    browser.js("document.querySelector(arguments[0]).hidden = true", tid("attach-input"))


def chips(browser):
    return browser.js(
        "return [...document.querySelectorAll('[data-testid=attach-chip]')].map(c => ({state: c.dataset.state,"
        " progress: Number(c.dataset.progress), events: Number(c.dataset.progressEvents), id: c.dataset.id,"
        " text: c.textContent}))")


def tiny_png():
    width = height = 8
    raw = b"".join(b"\x00" + b"\xd0\x30\x30" * width for _ in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_attach_by_picker_with_progress_remove_and_send(ctx):
    a, b = ctx.a, ctx.b
    ticket = "T-1004"
    a.goto(ticket)
    b.goto(ticket)
    a.set_mode("note")
    tag = uuid.uuid4().hex[:6]
    big = temp_file(f"server-log-{tag}.txt", 3 * 1024 * 1024)
    dropped = temp_file(f"not-this-{tag}.txt", 2000)
    pick_files(a, big, dropped)
    a.wait(lambda: len(chips(a)) == 2, 5, "two chips")
    a.wait(lambda: all(c["state"] == "done" for c in chips(a)), 30, "both uploads to finish")
    first = chips(a)[0]
    assert first["progress"] == 100, f"progress reached 100%: {first}"
    assert first["events"] >= 1, f"upload progress was reported: {first}"
    assert "3 MB" in first["text"], f"the chip shows the size: {first['text']!r}"
    # Removable before sending: the second goes, the first stays.
    a.js("document.querySelectorAll('[data-testid=attach-remove]')[1].click()")
    a.wait(lambda: len(chips(a)) == 1, 3, "the removed chip gone")
    body = f"Logs attached {tag}"
    a.type_draft(body)
    a.send()
    a.wait(lambda: a.composer_value() == "", 15, "the note confirmed")
    assert chips(a) == [], "the tray is empty after sending"
    for who in (a, b):
        who.wait(lambda: who.js(
            "const m = [...document.querySelectorAll('[data-testid=thread-message]')].find(m => m.textContent.includes(arguments[0]));"
            "return m ? [...m.querySelectorAll('[data-testid=attachment-link]')].map(l => l.textContent) : null", body) is not None,
            10, f"the note in {who.name}'s thread")
        names = who.js(
            "const m = [...document.querySelectorAll('[data-testid=thread-message]')].find(m => m.textContent.includes(arguments[0]));"
            "return [...m.querySelectorAll('[data-testid=attachment-link] .attachment-name')].map(l => l.textContent)", body)
        assert names == [os.path.basename(big)], f"{who.name} sees the attachments {names}"
    a.shot("composer-attachment-sent")


DROP_AND_PASTE = """
    const [tag] = arguments;
    const composer = document.querySelector('[data-testid=composer]');
    const dropped = new DataTransfer();
    dropped.items.add(new File([`dropped ${tag}`], `dropped-${tag}.txt`, {type: 'text/plain'}));
    composer.dispatchEvent(new DragEvent('dragover', {dataTransfer: dropped, bubbles: true, cancelable: true}));
    const dropping = composer.classList.contains('is-dropping');
    composer.dispatchEvent(new DragEvent('drop', {dataTransfer: dropped, bubbles: true, cancelable: true}));
    const pasted = new DataTransfer();
    pasted.items.add(new File([new Uint8Array([137, 80, 78, 71])], 'image.png', {type: 'image/png'}));
    document.querySelector('[data-testid=composer-input]').dispatchEvent(
        new ClipboardEvent('paste', {clipboardData: pasted, bubbles: true, cancelable: true}));
    return dropping;
"""


def test_attach_by_drag_and_drop_and_paste(ctx):
    a = ctx.a
    a.goto("T-1004")
    a.set_mode("note")
    tag = uuid.uuid4().hex[:6]
    assert a.js(DROP_AND_PASTE, tag) is True, "the composer shows it accepts a drop"
    a.wait(lambda: len(chips(a)) == 2 and all(c["state"] == "done" for c in chips(a)), 15, "the dropped and pasted files uploaded")
    names = [c["text"] for c in chips(a)]
    assert f"dropped-{tag}.txt" in names[0], names
    assert names[1].startswith("pasted-") and ".png" in names[1], f"a pasted image gets a name of its own: {names}"
    assert not a.js("return document.querySelector('[data-testid=composer]').classList.contains('is-dropping')")
    a.js("document.querySelectorAll('[data-testid=attach-remove]').forEach(b => b.click())")
    a.wait(lambda: chips(a) == [], 3, "both chips removed")


def test_too_large_file_refused_with_the_limit(ctx):
    a = ctx.a
    a.goto("T-1004")
    a.set_mode("note")
    path = temp_file(f"huge-{uuid.uuid4().hex[:6]}.zip", 10 * 1024 * 1024 + 1)
    pick_files(a, path)
    a.wait(lambda: a.exists(tid("attach-error-text")), 3, "the refusal")
    text = a.text(tid("attach-error-text"))
    assert "at most 10 MB" in text and os.path.basename(path) in text, f"the refusal names the file and the limit: {text!r}"
    assert chips(a) == [], "nothing is uploaded"
    a.shot("composer-attachment-too-large")
    # A refused type is said at once too.
    page = temp_file(f"page-{uuid.uuid4().hex[:6]}.html", 100)
    pick_files(a, page)
    a.wait(lambda: "cannot be attached" in a.text(tid("attach-error-text")), 3, "the type refusal")


def mail_with_attachments(subject, parts):
    boundary = "peek-test-" + uuid.uuid4().hex
    lines = [
        "From: Maya Chen <maya.chen@contoso.example>",
        "To: support@demo.example",
        f"Subject: {subject}",
        f"Message-ID: <{uuid.uuid4().hex}@contoso.example>",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/mixed; boundary="{boundary}"',
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "Here are the screenshot and the report.",
    ]
    for name, content_type, data in parts:
        lines += [f"--{boundary}", f"Content-Type: {content_type}; name=\"{name}\"",
                  f'Content-Disposition: attachment; filename="{name}"', "Content-Transfer-Encoding: base64", "",
                  base64.encodebytes(data).decode().strip()]
    lines.append(f"--{boundary}--")
    return ("\r\n".join(lines) + "\r\n").encode()


def test_received_attachment_downloads_through_a_signed_link_and_image_previews(ctx):
    a = ctx.a
    tag = uuid.uuid4().hex[:6]
    pdf = f"%PDF-1.4\n% report {tag}\n%%EOF\n".encode()
    png = tiny_png()
    mail = mail_with_attachments(f"Re: laptop [#1001] {tag}", [(f"report-{tag}.pdf", "application/pdf", pdf), (f"screen-{tag}.png", "image/png", png)])
    a.goto("T-1001")
    status, answer = ctx.server.service("POST", "/v1/tenants/demo/inbound-email", mail, "message/rfc822")
    assert status == 201, f"inbound mail refused: {status} {answer}"
    a.wait(lambda: a.exists(f'{tid("thread-message")}[data-kind="customer"] {tid("attachment-preview")}[alt="screen-{tag}.png"]'),
           10, "the received message with its image")
    a.wait(lambda: a.js("const i = document.querySelector(arguments[0]); return !!i && i.complete && i.naturalWidth === 8",
                        f'{tid("attachment-preview")}[alt="screen-{tag}.png"]'), 10, "the image preview loaded")
    src = a.attr(f'{tid("attachment-preview")}[alt="screen-{tag}.png"]', "src")
    assert "/v1/files/" in src and "sig=" in src and "token=" not in src, f"previewed through a signed link: {src}"

    downloads = tempfile.mkdtemp(prefix="peek-downloads-")
    a.driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})
    link = f'{tid("attachment-link")}[title="Download report-{tag}.pdf"]'
    a.click(link)
    target = os.path.join(downloads, f"report-{tag}.pdf")
    a.wait(lambda: os.path.exists(target) and open(target, "rb").read() == pdf, 15, "the downloaded file")
    href = a.js("return document.querySelector(arguments[0]).dataset.href", link)
    assert href.startswith("/v1/files/") and "token=" not in href, f"the download used a signed link: {href}"
    # The link is the credential, scoped to its ticket: moved to another, it is refused.
    moved = href.replace("ticket=T-1001", "ticket=T-1002")
    refused = a.driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch(arguments[0]).then(async r => done([r.status, await r.text()]), e => done([0, String(e)]));""", moved)
    assert refused[0] == 403 and "not valid" in refused[1], f"a moved link is refused: {refused}"
    a.shot("attachment-received-preview")


class SMTPStub:
    """A plain-text SMTP server on loopback: accepts every message, or
    answers RCPT with 550 while `reject` is set."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.reject = False
        self.messages = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.session, args=(conn,), daemon=True).start()

    def session(self, conn):
        f = conn.makefile("rb")

        def say(line):
            conn.sendall((line + "\r\n").encode())

        try:
            say("220 stub.example ESMTP ready")
            while True:
                line = f.readline()
                if not line:
                    return
                command = line.decode(errors="replace").strip()
                verb = command.split(" ")[0].upper()
                if verb in ("EHLO", "HELO"):
                    say("250-stub.example")
                    say("250 8BITMIME")
                elif verb == "MAIL":
                    say("250 2.1.0 Ok")
                elif verb == "RCPT":
                    say("550 5.1.1 <maya.chen@contoso.example>: Recipient address rejected: User unknown" if self.reject else "250 2.1.5 Ok")
                elif verb == "DATA":
                    say("354 End data with <CR><LF>.<CR><LF>")
                    data = []
                    while True:
                        chunk = f.readline()
                        if not chunk or chunk in (b".\r\n", b".\n"):
                            break
                        data.append(chunk)
                    self.messages.append(b"".join(data))
                    say("250 2.0.0 Ok: queued as STUB1")
                elif verb == "QUIT":
                    say("221 2.0.0 Bye")
                    return
                else:
                    say("250 2.0.0 Ok")
        except OSError:
            return
        finally:
            conn.close()

    def stop(self):
        self.sock.close()


def test_reply_send_state_failed_log_retry_and_emailed(ctx):
    a = ctx.a
    smtp = SMTPStub()
    try:
        account = {"host": "127.0.0.1", "port": smtp.port, "security": "none", "from": "support@demo.example"}
        status, answer = ctx.server.service("PUT", "/v1/tenants/demo/email-account", json.dumps(account).encode())
        assert status == 200, f"email account refused: {status} {answer}"
        ticket = "T-1002"
        a.goto(ticket)
        a.set_mode("reply")
        tag = uuid.uuid4().hex[:6]
        body = f"We pushed a new VPN profile {tag}"
        smtp.reject = True
        a.type_draft(body)
        a.send()
        a.wait(lambda: a.attr(tid("outbox-item"), "data-state") == "failed", 15, "the failed state on the reply")
        reason = a.text(tid("outbox-reason"))
        assert "550" in reason, f"the mail server's answer is shown: {reason!r}"
        assert a.composer_value() == body, "the draft is kept"
        assert a.count_in_thread(body) == 0, "a failed reply is not in the thread"
        a.click(tid("outbox-log"))
        a.wait(lambda: a.exists(f'{tid("send-attempt")}[data-outcome="failed"]'), 10, "the send log with the failed attempt")
        log = a.text(tid("send-log"))
        assert "Recipient address rejected" in log and "maya.chen@contoso.example" in log, f"the log holds the SMTP answer: {log!r}"
        a.shot("reply-failed-send-log")
        smtp.reject = False
        a.click(tid("outbox-retry"))
        a.wait(lambda: a.count_in_thread(body, "technician") == 1, 15, "the retried reply in the thread")
        assert not a.exists(tid("outbox-item")), "the outbox is empty once sent"
        a.wait(lambda: a.js(
            "const m = [...document.querySelectorAll('[data-kind=technician]')].find(m => m.textContent.includes(arguments[0]));"
            "const d = m && m.querySelector('[data-testid=delivery]'); return d ? d.dataset.state + '|' + d.textContent : ''", body)
            .startswith("sent|Emailed to maya.chen@contoso.example at "), 10, "Emailed to ... at ... on the message")
        assert any(body.encode() in m for m in smtp.messages), "the mail server got the reply"
        a.shot("reply-emailed-state")
    finally:
        smtp.stop()


def contract_used(browser):
    value = browser.attr(tid("contract-used"), "data-seconds")
    return int(value) if value is not None else None


def test_time_entries_stop_with_note_show_all_and_contract_hours_move(ctx):
    a, b = ctx.a, ctx.b
    ticket = "T-1001"  # the demo ticket with a contract
    a.goto(ticket)
    b.goto(ticket)
    a.wait(lambda: contract_used(a) is not None, 5, "the contract's hours used")
    assert "12 h used" not in a.text(tid("contract")), "the contract line is the name, not a fixed usage"
    before = contract_used(a)
    tag = uuid.uuid4().hex[:6]
    a.click(tid("time-add-open"))
    a.find(tid("time-add-minutes")).send_keys("30")
    a.find(tid("time-add-note")).send_keys(f"Phone call {tag}")
    a.click(tid("time-add-submit"))
    for who in (a, b):
        who.wait(lambda: contract_used(who) == before + 1800, 10, f"contract hours moving by 30 min in {who.name}'s Peek")
        who.wait(lambda: f"Phone call {tag}" in who.text(tid("time-entries")), 5, "the manual entry listed")
    assert "of 12 h used this month" in a.text(tid("contract-used")), a.text(tid("contract-used"))

    # Stop with a note.
    if a.exists(tid("timer-stop")):
        a.click(tid("timer-stop"))
        a.wait(lambda: a.exists(tid("timer-start")), 5, "a clean timer")
    a.click(tid("timer-start"))
    a.wait(lambda: a.exists(tid("timer-note")), 5, "the running timer's note")
    a.find(tid("timer-note")).send_keys(f"Cleaned the fan {tag}")
    a.click(tid("timer-stop"))
    b.wait(lambda: f"Cleaned the fan {tag}" in b.text(tid("time-entries")), 10, "the stopped entry with its note")

    # More than five entries: all of them reachable.
    for i in range(4):
        a.click(tid("time-add-open"))
        a.find(tid("time-add-minutes")).send_keys("1")
        a.find(tid("time-add-note")).send_keys(f"extra {tag} {i}")
        a.click(tid("time-add-submit"))
        a.wait(lambda: f"extra {tag} {i}" in a.text(tid("time-entries")), 10, f"extra entry {i}")
    total = len(a.finds(tid("time-entry")))
    assert total == 5, f"five entries at first, {total} shown"
    a.click(tid("time-show-all"))
    a.wait(lambda: len(a.finds(tid("time-entry"))) >= 6, 5, "every entry after Show all")
    texts = a.text(tid("time-entries"))
    assert f"Phone call {tag}" in texts, "the oldest of these entries is reachable"
    a.shot("time-contract-card")


COMPOSER_TESTS = [
    test_attach_by_picker_with_progress_remove_and_send,
    test_attach_by_drag_and_drop_and_paste,
    test_too_large_file_refused_with_the_limit,
    test_received_attachment_downloads_through_a_signed_link_and_image_previews,
    test_time_entries_stop_with_note_show_all_and_contract_hours_move,
    test_reply_send_state_failed_log_retry_and_emailed,
]
