#!/usr/bin/env python3
"""peekd killed with SIGKILL under load, then checked against what it acknowledged.

Technicians post notes on a steady schedule and viewers resume with random
disconnects, while the server is killed with SIGKILL at random moments and
restarted on the same data directory. A note whose result never arrived is
sent again with the same command id after the reconnect. At the end every
ticket's stored log is compared with what was acknowledged: no acknowledged
note lost, none stored twice, and no viewer saw a seq gap or a duplicate.

Standard library only (raw sockets and a minimal WebSocket client); run by
scripts/chaos.sh, which builds peekd in release mode first.
"""

import argparse
import base64
import collections
import http.client
import json
import os
import random
import secrets
import select
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time

TENANT = "chaos"


class WebSocket:
    """A client of one text-frame JSON conversation: masked frames out, pings
    answered, fragments joined; a close or a dropped socket raises."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(head.split(b"\r\n")[0].decode(errors="replace"))
        self.fragments = b""

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the server")
        self.buf += chunk

    def _frame(self, opcode, payload):
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0xFE, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0xFF, n)
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def send(self, message):
        self._frame(0x1, json.dumps(message).encode())

    def _parse(self):
        """One whole frame from the buffer (fin, opcode, payload), or None;
        nothing is consumed until the frame is complete, so a read timeout
        never loses a partial frame."""
        b = self.buf
        if len(b) < 2:
            return None
        n, at = b[1] & 0x7F, 2
        if n == 126:
            if len(b) < 4:
                return None
            n, at = struct.unpack("!H", b[2:4])[0], 4
        elif n == 127:
            if len(b) < 10:
                return None
            n, at = struct.unpack("!Q", b[2:10])[0], 10
        if len(b) < at + n:
            return None
        self.buf = b[at + n:]
        return b[0] & 0x80, b[0] & 0x0F, b[at:at + n]

    def recv(self, timeout):
        """The next JSON message, or None when `timeout` passes first."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self._parse()
            if frame is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.sock.settimeout(left)
                try:
                    self._fill()
                except socket.timeout:
                    return None
                continue
            fin, opcode, payload = frame
            if opcode == 0x9:
                self._frame(0xA, payload)
            elif opcode == 0x8:
                raise ConnectionError("close frame")
            elif opcode in (0x1, 0x0):
                self.fragments += payload
                if fin:
                    text, self.fragments = self.fragments, b""
                    return json.loads(text)

    def close(self, clean):
        try:
            if clean:
                self._frame(0x8, struct.pack("!H", 1000))
            self.sock.close()
        except OSError:
            pass


def sign_in(port, token):
    ws = WebSocket(port)
    ws.send({"type": "hello", "token": token})
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        m = ws.recv(deadline - time.monotonic())
        if m is None:
            break
        if m.get("type") == "welcome":
            return ws
        if m.get("type") == "error":
            raise ConnectionError(f"sign-in refused: {m}")
    raise ConnectionError("no welcome")


def sign_in_or_pause(port, token):
    """A signed-in connection, or None after a short pause (the server is
    down or restarting)."""
    try:
        return sign_in(port, token)
    except (OSError, ConnectionError, ValueError):
        time.sleep(0.05)
        return None


class Technician(threading.Thread):
    """Posts notes on random tickets at `rate` per second, at most `window`
    unanswered; after a reconnect, every unanswered note goes again with its
    own command id."""

    def __init__(self, name, token, tickets, port, rate, window, seed):
        super().__init__(daemon=True)
        self.name_, self.token, self.tickets, self.port = name, token, tickets, port
        self.rate, self.window = rate, window
        self.rng = random.Random(seed)
        self.pending = {}      # command id -> (ticket, body): sent, not answered
        self.acked = {}        # command id -> (ticket, seq)
        self.errors = collections.Counter()
        self.resends = 0
        self.posting = True
        self.done = threading.Event()
        self.count = 0

    def command(self, ws, cid):
        ticket, body = self.pending[cid]
        ws.send({"type": "command", "id": cid, "ticket": ticket, "op": "note", "args": {"body": body}})

    def run(self):
        next_note = time.monotonic()
        while self.posting or self.pending:
            ws = sign_in_or_pause(self.port, self.token)
            if ws is None:
                continue
            try:
                for cid in list(self.pending):
                    self.resends += 1
                    self.command(ws, cid)
                while self.posting or self.pending:
                    now = time.monotonic()
                    if self.posting and now >= next_note and len(self.pending) < self.window:
                        self.count += 1
                        cid = f"{self.name_}-{self.count}"
                        self.pending[cid] = (self.rng.choice(self.tickets), f"chaos {cid}")
                        self.command(ws, cid)
                        next_note = max(next_note + 1 / self.rate, now - 1)
                        continue
                    m = ws.recv(max(0.001, min(0.05, next_note - now)))
                    if m is None or m.get("id") not in self.pending:
                        continue
                    cid = m["id"]
                    if m.get("type") == "result":
                        self.acked[cid] = (self.pending.pop(cid)[0], m["seq"])
                    elif m.get("type") == "error":
                        self.errors[m.get("code")] += 1
                        if m.get("code") in ("internal", "rate_limited"):
                            time.sleep(0.05)   # nothing changed: the same id again
                            self.command(ws, cid)
                        else:
                            self.pending.pop(cid)
                ws.close(clean=True)
            except (OSError, ConnectionError, ValueError):
                ws.close(clean=False)
                time.sleep(0.02)
        self.done.set()


class Viewer(threading.Thread):
    """Views every ticket; drops its connection after a random 0.3-3 s and
    resumes each ticket with `since`, checking that seqs arrive each once and
    in order."""

    def __init__(self, token, tickets, port, seed):
        super().__init__(daemon=True)
        self.token, self.tickets, self.port = token, tickets, port
        self.rng = random.Random(seed)
        self.last = {}
        self.deliveries = self.gaps = self.duplicates = self.snapshots_on_resume = 0
        self.stopping = False

    def run(self):
        while not self.stopping:
            ws = sign_in_or_pause(self.port, self.token)
            if ws is None:
                continue
            try:
                for t in self.tickets:
                    sub = {"type": "subscribe", "id": f"s-{t}", "ticket": t}
                    if t in self.last:
                        sub["since"] = self.last[t]
                    ws.send(sub)
                until = time.monotonic() + self.rng.uniform(0.3, 3.0)
                while not self.stopping and time.monotonic() < until:
                    m = ws.recv(until - time.monotonic())
                    if m is not None:
                        self.apply(m)
                ws.close(clean=self.rng.random() < 0.5)
            except (OSError, ConnectionError, ValueError):
                ws.close(clean=False)
                time.sleep(0.02)

    def apply(self, m):
        kind, t, seq = m.get("type"), m.get("ticket"), m.get("seq")
        if kind == "snapshot":
            if t in self.last:
                # A resume the server could not serve. Fine by the contract
                # unless the log went backwards (an acknowledged delta lost).
                self.snapshots_on_resume += 1
                if seq < self.last[t]:
                    self.gaps += 1
            self.last[t] = seq
        elif kind == "delta" and seq is not None and t in self.last:
            if seq == self.last[t] + 1:
                self.deliveries += 1
                self.last[t] = seq
            elif seq <= self.last[t]:
                self.duplicates += 1
            else:
                self.gaps += 1
                self.last[t] = seq
        elif kind == "subscribed" and t in self.last and seq != self.last[t]:
            # Everything after `since` must have been replayed before this.
            if seq > self.last[t]:
                self.gaps += 1
            else:
                self.duplicates += 1
            self.last[t] = seq


class Server:
    def __init__(self, peekd, data, port, jwt_secret, service_token, log):
        self.args = [peekd, "--data", data, "--port", str(port), "--jwt-secret", jwt_secret,
                     "--service-token", service_token]
        self.log = log
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=self.log)
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline().decode(errors="replace") if ready else ""
        if not line.startswith("peekd ready"):
            self.proc.kill()
            sys.exit(f"chaos: peekd did not start (got {line!r}); see {self.log.name}")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()


def api(port, service_token, path, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", path, json.dumps(body), {"Authorization": f"Bearer {service_token}", "Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    if r.status not in (200, 201):
        sys.exit(f"chaos: POST {path} answered {r.status}: {data[:300]!r}")
    return json.loads(data)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--peekd", required=True)
    p.add_argument("--kills", type=int, default=100)
    p.add_argument("--technicians", type=int, default=4)
    p.add_argument("--viewers", type=int, default=4)
    p.add_argument("--tickets", type=int, default=16)
    p.add_argument("--rate", type=float, default=100, help="notes per second per technician")
    p.add_argument("--window", type=int, default=4, help="unanswered notes per technician")
    p.add_argument("--up", type=float, nargs=2, default=(0.3, 2.0), help="seconds between a start and the next kill")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--keep", action="store_true", help="keep the data directory")
    o = p.parse_args()
    seed = o.seed if o.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)

    started = time.monotonic()
    data = tempfile.mkdtemp(prefix="peek-chaos-")
    log = open(os.path.join(data, "peekd.log"), "ab")
    jwt_secret, service_token = secrets.token_hex(24), secrets.token_hex(24)
    port = free_port()
    server = Server(o.peekd, os.path.join(data, "db"), port, jwt_secret, service_token, log)
    server.start()

    api(port, service_token, "/v1/tenants", {"id": TENANT, "name": "Chaos"})
    people = [f"tech-{i}" for i in range(1, o.technicians + 1)] + [f"viewer-{i}" for i in range(1, o.viewers + 1)]
    for person in people:
        api(port, service_token, f"/v1/tenants/{TENANT}/technicians", {"id": person, "name": person, "email": f"{person}@chaos.invalid"})
    tickets = [api(port, service_token, f"/v1/tenants/{TENANT}/tickets",
                   {"subject": f"Chaos {i}", "client": "Chaos", "priority": "normal",
                    "contact": {"name": "Chaos contact", "email": "contact@chaos.invalid"}})["id"] for i in range(o.tickets)]

    def token(person):
        out = subprocess.run([o.peekd, "token", "--tenant", TENANT, "--user", person, "--ttl", "7200", "--jwt-secret", jwt_secret],
                             check=True, capture_output=True, text=True).stdout
        return out.strip().splitlines()[-1]

    techs = [Technician(f"tech-{i + 1}", token(f"tech-{i + 1}"), tickets, port, o.rate, o.window, rng.random()) for i in range(o.technicians)]
    viewers = [Viewer(token(f"viewer-{i + 1}"), tickets, port, rng.random()) for i in range(o.viewers)]
    for t in techs + viewers:
        t.start()

    for _ in range(o.kills):
        time.sleep(rng.uniform(*o.up))
        server.kill()
        server.start()

    # Let every unanswered note be answered, then let the viewers catch up.
    time.sleep(1)
    for t in techs:
        t.posting = False
    for t in techs:
        t.done.wait(60)
    time.sleep(3)
    for v in viewers:
        v.stopping = True
    for v in viewers:
        v.join(10)
    server.stop()

    db = sqlite3.connect(os.path.join(data, "db", "peek.sqlite"))
    rows = db.execute("SELECT ticket, seq, body FROM messages WHERE body LIKE 'chaos %'").fetchall()
    db.close()
    stored = collections.defaultdict(list)
    for ticket, seq, body in rows:
        stored[body].append((ticket, seq))
    twice = sum(1 for places in stored.values() if len(places) > 1)
    acked = {f"chaos {cid}": place for t in techs for cid, place in t.acked.items()}
    lost = sum(1 for body, place in acked.items() if place not in stored.get(body, []))
    unanswered = sum(len(t.pending) for t in techs)
    gaps = sum(v.gaps for v in viewers)
    duplicates = sum(v.duplicates for v in viewers)
    errors = sum((t.errors for t in techs), collections.Counter())
    print(f"chaos: kills={o.kills} acknowledged={len(acked)} stored={len(rows)} deliveries={sum(v.deliveries for v in viewers)} "
          f"gaps={gaps} duplicates={duplicates} lost={lost} stored_twice={twice} "
          f"(resent={sum(t.resends for t in techs)} unanswered={unanswered} errors={dict(errors)} "
          f"snapshots_on_resume={sum(v.snapshots_on_resume for v in viewers)} seed={seed} seconds={time.monotonic() - started:.0f})")
    log.close()
    failed = gaps or duplicates or lost or twice or unanswered
    if o.keep or failed:
        print(f"chaos: data and log kept in {data}", file=sys.stderr)
    else:
        shutil.rmtree(data, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
