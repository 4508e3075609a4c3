import Foundation
import XCTest
import PeekCore
@testable import PeekEngine
@testable import PeekServer
import PeekTestSupport

/// When offered work outruns the engine, the loops refuse new commands and
/// subscribes with `rate_limited` (each naming its id) instead of growing the
/// engine's inbox without limit; nothing refused changes anything, and what
/// was queued before the limit is done.
final class EngineBacklogTests: XCTestCase {
    func testEngineBehind_commandsPastTheBacklogRefusedWithTheirIds_queuedOnesDone() throws {
        let server = try TestServer { $0.maxEngineBacklog = 3 }
        defer { server.stop() }
        let ticket = try server.seed(technicians: 2)[0]
        let a = try server.technician("tech-1")
        let b = try server.technician("tech-2")
        try a.subscribe(ticket)
        let before = try server.durableState(ticket)

        let release = try server.holdEngine()

        // Three fit in the backlog; the fourth and a subscribe do not.
        for i in 1...4 { try a.command("n\(i)", ticket, "note", ["body": .string("note \(i)")]) }
        let refused = try a.answer("n4")
        XCTAssertEqual(refused["type"]?.stringValue, "error")
        XCTAssertEqual(refused["code"]?.stringValue, "rate_limited")
        XCTAssertTrue(refused["message"]?.stringValue?.contains("busy") ?? false, "\(refused)")
        try b.send(["type": "subscribe", "id": "sub-busy", "ticket": .string(ticket)])
        let busy = try b.next { $0["id"]?.stringValue == "sub-busy" }
        XCTAssertEqual(busy["code"]?.stringValue, "rate_limited", "\(busy)")

        release.signal()
        for i in 1...3 { XCTAssertEqual(try a.answer("n\(i)")["seq"]?.intValue, i) }
        let after = try server.durableState(ticket)
        XCTAssertEqual(after["seq"]?.intValue, (before["seq"]?.intValue ?? 0) + 3)
        XCTAssertFalse((after["messages"]?.arrayValue ?? []).contains { $0["body"]?.stringValue == "note 4" })

        // Caught up: the refused note goes through when sent again.
        XCTAssertEqual(try a.run("n4", ticket, "note", ["body": "note 4"])["seq"]?.intValue, 4)
        XCTAssertEqual(try b.subscribe(ticket)["type"]?.stringValue, "snapshot")
    }

    func testEngineBehind_apiCallsRefused429WithRetryAfter_nothingChanged() throws {
        let server = try TestServer { $0.maxEngineBacklog = 1 }
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let a = try server.technician("tech-1")
        let before = try server.durableState(ticket)

        let release = try server.holdEngine()
        try a.command("n1", ticket, "note", ["body": "fills the backlog"])
        try server.waitForQueuedJobs()
        let busy = try server.api("POST", "/v1/tickets/\(ticket)/summary", ["text": "refused", "model": "peek-summarizer-2"])
        XCTAssertEqual(busy.status, 429, busy.text)
        XCTAssertEqual(busy.headers["retry-after"], "1")
        XCTAssertEqual(busy.json?["error"]?["code"]?.stringValue, "rate_limited", busy.text)
        XCTAssertTrue(busy.json?["error"]?["message"]?.stringValue?.contains("busy") ?? false, busy.text)
        release.signal()

        XCTAssertEqual(try a.answer("n1")["seq"]?.intValue, 1)
        let after = try server.durableState(ticket)
        XCTAssertEqual(after["seq"]?.intValue, (before["seq"]?.intValue ?? 0) + 1)
        let state = try server.api("GET", "/v1/tickets/\(ticket)")
        XCTAssertEqual(state.status, 200, "served again once the engine caught up")
        XCTAssertEqual(state.json?["state"]?["summary"], .null, "the refused summary changed nothing")
    }

    func testEngineBehind_agentChatRefusedByNameAndNotStored() throws {
        let f = try AgentFixture(configure: { $0.maxEngineBacklog = 1 })
        defer { f.stop() }
        let agent = try f.agent()
        let seqBefore = try XCTUnwrap(f.ticketState(f.linkedTicket)["seq"]?.intValue)

        let release = try f.server.holdEngine()

        // One chat fills the backlog of 1; the next is refused, by name.
        try agent.send(["type": "chat", "ticket": .string(f.linkedTicket), "body": "first"])
        try agent.send(["type": "chat", "ticket": .string(f.linkedTicket), "body": "second"])
        let refused = try agent.next { $0["type"]?.stringValue == "error" }
        XCTAssertEqual(refused["code"]?.stringValue, "rate_limited")
        XCTAssertTrue(refused["message"]?.stringValue?.contains(f.linkedTicket) ?? false, "\(refused)")
        release.signal()

        // Only the first was stored.
        let deadline = Date().addingTimeInterval(10)
        var bodies: [String] = []
        while Date() < deadline {
            // Just after the release the chat may still count as waiting,
            // and with a backlog of 1 the read is then refused with 429.
            guard let state = try? f.ticketState(f.linkedTicket) else { usleep(50_000); continue }
            bodies = (state["state"]?["messages"]?.arrayValue ?? []).compactMap { $0["body"]?.stringValue }
            if state["seq"]?.intValue == seqBefore + 1 { break }
            usleep(50_000)
        }
        XCTAssertTrue(bodies.contains("first"))
        XCTAssertFalse(bodies.contains("second"))
        XCTAssertEqual(try f.ticketState(f.linkedTicket)["seq"]?.intValue, seqBefore + 1)
    }
}
