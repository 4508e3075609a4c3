import XCTest
@testable import PeekCore

final class BusinessHoursTests: XCTestCase {
    // Monday-Friday 09:00-17:00 UTC.
    let week = BusinessHours(days: [1, 2, 3, 4, 5], startMinute: 540, endMinute: 1020, utcOffsetMinutes: 0)!

    func t(_ s: String) -> Int64 { Timestamp.parse(s)! }

    func testWeekday_knownDates() {
        XCTAssertEqual(BusinessHours.weekday(localDay: 0), 4)   // 1970-01-01 was a Thursday
        XCTAssertEqual(BusinessHours.weekday(localDay: t("2026-11-29T12:00:00Z") / 86_400_000), 7)  // a Sunday
        XCTAssertEqual(BusinessHours.weekday(localDay: t("2026-11-30T12:00:00Z") / 86_400_000), 1)  // a Monday
    }

    func testAdding_withinOneDay() {
        XCTAssertEqual(week.adding(seconds: 3600, to: t("2026-11-30T10:00:00Z")), t("2026-11-30T11:00:00Z"))
    }

    func testAdding_fridayAfternoon_rollsOverTheWeekend() {
        // Friday 16:00 + 4 working hours = Monday 12:00.
        XCTAssertEqual(week.adding(seconds: 4 * 3600, to: t("2026-12-04T16:00:00Z")), t("2026-12-07T12:00:00Z"))
    }

    func testAdding_beforeOpening_startsAtOpening() {
        XCTAssertEqual(week.adding(seconds: 1800, to: t("2026-11-30T06:00:00Z")), t("2026-11-30T09:30:00Z"))
        // Saturday night counts from Monday 09:00.
        XCTAssertEqual(week.adding(seconds: 60, to: t("2026-12-05T23:00:00Z")), t("2026-12-07T09:01:00Z"))
    }

    func testAdding_respectsTheOffset() {
        // 09:00-17:00 at UTC+02:00 is 07:00-15:00 UTC.
        let cet = BusinessHours(days: [1, 2, 3, 4, 5], startMinute: 540, endMinute: 1020, utcOffsetMinutes: 120)!
        XCTAssertEqual(cet.adding(seconds: 3600, to: t("2026-11-30T14:30:00Z")), t("2026-12-01T07:30:00Z"))
    }

    func testSeconds_countsOnlyWorkingTime() {
        XCTAssertEqual(week.seconds(from: t("2026-12-04T16:00:00Z"), to: t("2026-12-07T12:00:00Z")), 4 * 3600)
        XCTAssertEqual(week.seconds(from: t("2026-12-05T00:00:00Z"), to: t("2026-12-06T23:00:00Z")), 0)
        XCTAssertEqual(week.seconds(from: t("2026-12-07T12:00:00Z"), to: t("2026-12-07T11:00:00Z")), 0)
    }

    func testInit_rejectsNonsense() {
        XCTAssertNil(BusinessHours(days: [], startMinute: 540, endMinute: 1020, utcOffsetMinutes: 0))
        XCTAssertNil(BusinessHours(days: [8], startMinute: 540, endMinute: 1020, utcOffsetMinutes: 0))
        XCTAssertNil(BusinessHours(days: [1], startMinute: 1020, endMinute: 540, utcOffsetMinutes: 0))
        XCTAssertEqual(BusinessHours.minutes("09:30"), 570)
        XCTAssertEqual(BusinessHours.minutes("24:00"), 1440)
        XCTAssertNil(BusinessHours.minutes("9:30"))
        XCTAssertNil(BusinessHours.minutes("25:00"))
    }
}
