import XCTest
import PeekCore
import PeekTestSupport

/// Resuming with `since`: every missed durable delta exactly once and in
/// order, then `subscribed`; a snapshot once the log no longer holds them.
final class LiveResumeTests: XCTestCase {
    /// Posts `count` notes as `poster`, answers the last result's seq.
    private func postNotes(_ poster: TestWebSocketClient, _ ticket: String, count: Int, tag: String) throws -> Int {
        var seq = 0
        for i in 1...count {
            let r = try poster.run("\(tag)-\(i)", ticket, "note", ["body": .string("\(tag) \(i)")])
            XCTAssertEqual(r["type"]?.stringValue, "result", "\(r)")
            seq = r["seq"]?.intValue ?? -1
        }
        return seq
    }

    func testResume_afterMissedDeltas_getsEachOnceInOrderThenSubscribed() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed(technicians: 2)[0]
        let poster = try server.technician("tech-2")
        var a = try server.technician("tech-1")
        try a.subscribe(ticket)
        let seen = try postNotes(poster, ticket, count: 3, tag: "before")
        let live = try a.durableDeltas(ticket, through: seen)
        XCTAssertEqual(live.compactMap { $0["seq"]?.intValue }, [1, 2, 3])

        a.close()
        let last = try postNotes(poster, ticket, count: 4, tag: "missed")
        XCTAssertEqual(try poster.run("st", ticket, "set_status", ["status": "open"])["seq"]?.intValue, last + 2)

        a = try server.technician("tech-1")
        let (deltas, end) = try a.resume(ticket, since: seen)
        XCTAssertEqual(deltas.compactMap { $0["seq"]?.intValue }, Array((seen + 1)...(last + 2)))
        XCTAssertEqual(deltas.prefix(4).compactMap { $0["data"]?["body"]?.stringValue }, ["missed 1", "missed 2", "missed 3", "missed 4"])
        XCTAssertEqual(deltas.suffix(2).compactMap { $0["kind"]?.stringValue }, ["ticket.updated", "message.created"])
        XCTAssertEqual(end["type"]?.stringValue, "subscribed")
        XCTAssertEqual(end["id"]?.stringValue, "r1")
        XCTAssertEqual(end["ticket"]?.stringValue, ticket)
        XCTAssertEqual(end["seq"]?.intValue, last + 2)

        // Live again: the next change arrives once, with the next seq.
        XCTAssertEqual(try poster.run("after", ticket, "note", ["body": "after"])["seq"]?.intValue, last + 3)
        let next = try a.durableDeltas(ticket, through: last + 3)
        XCTAssertEqual(next.compactMap { $0["seq"]?.intValue }, [last + 3])
        XCTAssertFalse(a.drain(for: 0.3).contains { $0["seq"] != nil }, "no duplicate")
    }

    func testResume_sinceCurrentSeq_getsOnlySubscribed() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let a = try server.technician("tech-1")
        let seq = try postNotes(a, ticket, count: 2, tag: "n")
        let (deltas, end) = try a.resume(ticket, since: seq)
        XCTAssertEqual(deltas, [])
        XCTAssertEqual(end["type"]?.stringValue, "subscribed")
        XCTAssertEqual(end["seq"]?.intValue, seq)
    }

    func testResume_sinceAheadOfTheTicket_getsSnapshot() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let a = try server.technician("tech-1")
        let (deltas, end) = try a.resume(ticket, since: 50)
        XCTAssertEqual(deltas, [])
        XCTAssertEqual(end["type"]?.stringValue, "snapshot")
        XCTAssertEqual(end["seq"]?.intValue, 0)
    }

    func testResume_sinceOlderThanRetainedWindow_getsSnapshot() throws {
        // retain 5: a resume may be served from the log only while it needs
        // at most the last 5 deltas, however often the log is pruned.
        let server = try TestServer { $0.retainDeltas = 5 }
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let a = try server.technician("tech-1")
        let last = try postNotes(a, ticket, count: 12, tag: "n")
        XCTAssertEqual(last, 12)

        let inside = try a.resume(ticket, since: last - 5, id: "in")
        XCTAssertEqual(inside.deltas.compactMap { $0["seq"]?.intValue }, Array((last - 4)...last))
        XCTAssertEqual(inside.end["type"]?.stringValue, "subscribed")

        let b = try server.technician("tech-1")
        let outside = try b.resume(ticket, since: last - 6, id: "out")
        XCTAssertEqual(outside.deltas, [], "no partial replay before a snapshot")
        XCTAssertEqual(outside.end["type"]?.stringValue, "snapshot")
        XCTAssertEqual(outside.end["id"]?.stringValue, "out")
        XCTAssertEqual(outside.end["seq"]?.intValue, last)
        XCTAssertEqual(outside.end["state"]?["messages"]?.arrayValue?.count, 12)

        let c = try server.technician("tech-1")
        let fromZero = try c.resume(ticket, since: 0, id: "zero")
        XCTAssertEqual(fromZero.end["type"]?.stringValue, "snapshot")
    }

    func testResume_afterPruning_servesOnlyWhatTheLogStillHolds() throws {
        // Past the first prune (every 64 seqs) the log really lost rows:
        // a resume before them must be a snapshot, one inside served exactly.
        let server = try TestServer { $0.retainDeltas = 5 }
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let a = try server.technician("tech-1")
        let last = try postNotes(a, ticket, count: 66, tag: "n")
        XCTAssertEqual(last, 66)
        let old = try a.resume(ticket, since: 10, id: "old")
        XCTAssertEqual(old.end["type"]?.stringValue, "snapshot")
        XCTAssertEqual(old.deltas, [])
        let b = try server.technician("tech-1")
        let recent = try b.resume(ticket, since: 63, id: "recent")
        XCTAssertEqual(recent.deltas.compactMap { $0["seq"]?.intValue }, [64, 65, 66])
        XCTAssertEqual(recent.end["type"]?.stringValue, "subscribed")
    }
}
