/// Writing header fields within RFC 5322's 78-column recommendation (§2.1.1).
enum HeaderFolding {
    static let lineLength = 78

    /// `Name: t1 t2 ...` with a fold (CRLF plus one space) before a token that would pass
    /// column 78. `punctuation` goes after every token but the last (";" between MIME
    /// parameters). A token longer than a line is left whole: a fold may only replace
    /// whitespace, and an over-long line beats a broken token.
    static func field(_ name: String, _ tokens: [String], punctuation: String = "") -> String {
        var out = name + ":"
        var column = out.utf8.count
        for (index, token) in tokens.enumerated() {
            let separator = index == 0 ? " " : punctuation + " "
            let width = separator.utf8.count + token.utf8.count
            if index > 0 && !token.isEmpty && column + width > lineLength {
                out += punctuation + "\r\n " + token
                column = 1 + token.utf8.count
            } else {
                out += separator + token
                column += width
            }
        }
        return out + "\r\n"
    }

    /// Unstructured text (Subject): kept as ASCII words when it is plain printable ASCII
    /// and every word fits a line, else encoded words sized so that each line,
    /// `Name: ` included, stays within 78 columns.
    static func unstructured(_ name: String, _ text: String) -> String {
        let clean = singleLine(text)
        let words = clean.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        let plain = clean.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
            && !clean.contains("=?")
            && words.allSatisfy { $0.utf8.count <= lineLength - 1 - name.utf8.count - 2 }
        if plain { return field(name, words) }
        return field(name, EncodedWord.encode(clean, firstWordLength: lineLength - name.utf8.count - 2,
                                              wordLength: lineLength - 1))
    }

    /// CR, LF and tab become spaces: a header value is one logical line, and a raw CRLF
    /// in a subject or name would start a new header (header injection).
    static func singleLine(_ text: String) -> String {
        String(text.unicodeScalars.map { scalar -> Character in
            switch scalar.value {
            case 0x0A, 0x0D, 0x09: " "
            case 0x00..<0x20, 0x7F: "\u{FFFD}"
            default: Character(scalar)
            }
        })
    }

    /// `Name <address>` (or the bare address without a name) as header tokens: the name as an atom phrase, a quoted string,
    /// or encoded words when it is not ASCII.
    static func mailboxTokens(_ mailbox: MailAddress, headerName: String) -> [String] {
        let angle = "<\(mailbox.address)>"
        let name = singleLine(mailbox.name ?? "").trimmingSpaces()
        guard !name.isEmpty else { return [mailbox.address] }
        let isASCII = name.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
        if isASCII && !name.contains("=?") && name.utf8.count <= 60 {
            if name.utf8.allSatisfy(isPhraseByte) {
                return name.split(separator: " ").map(String.init) + [angle]
            }
            var quoted = "\""
            for character in name {
                if character == "\"" || character == "\\" { quoted.append("\\") }
                quoted.append(character)
            }
            return [quoted + "\""] + [angle]
        }
        let words = EncodedWord.encode(name, firstWordLength: lineLength - headerName.utf8.count - 2,
                                       wordLength: lineLength - 1)
        return words + [angle]
    }

    /// atext (RFC 5322 §3.2.3) and the space between atoms.
    private static func isPhraseByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: " "):
            return true
        default:
            return "!#$%&'*+-/=?^_`{|}~".utf8.contains(byte)
        }
    }

    /// A MIME parameter (RFC 2045 §5.1, RFC 2231 §3-4) as one or more header tokens:
    /// `name="value"` for short printable ASCII, otherwise `name*=utf-8''percent%20encoded`,
    /// split into `name*0*=`, `name*1*=` ... continuations when it would not fit a line.
    static func parameterTokens(_ name: String, _ value: String) -> [String] {
        let isPlain = value.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
        if isPlain {
            var quoted = "\""
            for character in value {
                if character == "\"" || character == "\\" { quoted.append("\\") }
                quoted.append(character)
            }
            quoted += "\""
            if name.utf8.count + 1 + quoted.utf8.count <= lineLength - 2 { return ["\(name)=\(quoted)"] }
        }
        var encoded: [String] = []
        for byte in value.utf8 {
            if isAttributeChar(byte) {
                encoded.append(String(UnicodeScalar(byte)))
            } else {
                encoded.append("%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2))
            }
        }
        let whole = "\(name)*=utf-8''" + encoded.joined()
        if whole.utf8.count <= lineLength - 2 { return [whole] }
        var tokens: [String] = []
        var current = ""
        var section = 0
        func header(_ section: Int) -> String { section == 0 ? "\(name)*0*=utf-8''" : "\(name)*\(section)*=" }
        for piece in encoded {
            if !current.isEmpty && header(section).utf8.count + current.utf8.count + piece.utf8.count > lineLength - 3 {
                tokens.append(header(section) + current)
                section += 1
                current = ""
            }
            current += piece
        }
        tokens.append(header(section) + current)
        return tokens
    }

    /// RFC 2231 attribute-char: printable ASCII except space, "*", "'", "%" and tspecials.
    private static func isAttributeChar(_ byte: UInt8) -> Bool {
        guard byte > 0x20 && byte < 0x7F else { return false }
        return !"*'%()<>@,;:\\\"/[]?=".utf8.contains(byte)
    }
}
