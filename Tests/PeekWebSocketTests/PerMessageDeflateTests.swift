import XCTest
@testable import PeekWebSocket

final class PerMessageDeflateTests: XCTestCase {
    private let bothNoContext = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

    func testPerMessageDeflate_plainOffer_answeredWithNoContextTakeoverBothWays() {
        let accepted = PerMessageDeflate.negotiate(offers: ["permessage-deflate"])
        XCTAssertEqual(accepted, PerMessageDeflateParameters())
        XCTAssertEqual(accepted?.responseHeaderValue, bothNoContext)
        XCTAssertEqual(accepted?.deflateWindowBits, 15)
    }

    func testPerMessageDeflate_browserOffer_accepted() {
        // What Chrome and Firefox send.
        let accepted = PerMessageDeflate.negotiate(offers: ["permessage-deflate; client_max_window_bits"])
        XCTAssertEqual(accepted, PerMessageDeflateParameters())
        XCTAssertEqual(accepted?.responseHeaderValue, bothNoContext)
    }

    func testPerMessageDeflate_clientMaxWindowBitsWithValue_echoed() {
        let accepted = PerMessageDeflate.negotiate(offers: ["permessage-deflate; client_max_window_bits=10"])
        XCTAssertEqual(accepted?.clientMaxWindowBits, 10)
        XCTAssertEqual(accepted?.responseHeaderValue, bothNoContext + "; client_max_window_bits=10")
    }

    func testPerMessageDeflate_serverMaxWindowBits_honouredAndEchoed() {
        let accepted = PerMessageDeflate.negotiate(offers: ["permessage-deflate; server_no_context_takeover; server_max_window_bits=10"])
        XCTAssertEqual(accepted?.serverMaxWindowBits, 10)
        XCTAssertEqual(accepted?.deflateWindowBits, 10)
        XCTAssertEqual(accepted?.responseHeaderValue, bothNoContext + "; server_max_window_bits=10")
    }

    func testPerMessageDeflate_serverMaxWindowBits8_answered8DeflatedWith9() {
        // Autobahn 13.3/13.5 offer this. zlib cannot deflate raw with 8; see deflateWindowBits.
        let accepted = PerMessageDeflate.negotiate(offers: ["permessage-deflate; server_max_window_bits=8"])
        XCTAssertEqual(accepted?.serverMaxWindowBits, 8)
        XCTAssertEqual(accepted?.deflateWindowBits, 9)
        XCTAssertEqual(accepted?.responseHeaderValue, bothNoContext + "; server_max_window_bits=8")
    }

    func testPerMessageDeflate_invalidOffers_declined() {
        for offer in [
            "permessage-deflate; server_max_window_bits",        // value required in an offer
            "permessage-deflate; server_max_window_bits=7",      // below 8
            "permessage-deflate; server_max_window_bits=16",     // above 15
            "permessage-deflate; client_max_window_bits=08",     // leading zero
            "permessage-deflate; client_max_window_bits=abc",
            "permessage-deflate; server_no_context_takeover=1",  // takes no value
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",  // repeated
            "permessage-deflate; mystery_param",
            "permessage-deflate; server_max_window_bits=\"1 0\"", // quoted value must be a token
            "x-webkit-deflate-frame",
            "",
        ] {
            XCTAssertNil(PerMessageDeflate.negotiate(offers: [offer]), offer)
        }
    }

    func testPerMessageDeflate_severalOffers_firstValidWins() {
        // Autobahn 13.7's shape: a strict offer first, fallbacks after.
        let header = "permessage-deflate; server_max_window_bits=7, permessage-deflate; server_max_window_bits=9, permessage-deflate"
        XCTAssertEqual(PerMessageDeflate.negotiate(offers: [header])?.serverMaxWindowBits, 9)
        let twoHeaders = ["x-webkit-deflate-frame", "permessage-deflate; unknown, permessage-deflate; client_max_window_bits=12"]
        XCTAssertEqual(PerMessageDeflate.negotiate(offers: twoHeaders)?.clientMaxWindowBits, 12)
    }

    func testPerMessageDeflate_quotedValue_unquoted() {
        XCTAssertEqual(PerMessageDeflate.negotiate(offers: ["permessage-deflate; server_max_window_bits=\"11\""])?.serverMaxWindowBits, 11)
    }

    func testPerMessageDeflate_malformedElementWithQuotedComma_nextOfferStillSeen() {
        let header = "permessage-deflate; foo=\"a,b\", permessage-deflate ;server_max_window_bits = 12"
        XCTAssertEqual(PerMessageDeflate.negotiate(offers: [header])?.serverMaxWindowBits, 12)
    }

    func testExtensionHeader_parse_splitsElementsAndParameters() {
        let elements = ExtensionHeader.parse("foo, permessage-deflate; a; b=1 , bar;c=\"x\"")
        XCTAssertEqual(elements.map(\.name), ["foo", "permessage-deflate", "bar"])
        XCTAssertEqual(elements[1].parameters.map(\.name), ["a", "b"])
        XCTAssertEqual(elements[1].parameters.map(\.value), [nil, "1"])
        XCTAssertEqual(elements[2].parameters.first?.value, "x")
    }
}
