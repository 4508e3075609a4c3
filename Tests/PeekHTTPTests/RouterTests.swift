@testable import PeekHTTP
import XCTest

final class RouterTests: XCTestCase {
    private enum Endpoint: Equatable {
        case createTenant, createTechnician, createTicket, ticketSends, ticketSummary, ticketSearch, getTicket, deleteTicket
    }

    private func makeRouter() -> Router<Endpoint> {
        var router = Router<Endpoint>()
        router.add("POST", "/v1/tenants", .createTenant)
        router.add("POST", "/v1/tenants/{tenant}/technicians", .createTechnician)
        router.add("POST", "/v1/tenants/{tenant}/tickets", .createTicket)
        router.add("GET", "/v1/tickets/{id}/sends", .ticketSends)
        router.add("POST", "/v1/tickets/{id}/summary", .ticketSummary)
        router.add("GET", "/v1/tickets/{id}", .getTicket)
        router.add("DELETE", "/v1/tickets/{id}", .deleteTicket)
        router.add("GET", "/v1/tickets/search", .ticketSearch)
        return router
    }

    func testRouter_parameterPath_bindsParams() {
        guard case .matched(let endpoint, let params) = makeRouter().match(method: "POST", path: "/v1/tenants/acme/technicians") else {
            return XCTFail("expected match")
        }
        XCTAssertEqual(endpoint, .createTechnician)
        XCTAssertEqual(params["tenant"], "acme")
        XCTAssertNil(params["id"])
    }

    func testRouter_literalAndParameterBoth_matchLiteral() {
        guard case .matched(let endpoint, let params) = makeRouter().match(method: "GET", path: "/v1/tickets/search") else {
            return XCTFail("expected match")
        }
        XCTAssertEqual(endpoint, .ticketSearch)
        XCTAssertTrue(params.pairs.isEmpty)
        guard case .matched(.getTicket, let other) = makeRouter().match(method: "GET", path: "/v1/tickets/T-17") else {
            return XCTFail("expected getTicket")
        }
        XCTAssertEqual(other["id"], "T-17")
    }

    func testRouter_wrongMethod_returns405WithAllow() {
        guard case .methodNotAllowed(let allowed) = makeRouter().match(method: "PUT", path: "/v1/tickets/9") else {
            return XCTFail("expected 405")
        }
        XCTAssertEqual(allowed, ["DELETE", "GET", "HEAD"])
        guard case .methodNotAllowed(let postOnly) = makeRouter().match(method: "GET", path: "/v1/tenants") else {
            return XCTFail("expected 405")
        }
        XCTAssertEqual(postOnly, ["POST"])
    }

    func testRouter_headRequest_fallsBackToGET() {
        guard case .matched(.ticketSends, let params) = makeRouter().match(method: "HEAD", path: "/v1/tickets/5/sends") else {
            return XCTFail("expected GET route for HEAD")
        }
        XCTAssertEqual(params["id"], "5")
    }

    func testRouter_unknownPath_returnsNotFound() {
        let router = makeRouter()
        for path in ["/v2/tenants", "/v1/tenants/acme", "/v1/tenants/", "/v1/tickets//sends", "/", "*", ""] {
            guard case .notFound = router.match(method: "POST", path: path) else {
                return XCTFail("expected notFound for \(path)")
            }
        }
    }

    func testRouter_encodedSlashInSegment_staysInsideParameter() {
        guard case .matched(.ticketSends, let params) = makeRouter().match(method: "GET", path: "/v1/tickets/a%2Fb/sends") else {
            return XCTFail("expected match")
        }
        XCTAssertEqual(params["id"], "a/b")
    }

    func testRouter_percentEncodedParameter_isDecodedOnce() {
        guard case .matched(_, let params) = makeRouter().match(method: "POST", path: "/v1/tenants/caf%C3%A9%2541/tickets") else {
            return XCTFail("expected match")
        }
        XCTAssertEqual(params["tenant"], "caf\u{e9}%41")
    }

    func testRouter_malformedEscapesAndNUL_returnInvalidPath() {
        let router = makeRouter()
        for path in ["/v1/tickets/%zz/sends", "/v1/tickets/%4/sends", "/v1/tickets/a%00/sends", "/v1/tickets/%FF/sends"] {
            guard case .invalidPath = router.match(method: "GET", path: path) else {
                return XCTFail("expected invalidPath for \(path)")
            }
        }
    }

    func testQueryString_plusAndPercent_areDecoded() {
        let items = QueryString.parse("q=hello+world&tag=a%26b&empty=&flag&&x=%E2%9C%93&bad=%zz%4")
        XCTAssertEqual(items.map(\.name), ["q", "tag", "empty", "flag", "x", "bad"])
        XCTAssertEqual(items.map(\.value), ["hello world", "a&b", "", "", "\u{2713}", "%zz%4"])
        XCTAssertEqual(QueryString.first("tag", in: items), "a&b")
    }

    func testQueryString_valueWithEquals_splitsOnFirst() {
        let items = QueryString.parse("token=abc==")
        XCTAssertEqual(items.first?.value, "abc==")
    }

    func testPercentEncoding_strictDecode_rejectsMalformed() {
        XCTAssertEqual(PercentEncoding.decode("a%20b"), bytes("a b"))
        XCTAssertEqual(PercentEncoding.decode("a+b"), bytes("a+b"))
        XCTAssertNil(PercentEncoding.decode("%"))
        XCTAssertNil(PercentEncoding.decode("%g0"))
        XCTAssertNil(PercentEncoding.decodeString("%C3"))
    }
}
