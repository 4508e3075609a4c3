import XCTest
import PeekWebSocket

final class CloseCodeTests: XCTestCase {
    func testCloseCode_namedCodes_haveRFCValues() {
        XCTAssertEqual(CloseCode.normal.rawValue, 1000)
        XCTAssertEqual(CloseCode.goingAway.rawValue, 1001)
        XCTAssertEqual(CloseCode.protocolError.rawValue, 1002)
        XCTAssertEqual(CloseCode.unsupportedData.rawValue, 1003)
        XCTAssertEqual(CloseCode.invalidPayload.rawValue, 1007)
        XCTAssertEqual(CloseCode.policyViolation.rawValue, 1008)
        XCTAssertEqual(CloseCode.messageTooBig.rawValue, 1009)
        XCTAssertEqual(CloseCode.internalError.rawValue, 1011)
        XCTAssertEqual(CloseCode.tryAgainLater.rawValue, 1013)
        XCTAssertEqual(CloseCode.unauthorized.rawValue, 4401)
        XCTAssertEqual(CloseCode.forbidden.rawValue, 4403)
    }

    func testCloseCode_codesAllowedOnTheWire_valid() {
        // Autobahn 7.7.x's valid list, plus 1012-1014 (registered with IANA after RFC 6455).
        for code: UInt16 in [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
                             3000, 3999, 4000, 4401, 4999] {
            XCTAssertTrue(CloseCode(code).isValidInCloseFrame, "\(code)")
        }
    }

    func testCloseCode_reservedAndUndefinedCodes_invalid() {
        // Autobahn 7.9.x's invalid list, plus 1015 (TLS failure, API-only) and the range edges.
        for code: UInt16 in [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535] {
            XCTAssertFalse(CloseCode(code).isValidInCloseFrame, "\(code)")
        }
    }
}
