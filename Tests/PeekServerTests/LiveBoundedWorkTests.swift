import Foundation
import Synchronization
import XCTest
import PeekCore
@testable import PeekEngine
@testable import PeekServer
import PeekTestSupport

/// Work a client can make cheap for itself and dear for the server: answers
/// that would carry a ticket's whole history carry the most recent part and
/// a count, and commands leave no pile of timers behind.
final class LiveBoundedWorkTests: XCTestCase {
    func testStaleNote_overLongUnseenHistory_carriesMostRecent50MissedAndTheTotal() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let a = try server.technician("tech-1")
        defer { a.close() }
        let seen = try XCTUnwrap(try a.subscribe(ticket)["seq"]?.intValue)

        let mails = 60
        for i in 0..<mails {
            let r = try server.inboundEmail(ticketNumber: ticketNumber(ticket), body: "mail \(i)")
            XCTAssertEqual(r.status, 201, r.text)
        }
        let stale = try a.run("n1", ticket, "note", ["body": "Fixed it."], seen: seen)
        XCTAssertEqual(stale["code"]?.stringValue, "stale", "\(stale)")
        let missed = try XCTUnwrap(stale["missed"]?.arrayValue)
        XCTAssertEqual(missed.count, 50, "missed is capped")
        XCTAssertEqual(stale["missed_total"]?.intValue, mails, "and says how many there are in all")
        XCTAssertEqual(missed.compactMap { $0["body"]?.stringValue }, (10..<mails).map { "mail \($0)" },
                       "the most recent ones, oldest first")
        XCTAssertTrue(stale["message"]?.stringValue?.hasPrefix("\(mails) new messages") ?? false, "\(stale)")
    }

    func testTimeEntries_manyLogged_updateAndSnapshotCarryMostRecent50AndTotals() throws {
        let server = try TestServer { $0.framesPerSecond = 10_000 }
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let a = try server.technician("tech-1")
        defer { a.close() }
        try a.subscribe(ticket)
        let logged = 60
        var lastSeq = 0
        for i in 0..<logged {
            XCTAssertEqual(try a.run("start\(i)", ticket, "timer_start")["type"]?.stringValue, "result")
            let stop = try a.run("stop\(i)", ticket, "timer_stop", ["note": .string("entry \(i)")])
            lastSeq = try XCTUnwrap(stop["seq"]?.intValue)
        }
        let last = try a.durableDeltas(ticket, through: lastSeq).last
        XCTAssertEqual(last?["kind"]?.stringValue, "time.updated")
        for time in [last?["data"], try a.subscribe(ticket)["state"]?["time"]] {
            let entries = try XCTUnwrap(time?["entries"]?.arrayValue)
            XCTAssertEqual(entries.count, 50, "entries are capped")
            XCTAssertEqual(time?["entry_count"]?.intValue, logged, "and say how many there are in all")
            XCTAssertEqual(entries.compactMap { $0["note"]?.stringValue }, (10..<logged).map { "entry \($0)" },
                           "the most recent ones, oldest first")
            XCTAssertNotNil(time?["total"]?.intValue, "total is over every entry")
        }
    }

    func testCommandsOnTicketWithOpenSLAClock_leaveOneTimerPerTicket() throws {
        let server = try TestServer { $0.framesPerSecond = 10_000 }
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let policy = try server.api("PUT", "/v1/tenants/acme/sla-policy", ["normal": ["response": 3600, "resolution": 86400]])
        XCTAssertEqual(policy.status, 200, policy.text)
        let a = try server.technician("tech-1")
        defer { a.close() }
        let before = try timerCount(server)
        for i in 0..<300 {
            try a.command("n\(i)", ticket, "note", ["body": .string("note \(i)")])
        }
        for i in 0..<300 { XCTAssertEqual(try a.answer("n\(i)")["type"]?.stringValue, "result") }
        let after = try timerCount(server)
        XCTAssertLessThanOrEqual(after, max(before, 1) + 1, "300 commands on one ticket left \(after) timers (before: \(before))")
    }

    /// The engine's timer heap size, read on the engine thread.
    private func timerCount(_ server: TestServer) throws -> Int {
        let engine = try XCTUnwrap(server.server.engine)
        let count = Mutex<Int?>(nil)
        engine.submit(.run { e in count.withLock { $0 = e.timers.count } })
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if let n = count.withLock({ $0 }) { return n }
            usleep(2_000)
        }
        throw TestWebSocketClient.Failure("the engine never answered")
    }
}
