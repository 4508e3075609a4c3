/// The `Sec-WebSocket-Extensions` grammar (RFC 6455 §9.1):
///
///     extension-list  = 1#extension
///     extension       = extension-token *( ";" extension-param )
///     extension-param = token [ "=" (token | quoted-string) ]
///
/// Parsed per comma-separated element, so one malformed offer is dropped without hiding the
/// offers after it. Quoted values are unescaped and must then be tokens (§9.1).
enum ExtensionHeader {
    struct Element: Equatable {
        var name: String
        var parameters: [(name: String, value: String?)]

        static func == (a: Element, b: Element) -> Bool {
            a.name == b.name && a.parameters.elementsEqual(b.parameters) { $0.name == $1.name && $0.value == $1.value }
        }
    }

    /// Well-formed elements of one header value, in order.
    static func parse(_ value: String) -> [Element] {
        var elements: [Element] = []
        var scanner = Scanner(Array(value.utf8))
        while !scanner.atEnd {
            if let element = scanner.element(), scanner.atElementEnd {
                elements.append(element)
            }
            scanner.skipElement()
        }
        return elements
    }

    private struct Scanner {
        let bytes: [UInt8]
        var i = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { i >= bytes.count }
        var atElementEnd: Bool {
            var j = i
            while j < bytes.count, bytes[j] == 0x20 || bytes[j] == 0x09 { j += 1 }
            return j >= bytes.count || bytes[j] == UInt8(ascii: ",")
        }

        mutating func skipSpace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 { i += 1 }
        }

        /// Moves past the next top-level comma (commas inside quotes do not count).
        mutating func skipElement() {
            var quoted = false
            while i < bytes.count {
                let c = bytes[i]
                i += 1
                if quoted {
                    if c == UInt8(ascii: "\\") { i += 1 } else if c == UInt8(ascii: "\"") { quoted = false }
                } else if c == UInt8(ascii: "\"") {
                    quoted = true
                } else if c == UInt8(ascii: ",") {
                    return
                }
            }
        }

        mutating func element() -> Element? {
            skipSpace()
            guard let name = token() else { return nil }
            var parameters: [(name: String, value: String?)] = []
            while true {
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: ";") else { break }
                i += 1
                skipSpace()
                guard let parameter = token() else { return nil }
                skipSpace()
                var value: String?
                if i < bytes.count, bytes[i] == UInt8(ascii: "=") {
                    i += 1
                    skipSpace()
                    guard let v = i < bytes.count && bytes[i] == UInt8(ascii: "\"") ? quotedToken() : token() else {
                        return nil
                    }
                    value = v
                }
                parameters.append((parameter, value))
            }
            return Element(name: name, parameters: parameters)
        }

        mutating func token() -> String? {
            let start = i
            while i < bytes.count, Self.isTokenByte(bytes[i]) { i += 1 }
            return i > start ? String(decoding: bytes[start..<i], as: UTF8.self) : nil
        }

        mutating func quotedToken() -> String? {
            i += 1  // opening quote
            var out: [UInt8] = []
            while i < bytes.count {
                var c = bytes[i]
                i += 1
                if c == UInt8(ascii: "\"") {
                    guard !out.isEmpty, out.allSatisfy(Self.isTokenByte) else { return nil }
                    return String(decoding: out, as: UTF8.self)
                }
                if c == UInt8(ascii: "\\") {
                    guard i < bytes.count else { return nil }
                    c = bytes[i]
                    i += 1
                }
                out.append(c)
            }
            return nil  // unterminated
        }

        /// tchar (RFC 9110 §5.6.2).
        static func isTokenByte(_ c: UInt8) -> Bool {
            switch c {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
                 UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
                 UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
                return true
            default:
                return false
            }
        }
    }
}
