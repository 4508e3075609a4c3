/// A structured MIME header value: `text/plain; charset="utf-8"; format=flowed`.
struct MIMEHeaderValue: Sendable, Equatable {
    /// Lowercased: `text/plain`, `attachment`.
    var value: String
    /// Lowercased names; RFC 2231 continuations and charsets resolved.
    var parameters: [String: String]

    init(_ text: String) {
        let pieces = Self.splitOutsideQuotes(text)
        value = (pieces.first ?? "").trimmingSpaces().lowercased()
        parameters = Self.parameters(pieces.dropFirst())
    }

    var type: String { String(value.split(separator: "/").first ?? "") }

    /// Splits at ";" outside double quotes, dropping (comments).
    private static func splitOutsideQuotes(_ text: String) -> [String] {
        var pieces: [String] = []
        var current = ""
        var inQuotes = false
        var commentDepth = 0
        var escaped = false
        for character in text {
            if escaped {
                current.append(character)
                escaped = false
                continue
            }
            if inQuotes {
                if character == "\\" { escaped = true }
                if character == "\"" { inQuotes = false }
                current.append(character)
                continue
            }
            switch character {
            case "\"" where commentDepth == 0: inQuotes = true; current.append(character)
            case "(": commentDepth += 1
            case ")" where commentDepth > 0: commentDepth -= 1
            case ";" where commentDepth == 0: pieces.append(current); current = ""
            default: if commentDepth == 0 { current.append(character) }
            }
        }
        pieces.append(current)
        return pieces
    }

    private static func parameters(_ pieces: ArraySlice<String>) -> [String: String] {
        var simple: [String: String] = [:]
        // RFC 2231: name*=, name*0=, name*0*=, name*1*= ...
        var sections: [String: [(index: Int, extended: Bool, value: String)]] = [:]
        for piece in pieces {
            guard let equals = piece.firstIndex(of: "=") else { continue }
            let name = piece[..<equals].trimmingSpaces().lowercased()
            guard !name.isEmpty else { continue }
            let value = unquote(piece[piece.index(after: equals)...].trimmingSpaces())
            if let star = name.firstIndex(of: "*") {
                let base = String(name[..<star])
                let rest = name[name.index(after: star)...]
                if rest.isEmpty {
                    sections[base, default: []].append((0, true, value))
                } else {
                    let extended = rest.hasSuffix("*")
                    guard let index = Int(extended ? rest.dropLast() : rest), index >= 0, index < 1000 else { continue }
                    sections[base, default: []].append((index, extended, value))
                }
            } else if simple[name] == nil {
                simple[name] = value
            }
        }
        var result = simple
        for (name, parts) in sections {
            var bytes: [UInt8] = []
            var charset: String?
            for (position, part) in parts.sorted(by: { $0.index < $1.index }).enumerated() {
                var text = Substring(part.value)
                if part.extended && position == 0 {
                    // charset'language'value
                    let quotes = text.split(separator: "'", maxSplits: 2, omittingEmptySubsequences: false)
                    if quotes.count == 3 {
                        charset = quotes[0].isEmpty ? nil : String(quotes[0])
                        text = quotes[2]
                    }
                }
                bytes += part.extended ? percentDecoded(text) : Array(text.utf8)
            }
            result[name] = MailCharset.decode(bytes, charset: charset)
        }
        return result
    }

    private static func unquote(_ text: String) -> String {
        guard text.count >= 2, text.first == "\"", text.last == "\"" else { return text }
        var out = ""
        var escaped = false
        for character in text.dropFirst().dropLast() {
            if escaped || character != "\\" {
                out.append(character)
                escaped = false
            } else {
                escaped = true
            }
        }
        return out
    }

    private static func percentDecoded(_ text: Substring) -> [UInt8] {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%"), i + 2 < bytes.count,
               let high = QuotedPrintable.hexValue(bytes[i + 1]), let low = QuotedPrintable.hexValue(bytes[i + 2]) {
                out.append(high << 4 | low)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return out
    }
}
