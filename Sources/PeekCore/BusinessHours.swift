/// A tenant's working week for SLA clocks: which weekdays, which hours, in
/// which fixed UTC offset. With business hours an SLA target of 4 hours
/// means 4 *working* hours: a ticket opened Friday 16:00 on a 09:00-17:00
/// Monday-Friday week is due Monday 12:00.
///
/// The offset is fixed (no daylight-saving rules): the server must not
/// depend on one machine's time-zone database, and a tenant that moves its
/// clocks updates its policy.
public struct BusinessHours: Equatable, Sendable {
    /// ISO weekdays, 1 = Monday ... 7 = Sunday.
    public var days: Set<Int>
    /// Minutes after local midnight; `start < end`, both within one day.
    public var startMinute: Int
    public var endMinute: Int
    public var utcOffsetMinutes: Int

    public init?(days: Set<Int>, startMinute: Int, endMinute: Int, utcOffsetMinutes: Int) {
        guard !days.isEmpty, days.allSatisfy({ (1...7).contains($0) }), (0..<1440).contains(startMinute),
              (1...1440).contains(endMinute), startMinute < endMinute, (-14 * 60...14 * 60).contains(utcOffsetMinutes) else { return nil }
        self.days = days
        self.startMinute = startMinute
        self.endMinute = endMinute
        self.utcOffsetMinutes = utcOffsetMinutes
    }

    static let dayMillis: Int64 = 86_400_000

    /// ISO weekday of a local day number (days since 1970-01-01, a Thursday).
    static func weekday(localDay: Int64) -> Int {
        let r = Int((localDay % 7 + 7) % 7)   // 0 = Thursday
        return (r + 3) % 7 + 1
    }

    /// The instant `seconds` of working time after `from`.
    public func adding(seconds: Int, to from: Int64) -> Int64 {
        var left = Int64(seconds) * 1000
        let offset = Int64(utcOffsetMinutes) * 60_000
        var local = from + offset
        // At most a few weeks of walking even for long targets: one step per day.
        for _ in 0..<(366 * 20) {
            let day = Int64((Double(local) / Double(Self.dayMillis)).rounded(.down))
            let dayStart = day * Self.dayMillis
            if days.contains(Self.weekday(localDay: day)) {
                let open = dayStart + Int64(startMinute) * 60_000
                let close = dayStart + Int64(endMinute) * 60_000
                let begin = max(local, open)
                if begin < close {
                    let available = close - begin
                    if left <= available { return begin + left - offset }
                    left -= available
                }
            }
            local = dayStart + Self.dayMillis
        }
        return local - offset
    }

    /// Working seconds between two instants (0 if `to <= from`).
    public func seconds(from: Int64, to: Int64) -> Int {
        guard to > from else { return 0 }
        let offset = Int64(utcOffsetMinutes) * 60_000
        var local = from + offset
        let end = to + offset
        var total: Int64 = 0
        while local < end {
            let day = Int64((Double(local) / Double(Self.dayMillis)).rounded(.down))
            let dayStart = day * Self.dayMillis
            if days.contains(Self.weekday(localDay: day)) {
                let open = dayStart + Int64(startMinute) * 60_000
                let close = dayStart + Int64(endMinute) * 60_000
                let a = max(local, open), b = min(end, close)
                if b > a { total += b - a }
            }
            local = dayStart + Self.dayMillis
        }
        return Int(total / 1000)
    }

    /// "HH:MM" -> minutes after midnight ("24:00" allowed as an end).
    public static func minutes(_ text: String) -> Int? {
        let parts = text.split(separator: ":")
        guard parts.count == 2, parts[0].count == 2, parts[1].count == 2, let h = Int(parts[0]), let m = Int(parts[1]),
              (0...24).contains(h), (0..<60).contains(m), h * 60 + m <= 1440 else { return nil }
        return h * 60 + m
    }
}
