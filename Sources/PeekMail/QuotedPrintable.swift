/// Quoted-Printable (RFC 2045 §6.7) for message bodies.
public enum QuotedPrintable {
    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    /// Encodes `bytes`, whose line breaks must already be CRLF; each CRLF stays a hard
    /// break. Output lines are at most 76 characters, soft breaks (`=` CRLF) included.
    /// Escaped: `=`, every byte outside printable ASCII except tab and space, and a
    /// space or tab that ends a line (transports strip trailing whitespace).
    public static func encode(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + bytes.count / 8)
        var lineStart = 0
        var i = 0
        while i <= bytes.count {
            if i == bytes.count || (bytes[i] == 13 && i + 1 < bytes.count && bytes[i + 1] == 10) {
                encodeLine(bytes[lineStart..<i], into: &out)
                if i == bytes.count { break }
                out += [13, 10]
                i += 2
                lineStart = i
            } else {
                i += 1
            }
        }
        return out
    }

    private static func encodeLine(_ line: ArraySlice<UInt8>, into out: inout [UInt8]) {
        var column = 0
        var index = line.startIndex
        while index < line.endIndex {
            let byte = line[index]
            let isLast = index == line.endIndex - 1
            let literal: Bool
            switch byte {
            case 32, 9: literal = !isLast
            case 33...60, 62...126: literal = true
            default: literal = false
            }
            let width = literal ? 1 : 3
            // Keep one column for the soft break's "=" unless this is the line's last token.
            if column + width > (isLast ? 76 : 75) {
                out += [UInt8(ascii: "="), 13, 10]
                column = 0
            }
            if literal {
                out.append(byte)
            } else {
                out += [UInt8(ascii: "="), hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 15)]]
            }
            column += width
            index += 1
        }
    }

    /// Decodes QP leniently: soft breaks with CRLF or bare LF, hex in either case, and
    /// an `=` not followed by two hex digits kept as it is (RFC 2045 §6.7 note 1)
    /// rather than failing the message. Trailing whitespace before a line break is
    /// dropped, as the RFC says it was added in transport.
    public static func decode(_ bytes: some Collection<UInt8>) -> [UInt8] {
        ParseBudget.unbounded { budget throws(InboundMailError) in try decode(bytes, budget: budget) }
    }

    /// `decode(_:)` for inbound mail, consulting `budget` as it goes. Linear: every
    /// step moves past what it looked at.
    static func decode(_ bytes: some Collection<UInt8>, budget: ParseBudget) throws(InboundMailError) -> [UInt8] {
        let input = Array(bytes)
        var out: [UInt8] = []
        out.reserveCapacity(input.count)
        var i = 0
        var steps = 0
        while i < input.count {
            try budget.check(at: steps)
            steps += 1
            let byte = input[i]
            if byte == UInt8(ascii: "=") {
                // Soft line break: "=" then optional whitespace then CRLF or LF.
                var j = i + 1
                while j < input.count && (input[j] == 32 || input[j] == 9) { j += 1 }
                if j < input.count && input[j] == 10 { i = j + 1; continue }
                if j + 1 < input.count && input[j] == 13 && input[j + 1] == 10 { i = j + 2; continue }
                if j == input.count { i = j; continue }
                if i + 2 < input.count, let high = hexValue(input[i + 1]), let low = hexValue(input[i + 2]) {
                    out.append(high << 4 | low)
                    i += 3
                    continue
                }
                out.append(byte)
                i += 1
            } else if byte == 32 || byte == 9 {
                var j = i
                while j < input.count && (input[j] == 32 || input[j] == 9) { j += 1 }
                let atLineEnd = j == input.count || input[j] == 10 || (input[j] == 13 && j + 1 < input.count && input[j + 1] == 10)
                if !atLineEnd { out.append(contentsOf: input[i..<j]) }
                i = j
            } else {
                out.append(byte)
                i += 1
            }
        }
        return out
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        default: nil
        }
    }
}
