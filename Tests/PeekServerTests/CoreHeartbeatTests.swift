import Foundation
import XCTest
import PeekCore
import PeekTestSupport

/// Heartbeats with a 1 s interval: a live client is pinged and kept; a
/// client that goes silent is dropped within about two heartbeats, and its
/// presence goes with it.
final class CoreHeartbeatTests: XCTestCase {
    func testHeartbeat_idleClient_isPingedAndKept() throws {
        let server = try TestServer { $0.heartbeatSeconds = 1 }
        defer { server.stop() }
        try server.seed()
        let client = try server.technician()
        defer { client.close() }
        let deadline = Date().addingTimeInterval(10)
        while client.pingsReceived < 2 && Date() < deadline && client.closeCode == nil {
            _ = client.drain(for: 0.25)
        }
        XCTAssertGreaterThanOrEqual(client.pingsReceived, 2, "no pings within 10 s at a 1 s heartbeat")
        // Answering pings is enough to stay: well past two heartbeats, still open and served.
        XCTAssertNil(client.closeCode)
        try client.send(["type": "teleport", "id": "still-here"])
        XCTAssertEqual(try client.next(type: "error")["id"]?.stringValue, "still-here")
    }

    func testHeartbeat_clientThatNeverReads_isDroppedAndLeavesPresence() throws {
        let server = try TestServer { $0.heartbeatSeconds = 1 }
        defer { server.stop() }
        let ticket = try server.seed(technicians: 2)[0]
        let watcher = try server.technician("tech-1")
        defer { watcher.close() }
        try watcher.send(["type": "subscribe", "id": "s1", "ticket": .string(ticket)])
        try watcher.next(type: "snapshot")

        let silent = try server.technician("tech-2")
        defer { silent.close() }
        try silent.send(["type": "subscribe", "id": "s2", "ticket": .string(ticket)])
        let joined = try watcher.next(timeout: 5) { presenceViewerIDs($0) == ["tech-1", "tech-2"] }
        XCTAssertNotNil(joined)
        let lastHeardFrom = Date()
        _ = watcher.drain(for: 0)  // forget the older presence frames
        // From here `silent` neither reads nor answers pings.

        let left = try watcher.next(timeout: 15) { presenceViewerIDs($0) == ["tech-1"] }
        XCTAssertNotNil(left)
        let after = Date().timeIntervalSince(lastHeardFrom)
        XCTAssertGreaterThan(after, 1.0, "dropped before it missed a heartbeat")
        XCTAssertLessThan(after, 10, "a dead peer must go within about two heartbeats")

        // The server really closed the socket: what is buffered, then EOF (or a reset).
        var ended = false
        let deadline = Date().addingTimeInterval(5)
        while !ended && Date() < deadline {
            do { ended = try silent.socket.read(timeout: deadline.timeIntervalSinceNow).isEmpty } catch { ended = true }
        }
        XCTAssertTrue(ended, "the silent client's connection is still open")
        XCTAssertNil(watcher.closeCode)
    }
}

/// The viewer ids of a `presence.updated` delta (nil for any other frame).
private func presenceViewerIDs(_ frame: JSONValue) -> [String]? {
    guard frame["type"]?.stringValue == "delta", frame["kind"]?.stringValue == "presence.updated",
          let viewers = frame["data"]?["viewers"]?.arrayValue else { return nil }
    return viewers.compactMap { $0["id"]?.stringValue }.sorted()
}
