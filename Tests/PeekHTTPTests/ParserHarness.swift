@testable import PeekHTTP
import XCTest

/// What a parser produced for some input, with consecutive body pieces
/// merged: piece sizes depend on how the input was split, their
/// concatenation must not.
enum ParsedEvent: Equatable {
    case head(HTTPRequestHead)
    case body([UInt8])
    case end
    case error(HTTPParseError)
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Feeds `pieces` one `append` at a time, draining events after each, and
/// stops at the first error.
func parse(_ pieces: [[UInt8]], limits: HTTPRequestParser.Limits = .init()) -> [ParsedEvent] {
    var parser = HTTPRequestParser(limits: limits)
    var events: [ParsedEvent] = []
    func record(_ event: ParsedEvent) {
        if case .body(let more) = event, case .body(let earlier)? = events.last {
            events[events.count - 1] = .body(earlier + more)
        } else {
            events.append(event)
        }
    }
    for piece in pieces {
        parser.append(piece)
        do {
            drain: while true {
                switch try parser.next() {
                case .needMoreData: break drain
                case .head(let head): record(.head(head))
                case .body(let body): record(.body(body))
                case .end: record(.end)
                }
            }
        } catch {
            record(.error(error))
            return events
        }
    }
    return events
}

func parseWhole(_ input: [UInt8], limits: HTTPRequestParser.Limits = .init()) -> [ParsedEvent] {
    parse([input], limits: limits)
}

func parseBytewise(_ input: [UInt8], limits: HTTPRequestParser.Limits = .init()) -> [ParsedEvent] {
    parse(input.map { [$0] }, limits: limits)
}

/// Asserts that one byte at a time, and every two-piece split, give exactly
/// what the whole input gives; returns the whole-input events.
@discardableResult
func assertSplitInvariant(_ input: [UInt8], limits: HTTPRequestParser.Limits = .init(),
                          file: StaticString = #filePath, line: UInt = #line) -> [ParsedEvent] {
    let whole = parseWhole(input, limits: limits)
    XCTAssertEqual(parseBytewise(input, limits: limits), whole, "byte-at-a-time differs", file: file, line: line)
    for cut in 1 ..< max(1, input.count) {
        let split = parse([Array(input[..<cut]), Array(input[cut...])], limits: limits)
        if split != whole {
            XCTFail("split at \(cut) differs: \(split) vs \(whole)", file: file, line: line)
            break
        }
    }
    return whole
}

/// The single error the input ends in, if any.
func firstError(_ events: [ParsedEvent]) -> HTTPParseError? {
    for case .error(let error) in events { return error }
    return nil
}

func heads(_ events: [ParsedEvent]) -> [HTTPRequestHead] {
    events.compactMap { if case .head(let head) = $0 { return head } else { return nil } }
}
