import Foundation
import XCTest
@testable import PeekCore

/// protocol.md must stay true: every ```json example parses with the
/// server's own parser, and every example of a frame a client sends is
/// accepted by the server's own decoder.
final class ProtocolDocumentTests: XCTestCase {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    func jsonBlocks() throws -> [String] {
        let text = try String(contentsOfFile: Self.root + "/protocol.md", encoding: .utf8)
        var blocks: [String] = []
        var current: [String]?
        for line in text.components(separatedBy: "\n") {
            if current == nil, line.trimmingCharacters(in: .whitespaces) == "```json" { current = []; continue }
            if current != nil, line.trimmingCharacters(in: .whitespaces) == "```" { blocks.append(current!.joined(separator: "\n")); current = nil; continue }
            current?.append(line)
        }
        return blocks
    }

    func testProtocolDocument_everyJSONExample_parses() throws {
        let blocks = try jsonBlocks()
        XCTAssertGreaterThan(blocks.count, 20, "protocol.md should carry its examples")
        for block in blocks {
            XCTAssertNoThrow(try JSONParser.parse(block), "protocol.md example does not parse:\n\(block)")
        }
    }

    func testProtocolDocument_clientFrameExamples_areAccepted() throws {
        let clientTypes: Set<String> = ["hello", "subscribe", "unsubscribe", "command", "composing", "subscribe_queue", "unsubscribe_queue"]
        var checked = 0
        for block in try jsonBlocks() {
            guard let v = try? JSONParser.parse(block), let type = v["type"]?.stringValue, clientTypes.contains(type) else { continue }
            // Examples that show refusals carry an "invalid" marker in their id.
            if v["id"]?.stringValue?.contains("invalid") == true { continue }
            switch ClientFrame.decode(Array(block.utf8)) {
            case .success: checked += 1
            case .failure(let r): XCTFail("protocol.md client example refused (\(r.error.message)):\n\(block)")
            }
        }
        XCTAssertGreaterThan(checked, 5)
    }
}
