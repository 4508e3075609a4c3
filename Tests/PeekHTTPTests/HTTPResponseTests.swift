@testable import PeekHTTP
import XCTest

final class HTTPResponseTests: XCTestCase {
    private func text(_ response: HTTPResponse, headRequest: Bool = false, date: String? = nil) -> String {
        String(decoding: response.encoded(headRequest: headRequest, date: date), as: UTF8.self)
    }

    func testResponse_200WithBody_encodesExactBytes() {
        let response = HTTPResponse(status: 200, headers: ["Content-Type": "text/plain"], body: bytes("hi"))
        XCTAssertEqual(text(response), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi")
    }

    func testResponse_emptyBody_stillSendsContentLengthZero() {
        XCTAssertEqual(text(HTTPResponse(status: 200)), "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    }

    func testResponse_headRequest_keepsLengthDropsBody() {
        let response = HTTPResponse(status: 200, body: bytes("12345"))
        XCTAssertEqual(text(response, headRequest: true), "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
    }

    func testResponse_bodilessStatuses_haveNoLengthNorBody() {
        for status in [101, 204, 304] {
            let encoded = text(HTTPResponse(status: status, body: bytes("ignored")))
            XCTAssertFalse(encoded.contains("Content-Length"), "\(status)")
            XCTAssertTrue(encoded.hasSuffix("\r\n\r\n"), "\(status)")
        }
    }

    func testResponse_switchingProtocols_keepsUpgradeHeaders() {
        let response = HTTPResponse(status: 101, headers: [
            "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Accept": "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
        ])
        XCTAssertEqual(text(response), "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
    }

    func testResponse_closeConnection_addsConnectionClose() {
        let response = HTTPResponse(status: 400, closeConnection: true)
        XCTAssertEqual(text(response), "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    }

    func testResponse_handlerSetFramingHeaders_areReplaced() {
        let response = HTTPResponse(status: 200, headers: ["Content-Length": "999", "Transfer-Encoding": "chunked"], body: bytes("ab"))
        XCTAssertEqual(text(response), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab")
    }

    func testResponse_headerValueWithCRLF_cannotInjectHeader() {
        let response = HTTPResponse(status: 200, headers: ["X-File": "a.txt\r\nSet-Cookie: evil=1"])
        XCTAssertEqual(text(response), "HTTP/1.1 200 OK\r\nX-File: a.txtSet-Cookie: evil=1\r\nContent-Length: 0\r\n\r\n")
    }

    func testResponse_date_isWrittenFirst() {
        let date = HTTPDate.format(unixSeconds: 784_111_777)
        XCTAssertEqual(text(HTTPResponse(status: 204), date: date),
                       "HTTP/1.1 204 No Content\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n")
    }

    func testResponse_encodeForHTTP10KeepAlive_saysKeepAlive() {
        var out: [UInt8] = []
        let request = HTTPRequestHead(method: "GET", target: "/", version: .http1_0, headers: ["Connection": "keep-alive"])
        let close = HTTPResponse(status: 200).encode(into: &out, for: request)
        XCTAssertFalse(close)
        XCTAssertEqual(String(decoding: out, as: UTF8.self), "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n")
    }

    func testResponse_encodeForHTTP10Default_closes() {
        var out: [UInt8] = []
        let close = HTTPResponse(status: 200).encode(into: &out, for: HTTPRequestHead(method: "GET", target: "/", version: .http1_0))
        XCTAssertTrue(close)
        XCTAssertTrue(String(decoding: out, as: UTF8.self).contains("Connection: close\r\n"))
    }

    func testResponse_encodeForHEADRequest_omitsBody() {
        var out: [UInt8] = []
        HTTPResponse(status: 200, body: bytes("body")).encode(into: &out, for: HTTPRequestHead(method: "HEAD", target: "/"))
        XCTAssertEqual(String(decoding: out, as: UTF8.self), "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n")
    }

    func testResponse_encodeAppends_toExistingBuffer() {
        var out = bytes("prefix")
        HTTPResponse(status: 204).encode(into: &out)
        XCTAssertEqual(String(decoding: out, as: UTF8.self), "prefixHTTP/1.1 204 No Content\r\n\r\n")
    }

    func testResponse_reasonPhrases_matchRFC9110() {
        let expected: [Int: String] = [
            200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified", 400: "Bad Request",
            401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            413: "Content Too Large", 414: "URI Too Long", 422: "Unprocessable Content",
            431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented",
            503: "Service Unavailable", 505: "HTTP Version Not Supported", 101: "Switching Protocols",
        ]
        for (status, phrase) in expected {
            XCTAssertEqual(HTTPResponse.reasonPhrase(for: status), phrase, "\(status)")
        }
        XCTAssertEqual(HTTPResponse.reasonPhrase(for: 499), "Client Error")
    }

    func testResponse_errorBody_escapesJSON() {
        let response = HTTPResponse.error(422, code: "invalid", message: "Bad \"quote\" \\ and\nnewline \u{1}")
        XCTAssertEqual(String(decoding: response.body, as: UTF8.self),
                       #"{"error":{"code":"invalid","message":"Bad \"quote\" \\ and\nnewline \u0001"}}"#)
        XCTAssertEqual(response.headers.first("content-type"), "application/json")
    }

    func testResponse_methodNotAllowed_hasAllowHeader() {
        let response = HTTPResponse.methodNotAllowed(allowed: ["GET", "HEAD", "POST"])
        XCTAssertEqual(response.status, 405)
        XCTAssertEqual(response.headers.first("Allow"), "GET, HEAD, POST")
    }

    func testResponse_notModified_hasETagNoBody() {
        let encoded = text(.notModified(etag: "\"abc\""))
        XCTAssertEqual(encoded, "HTTP/1.1 304 Not Modified\r\nETag: \"abc\"\r\n\r\n")
    }

    func testResponse_continueBytes_areInterimStatus() {
        XCTAssertEqual(HTTPResponse.continueBytes, bytes("HTTP/1.1 100 Continue\r\n\r\n"))
    }

    func testHeaders_set_replacesAllCaseInsensitively() {
        var headers: HTTPHeaders = ["X-A": "1", "x-a": "2", "B": "3"]
        headers.set(name: "X-A", value: "9")
        XCTAssertEqual(headers.all("x-a"), ["9"])
        XCTAssertEqual(headers.fields.map(\.name), ["X-A", "B"])
        headers.remove(name: "b")
        XCTAssertEqual(headers.count, 1)
    }
}
