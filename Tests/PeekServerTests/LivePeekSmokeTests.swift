import XCTest
import PeekCore
import PeekTestSupport

/// The walking path of the product: two technicians on one ticket see each
/// other's note, in the same order, over real sockets.
final class LivePeekSmokeTests: XCTestCase {
    func testTwoTechnicians_noteFromOne_reachesBothInOrder() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ticket = try server.seed(technicians: 2, tickets: 1)[0]
        let a = try server.technician("tech-1")
        let b = try server.technician("tech-2")
        try a.send(["type": "subscribe", "id": "s1", "ticket": .string(ticket)])
        let snapA = try a.next(type: "snapshot")
        XCTAssertEqual(snapA["ticket"]?.stringValue, ticket)
        XCTAssertEqual(snapA["state"]?["ticket"]?["id"]?.stringValue, ticket)
        try b.send(["type": "subscribe", "id": "s2", "ticket": .string(ticket)])
        let snapB = try b.next(type: "snapshot")
        XCTAssertEqual(snapB["state"]?["viewers"]?.arrayValue?.count, 2)

        try a.send(["type": "command", "id": "c1", "ticket": .string(ticket), "op": "note", "args": ["body": "Checked the fan."]])
        let result = try a.next(type: "result")
        XCTAssertEqual(result["ok"]?.boolValue, true)
        let seq = try XCTUnwrap(result["seq"]?.intValue)
        for client in [a, b] {
            let delta = try client.next { $0["type"]?.stringValue == "delta" && $0["kind"]?.stringValue == "message.created" }
            XCTAssertEqual(delta["seq"]?.intValue, seq)
            XCTAssertEqual(delta["data"]?["body"]?.stringValue, "Checked the fan.")
            XCTAssertEqual(delta["data"]?["channel"]?.stringValue, "internal_note")
            XCTAssertEqual(delta["data"]?["via"]?.stringValue, "web")
        }
    }
}
