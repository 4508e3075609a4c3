#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import PeekCore
import PeekTestSupport
import PeekWebSocket
import PeekTLS

/// Back-pressure: a viewer that stops reading while a ticket floods is cut
/// off (1013, "resume with since") without holding up a viewer that reads.
final class CoreSlowConsumerTests: XCTestCase {
    func testSlowConsumer_stopsReadingDuringFlood_closedWhileOtherViewerGetsEveryNoteInOrder() throws {
        let server = try TestServer { c in
            c.softOutputLimit = 16 * 1024
            c.hardOutputLimit = 64 * 1024
        }
        defer { server.stop() }
        let ticket = try server.seed(technicians: 3)[0]

        let slow = try server.technician("tech-2")
        defer { slow.close() }
        try slow.send(["type": "subscribe", "id": "s-slow", "ticket": .string(ticket)])
        let slowSnapshot = try slow.next(type: "snapshot")
        let startSeq = try XCTUnwrap(slowSnapshot["seq"]?.intValue)

        let reader = try server.technician("tech-1")
        defer { reader.close() }
        try reader.send(["type": "subscribe", "id": "s-reader", "ticket": .string(ticket)])
        try reader.next(type: "snapshot")
        // From here `slow` reads nothing.

        let notes = 120
        let body = String(repeating: "0123456789", count: 6_000)  // 60 kB, under the 64 KiB note limit
        var resultSeqs: [Int] = []
        for i in 0..<notes {
            try reader.send(["type": "command", "id": .string("n\(i)"), "ticket": .string(ticket), "op": "note",
                             "args": ["body": .string("\(i):" + body)]])
            let result = try reader.next(timeout: 10) { $0["type"]?.stringValue == "result" || $0["type"]?.stringValue == "error" }
            XCTAssertEqual(result["type"]?.stringValue, "result", "note \(i): \(result)")
            XCTAssertEqual(result["id"]?.stringValue, "n\(i)")
            resultSeqs.append(try XCTUnwrap(result["seq"]?.intValue))
        }
        XCTAssertEqual(resultSeqs, Array((startSeq + 1)...(startSeq + notes)))

        // The reader got every note, once, in seq order, with its own body.
        var deltas = reader.received.filter { $0["kind"]?.stringValue == "message.created" }
        while deltas.count < notes {
            deltas.append(try reader.next(timeout: 10) { $0["kind"]?.stringValue == "message.created" })
        }
        XCTAssertEqual(deltas.compactMap { $0["seq"]?.intValue }, resultSeqs)
        XCTAssertEqual(deltas.compactMap { $0["data"]?["body"]?.stringValue?.split(separator: ":").first.map(String.init) },
                       (0..<notes).map(String.init))

        // The slow viewer was closed as a slow consumer and left the ticket.
        // (Not judged by the reader's presence.updated: presence is
        // ephemeral and may be shed while the reader is still catching up.)
        XCTAssertTrue(try waitForMetric(server, "peekd_slow_consumers_closed_total", atLeast: 1))
        let observer = try server.technician("tech-3")
        defer { observer.close() }
        var viewers: [String] = []
        let deadline = Date().addingTimeInterval(10)
        for attempt in 0... {
            try observer.send(["type": "subscribe", "id": .string("o\(attempt)"), "ticket": .string(ticket)])
            let snapshot = try observer.next(type: "snapshot")
            viewers = (snapshot["state"]?["viewers"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }.sorted()
            if viewers == ["tech-1", "tech-3"] || Date() > deadline { break }
            try observer.send(["type": "unsubscribe", "ticket": .string(ticket)])
            usleep(200_000)
        }
        XCTAssertEqual(viewers, ["tech-1", "tech-3"])

        // Reading now: the backlog, then 1013 if the close frame made it out, else EOF.
        var code: UInt16?
        do { code = try slow.awaitClose(timeout: 10) } catch {
            XCTAssertNil(slow.closeCode, "\(error)")
        }
        if let code { XCTAssertEqual(code, 1013) }
        let seen = slow.received.compactMap { $0["kind"]?.stringValue == "message.created" ? $0["seq"]?.intValue : nil }
        XCTAssertLessThan(seen.count, notes, "the slow viewer cannot have received the whole flood")
        XCTAssertEqual(seen, Array(seen.indices.map { startSeq + 1 + $0 }), "what it did get is a gap-free prefix")
    }

    func testSlowConsumer_asksForRepliesWithoutReadingThem_closedAtHardLimit() throws {
        // Not only fan-out: answers to its own frames (snapshots here) count
        // against the same limit, or a client could grow its queue forever.
        let server = try TestServer { c in
            c.softOutputLimit = 16 * 1024
            c.hardOutputLimit = 64 * 1024
            c.framesPerSecond = 10_000
        }
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let writer = try server.technician("tech-1")
        defer { writer.close() }
        let body = String(repeating: "x", count: 60_000)
        for i in 0..<5 {
            try writer.send(["type": "command", "id": .string("n\(i)"), "ticket": .string(ticket), "op": "note", "args": ["body": .string(body)]])
            try writer.next(type: "result")
        }
        let greedy = try server.technician("tech-2")
        defer { greedy.close() }
        // Each snapshot carries the five 60 kB notes: ~300 kB asked for per frame, none read.
        for i in 0..<60 {
            do {
                try greedy.send(["type": "subscribe", "id": .string("s\(i)"), "ticket": .string(ticket)])
            } catch {
                break  // the server closed it: what this test waits for
            }
        }
        XCTAssertTrue(try waitForMetric(server, "peekd_slow_consumers_closed_total", atLeast: 1),
                      "a client that never reads its replies was never cut off")
    }

    func testPingFlood_clientNeverReads_serverStopsReadingAtOutputBound() throws {
        // Every byte queued for a connection counts, pongs included: a client
        // that pings and never reads must not make the server hold ~100 MB
        // of pongs. Past the 4 MiB bound the server stops reading the socket
        // until the queue drains, so the flood stalls in the kernel buffers.
        let server = try TestServer()
        defer { server.stop() }
        _ = try server.seed()
        let flooder = try server.technician("tech-1")
        defer { flooder.close() }

        let batch = Self.mebibyteOfPings
        let rssBefore = Self.residentKiB()
        // Sent by hand, not with a timed-out write, so the test knows where
        // in the batch the stall came and can finish the frame later.
        var sentMiB = 0
        var offset = 0
        flood: while sentMiB < 100 {
            while offset < batch.count {
                var ready = pollfd(fd: flooder.socket.fd, events: Int16(POLLOUT), revents: 0)
                guard poll(&ready, 1, 3_000) > 0 else { break flood }  // 3 s without room: the server stopped reading
                let n = batch.withUnsafeBytes { Glibc.send(flooder.socket.fd, $0.baseAddress! + offset, batch.count - offset, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                if n > 0 { offset += n } else if errno != EAGAIN && errno != EINTR { XCTFail("send: errno \(errno)"); return }
            }
            offset = 0
            sentMiB += 1
        }
        let growthMiB = (Self.residentKiB() - rssBefore) / 1024
        print("ping flood: \(sentMiB) MiB sent, RSS +\(growthMiB) MiB")
        // The bound (4 MiB) plus one read burst (1 MiB) plus a generous
        // margin for allocator and test noise; unbounded, the pongs for
        // 100 MiB of pings alone are ~100 MiB.
        XCTAssertLessThan(growthMiB, 40, "server memory grew by \(growthMiB) MiB after \(sentMiB) MiB of pings it could not answer")
        XCTAssertLessThan(sentMiB, 100, "the server kept reading pings it could not answer")

        // Backpressure, not a hang: reading drains the queue, the server
        // reads again, and the connection still answers.
        _ = flooder.drain(for: 3)
        if offset > 0 { try flooder.sendRaw(Array(batch[offset...])) }
        try flooder.send(["type": "subscribe", "id": "after-flood", "ticket": "T-none"])
        let answer = try flooder.next(timeout: 30) { $0["id"]?.stringValue == "after-flood" }
        XCTAssertEqual(answer["type"]?.stringValue, "error", "\(answer)")
    }

    func testPingFloodOverTLS_clientNeverReads_serverStopsReadingAtOutputBound() throws {
        // The same over TLS, where what is queued is plaintext waiting to be
        // sealed and the records sealed from it (and any KeyUpdate answers).
        let server = try TestServer(tls: true)
        defer { server.stop() }
        _ = try server.seed()
        let trust = try TLSContext.makeClient(caFile: server.directory + "/certs/dev-ca.pem", useSystemTrust: false)
        let flooder = try TestWebSocketClient(port: XCTUnwrap(server.tlsPort), tls: trust)
        defer { flooder.close() }
        try flooder.send(["type": "hello", "token": .string(server.token(tenant: "acme", user: "tech-1"))])
        try flooder.next(type: "welcome")

        let rssBefore = Self.residentKiB()
        var sentMiB = 0
        while sentMiB < 100 {
            // A write that finds no room for 3 s: the server stopped reading.
            // (The stream is cut mid-record then; the test ends with it.)
            do { try flooder.socket.write(Self.mebibyteOfPings, timeout: 3) } catch { break }
            sentMiB += 1
        }
        let growthMiB = (Self.residentKiB() - rssBefore) / 1024
        print("TLS flood: \(sentMiB) MiB sent, RSS +\(growthMiB) MiB")
        XCTAssertLessThan(growthMiB, 40, "server memory grew by \(growthMiB) MiB after \(sentMiB) MiB of pings over TLS")
        XCTAssertLessThan(sentMiB, 100, "the server kept reading pings it could not answer")
    }

    /// About 1 MiB of masked pings with 125-byte payloads (the largest a ping may carry).
    static let mebibyteOfPings: [UInt8] = {
        let ping = FrameEncoder.frame(opcode: .ping, payload: [UInt8](repeating: 0x70, count: 125), fin: true, mask: [1, 2, 3, 4])
        return Array([[UInt8]](repeating: ping, count: (1 << 20) / ping.count).joined())
    }()

    /// This process's resident memory (the server runs in it), in KiB.
    static func residentKiB() -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
        }
        return 0
    }

    private func waitForMetric(_ server: TestServer, _ name: String, atLeast value: Int) throws -> Bool {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            let text = try server.request("GET", "/metrics", service: false).text
            for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
                if let n = Int(line.split(separator: " ").last ?? ""), n >= value { return true }
            }
            usleep(200_000)
        }
        return false
    }
}
