/// Mailbox lists of From, To, Cc, Reply-To (RFC 5322 §3.4), as mail clients really
/// write them: `"Pérez, Ana" <ana@x>`, `Ana <ana@x>`, `ana@x (Ana)`, `ana@x`, groups
/// (`Team: a@x, b@x;`), encoded-word names, and encoded words inside quotes (not
/// allowed by RFC 2047, sent anyway by several clients).
///
/// Linear in the field: every branch consumes at least one scalar, and an unterminated
/// quote, comment or angle address runs to the end of the field. More than
/// `maxAddressesPerField` mailboxes, or a display name with more than
/// `maxEncodedWordsPerField` encoded words, refuses the message.
enum MailAddressParser {
    static func parseList(_ text: String, limits: InboundMailLimits = .standard) throws(InboundMailError) -> [MailAddress] {
        var mailboxes: [MailAddress] = []
        var phrase: [String] = []
        var angle: String?
        var comment: String?
        var bare = ""
        var scalars = Substring(text).unicodeScalars[...]

        func decoded(_ words: String) throws(InboundMailError) -> String {
            try EncodedWord.decode(words, maxWords: limits.maxEncodedWordsPerField).trimmingSpaces()
        }

        func finish() throws(InboundMailError) {
            defer {
                phrase = []
                angle = nil
                comment = nil
                bare = ""
            }
            let name = try decoded(phrase.joined(separator: " "))
            let commentName = try comment.map { text throws(InboundMailError) in try decoded(text) }
            let mailbox: MailAddress
            if let angle, let address = cleanAddress(angle) {
                mailbox = MailAddress(name: name.isEmpty ? commentName : name, address: address)
            } else if let address = cleanAddress(bare.isEmpty ? phrase.last(where: { $0.contains("@") }) ?? "" : bare) {
                mailbox = MailAddress(name: commentName?.isEmpty == false ? commentName : nil, address: address)
            } else {
                return
            }
            guard mailboxes.count < limits.maxAddressesPerField else {
                throw .tooManyAddresses(limit: limits.maxAddressesPerField)
            }
            mailboxes.append(mailbox)
        }

        while let scalar = scalars.first {
            switch scalar {
            case "\"":
                scalars = scalars.dropFirst()
                var word = ""
                while let next = scalars.first, next != "\"" {
                    scalars = scalars.dropFirst()
                    if next == "\\", let escaped = scalars.first {
                        word.unicodeScalars.append(escaped)
                        scalars = scalars.dropFirst()
                    } else {
                        word.unicodeScalars.append(next)
                    }
                }
                scalars = scalars.dropFirst()
                phrase.append(word)
            case "(":
                var depth = 0
                var text = ""
                while let next = scalars.first {
                    scalars = scalars.dropFirst()
                    if next == "\\", let escaped = scalars.first {
                        text.unicodeScalars.append(escaped)
                        scalars = scalars.dropFirst()
                        continue
                    }
                    if next == "(" { depth += 1; if depth == 1 { continue } }
                    if next == ")" { depth -= 1; if depth == 0 { break } }
                    text.unicodeScalars.append(next)
                }
                comment = text
            case "<":
                scalars = scalars.dropFirst()
                var address = ""
                while let next = scalars.first, next != ">" {
                    address.unicodeScalars.append(next)
                    scalars = scalars.dropFirst()
                }
                scalars = scalars.dropFirst()
                angle = address
            case ",", ";":
                scalars = scalars.dropFirst()
                try finish()
            case ":":
                scalars = scalars.dropFirst()
                // Before an angle address it ends a group's display name
                // ("undisclosed-recipients:"), which is not a mailbox; after one it is
                // stray punctuation and is skipped.
                if angle == nil {
                    phrase = []
                    bare = ""
                }
            case " ", "\t", "\r", "\n":
                scalars = scalars.dropFirst()
            default:
                // The first scalar is taken unconditionally, so this branch always makes
                // progress even on a scalar the stop set below would refuse.
                var word = String(scalar)
                scalars = scalars.dropFirst()
                while let next = scalars.first, !" \t\r\n\"(<,;:".unicodeScalars.contains(next) {
                    word.unicodeScalars.append(next)
                    scalars = scalars.dropFirst()
                }
                // "@" inside an unquoted run with no angle brackets is the address itself.
                if word.contains("@") && angle == nil && phrase.isEmpty { bare += word } else { phrase.append(word) }
            }
        }
        try finish()
        return mailboxes
    }

    /// The address without spaces or an obsolete source route ("@a,@b:ana@x"); nil
    /// unless it has a local part and a domain around an "@".
    private static func cleanAddress(_ raw: String) -> String? {
        var address = String(raw.unicodeScalars.filter { !$0.properties.isWhitespace })
        if address.hasPrefix("@"), let colon = address.firstIndex(of: ":") {
            address = String(address[address.index(after: colon)...])
        }
        guard let at = address.lastIndex(of: "@"), at != address.startIndex,
              address.index(after: at) != address.endIndex, address.utf8.count <= 320 else { return nil }
        return address
    }
}
