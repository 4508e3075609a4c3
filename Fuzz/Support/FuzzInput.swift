// Shared by every target in Fuzz/Targets: compiled into each fuzzer binary
// beside its one target file (scripts/fuzz.sh). Standard library only.

/// A fuzz input read front to back: choices (split points, modes, lengths)
/// come from its first bytes and the payload is what remains, so libFuzzer's
/// mutations steer both. Reading past the end gives zeros and empty arrays,
/// never a trap: every input is a valid test case.
struct FuzzInput {
    let bytes: [UInt8]
    private(set) var index = 0

    init(_ data: UnsafeRawPointer, _ size: Int) {
        bytes = Array(UnsafeRawBufferPointer(start: data, count: size))
    }

    var isEmpty: Bool { index >= bytes.count }
    var remaining: Int { bytes.count - index }

    mutating func byte() -> UInt8 {
        guard index < bytes.count else { return 0 }
        defer { index += 1 }
        return bytes[index]
    }

    /// Two bytes, big-endian.
    mutating func uint16() -> Int { Int(byte()) << 8 | Int(byte()) }

    mutating func take(_ count: Int) -> [UInt8] {
        let end = min(bytes.count, index + max(0, count))
        defer { index = end }
        return Array(bytes[index..<end])
    }

    /// Everything not yet read.
    mutating func rest() -> [UInt8] { take(remaining) }

    /// The input's remaining bytes as (up to `maxSplits` + 1) pieces whose
    /// lengths come from the front of the input: one byte says how many
    /// split points (0-maxSplits), one byte per point its distance (1-256)
    /// from the previous one. The last piece takes what is left.
    mutating func splitPayload(maxSplits: Int = 15) -> [[UInt8]] {
        let splits = Int(byte()) % (maxSplits + 1)
        let lengths = (0..<splits).map { _ in Int(byte()) + 1 }
        let payload = rest()
        return pieces(of: payload, lengths: lengths)
    }
}

/// `bytes` cut after each of `lengths` (in order), plus the rest as the last piece.
func pieces(of bytes: [UInt8], lengths: [Int]) -> [[UInt8]] {
    var out: [[UInt8]] = []
    var start = 0
    for length in lengths where start < bytes.count {
        let end = min(bytes.count, start + length)
        out.append(Array(bytes[start..<end]))
        start = end
    }
    out.append(Array(bytes[start...]))
    return out
}

/// Traps with `message` when a property the target checks does not hold:
/// libFuzzer records the input as a crash.
func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() { fatalError("fuzz property violated: \(message())") }
}

/// Bytes as printable text for a failure message (short).
func describe(_ bytes: [UInt8]) -> String {
    String(decoding: bytes.prefix(200), as: UTF8.self).debugDescription + (bytes.count > 200 ? "... (\(bytes.count) bytes)" : "")
}
