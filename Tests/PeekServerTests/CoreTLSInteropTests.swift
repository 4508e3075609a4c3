#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import PeekCore
import PeekTestSupport
import PeekTLS

/// peekd's TLS listener against TLS stacks that share none of its code, on
/// real sockets: the `openssl s_client` command line (KeyUpdate both ways,
/// close_notify) and CPython's `ssl` module driven by
/// Tests/interop/tls_peer.py (wss, close_notify both ways, a forged record,
/// records split at every byte, sequence numbers past 2^16), and Chromium
/// over wss (Tests/interop/chromium_wss.py). Every scenario
/// runs once per `--tls-record-layer` setting: `peek` (our record layer
/// after the handshake) and `openssl` (OpenSSL's throughout).
///
/// Needs `openssl` and `python3` on PATH; a test whose tool is missing is
/// skipped, saying which.
final class CoreTLSInteropTests: XCTestCase {
    // MARK: openssl s_client

    func testSClient_keyUpdatesRequestedByClientAndCloseNotifyFromServer_peekLayer() throws {
        try sClientKeyUpdatesAndServerClose(.peek)
    }

    func testSClient_keyUpdatesRequestedByClientAndCloseNotifyFromServer_openSSLLayer() throws {
        try sClientKeyUpdatesAndServerClose(.openssl)
    }

    /// `K` sends KeyUpdate(update_requested): the server must answer with its
    /// own and both sides move; `k` sends KeyUpdate(update_not_requested):
    /// only the client moves. A request after each is still answered, so
    /// both keys really changed. `Connection: close` then ends the stream
    /// with the server's close_notify.
    private func sClientKeyUpdatesAndServerClose(_ layer: TLSContext.RecordLayer) throws {
        let (server, pki) = try interopServer(layer)
        defer { server.stop() }
        let client = try SClient(port: XCTUnwrap(server.tlsPort), caFile: pki.caFile)
        defer { client.stop() }
        try client.request(expectingResponses: 1)
        try client.send("K")
        try client.waitFor("s_client's KeyUpdate") { $0.contains(SClient.sent(requested: true)) }
        // The reply must come before the server's next application data
        // (RFC 8446 §4.6.3); OpenSSL sends it only then, ours at once.
        try client.request(expectingResponses: 2)
        XCTAssertEqual(client.output.components(separatedBy: SClient.received(requested: false)).count - 1, 1, client.output)
        try client.send("k")
        try client.waitFor("s_client's second KeyUpdate") { $0.contains(SClient.sent(requested: false)) }
        try client.request(expectingResponses: 3)
        try client.send("GET /healthz HTTP/1.1\nHost: localhost\nConnection: close\n")
        try client.waitFor("the server's close_notify") { $0.contains("<<< TLS 1.3, Alert [length 0002], warning close_notify") }
        let output = client.output
        XCTAssertEqual(output.components(separatedBy: "HTTP/1.1 200 OK").count - 1, 4, output)
        // The server replied to the requested update only, not to `k`.
        XCTAssertEqual(output.components(separatedBy: SClient.receivedKeyUpdate).count - 1, 1, output)
        XCTAssertFalse(output.contains("alert"), output)
    }

    /// Ours: after `tlsRecordsPerKey` records under one key our layer moves
    /// its write key by itself (KeyUpdate, not requested) and asks the peer
    /// to move its own (KeyUpdate, requested), which s_client answers. Only
    /// our layer has a threshold (OpenSSL's never updates keys unasked), so
    /// there is no `openssl` variant of this one.
    func testSClient_serverKeysWornOut_serverUpdatesAndRequestsUpdates_peekLayer() throws {
        let (server, pki) = try interopServer(.peek, recordsPerKey: 2)
        defer { server.stop() }
        let client = try SClient(port: XCTUnwrap(server.tlsPort), caFile: pki.caFile)
        defer { client.stop() }
        // Request records wear out the server's read key: it asks s_client
        // to move (and moves its own write key with that message).
        for count in 1...4 { try client.request(expectingResponses: count) }
        // A 40 kB file is three records: the write key wears out mid-response.
        let css = try String(contentsOfFile: TestServer.repositoryRoot + "/client/peek.css", encoding: .utf8)
        try client.send("GET /peek.css HTTP/1.1\nHost: localhost\n")
        try client.waitFor("the end of peek.css") { $0.contains(String(css.suffix(64))) }
        try client.request(expectingResponses: 5)
        let output = client.output
        XCTAssertGreaterThanOrEqual(output.components(separatedBy: SClient.received(requested: true)).count - 1, 2, output)
        XCTAssertGreaterThanOrEqual(output.components(separatedBy: SClient.sent(requested: false)).count - 1, 2, output)
        XCTAssertGreaterThanOrEqual(output.components(separatedBy: SClient.received(requested: false)).count - 1, 1, output)
        XCTAssertFalse(output.contains("alert"), output)
    }

    // MARK: Python ssl

    func testPython_wssNoteRoundTripAndCloseNotifyBothWays_peekLayer() throws { try python("wss", .peek) }
    func testPython_wssNoteRoundTripAndCloseNotifyBothWays_openSSLLayer() throws { try python("wss", .openssl) }
    func testPython_connectionClose_endsWithServersCloseNotify_peekLayer() throws { try python("server-close", .peek) }
    func testPython_connectionClose_endsWithServersCloseNotify_openSSLLayer() throws { try python("server-close", .openssl) }
    func testPython_clientCloseNotify_answeredWithServers_peekLayer() throws { try python("client-close", .peek) }
    func testPython_clientCloseNotify_answeredWithServers_openSSLLayer() throws { try python("client-close", .openssl) }
    func testPython_forgedRecord_badRecordMACAlertThenClose_peekLayer() throws { try python("bad-record", .peek) }
    func testPython_forgedRecord_badRecordMACAlertThenClose_openSSLLayer() throws { try python("bad-record", .openssl) }
    func testPython_recordsSentOneBytePerSegment_answered_peekLayer() throws { try python("byte-split", .peek) }
    func testPython_recordsSentOneBytePerSegment_answered_openSSLLayer() throws { try python("byte-split", .openssl) }
    func testPython_over70000RecordsEachWay_sequencePast2To16_peekLayer() throws { try python("many-records", .peek) }
    func testPython_over70000RecordsEachWay_sequencePast2To16_openSSLLayer() throws { try python("many-records", .openssl) }

    // MARK: Chromium

    /// Chromium's BoringSSL, headless through Selenium (Tests/interop/chromium_wss.py):
    /// https, then a wss sign-in and a 40 kB note round trip. Skipped without
    /// Selenium or /usr/bin/chromium.
    func testChromium_wssNoteRoundTrip_peekLayer() throws { try chromium(.peek) }
    func testChromium_wssNoteRoundTrip_openSSLLayer() throws { try chromium(.openssl) }

    private func chromium(_ layer: TLSContext.RecordLayer) throws {
        let (server, _) = try interopServer(layer)
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let output = try runScript("chromium_wss.py", [String(try XCTUnwrap(server.tlsPort)), server.token(tenant: "acme", user: "tech-1"), ticket],
                                   layer: layer)
        if output.hasPrefix("SKIP ") { throw XCTSkip(output) }
        print("chromium with --tls-record-layer \(layer): \(output)")  // which browser version passed
    }

    /// Runs one mode of tls_peer.py against a fresh server; it prints `OK ...`
    /// and exits 0, or `FAIL why`.
    private func python(_ mode: String, _ layer: TLSContext.RecordLayer, file: StaticString = #filePath, line: UInt = #line) throws {
        let (server, pki) = try interopServer(layer)
        defer { server.stop() }
        var arguments = [mode, "\(try XCTUnwrap(server.tlsPort))", pki.caFile]
        if mode == "wss" {
            let ticket = try server.seed()[0]
            arguments += [server.token(tenant: "acme", user: "tech-1"), ticket]
        }
        _ = try runScript("tls_peer.py", arguments, layer: layer, file: file, line: line)
    }

    /// Runs Tests/interop/SCRIPT with python3, asserting exit 0 and `OK ...`
    /// (or `SKIP ...`); answers its output.
    private func runScript(_ script: String, _ arguments: [String], layer: TLSContext.RecordLayer,
                           file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let (status, output) = try runTool("python3", [TestServer.repositoryRoot + "/Tests/interop/" + script] + arguments, timeout: 240)
        let label = "\(script) \(arguments.first ?? "") with --tls-record-layer \(layer): \(output)"
        XCTAssertEqual(status, 0, label, file: file, line: line)
        XCTAssertTrue(output.hasPrefix("OK ") || output.hasPrefix("SKIP "), label, file: file, line: line)
        return output
    }

    // MARK: Helpers

    private func interopServer(_ layer: TLSContext.RecordLayer, recordsPerKey: UInt64? = nil) throws -> (TestServer, CertFactory) {
        let pki = try CertFactory()
        let server = try TestServer(tls: true) { c in
            c.tlsCert = pki.serverCertFile
            c.tlsKey = pki.serverKeyFile
            c.tlsRecordLayer = layer
            c.tlsRecordsPerKey = recordsPerKey
        }
        return (server, pki)
    }
}

/// Runs `tool` (looked up on PATH) to completion; its stdout and stderr
/// together. Skips the test if the tool is not installed.
func runTool(_ tool: String, _ arguments: [String], timeout: Double) throws -> (status: Int32, output: String) {
    guard toolPath(tool) != nil else { throw XCTSkip("\(tool) is not installed") }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [tool] + arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let reader = OutputCollector(fd: pipe.fileHandleForReading.fileDescriptor)
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { reader.collect(for: 0.2) }
    if process.isRunning {
        process.terminate()
        process.waitUntilExit()
        return (-1, "timed out after \(Int(timeout)) s: " + reader.text)
    }
    reader.collect(for: 0.2)
    return (process.terminationStatus, reader.text)
}

func toolPath(_ tool: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    return path.split(separator: ":").map { "\($0)/\(tool)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
}

/// Everything a child process writes to a pipe, read with `poll` deadlines.
final class OutputCollector {
    private let fd: Int32
    private var bytes: [UInt8] = []
    init(fd: Int32) { self.fd = fd }

    var text: String { String(decoding: bytes, as: UTF8.self) }

    /// Reads what arrives within `seconds`; returns early at EOF.
    func collect(for seconds: Double) {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { return }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, Int32(left * 1000) + 1) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            bytes += chunk[..<n]
        }
    }
}

/// `openssl s_client` as an interactive peer: TLS 1.3 only, verifying the
/// test CA, with `-msg` so every handshake message and alert it sends (`>>>`)
/// or receives (`<<<`) is in `output`. A line written to it is sent as data
/// (LF becomes CRLF), except its command letters at the start of a line:
/// `K`/`k` KeyUpdate with/without update_requested, `Q` close_notify.
private final class SClient {
    private let process = Process()
    private let input = Pipe()
    private let collector: OutputCollector

    init(port: UInt16, caFile: String) throws {
        guard toolPath("openssl") != nil else { throw XCTSkip("openssl is not installed") }
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl", "s_client", "-connect", "127.0.0.1:\(port)", "-tls1_3", "-CAfile", caFile,
                             "-servername", "localhost", "-verify_return_error", "-crlf", "-msg"]
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        collector = OutputCollector(fd: output.fileHandleForReading.fileDescriptor)
        try waitFor("the handshake") { $0.contains("Verify return code: 0 (ok)") }
    }

    var output: String { collector.text }

    /// How `-msg` shows a KeyUpdate s_client received (`<<<`) or sent
    /// (`>>>`), with its body: 18 00 00 01, then request_update.
    static let receivedKeyUpdate = "<<< TLS 1.3, Handshake [length 0005], KeyUpdate"
    static func received(requested: Bool) -> String { receivedKeyUpdate + "\n    18 00 00 01 0\(requested ? 1 : 0)" }
    static func sent(requested: Bool) -> String { ">>> TLS 1.3, Handshake [length 0005], KeyUpdate\n    18 00 00 01 0\(requested ? 1 : 0)" }

    /// One write (s_client reads its commands a read at a time, so a
    /// command must not share a write with anything else).
    func send(_ text: String) throws {
        input.fileHandleForWriting.write(Data((text + "\n").utf8))
    }

    func request(expectingResponses count: Int) throws {
        try send("GET /healthz HTTP/1.1\nHost: localhost\n")
        try waitFor("response \(count)") { $0.components(separatedBy: "{\"status\":\"ok\"}").count - 1 >= count }
    }

    func waitFor(_ what: String, timeout: Double = 20, _ predicate: (String) -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !predicate(collector.text) {
            guard Date() < deadline else { throw TestWebSocketClient.Failure("s_client: no \(what) within \(Int(timeout)) s:\n\(collector.text)") }
            collector.collect(for: 0.1)
        }
    }

    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}
