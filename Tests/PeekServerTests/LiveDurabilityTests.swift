#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import PeekCore
import PeekTestSupport

/// "A `result` with `ok: true` means the change is on disk": across a clean
/// restart, and across `kill -9` of a real `peekd` process.
final class LiveDurabilityTests: XCTestCase {
    func testRestart_keepsEveryAcknowledgedChangeAndCommandAnswers() throws {
        let first = try TestServer()
        let directory = first.directory
        let ticket = try first.seed(technicians: 2)[0]
        let a = try first.technician("tech-1")
        try a.subscribe(ticket)
        var answers: [String: JSONValue] = [:]
        for (id, op, args) in [("c1", "note", ["body": "Before restart"]), ("c2", "set_status", ["status": "in_progress"]),
                               ("c3", "set_priority", ["priority": "urgent"]), ("c4", "assign", ["technician": "tech-2"]),
                               ("c5", "timer_start", [:]), ("c6", "timer_stop", ["note": "first pass"]),
                               ("c7", "timer_start", [:]), ("c8", "timer_stop", [:])] as [(String, String, JSONValue)] {
            let r = try a.run(id, ticket, op, args)
            XCTAssertEqual(r["type"]?.stringValue, "result", "\(id): \(r)")
            answers[id] = r
        }
        let before = try first.durableState(ticket)
        XCTAssertEqual(before["seq"]?.intValue, 11)   // note 1, three changes x2, four timer deltas
        a.close()
        first.stop()

        let second = try TestServer(directory: directory)
        defer { second.stop() }
        XCTAssertEqual(try second.durableState(ticket), before)
        // The log survives too: a resume across the restart is served from it.
        let b = try second.technician("tech-1")
        try b.send(["type": "subscribe", "id": "r", "ticket": .string(ticket), "since": 4])
        let resumed = try b.durableDeltas(ticket, through: 11)
        XCTAssertEqual(resumed.compactMap { $0["seq"]?.intValue }, Array(5...11))
        XCTAssertEqual(try b.next(type: "subscribed")["seq"]?.intValue, 11)
        // And so do the idempotency answers: a resend after the restart changes nothing.
        XCTAssertEqual(try b.run("c1", ticket, "note", ["body": "Before restart"]), answers["c1"])
        XCTAssertEqual(try second.durableState(ticket), before)
        // New tickets continue the numbering.
        let more = try second.api("POST", "/v1/tenants/acme/tickets", ["subject": "After", "client": "Client Co", "contact": ["name": "C"]])
        XCTAssertEqual(more.json?["number"]?.intValue, ticketNumber(ticket) + 1)
    }

    // MARK: kill -9

    /// A `peekd` child process on a data directory.
    private final class Peekd {
        let process = Process()
        let stdout = Pipe()
        private(set) var port: UInt16 = 0

        init(binary: String, directory: String) throws {
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["--port", "0", "--data", directory, "--service-token", "svc-token", "--jwt-secret", "durability-jwt-secret-of-32-bytes-or-more",
                                 "--threads", "2", "--client", directory]
            process.standardOutput = stdout
            let log = directory + "/peekd.stderr"
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            process.standardError = FileHandle(forWritingAtPath: log)
            try process.run()
            port = try readReadyPort(timeout: 30)
        }

        /// Waits for `peekd ready plain=H:P ...` and answers P.
        private func readReadyPort(timeout: Double) throws -> UInt16 {
            let fd = stdout.fileHandleForReading.fileDescriptor
            let deadline = Date().addingTimeInterval(timeout)
            var text = ""
            while Date() < deadline {
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&p, 1, 200) > 0 else { continue }
                var buffer = [UInt8](repeating: 0, count: 4096)
                let n = read(fd, &buffer, buffer.count)
                guard n > 0 else { break }
                text += String(decoding: buffer[..<n], as: UTF8.self)
                for line in text.split(separator: "\n") where line.contains("ready") {
                    if let field = line.split(separator: " ").first(where: { $0.hasPrefix("plain=") }),
                       let port = field.split(separator: ":").last.flatMap({ UInt16($0) }) {
                        return port
                    }
                }
            }
            throw TestWebSocketClient.Failure("peekd printed no ready line in \(timeout)s; stdout: \(text)")
        }

        func kill9() {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }

        func terminate() {
            guard process.isRunning else { return }
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
        }
    }

    private static func peekdBinary() throws -> String {
        if let path = ProcessInfo.processInfo.environment["PEEKD_BIN"], FileManager.default.isExecutableFile(atPath: path) { return path }
        let built = TestServer.repositoryRoot + "/.build/debug/peekd"
        if FileManager.default.isExecutableFile(atPath: built) { return built }
        throw XCTSkip("no peekd binary: set PEEKD_BIN or run `swift build` first (looked for \(built))")
    }

    /// One HTTP request to a child process.
    private func http(_ port: UInt16, _ method: String, _ path: String, _ json: JSONValue? = nil) throws -> TestServer.Response {
        try TestServer.request(port: port, method, path, body: json.map { JSONWriter.encode($0) }, bearer: "svc-token")
    }

    private func technician(_ port: UInt16) throws -> TestWebSocketClient {
        let token = JWT.sign(TechnicianClaims(subject: "tech-1", tenant: "acme", name: "Tech 1", expiresAt: Int64(Date().timeIntervalSince1970) + 600),
                             secret: Array("durability-jwt-secret-of-32-bytes-or-more".utf8))
        let c = try TestWebSocketClient(port: port)
        try c.send(["type": "hello", "token": .string(token)])
        try c.next(type: "welcome")
        return c
    }

    func testKill9_afterAcknowledgedNotes_everyOneSurvivesRestart() throws {
        let binary = try Self.peekdBinary()
        let directory = NSTemporaryDirectory() + "peekd-kill9-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }

        let first = try Peekd(binary: binary, directory: directory)
        var killed = false
        defer { if !killed { first.terminate() } }
        XCTAssertEqual(try http(first.port, "POST", "/v1/tenants", ["id": "acme", "name": "Acme"]).status, 201)
        XCTAssertEqual(try http(first.port, "POST", "/v1/tenants/acme/technicians",
                                ["id": "tech-1", "name": "Tech 1", "email": "t1@acme.example"]).status, 201)
        let created = try http(first.port, "POST", "/v1/tenants/acme/tickets",
                               ["subject": "Durable", "client": "Client Co", "contact": ["name": "Casey"]])
        let ticket = try XCTUnwrap(created.json?["id"]?.stringValue, created.text)

        // Pipelined notes: many land in one group commit, which is exactly
        // what must be on disk before any of their results goes out.
        let c = try technician(first.port)
        let acknowledged = 40
        for i in 1...acknowledged { try c.command("n\(i)", ticket, "note", ["body": .string("note \(i)")]) }
        var ackSeq: [Int: Int] = [:]
        for i in 1...acknowledged {
            let r = try c.answer("n\(i)")
            XCTAssertEqual(r["type"]?.stringValue, "result", "\(r)")
            ackSeq[i] = r["seq"]?.intValue
        }
        // More in flight at the moment of the kill: they may or may not
        // survive, but the log must stay consistent either way.
        for i in 1...10 { try c.command("late\(i)", ticket, "note", ["body": .string("late \(i)")]) }
        first.kill9()
        killed = true
        c.close()

        let second = try Peekd(binary: binary, directory: directory)
        defer { second.terminate() }
        let state = try XCTUnwrap(try http(second.port, "GET", "/v1/tickets/\(ticket)").json)
        let seq = try XCTUnwrap(state["seq"]?.intValue)
        XCTAssertGreaterThanOrEqual(seq, acknowledged)
        XCTAssertLessThanOrEqual(seq, acknowledged + 10)

        // Every delta from the start, through the resume path.
        let d = try technician(second.port)
        try d.send(["type": "subscribe", "id": "all", "ticket": .string(ticket), "since": 0])
        let deltas = try d.durableDeltas(ticket, through: seq)
        XCTAssertEqual(try d.next(type: "subscribed")["seq"]?.intValue, seq)
        XCTAssertEqual(deltas.compactMap { $0["seq"]?.intValue }, Array(1...seq), "no gap, no duplicate")
        var bodyBySeq: [Int: String] = [:]
        for delta in deltas { bodyBySeq[delta["seq"]?.intValue ?? -1] = delta["data"]?["body"]?.stringValue }
        for i in 1...acknowledged {
            let s = try XCTUnwrap(ackSeq[i])
            XCTAssertEqual(bodyBySeq[s], "note \(i)", "acknowledged note \(i) (seq \(s)) survived kill -9")
        }
        // The snapshot agrees with the log.
        let messages = state["state"]?["messages"]?.arrayValue ?? []
        XCTAssertEqual(messages.count, min(seq, 50))
        XCTAssertEqual(messages.last?["seq"]?.intValue, seq)
    }
}
