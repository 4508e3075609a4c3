import Synchronization

/// Where the engine and its timers read time: the wall clock (timestamps on
/// the wire, due times in the store, token expiry) and a monotonic clock
/// (intervals and deadlines that must not jump when the wall clock is set).
/// Injected (`ServerConfig.clock`), so the engine's rules can be tested with
/// time that moves only when a test says (`ManualTimeSource`): an SLA
/// breach an hour away is one `advance` call, not an hour.
public protocol TimeSource: Sendable {
    /// Unix milliseconds.
    func wallMillis() -> Int64
    /// Milliseconds since an arbitrary start; never goes back.
    func monotonicMillis() -> Int64
    /// The same in microseconds, for measuring short durations (a commit).
    func monotonicMicros() -> Int
}

/// This machine's clocks (`clock_gettime`, Clock.swift).
public struct SystemTimeSource: TimeSource {
    public init() {}
    public func wallMillis() -> Int64 { wallClockMillis() }
    public func monotonicMillis() -> Int64 { PeekCore.monotonicMillis() }
    public func monotonicMicros() -> Int { PeekCore.monotonicMicros() }
}

/// Time that moves only when told (tests): both clocks advance together.
/// Safe from any thread.
public final class ManualTimeSource: TimeSource {
    private struct Now { var wall: Int64; var monotonic: Int64 }
    private let now: Mutex<Now>

    /// `wallMillis`: where the wall clock starts (Unix ms); the monotonic
    /// clock starts at an arbitrary 1,000,000 ms.
    public init(wallMillis: Int64 = 1_800_000_000_000) {
        now = Mutex(Now(wall: wallMillis, monotonic: 1_000_000))
    }

    public func wallMillis() -> Int64 { now.withLock { $0.wall } }
    public func monotonicMillis() -> Int64 { now.withLock { $0.monotonic } }
    public func monotonicMicros() -> Int { Int(now.withLock { $0.monotonic }) * 1000 }

    /// Moves both clocks forward by `millis` (never back).
    public func advance(millis: Int64) {
        precondition(millis >= 0, "time does not go back")
        now.withLock { $0.wall += millis; $0.monotonic += millis }
    }

    public func advance(seconds: Int64) { advance(millis: seconds * 1000) }
}
