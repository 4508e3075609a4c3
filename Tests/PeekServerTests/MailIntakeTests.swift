import Foundation
import XCTest
import Synchronization
import PeekCore
import PeekCrypto
import PeekMail
@testable import PeekEngine
@testable import PeekServer
import PeekTestSupport

/// Inbound mail, uploads and downloads are worked on by bounded worker
/// pools, never by the engine thread that commits every tenant's changes:
/// a hostile or slow message holds one mail worker for at most its budget,
/// while other tenants' commands go on, and attachment files are on disk
/// (synced) before the row that names them commits.
final class MailIntakeTests: XCTestCase {
    /// A header that makes the test parser below behave like a parser stuck
    /// on hostile input that checks its budget (what PeekMail's bounded
    /// parser does): it spins until the budget is spent, then gives up.
    static let spinMarker = "X-Test-Spin: yes"

    static let spinningParser = InboundMailParsing { message, isOverBudget in
        if String(decoding: message.prefix(200), as: UTF8.self).contains(spinMarker) {
            while !isOverBudget() { usleep(2_000) }
            throw InboundMailError.notAMessage
        }
        return try InboundMailParser().parse(message)
    }

    private func crlf(_ text: String) -> [UInt8] { Array(text.replacingOccurrences(of: "\n", with: "\r\n").utf8) }

    private func mail(number: Int, spin: Bool = false, body: String = "hello", messageID: String = UUID().uuidString + "@b.example") -> [UInt8] {
        crlf((spin ? Self.spinMarker + "\n" : "") + """
            From: Casey <customer@example.com>
            To: support@acme.example
            Subject: hi [#\(number)]
            Message-ID: <\(messageID)>

            \(body)

            """)
    }

    private func postMail(_ server: TestServer, _ raw: [UInt8], tenant: String = "acme") throws -> TestServer.Response {
        try server.request("POST", "/v1/tenants/\(tenant)/inbound-email", body: raw, contentType: "message/rfc822")
    }

    /// Runs `body` on another thread; `wait()` returns its result.
    private final class Background<T>: @unchecked Sendable {
        private var result: Result<T, any Error>?
        private let done = DispatchSemaphore(value: 0)
        init(_ body: @escaping () throws -> T) {
            // Each test hands the work over and touches it no more.
            let work = Unshared(body)
            Thread { [self] in
                result = Result { try work.value() }
                done.signal()
            }.start()
        }
        func wait(timeout: Double = 30) throws -> T {
            guard done.wait(timeout: .now() + timeout) == .success, let result else { throw TestWebSocketClient.Failure("background work never finished") }
            return try result.get()
        }
    }

    /// Tenants acme and globex with a ticket each, and a globex technician
    /// viewing globex's ticket: the other tenant whose work must go on.
    private func twoTenants(_ server: TestServer) throws -> (acme: String, globex: String, tech: TestWebSocketClient) {
        let acme = try server.seed(tenant: "acme")[0]
        let globex = try server.seed(tenant: "globex")[0]
        let tech = try server.technician("tech-1", tenant: "globex")
        try tech.subscribe(globex)
        return (acme, globex, tech)
    }

    /// A note round trip of `client` on `ticket`, in seconds.
    private func noteRoundTrip(_ client: TestWebSocketClient, _ ticket: String, id: String) throws -> Double {
        let start = Date()
        let r = try client.run(id, ticket, "note", ["body": .string(id)])
        XCTAssertEqual(r["type"]?.stringValue, "result", "\(r)")
        return Date().timeIntervalSince(start)
    }

    /// Issue 13: one message whose parse does not end stopped every tenant.
    /// Here the parse runs past its budget on a mail worker: meanwhile
    /// another tenant's note round trip completes at its usual speed, a
    /// well-formed message on a second worker is stored, and the hostile one
    /// is answered 422 once its budget is spent, with nothing stored.
    func testInbound_parsePastItsBudget_otherTenantsGoOnAndItIsRefused422() throws {
        let budget = 4.0
        let server = try TestServer {
            $0.inboundMailBudgetMillis = Int(budget * 1000)
            $0.inboundMailParsing = Self.spinningParser
        }
        defer { server.stop() }
        let (acme, globex, tech) = try twoTenants(server)
        let before = try server.storedTicket(acme)

        let started = Date()
        let hostile = Background { try self.postMail(server, self.mail(number: ticketNumber(acme), spin: true)) }
        Thread.sleep(forTimeInterval: 0.3)   // the hostile parse is under way
        let roundTrip = try noteRoundTrip(tech, globex, id: "during-hostile")
        XCTAssertLessThan(roundTrip, 2.0, "another tenant's note waited behind the hostile message")
        let fine = try postMail(server, mail(number: ticketNumber(acme), body: "a normal message"))
        XCTAssertEqual(fine.status, 201, "a second mail worker takes mail meanwhile: \(fine.text)")
        XCTAssertLessThan(Date().timeIntervalSince(started), budget, "the normal message waited behind the hostile one")

        let refused = try hostile.wait()
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertEqual(refused.status, 422, refused.text)
        XCTAssertEqual(refused.json?["error"]?["code"]?.stringValue, "invalid")
        XCTAssertTrue(refused.json?["error"]?["message"]?.stringValue?.contains("longer than") ?? false, refused.text)
        XCTAssertGreaterThanOrEqual(elapsed, budget - 0.5)
        XCTAssertLessThan(elapsed, budget + 5, "the refusal came long after the budget")
        let after = try server.storedTicket(acme)
        XCTAssertEqual(after.messages.count, before.messages.count + 1, "only the normal message is stored")
        XCTAssertEqual(after.messages.last?["body"]?.stringValue, "a normal message")
    }

    /// The message of issue 13 with PeekMail's parser as it is: answered
    /// quickly (refused, or stored if the parser reads it), while another
    /// tenant's note round trip completes.
    func testInbound_colonAfterAngleAddress_answeredQuicklyWhileOtherTenantsGoOn() throws {
        let server = try TestServer()
        defer { server.stop() }
        let (acme, globex, tech) = try twoTenants(server)
        let before = try server.storedTicket(acme)
        let raw = Array("From: <a@b.c>:\r\nTo: help@acme.test\r\nSubject: hi [#\(ticketNumber(acme))]\r\nMessage-ID: <x1@b.c>\r\n\r\nhello".utf8)
        let started = Date()
        let hostile = Background { try self.postMail(server, raw) }
        XCTAssertLessThan(try noteRoundTrip(tech, globex, id: "during-colon"), 2.0)
        let r = try hostile.wait(timeout: 10)
        XCTAssertLessThan(Date().timeIntervalSince(started), 3.0)
        XCTAssertTrue([201, 422].contains(r.status), r.text)
        if r.status == 422 { XCTAssertEqual(try server.storedTicket(acme).messages.count, before.messages.count) }
    }

    /// Issue 13's burst: hostile mails (over-budget, nested too deep, too
    /// many parts, a header over its bound, no header, no From, binary)
    /// posted from several threads while a technician posts notes. Every
    /// note is acknowledged and reaches a viewer in order, every hostile
    /// mail is refused with a 4xx, and the server's memory stays bounded.
    func testInbound_burstOfHostileMail_notesAcknowledgedInOrder_allRefused_memoryBounded() throws {
        let server = try TestServer {
            $0.inboundMailBudgetMillis = 1500
            $0.inboundMailParsing = Self.spinningParser
        }
        defer { server.stop() }
        let ticket = try server.seed(tenant: "acme", technicians: 2)[0]
        let number = ticketNumber(ticket)
        let writer = try server.technician("tech-1")
        let viewer = try server.technician("tech-2")
        try viewer.subscribe(ticket)
        let rssBefore = try residentKiB()

        var nested = "From: a@b.example\nSubject: [#\(number)]\nContent-Type: multipart/mixed; boundary=b0\n\n"
        for depth in 1...12 { nested += "--b\(depth - 1)\nContent-Type: multipart/mixed; boundary=b\(depth)\n\n" }
        nested += "text\n"
        var manyParts = "From: a@b.example\nSubject: [#\(number)]\nContent-Type: multipart/mixed; boundary=p\n\n"
        for _ in 0..<600 { manyParts += "--p\nContent-Type: text/plain\n\nx\n" }
        manyParts += "--p--\n"
        let hugeHeader = "From: a@b.example\nSubject: [#\(number)]\nX-Junk: " + String(repeating: "j", count: 300 * 1024) + "\n\nbody\n"
        let hostile: [[UInt8]] = [
            mail(number: number, spin: true),
            crlf(nested), mail(number: number, spin: true), crlf(manyParts), crlf(hugeHeader),
            crlf("just words, no header\n"),
            crlf("Subject: [#\(number)]\nTo: support@acme.example\n\nno sender\n"),
            [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + [UInt8](repeating: 0, count: 4096),
        ]
        let posters = (0..<4).map { poster in
            Background { () -> [Int] in
                (0..<13).map { i in (try? self.postMail(server, hostile[(poster * 13 + i) % hostile.count]).status) ?? -1 }
            }
        }
        var slowest = 0.0
        for i in 0..<30 { slowest = max(slowest, try noteRoundTrip(writer, ticket, id: "burst-\(i)")) }
        let statuses = try posters.flatMap { try $0.wait(timeout: 120) }

        XCTAssertEqual(statuses.count, 52)
        XCTAssertTrue(statuses.allSatisfy { (400..<500).contains($0) }, "every hostile mail refused with a 4xx: \(statuses)")
        XCTAssertLessThan(slowest, 2.0, "a note waited behind hostile mail")
        var seen: [String] = []
        while seen.count < 30 {
            let d = try viewer.next(timeout: 10) { $0["type"]?.stringValue == "delta" && $0["kind"]?.stringValue == "message.created" }
            seen.append(d["data"]?["body"]?.stringValue ?? "")
        }
        XCTAssertEqual(seen, (0..<30).map { "burst-\($0)" }, "notes delivered in order, and nothing else")
        let stored = try server.storedTicket(ticket)
        XCTAssertFalse(stored.messages.contains { $0["channel"]?.stringValue == "customer" }, "a hostile mail was stored")
        // Generous: the hostile bodies total about 4 MiB; the bound catches
        // a parse that grows without limit (1.8 GB in issue 13).
        let grownMiB = (try residentKiB() - rssBefore) / 1024
        XCTAssertLessThan(grownMiB, 300, "the server grew \(grownMiB) MiB")
    }

    /// Attachment files are written and synced by a file worker before the
    /// engine inserts their row: with the engine held, the uploaded file is
    /// already complete on disk, and the row (the 201) comes once the engine
    /// goes on. fsync itself cannot be observed from here; that the file is
    /// complete under its final name while no row can exist yet is what
    /// the order guarantees, and `AttachmentFiles.write` syncs the file and
    /// its folder before it returns.
    func testUpload_fileCompleteOnDiskBeforeItsRow_thenDownloadedByteForByte() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let file = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let sha = file.sha256Hex
        let r = try withEngineHeld(server, expectingFile: file) {
            try server.request("POST", "/v1/tickets/\(ticket)/attachments?filename=dump.bin", body: file, contentType: "application/octet-stream")
        }
        XCTAssertEqual(r.status, 201, r.text)
        XCTAssertEqual(r.json?["sha256"]?.stringValue, sha)
        let id = try XCTUnwrap(r.json?["id"]?.stringValue)
        let download = try server.request("GET", "/v1/attachments/\(id)")
        XCTAssertEqual(download.status, 200)
        XCTAssertEqual(download.body, file)
        XCTAssertEqual(download.headers["content-type"], "application/octet-stream")
        // A technician of the tenant downloads it too, by the link's ?token=.
        let link = try server.request("GET", "/v1/attachments/\(id)?token=\(server.token(tenant: "acme", user: "tech-1"))", service: false)
        XCTAssertEqual(link.body, file)
        // Nothing but the file itself is left in its folder (no temporary).
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: "\(server.directory)/attachments/\(sha.prefix(2))"), [sha])
    }

    /// Sends `request` while the engine is held, so no row can be written,
    /// and checks that `file` is meanwhile complete on disk under its digest;
    /// then lets the engine go on and answers the response.
    private func withEngineHeld(_ server: TestServer, expectingFile file: [UInt8], sourceFile: StaticString = #filePath, sourceLine: UInt = #line,
                                _ request: @escaping () throws -> TestServer.Response) throws -> TestServer.Response {
        let sha = file.sha256Hex
        let path = "\(server.directory)/attachments/\(sha.prefix(2))/\(sha)"
        let release = try server.holdEngine()
        let answer = Background(request)
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: path) && Date() < deadline { usleep(10_000) }
        XCTAssertEqual(FileManager.default.contents(atPath: path).map { [UInt8]($0) }, file,
                       "the file is not complete on disk while the engine is held", file: sourceFile, line: sourceLine)
        release.signal()
        return try answer.wait()
    }

    /// The same for a mail's attachment: written by the mail worker while
    /// the engine is held, stored with the message once it goes on.
    func testInboundAttachment_fileOnDiskBeforeTheEngineStoresTheMessage() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let pdf = Array("%PDF-1.4\n% held-engine test\n%%EOF\n".utf8)
        let raw = mailWithAttachment(subject: "report [#\(ticketNumber(ticket))]", pdf: pdf)
        let r = try withEngineHeld(server, expectingFile: pdf) { try self.postMail(server, raw) }
        XCTAssertEqual(r.status, 201, r.text)
        XCTAssertEqual(r.json?["message"]?["attachments"]?.arrayValue?.first?["size"]?.intValue, pdf.count)
    }

    /// One mail worker and the spinning parser: a hostile mail holds the
    /// only worker for `budgetMillis`.
    private func serverWithOneSpinningWorker(budgetMillis: Int, _ configure: (inout ServerConfig) -> Void) throws -> TestServer {
        try TestServer {
            $0.mailWorkerThreads = 1
            $0.inboundMailBudgetMillis = budgetMillis
            $0.inboundMailParsing = Self.spinningParser
            configure(&$0)
        }
    }

    /// The bounded queue: past its capacity a request is refused with 429
    /// and Retry-After (nothing queued without bound), and served again once
    /// the workers are free.
    func testMailWorkersFull_429WithRetryAfter_thenServedAgain() throws {
        let server = try serverWithOneSpinningWorker(budgetMillis: 3000) { $0.mailQueueCapacity = 1 }
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let number = ticketNumber(ticket)
        // The worker is held for 3 s; the margins below are half a second
        // each, so a loaded machine has 2 s to spare.
        let busyWorker = Background { try self.postMail(server, self.mail(number: number, spin: true)) }
        Thread.sleep(forTimeInterval: 0.5)
        let waiting = Background { try self.postMail(server, self.mail(number: number, spin: true)) }
        Thread.sleep(forTimeInterval: 0.5)
        let refused = try postMail(server, mail(number: number))
        XCTAssertEqual(refused.status, 429, refused.text)
        XCTAssertEqual(refused.headers["retry-after"], "1")
        XCTAssertEqual(refused.json?["error"]?["code"]?.stringValue, "rate_limited")
        XCTAssertEqual(try busyWorker.wait().status, 422)
        XCTAssertEqual(try waiting.wait().status, 422)
        XCTAssertEqual(try postMail(server, mail(number: number)).status, 201)
    }

    /// Issue 14: the mail workers are shared fairly between tenants. One
    /// tenant's flood of slow mail used to take every worker and queue place,
    /// so another tenant's mail was refused (429) or waited behind all of
    /// it. Now the flood is refused past its share (half the places while it
    /// floods alone), the other tenant's mail is taken, and it runs in turn,
    /// not after the whole flood.
    func testMailWorkers_oneTenantFloods_refusedPastItsShare_otherTenantsMailStoredInTurn() throws {
        let server = try serverWithOneSpinningWorker(budgetMillis: 1000) { $0.mailQueueCapacity = 15 }
        defer { server.stop() }
        let (acme, globex, _) = try twoTenants(server)
        let refusals = Mutex(0)
        let flood = (0..<16).map { _ in
            Background {
                let r = try self.postMail(server, self.mail(number: ticketNumber(acme), spin: true))
                if r.status == 429 { refusals.withLock { $0 += 1 } }
                return r
            }
        }
        // Until the flood has reached its share (its refusals come at once).
        let deadline = Date().addingTimeInterval(20)
        while refusals.withLock({ $0 }) < 8 && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        let start = Date()
        let quiet = try postMail(server, mail(number: ticketNumber(globex), body: "from globex"), tenant: "globex")
        let waited = Date().timeIntervalSince(start)
        XCTAssertEqual(quiet.status, 201, quiet.text)
        // The flood's 8 jobs take 8 s; in turn, globex's ran after at most two.
        XCTAssertLessThan(waited, 5, "globex's mail waited behind acme's whole flood")
        let statuses = try flood.map { try $0.wait(timeout: 60).status }
        XCTAssertEqual(statuses.filter { $0 == 422 }.count, 8, "\(statuses)")
        XCTAssertEqual(statuses.filter { $0 == 429 }.count, 8, "\(statuses)")
    }

    /// Issue 14: the large-body slot was given back when the connection
    /// closed, while the queued job still held the body: clients that sent
    /// 25 MiB and hung up at once could queue any number of bodies past
    /// `maxLargeBodies`. The slot now belongs to the request: it is given
    /// back when the request is answered or its worker is done with it.
    func testLargeBodySlot_heldByTheQueuedJob_afterItsClientHungUp() throws {
        let server = try serverWithOneSpinningWorker(budgetMillis: 3000) { $0.maxLargeBodies = 2 }
        defer { server.stop() }
        let number = ticketNumber(try server.seed()[0])
        let padding = String(repeating: "x", count: 1_200_000)
        let large = { (spin: Bool) in self.mail(number: number, spin: spin, body: padding) }
        // Two large hostile mails: one holds the only worker for 3 s, the
        // other waits for it. Each client sends everything and hangs up.
        for _ in 0..<2 {
            let socket = try TestSocket.connect(port: server.port)
            let body = large(true)
            try socket.write(Array("POST /v1/tenants/acme/inbound-email HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(server.config.serviceToken)\r\nContent-Type: message/rfc822\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body, timeout: 10)
            Thread.sleep(forTimeInterval: 0.3)
            socket.reset()
        }
        Thread.sleep(forTimeInterval: 0.3)
        let refused = try postMail(server, large(false))
        XCTAssertEqual(refused.status, 429, "a third large body was taken while two jobs still held theirs")
        XCTAssertEqual(refused.headers["retry-after"], "1")
        // Once both jobs are done (about 6 s), the same mail is taken.
        let deadline = Date().addingTimeInterval(30)
        var accepted = try postMail(server, large(false))
        while accepted.status == 429 && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.2)
            accepted = try postMail(server, large(false))
        }
        XCTAssertEqual(accepted.status, 201, "\(accepted.json?["error"] ?? .null)")
    }

    /// A mail with a text part and `pdf` attached.
    private func mailWithAttachment(subject: String, pdf: [UInt8]) -> [UInt8] {
        crlf("""
            From: Casey <customer@example.com>
            Subject: \(subject)
            Content-Type: multipart/mixed; boundary="b"

            --b
            Content-Type: text/plain

            Report attached.
            --b
            Content-Type: application/pdf; name="r.pdf"
            Content-Disposition: attachment; filename="r.pdf"
            Content-Transfer-Encoding: base64

            \(Data(pdf).base64EncodedString())
            --b--

            """)
    }

    /// Every file under `<data>/attachments`, temporaries included.
    private func attachmentFiles(_ server: TestServer) -> [String] {
        let root = server.directory + "/attachments"
        let folders = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return folders.flatMap { folder in ((try? FileManager.default.contentsOfDirectory(atPath: root + "/" + folder)) ?? []).map { folder + "/" + $0 } }
    }

    /// Waits (generously) until `condition` holds; false if it never did.
    private func eventually(_ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(10)
        while !condition() && Date() < deadline { usleep(20_000) }
        return condition()
    }

    /// Issue 14: a refused mail's attachment was written before the engine
    /// refused the mail and was never deleted, so a stranger could fill
    /// the disk with mail to no ticket. Its file is deleted now.
    func testInboundAttachment_mailMatchesNoTicket_422_andNoFileLeft() throws {
        let server = try TestServer()
        defer { server.stop() }
        _ = try server.seed()
        let pdf = Array("%PDF-1.4\n% refused mail\n%%EOF\n".utf8)
        let r = try postMail(server, mailWithAttachment(subject: "report [#987654]", pdf: pdf))
        XCTAssertEqual(r.status, 422, r.text)
        XCTAssertTrue(eventually { attachmentFiles(server).isEmpty }, "left on disk: \(attachmentFiles(server))")
    }

    /// The same for an upload to a ticket that does not exist.
    func testUpload_toMissingTicket_404_andNoFileLeft() throws {
        let server = try TestServer()
        defer { server.stop() }
        _ = try server.seed()
        let r = try server.request("POST", "/v1/tickets/T-987654/attachments?filename=a.bin", body: Array(repeating: 7, count: 5000),
                                   contentType: "application/octet-stream")
        XCTAssertEqual(r.status, 404, r.text)
        XCTAssertTrue(eventually { attachmentFiles(server).isEmpty }, "left on disk: \(attachmentFiles(server))")
    }

    /// Files are content-addressed: a refused mail that carries the bytes of
    /// a stored attachment must not take that attachment's file with it.
    func testInboundAttachment_refusedMailWithStoredBytes_fileKept() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let pdf = Array("%PDF-1.4\n% shared bytes\n%%EOF\n".utf8)
        let stored = try postMail(server, mailWithAttachment(subject: "report [#\(ticketNumber(ticket))]", pdf: pdf))
        XCTAssertEqual(stored.status, 201, stored.text)
        let id = try XCTUnwrap(stored.json?["message"]?["attachments"]?.arrayValue?.first?["id"]?.stringValue)
        XCTAssertEqual(try postMail(server, mailWithAttachment(subject: "report [#987654]", pdf: pdf)).status, 422)
        // A refusal whose file does go: once it is gone, the deletions the
        // engine asked for have run (plus a margin for the other worker).
        let other = Array("%PDF-1.4\n% other bytes\n%%EOF\n".utf8)
        XCTAssertEqual(try postMail(server, mailWithAttachment(subject: "report [#987654]", pdf: other)).status, 422)
        XCTAssertTrue(eventually { !attachmentFiles(server).contains { $0.hasSuffix(other.sha256Hex) } })
        Thread.sleep(forTimeInterval: 0.5)
        XCTAssertEqual(attachmentFiles(server), ["\(pdf.sha256Hex.prefix(2))/\(pdf.sha256Hex)"])
        XCTAssertEqual(try server.request("GET", "/v1/attachments/\(id)").body, pdf)
    }

    /// A write that a crash interrupted leaves `<sha>.tmp-<hex>`; a file
    /// worker removes those older than the age limit, and only those.
    func testTemporaryAttachmentFiles_staleOnesSwept_freshOnesKept() throws {
        let server = try TestServer {
            $0.attachmentSweepIntervalMillis = 200
            $0.attachmentTemporaryMaxAgeMillis = 60_000
        }
        defer { server.stop() }
        let folder = server.directory + "/attachments/ab"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let stale = folder + "/ab12.tmp-0011aabbccdd", fresh = folder + "/ab34.tmp-0011aabbccdd"
        for path in [stale, fresh] { XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data("half".utf8))) }
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-3600)], ofItemAtPath: stale)
        XCTAssertTrue(eventually { !FileManager.default.fileExists(atPath: stale) }, "the stale temporary file was not swept")
        XCTAssertTrue(FileManager.default.fileExists(atPath: fresh))
    }
}

/// This process's resident memory (the server runs in-process).
func residentKiB() throws -> Int {
    let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else {
        throw TestWebSocketClient.Failure("no VmRSS in /proc/self/status")
    }
    return kib
}

extension Array where Element == UInt8 {
    var sha256Hex: String { Crypto.hex(Crypto.sha256(self)) }
}
