import PeekCalendar

/// IMF-fixdate (RFC 9110 §5.6.7), `Sun, 06 Nov 1994 08:49:37 GMT`, from and
/// to unix seconds, with `CivilDate`'s calendar, so the pure modules need
/// neither Foundation nor a clock: the caller passes the time.
public enum HTTPDate {
    private static let weekdays = CivilDate.weekdayAbbreviations
    private static let months = CivilDate.monthAbbreviations

    public static func format(unixSeconds: Int64) -> String {
        let (days, secondOfDay) = CivilDate.floorDivide(unixSeconds, 86_400)
        let date = CivilDate(daysSince1970: days)
        let (year, month, day) = (date.year, date.month, date.day)
        let weekday = CivilDate.weekday(daysSince1970: days)
        let hour = secondOfDay / 3600, minute = secondOfDay / 60 % 60, second = secondOfDay % 60
        return "\(weekdays[weekday]), \(pad(day, 2)) \(months[Int(month) - 1]) \(pad(year, 4)) "
            + "\(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2)) GMT"
    }

    /// Parses IMF-fixdate only; the obsolete RFC 850 and asctime forms are
    /// nil, and a conditional request with an unparsable date is then
    /// treated as unconditional (RFC 9110 §13.1.3). The weekday is not checked.
    public static func parse(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        guard b.count == 29, b[3] == ASCII.comma, b[4] == ASCII.space, b[7] == ASCII.space,
              b[11] == ASCII.space, b[16] == ASCII.space, b[19] == ASCII.colon, b[22] == ASCII.colon,
              b[25] == ASCII.space, b[26...].elementsEqual("GMT".utf8),
              weekdays.contains(where: { b[0 ..< 3].elementsEqual($0.utf8) }),
              let monthIndex = months.firstIndex(where: { b[8 ..< 11].elementsEqual($0.utf8) }),
              let day = number(b[5 ..< 7]), let year = number(b[12 ..< 16]),
              let hour = number(b[17 ..< 19]), let minute = number(b[20 ..< 22]), let second = number(b[23 ..< 25]),
              (1 ... 31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        let days = CivilDate(year: year, month: Int64(monthIndex + 1), day: day).daysSince1970
        return days * 86_400 + hour * 3600 + minute * 60 + second
    }

    private static func pad(_ n: Int64, _ width: Int) -> String {
        let digits = String(n)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }

    private static func number(_ bytes: ArraySlice<UInt8>) -> Int64? {
        var n: Int64 = 0
        for b in bytes {
            guard b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") else { return nil }
            n = n * 10 + Int64(b - UInt8(ascii: "0"))
        }
        return n
    }
}
