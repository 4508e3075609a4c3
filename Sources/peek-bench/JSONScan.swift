/// A top-level scanner for server frames: finds `type`, `id`, `ticket`, `ok`,
/// `seq` and `code` without building values, and stops as soon as a delta's
/// type, ticket and seq are known (its `data` can be large and is only
/// searched for the generator's marker). Not a validator: the server's JSON
/// is checked by the project's own tests; here speed decides how much load
/// one generator thread can apply.
struct JSONScan {
    /// Byte ranges (start, length) into the message; start -1 = absent.
    /// String values exclude their quotes; others are the raw token.
    var type = (-1, 0), id = (-1, 0), ticket = (-1, 0), ok = (-1, 0), seq = (-1, 0), code = (-1, 0)
    /// Where scanning stopped.
    var stop = 0

    /// nil when the message is not a JSON object.
    static func scan(_ p: UnsafePointer<UInt8>, _ n: Int) -> JSONScan? {
        var r = JSONScan()
        var i = skipSpace(p, n, 0)
        guard i < n, p[i] == UInt8(ascii: "{") else { return nil }
        i += 1
        while true {
            i = skipSpace(p, n, i)
            guard i < n else { return nil }
            if p[i] == UInt8(ascii: "}") { r.stop = i; return r }
            guard p[i] == UInt8(ascii: "\"") else { return nil }
            let keyStart = i + 1
            i = skipString(p, n, i)
            let keyLength = i - 1 - keyStart
            i = skipSpace(p, n, i)
            guard i < n, p[i] == UInt8(ascii: ":") else { return nil }
            i = skipSpace(p, n, i + 1)
            let valueStart = i
            i = skipValue(p, n, i)
            let value: (Int, Int) = valueStart < n && p[valueStart] == UInt8(ascii: "\"")
                ? (valueStart + 1, max(0, i - valueStart - 2)) : (valueStart, i - valueStart)
            switch keyLength {
            case 4 where equals(p + keyStart, 4, "type"): r.type = value
            case 4 where equals(p + keyStart, 4, "code"): r.code = value
            case 2 where equals(p + keyStart, 2, "id"): r.id = value
            case 2 where equals(p + keyStart, 2, "ok"): r.ok = value
            case 6 where equals(p + keyStart, 6, "ticket"): r.ticket = value
            case 3 where equals(p + keyStart, 3, "seq"): r.seq = value
            default: break
            }
            r.stop = i
            if r.type.0 >= 0 && r.ticket.0 >= 0 && r.seq.0 >= 0 && r.type.1 == 5 && equals(p + r.type.0, 5, "delta") { return r }
            i = skipSpace(p, n, i)
            if i < n && p[i] == UInt8(ascii: ",") { i += 1; continue }
            return r
        }
    }

    @inline(__always)
    static func equals(_ p: UnsafePointer<UInt8>, _ n: Int, _ literal: StaticString) -> Bool {
        n == literal.utf8CodeUnitCount && memcmp(p, literal.utf8Start, n) == 0
    }

    @inline(__always)
    static func `is`(_ p: UnsafePointer<UInt8>, _ range: (Int, Int), _ literal: StaticString) -> Bool {
        range.0 >= 0 && equals(p + range.0, range.1, literal)
    }

    @inline(__always)
    static func skipSpace(_ p: UnsafePointer<UInt8>, _ n: Int, _ start: Int) -> Int {
        var i = start
        while i < n, p[i] == 0x20 || p[i] == 0x0A || p[i] == 0x0D || p[i] == 0x09 { i += 1 }
        return i
    }

    /// `i` at the opening quote; returns the index after the closing one.
    @inline(__always)
    static func skipString(_ p: UnsafePointer<UInt8>, _ n: Int, _ start: Int) -> Int {
        var i = start + 1
        while i < n {
            let c = p[i]
            if c == UInt8(ascii: "\\") { i += 2; continue }
            if c == UInt8(ascii: "\"") { return i + 1 }
            i += 1
        }
        return n
    }

    static func skipValue(_ p: UnsafePointer<UInt8>, _ n: Int, _ start: Int) -> Int {
        var i = start
        guard i < n else { return n }
        let c = p[i]
        if c == UInt8(ascii: "\"") { return skipString(p, n, i) }
        if c == UInt8(ascii: "{") || c == UInt8(ascii: "[") {
            var depth = 0
            while i < n {
                let ch = p[i]
                if ch == UInt8(ascii: "\"") { i = skipString(p, n, i); continue }
                if ch == UInt8(ascii: "{") || ch == UInt8(ascii: "[") { depth += 1 }
                else if ch == UInt8(ascii: "}") || ch == UInt8(ascii: "]") {
                    depth -= 1
                    if depth == 0 { return i + 1 }
                }
                i += 1
            }
            return n
        }
        while i < n {
            let ch = p[i]
            if ch == UInt8(ascii: ",") || ch == UInt8(ascii: "}") || ch == UInt8(ascii: "]") || ch == 0x20 || ch == 0x0A || ch == 0x0D || ch == 0x09 { break }
            i += 1
        }
        return i
    }

    /// Leading decimal digits of p[start..<end] and where they stopped.
    @inline(__always)
    static func number(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> (UInt64, Int) {
        var v: UInt64 = 0
        var i = start
        while i < end, p[i] >= 0x30, p[i] <= 0x39 {
            v = v &* 10 &+ UInt64(p[i] - 0x30)
            i += 1
        }
        return (v, i)
    }

    /// First "pkb:" in p[start..<end]: the generator's marker in a note body.
    static func marker(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Int? {
        var i = start
        while i + 4 <= end {
            guard let hit = memchr(p + i, Int32(UInt8(ascii: "p")), end - i - 3) else { return nil }
            let j = UnsafePointer<UInt8>(hit.assumingMemoryBound(to: UInt8.self)) - p
            if p[j + 1] == UInt8(ascii: "k") && p[j + 2] == UInt8(ascii: "b") && p[j + 3] == UInt8(ascii: ":") { return j }
            i = j + 1
        }
        return nil
    }
}

#if canImport(Glibc)
import Glibc
#endif
