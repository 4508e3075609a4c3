import XCTest
@testable import PeekWebSocket

final class WebSocketHandshakeTests: XCTestCase {
    private let rfcKey = "dGhlIHNhbXBsZSBub25jZQ=="

    private func request(_ overrides: [String: String?] = [:], extra: [(name: String, value: String)] = []) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = [
            ("Host", "server.example.com"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", rfcKey), ("Sec-WebSocket-Version", "13"), ("Origin", "http://example.com"),
        ]
        for (name, value) in overrides {
            headers.removeAll { $0.name == name }
            if let value { headers.append((name, value)) }
        }
        return headers + extra
    }

    private func rejection(method: String = "GET", version: (Int, Int) = (1, 1), _ headers: [(name: String, value: String)]) -> WebSocketHandshake.Rejection? {
        do {
            _ = try WebSocketHandshake.validate(method: method, httpVersion: version, headers: headers)
            return nil
        } catch {
            return error
        }
    }

    func testHandshake_rfcSampleKey_acceptKeyMatchesRFC() {
        // RFC 6455 §1.3.
        XCTAssertEqual(WebSocketHandshake.acceptKey(for: rfcKey), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    func testHandshake_validRequest_accepted() throws {
        let acceptance = try WebSocketHandshake.validate(method: "GET", httpVersion: (1, 1), headers: request())
        XCTAssertEqual(acceptance.acceptKey, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        XCTAssertNil(acceptance.deflate)
        XCTAssertEqual(acceptance.origin, "http://example.com")
        XCTAssertEqual(String(decoding: acceptance.responseBytes(), as: UTF8.self),
                       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
    }

    func testHandshake_caseAndListVariants_accepted() throws {
        let headers: [(name: String, value: String)] = [
            ("HOST", "h"), ("upgrade", "WebSocket"), ("connection", "keep-alive, UPGRADE"),
            ("sec-websocket-key", " \(rfcKey) "), ("SEC-WEBSOCKET-VERSION", "13"),
        ]
        let acceptance = try WebSocketHandshake.validate(method: "GET", httpVersion: (1, 1), headers: headers)
        XCTAssertEqual(acceptance.acceptKey, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        XCTAssertNil(acceptance.origin)
    }

    func testHandshake_deflateOffer_negotiatedIntoResponse() throws {
        let headers = request(extra: [("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")])
        let acceptance = try WebSocketHandshake.validate(method: "GET", httpVersion: (1, 1), headers: headers)
        XCTAssertEqual(acceptance.deflate, PerMessageDeflateParameters())
        XCTAssertTrue(String(decoding: acceptance.responseBytes(), as: UTF8.self).contains(
            "\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"))
        let disabled = try WebSocketHandshake.validate(method: "GET", httpVersion: (1, 1), headers: headers, allowDeflate: false)
        XCTAssertNil(disabled.deflate)
    }

    func testHandshake_headerLookupVariant_sameResult() throws {
        let headers = request()
        let acceptance = try WebSocketHandshake.validate(method: "GET", httpVersion: (1, 1)) { name in
            headers.filter { $0.name.lowercased() == name }.map(\.value)
        }
        XCTAssertEqual(acceptance.acceptKey, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    func testHandshake_notGET_rejects405() {
        XCTAssertEqual(rejection(method: "POST", request())?.status, 405)
    }

    func testHandshake_http10_rejects400() {
        XCTAssertEqual(rejection(version: (1, 0), request())?.status, 400)
    }

    func testHandshake_missingUpgrade_rejects426NamingWebSocket() throws {
        let error = try XCTUnwrap(rejection(request(["Upgrade": nil])))
        XCTAssertEqual(error.status, 426)
        XCTAssertTrue(error.headers.contains { $0.name == "Upgrade" && $0.value == "websocket" })
        XCTAssertEqual(rejection(request(["Upgrade": "h2c"]))?.status, 426)
    }

    func testHandshake_connectionWithoutUpgrade_rejects400() {
        XCTAssertEqual(rejection(request(["Connection": "keep-alive"]))?.status, 400)
    }

    func testHandshake_wrongVersion_rejects426WithVersion13() throws {
        for version: String? in ["8", "14", nil] {
            let error = try XCTUnwrap(rejection(request(["Sec-WebSocket-Version": version])))
            XCTAssertEqual(error.status, 426)
            XCTAssertEqual(error.headers.first { $0.name == "Sec-WebSocket-Version" }?.value, "13")
            XCTAssertTrue(String(decoding: error.responseBytes(), as: UTF8.self).hasPrefix("HTTP/1.1 426 Upgrade Required\r\n"))
        }
    }

    func testHandshake_badKey_rejects400() {
        for key: String? in [
            nil,
            "",
            "AAAAAAAAAAAAAAAA",              // 12 bytes of base64, no padding
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAA",  // 21 bytes
            "dGhlIHNhbXBsZSBub25jZQ",        // right bytes, padding missing
            "dGhlIHNhbXBsZSBub25jZQ-=",      // URL-safe alphabet
            "dGhlIHNhbXBsZSBub25j!Q==",
        ] {
            XCTAssertEqual(rejection(request(["Sec-WebSocket-Key": key]))?.status, 400, "\(key ?? "nil")")
        }
        XCTAssertEqual(rejection(request(extra: [("Sec-WebSocket-Key", rfcKey)]))?.status, 400, "two keys")
    }

    func testHandshake_missingHost_rejects400() {
        XCTAssertEqual(rejection(request(["Host": nil]))?.status, 400)
    }
}
