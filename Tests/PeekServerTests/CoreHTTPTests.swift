import Foundation
import XCTest
import PeekCore
import PeekTestSupport
import PeekServer

/// The plain HTTP face of a real server on an ephemeral port: health,
/// static files, the parser's limits as JSON errors, keep-alive, and the
/// API router's 404/405.
final class CoreHTTPTests: XCTestCase {
    private var server: TestServer!

    override func setUpWithError() throws {
        server = try TestServer()
    }

    override func tearDown() {
        server?.stop()
        server = nil
    }

    // MARK: Health

    func testHealthz_get_answers200WithJSONStatus() throws {
        let r = try server.request("GET", "/healthz", service: false)
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.headers["content-type"], "application/json")
        XCTAssertEqual(r.json?["status"]?.stringValue, "ok")
        XCTAssertEqual(r.headers["content-length"], String(r.body.count))
    }

    // MARK: Static files

    func testStatic_root_servesIndexHTMLWithETag() throws {
        let r = try server.request("GET", "/", service: false)
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.headers["content-type"], "text/html; charset=utf-8")
        XCTAssertEqual(r.headers["x-content-type-options"], "nosniff")
        let onDisk = try Data(contentsOf: URL(fileURLWithPath: TestServer.repositoryRoot + "/client/index.html"))
        XCTAssertTrue(r.body == Array(onDisk), "body is not client/index.html (\(r.body.count) bytes)")
        let etag = try XCTUnwrap(r.headers["etag"])
        XCTAssertTrue(etag.hasPrefix("\"") && etag.hasSuffix("\""), "strong ETag expected, got \(etag)")
    }

    func testStatic_eachKind_hasItsContentType() throws {
        let expected = [
            ("/index.html", "text/html; charset=utf-8"),
            ("/app.js", "text/javascript; charset=utf-8"),
            ("/peek.css", "text/css; charset=utf-8"),
        ]
        for (path, type) in expected {
            let r = try server.request("GET", path, service: false)
            XCTAssertEqual(r.status, 200, path)
            XCTAssertEqual(r.headers["content-type"], type, path)
            let onDisk = try Data(contentsOf: URL(fileURLWithPath: TestServer.repositoryRoot + "/client" + path))
            XCTAssertEqual(r.body.count, onDisk.count, path)
        }
    }

    /// The page and every static file (and a 304 of one) carry a CSP that
    /// allows only what the page uses, forbids framing, and says nosniff.
    func testStatic_pageAndFiles_carryCSPFrameAncestorsNoneAndNosniff() throws {
        let host = "127.0.0.1:\(server.port)"
        let expected = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            + "connect-src 'self' ws://\(host) wss://\(host); base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        for path in ["/", "/index.html", "/app.js", "/peek-client.js", "/peek.css"] {
            let r = try server.request("GET", path, service: false)
            XCTAssertEqual(r.status, 200, path)
            XCTAssertEqual(r.headers["content-security-policy"], expected, path)
            XCTAssertEqual(r.headers["x-content-type-options"], "nosniff", path)
            let cached = try server.request("GET", path, service: false, headers: [("If-None-Match", r.headers["etag"] ?? "")])
            XCTAssertEqual(cached.status, 304, path)
            XCTAssertEqual(cached.headers["content-security-policy"], expected, "\(path) (304)")
        }
        // A Host that could smuggle a directive keeps only 'self'.
        let socket = try TestSocket.connect(port: server.port)
        defer { socket.close() }
        try socket.write(Array("GET / HTTP/1.1\r\nHost: evil;script-src *\r\nConnection: close\r\n\r\n".utf8))
        var raw: [UInt8] = []
        while case let chunk = try socket.read(timeout: 10), !chunk.isEmpty { raw += chunk }
        let odd = try TestServer.parseResponse(raw)
        XCTAssertEqual(odd.headers["content-security-policy"]?.contains("connect-src 'self'; base-uri"), true, odd.headers["content-security-policy"] ?? "none")
    }

    /// client/test/ (test pages, the mock server) is never served.
    func testStatic_clientTestDirectory_answers404() throws {
        XCTAssertTrue(FileManager.default.fileExists(atPath: TestServer.repositoryRoot + "/client/test/mock_peekd.py"))
        for path in ["/test/mock_peekd.py", "/test/model.test.html", "/test/model.test.js", "/test/browser_test.py", "/test/"] {
            XCTAssertEqual(try server.request("GET", path, service: false).status, 404, path)
        }
    }

    func testStatic_ifNoneMatchWithCurrentETag_answers304WithoutBody() throws {
        let first = try server.request("GET", "/app.js", service: false)
        let etag = try XCTUnwrap(first.headers["etag"])
        let again = try server.request("GET", "/app.js", service: false, headers: [("If-None-Match", etag)])
        XCTAssertEqual(again.status, 304)
        XCTAssertEqual(again.headers["etag"], etag)
        XCTAssertTrue(again.body.isEmpty)
        XCTAssertNil(again.headers["content-length"])

        let stale = try server.request("GET", "/app.js", service: false, headers: [("If-None-Match", "\"not-the-etag\"")])
        XCTAssertEqual(stale.status, 200)
        XCTAssertTrue(stale.body == first.body)
    }

    func testStatic_head_hasLengthButNoBody() throws {
        let get = try server.request("GET", "/peek.css", service: false)
        let head = try server.request("HEAD", "/peek.css", service: false)
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.headers["content-length"], String(get.body.count))
        XCTAssertTrue(head.body.isEmpty)
    }

    func testStatic_traversalAttempts_answer404AndNeverTheFile() throws {
        // Package.swift sits one level above client/; .git/config two paths away.
        let attempts = [
            "/../Package.swift",
            "/%2e%2e/Package.swift",
            "/%2E%2E/Package.swift",
            "/..%2fPackage.swift",
            "/%2e%2e%2fPackage.swift",
            "/test/../../Package.swift",
            "/.git/config",
            "/%2egit/config",
            "/../.git/config",
            "//etc/passwd",
            "/..\\Package.swift",
        ]
        for path in attempts {
            let r = try coreRawExchange(port: server.port, "GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            XCTAssertEqual(r.status, 404, path)
            XCTAssertFalse(r.text.contains("PackageDescription"), "\(path) leaked Package.swift")
            XCTAssertFalse(r.text.contains("[core]"), "\(path) leaked .git/config")
            XCTAssertEqual(r.json?["error"]?["code"]?.stringValue, "not_found", path)
        }
    }

    func testStatic_missingFile_answers404JSON() throws {
        let r = try server.request("GET", "/no-such-file.js", service: false)
        XCTAssertEqual(r.status, 404)
        XCTAssertEqual(r.json?["error"]?["code"]?.stringValue, "not_found")
    }

    // MARK: Parser limits, as the contract's error body

    func testHeaders_tooMany_answers431WithErrorBody() throws {
        var request = "GET /healthz HTTP/1.1\r\nHost: x\r\n"
        for i in 0..<150 { request += "X-Filler-\(i): \(i)\r\n" }
        request += "\r\n"
        let r = try coreRawExchange(port: server.port, request)
        XCTAssertEqual(r.status, 431)
        assertErrorBody(r, code: "headers_too_large")
        XCTAssertEqual(r.headers["connection"], "close")
    }

    func testHeaders_oneHuge_answers431WithErrorBody() throws {
        let request = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 20_000))\r\n\r\n"
        let r = try coreRawExchange(port: server.port, request)
        XCTAssertEqual(r.status, 431)
        assertErrorBody(r, code: "headers_too_large")
    }

    func testRequestLine_longURL_answers414WithErrorBody() throws {
        let request = "GET /\(String(repeating: "p", count: 10_000)) HTTP/1.1\r\nHost: x\r\n\r\n"
        let r = try coreRawExchange(port: server.port, request)
        XCTAssertEqual(r.status, 414)
        assertErrorBody(r, code: "uri_too_long")
    }

    func testRequest_garbage_answers400WithErrorBody() throws {
        for garbage in ["HELLO THERE\r\n\r\n", "\u{1}\u{2}\u{3} / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nNo colon here\r\n\r\n"] {
            let r = try coreRawExchange(port: server.port, garbage)
            XCTAssertEqual(r.status, 400, garbage.debugDescription)
            assertErrorBody(r, code: nil)
        }
    }

    func testBody_declaredOverLimit_answers413BeforeTheBodyIsSent() throws {
        // Only the head: a 2 MiB Content-Length must be refused on sight.
        let request = "POST /v1/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(server.config.serviceToken)\r\n"
            + "Content-Type: application/json\r\nContent-Length: \(2 << 20)\r\n\r\n"
        let r = try coreRawExchange(port: server.port, request)
        XCTAssertEqual(r.status, 413)
        assertErrorBody(r, code: "body_too_large")
    }

    // MARK: No body before authentication (issue 14)

    /// Sends only the head of a large body and expects the refusal at once:
    /// the server must answer from the head, never wait for (or read) the
    /// body, and close the connection since the body would follow.
    private func assertRefusedFromHead(_ head: String, status: Int, code: String, file: StaticString = #filePath, line: UInt = #line) throws -> TestServer.Response {
        let socket = try TestSocket.connect(port: server.port)
        defer { socket.close() }
        try socket.write(Array(head.utf8))
        let r = try coreReadResponse(socket, timeout: 5)
        XCTAssertEqual(r.status, status, r.text, file: file, line: line)
        assertErrorBody(r, code: code, file: file, line: line)
        XCTAssertEqual(r.headers["connection"], "close", "the body would follow: the connection must close", file: file, line: line)
        // The server closes after the answer: EOF, though no body byte was sent.
        XCTAssertEqual(try socket.read(timeout: 5), [], file: file, line: line)
        return r
    }

    func testUpload_25MiBWithoutToken_401FromTheHeadBeforeAnyBodyByte() throws {
        let ticket = try server.seed()[0]
        let mib25 = 25 << 20
        for auth in ["", "Authorization: Bearer not-the-service-token\r\n", "Authorization: Bearer \(server.token(tenant: "acme", user: "tech-1", expiresIn: -60))\r\n"] {
            _ = try assertRefusedFromHead("POST /v1/tickets/\(ticket)/attachments?filename=big.bin HTTP/1.1\r\nHost: x\r\n\(auth)"
                + "Content-Type: application/octet-stream\r\nContent-Length: \(mib25)\r\n\r\n", status: 401, code: "unauthorized")
        }
        let mail = try assertRefusedFromHead("POST /v1/inbound-email HTTP/1.1\r\nHost: x\r\nContent-Type: message/rfc822\r\n"
            + "Content-Length: \(mib25)\r\n\r\n", status: 401, code: "unauthorized")
        XCTAssertTrue(mail.text.contains("service token"), mail.text)
        // A technician token is not the service token for the mail gateway's route.
        _ = try assertRefusedFromHead("POST /v1/tenants/acme/inbound-email HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(server.token(tenant: "acme", user: "tech-1"))\r\n"
            + "Content-Type: message/rfc822\r\nContent-Length: \(mib25)\r\n\r\n", status: 401, code: "unauthorized")
        // An unknown route is answered from the head too.
        _ = try assertRefusedFromHead("POST /v1/nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: \(mib25)\r\n\r\n", status: 404, code: "not_found")
    }

    func testKeepAlive_refusedFromTheHeadWithoutBody_nextPipelinedRequestAnswered() throws {
        let socket = try TestSocket.connect(port: server.port)
        defer { socket.close() }
        // No body follows the refused request, so the connection stays and
        // the request pipelined behind it is answered.
        try socket.write(Array("GET /v1/me/tickets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        let refused = try coreReadResponse(socket, timeout: 5)
        XCTAssertEqual(refused.status, 401, refused.text)
        XCTAssertNil(refused.headers["connection"], "no body follows: the connection may stay")
        XCTAssertEqual(try coreReadResponse(socket, timeout: 5).status, 200)
    }

    func testUpload_expectContinueWithBadToken_401InsteadOf100Continue() throws {
        let ticket = try server.seed()[0]
        let socket = try TestSocket.connect(port: server.port)
        defer { socket.close() }
        try socket.write(Array(("POST /v1/tickets/\(ticket)/attachments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n"
            + "Content-Type: text/plain\r\nContent-Length: \(10 << 20)\r\nExpect: 100-continue\r\n\r\n").utf8))
        let r = try coreReadResponse(socket, timeout: 5)
        XCTAssertEqual(r.status, 401, "the first answer must be the refusal, not 100 Continue: \(r.status) \(r.text)")
        assertErrorBody(r, code: "unauthorized")
    }

    /// A Content-Length over the route's limit is refused from the head:
    /// 413 with its JSON body as the first answer, never `100 Continue`
    /// (which asks the client to send the body the 413 then refuses), and
    /// no large-body slot is taken for it.
    func testExpectContinue_contentLengthOverTheRouteLimit_413Instead() throws {
        server.stop()
        server = try TestServer { $0.maxLargeBodies = 1 }
        let ticket = try server.seed()[0]
        let auth = "Authorization: Bearer \(server.config.serviceToken)\r\n"
        let heads = [
            // Upload route: 10 MiB limit.
            "POST /v1/tickets/\(ticket)/attachments?filename=big.bin HTTP/1.1\r\nHost: x\r\n\(auth)Content-Type: application/octet-stream\r\n"
                + "Content-Length: \((10 << 20) + 1)\r\nExpect: 100-continue\r\n\r\n",
            // Inbound mail: 25 MiB.
            "POST /v1/inbound-email HTTP/1.1\r\nHost: x\r\n\(auth)Content-Type: message/rfc822\r\nContent-Length: \((25 << 20) + 1)\r\nExpect: 100-continue\r\n\r\n",
            // A JSON call: 1 MiB.
            "POST /v1/tenants HTTP/1.1\r\nHost: x\r\n\(auth)Content-Type: application/json\r\nContent-Length: \(2 << 20)\r\nExpect: 100-continue\r\n\r\n",
            // Not an API route: the default limit.
            "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: \(2 << 20)\r\nExpect: 100-continue\r\n\r\n",
        ]
        for head in heads {
            let r = try assertRefusedFromHead(head, status: 413, code: "body_too_large")
            XCTAssertTrue(r.text.contains("exceeds"), r.text)
        }
        // The refused upload held no slot: a large upload within the limit
        // still gets its 100 Continue and is stored.
        let size = 2 << 20
        let socket = try TestSocket.connect(port: server.port)
        defer { socket.close() }
        try socket.write(Array(("POST /v1/tickets/\(ticket)/attachments?filename=ok.bin HTTP/1.1\r\nHost: x\r\n\(auth)"
            + "Content-Type: application/octet-stream\r\nContent-Length: \(size)\r\nExpect: 100-continue\r\n\r\n").utf8))
        let interim = try socket.readUntil({ String(decoding: $0, as: UTF8.self).contains("\r\n\r\n") })
        XCTAssertEqual(String(decoding: interim, as: UTF8.self), "HTTP/1.1 100 Continue\r\n\r\n")
        try socket.write([UInt8](repeating: 7, count: size))
        let stored = try coreReadResponse(socket)
        XCTAssertEqual(stored.status, 201, stored.text)
    }

    func testUpload_pastTheLargeBodyBound_429FromTheHead_thenAcceptedOnceOneFinished() throws {
        server.stop()
        server = try TestServer { $0.maxLargeBodies = 1 }
        let ticket = try server.seed()[0]
        let size = 2 << 20
        let head = "POST /v1/tickets/\(ticket)/attachments?filename=big.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(server.config.serviceToken)\r\n"
            + "Content-Type: application/octet-stream\r\nContent-Length: \(size)\r\n"
        // The first large body is being read (half of it sent): it holds the
        // one slot. 100 Continue comes once its head passed, slot taken.
        let first = try TestSocket.connect(port: server.port)
        defer { first.close() }
        try first.write(Array((head + "Expect: 100-continue\r\n\r\n").utf8))
        let interim = try first.readUntil({ String(decoding: $0, as: UTF8.self).contains("\r\n\r\n") })
        XCTAssertEqual(String(decoding: interim, as: UTF8.self), "HTTP/1.1 100 Continue\r\n\r\n")
        try first.write([UInt8](repeating: 1, count: size / 2))
        let busy = try assertRefusedFromHead(head + "\r\n", status: 429, code: "rate_limited")
        XCTAssertEqual(busy.headers["retry-after"], "1")
        XCTAssertTrue(busy.text.contains("large"), busy.text)
        // A small upload needs no slot.
        let small = try server.request("POST", "/v1/tickets/\(ticket)/attachments?filename=s.txt", body: Array("small".utf8), contentType: "text/plain")
        XCTAssertEqual(small.status, 201, small.text)

        try first.write([UInt8](repeating: 1, count: size / 2))
        XCTAssertEqual(try coreReadResponse(first).status, 201)
        let again = try server.request("POST", "/v1/tickets/\(ticket)/attachments?filename=big.bin", body: [UInt8](repeating: 2, count: size),
                                       contentType: "application/octet-stream")
        XCTAssertEqual(again.status, 201, again.text)
    }

    func testBody_chunkedWithExpectContinue_answered201() throws {
        let socket = try TestSocket.connect(port: server.port)
        defer { socket.close() }
        try socket.write(Array(("POST /v1/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(server.config.serviceToken)\r\n"
            + "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n").utf8))
        let interim = try socket.readUntil({ String(decoding: $0, as: UTF8.self).contains("\r\n\r\n") })
        XCTAssertEqual(String(decoding: interim, as: UTF8.self), "HTTP/1.1 100 Continue\r\n\r\n")
        // {"id":"chunky","name":"Chunky"} in two chunks of 0x0f and 0x10 bytes.
        try socket.write(Array("f\r\n{\"id\":\"chunky\",\r\n10\r\n\"name\":\"Chunky\"}\r\n0\r\n\r\n".utf8))
        let r = try coreReadResponse(socket)
        XCTAssertEqual(r.status, 201, r.text)
        XCTAssertEqual(r.json?["id"]?.stringValue, "chunky")
    }

    func testHTTP10_withoutHost_answeredAndClosed() throws {
        let r = try coreRawExchange(port: server.port, "GET /healthz HTTP/1.0\r\n\r\n")
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.json?["status"]?.stringValue, "ok")
    }

    func testHTTP11_withoutHost_answers400() throws {
        let r = try coreRawExchange(port: server.port, "GET /healthz HTTP/1.1\r\n\r\n")
        XCTAssertEqual(r.status, 400)
        assertErrorBody(r, code: nil)
    }

    // MARK: Keep-alive

    func testKeepAlive_twoRequestsOnOneConnection_bothAnswered() throws {
        let socket = try TestSocket.connect(port: server.port)
        defer { socket.close() }
        try socket.write(Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        let first = try coreReadResponse(socket)
        XCTAssertEqual(first.status, 200)
        XCTAssertNil(first.headers["connection"])
        try socket.write(Array("GET /peek.css HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        let second = try coreReadResponse(socket)
        XCTAssertEqual(second.status, 200)
        XCTAssertEqual(second.headers["content-type"], "text/css; charset=utf-8")
        // Two pipelined in one write, answered in order.
        try socket.write(Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        XCTAssertEqual(try coreReadResponse(socket).status, 200)
        let last = try coreReadResponse(socket)
        XCTAssertEqual(last.status, 404)
        XCTAssertEqual(last.headers["connection"], "close")
        XCTAssertEqual(try socket.read(timeout: 5), [], "server should close after Connection: close")
    }

    func testRequest_writtenOneByteAtATime_answered() throws {
        let socket = try TestSocket.connect(port: server.port)
        defer { socket.close() }
        for byte in Array("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8) {
            try socket.write([byte])
            usleep(1_000)  // each byte its own segment (TCP_NODELAY is on)
        }
        let r = try coreReadResponse(socket)
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.json?["status"]?.stringValue, "ok")
    }

    func testAPI_clientHalfClosesAfterRequest_stillAnswered() throws {
        // `printf ... | nc -N`: the request, then FIN, then wait for the answer.
        let body = #"{"id":"halfclose","name":"Half Close"}"#
        let socket = try TestSocket.connect(port: server.port)
        defer { socket.close() }
        try socket.write(Array(("POST /v1/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(server.config.serviceToken)\r\n"
            + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body).utf8))
        try socket.shutdownWrite()
        let r = try coreReadResponse(socket)
        XCTAssertEqual(r.status, 201, r.text)
        XCTAssertEqual(r.json?["id"]?.stringValue, "halfclose")
        XCTAssertEqual(try socket.read(timeout: 5), [], "the server should close after answering")
    }

    func testKeepAlive_pipelinedAPICallThenStaticFile_answeredInOrder() throws {
        // The API call waits on the engine; the file behind it must not overtake it.
        let body = #"{"id":"piped","name":"Piped"}"#
        let socket = try TestSocket.connect(port: server.port)
        defer { socket.close() }
        try socket.write(Array(("POST /v1/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(server.config.serviceToken)\r\n"
            + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
            + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").utf8))
        let first = try coreReadResponse(socket)
        XCTAssertEqual(first.status, 201, first.text)
        XCTAssertEqual(first.json?["id"]?.stringValue, "piped")
        let second = try coreReadResponse(socket)
        XCTAssertEqual(second.status, 200)
        XCTAssertEqual(second.json?["status"]?.stringValue, "ok")
    }

    func testKeepAlive_manyPipelinedRequestsUnread_answeringPausesUntilClientReads() throws {
        // 500 requests of ~50 bytes for a 40 kB file: 20 MB of answers for
        // 25 kB of asking. The server must stop answering while they pile up
        // unread, not queue them all (and run what is behind them).
        let request = "GET /peek.css HTTP/1.1\r\nHost: x\r\n\r\n"
        let late = #"{"id":"late","name":"Late"}"#
        let lastCall = "POST /v1/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(server.config.serviceToken)\r\n"
            + "Content-Type: application/json\r\nContent-Length: \(late.utf8.count)\r\n\r\n\(late)"
        let socket = try TestSocket.connect(port: server.port)
        defer { socket.close() }
        try socket.write(Array((String(repeating: request, count: 500) + lastCall).utf8), timeout: 10)

        // Probe without reading: the tenant behind the 500 must not exist yet.
        let probe = #"{"id":"tech-x","name":"X","email":"x@late.example"}"#
        usleep(1_000_000)  // time for a server without the pause to run ahead
        XCTAssertEqual(try server.request("POST", "/v1/tenants/late/technicians", body: Array(probe.utf8)).status, 404,
                       "the pipelined call ran while 20 MB of answers sat unread")

        let cssLength = try Data(contentsOf: URL(fileURLWithPath: TestServer.repositoryRoot + "/client/peek.css")).count
        for i in 0..<500 {
            let r = try coreReadResponse(socket)
            guard r.status == 200, r.body.count == cssLength else {
                return XCTFail("response \(i): \(r.status), \(r.body.count) bytes")
            }
        }
        let created = try coreReadResponse(socket)
        XCTAssertEqual(created.status, 201, created.text)
        XCTAssertEqual(try server.request("POST", "/v1/tenants/late/technicians", body: Array(probe.utf8)).status, 201)
    }

    // MARK: API routing

    func testAPI_unknownV1Path_answers404JSON() throws {
        let r = try server.request("GET", "/v1/no-such-thing")
        XCTAssertEqual(r.status, 404)
        assertErrorBody(r, code: "not_found")
    }

    func testAPI_wrongMethod_answers405WithAllow() throws {
        let r = try server.request("DELETE", "/v1/tenants")
        XCTAssertEqual(r.status, 405)
        XCTAssertEqual(r.headers["allow"], "POST")
        assertErrorBody(r, code: "method_not_allowed")

        let both = try server.request("PATCH", "/v1/tenants/acme/email-account")
        XCTAssertEqual(both.status, 405)
        let allowed = Set((both.headers["allow"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        XCTAssertEqual(allowed, ["GET", "HEAD", "PUT"])  // HEAD comes with GET

        let staticPost = try server.request("POST", "/index.html", body: [])
        XCTAssertEqual(staticPost.status, 405)
        XCTAssertEqual(staticPost.headers["allow"], "GET, HEAD")
    }

    func testAPI_withoutServiceToken_answers401JSON() throws {
        let r = try server.api("POST", "/v1/tenants", ["id": "x", "name": "X"])
        XCTAssertEqual(r.status, 201)
        let refused = try server.request("POST", "/v1/tenants", body: JSONWriter.encode(["id": "y", "name": "Y"]), service: false)
        XCTAssertEqual(refused.status, 401)
        assertErrorBody(refused, code: "unauthorized")
    }

    // MARK: Connection cap

    func testConnectionCap_pastMaxConnections_newConnectionClosedUntilOneLeaves() throws {
        server.stop()
        server = try TestServer { c in
            c.threads = 1
            c.maxConnections = 1
        }
        let first = try TestSocket.connect(port: server.port)
        try first.write(Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        XCTAssertEqual(try coreReadResponse(first).status, 200)
        // Accepted and closed at once: EOF (or a reset), never an answer.
        let second = try TestSocket.connect(port: server.port)
        defer { second.close() }
        try? second.write(Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        var answered = false
        do { answered = try !second.read(timeout: 5).isEmpty } catch TestSocketError.system(_, let code) where code == ECONNRESET {}
        XCTAssertFalse(answered, "a connection past the cap was served")
        first.close()
        // The slot frees once the server has seen the close.
        var status: Int?
        let deadline = Date().addingTimeInterval(10)
        while status == nil && Date() < deadline {
            status = try? coreRawExchange(port: server.port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout: 2).status
            if status == nil { usleep(100_000) }
        }
        XCTAssertEqual(status, 200)
    }

    // MARK: Helpers

    private func assertErrorBody(_ r: TestServer.Response, code: String?, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.headers["content-type"], "application/json", file: file, line: line)
        guard let error = r.json?["error"] else {
            return XCTFail("no {\"error\":...} body: \(r.text)", file: file, line: line)
        }
        if let code { XCTAssertEqual(error["code"]?.stringValue, code, file: file, line: line) }
        XCTAssertFalse(error["code"]?.stringValue?.isEmpty ?? true, "empty code", file: file, line: line)
        XCTAssertFalse(error["message"]?.stringValue?.isEmpty ?? true, "empty message", file: file, line: line)
    }
}

// MARK: Raw HTTP for the Core tests

/// Sends `request` as is on a fresh connection and reads until the server
/// closes (every refusal here closes the connection).
func coreRawExchange(port: UInt16, _ request: String, timeout: Double = 10) throws -> TestServer.Response {
    let socket = try TestSocket.connect(port: port)
    defer { socket.close() }
    try socket.write(Array(request.utf8))
    var raw: [UInt8] = []
    let deadline = Date().addingTimeInterval(timeout)
    while deadline.timeIntervalSinceNow > 0 {
        let chunk: [UInt8]
        do { chunk = try socket.read(timeout: deadline.timeIntervalSinceNow) } catch TestSocketError.system(_, let code) where code == ECONNRESET { break }
        if chunk.isEmpty { break }
        raw += chunk
    }
    return try TestServer.parseResponse(raw)
}

/// One response off a kept-alive connection, framed by its Content-Length
/// (none for 304); the bytes after it stay in the socket.
func coreReadResponse(_ socket: TestSocket, timeout: Double = 10) throws -> TestServer.Response {
    func headEnd(_ b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i + 4 }
        return nil
    }
    var raw = try socket.readUntil({ headEnd($0) != nil }, timeout: timeout)
    let end = headEnd(raw)!
    let head = try TestServer.parseResponse(Array(raw[..<end]))
    let length = head.status == 304 ? 0 : Int(head.headers["content-length"] ?? "0") ?? 0
    if raw.count - end < length {
        raw += try socket.readUntil({ $0.count >= length - (raw.count - end) }, timeout: timeout)
    }
    socket.unread(Array(raw[(end + length)...]))
    return try TestServer.parseResponse(Array(raw[..<(end + length)]))
}

final class CorePipelineBoundTests: XCTestCase {
    /// A client that floods pipelined requests without reading is dropped
    /// once 1 MiB waits behind an unanswered request.
    func testPipelinedFloodWhileAnswerPending_isDropped() throws {
        let server = try TestServer()
        defer { server.stop() }
        let socket = try TestSocket.connect(port: server.port)
        defer { socket.close() }
        // An API request the engine answers (a signed-in one: the loop
        // answers an unauthenticated one itself, at once), then 2 MiB of
        // pipelined requests.
        let one = Array("GET /v1/tickets/T-1001 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(server.config.serviceToken)\r\n\r\n".utf8)
        var flood: [UInt8] = []
        while flood.count < 2 << 20 { flood += one }
        var dropped = false
        do {
            try socket.write(flood, timeout: 10)
        } catch {
            dropped = true   // the server closed while we were still writing
        }
        if !dropped {
            // Whatever answers were sent, the server ends the connection.
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                // EOF or a reset (our unread flood makes the close an RST)
                // both mean dropped; a quiet socket does not.
                let bytes: [UInt8]
                do { bytes = try socket.read(timeout: 2) } catch TestSocketError.timedOut { continue } catch { dropped = true; break }
                if bytes.isEmpty { dropped = true; break }
            }
        }
        XCTAssertTrue(dropped, "the server kept a connection that pipelined 2 MiB without reading")
    }
}

final class CorePipelineDepthTests: XCTestCase {
    /// Requests answered at once (healthz, static files, 404s) used to
    /// answer the next pipelined one from inside the previous answer, one
    /// stack frame deeper per request: 5,000 in one write overflowed the
    /// loop thread's stack and killed the process. Every one is answered,
    /// in order, and the server lives on.
    func testThousandsOfPipelinedRequestsInOneWrite_allAnsweredServerAlive() throws {
        let server = try TestServer()
        defer { server.stop() }
        let count = 5_000
        let socket = try TestSocket.connect(port: server.port)
        defer { socket.close() }
        let one = Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        try socket.write(Array([[UInt8]](repeating: one, count: count).joined()), timeout: 10)
        var answered = 0
        while answered < count {
            let response = try coreReadResponse(socket, timeout: 20)
            XCTAssertEqual(response.status, 200)
            answered += 1
        }
        XCTAssertEqual(try TestServer.request(port: server.port, "GET", "/healthz", bearer: nil).status, 200)
    }
}

/// An empty bearer token is no credential, and an empty service token
/// given to a demo start (a blank line in an environment file) is not one:
/// the demo's generated token is used instead of refusing to start.
final class EmptyBearerTests: XCTestCase {
    func testEmptyBearer_isUnauthorized() throws {
        let server = try TestServer()
        defer { server.stop() }
        let r = try server.request("POST", "/v1/tenants", body: Array(#"{"id":"evil","name":"Evil"}"#.utf8), token: "")
        XCTAssertEqual(r.status, 401, r.text)
    }

    func testDemoSecrets_emptyServiceTokenGiven_generatedOneUsed() throws {
        let dir = NSTemporaryDirectory() + "peekd-secrets-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let secrets = try ServerSecrets.demo(in: dir, jwtSecret: nil, serviceToken: "")
        XCTAssertFalse(secrets.serviceToken.isEmpty)
        XCTAssertNil(ServerSecrets.problem(jwtSecret: secrets.jwtSecret, serviceToken: secrets.serviceToken))
    }
}
