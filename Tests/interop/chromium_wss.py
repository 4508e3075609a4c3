#!/usr/bin/env python3
"""Chromium (BoringSSL) over wss against a real peekd: one smoke run for
Tests/PeekServerTests/CoreTLSInteropTests.swift.

    python3 Tests/interop/chromium_wss.py PORT TOKEN TICKET

Headless /usr/bin/chromium through Selenium, with --ignore-certificate-errors
(the test CA is not in its store). It loads https://127.0.0.1:PORT/healthz
(so the page's origin is the server's own), then in the page opens
wss://127.0.0.1:PORT/v1/ws, signs in, subscribes, posts a note of ~40 kB
(several TLS records each way) and waits for its delta, then closes with
1000. Prints `OK ...` and exits 0, or `FAIL why` and exits 1; exits 0 with
`SKIP why` if Selenium or Chromium is missing.
"""

import sys

SCRIPT = """
const [port, token, ticket, done] = arguments;
const body = "from chromium " + "y".repeat(40000);
const ws = new WebSocket("wss://127.0.0.1:" + port + "/v1/ws");
const timer = setTimeout(() => done("FAIL no answer within 20 s"), 20000);
ws.onerror = () => done("FAIL websocket error");
ws.onclose = (e) => done(e.code === 1000 ? "OK close=1000 note=" + body.length : "FAIL closed " + e.code + " " + e.reason);
ws.onopen = () => ws.send(JSON.stringify({type: "hello", token: token}));
ws.onmessage = (e) => {
  const m = JSON.parse(e.data);
  if (m.type === "welcome") ws.send(JSON.stringify({type: "subscribe", id: "s1", ticket: ticket}));
  if (m.type === "snapshot") ws.send(JSON.stringify({type: "command", id: "c1", ticket: ticket, op: "note", args: {body: body}}));
  if (m.type === "delta" && m.kind === "message.created") {
    clearTimeout(timer);
    if (m.data.body !== body) { done("FAIL the note came back altered"); return; }
    ws.close(1000);
  }
  if (m.type === "error") done("FAIL error " + e.data);
};
"""


def main():
    port, token, ticket = sys.argv[1], sys.argv[2], sys.argv[3]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        print("SKIP selenium is not installed")
        return 0
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--ignore-certificate-errors"):
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    except Exception as error:  # no browser or driver on this machine
        print("SKIP cannot start chromium: %s" % str(error).splitlines()[0])
        return 0
    try:
        driver.set_script_timeout(30)
        driver.get("https://127.0.0.1:%s/healthz" % port)
        if '"ok"' not in driver.page_source:
            print("FAIL /healthz over https: %s" % driver.page_source[:200])
            return 1
        result = driver.execute_async_script(SCRIPT, port, token, ticket)
        print(result + " browser=" + driver.capabilities.get("browserVersion", "?"))
        return 0 if result.startswith("OK") else 1
    finally:
        driver.quit()


if __name__ == "__main__":
    sys.exit(main())
