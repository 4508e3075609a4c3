import XCTest
import PeekCore
import PeekTestSupport

/// Business hours: SLA targets count working time only.
final class SLABusinessHoursTests: XCTestCase {
    func testBusinessHours_dueTimesCountWorkingTimeOnly() throws {
        let server = try TestServer()
        defer { server.stop() }
        try server.seed(technicians: 1, tickets: 0)
        // A working week of one hour a day on the current weekday only: a
        // two-hour target must land at least six days later.
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let weekday = (Int((now / 86_400_000 % 7 + 7) % 7) + 3) % 7 + 1
        let put = try server.api("PUT", "/v1/tenants/acme/sla-policy", [
            "normal": ["response": 3600, "resolution": 7200],
            "business_hours": ["days": [.int(weekday)], "start": "00:00", "end": "01:00", "utc_offset_minutes": 0],
        ])
        XCTAssertEqual(put.status, 200, put.text)
        XCTAssertEqual(put.json?["business_hours"]?["days"], [.int(weekday)])
        XCTAssertEqual(put.json?["business_hours"]?["start"], "00:00")

        let created = try server.api("POST", "/v1/tenants/acme/tickets", [
            "subject": "Printer", "client": "Co", "priority": "normal", "contact": ["name": "C", "email": "c@example.com"],
        ])
        XCTAssertEqual(created.status, 201, created.text)
        let id = try XCTUnwrap(created.json?["id"]?.stringValue)
        let state = try XCTUnwrap(server.api("GET", "/v1/tickets/\(id)").json?["state"])
        let expected = BusinessHours(days: [weekday], startMinute: 0, endMinute: 60, utcOffsetMinutes: 0)!
        let createdAt = try XCTUnwrap(Timestamp.parse(XCTUnwrap(state["ticket"]?["created_at"]?.stringValue)))
        let responseDue = try XCTUnwrap(Timestamp.parse(XCTUnwrap(state["sla"]?["response"]?["due_at"]?.stringValue)))
        let resolutionDue = try XCTUnwrap(Timestamp.parse(XCTUnwrap(state["sla"]?["resolution"]?["due_at"]?.stringValue)))
        XCTAssertEqual(responseDue, expected.adding(seconds: 3600, to: createdAt))
        XCTAssertEqual(resolutionDue, expected.adding(seconds: 7200, to: createdAt))
        XCTAssertGreaterThan(resolutionDue - createdAt, 6 * 86_400_000)
    }

    func testBusinessHours_invalid_isRefusedAndNothingChanges() throws {
        let server = try TestServer()
        defer { server.stop() }
        try server.seed(technicians: 1, tickets: 0)
        let bad = try server.api("PUT", "/v1/tenants/acme/sla-policy", [
            "normal": ["response": 60, "resolution": 120],
            "business_hours": ["days": [1], "start": "17:00", "end": "09:00"],
        ])
        XCTAssertEqual(bad.status, 400)
        XCTAssertEqual(bad.json?["error"]?["code"], "invalid")
        // Nothing of the refused request was stored: the normal target is still unset.
        let ok = try server.api("PUT", "/v1/tenants/acme/sla-policy", ["low": ["response": 10, "resolution": 20]])
        XCTAssertEqual(ok.json?["normal"], nil)
        XCTAssertEqual(ok.json?["business_hours"], .null)
    }
}
