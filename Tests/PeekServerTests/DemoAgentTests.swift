import XCTest
import Foundation
import PeekCore
@testable import PeekDemoAgent
import PeekServer
import PeekTestSupport

/// The demo agent (`PeekDemoAgent`, what `peekd --demo` runs) against a real
/// server over real mutual TLS: its shell runs only the allow-list, as real
/// processes whose output reaches every viewer; it accepts consent, streams
/// telemetry and answers a desktop session with a join link.
final class DemoAgentTests: XCTestCase {
    private func startAgent(_ f: AgentFixture, telemetry: Double = 30) -> DemoAgent {
        var c = DemoAgent.Configuration(host: "127.0.0.1", port: f.server.agentPort!, serverCA: f.pki.caFile,
                                        certificateFile: f.agentIdentity.certificateFile, keyFile: f.agentIdentity.keyFile,
                                        joinURL: "https://rmm.example/join")
        c.consentDelay = 0
        c.chatInterval = nil
        c.telemetryInterval = telemetry
        let agent = DemoAgent(c)
        agent.start()
        return agent
    }

    private func waitConnected(_ agent: DemoAgent) throws {
        let deadline = Date().addingTimeInterval(15)
        while !agent.isConnected {
            guard Date() < deadline else { throw TestWebSocketClient.Failure("the demo agent did not connect") }
            Thread.sleep(forTimeInterval: 0.02)
        }
    }

    /// Starts a shell on the linked ticket as `tech` and waits until the
    /// agent's banner prompt reached it; answers the session id.
    private func activeShell(_ f: AgentFixture, _ tech: TestWebSocketClient) throws -> String {
        let answer = try tech.commandAnswer("start-shell", f.linkedTicket, "start_session", ["kind": "shell"])
        XCTAssertEqual(answer["type"]?.stringValue, "result", "\(answer)")
        let active = try tech.next(timeout: 10) { Match.delta("session.status", f.linkedTicket)($0) && $0["data"]?["status"]?.stringValue == "active" }
        let session = try XCTUnwrap(active["data"]?["session"]?.stringValue)
        _ = try output(tech, f, until: "Allowed: echo")
        return session
    }

    /// Every `session.output` chunk read until their text contains `marker`, joined.
    private func output(_ c: TestWebSocketClient, _ f: AgentFixture, until marker: String) throws -> String {
        var text = ""
        let deadline = Date().addingTimeInterval(15)
        while !text.contains(marker) {
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { throw TestWebSocketClient.Failure("no \(marker.debugDescription) in the shell output: \(text.debugDescription)") }
            let delta = try c.next(timeout: left, where: Match.delta("session.output", f.linkedTicket))
            text += delta["data"]?["data"]?.stringValue ?? ""
        }
        return text
    }

    private func type(_ c: TestWebSocketClient, _ f: AgentFixture, _ session: String, _ data: String) throws {
        try c.send(["type": "session_input", "ticket": .string(f.linkedTicket), "session": .string(session), "data": .string(data)])
    }

    func testShell_realCommandOutputReachesTwoViewers_andTheTranscript() throws {
        let f = try AgentFixture(consentTimeout: 10)
        defer { f.stop() }
        let (ana, _) = try f.viewer(f.linkedTicket)
        let (ben, _) = try f.viewer(f.linkedTicket, as: "tech-2")
        let agent = startAgent(f)
        defer { agent.stop() }
        try waitConnected(agent)
        let session = try activeShell(f, ana)
        _ = try output(ben, f, until: "Allowed: echo")

        try type(ana, f, session, "echo hello from the agent\n")
        for viewer in [ana, ben] {
            let seen = try output(viewer, f, until: "\nhello from the agent\n")
            XCTAssertTrue(seen.contains("echo hello from the agent\nhello from the agent\n"), "the line, then what the real echo printed: \(seen.debugDescription)")
        }
        try type(ana, f, session, "whoami\n")
        let me = String(cString: getpwuid(getuid())!.pointee.pw_name)
        _ = try output(ana, f, until: "whoami\n\(me)\n")   // the real process's answer

        XCTAssertEqual(try ana.commandAnswer("end", f.linkedTicket, "end_session")["type"]?.stringValue, "result")
        let event = try ana.next(timeout: 15) { Match.systemMessage(f.linkedTicket)($0) && $0["data"]?["body"]?.stringValue?.contains("transcript attached") == true }
        let attachment = try XCTUnwrap(event["data"]?["attachments"]?.arrayValue?.first)
        XCTAssertEqual(attachment["filename"]?.stringValue, "shell-\(session).txt")
    }

    func testShell_commandsOffTheAllowListAreRefusedWithALine() throws {
        let f = try AgentFixture(consentTimeout: 10)
        defer { f.stop() }
        let (ana, _) = try f.viewer(f.linkedTicket)
        let agent = startAgent(f)
        defer { agent.stop() }
        try waitConnected(agent)
        let session = try activeShell(f, ana)

        let victim = NSTemporaryDirectory() + "demo-agent-victim-" + UUID().uuidString
        FileManager.default.createFile(atPath: victim, contents: Data("keep".utf8))
        defer { try? FileManager.default.removeItem(atPath: victim) }
        for line in ["rm -f \(victim)", "cat /etc/passwd", "df", "sh -c 'rm \(victim)'"] {
            try type(ana, f, session, line + "\n")
            let seen = try output(ana, f, until: "refused: the demo agent runs only echo, date, uptime, df -h and whoami (not \(line))")
            XCTAssertFalse(seen.contains("root:"), "nothing of the refused command ran: \(seen.debugDescription)")
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: victim), "the refused rm did not run")

        // No shell in between: the words are echo's arguments.
        try type(ana, f, session, "echo safe; rm -f \(victim)\n")
        _ = try output(ana, f, until: "safe; rm -f \(victim)\n")
        try type(ana, f, session, "df -h\n")
        _ = try output(ana, f, until: "Filesystem")
        XCTAssertTrue(FileManager.default.fileExists(atPath: victim))
    }

    func testParse_allowListExactlyAndNoShell() {
        XCTAssertEqual(DemoShellCommand.parse("  echo  a; b  "), .run(executable: "/usr/bin/echo", arguments: ["a;", "b"]))
        XCTAssertEqual(DemoShellCommand.parse("df -h"), .run(executable: "/usr/bin/df", arguments: ["-h"]))
        XCTAssertEqual(DemoShellCommand.parse(""), .nothing)
        for refused in ["df", "df -h /", "date -s 2020-01-01", "whoami --help x", "uptime; reboot", "/usr/bin/echo hi", "ECHO hi"] {
            guard case .refuse(let line) = DemoShellCommand.parse(refused) else { return XCTFail("\(refused) ran") }
            XCTAssertTrue(line.hasPrefix(DemoShellCommand.refusal), line)
        }
        XCTAssertEqual(ResizeHint.extract(from: "ab\u{1b}[8;40;120tcd").data, "abcd")
        XCTAssertEqual(ResizeHint.extract(from: "\u{1b}[8;40;120t").hint, ResizeHint(rows: 40, columns: 120))
    }

    func testTelemetryAndDesktopJoinLink() throws {
        let f = try AgentFixture(consentTimeout: 10)
        defer { f.stop() }
        let (ana, _) = try f.viewer(f.linkedTicket)
        let agent = startAgent(f, telemetry: 0.3)
        defer { agent.stop() }
        try waitConnected(agent)
        let first = try ana.next(timeout: 10, where: Match.delta("asset.telemetry", f.linkedTicket))
        let second = try ana.next(timeout: 10, where: Match.delta("asset.telemetry", f.linkedTicket))
        XCTAssertNotNil(first["data"]?["cpu"]?.doubleValue)
        XCTAssertNotEqual(first["data"], second["data"], "the tiles move")

        let answer = try ana.commandAnswer("start-desktop", f.linkedTicket, "start_session", ["kind": "desktop"])
        XCTAssertEqual(answer["type"]?.stringValue, "result", "\(answer)")
        let join = try ana.next(type: "session_join", timeout: 10)
        let session = try XCTUnwrap(join["session"]?.stringValue)
        XCTAssertEqual(join["url"]?.stringValue, "https://rmm.example/join?session=\(session)")
        XCTAssertEqual(join["ticket"]?.stringValue, f.linkedTicket)
    }
}

/// The demo shell's time limit and Ctrl-C, on a real process: a stand-in
/// `echo` that sleeps (first on the search path) takes the place of a slow command.
final class DemoShellSessionTests: XCTestCase {
    private final class Output: @unchecked Sendable {
        private let lock = NSLock()
        private var text = ""
        func append(_ s: String) { lock.lock(); text += s; lock.unlock() }
        var value: String { lock.lock(); defer { lock.unlock() }; return text }
        func wait(for marker: String, timeout: Double = 10) throws -> Double {
            let start = Date()
            while !value.contains(marker) {
                guard Date().timeIntervalSince(start) < timeout else { throw TestWebSocketClient.Failure("no \(marker.debugDescription) in \(value.debugDescription)") }
                Thread.sleep(forTimeInterval: 0.01)
            }
            return Date().timeIntervalSince(start)
        }
    }

    private func slowEcho() throws -> String {
        let dir = NSTemporaryDirectory() + "demo-shell-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/echo"
        try "#!/bin/sh\nprintf 'started\\n'\nexec sleep 30\n".write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return dir
    }

    func testACommandOverTheTimeLimitIsKilled_andCtrlCStopsOne() throws {
        let dir = try slowEcho()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = Output()
        let shell = DemoShellSession(id: "S-1", timeLimit: 2, searchPath: [dir]) { out.append($0) }
        defer { shell.end() }

        shell.input("echo slow\n")
        _ = try out.wait(for: "started\n")
        let waited = try out.wait(for: "[stopped: the demo agent gives a command 2 s]")
        XCTAssertLessThan(waited, 8, "killed at the limit, not after the 30 s sleep")
        _ = try out.wait(for: "[0m\n\u{1b}[32m$")   // and a new prompt

        shell.input("echo again\n")
        _ = try out.wait(for: "echo again\nstarted\n")
        shell.input("\u{3}")
        let stopped = try out.wait(for: "^C\n\u{1b}[32m$")
        XCTAssertLessThan(stopped, 1.9, "Ctrl-C ended it before the time limit (no [stopped] line in between)")
    }
}

final class DemoAgentOutputTests: XCTestCase {
    func testAdjacentOutputOfOneSessionGoesInOneFrame_upTo16KiB() {
        let chunk = { (s: String, d: String) -> JSONValue in ["type": "session_output", "session": .string(s), "data": .string(d)] }
        let big = String(repeating: "x", count: 16 * 1024 - 1)
        let frames = DemoAgent.coalesced([chunk("S-1", "$ echo hi\n"), chunk("S-1", "hi\n"), chunk("S-2", "a"), chunk("S-1", big), chunk("S-1", "yz"),
                                          ["type": "telemetry", "cpu": 1, "ram": 2, "disk": 3], chunk("S-1", "z")])
        XCTAssertEqual(frames.map { $0["data"]?.stringValue?.count ?? -1 }, [13, 1, 16 * 1024 - 1, 2, -1, 1])
        XCTAssertEqual(frames[0]["data"]?.stringValue, "$ echo hi\nhi\n")
    }
}
