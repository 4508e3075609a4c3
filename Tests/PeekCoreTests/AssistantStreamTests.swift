import XCTest
@testable import PeekCore

final class AssistantStreamTests: XCTestCase {
    private func append(_ d: inout AssistantStreamDecoder, _ text: String) throws -> [AssistantStreamDecoder.Piece] {
        var pieces: [AssistantStreamDecoder.Piece] = []
        try d.append(Array(text.utf8), into: &pieces)
        return pieces
    }

    func testLinesAcrossPieces_blankLinesSkipped_lastLineAtFinish() throws {
        var d = AssistantStreamDecoder()
        XCTAssertEqual(try append(&d, #"{"model":"m","text":"He"#), [])
        XCTAssertEqual(try append(&d, "llo\"}\r\n\n  \n{\"text\":\", you\"}\n{\"text\":\"\"}\n{\"text\":\"!\"}"),
                       [.model("m"), .text("Hello"), .text(", you")])
        var last: [AssistantStreamDecoder.Piece] = []
        try d.finish(into: &last)
        XCTAssertEqual(last, [.text("!")])
    }

    func testErrorsAndRefusals_keepThePiecesBeforeTheBadLine() throws {
        var d = AssistantStreamDecoder()
        XCTAssertEqual(try append(&d, "{\"error\":\"quota\"}\n"), [.error("quota")])
        for bad in ["[1]\n", "nope\n", "{\"text\":5}\n", "{\"model\":null}\n"] {
            var d = AssistantStreamDecoder()
            XCTAssertThrowsError(try append(&d, bad), bad)
        }
        var before = AssistantStreamDecoder()
        var pieces: [AssistantStreamDecoder.Piece] = []
        XCTAssertThrowsError(try before.append(Array("{\"text\":\"a\"}\nnope\n".utf8), into: &pieces))
        XCTAssertEqual(pieces, [.text("a")], "a failure keeps what came before it")
        var small = AssistantStreamDecoder(maxLineBytes: 8)
        XCTAssertThrowsError(try append(&small, "{\"text\":\"0123456789\"")) { XCTAssertEqual($0 as? AssistantStreamDecoder.Failure, .lineTooLong) }
    }
}
