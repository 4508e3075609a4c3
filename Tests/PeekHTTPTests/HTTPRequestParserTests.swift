@testable import PeekHTTP
import XCTest

final class HTTPRequestParserTests: XCTestCase {
    // MARK: Basic shape

    func testParser_simpleGET_yieldsHeadThenEnd() throws {
        var parser = HTTPRequestParser()
        parser.append(bytes("GET /v1/tickets/42/sends?limit=5&x=a+b HTTP/1.1\r\nHost: peek.local\r\nX-Trace: one\r\nx-trace: two\r\n\r\n"))
        guard case .head(let head) = try parser.next() else { return XCTFail("expected head") }
        XCTAssertEqual(head.method, "GET")
        XCTAssertEqual(head.target, "/v1/tickets/42/sends?limit=5&x=a+b")
        XCTAssertEqual(head.path, "/v1/tickets/42/sends")
        XCTAssertEqual(head.query, "limit=5&x=a+b")
        XCTAssertEqual(head.version, .http1_1)
        XCTAssertEqual(head.headers.fields.map(\.name), ["Host", "X-Trace", "x-trace"])
        XCTAssertEqual(head.header("HOST"), "peek.local")
        XCTAssertEqual(head.headers(named: "X-TRACE"), ["one", "two"])
        XCTAssertNil(head.header("Content-Length"))
        XCTAssertNil(head.contentLength)
        XCTAssertEqual(head.framing, .noBody)
        XCTAssertEqual(head.queryItems.map(\.name), ["limit", "x"])
        XCTAssertEqual(head.queryItems.map(\.value), ["5", "a b"])
        XCTAssertEqual(try parser.next(), .end)
        XCTAssertEqual(try parser.next(), .needMoreData)
    }

    func testParser_headerValueWhitespace_isTrimmed() throws {
        let events = parseWhole(bytes("GET / HTTP/1.1\r\nHost: h\r\nX-A: \t padded value \t\r\nX-Empty:\r\n\r\n"))
        let head = try XCTUnwrap(heads(events).first)
        XCTAssertEqual(head.header("X-A"), "padded value")
        XCTAssertEqual(head.header("X-Empty"), "")
    }

    func testParser_targetWithoutQuery_hasNilQuery() throws {
        let head = try XCTUnwrap(heads(parseWhole(bytes("GET /app.js HTTP/1.1\r\nHost: h\r\n\r\n"))).first)
        XCTAssertEqual(head.path, "/app.js")
        XCTAssertNil(head.query)
        let empty = try XCTUnwrap(heads(parseWhole(bytes("GET /app.js? HTTP/1.1\r\nHost: h\r\n\r\n"))).first)
        XCTAssertEqual(empty.query, "")
    }

    func testParser_contentLengthBody_yieldsBodyThenEnd() {
        // 13-byte JSON body.
        let events = assertSplitInvariant(bytes("POST /v1/tenants HTTP/1.1\r\nHost: h\r\nContent-Length: 13\r\n\r\n{\"id\":\"acme\"}"))
        XCTAssertEqual(events.count, 3)
        XCTAssertEqual(heads(events).first?.contentLength, 13)
        XCTAssertEqual(events.dropFirst().first, .body(bytes("{\"id\":\"acme\"}")))
        XCTAssertEqual(events.last, .end)
    }

    func testParser_contentLengthZero_yieldsNoBodyEvent() {
        let events = parseWhole(bytes("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"))
        XCTAssertEqual(events.count, 2)
        XCTAssertEqual(heads(events).first?.contentLength, 0)
        XCTAssertEqual(events.last, .end)
    }

    func testParser_absoluteFormTarget_extractsPathAndQuery() throws {
        let head = try XCTUnwrap(heads(parseWhole(bytes("GET http://peek.local:8080/v1/ws?x=1 HTTP/1.1\r\nHost: peek.local\r\n\r\n"))).first)
        XCTAssertEqual(head.target, "http://peek.local:8080/v1/ws?x=1")
        XCTAssertEqual(head.path, "/v1/ws")
        XCTAssertEqual(head.query, "x=1")
        let bare = try XCTUnwrap(heads(parseWhole(bytes("GET http://peek.local HTTP/1.1\r\nHost: peek.local\r\n\r\n"))).first)
        XCTAssertEqual(bare.path, "/")
    }

    func testParser_asteriskForm_onlyForOPTIONS() {
        XCTAssertEqual(heads(parseWhole(bytes("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"))).first?.path, "*")
        XCTAssertEqual(firstError(parseWhole(bytes("GET * HTTP/1.1\r\nHost: h\r\n\r\n"))), .invalidRequestTarget)
    }

    func testParser_relativeTarget_rejects400() {
        XCTAssertEqual(firstError(parseWhole(bytes("GET index.html HTTP/1.1\r\nHost: h\r\n\r\n"))), .invalidRequestTarget)
    }

    // MARK: Split invariance

    func testParser_splitAtEveryByte_equalsWholeParse() {
        let fixtures = [
            "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
            "GET /a?b=c HTTP/1.0\r\n\r\n",
            // Bare LF line ends, tolerated per RFC 9112 §2.2.
            "GET / HTTP/1.1\nHost: h\n\n",
            "POST /v1/tenants HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET /next HTTP/1.1\r\nHost: h\r\n\r\n",
            // Chunked: sizes 4 and 0x0b with an extension, then a trailer.
            "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\nb;name=val\r\npedia in ch\r\n0\r\nX-Checksum: 1\r\n\r\n",
            // Leading empty lines before the request line are ignored.
            "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
            // Errors must come out the same however the input is split.
            "GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n",
            "GET / HTTP/2.0\r\nHost: h\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX",
        ]
        for fixture in fixtures {
            let events = assertSplitInvariant(bytes(fixture))
            XCTAssertFalse(events.isEmpty, fixture)
        }
    }

    func testParser_splitAtEveryByte_boundsGiveSameErrors() {
        var limits = HTTPRequestParser.Limits()
        limits.maxRequestLineBytes = 32
        limits.maxHeaderBytes = 64
        limits.maxHeaderCount = 3
        limits.maxBodyBytes = 8
        limits.maxChunkLineBytes = 8
        let cases: [(String, HTTPParseError)] = [
            ("GET /" + String(repeating: "a", count: 40) + " HTTP/1.1\r\n\r\n", .uriTooLong(limit: 32)),
            (String(repeating: "G", count: 40) + " / HTTP/1.1\r\n\r\n", .requestLineTooLong(limit: 32)),
            ("GET /a HTTP/1.1" + String(repeating: "x", count: 30) + "\r\n\r\n", .requestLineTooLong(limit: 32)),
            // The target ends inside the limit but is still what made the line long.
            ("GET /" + String(repeating: "a", count: 20) + " HTTP/1.1\r\n\r\n", .uriTooLong(limit: 32)),
            ("GET / HTTP/1.1\r\nHost: h\r\nX-Long: \(String(repeating: "v", count: 60))\r\n\r\n", .headersTooLarge(limit: 64)),
            ("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", .tooManyHeaders(limit: 3)),
            ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\n123456789", .bodyTooLarge(limit: 8)),
            ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n12345\r\n4\r\n1234\r\n0\r\n\r\n", .bodyTooLarge(limit: 8)),
            ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1;aaaaaaaaaa\r\nx\r\n0\r\n\r\n", .chunkLineTooLong(limit: 8)),
        ]
        for (fixture, expected) in cases {
            let events = assertSplitInvariant(bytes(fixture), limits: limits)
            XCTAssertEqual(firstError(events), expected, fixture)
        }
    }

    // MARK: Pipelining

    func testParser_pipelinedRequests_yieldsEachInOrder() {
        let input = bytes(
            "GET /one HTTP/1.1\r\nHost: h\r\n\r\n"
            + "POST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
            + "POST /three HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n"
            + "GET /four HTTP/1.1\r\nHost: h\r\n\r\n")
        let events = assertSplitInvariant(input)
        XCTAssertEqual(heads(events).map(\.path), ["/one", "/two", "/three", "/four"])
        XCTAssertEqual(events.filter { $0 == .end }.count, 4)
        XCTAssertEqual(events.compactMap { if case .body(let b) = $0 { return b } else { return nil } },
                       [bytes("abc"), bytes("xy")])
    }

    func testParser_partialSecondRequest_waitsForRest() throws {
        var parser = HTTPRequestParser()
        parser.append(bytes("GET /one HTTP/1.1\r\nHost: h\r\n\r\nGET /tw"))
        guard case .head(let first) = try parser.next() else { return XCTFail("expected head") }
        XCTAssertEqual(first.path, "/one")
        XCTAssertEqual(try parser.next(), .end)
        XCTAssertEqual(try parser.next(), .needMoreData)
        XCTAssertTrue(parser.isMidRequest)
        parser.append(bytes("o HTTP/1.1\r\nHost: h\r\n\r\n"))
        guard case .head(let second) = try parser.next() else { return XCTFail("expected head") }
        XCTAssertEqual(second.path, "/two")
    }

    // MARK: Line endings

    func testParser_bareLF_isAcceptedAsLineEnd() throws {
        let head = try XCTUnwrap(heads(parseWhole(bytes("GET /lf HTTP/1.1\nHost: h\nX-A: 1\n\n"))).first)
        XCTAssertEqual(head.path, "/lf")
        XCTAssertEqual(head.header("X-A"), "1")
    }

    func testParser_bareCRInsideHeader_rejects400() {
        // "X-A: 1\rX-B: 2": a CR that some proxies would treat as a line end.
        let error = firstError(assertSplitInvariant(bytes("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\rX-B: 2\r\n\r\n")))
        XCTAssertEqual(error, .bareCarriageReturn)
        XCTAssertEqual(error?.status, 400)
    }

    func testParser_leadingEmptyLines_areSkipped() {
        let events = parseWhole(bytes("\r\n\n\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n"))
        XCTAssertEqual(heads(events).map(\.path), ["/x"])
    }

    // MARK: Version and persistence

    func testParser_http10WithoutHost_isAccepted() {
        XCTAssertEqual(heads(parseWhole(bytes("GET / HTTP/1.0\r\n\r\n"))).first?.version, .http1_0)
    }

    func testParser_http12_isReadAsHTTP11() {
        XCTAssertEqual(heads(parseWhole(bytes("GET / HTTP/1.2\r\nHost: h\r\n\r\n"))).first?.version, .http1_1)
    }

    func testRequestHead_http11Default_keepsAlive() {
        XCTAssertTrue(HTTPRequestHead(method: "GET", target: "/", version: .http1_1).keepAlive)
    }

    func testRequestHead_http11ConnectionClose_closes() {
        let head = HTTPRequestHead(method: "GET", target: "/", version: .http1_1, headers: ["Connection": "Close"])
        XCTAssertFalse(head.keepAlive)
    }

    func testRequestHead_http10Default_closes() {
        XCTAssertFalse(HTTPRequestHead(method: "GET", target: "/", version: .http1_0).keepAlive)
    }

    func testRequestHead_http10KeepAliveToken_keepsAlive() {
        let head = HTTPRequestHead(method: "GET", target: "/", version: .http1_0, headers: ["Connection": "foo, Keep-Alive"])
        XCTAssertTrue(head.keepAlive)
    }

    func testRequestHead_webSocketHandshake_isUpgrade() {
        let head = HTTPRequestHead(method: "GET", target: "/v1/ws", headers: [
            "Host": "h", "Connection": "keep-alive, Upgrade", "Upgrade": "websocket",
        ])
        XCTAssertTrue(head.isUpgrade)
        XCTAssertTrue(head.keepAlive)
    }

    func testRequestHead_upgradeHeaderWithoutConnectionToken_isNotUpgrade() {
        let head = HTTPRequestHead(method: "GET", target: "/v1/ws", headers: ["Upgrade": "websocket", "Connection": "keep-alive"])
        XCTAssertFalse(head.isUpgrade)
    }

    func testRequestHead_expect100Continue_isReported() {
        let head = HTTPRequestHead(method: "POST", target: "/", headers: ["Expect": "100-Continue"])
        XCTAssertTrue(head.expectsContinue)
        XCTAssertFalse(HTTPRequestHead(method: "POST", target: "/").expectsContinue)
    }

    // MARK: Upgrade hand-off and memory

    func testParser_takeUnconsumedBytes_afterUpgrade_returnsEarlyFrames() throws {
        var parser = HTTPRequestParser()
        // The handshake, then a masked WebSocket text frame the client sent without waiting.
        let frame: [UInt8] = [0x81, 0x82, 0x01, 0x02, 0x03, 0x04, 0x69, 0x6B]
        parser.append(bytes("GET /v1/ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n") + frame)
        guard case .head(let head) = try parser.next() else { return XCTFail("expected head") }
        XCTAssertTrue(head.isUpgrade)
        XCTAssertEqual(try parser.next(), .end)
        XCTAssertEqual(parser.takeUnconsumedBytes(), frame)
        XCTAssertEqual(parser.bufferedByteCount, 0)
    }

    func testParser_afterRequestCompletes_releasesBuffer() throws {
        var parser = HTTPRequestParser(limits: .init(maxBodyBytes: 1 << 20))
        let body = [UInt8](repeating: 0x61, count: 256 * 1024)
        parser.append(bytes("POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: \(body.count)\r\n\r\n") + body)
        var received = 0
        loop: while true {
            switch try parser.next() {
            case .body(let piece): received += piece.count
            case .end: break loop
            case .head, .needMoreData: continue
            }
        }
        XCTAssertEqual(received, body.count)
        XCTAssertEqual(parser.bufferedByteCount, 0)
        XCTAssertEqual(parser.bufferCapacity, 0, "an idle keep-alive connection must not keep the body's storage")
        XCTAssertFalse(parser.isMidRequest)
    }

    func testParser_largeBodyFollowedByPartialRequest_shrinksBuffer() throws {
        var parser = HTTPRequestParser()
        let body = [UInt8](repeating: 0x62, count: 100_000)
        parser.append(bytes("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: \(body.count)\r\n\r\n") + body + bytes("GET /b HT"))
        while try parser.next() != .end {}
        XCTAssertEqual(parser.bufferedByteCount, 9)
        XCTAssertLessThan(parser.bufferCapacity, 1024)
    }

    func testParser_afterError_keepsThrowingAndDropsInput() {
        var parser = HTTPRequestParser()
        parser.append(bytes("GET / HTTP/3.0\r\nHost: h\r\n\r\n"))
        XCTAssertThrowsError(try parser.next()) { XCTAssertEqual($0 as? HTTPParseError, .unsupportedVersion) }
        parser.append(bytes("GET / HTTP/1.1\r\nHost: h\r\n\r\n"))
        XCTAssertEqual(parser.bufferedByteCount, 0)
        XCTAssertThrowsError(try parser.next()) { XCTAssertEqual($0 as? HTTPParseError, .unsupportedVersion) }
    }

    // MARK: Whole requests

    func testParser_nextRequest_assemblesBodyAcrossAppends() throws {
        var parser = HTTPRequestParser()
        parser.append(bytes("POST /v1/tenants/acme/tickets HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a"))
        XCTAssertNil(try parser.nextRequest())
        parser.append(bytes("\r\n2\r\n\":\r\n2\r\n1}\r\n0\r\n\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n"))
        let first = try XCTUnwrap(parser.nextRequest())
        XCTAssertEqual(first.head.path, "/v1/tenants/acme/tickets")
        XCTAssertEqual(first.body, bytes("{\"a\":1}"))
        let second = try XCTUnwrap(parser.nextRequest())
        XCTAssertEqual(second.head.path, "/x")
        XCTAssertEqual(second.body, [])
        XCTAssertNil(try parser.nextRequest())
    }

    func testParser_nextRequestBodyLimitOverride_allowsLargerUploadOnly() throws {
        var parser = HTTPRequestParser(limits: .init(maxBodyBytes: 4))
        let upload = bytes("POST /v1/attachments HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789")
        parser.append(upload)
        let request = try XCTUnwrap(parser.nextRequest { $0.path == "/v1/attachments" ? 16 : nil })
        XCTAssertEqual(request.body.count, 10)
        // The override lasted one request: the same body elsewhere is refused.
        parser.append(bytes("POST /v1/other HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789"))
        XCTAssertThrowsError(try parser.nextRequest { $0.path == "/v1/attachments" ? 16 : nil }) {
            XCTAssertEqual($0 as? HTTPParseError, .bodyTooLarge(limit: 4))
        }
    }

    func testParser_overrideBodyLimitAfterHead_appliesToThatRequest() throws {
        var parser = HTTPRequestParser(limits: .init(maxBodyBytes: 2))
        parser.append(bytes("PUT /big HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"))
        guard case .head = try parser.next() else { return XCTFail("expected head") }
        parser.overrideBodyLimit(5)
        XCTAssertEqual(try parser.next(), .body(bytes("hello")))
        XCTAssertEqual(try parser.next(), .end)
    }
}
