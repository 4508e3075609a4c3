@testable import PeekHTTP
import XCTest

/// Chunked request bodies (RFC 9112 §7.1).
final class HTTPChunkedBodyTests: XCTestCase {
    private let head = "POST /v1/inbound-email HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"

    private func body(_ events: [ParsedEvent]) -> [UInt8]? {
        for case .body(let b) in events { return b }
        return nil
    }

    func testChunked_twoChunks_decodesBody() {
        // 0x5 "hello", 0x6 " world", last-chunk, end of trailer section.
        let events = assertSplitInvariant(bytes(head + "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"))
        XCTAssertEqual(body(events), bytes("hello world"))
        XCTAssertEqual(events.last, .end)
    }

    func testChunked_uppercaseHexAndLeadingZeros_areAccepted() {
        // 0x0A = 10 bytes.
        XCTAssertEqual(body(parseWhole(bytes(head + "00A\r\n0123456789\r\n0\r\n\r\n"))), bytes("0123456789"))
    }

    func testChunked_extensions_areIgnored() {
        let events = assertSplitInvariant(bytes(head + "3;name=value;flag\r\nabc\r\n2 ; q=\"x\"\r\nde\r\n0;last\r\n\r\n"))
        XCTAssertEqual(body(events), bytes("abcde"))
    }

    func testChunked_trailers_areSkipped() {
        let events = assertSplitInvariant(bytes(head + "2\r\nok\r\n0\r\nX-Digest: sha-256=abc\r\nX-Other: 1\r\n\r\n"))
        XCTAssertEqual(body(events), bytes("ok"))
        XCTAssertEqual(events.last, .end)
        // Trailers do not leak into the head.
        XCTAssertNil(heads(events).first?.header("X-Digest"))
    }

    func testChunked_sizeLineSplitAcrossAppends_isReassembled() throws {
        var parser = HTTPRequestParser()
        parser.append(bytes(head + "1"))
        guard case .head = try parser.next() else { return XCTFail("expected head") }
        XCTAssertEqual(try parser.next(), .needMoreData)
        parser.append(bytes("0"))        // size is now "10" = 16
        XCTAssertEqual(try parser.next(), .needMoreData)
        parser.append(bytes("\r"))
        XCTAssertEqual(try parser.next(), .needMoreData)
        parser.append(bytes("\n0123456789abcdef\r\n0\r\n\r\n"))
        XCTAssertEqual(try parser.next(), .body(bytes("0123456789abcdef")))
        XCTAssertEqual(try parser.next(), .end)
    }

    func testChunked_bareLFFraming_isAccepted() {
        XCTAssertEqual(body(assertSplitInvariant(bytes(head + "3\nabc\n0\n\n"))), bytes("abc"))
    }

    func testChunked_requestAfterChunkedBody_isParsed() {
        let events = assertSplitInvariant(bytes(head + "1\r\nx\r\n0\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n"))
        XCTAssertEqual(heads(events).map(\.path), ["/v1/inbound-email", "/next"])
    }

    func testChunked_nonHexSize_rejects400() {
        for line in ["zz", "", " 5", "5 x", "-1", "0x5"] {
            let e = firstError(parseWhole(bytes(head + line + "\r\n")))
            XCTAssertEqual(e, .invalidChunkSize, line.debugDescription)
            XCTAssertEqual(e?.status, 400)
        }
    }

    func testChunked_dataNotFollowedByCRLF_rejects400() {
        XCTAssertEqual(firstError(assertSplitInvariant(bytes(head + "3\r\nabcd\r\n0\r\n\r\n"))), .missingChunkTerminator)
        XCTAssertEqual(firstError(parseWhole(bytes(head + "3\r\nabc\rX"))), .missingChunkTerminator)
    }

    func testChunked_longExtensionLine_rejects400() {
        let e = firstError(parseWhole(bytes(head + "1;" + String(repeating: "e", count: 2000) + "\r\n")))
        XCTAssertEqual(e, .chunkLineTooLong(limit: 1024))
        XCTAssertEqual(e?.status, 400)
    }

    func testChunked_hugeTrailerSection_rejects431() {
        let trailer = "X-T: " + String(repeating: "t", count: 17_000) + "\r\n"
        let e = firstError(parseWhole(bytes(head + "0\r\n" + trailer + "\r\n")))
        XCTAssertEqual(e, .trailersTooLarge(limit: 16384))
        XCTAssertEqual(e?.status, 431)
    }

    func testChunked_tooManyTrailerLines_rejects431() {
        let trailers = (0 ..< 101).map { "T\($0): v\r\n" }.joined()
        XCTAssertEqual(firstError(parseWhole(bytes(head + "0\r\n" + trailers + "\r\n"))), .trailersTooLarge(limit: 100))
    }

    func testChunked_malformedTrailer_rejects400() {
        XCTAssertEqual(firstError(parseWhole(bytes(head + "0\r\nno colon here\r\n\r\n"))), .invalidTrailer)
        XCTAssertEqual(firstError(parseWhole(bytes(head + "0\r\n folded: x\r\n\r\n"))), .invalidTrailer)
    }
}
