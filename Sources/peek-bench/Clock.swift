#if canImport(Glibc)
import Glibc
#endif

/// Monotonic nanoseconds: latencies are differences of this, taken in one process.
@inline(__always)
func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

func seconds(since start: UInt64) -> Double { Double(monotonicNanos() &- start) / 1e9 }

/// xorshift64: masking keys and WebSocket keys need to vary, not to be secret
/// (RFC 6455 wants unpredictability against proxies; a benchmark on loopback has none).
struct FastRandom {
    private var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }
    @inline(__always)
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}
