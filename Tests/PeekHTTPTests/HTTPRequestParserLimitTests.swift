@testable import PeekHTTP
import XCTest

/// Every bound and every refusal, with the status a client sees.
final class HTTPRequestParserLimitTests: XCTestCase {
    private func error(_ text: String, limits: HTTPRequestParser.Limits = .init()) -> HTTPParseError? {
        firstError(parseWhole(bytes(text), limits: limits))
    }

    // MARK: Request line: 414 / 400

    func testParser_targetLongerThanLimit_rejects414() {
        let target = "/" + String(repeating: "a", count: 9000)
        let e = error("GET \(target) HTTP/1.1\r\nHost: h\r\n\r\n")
        XCTAssertEqual(e, .uriTooLong(limit: 8192))
        XCTAssertEqual(e?.status, 414)
    }

    func testParser_longTargetStillArriving_rejects414BeforeLineEnds() {
        // No CRLF yet: the bound must hold while the line is still arriving.
        let partial = bytes("GET /" + String(repeating: "a", count: 8200))
        XCTAssertEqual(firstError(parseWhole(partial)), .uriTooLong(limit: 8192))
    }

    func testParser_requestLineExactlyAtLimit_isAccepted() {
        // "GET " (4) + target + " HTTP/1.1" (9) = 8192 bytes exactly.
        let target = "/" + String(repeating: "b", count: 8192 - 4 - 9 - 1)
        let events = parseWhole(bytes("GET \(target) HTTP/1.1\r\nHost: h\r\n\r\n"))
        XCTAssertEqual(heads(events).first?.target.utf8.count, 8192 - 13)
        XCTAssertNil(firstError(events))
        XCTAssertEqual(error("GET \(target)b HTTP/1.1\r\nHost: h\r\n\r\n"), .uriTooLong(limit: 8192))
    }

    func testParser_longMethod_rejects400NotURI() {
        let e = error(String(repeating: "M", count: 9000) + " / HTTP/1.1\r\n\r\n")
        XCTAssertEqual(e, .requestLineTooLong(limit: 8192))
        XCTAssertEqual(e?.status, 400)
    }

    func testParser_longVersionPart_rejects400NotURI() {
        XCTAssertEqual(error("GET / HTTP/1.1" + String(repeating: "x", count: 9000) + "\r\n\r\n"),
                       .requestLineTooLong(limit: 8192))
    }

    // MARK: Header section: 431

    func testParser_headerBytesOverLimit_rejects431() {
        let big = String(repeating: "v", count: 17 * 1024)
        let e = error("GET / HTTP/1.1\r\nHost: h\r\nX-Big: \(big)\r\n\r\n")
        XCTAssertEqual(e, .headersTooLarge(limit: 16384))
        XCTAssertEqual(e?.status, 431)
        XCTAssertEqual(e?.reason, "Request headers exceed 16384 bytes; send fewer or smaller headers.")
    }

    func testParser_headerBytesExactlyAtLimit_isAccepted() {
        // Section = "Host: h\r\n" (9) + "X-Pad: " (7) + pad + "\r\n" (2) + final "\r\n" (2) = 16384.
        let pad = String(repeating: "p", count: 16384 - 9 - 7 - 2 - 2)
        XCTAssertNil(error("GET / HTTP/1.1\r\nHost: h\r\nX-Pad: \(pad)\r\n\r\n"))
        XCTAssertEqual(error("GET / HTTP/1.1\r\nHost: h\r\nX-Pad: \(pad)p\r\n\r\n"), .headersTooLarge(limit: 16384))
    }

    func testParser_headersNeverEnding_rejects431WithoutBlankLine() {
        var parser = HTTPRequestParser()
        parser.append(bytes("GET / HTTP/1.1\r\nX-Slow: "))
        XCTAssertEqual(try parser.next(), .needMoreData)
        var thrown: HTTPParseError?
        var appended = 8
        // One header line that never ends, 10 bytes per read.
        for _ in 0 ..< 2000 where thrown == nil {
            parser.append(bytes("aaaaaaaaaa"))
            appended += 10
            do { _ = try parser.next() } catch { thrown = error }
        }
        XCTAssertEqual(thrown, .headersTooLarge(limit: 16384))
        // Refused at the first read past the bound, not later.
        XCTAssertEqual(appended, 16384 + 4)
    }

    func testParser_moreThanMaxHeaderCount_rejects431() {
        let lines = (0 ..< 101).map { "X-\($0): v\r\n" }.joined()
        let e = error("GET / HTTP/1.1\r\n\(lines)\r\n")
        XCTAssertEqual(e, .tooManyHeaders(limit: 100))
        XCTAssertEqual(e?.status, 431)
    }

    func testParser_exactlyMaxHeaderCount_isAccepted() {
        let lines = (0 ..< 99).map { "X-\($0): v\r\n" }.joined()
        let events = parseWhole(bytes("GET / HTTP/1.1\r\nHost: h\r\n\(lines)\r\n"))
        XCTAssertEqual(heads(events).first?.headers.count, 100)
    }

    // MARK: Body: 413

    func testParser_contentLengthOverLimit_rejects413FromHeadAlone() throws {
        var parser = HTTPRequestParser()
        // Only the head: the refusal must not wait for (or buffer) the body.
        parser.append(bytes("POST /v1/tenants HTTP/1.1\r\nHost: h\r\nContent-Length: 1048577\r\n\r\n"))
        guard case .head = try parser.next() else { return XCTFail("expected head") }
        XCTAssertThrowsError(try parser.next()) {
            XCTAssertEqual($0 as? HTTPParseError, .bodyTooLarge(limit: 1_048_576))
            XCTAssertEqual(($0 as? HTTPParseError)?.status, 413)
        }
    }

    func testParser_contentLengthPastIntMax_rejects413WithoutTrap() {
        // Regression: 30 digits used to be the shape that traps in Int(...) conversions.
        XCTAssertEqual(error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 999999999999999999999999999999\r\n\r\n"),
                       .bodyTooLarge(limit: 1_048_576))
    }

    func testParser_chunkSizePastIntMax_rejects413WithoutTrap() {
        // 0xFFFFFFFFFFFFFFFFFF (72 bits): saturates, then exceeds the limit.
        XCTAssertEqual(error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\n"),
                       .bodyTooLarge(limit: 1_048_576))
    }

    func testParser_chunksSummingPastLimit_rejects413() {
        var limits = HTTPRequestParser.Limits()
        limits.maxBodyBytes = 10
        XCTAssertEqual(error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n123456\r\n5\r\n12345\r\n0\r\n\r\n",
                             limits: limits), .bodyTooLarge(limit: 10))
    }

    // MARK: Malformed syntax: 400

    func testParser_malformedSyntax_rejects400() {
        let cases: [(String, HTTPParseError)] = [
            ("G@T / HTTP/1.1\r\nHost: h\r\n\r\n", .invalidMethod),
            ("GET\r\nHost: h\r\n\r\n", .invalidVersion),
            ("GET /\r\nHost: h\r\n\r\n", .invalidVersion),  // HTTP/0.9 form
            ("GET / http/1.1\r\nHost: h\r\n\r\n", .invalidVersion),
            ("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", .invalidVersion),
            ("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", .invalidRequestTarget),  // double space
            ("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", .invalidVersion),
            ("GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n", .invalidRequestTarget),
            ("GET /caf\u{e9} HTTP/1.1\r\nHost: h\r\n\r\n", .invalidRequestTarget),
            (" GET / HTTP/1.1\r\nHost: h\r\n\r\n", .invalidMethod),
            ("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n folded\r\n\r\n", .obsoleteLineFolding),
            ("GET / HTTP/1.1\r\nHost : h\r\n\r\n", .whitespaceBeforeColon),
            ("GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n", .invalidHeaderName),
            ("GET / HTTP/1.1\r\nHost: h\r\nBad(Name): x\r\n\r\n", .invalidHeaderName),
            ("GET / HTTP/1.1\r\nHost: h\r\n: empty\r\n\r\n", .invalidHeaderName),
            ("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", .missingColon),
            ("GET / HTTP/1.1\r\nHost: h\r\nX-Nul: a\u{0}b\r\n\r\n", .invalidHeaderValue),
            ("GET / HTTP/1.1\r\nHost: h\r\nX-Del: a\u{7f}b\r\n\r\n", .invalidHeaderValue),
            ("GET / HTTP/1.1\r\n\r\n", .missingHost),
            ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", .multipleHost),
        ]
        for (text, expected) in cases {
            let e = firstError(assertSplitInvariant(bytes(text)))
            XCTAssertEqual(e, expected, text.debugDescription)
            XCTAssertEqual(e?.status, 400, text.debugDescription)
        }
    }

    func testParser_missingHostWithRequireHostOff_isAccepted() {
        var limits = HTTPRequestParser.Limits()
        limits.requireHost = false
        XCTAssertNil(error("GET / HTTP/1.1\r\n\r\n", limits: limits))
    }

    func testParser_obsTextInHeaderValue_isAccepted() throws {
        let head = try XCTUnwrap(heads(parseWhole(bytes("GET / HTTP/1.1\r\nHost: h\r\nX-Name: Jos\u{e9}\r\n\r\n"))).first)
        XCTAssertEqual(head.header("x-name"), "Jos\u{e9}")
    }

    // MARK: Version: 505

    func testParser_majorVersionOtherThanOne_rejects505() {
        for version in ["HTTP/2.0", "HTTP/0.9", "HTTP/3.0"] {
            let e = error("GET / \(version)\r\nHost: h\r\n\r\n")
            XCTAssertEqual(e, .unsupportedVersion, version)
            XCTAssertEqual(e?.status, 505, version)
        }
    }

    // MARK: Body framing (RFC 9112 §6.3)

    func testParser_contentLengthAndTransferEncoding_rejects400() {
        XCTAssertEqual(error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
                       .contentLengthWithTransferEncoding)
    }

    func testParser_disagreeingContentLengths_rejects400() {
        XCTAssertEqual(error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"),
                       .conflictingContentLength)
        XCTAssertEqual(error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 4\r\n\r\nabcd"), .conflictingContentLength)
    }

    func testParser_agreeingContentLengths_areAccepted() {
        let events = parseWhole(bytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 003, 3\r\n\r\nabc"))
        XCTAssertEqual(heads(events).first?.contentLength, 3)
        XCTAssertTrue(events.contains(.body(bytes("abc"))))
    }

    func testParser_nonNumericContentLength_rejects400() {
        for value in ["+5", "-1", "5 5", "0x10", "", "5,", "1e3"] {
            XCTAssertEqual(error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \(value)\r\n\r\n"),
                           .invalidContentLength, value)
        }
    }

    func testParser_transferCodingOtherThanChunked_rejects501() {
        let e = error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
        XCTAssertEqual(e, .unsupportedTransferCoding)
        XCTAssertEqual(e?.status, 501)
    }

    func testParser_chunkedNotLastOrRepeated_rejects400() {
        XCTAssertEqual(error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), .chunkedNotFinal)
        XCTAssertEqual(error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n"), .chunkedNotFinal)
        XCTAssertEqual(error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
                       .chunkedNotFinal)
        XCTAssertEqual(error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \r\n\r\n"), .chunkedNotFinal)
    }

    func testParser_transferEncodingInHTTP10_rejects400() {
        XCTAssertEqual(error("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), .transferEncodingInHTTP10)
    }

    func testParser_transferEncodingCaseInsensitive_isChunked() {
        let events = parseWhole(bytes("POST / HTTP/1.1\r\nHost: h\r\ntransfer-encoding: Chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n"))
        XCTAssertEqual(heads(events).first?.isChunked, true)
        XCTAssertTrue(events.contains(.body(bytes("z"))))
    }

    // MARK: Error responses

    func testResponse_fromParseError_hasStatusJSONAndClose() {
        let response = HTTPResponse(parseError: .uriTooLong(limit: 8192))
        XCTAssertEqual(response.status, 414)
        XCTAssertTrue(response.closeConnection)
        let text = String(decoding: response.encoded(), as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 414 URI Too Long\r\n"), text)
        XCTAssertTrue(text.contains("\r\nConnection: close\r\n"), text)
        XCTAssertTrue(text.contains("\r\nContent-Type: application/json\r\n"), text)
        XCTAssertTrue(text.hasSuffix(#"{"error":{"code":"uri_too_long","message":"The request target exceeds 8192 bytes; shorten the URL or send the data in the request body."}}"#), text)
    }

    func testParseError_everyCase_hasSentenceReason() {
        let all: [HTTPParseError] = [
            .requestLineTooLong(limit: 1), .uriTooLong(limit: 1), .headersTooLarge(limit: 1), .tooManyHeaders(limit: 1),
            .bodyTooLarge(limit: 1), .invalidMethod, .invalidRequestTarget, .invalidVersion, .unsupportedVersion,
            .bareCarriageReturn, .obsoleteLineFolding, .whitespaceBeforeColon, .missingColon, .invalidHeaderName,
            .invalidHeaderValue, .missingHost, .multipleHost, .invalidContentLength, .conflictingContentLength,
            .contentLengthWithTransferEncoding, .transferEncodingInHTTP10, .chunkedNotFinal, .unsupportedTransferCoding,
            .invalidChunkSize, .chunkLineTooLong(limit: 1), .missingChunkTerminator, .trailersTooLarge(limit: 1),
            .invalidTrailer,
        ]
        for e in all {
            XCTAssertTrue(e.reason.hasSuffix("."), "\(e)")
            XCTAssertTrue(e.reason.contains(";"), "\(e) should say what to do")
            XCTAssertTrue([400, 413, 414, 431, 501, 505].contains(e.status), "\(e)")
        }
    }
}
