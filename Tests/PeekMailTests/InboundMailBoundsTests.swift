import XCTest
@testable import PeekMail

/// Hostile inbound mail (issue 13): every parser stays linear in its input and every
/// bound holds. Sizes and counts are asserted rather than times where possible; the few
/// time bounds are tens of seconds against milliseconds of real work, because the
/// unfixed code took minutes to hours (quadratic) on the same input.
final class InboundMailBoundsTests: XCTestCase {
    private typealias F = InboundMailFixtures

    private func seconds(_ work: () -> Void) -> Double {
        let start = ContinuousClock.now
        work()
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    // MARK: HTML

    func testHTML_deeplyNestedBlockquotes_quotePrefixFlattenedAt32() {
        let html = String(repeating: "<blockquote>", count: 300) + String(repeating: "line<br>", count: 300)
        let text = HTMLText.plainText(fromHTML: html)
        let lines = text.split(separator: "\n")
        XCTAssertEqual(lines.count, 300)
        let deepest = lines.map { line in line.prefix(while: { $0 == ">" || $0 == " " }).filter { $0 == ">" }.count }.max()
        XCTAssertEqual(deepest, 32)
        XCTAssertEqual(lines.first, Substring(String(repeating: "> ", count: 32) + "line"))
    }

    func testHTML_severalMiBOfNestedBlockquotes_outputBoundedByLines() {
        let lineCount = 20_000
        let html = String(repeating: "<blockquote>", count: 1 << 20 / 12) + String(repeating: "x<br>", count: lineCount)
        let text = HTMLText.plainText(fromHTML: html)
        // Each line is at most 32 "> " prefixes and its one character.
        XCTAssertLessThanOrEqual(text.utf8.count, lineCount * (32 * 2 + 2))
        XCTAssertEqual(text.split(separator: "\n").count, lineCount)
    }

    // MARK: format=flowed

    func testFlowed_severalMiBParagraph_joinedInLinearTime() {
        let lines = Array(repeating: Substring("word "), count: 800_000)    // a 4 MB paragraph
        var out: [String] = []
        let elapsed = seconds { out = FlowedText.unflow(lines, deleteSpace: false) }
        XCTAssertEqual(out.count, 1)
        XCTAssertEqual(out.first?.utf8.count, 4_000_000)
        XCTAssertLessThan(elapsed, 30, "quadratic joining copies the paragraph once per line")
    }

    // MARK: Encoded words

    func testEncodedWords_severalMiBRun_decodedInLinearTime() {
        let text = Array(repeating: "=?UTF-8?Q?ab?=", count: 800_000).joined(separator: " ")    // 12 MB
        var decoded = ""
        let elapsed = seconds { decoded = EncodedWord.decode(text) }
        XCTAssertEqual(decoded.utf8.count, 1_600_000)
        XCTAssertLessThan(elapsed, 30, "quadratic joining copies the run once per word")
    }
}
