import PeekCalendar

/// RFC 5322 §3.3 dates from unix seconds, always in UTC: `Sun, 29 Nov 2026 09:30:00 +0000`.
/// Computed with `CivilDate` rather than a date formatter, so the output never
/// depends on the machine's locale or time zone database.
public enum RFC5322Date {
    public static func format(unixSeconds: Int64) -> String {
        let (days, secondOfDay) = CivilDate.floorDivide(unixSeconds, 86_400)
        let date = CivilDate(daysSince1970: days)
        let weekday = CivilDate.weekdayAbbreviations[CivilDate.weekday(daysSince1970: days)]
        let month = CivilDate.monthAbbreviations[Int(date.month) - 1]
        let hour = secondOfDay / 3600, minute = secondOfDay / 60 % 60, second = secondOfDay % 60
        return "\(weekday), \(date.day) \(month) \(date.year) \(twoDigits(hour)):\(twoDigits(minute)):\(twoDigits(second)) +0000"
    }

    private static func twoDigits(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
}
