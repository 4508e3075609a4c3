import XCTest
import PeekCalendar

/// The calendar under every date format on the wire.
final class CivilDateTests: XCTestCase {
    func testKnownDates_convertBothWays() {
        let known: [(Int64, Int64, Int64, Int64, String)] = [
            (1970, 1, 1, 0, "Thu"),
            (1969, 12, 31, -1, "Wed"),
            (2000, 2, 29, 11_016, "Tue"),        // divisible by 400: a leap day
            (1900, 3, 1, -25_508, "Thu"),        // 1900 had no February 29
            (2026, 11, 29, 20_786, "Sun"),
            (1, 1, 1, -719_162, "Mon"),
            (0, 2, 29, -719_469, "Tue"),         // year 0 is a leap year (proleptic)
        ]
        for (y, m, d, days, weekday) in known {
            let date = CivilDate(year: y, month: m, day: d)
            XCTAssertEqual(date.daysSince1970, days, "\(y)-\(m)-\(d)")
            XCTAssertEqual(CivilDate(daysSince1970: days), date, "\(days)")
            XCTAssertEqual(CivilDate.weekdayAbbreviations[CivilDate.weekday(daysSince1970: days)], weekday, "\(y)-\(m)-\(d)")
        }
    }

    func testEveryDayOverEightHundredYears_roundTripsAndFollowsTheDayBefore() {
        var previous = CivilDate(daysSince1970: -146_098)
        for days in Int64(-146_097)...146_097 {
            let date = CivilDate(daysSince1970: days)
            XCTAssertEqual(date.daysSince1970, days)
            // The day after `previous`: next day, or the 1st of the next month or year.
            if date.day != previous.day + 1 {
                XCTAssertEqual(date.day, 1, "\(date)")
                XCTAssertTrue(date.month == previous.month + 1 || (date.month == 1 && previous.month == 12 && date.year == previous.year + 1), "\(previous) -> \(date)")
                let leap = previous.year % 4 == 0 && (previous.year % 100 != 0 || previous.year % 400 == 0)
                let lengths: [Int64] = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
                XCTAssertEqual(previous.day, lengths[Int(previous.month) - 1], "\(previous) ends its month")
            }
            previous = date
        }
    }

    func testFloorDivide_roundsTowardMinusInfinity() {
        XCTAssertTrue(CivilDate.floorDivide(-1, 86_400) == (-1, 86_399))
        XCTAssertTrue(CivilDate.floorDivide(86_400, 86_400) == (1, 0))
        XCTAssertTrue(CivilDate.floorDivide(-86_400, 86_400) == (-1, 0))
    }
}
