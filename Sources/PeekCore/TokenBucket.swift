/// A token bucket: `ratePerSecond` tokens a second, holding at most
/// `capacity`, starting full. Each admitted event takes one token, so a
/// sender may burst up to `capacity` and then keeps `ratePerSecond` on
/// average. Time is an argument (milliseconds on any monotonic clock), so
/// this is pure and testable; the caller reads the clock.
public struct TokenBucket: Sendable {
    public let ratePerSecond: Int
    public let capacity: Int
    private var tokens: Double
    private var updatedAtMillis: Int64

    public init(ratePerSecond: Int, capacity: Int, nowMillis: Int64) {
        self.ratePerSecond = ratePerSecond
        self.capacity = capacity
        tokens = Double(capacity)
        updatedAtMillis = nowMillis
    }

    /// Takes one token if there is one. A clock that steps back adds nothing
    /// (the elapsed time counts as zero) rather than draining the bucket.
    public mutating func take(nowMillis: Int64) -> Bool { take(1, nowMillis: nowMillis) }

    /// Takes `count` tokens if there are that many (a byte budget draws a
    /// frame's size at once); takes nothing otherwise.
    public mutating func take(_ count: Int, nowMillis: Int64) -> Bool {
        let elapsed = max(0, nowMillis - updatedAtMillis)
        tokens = min(Double(capacity), tokens + Double(elapsed) * Double(ratePerSecond) / 1000)
        updatedAtMillis = max(updatedAtMillis, nowMillis)
        guard tokens >= Double(count) else { return false }
        tokens -= Double(count)
        return true
    }
}
