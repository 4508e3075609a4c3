#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import PeekCore
import PeekTestSupport

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
