/// One publishing connection (a technician posting notes, or an agent
/// posting chat) and its window of notes in flight.
///
/// Note numbers `g` are 1-based and per publisher; slot `g % window` holds
/// how many viewers still have to receive note `g` and when it was sent. A
/// note is "in flight" until every viewer has it (window mode `delivered`,
/// the default: closed-loop fan-out) or until its `result` (mode `ack`).
final class Publisher {
    let index: Int
    let connection: Int
    /// Ticket indexes this publisher posts to, round-robin, with a counter each.
    let tickets: [Int]
    var counters: [UInt32]
    var next = 0
    var sent: UInt64 = 0
    /// Oldest note not yet delivered to every viewer.
    var base: UInt64 = 1
    /// Results and errors received (errors also end a note's flight).
    var acked: UInt64 = 0
    var failed: UInt64 = 0
    var remaining: [Int32]
    var sentAt: [UInt64]
    var nextDue: UInt64 = 0
    var interval: UInt64 = 0
    var nextTelemetryDue: UInt64 = 0
    var telemetryInterval: UInt64 = 0
    var dirty = false

    init(index: Int, connection: Int, tickets: [Int], window: Int, rate: Double) {
        self.index = index
        self.connection = connection
        self.tickets = tickets
        counters = [UInt32](repeating: 0, count: tickets.count)
        remaining = [Int32](repeating: 0, count: window)
        sentAt = [UInt64](repeating: 0, count: window)
        interval = rate > 0 ? UInt64(1e9 / rate) : 0
    }

    func outstanding(ackMode: Bool) -> UInt64 {
        ackMode ? sent - acked : sent + 1 - base
    }

    /// Moves `base` past notes every viewer has.
    func advance() {
        let w = UInt64(remaining.count)
        while base <= sent && remaining[Int(base % w)] <= 0 { base += 1 }
    }
}

/// Appends to a caller-sized raw buffer: the note frames are built without
/// a single allocation per note.
struct ByteWriter {
    let base: UnsafeMutablePointer<UInt8>
    var count = 0

    init(_ base: UnsafeMutableRawPointer) { self.base = base.assumingMemoryBound(to: UInt8.self) }

    @inline(__always)
    mutating func append(_ s: StaticString) {
        (base + count).update(from: s.utf8Start, count: s.utf8CodeUnitCount)
        count += s.utf8CodeUnitCount
    }

    @inline(__always)
    mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { (base + count).update(from: $0.baseAddress!, count: $0.count) }
        count += bytes.count
    }

    @inline(__always)
    mutating func append(byte: UInt8, repeating n: Int) {
        guard n > 0 else { return }
        (base + count).update(repeating: byte, count: n)
        count += n
    }

    @inline(__always)
    mutating func append(decimal v: UInt64) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)   // 24 bytes of room
        var n = 0
        var x = v
        withUnsafeMutableBytes(of: &digits) { raw in
            repeat {
                raw[23 - n] = UInt8(x % 10) + 0x30
                x /= 10
                n += 1
            } while x > 0
            (base + count).update(from: raw.baseAddress!.assumingMemoryBound(to: UInt8.self) + 24 - n, count: n)
        }
        count += n
    }
}
