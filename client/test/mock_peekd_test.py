#!/usr/bin/env python3
"""Checks that mock_peekd.py speaks what protocol.md says peekd speaks, for
the parts the Peek page uses, over real sockets (standard library only):

    python3 client/test/mock_peekd_test.py

Each test starts the mock on port 0 and talks HTTP and WebSocket to it.
"""

import base64
import http.client
import json
import os
import socket
import struct
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SERVICE = "mock-test-service-token"


class WS:
    """A minimal RFC 6455 client: text frames, masked, no extensions."""

    def __init__(self, port, path="/v1/ws"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise AssertionError("closed during the upgrade")
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head

    def send(self, obj):
        data = json.dumps(obj).encode()
        mask = os.urandom(4)
        n = len(data)
        header = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise AssertionError("connection closed")
            out += chunk
        return out

    def recv(self):
        while True:
            b0, b1 = self._exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._exact(8))[0]
            payload = self._exact(n)
            if b0 & 0x0F == 1:
                return json.loads(payload)

    def next(self, match):
        while True:
            frame = self.recv()
            if match(frame):
                return frame

    def close(self):
        self.sock.close()


class MockPeekdTest(unittest.TestCase):
    def setUp(self):
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "mock_peekd.py"), "--demo", "--port", "0",
                                      "--service-token", SERVICE, "--simulate"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        self.assertTrue(line.startswith("peekd ready"), line)
        self.port = int(line.split("plain=")[1].split()[0].rsplit(":", 1)[1])

    def tearDown(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()

    def request(self, method, path, body=None, token=SERVICE):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        c.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, (json.loads(data) if data else None)

    def viewer(self, ticket="T-1001", tech="tech-ana"):
        status, signed = self.request("POST", "/v1/demo/sign-in", {"technician": tech}, token=None)
        self.assertEqual(status, 200, signed)
        ws = WS(self.port)
        ws.send({"type": "hello", "token": signed["token"]})
        self.assertEqual(ws.next(lambda f: True)["type"], "welcome")
        ws.send({"type": "subscribe", "id": "s", "ticket": ticket})
        snapshot = ws.next(lambda f: f["type"] == "snapshot")
        return ws, snapshot

    # protocol.md §9.2: PATCH /v1/tickets/{id}
    def test_patch_subjectAndContact_200_oneTicketUpdatedDelta_versionUnchanged(self):
        ws, snapshot = self.viewer()
        version, seq = snapshot["state"]["ticket"]["version"], snapshot["seq"]
        status, answer = self.request("PATCH", "/v1/tickets/T-1001",
                                      {"subject": "VPN drops hourly", "contact": {"email": "maria@harborlaw.example"}})
        self.assertEqual(status, 200, answer)
        self.assertEqual(answer, {"ticket": "T-1001", "seq": seq + 1, "changed": ["subject", "contact"]})
        delta = ws.next(lambda f: f["type"] == "delta" and f["kind"] == "ticket.updated")
        self.assertEqual(delta["seq"], seq + 1)
        self.assertEqual(delta["data"], {"subject": "VPN drops hourly",
                                         "contact": {"name": "Maria Lopez", "email": "maria@harborlaw.example"},
                                         "version": version})
        # The same values again change nothing: no delta, the seq stays.
        status, again = self.request("PATCH", "/v1/tickets/T-1001", {"subject": "VPN drops hourly"})
        self.assertEqual((status, again), (200, {"ticket": "T-1001", "seq": seq + 1, "changed": []}))
        # The email removed with null.
        status, removed = self.request("PATCH", "/v1/tickets/T-1001", {"contact": {"email": None}})
        self.assertEqual(removed["changed"], ["contact"])
        delta = ws.next(lambda f: f["type"] == "delta" and f["kind"] == "ticket.updated")
        self.assertEqual(delta["data"]["contact"], {"name": "Maria Lopez", "email": None})
        ws.close()

    def test_patch_refusals_400_404_401(self):
        for body in ({}, {"subject": ""}, {"subject": "x" * 501}, {"contact": "Maria"}, {"contact": {"name": ""}},
                     {"contact": {"email": "no-at-sign"}}, {"subject": "ok", "contact": {"email": "bad"}}):
            status, answer = self.request("PATCH", "/v1/tickets/T-1001", body)
            self.assertEqual(status, 400, body)
            self.assertEqual(answer["error"]["code"], "invalid", body)
        status, t = self.request("PATCH", "/v1/tickets/T-1001", {"subject": "ok"})
        self.assertEqual(t["changed"], ["subject"], "the refused bodies changed nothing")
        self.assertEqual(self.request("PATCH", "/v1/tickets/T-9999", {"subject": "x"})[0], 404)
        self.assertEqual(self.request("PATCH", "/v1/tickets/T-1001", {"subject": "x"}, token="wrong")[0], 401)

    # protocol.md §3.6 and §5: agent.status, ephemeral, to the viewers of tickets linked to the asset.
    def test_agentStatus_offlineThenOnline_ephemeralDeltaToViewersOfLinkedTickets(self):
        ws, snapshot = self.viewer("T-1001")
        self.assertTrue(snapshot["state"]["asset"]["agent_online"])
        status, _ = self.request("POST", "/v1/mock/agent-status", {"asset": "asset-1", "online": False})
        self.assertEqual(status, 200)
        delta = ws.next(lambda f: f["type"] == "delta" and f["kind"] == "agent.status")
        self.assertEqual(delta["data"], {"asset": {"id": "asset-1", "name": "ANA-LAPTOP"}, "online": False})
        self.assertNotIn("seq", delta, "agent.status is ephemeral")
        ws.send({"type": "command", "id": "start", "ticket": "T-1001", "op": "start_session", "args": {}})
        self.assertEqual(ws.next(lambda f: f.get("id") == "start")["code"], "agent_offline")
        self.request("POST", "/v1/mock/agent-status", {"asset": "asset-1", "online": True})
        self.assertTrue(ws.next(lambda f: f["type"] == "delta" and f["kind"] == "agent.status")["data"]["online"])
        ws.close()
        # A new viewer's snapshot says the same.
        ws, snapshot = self.viewer("T-1001", tech="tech-ben")
        self.assertTrue(snapshot["state"]["asset"]["agent_online"])
        ws.close()


if __name__ == "__main__":
    result = unittest.main(exit=False).result
    failed = len(result.failures) + len(result.errors)
    # The closing line scripts/test.sh counts.
    print(f"{result.testsRun - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
