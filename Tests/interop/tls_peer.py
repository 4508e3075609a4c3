#!/usr/bin/env python3
"""An independent TLS 1.3 peer for peekd's interoperability tests: CPython's
`ssl` module (OpenSSL underneath, but its own record handling, buffering and
WebSocket code here, none of peekd's). Run by
Tests/PeekServerTests/CoreTLSInteropTests.swift against a real peekd:

    python3 Tests/interop/tls_peer.py MODE PORT CA_FILE [TOKEN]

Each mode prints `OK <what it saw>` and exits 0, or prints `FAIL <why>` and
exits 1. Modes:

  wss            wss upgrade, hello/welcome, subscribe, a note round trip, a
                 close handshake, then close_notify both ways (unwrap).
  server-close   `Connection: close`: the stream must end with the server's
                 close_notify (a bare TCP FIN raises with suppress_ragged_eofs off).
  client-close   close_notify from us after a response; the server answers
                 with its own.
  bad-record     a record with a forged tag written under the TLS layer: the
                 server must answer with alert bad_record_mac and close.
  byte-split     the request's records sent one byte per TCP segment.
  many-records   84,000 one-byte records up (pipelined requests byte by byte),
                 then 70,000 pipelined requests (batches of 5,000, under the
                 server's 1 MiB pipelining bound) answered by >= 70,000
                 records down: both sequence numbers pass 2^16 on one connection.
"""

import base64
import json
import os
import socket
import ssl
import struct
import sys
import time

TIMEOUT = 30


def context(ca):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(ca)
    return ctx


def connect(port, ca):
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    tls = context(ca).wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
    if tls.version() != "TLSv1.3":
        fail("negotiated %s, not TLSv1.3" % tls.version())
    return tls


def fail(why):
    print("FAIL " + why, flush=True)
    sys.exit(1)


def read_head(tls, data):
    """Reads until a whole HTTP head is in `data`; returns (head, rest)."""
    while b"\r\n\r\n" not in data:
        chunk = tls.recv(65536)
        if not chunk:
            fail("stream ended inside a response head")
        data += chunk
    return data.split(b"\r\n\r\n", 1)


def read_response(tls, buffered=b""):
    """One HTTP response (Content-Length framed); returns (status, body, rest)."""
    head, rest = read_head(tls, buffered)
    lines = head.decode().split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = tls.recv(65536)
        if not chunk:
            fail("stream ended inside a response body")
        rest += chunk
    return int(lines[0].split(" ")[1]), rest[:length], rest[length:]


HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"


# WebSocket (RFC 6455), client side: masked frames out, unmasked in.
def ws_send(tls, opcode, payload):
    mask = os.urandom(4)
    header = bytes([0x80 | opcode])
    if len(payload) < 126:
        header += bytes([0x80 | len(payload)])
    elif len(payload) < 65536:
        header += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
    else:
        header += bytes([0x80 | 127]) + struct.pack("!Q", len(payload))
    tls.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


class Frames:
    def __init__(self, tls, buffered):
        self.tls, self.data = tls, buffered

    def need(self, count):
        while len(self.data) < count:
            chunk = self.tls.recv(65536)
            if not chunk:
                fail("stream ended inside a WebSocket frame")
            self.data += chunk

    def next(self):
        self.need(2)
        opcode, length = self.data[0] & 0x0F, self.data[1] & 0x7F
        offset = 2
        if length == 126:
            self.need(4)
            length, offset = struct.unpack("!H", self.data[2:4])[0], 4
        elif length == 127:
            self.need(10)
            length, offset = struct.unpack("!Q", self.data[2:10])[0], 10
        self.need(offset + length)
        payload = self.data[offset:offset + length]
        self.data = self.data[offset + length:]
        return opcode, payload

    def json(self, want):
        """The next text message whose `type` is `want` (others skipped)."""
        while True:
            opcode, payload = self.next()
            if opcode == 8:
                fail("closed while waiting for %s: %r" % (want, payload))
            if opcode == 1:
                message = json.loads(payload)
                if message.get("type") == want:
                    return message


def mode_wss(port, ca, token, ticket):
    tls = connect(port, ca)
    key = base64.b64encode(os.urandom(16)).decode()
    tls.sendall(("GET /v1/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode())
    head, rest = read_head(tls, b"")
    if not head.startswith(b"HTTP/1.1 101"):
        fail("upgrade refused: %r" % head[:80])
    frames = Frames(tls, rest)
    ws_send(tls, 1, json.dumps({"type": "hello", "token": token}).encode())
    welcome = frames.json("welcome")
    ws_send(tls, 1, json.dumps({"type": "subscribe", "id": "s1", "ticket": ticket}).encode())
    frames.json("snapshot")
    body = "from python ssl " + "x" * 40000  # several records each way
    ws_send(tls, 1, json.dumps({"type": "command", "id": "c1", "ticket": ticket, "op": "note",
                                "args": {"body": body}}).encode())
    while True:
        delta = frames.json("delta")
        if delta.get("kind") == "message.created":
            break
    if delta["data"]["body"] != body:
        fail("the note came back altered")
    ws_send(tls, 8, struct.pack("!H", 1000))
    while True:
        opcode, payload = frames.next()
        if opcode == 8:
            break
    code = struct.unpack("!H", payload[:2])[0]
    tls.unwrap()  # our close_notify, then the server's (raises if it never comes)
    print("OK welcome=%s note=%d close=%d close_notify=both" % (welcome["user"]["id"], len(body), code), flush=True)


def mode_server_close(port, ca):
    tls = connect(port, ca)
    tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    status, _, rest = read_response(tls)
    extra = tls.recv(4096)  # b"" only after close_notify; a FIN alone raises SSLEOFError
    if rest or extra:
        fail("bytes after the response: %r" % (rest + extra))
    print("OK status=%d close_notify=server" % status, flush=True)


def mode_client_close(port, ca):
    tls = connect(port, ca)
    tls.sendall(HEALTHZ)
    status, _, _ = read_response(tls)
    tls.unwrap()
    print("OK status=%d close_notify=client,server" % status, flush=True)


def mode_bad_record(port, ca):
    tls = connect(port, ca)
    tls.sendall(HEALTHZ)
    status, _, _ = read_response(tls)
    # Under the TLS layer: an application_data record whose tag cannot verify.
    raw = socket.socket(fileno=os.dup(tls.fileno()))
    raw.sendall(bytes([23, 3, 3, 0, 40]) + os.urandom(40))
    try:
        data = tls.recv(4096)
        fail("no alert: read %r" % data)
    except ssl.SSLError as error:
        text = str(error)
        if "BAD_RECORD_MAC" not in text.upper():
            fail("another error: %s" % text)
    # Then the server closes: the raw socket reads EOF (or a reset).
    raw.settimeout(TIMEOUT)
    try:
        while raw.recv(4096):
            pass
    except ConnectionResetError:
        pass
    print("OK status=%d alert=bad_record_mac closed" % status, flush=True)


def mode_byte_split(port, ca):
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context(ca).wrap_bio(incoming, outgoing, server_hostname="localhost")

    def flush_and_fill(required):
        if outgoing.pending:
            raw.sendall(outgoing.read())
        if required:
            data = raw.recv(65536)
            if not data:
                fail("closed")
            incoming.write(data)

    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            flush_and_fill(True)
    flush_and_fill(False)
    tls.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
    tls.write(b"X-Second-Record: yes\r\n\r\n")
    wire = outgoing.read()
    for index in range(len(wire)):  # every byte its own segment
        raw.send(wire[index:index + 1])
        time.sleep(0.002)
    data = b""
    while b"\r\n\r\n" not in data or b'"ok"' not in data:
        try:
            data += tls.read(65536)
        except ssl.SSLWantReadError:
            flush_and_fill(True)
    print("OK %s bytes=%d" % (data.split(b"\r\n")[0].decode(), len(wire)), flush=True)


def mode_many_records(port, ca):
    tls = connect(port, ca)
    # Up: 2,000 requests, one byte per record (72,000 records).
    requests = 2000
    stream = HEALTHZ * requests
    for index in range(len(stream)):
        tls.sendall(stream[index:index + 1])
    buffered = b""
    for _ in range(requests):
        status, _, buffered = read_response(tls, buffered)
        if status != 200:
            fail("status %d on the byte-per-record stream" % status)
    # Down: 70,000 pipelined requests; each response is at least one record.
    # In batches of 5,000 (200 kB), under the server's 1 MiB pipelining bound.
    seen = 0
    for _ in range(14):
        tls.sendall(HEALTHZ * 5000)
        for _ in range(5000):
            status, _, buffered = read_response(tls, buffered)
            if status != 200:
                fail("status %d after %d responses" % (status, seen))
            seen += 1
    tls.unwrap()
    print("OK up_records=%d responses=%d" % (len(stream), requests + seen), flush=True)


def main():
    if len(sys.argv) < 4:
        fail("usage: tls_peer.py MODE PORT CA_FILE [TOKEN TICKET]")
    mode, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    try:
        if mode == "wss":
            mode_wss(port, ca, sys.argv[4], sys.argv[5])
        elif mode == "server-close":
            mode_server_close(port, ca)
        elif mode == "client-close":
            mode_client_close(port, ca)
        elif mode == "bad-record":
            mode_bad_record(port, ca)
        elif mode == "byte-split":
            mode_byte_split(port, ca)
        elif mode == "many-records":
            mode_many_records(port, ca)
        else:
            fail("unknown mode " + mode)
    except (OSError, ssl.SSLError, ValueError, KeyError) as error:
        fail("%s: %s" % (type(error).__name__, error))


if __name__ == "__main__":
    main()
