#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import PeekCore
import PeekTestSupport
import PeekTLS

/// The real `peekd` binary as a subprocess: it prints its ready line, and on
/// SIGTERM closes every WebSocket with 1001 and exits 0. It refuses to start
/// without real secrets, and `--demo` generates them once per data directory.
///
/// The binary is `$PEEKD_BIN` (scripts/test.sh sets it after `swift build`),
/// else `<repo>/.build/debug/peekd`; without either the test is skipped.
final class CoreShutdownTests: XCTestCase {
    private var process: Process?
    private var dataDirectory: String?

    override func tearDown() {
        if let process, process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        if let dataDirectory { try? FileManager.default.removeItem(atPath: dataDirectory) }
    }

    private func peekdBinary() throws -> String { try PeekdSubprocess.binary() }

    private static let secret = "sigterm-secret-sigterm-secret-sigterm"

    /// Runs `peekd` with `arguments` and no PEEK_* variables until it exits
    /// (or `timeout`); answers its exit status and everything it printed.
    private func runToExit(_ arguments: [String], timeout: Double = 15) throws -> (status: Int32?, output: String) {
        let (process, out) = try launch(arguments, mergingStandardError: true)
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        guard !process.isRunning else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return (nil, "")
        }
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (process.terminationStatus, text)
    }

    /// Starts `peekd` with `arguments`; its standard output comes through
    /// the pipe. Flags win over PEEK_* variables, but stray ones are kept out anyway.
    private func launch(_ arguments: [String], mergingStandardError: Bool = false) throws -> (Process, Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try peekdBinary())
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PEEK_") }
        let out = Pipe()
        process.standardOutput = out
        process.standardError = mergingStandardError ? out : FileHandle.nullDevice
        try process.run()
        self.process = process
        return (process, out)
    }

    private func freshDataDirectory() -> String {
        let data = NSTemporaryDirectory() + "peekd-secrets-" + UUID().uuidString
        dataDirectory = data
        return data
    }

    /// `peekd --demo | head -1`: once the reader is gone, peekd's next line
    /// (the ready line, "peekd stopped") used to kill it (Foundation's
    /// write traps on EPIPE), so SIGTERM ended in a crash, not a drain.
    func testStdoutReaderGone_SIGTERM_stillDrainsAndExits0() throws {
        let data = freshDataDirectory()
        let (process, out) = try launch(["--demo", "--port", "0", "--data", data])
        let first = out.fileHandleForReading.availableData
        XCTAssertFalse(first.isEmpty, "peekd printed nothing")
        try out.fileHandleForReading.close()
        Thread.sleep(forTimeInterval: 2)
        XCTAssertTrue(process.isRunning, "peekd died once its reader was gone")
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(20)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        XCTAssertFalse(process.isRunning)
        XCTAssertEqual(process.terminationReason, .exit)
        XCTAssertEqual(process.terminationStatus, 0)
    }

    func testStart_withoutSecrets_refusesSayingWhatToSet() throws {
        let data = freshDataDirectory()
        let none = try runToExit(["--port", "0", "--data", data])
        XCTAssertNotNil(none.status, "peekd without secrets is still running (it served on the well-known defaults)")
        XCTAssertNotEqual(none.status, 0, none.output)
        XCTAssertTrue(none.output.contains("No --jwt-secret is set: set --jwt-secret"), none.output)
        XCTAssertFalse(none.output.contains("ready"), none.output)

        let noService = try runToExit(["--port", "0", "--data", data, "--jwt-secret", Self.secret])
        XCTAssertNotNil(noService.status, "peekd without --service-token is still running")
        XCTAssertNotEqual(noService.status, 0, noService.output)
        XCTAssertTrue(noService.output.contains("No --service-token is set: set --service-token"), noService.output)
    }

    func testStart_withShortSecret_refusesSayingHowLong() throws {
        let data = freshDataDirectory()
        let short = try runToExit(["--port", "0", "--data", data, "--jwt-secret", "only-31-bytes-of-secret-here-!!", "--service-token", "svc"])
        XCTAssertNotNil(short.status, "peekd with a 31-byte secret is still running")
        XCTAssertNotEqual(short.status, 0, short.output)
        XCTAssertTrue(short.output.contains("The --jwt-secret is 31 bytes: set --jwt-secret (or PEEK_JWT_SECRET) to a random string of at least 32 bytes."), short.output)
    }

    /// `peekd token --ttl` is bounded (365 days): an absurd value once
    /// overflowed the expiry (a trap, no sentence); now it is refused with
    /// one, and the bound itself still signs.
    func testToken_ttlPastOneYear_refusedWithASentence() throws {
        let base = ["token", "--jwt-secret", Self.secret, "--tenant", "acme", "--user", "ana"]
        for absurd in ["9223372036854775807", "31536001"] {
            let r = try runToExit(base + ["--ttl", absurd])
            XCTAssertEqual(r.status, 2, "--ttl \(absurd): \(r.output)")
            XCTAssertTrue(r.output.contains("--ttl must be a whole number from 1 to 31536000"), r.output)
        }
        let year = try runToExit(base + ["--ttl", "31536000"])
        XCTAssertEqual(year.status, 0, year.output)
        let claims = try JWT.verify(year.output.trimmingCharacters(in: .whitespacesAndNewlines), secret: Array(Self.secret.utf8),
                                    nowSeconds: Int64(Date().timeIntervalSince1970))
        XCTAssertGreaterThan(claims.expiresAt, Int64(Date().timeIntervalSince1970) + 31_535_000)
    }

    /// `--demo` twice on one data directory: the same generated secrets
    /// (kept 0600), printed each time, and `peekd token` signs with them.
    func testDemo_twiceOnOneDataDirectory_reusesTheGeneratedSecrets() throws {
        let data = freshDataDirectory()
        func demoSecretsLine() throws -> String {
            let (process, out) = try launch(["--demo", "--port", "0", "--tls-port", "0", "--agent-port", "0", "--data", data, "--threads", "1"])
            defer { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
            let output = PipeLines(fd: out.fileHandleForReading.fileDescriptor)
            let line = try XCTUnwrap(output.line(timeout: 30) { $0.hasPrefix("peekd demo secrets") || $0.contains("ready") })
            XCTAssertNotNil(output.line(timeout: 30) { $0.contains("ready") }, "no ready line after the secrets")
            return line
        }
        let first = try demoSecretsLine()
        let second = try demoSecretsLine()
        XCTAssertTrue(first.hasPrefix("peekd demo secrets"), first)
        XCTAssertEqual(first, second, "a second --demo start on the same data directory generated other secrets")
        let jwt = try XCTUnwrap(first.split(separator: " ").first { $0.hasPrefix("jwt-secret=") }?.dropFirst("jwt-secret=".count))
        XCTAssertGreaterThanOrEqual(jwt.utf8.count, 32)
        XCTAssertFalse(first.contains("dev-secret"), first)
        let mode = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: data + "/demo-secrets")[.posixPermissions] as? Int)
        XCTAssertEqual(mode, 0o600)

        let minted = try runToExit(["token", "--data", data, "--tenant", "demo", "--user", "ana"])
        XCTAssertEqual(minted.status, 0, minted.output)
        let claims = try JWT.verify(minted.output.trimmingCharacters(in: .whitespacesAndNewlines), secret: Array(jwt.utf8),
                                    nowSeconds: Int64(Date().timeIntervalSince1970))
        XCTAssertEqual(claims.subject, "ana")
    }

    func testSIGTERM_connectedClient_getsClose1001AndProcessExits0() throws {
        let data = NSTemporaryDirectory() + "peekd-sigterm-" + UUID().uuidString
        dataDirectory = data
        let (process, out) = try launch(["--port", "0", "--data", data, "--threads", "2",
                                         "--jwt-secret", Self.secret, "--service-token", "sigterm-service"])

        let output = PipeLines(fd: out.fileHandleForReading.fileDescriptor)
        let ready = try XCTUnwrap(output.line(timeout: 20) { $0.contains("ready") }, "no ready line from peekd")
        XCTAssertTrue(ready.hasPrefix("peekd ready plain=127.0.0.1:"), ready)
        let port = try XCTUnwrap(ready.split(separator: " ").first { $0.hasPrefix("plain=") }
            .flatMap { $0.split(separator: ":").last }.flatMap { UInt16($0) }, ready)
        XCTAssertNotEqual(port, 0)

        // A signed-in technician, so the drain has a real session to close.
        try call(port, "POST", "/v1/tenants", #"{"id":"acme","name":"Acme"}"#)
        try call(port, "POST", "/v1/tenants/acme/technicians", #"{"id":"tech-1","name":"Tech 1","email":"t@acme.example"}"#)
        let token = JWT.sign(TechnicianClaims(subject: "tech-1", tenant: "acme", name: "Tech 1",
                                              expiresAt: Int64(Date().timeIntervalSince1970) + 600),
                             secret: Array(Self.secret.utf8))
        let client = try TestWebSocketClient(port: port)
        defer { client.close() }
        try client.send(["type": "hello", "token": .string(token)])
        try client.next(type: "welcome", timeout: 10)
        // And one that never said hello.
        let anonymous = try TestWebSocketClient(port: port)
        defer { anonymous.close() }

        XCTAssertEqual(kill(process.processIdentifier, SIGTERM), 0)
        XCTAssertEqual(try client.awaitClose(timeout: 10), 1001)
        XCTAssertEqual(try anonymous.awaitClose(timeout: 10), 1001)

        let deadline = Date().addingTimeInterval(15)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        XCTAssertFalse(process.isRunning, "peekd still running 15 s after SIGTERM")
        guard !process.isRunning else { return }
        XCTAssertEqual(process.terminationReason, .exit)
        XCTAssertEqual(process.terminationStatus, 0)
        XCTAssertThrowsError(try TestSocket.connect(port: port), "still accepting after exit")
    }

    func testTLSRecordLayerFlag_unknownValue_refusedNamingTheChoices() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try peekdBinary())
        process.arguments = ["--port", "0", "--tls-record-layer", "boringssl"]
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PEEK_") }
        let err = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = err
        try process.run()
        self.process = process
        process.waitUntilExit()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(process.terminationStatus, 2, message)
        XCTAssertTrue(message.contains("--tls-record-layer must be peek (our TLS 1.3 record layer) or openssl (OpenSSL's), not boringssl"), message)
    }

    /// SIGHUP re-reads --agent-crl (and must not end the process, its
    /// default action). The CRL file is rewritten in place with its size,
    /// inode and modification time kept, so only the signal can make peekd
    /// notice the new revocation.
    func testSIGHUP_agentCRLRewrittenUnnoticeably_reloadedProcessKeepsRunningAgentRefused() throws {
        let pki = try CertFactory()
        let agent = try pki.makeClient(commonName: "agent-hup")
        let crl = pki.directory + "/served-crl.pem"
        let padded = 4096
        try writeInPlace(Array(Data(contentsOf: URL(fileURLWithPath: pki.crlFile))), paddedTo: padded, to: crl)
        var before = stat()
        XCTAssertEqual(stat(crl, &before), 0)

        let data = freshDataDirectory()
        let (process, out) = try launch(["--port", "0", "--data", data, "--threads", "2",
                                         "--jwt-secret", Self.secret, "--service-token", "sigterm-service",
                                         "--agent-port", "0", "--agent-ca", pki.caFile, "--agent-crl", crl,
                                         "--tls-cert", pki.serverCertFile, "--tls-key", pki.serverKeyFile], mergingStandardError: true)
        let output = PipeLines(fd: out.fileHandleForReading.fileDescriptor)
        let ready = try XCTUnwrap(output.line(timeout: 20) { $0.contains("ready") }, "no ready line from peekd")
        let agentPort = try XCTUnwrap(ready.split(separator: " ").first { $0.hasPrefix("agent=") }
            .flatMap { $0.split(separator: ":").last }.flatMap { UInt16($0) }, ready)
        let context = try pki.makeClientContext(presenting: agent)
        func healthz() throws -> Int {
            let socket = try TestSocket.connect(port: agentPort, tls: context, serverName: "localhost")
            defer { socket.close() }
            try socket.write(Array("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8))
            return try coreReadResponse(socket).status
        }
        XCTAssertEqual(try healthz(), 200)

        try pki.revoke(commonName: "agent-hup")
        try writeInPlace(Array(Data(contentsOf: URL(fileURLWithPath: pki.crlFile))), paddedTo: padded, to: crl)
        var times = [before.st_atim, before.st_mtim]
        XCTAssertEqual(utimensat(AT_FDCWD, crl, &times, 0), 0)
        var after = stat()
        XCTAssertEqual(stat(crl, &after), 0)
        XCTAssertEqual([after.st_ino, UInt(after.st_size), UInt(after.st_mtim.tv_sec), UInt(after.st_mtim.tv_nsec)],
                       [before.st_ino, UInt(before.st_size), UInt(before.st_mtim.tv_sec), UInt(before.st_mtim.tv_nsec)])
        XCTAssertEqual(try healthz(), 200, "without the signal the change is not noticed (the test's premise)")

        XCTAssertEqual(kill(process.processIdentifier, SIGHUP), 0)
        XCTAssertNotNil(output.line(timeout: 10) { $0.contains("agent CRL \(crl) reloaded") }, "no reload line on stderr")
        XCTAssertTrue(process.isRunning, "SIGHUP ended peekd")
        XCTAssertThrowsError(try healthz(), "a revoked agent got in after SIGHUP") { error in
            XCTAssertTrue((error as? TestSocketError)?.tlsError?.mentions("certificate revoked") ?? false, "\(error)")
        }
        XCTAssertTrue(process.isRunning)
    }

    /// Overwrites `path` (same inode) with `pem` behind blank lines that
    /// bring it to `size` bytes; PEM readers skip text before `-----BEGIN`.
    private func writeInPlace(_ pem: [UInt8], paddedTo size: Int, to path: String) throws {
        XCTAssertLessThanOrEqual(pem.count, size)
        let bytes = [UInt8](repeating: 10, count: size - pem.count) + pem
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw TestWebSocketClient.Failure("open \(path): errno \(errno)") }
        defer { close(fd) }
        XCTAssertEqual(bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }, size)
    }

    @discardableResult
    private func call(_ port: UInt16, _ method: String, _ path: String, _ json: String) throws -> TestServer.Response {
        let request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Bearer sigterm-service\r\n"
            + "Content-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\n\r\n\(json)"
        let r = try coreRawExchange(port: port, request)
        XCTAssertEqual(r.status, 201, "\(method) \(path): \(r.text)")
        return r
    }
}
