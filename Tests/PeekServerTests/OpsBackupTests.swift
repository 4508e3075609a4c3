import Foundation
import XCTest
import Synchronization
import PeekCore
import PeekServer
import PeekTestSupport

/// `peekd backup` of a server being written to, `peekd restore` into a new
/// directory, and a server on the copy: every note and attachment
/// acknowledged before the backup began is there, and each ticket's log
/// is whole (a resume from 0 gets contiguous seqs).
final class OpsBackupTests: TemporaryDirectoryTestCase {
    /// Every delta kept (so a resume from 0 shows the whole log), and no
    /// rate limit on the one writer.
    private static func keepEverything(_ c: inout ServerConfig) {
        c.retainDeltas = 1_000_000
        c.framesPerSecond = 1_000_000
    }

    func testBackupUnderLoad_restoredServerServesEveryAcknowledgedNoteAndAttachment() throws {
        _ = try PeekdSubprocess.binary()
        let source = try TestServer(directory: directory + "/source", configure: Self.keepEverything)
        defer { source.stop() }
        let tickets = try source.seed(tickets: 3)
        let load = NoteLoad(port: source.port, token: source.token(tenant: "acme", user: "tech-1"),
                            serviceToken: source.config.serviceToken, tickets: tickets)
        load.start()
        defer { load.stop() }
        let warm = Date().addingTimeInterval(60)
        while load.acknowledged.notes.count < 150 || load.acknowledged.attachments.count < 3, load.failure == nil, Date() < warm {
            usleep(20_000)
        }
        XCTAssertNil(load.failure)
        let before = load.acknowledged

        // A write a crash cut short is not data: the backup leaves it out.
        let temporary = "attachments/ab/ab12.tmp-0011aabbccdd"
        try FileManager.default.createDirectory(atPath: source.directory + "/attachments/ab", withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: source.directory + "/" + temporary, contents: Data("half".utf8)))
        let archive = directory + "/peek.backup"
        let backup = try PeekdSubprocess.run(["backup", "--data", source.directory, "--to", archive])
        XCTAssertEqual(backup.status, 0, backup.stderr)
        XCTAssertTrue(backup.stdout.hasPrefix("peekd backup: wrote \(archive)"), backup.stdout)
        let during = load.acknowledged.notes.count - before.notes.count
        load.stop()
        XCTAssertNil(load.failure)
        XCTAssertGreaterThan(during, 0, "no note was written while the backup ran: not a backup under load")

        // A directory with anything in it is never restored into.
        let occupied = directory + "/occupied"
        try FileManager.default.createDirectory(atPath: occupied, withIntermediateDirectories: true)
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: occupied + "/notes.txt"))
        let refused = try PeekdSubprocess.run(["restore", "--from", archive, "--data", occupied])
        XCTAssertEqual(refused.status, 2)
        XCTAssertTrue(refused.stderr.contains("is not empty"), refused.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: occupied), ["notes.txt"])

        let restored = directory + "/restored"
        let restore = try PeekdSubprocess.run(["restore", "--from", archive, "--data", restored])
        XCTAssertEqual(restore.status, 0, restore.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: restored + "/" + temporary), "the backup carried a temporary attachment file")
        let copy = try TestServer(directory: restored, configure: Self.keepEverything)
        defer { copy.stop() }
        let viewer = try copy.technician("tech-1")
        defer { viewer.close() }
        var served: Set<String> = []
        for ticket in tickets {
            let (deltas, end) = try viewer.resume(ticket, since: 0, id: "r-\(ticket)")
            XCTAssertEqual(end["type"]?.stringValue, "subscribed", "\(end)")
            let seqs = deltas.compactMap { $0["seq"]?.intValue }
            XCTAssertFalse(seqs.isEmpty)
            XCTAssertEqual(seqs, Array(1...max(1, seqs.count)), "the restored log of \(ticket) has a gap")
            XCTAssertEqual(end["seq"]?.intValue, seqs.last)
            for d in deltas where d["kind"]?.stringValue == "message.created" {
                if let body = d["data"]?["body"]?.stringValue { served.insert(ticket + " " + body) }
            }
        }
        let missing = before.notes.filter { !served.contains($0.ticket + " " + $0.body) }
        XCTAssertEqual(missing.count, 0, "acknowledged before the backup, missing after restore: \(missing.prefix(5))")
        let technicianToken = copy.token(tenant: "acme", user: "tech-1")
        for (id, bytes) in before.attachments {
            let r = try copy.request("GET", "/v1/attachments/\(id)", token: technicianToken)
            XCTAssertEqual(r.status, 200, "attachment \(id): \(r.text)")
            XCTAssertEqual(r.body, bytes, "attachment \(id) came back different")
        }
    }

    /// With --database the tickets are not in --data: both refuse, naming
    /// PostgreSQL's own tools, and write nothing.
    func testBackupAndRestore_withPostgresDatabase_refused() throws {
        let url = "postgres://peek@127.0.0.1:1/none"
        let backup = try PeekdSubprocess.run(["backup", "--data", directory, "--database", url, "--to", directory + "/peek.backup"])
        let restore = try PeekdSubprocess.run(["restore", "--from", directory + "/peek.backup", "--data", directory + "/restored", "--database", url])
        for r in [backup, restore] {
            XCTAssertEqual(r.status, 2, r.stdout)
            XCTAssertTrue(r.stderr.contains("use pg_dump / pg_restore"), r.stderr)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), [])
    }

    /// A file that is not a backup, or is cut short, is refused and leaves
    /// no directory behind.
    func testRestore_truncatedOrForeignArchive_refusedAndNothingLeft() throws {
        let source = try TestServer(directory: directory + "/source")
        _ = try source.seed(tickets: 1)
        source.stop()
        let archive = directory + "/peek.backup"
        XCTAssertEqual(try PeekdSubprocess.run(["backup", "--data", source.directory, "--to", archive]).status, 0)
        let whole = try Data(contentsOf: URL(fileURLWithPath: archive))
        let cut = directory + "/cut.backup"
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: cut))
        let foreign = directory + "/foreign.backup"
        try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: foreign))
        let missing = directory + "/no-such.backup"
        for (file, reason) in [(cut, "incomplete"), (foreign, "not a ustar archive"), (missing, "cannot read")] {
            let target = directory + "/restored-" + UUID().uuidString
            let r = try PeekdSubprocess.run(["restore", "--from", file, "--data", target])
            XCTAssertEqual(r.status, 2, r.stdout)
            XCTAssertTrue(r.stderr.contains(reason), r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: target), "a failed restore left \(target) behind")
        }
        let again = try PeekdSubprocess.run(["backup", "--data", source.directory, "--to", archive])
        XCTAssertEqual(again.status, 2)
        XCTAssertTrue(again.stderr.contains("already exists"), again.stderr)
    }
}

/// One technician posting notes round-robin over a few tickets, one at a
/// time, and uploading an attachment every 25 notes; remembers what was
/// acknowledged.
private final class NoteLoad: @unchecked Sendable {
    // @unchecked: `state` is behind its Mutex; the rest is set in init.
    struct Acknowledged {
        var notes: [(ticket: String, body: String)] = []
        var attachments: [(id: String, bytes: [UInt8])] = []
    }
    private struct State { var acknowledged = Acknowledged(); var failure: String?; var stopping = false; var running = false }
    private let state = Mutex(State())
    private let done = DispatchSemaphore(value: 0)
    let port: UInt16, token: String, serviceToken: String, tickets: [String]

    init(port: UInt16, token: String, serviceToken: String, tickets: [String]) {
        self.port = port; self.token = token; self.serviceToken = serviceToken; self.tickets = tickets
    }

    var acknowledged: Acknowledged { state.withLock { $0.acknowledged } }
    var failure: String? { state.withLock { $0.failure } }

    func start() {
        state.withLock { $0.running = true }
        Thread { [self] in
            defer { done.signal() }
            do { try run() } catch { state.withLock { $0.failure = "\(error)" } }
        }.start()
    }

    func stop() {
        let wasRunning = state.withLock { s in
            s.stopping = true
            defer { s.running = false }
            return s.running
        }
        if wasRunning { done.wait() }
    }

    private func run() throws {
        let client = try TestWebSocketClient(port: port)
        defer { client.close() }
        try client.send(["type": "hello", "token": .string(token)])
        try client.next(type: "welcome")
        var n = 0
        while !state.withLock({ $0.stopping }) {
            n += 1
            let ticket = tickets[n % tickets.count]
            if n % 25 == 0 {
                let bytes = Array("attachment \(n) \(UUID().uuidString)".utf8)
                let r = try TestServer.request(port: port, "POST", "/v1/tickets/\(ticket)/attachments?filename=a\(n).txt", body: bytes,
                                               contentType: "text/plain", bearer: serviceToken)
                guard r.status == 201, let id = r.json?["id"]?.stringValue else { throw TestWebSocketClient.Failure("upload: \(r.status) \(r.text)") }
                state.withLock { $0.acknowledged.attachments.append((id, bytes)) }
            }
            let body = "backup note \(n)"
            let id = "n-\(n)"
            try client.send(["type": "command", "id": .string(id), "ticket": .string(ticket), "op": "note", "args": ["body": .string(body)]])
            let answer = try client.next(timeout: 20) { $0["id"]?.stringValue == id }
            guard answer["type"]?.stringValue == "result" else { throw TestWebSocketClient.Failure("note \(n): \(answer)") }
            state.withLock { $0.acknowledged.notes.append((ticket, body)) }
        }
    }
}
