import XCTest
@testable import PeekCore

final class JSONTests: XCTestCase {
    func testJSONParser_objectWithEveryType_parses() throws {
        let v = try JSONParser.parse(#"{"s":"a\"b\\c\u00e9\ud83d\ude00","i":-42,"d":1.5e2,"t":true,"f":false,"n":null,"a":[1,[2]],"o":{}}"#)
        XCTAssertEqual(v["s"]?.stringValue, "a\"b\\cé😀")
        XCTAssertEqual(v["i"]?.intValue, -42)
        XCTAssertEqual(v["d"]?.doubleValue, 150)
        XCTAssertEqual(v["t"]?.boolValue, true)
        XCTAssertEqual(v["f"]?.boolValue, false)
        XCTAssertEqual(v["n"], .null)
        XCTAssertEqual(v["a"], .array([.int(1), .array([.int(2)])]))
        XCTAssertEqual(v["o"], .object([:]))
    }

    func testJSONParser_malformedInputs_throw() {
        for bad in ["", "{", "{\"a\":}", "[1,]", "{\"a\":1,}", "01", "1.", "-", "\"\\x\"", "\"a", "tru", "{\"a\" 1}",
                    "\"\\ud800\"", "\"\\udc00x\"", "[1] x", "\"\u{01}\"", "NaN", "{a:1}"] {
            XCTAssertThrowsError(try JSONParser.parse(bad), "should reject \(bad)")
        }
    }

    func testJSONParser_invalidUTF8InString_throws() {
        XCTAssertThrowsError(try JSONParser.parse([0x22, 0xC0, 0x80, 0x22]))
    }

    func testJSONParser_nestingBeyondLimit_throws() {
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        XCTAssertThrowsError(try JSONParser.parse(deep))
        let ok = String(repeating: "[", count: 60) + String(repeating: "]", count: 60)
        XCTAssertNoThrow(try JSONParser.parse(ok))
    }

    func testJSONWriter_nestedStructure_roundTrips() throws {
        var w = JSONWriter()
        w.beginObject()
        w.field("type", "delta")
        w.field("seq", 7)
        w.key("data"); w.beginObject(); w.field("body", "line1\nline2 \"q\" \u{1}"); w.nullField("x"); w.endObject()
        w.key("list"); w.beginArray(); w.int(1); w.string("two"); w.beginObject(); w.endObject(); w.endArray()
        w.endObject()
        let text = String(decoding: w.bytes, as: UTF8.self)
        XCTAssertEqual(text, #"{"type":"delta","seq":7,"data":{"body":"line1\nline2 \"q\" \u0001","x":null},"list":[1,"two",{}]}"#)
        let back = try JSONParser.parse(w.bytes)
        XCTAssertEqual(back["data"]?["body"]?.stringValue, "line1\nline2 \"q\" \u{1}")
    }

    func testJSONWriter_value_encodesSortedKeys() {
        let v: JSONValue = .object(["b": .int(1), "a": .array([.bool(true), .null, .string("x")])])
        XCTAssertEqual(String(decoding: JSONWriter.encode(v), as: UTF8.self), #"{"a":[true,null,"x"],"b":1}"#)
    }
}

final class TimestampTests: XCTestCase {
    func testTimestamp_knownInstant_formatsRFC3339() {
        // 2026-11-29T07:30:00.123Z
        XCTAssertEqual(Timestamp.format(millis: 1_795_937_400_123), "2026-11-29T07:30:00.123Z")
        XCTAssertEqual(Timestamp.format(millis: 0), "1970-01-01T00:00:00.000Z")
        XCTAssertEqual(Timestamp.format(millis: 951_782_400_000), "2000-02-29T00:00:00.000Z")
    }

    /// 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z in Unix milliseconds.
    private let year0Millis: Int64 = -62_167_219_200_000
    private let year9999EndMillis: Int64 = 253_402_300_799_999

    /// A negative year once made a negative digit (a trap in `UInt8(_:)`)
    /// and a huge instant overflowed the calendar: both are written as the
    /// nearest instant RFC 3339 can carry.
    func testTimestamp_outsideYears0000To9999_formatsClampedWithoutTrap() {
        XCTAssertEqual(Timestamp.format(millis: year0Millis), "0000-01-01T00:00:00.000Z")
        XCTAssertEqual(Timestamp.format(millis: year9999EndMillis), "9999-12-31T23:59:59.999Z")
        XCTAssertEqual(Timestamp.format(millis: year0Millis - 1), "0000-01-01T00:00:00.000Z")
        XCTAssertEqual(Timestamp.format(millis: Int64.min), "0000-01-01T00:00:00.000Z")
        XCTAssertEqual(Timestamp.format(millis: year9999EndMillis + 1), "9999-12-31T23:59:59.999Z")
        XCTAssertEqual(Timestamp.format(millis: Int64.max), "9999-12-31T23:59:59.999Z")
        XCTAssertEqual(Timestamp.parse(Timestamp.format(millis: year0Millis)), year0Millis)
        XCTAssertEqual(Timestamp.parse(Timestamp.format(millis: year9999EndMillis)), year9999EndMillis)
        XCTAssertEqual(Timestamp.minMillis, year0Millis)
        XCTAssertEqual(Timestamp.maxMillis, year9999EndMillis)
    }

    /// An offset that moves the instant out of the years 0000-9999 (year
    /// -1 or 10000 in UTC) is refused, not returned as a time `format`
    /// cannot write.
    func testTimestamp_parse_offsetOutOfTheYearRange_nil() {
        XCTAssertNil(Timestamp.parse("0000-01-01T00:30:00+01:00"))
        XCTAssertNil(Timestamp.parse("9999-12-31T23:30:00-01:00"))
        XCTAssertEqual(Timestamp.parse("0000-01-01T01:00:00+01:00"), year0Millis)
        XCTAssertEqual(Timestamp.parse("9999-12-31T22:59:59.999-01:00"), year9999EndMillis)
    }

    func testTimestamp_parse_acceptsOffsetsAndFractions() {
        XCTAssertEqual(Timestamp.parse("2026-11-29T07:30:00.123Z"), 1_795_937_400_123)
        XCTAssertEqual(Timestamp.parse("2026-11-29T08:30:00+01:00"), 1_795_937_400_000)
        XCTAssertEqual(Timestamp.parse("2026-11-29T07:30:00Z"), 1_795_937_400_000)
        XCTAssertNil(Timestamp.parse("2026-13-29T07:30:00Z"))
        XCTAssertNil(Timestamp.parse("yesterday"))
    }
}

final class JWTTests: XCTestCase {
    let secret = Array("dev-secret".utf8)

    func testJWT_signedToken_verifies() throws {
        let claims = TechnicianClaims(subject: "tech-1", tenant: "acme", name: "Ana", expiresAt: 2_000_000_000)
        let token = JWT.sign(claims, secret: secret)
        XCTAssertEqual(try JWT.verify(token, secret: secret, nowSeconds: 1_900_000_000), claims)
    }

    func testJWT_wrongSecret_isBadSignature() {
        let token = JWT.sign(TechnicianClaims(subject: "t", tenant: "a", name: "n", expiresAt: 2_000_000_000), secret: secret)
        XCTAssertThrowsError(try JWT.verify(token, secret: Array("other".utf8), nowSeconds: 0)) { error in
            XCTAssertEqual(error as? JWT.Failure, .badSignature)
        }
    }

    func testJWT_expired_isRejected() {
        let token = JWT.sign(TechnicianClaims(subject: "t", tenant: "a", name: "n", expiresAt: 100), secret: secret)
        XCTAssertThrowsError(try JWT.verify(token, secret: secret, nowSeconds: 100)) { XCTAssertEqual($0 as? JWT.Failure, .expired) }
    }

    func testJWT_algNone_isRejectedBeforeSignatureCheck() {
        // {"alg":"none"} . {"sub":"t","tenant":"a","exp":9999999999} . (empty)
        let token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ0IiwidGVuYW50IjoiYSIsImV4cCI6OTk5OTk5OTk5OX0."
        XCTAssertThrowsError(try JWT.verify(token, secret: secret, nowSeconds: 0)) { XCTAssertEqual($0 as? JWT.Failure, .wrongAlgorithm("none")) }
    }

    func testJWT_tamperedPayload_isBadSignature() {
        let token = JWT.sign(TechnicianClaims(subject: "t", tenant: "a", name: "n", expiresAt: 2_000_000_000), secret: secret)
        let parts = token.split(separator: ".").map(String.init)
        let forged = JWT.sign(TechnicianClaims(subject: "admin", tenant: "a", name: "n", expiresAt: 2_000_000_000), secret: Array("x".utf8))
            .split(separator: ".").map(String.init)
        XCTAssertThrowsError(try JWT.verify(parts[0] + "." + forged[1] + "." + parts[2], secret: secret, nowSeconds: 0))
    }

    func testJWT_garbage_isMalformed() {
        for bad in ["", "a.b", "a.b.c.d", "!!.??.**"] {
            XCTAssertThrowsError(try JWT.verify(bad, secret: secret, nowSeconds: 0))
        }
    }
}

final class SLAClockTests: XCTestCase {
    func ticket(status: TicketStatus = .open, sla: SLAClocks, firstResponse: Int64? = nil) -> Ticket {
        Ticket(id: "T-1", tenant: "a", number: 1, subject: "s", status: status, priority: .normal, assignee: nil,
               contact: Contact(name: "c", email: nil), client: "x", asset: nil, firstResponseAt: firstResponse,
               createdAt: 0, version: 1, seq: 0, sla: sla)
    }

    func testSLAClock_runningClocks_countDownAndBreach() {
        let t = ticket(sla: SLAClocks(responseDue: 60_000, resolutionDue: 600_000))
        let early = SLAClock.evaluate(t, nowMillis: 10_000)
        XCTAssertEqual(early.response?.remainingSeconds, 50)
        XCTAssertEqual(early.response?.breached, false)
        let late = SLAClock.evaluate(t, nowMillis: 60_500)
        XCTAssertEqual(late.response?.remainingSeconds, -1)
        XCTAssertEqual(late.response?.breached, true)
    }

    func testSLAClock_firstResponse_stopsResponseClock() {
        let t = ticket(sla: SLAClocks(responseDue: 60_000, resolutionDue: 600_000), firstResponse: 5_000)
        XCTAssertNil(SLAClock.evaluate(t, nowMillis: 10_000).response)
        XCTAssertEqual(SLAClock.nextDeadline(t)?.target, "resolution")
    }

    func testSLATargets_stoppedResponse_breachedOnlyWhenAnsweredLate() {
        let inTime = ticket(sla: SLAClocks(responseDue: 60_000, resolutionDue: 600_000), firstResponse: 5_000)
        XCTAssertEqual(SLAClock.targets(inTime, nowMillis: 900_000).response, SLAClock.Target(dueAt: 60_000, breached: false))
        let late = ticket(sla: SLAClocks(responseDue: 60_000, resolutionDue: 600_000), firstResponse: 90_000)
        XCTAssertEqual(SLAClock.targets(late, nowMillis: 100_000).response, SLAClock.Target(dueAt: 60_000, breached: true))
        XCTAssertEqual(SLAClock.targets(late, nowMillis: 100_000).resolution, SLAClock.Target(dueAt: 600_000, breached: false))
        XCTAssertNil(SLAClock.targets(ticket(sla: SLAClocks()), nowMillis: 0).response, "no policy, no target")
    }

    func testSLAClock_waitingOnCustomer_freezesResolution() {
        let t = ticket(status: .waitingOnCustomer, sla: SLAClocks(resolutionDue: 600_000, pausedSince: 100_000))
        let c = SLAClock.evaluate(t, nowMillis: 500_000).resolution
        XCTAssertEqual(c?.paused, true)
        XCTAssertEqual(c?.remainingSeconds, 500)
        XCTAssertNil(SLAClock.nextDeadline(t))
    }

    func testSLAClock_resolved_stopsBoth() {
        let t = ticket(status: .resolved, sla: SLAClocks(responseDue: 60_000, resolutionDue: 600_000))
        let c = SLAClock.evaluate(t, nowMillis: 0)
        XCTAssertNil(c.response)
        XCTAssertNil(c.resolution)
    }
}
