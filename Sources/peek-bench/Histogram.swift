/// Log-linear latency histogram (HdrHistogram's idea, wsload's layout): 64
/// linear buckets per power of two, so every value is kept to ~1.6% with a
/// fixed 30 KiB and an O(1) add on the delivery path.
struct Histogram {
    static let subBuckets = 64
    static let bucketCount = subBuckets + 58 * subBuckets

    private var buckets = [UInt64](repeating: 0, count: Histogram.bucketCount)
    private(set) var count: UInt64 = 0
    private(set) var max: UInt64 = 0
    private(set) var sum: Double = 0

    @inline(__always)
    static func index(_ v: UInt64) -> Int {
        if v < UInt64(subBuckets) { return Int(v) }
        let e = 63 - v.leadingZeroBitCount   // >= 6
        let m = Int((v >> UInt64(e - 6)) & UInt64(subBuckets - 1))
        return Swift.min(subBuckets + (e - 6) * subBuckets + m, bucketCount - 1)
    }

    /// The midpoint of bucket `i`.
    static func value(_ i: Int) -> UInt64 {
        if i < subBuckets { return UInt64(i) }
        let e = (i - subBuckets) / subBuckets + 6
        let m = (i - subBuckets) % subBuckets
        let low = UInt64(subBuckets + m) << UInt64(e - 6)
        return low + (UInt64(1) << UInt64(e - 6)) / 2
    }

    @inline(__always)
    mutating func add(_ v: UInt64) {
        buckets[Self.index(v)] &+= 1
        count &+= 1
        sum += Double(v)
        if v > max { max = v }
    }

    /// The value at percentile `p` (0...100); 0 when empty.
    func percentile(_ p: Double) -> UInt64 {
        guard count > 0 else { return 0 }
        let rank = Swift.max(1, UInt64((p / 100 * Double(count)).rounded(.up)))
        var seen: UInt64 = 0
        for i in 0..<Self.bucketCount {
            seen += buckets[i]
            if seen >= rank { return Swift.min(Self.value(i), max) }
        }
        return max
    }

    var mean: Double { count > 0 ? sum / Double(count) : 0 }
}
