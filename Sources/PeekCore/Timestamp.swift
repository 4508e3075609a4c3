import PeekCalendar

/// RFC 3339 UTC timestamps with milliseconds ("2026-11-29T07:30:00.123Z"),
/// formatted from Unix milliseconds without Foundation (the calendar is
/// `CivilDate`'s).
public enum Timestamp {
    /// RFC 3339 has four-digit years: 0000-01-01T00:00:00.000Z ...
    public static let minMillis: Int64 = CivilDate(year: 0, month: 1, day: 1).daysSince1970 * 86_400_000
    /// ... to 9999-12-31T23:59:59.999Z.
    public static let maxMillis: Int64 = CivilDate(year: 10_000, month: 1, day: 1).daysSince1970 * 86_400_000 - 1

    /// Formats `millis`. An instant outside the years 0000-9999 has no RFC
    /// 3339 form: it is written as the nearest one that has (`minMillis` or
    /// `maxMillis`), never trapped on (a negative year once made a negative
    /// digit, and a huge one overflowed the calendar arithmetic).
    public static func format(millis: Int64) -> String {
        let millis = min(max(millis, minMillis), maxMillis)
        let (days, msOfDay) = CivilDate.floorDivide(millis, 86_400_000)
        let date = CivilDate(daysSince1970: days)
        let y = date.year, m = date.month, d = date.day
        let h = msOfDay / 3_600_000, mi = msOfDay / 60_000 % 60, s = msOfDay / 1000 % 60, ms = msOfDay % 1000
        var out = [UInt8]()
        out.reserveCapacity(24)
        // Digits go straight into `out`: a temporary array per field made
        // this ~8k instructions of allocation per timestamp, two per note.
        func put(_ v: Int64, _ width: Int) {
            var divisor: Int64 = 1
            for _ in 1..<width { divisor *= 10 }
            while divisor > 0 { out.append(UInt8(ascii: "0") + UInt8(v / divisor % 10)); divisor /= 10 }
        }
        put(y, 4); out.append(UInt8(ascii: "-")); put(m, 2); out.append(UInt8(ascii: "-")); put(d, 2)
        out.append(UInt8(ascii: "T")); put(h, 2); out.append(UInt8(ascii: ":")); put(mi, 2)
        out.append(UInt8(ascii: ":")); put(s, 2); out.append(UInt8(ascii: ".")); put(ms, 3); out.append(UInt8(ascii: "Z"))
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses the RFC 3339 forms clients send (`Z` or a numeric offset,
    /// optional fraction); nil for anything else, and for a time whose
    /// offset takes it outside the years 0000-9999 in UTC
    /// ("0000-01-01T00:30:00+01:00" would be in year -1).
    public static func parse(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        func num(_ from: Int, _ count: Int) -> Int64? {
            guard from + count <= b.count else { return nil }
            var v: Int64 = 0
            for i in from..<(from + count) {
                guard b[i] >= 48, b[i] <= 57 else { return nil }
                v = v * 10 + Int64(b[i] - 48)
            }
            return v
        }
        guard b.count >= 20, b[4] == 45, b[7] == 45, b[10] == 84 || b[10] == 116 || b[10] == 32, b[13] == 58, b[16] == 58,
              let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2), let s = num(17, 2),
              (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, s < 61 else { return nil }
        var i = 19
        var ms: Int64 = 0
        if i < b.count, b[i] == 46 {
            i += 1
            var scale: Int64 = 100
            let start = i
            while i < b.count, b[i] >= 48, b[i] <= 57 { ms += Int64(b[i] - 48) * scale; scale /= 10; i += 1 }
            if i == start { return nil }
        }
        guard i < b.count else { return nil }
        var offset: Int64 = 0
        if b[i] == 90 || b[i] == 122 { i += 1 } else if b[i] == 43 || b[i] == 45 {
            guard let oh = num(i + 1, 2), i + 3 < b.count, b[i + 3] == 58, let om = num(i + 4, 2) else { return nil }
            offset = (oh * 60 + om) * 60_000 * (b[i] == 45 ? -1 : 1)
            i += 6
        } else { return nil }
        guard i == b.count else { return nil }
        let millis = CivilDate(year: y, month: mo, day: d).daysSince1970 * 86_400_000 + h * 3_600_000 + mi * 60_000 + s * 1000 + ms - offset
        guard (minMillis...maxMillis).contains(millis) else { return nil }
        return millis
    }
}
