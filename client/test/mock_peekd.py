#!/usr/bin/env python3
"""mock_peekd: a stand-in for peekd for developing the browser client.

Standard library only (asyncio; a minimal RFC 6455 server of its own). It
speaks the technician side of CONTRACT.md plus the demo and /v1/me endpoints
the Peek page uses, serves the client/ directory, and takes the same command
line as `peekd --demo` so browser_test.py can run against it:

    python3 client/test/mock_peekd.py --demo --port 0 --tls-port 0 \
        --agent-port 0 --data /tmp/x

It prints `peekd ready plain=... tls=... agent=... url=http://.../`.
There is no TLS and no agent listener (their ports print as 0). Of the
back-end API it has `POST /v1/inbound-email`, `POST /v1/tickets/{id}/summary`
and `PATCH /v1/tickets/{id}` (service token from --service-token or
PEEK_SERVICE_TOKEN). Extra flags: `--simulate` streams fake telemetry and
answers consent requests as a connected agent would; `--email-ok` pretends an
email account is configured. The simulated agent's `agent.status` follows the
mock-only `POST /v1/mock/agent-status` {"asset", "online"} (service token).
mock_peekd_test.py checks these against protocol.md.

Known gaps against protocol.md (not needed by the page so far): no `refresh`
frame and no `exp` in `welcome`; `start_session` ignores `kind`, and
`session.status` lacks `kind`, `created_at` and `id`; no shell relay
(`session_input`, `session_handover`, `session.output`); `time.updated` lacks
`entry_count` and `contract`; `sla.tick` lacks `targets`; a `stale` error's
`missed` is not capped at 50 and has no `missed_total`; no tenant, asset,
technician, email-account, SLA-policy, ticket GET, sends, attachment or
per-tenant inbound routes; no rate limits or output bounds.

It is a development aid, not the product: nothing is persisted.
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import mimetypes
import os
import random
import re
import signal
import struct
import sys
import time
from datetime import datetime, timezone
from urllib.parse import urlsplit, unquote

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_MESSAGE = 1 << 20
SECRET = b"mock-peekd-secret"


def now_iso(ts=None):
    ts = time.time() if ts is None else ts
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(sub, name, tenant="demo", ttl=8 * 3600):
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"sub": sub, "tenant": tenant, "name": name, "role": "technician", "exp": int(time.time()) + ttl}
    payload = b64url(json.dumps(claims).encode())
    sig = hmac.new(SECRET, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(sig)}"


def verify_token(token):
    try:
        h, p, s = token.split(".")
        expected = hmac.new(SECRET, f"{h}.{p}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))):
            return None
        claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
        if claims.get("exp", 0) < time.time():
            return None
        return claims
    except Exception:
        return None


STATUS_LABEL = {
    "new": "New", "open": "Open", "in_progress": "In progress",
    "waiting_on_customer": "Waiting on customer", "resolved": "Resolved", "closed": "Closed",
}
PRIORITIES = ["low", "normal", "high", "urgent"]
SLA_POLICY = {"low": (8 * 3600, 72 * 3600), "normal": (4 * 3600, 24 * 3600),
              "high": (3600, 8 * 3600), "urgent": (900, 4 * 3600)}


class CommandError(Exception):
    def __init__(self, code, message, **extra):
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


class Ticket:
    def __init__(self, tid, number, subject, contact, client, priority, status, assignee, asset, created_ago):
        self.id = tid
        self.number = number
        self.subject = subject
        self.contact = contact
        self.client = client
        self.priority = priority
        self.status = status
        self.assignee = assignee
        self.asset = asset
        self.first_response_at = None
        self.version = 1
        self.created = time.time() - created_ago
        self.seq = 0
        self.log = []  # (seq, frame)
        self.messages = []  # dicts with seq
        self.session = None
        self.summary = None
        self.time = {"active": None, "entries": [], "total": 0}
        self.related = []
        self.breached = set()
        self.paused_remaining = None
        self.subscribers = {}  # conn -> subscribe order


class Hub:
    def __init__(self, args):
        self.args = args
        self.techs = {"tech-ana": "Ana Ruiz", "tech-ben": "Ben Okafor", "tech-cho": "Cho Park"}
        self.assets = {"asset-1": {"id": "asset-1", "name": "ANA-LAPTOP", "agent": "agent-demo-1",
                                   "online": bool(args.simulate), "telemetry": None,
                                   "posture": {"status": "warning", "summary": "2 of 6 checks need attention",
                                               "checks": [
                                                   {"name": "Disk encryption", "status": "pass"},
                                                   {"name": "Firewall", "status": "pass"},
                                                   {"name": "EDR agent", "status": "pass"},
                                                   {"name": "OS patches", "status": "fail", "detail": "3 pending"},
                                                   {"name": "Screen lock", "status": "warn", "detail": "15 min"},
                                                   {"name": "Local admin", "status": "pass"}],
                                               "at": now_iso()}}}
        self.tickets = {}
        self.idempotency = {}
        self.order = 0
        self.seed()

    def tech(self, tid):
        return {"id": tid, "name": self.techs[tid]} if tid in self.techs else None

    def seed(self):
        t = Ticket("T-1001", 1001, "VPN drops every hour and the laptop fan is loud",
                   {"name": "Maria Lopez", "email": "maria.lopez@harborlaw.example"}, "Harbor Law LLP",
                   "high", "open", "tech-ana", "asset-1", 5 * 3600)
        self.tickets[t.id] = t
        base = t.created
        self.seed_message(t, "customer", {"id": "contact-maria", "name": "Maria Lopez"},
                          "Hi, since Monday the VPN disconnects roughly every hour and I have to sign in again. "
                          "The fan also runs loud even when I'm only in Outlook.", "email", base + 10)
        self.seed_message(t, "system", {"id": "system", "name": "System"}, "Ticket created from email", "system", base + 11)
        self.seed_message(t, "system", {"id": "system", "name": "System"}, "Assigned to Ana Ruiz", "system", base + 60)
        self.seed_message(t, "technician", self.tech("tech-ana"),
                          "Thanks Maria — I'm taking a look. Could you tell me which Wi-Fi network you're on when it drops?",
                          "email", base + 1800)
        t.first_response_at = now_iso(base + 1800)
        self.seed_message(t, "customer", {"id": "contact-maria", "name": "Maria Lopez"},
                          "Office Wi-Fi (HARBOR-5G). It happened again just now, right after a Teams call.",
                          "agent_mtls", base + 3 * 3600)
        self.seed_message(t, "internal_note", self.tech("tech-ana"),
                          "Agent shows the Wi-Fi driver is 2 years old and 3 OS patches pending. Plan: patch + driver update tonight.",
                          "web", base + 3 * 3600 + 600)
        t.summary = {"text": "Maria's VPN disconnects about hourly on office Wi-Fi (HARBOR-5G), usually after Teams calls; "
                             "the fan is loud under light load. Agent data shows an outdated Wi-Fi driver and pending OS patches. "
                             "Ana plans to patch and update the driver tonight.",
                     "model": "nexie-1.2", "at": now_iso(base + 3 * 3600 + 700), "covers": t.seq - 1}
        t.time = {"active": None, "entries": [
            {"technician": self.tech("tech-ana"), "started_at": now_iso(base + 1700), "seconds": 1260, "note": "Triage and first reply"}],
            "total": 1260}
        t.related = [{"id": "T-1004", "number": 1004, "subject": "New starter: accounts for J. Smith", "status": "in_progress"}]

        t2 = Ticket("T-1002", 1002, "Shared mailbox not syncing on iPhone",
                    {"name": "Tom Becker", "email": "tom@northwind.example"}, "Northwind Traders",
                    "normal", "new", None, None, 40 * 60)
        self.tickets[t2.id] = t2
        self.seed_message(t2, "customer", {"id": "contact-tom", "name": "Tom Becker"},
                          "The sales@ shared mailbox stopped updating on my iPhone yesterday.", "email", t2.created + 5)
        t3 = Ticket("T-1003", 1003, "Printer on the 3rd floor shows offline",
                    {"name": "Front Desk", "email": None}, "Harbor Law LLP",
                    "low", "waiting_on_customer", "tech-ben", None, 26 * 3600)
        self.tickets[t3.id] = t3
        self.seed_message(t3, "customer", {"id": "contact-front", "name": "Front Desk"},
                          "The printer by the kitchen says offline again.", "agent_mtls", t3.created + 5)
        self.seed_message(t3, "system", {"id": "system", "name": "System"},
                          "Status changed from Open to Waiting on customer", "system", t3.created + 7200)
        t3.paused_remaining = 20 * 3600
        t4 = Ticket("T-1004", 1004, "New starter: accounts for J. Smith",
                    {"name": "Priya Shah", "email": "priya@harborlaw.example"}, "Harbor Law LLP",
                    "normal", "in_progress", "tech-cho", None, 3 * 3600)
        self.tickets[t4.id] = t4
        t5 = Ticket("T-1005", 1005, "Nightly server backup failed",
                    {"name": "Omar Haddad", "email": "omar@finch.example"}, "Finch Logistics",
                    "urgent", "open", None, None, 14 * 60)
        self.tickets[t5.id] = t5
        self.seed_message(t5, "customer", {"id": "contact-omar", "name": "Omar Haddad"},
                          "Backup job on FS01 failed last night with error 0x80070070.", "email", t5.created + 3)

    def seed_message(self, t, channel, author, body, via, ts):
        t.seq += 1
        m = {"id": f"m-{t.id}-{t.seq}", "channel": channel, "author": author, "body": body, "via": via,
             "at": now_iso(ts), "attachments": [], "seq": t.seq}
        t.messages.append(m)
        t.log.append((t.seq, {"type": "delta", "ticket": t.id, "seq": t.seq, "at": m["at"],
                              "kind": "message.created", "data": {k: v for k, v in m.items() if k != "seq"}}))

    # -- views -------------------------------------------------------------

    def ticket_json(self, t):
        return {"id": t.id, "number": t.number, "subject": t.subject, "status": t.status, "priority": t.priority,
                "assignee": self.tech(t.assignee) if t.assignee else None, "contact": t.contact, "client": t.client,
                "asset": ({"id": t.asset, "name": self.assets[t.asset]["name"]} if t.asset else None),
                "first_response_at": t.first_response_at, "version": t.version}

    def sla(self, t):
        now = time.time()
        resp_s, res_s = SLA_POLICY[t.priority]
        out = {"response": None, "resolution": None}
        if t.first_response_at is None and t.status not in ("resolved", "closed"):
            due = t.created + resp_s
            out["response"] = {"due_at": now_iso(due), "remaining": int(due - now), "breached": due < now, "paused": False}
        if t.status not in ("resolved", "closed"):
            due = t.created + res_s
            if t.status == "waiting_on_customer":
                rem = t.paused_remaining if t.paused_remaining is not None else int(due - now)
                out["resolution"] = {"due_at": None, "remaining": rem, "breached": rem < 0, "paused": True}
            else:
                out["resolution"] = {"due_at": now_iso(due), "remaining": int(due - now), "breached": due < now, "paused": False}
        return out

    def viewers(self, t):
        seen = {}
        for conn, order in sorted(t.subscribers.items(), key=lambda kv: kv[1]):
            uid = conn.user["id"]
            mode = conn.composing.get(t.id)
            if uid in seen:
                seen[uid]["composing"] = seen[uid]["composing"] or mode
            else:
                seen[uid] = {"id": uid, "name": conn.user["name"], "composing": mode}
        return list(seen.values())

    def snapshot_state(self, t):
        asset = None
        if t.asset:
            a = self.assets[t.asset]
            asset = {"id": a["id"], "name": a["name"], "agent": a["agent"], "agent_online": a["online"],
                     "telemetry": a["telemetry"], "posture": a["posture"]}
        return {"ticket": self.ticket_json(t), "messages": [dict(m) for m in t.messages[-50:]],
                "sla": self.sla(t), "asset": asset, "session": t.session, "summary": t.summary,
                "time": t.time, "related": t.related, "viewers": self.viewers(t)}

    # -- deltas ------------------------------------------------------------

    def durable(self, t, kind, data):
        t.seq += 1
        frame = {"type": "delta", "ticket": t.id, "seq": t.seq, "at": now_iso(), "kind": kind, "data": data}
        t.log.append((t.seq, frame))
        del t.log[:-self.args.retain]
        self.broadcast(t, frame)
        return t.seq

    def ephemeral(self, t, kind, data):
        self.broadcast(t, {"type": "delta", "ticket": t.id, "at": now_iso(), "kind": kind, "data": data})

    def broadcast(self, t, frame):
        text = json.dumps(frame)
        for conn in list(t.subscribers):
            conn.send_text(text)

    def presence_changed(self, t):
        self.ephemeral(t, "presence.updated", {"viewers": self.viewers(t)})

    def add_message(self, t, channel, author, body, via):
        m = {"id": f"m-{t.id}-{t.seq + 1}", "channel": channel, "author": author, "body": body, "via": via,
             "at": now_iso(), "attachments": []}
        seq = self.durable(t, "message.created", m)
        t.messages.append({**m, "seq": seq})
        return seq

    def ticket_update(self, t, **fields):
        t.version += 1
        for k, v in fields.items():
            setattr(t, k, v)
        data = {k: (self.tech(v) if k == "assignee" and v else v) for k, v in fields.items()}
        data["version"] = t.version
        return self.durable(t, "ticket.updated", data)

    # -- commands ----------------------------------------------------------

    def run_command(self, conn, frame):
        t = self.tickets.get(frame.get("ticket"))
        if t is None:
            raise CommandError("not_found", "No such ticket")
        op = frame.get("op")
        args = frame.get("args")
        if not isinstance(args, dict):
            raise CommandError("invalid", "args must be an object")
        me = conn.user
        if_version = frame.get("if_version")
        if if_version is not None and op in ("set_status", "set_priority", "assign", "take_ownership") and if_version != t.version:
            raise CommandError("conflict", "The ticket changed since you loaded it; review and try again")
        if op in ("reply", "note"):
            body = args.get("body")
            if not isinstance(body, str) or not body.strip():
                raise CommandError("invalid", "The message is empty")
            seen = frame.get("seen")
            if isinstance(seen, int) and not args.get("force"):
                missed = [{k: v for k, v in m.items() if k != "seq"} for m in t.messages
                          if m["seq"] > seen and m["channel"] in ("customer", "technician")
                          and m["author"].get("id") != me["id"]]
                if missed:
                    raise CommandError("stale", f"{len(missed)} new message(s) arrived since you started writing", missed=missed)
            if op == "reply":
                if not t.contact.get("email"):
                    raise CommandError("no_contact_email", "This ticket's contact has no email address")
                if not self.args.email_ok:
                    raise CommandError("no_email_account", "No email account is configured")
                seq = self.add_message(t, "technician", me, body, "email")
                if t.first_response_at is None:
                    seq = self.ticket_update(t, first_response_at=now_iso())
                return seq
            return self.add_message(t, "internal_note", me, body, "web")
        if op == "set_status":
            status = args.get("status")
            if status not in STATUS_LABEL:
                raise CommandError("invalid", f"Unknown status {status!r}")
            if status == t.status:
                return t.seq
            old = t.status
            if status == "waiting_on_customer":
                t.paused_remaining = self.sla(t)["resolution"]["remaining"] if self.sla(t)["resolution"] else None
            elif old == "waiting_on_customer" and t.paused_remaining is not None:
                t.created = time.time() + t.paused_remaining - SLA_POLICY[t.priority][1]
            self.ticket_update(t, status=status)
            self.send_tick(t)
            return self.add_message(t, "system", {"id": "system", "name": "System"},
                                    f"{me['name']} changed status from {STATUS_LABEL[old]} to {STATUS_LABEL[status]}", "system")
        if op == "set_priority":
            pr = args.get("priority")
            if pr not in PRIORITIES:
                raise CommandError("invalid", f"Unknown priority {pr!r}")
            if pr == t.priority:
                return t.seq
            old = t.priority
            self.ticket_update(t, priority=pr)
            return self.add_message(t, "system", {"id": "system", "name": "System"},
                                    f"{me['name']} changed priority from {old.title()} to {pr.title()}", "system")
        if op in ("assign", "take_ownership"):
            tid = me["id"] if op == "take_ownership" else args.get("technician")
            if tid not in self.techs:
                raise CommandError("invalid", f"There is no technician {tid!r} in this tenant")
            self.ticket_update(t, assignee=tid)
            text = f"{me['name']} took ownership" if op == "take_ownership" else f"{me['name']} assigned the ticket to {self.techs[tid]}"
            return self.add_message(t, "system", {"id": "system", "name": "System"}, text, "system")
        if op == "start_session":
            if not t.asset:
                raise CommandError("invalid", "This ticket has no linked asset")
            if not self.assets[t.asset]["online"]:
                raise CommandError("agent_offline", "The asset's agent is offline")
            if t.session and t.session.get("status") in ("awaiting_consent", "active"):
                raise CommandError("conflict", "A session is already running")
            sid = f"s-{int(time.time() * 1000)}"
            expires = now_iso(time.time() + self.args.consent_timeout)
            t.session = {"id": sid, "session": sid, "status": "awaiting_consent", "technician": me, "expires_at": expires}
            seq = self.durable(t, "session.status", {"session": sid, "status": "awaiting_consent",
                                                     "technician": me, "expires_at": expires})
            asyncio.get_running_loop().call_later(3.0, self.simulated_consent, t, sid)
            return seq
        if op == "end_session":
            if not t.session or t.session.get("status") != "active":
                raise CommandError("invalid", "No session is active")
            t.session = {**t.session, "status": "ended"}
            return self.durable(t, "session.status", {"session": t.session["id"], "status": "ended"})
        if op == "timer_start":
            if t.time["active"]:
                raise CommandError("conflict", "A timer is already running on this ticket")
            t.time = {**t.time, "active": {"technician": me, "started_at": now_iso()}}
            return self.durable(t, "time.updated", t.time)
        if op == "timer_stop":
            active = t.time["active"]
            if not active:
                raise CommandError("invalid", "No timer is running")
            started = datetime.strptime(active["started_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
            secs = max(1, int(time.time() - started))
            entry = {"technician": active["technician"], "started_at": active["started_at"], "seconds": secs,
                     "note": args.get("note") if isinstance(args.get("note"), str) else None}
            t.time = {"active": None, "entries": t.time["entries"] + [entry], "total": t.time["total"] + secs}
            return self.durable(t, "time.updated", t.time)
        raise CommandError("invalid", f"Unknown op {op!r}")

    def set_agent_online(self, asset_id, online):
        # As peekd (protocol.md §5): the viewers of every ticket linked to
        # the asset get the ephemeral agent.status; nothing if unchanged.
        a = self.assets[asset_id]
        if a["online"] == online:
            return
        a["online"] = online
        for t in self.tickets.values():
            if t.asset == asset_id:
                self.ephemeral(t, "agent.status", {"asset": {"id": a["id"], "name": a["name"]}, "online": online})

    def patch_ticket(self, t, body):
        # As peekd (protocol.md §9.2): subject and/or contact; only the fields
        # sent change; one ticket.updated with the changed ones and the
        # unchanged version; a refused body changes nothing.
        if not isinstance(body, dict) or ("subject" not in body and "contact" not in body):
            raise CommandError("invalid", 'Send "subject" and/or "contact" {"name", "email"}: the fields this call changes.')
        subject, contact = t.subject, dict(t.contact)
        if "subject" in body:
            s = body["subject"]
            if not isinstance(s, str) or not s or len(s.encode()) > 500:
                raise CommandError("invalid", '"subject" must be a non-empty string of at most 500 bytes.')
            subject = s
        if "contact" in body:
            c = body["contact"]
            if not isinstance(c, dict):
                raise CommandError("invalid", '"contact" must be an object with "name" and/or "email".')
            if "name" in c:
                if not isinstance(c["name"], str) or not c["name"] or len(c["name"].encode()) > 200:
                    raise CommandError("invalid", '"contact.name" must be a non-empty string of at most 200 bytes.')
                contact["name"] = c["name"]
            if "email" in c:
                e = c["email"]
                if e is not None and (not isinstance(e, str) or "@" not in e or len(e.encode()) > 320):
                    raise CommandError("invalid", '"contact.email" must be an address with @ of at most 320 bytes, or null.')
                contact["email"] = e
        changed = []
        data = {}
        if subject != t.subject:
            t.subject = subject
            changed.append("subject")
            data["subject"] = subject
        if contact != t.contact:
            t.contact = contact
            changed.append("contact")
            data["contact"] = {"name": contact["name"], "email": contact.get("email")}
        if changed:
            data["version"] = t.version
            self.durable(t, "ticket.updated", data)
        return {"ticket": t.id, "seq": t.seq, "changed": changed}

    def simulated_consent(self, t, sid):
        if t.session and t.session.get("id") == sid and t.session["status"] == "awaiting_consent":
            t.session = {**t.session, "status": "active", "started_at": now_iso()}
            self.durable(t, "session.status", {"session": sid, "status": "active", "started_at": t.session["started_at"]})

    # -- periodic ----------------------------------------------------------

    def send_tick(self, t):
        sla = self.sla(t)
        for target in ("response", "resolution"):
            clock = sla[target]
            if clock and clock["breached"] and target not in t.breached and not clock["paused"]:
                t.breached.add(target)
                self.durable(t, "sla.breached", {"target": target, "due_at": clock["due_at"]})
        self.ephemeral(t, "sla.tick", sla)

    async def ticker(self):
        while True:
            await asyncio.sleep(self.args.sla_tick)
            for t in self.tickets.values():
                if t.subscribers:
                    self.send_tick(t)

    async def telemetry(self):
        values = {"cpu": 34.0, "ram": 61.0, "disk": 72.0}
        while True:
            await asyncio.sleep(2.0)
            for k in values:
                values[k] = max(1.0, min(99.0, values[k] + random.uniform(-6, 6) * (0.2 if k == "disk" else 1)))
            a = self.assets["asset-1"]
            a["telemetry"] = {"cpu": round(values["cpu"]), "ram": round(values["ram"]), "disk": round(values["disk"]), "at": now_iso()}
            for t in self.tickets.values():
                if t.asset == "asset-1" and t.subscribers:
                    self.ephemeral(t, "asset.telemetry", {"asset": {"id": "asset-1", "name": a["name"]}, **a["telemetry"]})


class Conn:
    def __init__(self, hub, reader, writer):
        self.hub = hub
        self.reader = reader
        self.writer = writer
        self.user = None
        self.subs = set()
        self.composing = {}
        self.closed = False

    def send_raw(self, opcode, payload: bytes):
        if self.closed:
            return
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, n)
        elif n < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 127, n)
        try:
            self.writer.write(header + payload)
        except Exception:
            self.closed = True

    def send_text(self, text):
        self.send_raw(0x1, text.encode())

    def send(self, frame):
        self.send_text(json.dumps(frame))

    def close(self, code, reason=""):
        self.send_raw(0x8, struct.pack("!H", code) + reason.encode())
        self.closed = True

    async def read_message(self):
        parts = []
        opcode_first = None
        while True:
            b1, b2 = await self.reader.readexactly(2)
            fin, opcode = b1 & 0x80, b1 & 0x0F
            n = b2 & 0x7F
            if n == 126:
                n = struct.unpack("!H", await self.reader.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            if n > MAX_MESSAGE:
                self.close(1009, "too big")
                return None, None
            mask = await self.reader.readexactly(4) if b2 & 0x80 else b"\0\0\0\0"
            data = bytearray(await self.reader.readexactly(n))
            for i in range(n):
                data[i] ^= mask[i % 4]
            if opcode == 0x9:
                self.send_raw(0xA, bytes(data))
                continue
            if opcode == 0xA:
                continue
            if opcode == 0x8:
                code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                if not self.closed:
                    self.close(1000 if code == 1005 else code)
                return 0x8, code
            if opcode != 0x0:
                opcode_first = opcode
            parts.append(bytes(data))
            if fin:
                return opcode_first, b"".join(parts)

    async def heartbeat(self):
        while not self.closed:
            await asyncio.sleep(self.hub.args.heartbeat)
            self.send_raw(0x9, b"hb")

    async def run(self):
        hb = asyncio.create_task(self.heartbeat())
        try:
            hello_deadline = time.time() + self.hub.args.hello_timeout
            while not self.closed:
                timeout = None if self.user else max(0.1, hello_deadline - time.time())
                try:
                    opcode, payload = await asyncio.wait_for(self.read_message(), timeout)
                except asyncio.TimeoutError:
                    self.send({"type": "error", "code": "unauthorized", "message": "No hello in time"})
                    self.close(4401, "unauthorized")
                    break
                if opcode is None or opcode == 0x8:
                    break
                if opcode == 0x2:
                    self.close(1003, "binary not accepted")
                    break
                await self.on_text(payload.decode("utf-8", "replace"))
                await self.writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            hb.cancel()
            self.closed = True
            for tid in list(self.subs):
                t = self.hub.tickets[tid]
                t.subscribers.pop(self, None)
                self.hub.presence_changed(t)
            try:
                await self.writer.drain()
                self.writer.close()
            except Exception:
                pass

    async def on_text(self, text):
        hub = self.hub
        try:
            frame = json.loads(text)
            ftype = frame["type"]
            assert isinstance(ftype, str)
        except Exception:
            self.send({"type": "error", "code": "invalid", "message": "Frames are JSON objects with a string type"})
            return
        fid = frame.get("id")
        if self.user is None:
            claims = verify_token(str(frame.get("token", ""))) if ftype == "hello" else None
            if not claims or claims.get("sub") not in hub.techs:
                self.send({"type": "error", "code": "unauthorized", "message": "The token was refused"})
                self.close(4401, "unauthorized")
                return
            self.user = {"id": claims["sub"], "name": hub.techs[claims["sub"]], "tenant": claims.get("tenant", "demo")}
            self.send({"type": "welcome", "user": self.user, "heartbeat": hub.args.heartbeat})
            return
        if ftype == "subscribe":
            t = hub.tickets.get(frame.get("ticket"))
            if t is None:
                self.send({"type": "error", "id": fid, "code": "not_found", "message": "No such ticket"})
                return
            new = self not in t.subscribers
            if new:
                hub.order += 1
                t.subscribers[self] = hub.order
                self.subs.add(t.id)
            since = frame.get("since")
            oldest = t.log[0][0] if t.log else t.seq + 1
            if isinstance(since, int) and oldest - 1 <= since <= t.seq:
                for seq, delta in t.log:
                    if seq > since:
                        self.send(delta)
                self.send({"type": "subscribed", "id": fid, "ticket": t.id, "seq": t.seq})
            else:
                self.send({"type": "snapshot", "id": fid, "ticket": t.id, "seq": t.seq, "state": hub.snapshot_state(t)})
            if new:
                hub.presence_changed(t)
            return
        if ftype == "history":
            # As peekd (protocol.md §3.4): the messages with seq < before, oldest first.
            t = hub.tickets.get(frame.get("ticket"))
            before, limit = frame.get("before"), frame.get("limit") or 50
            if not isinstance(before, int) or before < 1 or not isinstance(limit, int) or not 1 <= limit <= 100:
                self.send({"type": "error", "id": fid, "code": "invalid", "message": "history needs an integer before >= 1 and a limit of 1-100"})
                return
            if t is None:
                self.send({"type": "error", "id": fid, "code": "not_found", "message": "No such ticket"})
                return
            older = [m for m in t.messages if isinstance(m.get("seq"), int) and m["seq"] < before]
            self.send({"type": "history", "id": fid, "ticket": t.id, "messages": [dict(m) for m in older[-limit:]],
                       "more": len(older) > limit})
            return
        if ftype == "unsubscribe":
            t = hub.tickets.get(frame.get("ticket"))
            if t and self in t.subscribers:
                t.subscribers.pop(self, None)
                self.subs.discard(t.id)
                self.composing.pop(t.id, None)
                hub.presence_changed(t)
            return
        if ftype == "composing":
            t = hub.tickets.get(frame.get("ticket"))
            mode = frame.get("mode")
            if t and self in t.subscribers and mode in ("reply", "note", None):
                if self.composing.get(t.id) != mode:
                    self.composing[t.id] = mode
                    hub.presence_changed(t)
            return
        if ftype == "command":
            key = (self.user["id"], fid)
            cached = hub.idempotency.get(key)
            if cached and cached[0] > time.time() - 600:
                self.send(cached[1])
                return
            if self.hub.args.command_delay:
                await asyncio.sleep(self.hub.args.command_delay)
            try:
                seq = hub.run_command(self, frame)
                answer = {"type": "result", "id": fid, "ok": True, "seq": seq}
            except CommandError as e:
                answer = {"type": "error", "id": fid, "code": e.code, "message": e.message, **e.extra}
            if fid is not None:
                hub.idempotency[key] = (time.time(), answer)
            self.send(answer)
            return
        self.send({"type": "error", "id": fid, "code": "invalid", "message": f"Unknown frame type {ftype!r}"})


class Server:
    def __init__(self, args):
        self.args = args
        self.hub = Hub(args)
        self.static_root = os.path.realpath(args.static)

    def json_response(self, writer, status, body):
        data = json.dumps(body).encode()
        reason = {200: "OK", 201: "Created", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
                  422: "Unprocessable Content"}.get(status, "OK")
        writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                     f"Cache-Control: no-store\r\nConnection: close\r\n\r\n".encode() + data)

    def bearer_user(self, headers):
        auth = headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            return None
        claims = verify_token(auth[7:].strip())
        if not claims or claims.get("sub") not in self.hub.techs:
            return None
        return claims

    def inbound_email(self, writer, body):
        import email
        from email import policy
        msg = email.message_from_bytes(body, policy=policy.default)
        match = re.search(r"\[#(\d+)\]", str(msg.get("Subject", "")))
        t = next((x for x in self.hub.tickets.values() if match and x.number == int(match.group(1))), None)
        if t is None:
            self.json_response(writer, 422, {"error": {"code": "invalid", "message": "No ticket tag in the subject"}})
            return
        part = msg.get_body(preferencelist=("plain",))
        text = part.get_content().strip() if part else ""
        name, addr = email.utils.parseaddr(str(msg.get("From", "")))
        seq = self.hub.add_message(t, "customer", {"id": f"contact:{addr}", "name": name or addr}, text, "email")
        self.json_response(writer, 201, {"ticket": t.id, "seq": seq})

    async def handle(self, reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except Exception:
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, _ = lines[0].split(" ", 2)
        except ValueError:
            writer.close()
            return
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        body = b""
        if int(headers.get("content-length", "0") or 0) > 0:
            body = await reader.readexactly(int(headers["content-length"]))
        path = unquote(urlsplit(target).path)
        hub = self.hub
        if path == "/v1/ws" and headers.get("upgrade", "").lower() == "websocket":
            key = headers.get("sec-websocket-key", "")
            accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
            writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
            await Conn(hub, reader, writer).run()
            return
        if path == "/healthz":
            self.json_response(writer, 200, {"ok": True})
        elif path == "/v1/demo/technicians" and method == "GET" and self.args.demo:
            self.json_response(writer, 200, {"technicians": [{"id": k, "name": v} for k, v in hub.techs.items()]})
        elif path == "/v1/demo/sign-in" and method == "POST" and self.args.demo:
            try:
                tid = json.loads(body or b"{}").get("technician")
            except Exception:
                tid = None
            if tid not in hub.techs:
                self.json_response(writer, 400, {"error": {"code": "invalid", "message": "Unknown technician"}})
            else:
                self.json_response(writer, 200, {"token": make_token(tid, hub.techs[tid]),
                                                 "user": {"id": tid, "name": hub.techs[tid], "tenant": "demo"}})
        elif path in ("/v1/me/tickets", "/v1/me/technicians") and method == "GET":
            if not self.bearer_user(headers):
                self.json_response(writer, 401, {"error": {"code": "unauthorized", "message": "Sign in again"}})
            elif path.endswith("tickets"):
                self.json_response(writer, 200, {"tickets": [
                    {k: v for k, v in hub.ticket_json(t).items() if k in ("id", "number", "subject", "status", "priority",
                                                                          "client", "contact", "assignee")}
                    for t in hub.tickets.values()]})
            else:
                self.json_response(writer, 200, {"technicians": [{"id": k, "name": v} for k, v in hub.techs.items()]})
        elif path == "/v1/inbound-email" and method == "POST":
            if headers.get("authorization", "") != f"Bearer {self.args.service_token}":
                self.json_response(writer, 401, {"error": {"code": "unauthorized", "message": "Bad service token"}})
            else:
                self.inbound_email(writer, body)
        elif re.fullmatch(r"/v1/tickets/[^/]+", path) and method == "PATCH":
            t = hub.tickets.get(path.split("/")[3])
            try:
                data = json.loads(body or b"{}")
            except Exception:
                data = None
            if headers.get("authorization", "") != f"Bearer {self.args.service_token}":
                self.json_response(writer, 401, {"error": {"code": "unauthorized", "message": "Bad service token"}})
            elif t is None:
                self.json_response(writer, 404, {"error": {"code": "not_found", "message": "No such ticket"}})
            else:
                try:
                    self.json_response(writer, 200, hub.patch_ticket(t, data))
                except CommandError as e:
                    self.json_response(writer, 400, {"error": {"code": e.code, "message": e.message}})
        elif path == "/v1/mock/agent-status" and method == "POST":
            # Mock only (peekd learns this from the agent's connection):
            # {"asset", "online"} turns the simulated agent on or off.
            try:
                data = json.loads(body or b"{}")
            except Exception:
                data = None
            if headers.get("authorization", "") != f"Bearer {self.args.service_token}":
                self.json_response(writer, 401, {"error": {"code": "unauthorized", "message": "Bad service token"}})
            elif not isinstance(data, dict) or data.get("asset") not in hub.assets or not isinstance(data.get("online"), bool):
                self.json_response(writer, 400, {"error": {"code": "invalid", "message": 'Send {"asset": "asset-1", "online": true|false}'}})
            else:
                hub.set_agent_online(data["asset"], data["online"])
                self.json_response(writer, 200, {"asset": data["asset"], "online": data["online"]})
        elif re.fullmatch(r"/v1/tickets/[^/]+/summary", path) and method == "POST":
            t = hub.tickets.get(path.split("/")[3])
            try:
                data = json.loads(body or b"{}")
            except Exception:
                data = None
            if headers.get("authorization", "") != f"Bearer {self.args.service_token}":
                self.json_response(writer, 401, {"error": {"code": "unauthorized", "message": "Bad service token"}})
            elif t is None:
                self.json_response(writer, 404, {"error": {"code": "not_found", "message": "No such ticket"}})
            elif not isinstance(data, dict) or not isinstance(data.get("text"), str):
                self.json_response(writer, 400, {"error": {"code": "invalid", "message": "text is required"}})
            else:
                t.summary = {"text": data["text"], "model": data.get("model"), "at": now_iso(), "covers": data.get("covers")}
                seq = hub.durable(t, "summary.updated", t.summary)
                self.json_response(writer, 201, {**t.summary, "seq": seq})
        elif path.startswith("/v1/") or path == "/metrics":
            self.json_response(writer, 404, {"error": {"code": "not_found", "message": "Not found"}})
        else:
            rel = "index.html" if path in ("", "/") else path.lstrip("/")
            full = os.path.realpath(os.path.join(self.static_root, rel))
            if not full.startswith(self.static_root + os.sep) or not os.path.isfile(full):
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found")
            else:
                with open(full, "rb") as f:
                    data = f.read()
                ctype = mimetypes.guess_type(full)[0] or "application/octet-stream"
                if full.endswith(".js"):
                    ctype = "text/javascript"
                writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {len(data)}\r\n"
                             f"Cache-Control: no-store\r\nConnection: close\r\n\r\n".encode() + data)
        try:
            await writer.drain()
            writer.close()
        except Exception:
            pass


async def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="mock peekd for client development")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--tls-port", type=int, default=0)
    ap.add_argument("--agent-port", type=int, default=0)
    ap.add_argument("--data", default=None)
    ap.add_argument("--demo", action="store_true")
    ap.add_argument("--heartbeat", type=float, default=20)
    ap.add_argument("--hello-timeout", type=float, default=10)
    ap.add_argument("--sla-tick", type=float, default=5)
    ap.add_argument("--consent-timeout", type=float, default=120)
    ap.add_argument("--retain", type=int, default=1000)
    ap.add_argument("--command-delay", type=float, default=0)
    ap.add_argument("--simulate", action="store_true", help="fake a connected agent: telemetry and consent")
    ap.add_argument("--email-ok", action="store_true", help="pretend an email account is configured")
    ap.add_argument("--static", default=os.path.dirname(here))
    ap.add_argument("--service-token", default=os.environ.get("PEEK_SERVICE_TOKEN", "dev-service-token"))
    args = ap.parse_args()
    server = Server(args)
    srv = await asyncio.start_server(server.handle, args.host, args.port)
    port = srv.sockets[0].getsockname()[1]
    tasks = [asyncio.create_task(server.hub.ticker())]
    if args.simulate:
        tasks.append(asyncio.create_task(server.hub.telemetry()))
    print(f"peekd ready plain={args.host}:{port} tls={args.host}:0 agent={args.host}:0 url=http://{args.host}:{port}/",
          flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    srv.close()
    sys.exit(0)


if __name__ == "__main__":
    asyncio.run(main())
