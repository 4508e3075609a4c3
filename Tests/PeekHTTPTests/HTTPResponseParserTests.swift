import XCTest
@testable import PeekHTTP
import PeekCore

/// The client side's response parser: framing by length, chunks and close,
/// the refusals that keep a hostile endpoint bounded, and the same events
/// whatever way the bytes are cut.
final class HTTPResponseParserTests: XCTestCase {
    private struct Parsed: Equatable {
        var head: HTTPResponseHead?
        var body: [UInt8] = []
        var ended = false
        var error: HTTPResponseParser.Error?
    }

    private func parse(_ pieces: [String], close: Bool = false, limits: HTTPResponseParser.Limits = .init()) -> Parsed {
        var parser = HTTPResponseParser(limits: limits)
        var out = Parsed()
        do {
            for (i, piece) in pieces.enumerated() {
                parser.append(Array(piece.utf8))
                if close && i == pieces.count - 1 { parser.finish() }
                while let e = try parser.next() {
                    switch e {
                    case .head(let h): out.head = h
                    case .body(let b): XCTAssertFalse(b.isEmpty); out.body += b
                    case .end: out.ended = true
                    }
                }
            }
        } catch {
            out.error = error
        }
        return out
    }

    /// Every way of cutting `text` in two gives what the whole gives.
    private func parseEverySplit(_ text: String, close: Bool = false) -> Parsed {
        let whole = parse([text], close: close)
        let bytes = Array(text.utf8)
        for cut in 1..<bytes.count {
            let a = String(decoding: bytes[..<cut], as: UTF8.self), b = String(decoding: bytes[cut...], as: UTF8.self)
            guard Array(a.utf8) + Array(b.utf8) == bytes else { continue }   // a cut inside a UTF-8 sequence
            XCTAssertEqual(parse([a, b], close: close), whole, "cut at \(cut)")
        }
        return whole
    }

    /// A close-delimited body over the bound gives the same bytes, then the
    /// same error, however it is cut (found by the http_response fuzz
    /// target: whole, nothing came out; cut, the first piece did).
    func testUntilClose_overTheBound_sameBytesThenErrorAtEveryCut() {
        let limits = HTTPResponseParser.Limits(maxBodyBytes: 8)
        let text = "HTTP/1.1 200 OK\r\n\r\n0123456789abcdef"
        let whole = parse([text], limits: limits)
        XCTAssertEqual(String(decoding: whole.body, as: UTF8.self), "01234567")
        XCTAssertEqual(whole.error, .bodyTooLarge)
        let bytes = Array(text.utf8)
        for cut in 1..<bytes.count {
            let a = String(decoding: bytes[..<cut], as: UTF8.self), b = String(decoding: bytes[cut...], as: UTF8.self)
            XCTAssertEqual(parse([a, b], limits: limits), whole, "cut at \(cut)")
        }
    }

    func testContentLength() {
        let p = parseEverySplit("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"text\":1}\n")
        XCTAssertEqual(p.head?.status, 200)
        XCTAssertEqual(p.head?.reason, "OK")
        XCTAssertEqual(p.head?.headers.first("content-type"), "application/json")
        XCTAssertEqual(String(decoding: p.body, as: UTF8.self), "{\"text\":1}\n")
        XCTAssertTrue(p.ended)
        XCTAssertNil(p.error)
    }

    func testChunked_withExtensionsAndTrailers_andBareLF() {
        let p = parseEverySplit("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nX-Done: 1\r\n\r\n")
        XCTAssertEqual(String(decoding: p.body, as: UTF8.self), "hello world")
        XCTAssertTrue(p.ended)
        let lf = parse(["HTTP/1.1 201 Created\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n"])
        XCTAssertEqual(lf.head?.status, 201)
        XCTAssertEqual(String(decoding: lf.body, as: UTF8.self), "abc")
        XCTAssertTrue(lf.ended)
    }

    func testUntilClose_andNoBodyStatuses_andInterimHeads() {
        let p = parseEverySplit("HTTP/1.0 200 OK\r\n\r\nstreamed until the end", close: true)
        XCTAssertEqual(String(decoding: p.body, as: UTF8.self), "streamed until the end")
        XCTAssertTrue(p.ended)
        let open = parse(["HTTP/1.1 200 OK\r\n\r\nmore to come"])
        XCTAssertFalse(open.ended, "a close-delimited body ends only with the close")
        let noContent = parse(["HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"])
        XCTAssertTrue(noContent.ended)
        XCTAssertEqual(noContent.body, [])
        let interim = parseEverySplit("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        XCTAssertEqual(interim.head?.status, 200)
        XCTAssertEqual(interim.body, Array("ok".utf8))
        XCTAssertEqual(parse(["HTTP/1.1 204 No Content\r\n\r\n"]).head?.reason, "No Content")
        XCTAssertEqual(parse(["HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"]).head?.reason, "", "the reason may be absent")
    }

    func testTruncated() {
        XCTAssertEqual(parse(["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"], close: true).error, .truncated)
        XCTAssertEqual(parse(["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"], close: true).error, .truncated)
        XCTAssertEqual(parse(["HTTP/1.1 200 OK\r\nContent-"], close: true).error, .truncated)
        XCTAssertEqual(parse([""], close: true).error, .truncated)
    }

    func testRefusals() {
        let cases: [(String, HTTPResponseParser.Error)] = [
            ("SSH-2.0-OpenSSH\r\n\r\n", .malformedStatusLine),
            ("HTTP/2 200 OK\r\n\r\n", .malformedStatusLine),
            ("HTTP/1.1 20 OK\r\n\r\n", .malformedStatusLine),
            ("HTTP/1.1 600 Odd\r\n\r\n", .malformedStatusLine),
            ("HTTP/1.1 200OK\r\n\r\n", .malformedStatusLine),
            ("HTTP/1.1 101 Switching Protocols\r\n\r\n", .malformedStatusLine),
            ("\r\n", .malformedStatusLine),
            ("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", .malformedHeader),
            ("HTTP/1.1 200 OK\r\n folded: x\r\n\r\n", .malformedHeader),
            ("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", .malformedHeader),
            ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", .badContentLength),
            ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", .badContentLength),
            ("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", .badContentLength),
            ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", .badContentLength),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", .unsupportedTransferCoding),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", .badChunk),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", .badChunk),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n", .badChunk),
        ]
        for (text, expected) in cases {
            XCTAssertEqual(parse([text]).error, expected, text.debugDescription)
        }
    }

    func testLimits() {
        let small = HTTPResponseParser.Limits(maxHeadBytes: 64, maxHeaderCount: 2, maxBodyBytes: 8)
        XCTAssertEqual(parse(["HTTP/1.1 200 OK\r\nX: " + String(repeating: "a", count: 100)], limits: small).error, .headTooLarge,
                       "refused before the line ends")
        XCTAssertEqual(parse(["HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"], limits: small).error, .tooManyHeaders)
        XCTAssertEqual(parse(["HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"], limits: small).error, .bodyTooLarge, "refused from the head")
        XCTAssertEqual(parse(["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n12345\r\n5\r\n"], limits: small).error, .bodyTooLarge)
        XCTAssertEqual(parse(["HTTP/1.1 200 OK\r\n\r\n123456789"], limits: small).error, .bodyTooLarge)
        // After an error, the parser stays failed.
        var parser = HTTPResponseParser()
        parser.append(Array("nope\r\n\r\n".utf8))
        XCTAssertThrowsError(try parser.next())
        parser.append(Array("HTTP/1.1 200 OK\r\n\r\n".utf8))
        XCTAssertThrowsError(try parser.next())
    }

    func testEndpointURL() throws {
        let u = try HTTPEndpointURL("https://Nexie.Example:8443/v1/assist?x=1")
        XCTAssertEqual(u.host, "nexie.example")
        XCTAssertEqual(u.port, 8443)
        XCTAssertEqual(u.target, "/v1/assist?x=1")
        XCTAssertTrue(u.secure)
        XCTAssertEqual(u.hostHeader, "nexie.example:8443")
        XCTAssertEqual(try HTTPEndpointURL("http://[::1]:9000").description, "http://[::1]:9000/")
        XCTAssertEqual(try HTTPEndpointURL("http://10.0.0.5").port, 80)
        for bad in ["", "ftp://a/", "http://", "http://a b/", "http://u@a/", "http://a:/", "http://a:x/", "http://a/#f", "http://[::1/",
                    "http://" + String(repeating: "a", count: 2050), "http://é.example/"] {
            XCTAssertThrowsError(try HTTPEndpointURL(bad), bad)
        }
    }
}
