/// Base64 bodies (RFC 2045 §6.8), bytes to bytes, consulting the parse budget as it
/// goes: the shared `Base64.decode` reads a String and cannot stop midway.
///
/// A clean body (either alphabet, folded lines, padding only at the end) decodes as
/// written. Anything else (a signature line, junk after the padding) is read again
/// keeping only the standard alphabet and whole 4-character groups, as mail clients do.
enum Base64Body {
    static func decode(_ body: ArraySlice<UInt8>, budget: ParseBudget) throws(InboundMailError) -> [UInt8] {
        if let clean = try decode(body, lenient: false, budget: budget) { return clean }
        return try decode(body, lenient: true, budget: budget) ?? []
    }

    private static let invalid: UInt8 = 0xFF
    private static let skipped: UInt8 = 0xFE
    private static let padding: UInt8 = 0xFD
    /// "-" and "_": base64url's 62 and 63, taken only from a clean body.
    private static let urlOnly: UInt8 = 0xFC

    private static let values: [UInt8] = {
        var table = [UInt8](repeating: invalid, count: 256)
        for (value, byte) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            table[Int(byte)] = UInt8(value)
        }
        for byte in [9, 10, 13, 32] { table[byte] = skipped }
        table[Int(UInt8(ascii: "="))] = padding
        table[Int(UInt8(ascii: "-"))] = urlOnly
        table[Int(UInt8(ascii: "_"))] = urlOnly
        return table
    }()

    /// nil when a clean read meets a byte outside the alphabet, or data after padding.
    private static func decode(_ body: ArraySlice<UInt8>, lenient: Bool, budget: ParseBudget)
        throws(InboundMailError) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(body.count / 4 * 3)
        var accumulator: UInt32 = 0
        var bits = 0
        var groupLength = 0
        var sawPadding = false
        for (offset, byte) in body.enumerated() {
            try budget.check(at: offset)
            var value = values[Int(byte)]
            if value == urlOnly { value = lenient ? invalid : (byte == UInt8(ascii: "-") ? 62 : 63) }
            if lenient {
                guard value < 64 else { continue }
            } else {
                if value == skipped { continue }
                if value == padding { sawPadding = true; continue }
                guard value < 64, !sawPadding else { return nil }
            }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            groupLength = (groupLength + 1) % 4
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        // A lenient read keeps whole groups only: 2 or 3 trailing characters made 1 or 2
        // bytes that a clean body would have padded.
        if lenient && groupLength > 1 { out.removeLast(groupLength - 1) }
        return out
    }
}
