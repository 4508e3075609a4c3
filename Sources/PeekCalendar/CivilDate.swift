/// A date in the proleptic Gregorian calendar, counted in days from
/// 1970-01-01 (UTC). The one place the wire's date formats (RFC 3339
/// timestamps, HTTP dates, mail dates) get their calendar arithmetic, so
/// none of them needs Foundation, a time zone database or a locale: the
/// caller passes the time.
///
/// The conversions are Howard Hinnant's `days_from_civil` and
/// `civil_from_days`: they count in 400-year eras (146,097 days each),
/// within which the leap-year rule is plain arithmetic, so no table is
/// needed and every Int64 day in range converts exactly both ways.
public struct CivilDate: Equatable, Sendable {
    public var year: Int64
    /// 1 = January.
    public var month: Int64
    public var day: Int64

    public init(year: Int64, month: Int64, day: Int64) {
        self.year = year
        self.month = month
        self.day = day
    }

    public init(daysSince1970 days: Int64) {
        let z = days + 719_468                     // days from 0000-03-01
        let era = Self.floorDivide(z, 146_097).quotient
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153      // March = 0, so February is last
        day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
    }

    public var daysSince1970: Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = Self.floorDivide(y, 400).quotient
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// 0 = Sunday (1970-01-01 was a Thursday).
    public static func weekday(daysSince1970 days: Int64) -> Int {
        Int(floorDivide(days + 4, 7).remainder)
    }

    /// Indexed by `weekday(daysSince1970:)`.
    public static let weekdayAbbreviations = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    /// Indexed by `month - 1`.
    public static let monthAbbreviations = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// Division rounding toward minus infinity, so that instants before
    /// 1970 fall on the right day and second.
    public static func floorDivide(_ a: Int64, _ b: Int64) -> (quotient: Int64, remainder: Int64) {
        let q = a / b, r = a % b
        return r < 0 ? (q - 1, r + b) : (q, r)
    }
}
