/// The threading keys replies and inbound mail share: the `[#1042]` subject tag and
/// Message-IDs.
public enum MailThreading {
    /// `Re: <subject> [#<number>]`. An existing `Re:` prefix (any case, repeated, or
    /// `RE[2]:`) becomes a single `Re: `, and the tag is not added again when the
    /// subject already carries it, so a long thread keeps one clean subject.
    public static func taggedSubject(_ subject: String, ticketNumber: Int) -> String {
        var rest = Substring(HeaderFolding.singleLine(subject).trimmingSpaces())
        while let stripped = droppingReplyPrefix(rest) { rest = stripped }
        let tag = "[#\(ticketNumber)]"
        var result = "Re: " + rest
        if !rest.contains(tag) { result += rest.isEmpty ? tag : " " + tag }
        return result
    }

    /// The number in the first `[#<digits>]` of `subject`; nil when there is none or it
    /// does not fit an Int.
    public static func ticketNumber(fromSubject subject: String) -> Int? {
        var search = Substring(subject)
        while let open = search.firstRange(of: "[#") {
            let after = search[open.upperBound...]
            let digits = after.prefix(while: { $0.isASCII && $0.isNumber })
            if !digits.isEmpty, digits.endIndex < after.endIndex, after[digits.endIndex] == "]",
               let number = Int(digits) {
                return number
            }
            search = after
        }
        return nil
    }

    /// The Message-IDs a reply's `References` carries: the thread's first and
    /// its newest, at most `limit` in all (RFC 5322 §3.6.4 lets a long list be
    /// shortened; the root and the latest are what clients thread by). Every id
    /// of a long ticket would make a header no inbound parser keeps, ours
    /// included (64 KiB per field), and the customer's answer would be refused.
    public static func replyReferences(_ thread: [String], limit: Int = 20) -> [String] {
        guard thread.count > limit, limit > 0 else { return thread }
        return [thread[0]] + thread.suffix(limit - 1)
    }

    /// A Message-ID without its angle brackets and surrounding space; nil unless it is
    /// `left@right` in printable ASCII without spaces or brackets.
    public static func bareMessageID(_ id: String) -> String? {
        var text = Substring(id.trimmingSpaces())
        if text.hasPrefix("<") && text.hasSuffix(">") && text.count >= 2 { text = text.dropFirst().dropLast() }
        guard !text.isEmpty, text.utf8.count <= 998,
              text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "<") && $0 != UInt8(ascii: ">") }),
              let at = text.firstIndex(of: "@"), at != text.startIndex, text.index(after: at) != text.endIndex
        else { return nil }
        return String(text)
    }

    /// "Re:", "RE:", "re :", "Re[2]:" and the like at the start of `subject`, with the
    /// space after it; nil when there is none.
    private static func droppingReplyPrefix(_ subject: Substring) -> Substring? {
        guard subject.count >= 3, subject.prefix(2).lowercased() == "re" else { return nil }
        var rest = subject.dropFirst(2)
        if rest.first == "[" {
            let digits = rest.dropFirst().prefix(while: { $0.isASCII && $0.isNumber })
            let afterDigits = rest.dropFirst(1 + digits.count)
            guard !digits.isEmpty, afterDigits.first == "]" else { return nil }
            rest = afterDigits.dropFirst()
        }
        while rest.first == " " { rest = rest.dropFirst() }
        guard rest.first == ":" else { return nil }
        return rest.dropFirst().drop(while: { $0 == " " })
    }
}
