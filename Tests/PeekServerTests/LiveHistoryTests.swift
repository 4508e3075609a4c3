import XCTest
import PeekCore
import PeekTestSupport

/// `history`: older messages than the snapshot's, a page at a time, on real
/// sockets, without disturbing the live stream of the same ticket.
final class LiveHistoryTests: XCTestCase {
    func testHistory_pagesOlderMessagesOldestFirst_liveNoteStillOnceInOrder_otherTenantNotFound() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let foreign = try server.seed(tenant: "globex")[0]
        let writer = try server.technician("tech-2")
        let reader = try server.technician("tech-1")
        defer { writer.close(); reader.close() }

        // 120 notes, pipelined, then every answer.
        for i in 1...120 { try writer.command("n\(i)", ticket, "note", ["body": .string("note \(i)")]) }
        for i in 1...120 { XCTAssertEqual(try writer.answer("n\(i)")["type"]?.stringValue, "result", "note \(i)") }

        let snapshot = try reader.subscribe(ticket, id: "s1")
        let recent = try XCTUnwrap(snapshot["state"]?["messages"]?.arrayValue)
        XCTAssertEqual(recent.compactMap { $0["seq"]?.intValue }, Array(71...120), "the snapshot holds the 50 most recent")
        let oldest = try XCTUnwrap(recent.first?["seq"]?.intValue)

        let page1 = try reader.history(ticket, before: oldest, id: "h1")
        XCTAssertEqual(page1["type"]?.stringValue, "history", "\(page1)")
        XCTAssertEqual(page1["ticket"]?.stringValue, ticket)
        XCTAssertEqual(page1["messages"]?.arrayValue?.compactMap { $0["seq"]?.intValue }, Array(21...70), "the previous 50, oldest first")
        XCTAssertEqual(page1["messages"]?.arrayValue?.first?["body"]?.stringValue, "note 21")
        XCTAssertEqual(page1["messages"]?.arrayValue?.first?["author"]?["id"]?.stringValue, "tech-2", "the shape of message.created data")
        XCTAssertEqual(page1["more"]?.boolValue, true)

        // A live note between the pages: delivered as usual, after the history read.
        XCTAssertEqual(try writer.run("live", ticket, "note", ["body": "live one"])["type"]?.stringValue, "result")

        let page2 = try reader.history(ticket, before: 21, id: "h2")
        XCTAssertEqual(page2["messages"]?.arrayValue?.compactMap { $0["seq"]?.intValue }, Array(1...20), "the rest")
        XCTAssertEqual(page2["more"]?.boolValue, false)

        // The live stream is untouched: seq 121 once, then 122 right after it.
        XCTAssertEqual(try writer.run("live2", ticket, "note", ["body": "live two"])["type"]?.stringValue, "result")
        let live = try reader.durableDeltas(ticket, through: 122)
        XCTAssertEqual(live.compactMap { $0["seq"]?.intValue }, [121, 122], "each live note once, in order, none of the history")
        XCTAssertEqual(live.first?["data"]?["body"]?.stringValue, "live one")

        // `limit` is honoured; another tenant's ticket is not there at all.
        let small = try reader.history(ticket, before: 10, limit: 3, id: "h3")
        XCTAssertEqual(small["messages"]?.arrayValue?.compactMap { $0["seq"]?.intValue }, [7, 8, 9])
        XCTAssertEqual(small["more"]?.boolValue, true)
        let hidden = try reader.history(foreign, before: 10, id: "h4")
        XCTAssertEqual(hidden["type"]?.stringValue, "error")
        XCTAssertEqual(hidden["code"]?.stringValue, "not_found")
        XCTAssertEqual(hidden["id"]?.stringValue, "h4")
    }

    func testHistory_badFields_invalidWithTheFrameID() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed()[0]
        let reader = try server.technician("tech-1")
        defer { reader.close() }
        for (id, before, limit) in [("b1", JSONValue.string("7"), JSONValue.null), ("b2", .int(0), .null),
                                    ("b3", .int(5), .int(101)), ("b4", .int(5), .int(0))] {
            try reader.send(["type": "history", "id": .string(id), "ticket": .string(ticket), "before": before, "limit": limit])
            let e = try reader.next { $0["id"]?.stringValue == id }
            XCTAssertEqual(e["type"]?.stringValue, "error", id)
            XCTAssertEqual(e["code"]?.stringValue, "invalid", id)
        }
        // Still signed in and answering.
        XCTAssertEqual(try reader.history(ticket, before: 5, id: "ok")["type"]?.stringValue, "history")
    }
}

extension TestWebSocketClient {
    /// Sends `history` and answers its `history` or `error`.
    func history(_ ticket: String, before: Int, limit: Int? = nil, id: String) throws -> JSONValue {
        var frame: [String: JSONValue] = ["type": "history", "id": .string(id), "ticket": .string(ticket), "before": .int(before)]
        if let limit { frame["limit"] = .int(limit) }
        try send(.object(frame))
        return try next(timeout: 10) { $0["id"]?.stringValue == id && ($0["type"]?.stringValue == "history" || $0["type"]?.stringValue == "error") }
    }
}
