/// Byte classes from RFC 9110 §5.6 and RFC 9112, shared by the parser, the
/// router and the static-file resolver. Everything here works on bytes, not
/// `Character`s, because the wire is bytes and grapheme breaking would let a
/// combining mark glue itself to a delimiter.
enum ASCII {
    static let lf: UInt8 = 0x0A
    static let cr: UInt8 = 0x0D
    static let space: UInt8 = 0x20
    static let tab: UInt8 = 0x09
    static let colon: UInt8 = 0x3A
    static let semicolon: UInt8 = 0x3B
    static let comma: UInt8 = 0x2C
    static let slash: UInt8 = 0x2F
    static let backslash: UInt8 = 0x5C
    static let question: UInt8 = 0x3F
    static let hash: UInt8 = 0x23
    static let percent: UInt8 = 0x25
    static let plus: UInt8 = 0x2B
    static let dot: UInt8 = 0x2E
    static let quote: UInt8 = 0x22
    static let equals: UInt8 = 0x3D
    static let ampersand: UInt8 = 0x26

    /// tchar (RFC 9110 §5.6.2): what methods, header names and transfer-coding names are made of.
    static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
             UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
             UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    static func isWhitespace(_ b: UInt8) -> Bool { b == space || b == tab }

    static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    static func lowercased(_ b: UInt8) -> UInt8 {
        (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z")) ? b | 0x20 : b
    }

    /// Header names and tokens compare case-insensitively in ASCII only (RFC 9110 §5.1);
    /// Unicode case folding would make "K" (Kelvin sign) equal "k".
    static func equalsIgnoringCase(_ a: some StringProtocol, _ b: some StringProtocol) -> Bool {
        var ia = a.utf8.makeIterator(), ib = b.utf8.makeIterator()
        while true {
            switch (ia.next(), ib.next()) {
            case (nil, nil): return true
            case (let x?, let y?) where lowercased(x) == lowercased(y): continue
            default: return false
            }
        }
    }

    static func trimmingWhitespace(_ s: Substring) -> Substring {
        var utf8 = s.utf8[...]
        while let f = utf8.first, isWhitespace(f) { utf8 = utf8.dropFirst() }
        while let l = utf8.last, isWhitespace(l) { utf8 = utf8.dropLast() }
        return Substring(utf8)
    }

    static func trimmingWhitespace(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var slice = bytes
        while let f = slice.first, isWhitespace(f) { slice = slice.dropFirst() }
        while let l = slice.last, isWhitespace(l) { slice = slice.dropLast() }
        return slice
    }
}

extension ASCII {
    /// scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) (RFC 3986 §3.1).
    static func isSchemeByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."):
            return true
        default:
            return false
        }
    }
}
