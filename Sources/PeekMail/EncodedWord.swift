import PeekCrypto

/// RFC 2047 encoded words: `=?UTF-8?B?Q2Fmw6k=?=`, for non-ASCII text in headers.
public enum EncodedWord {
    /// RFC 2047 §2: an encoded word is at most 75 characters.
    public static let maxWordLength = 75
    private static let prefix = "=?UTF-8?B?"
    private static let overhead = 12    // "=?UTF-8?B?" + "?="

    /// `text` as UTF-8 B-encoded words, the first at most `firstWordLength` characters
    /// long and the rest at most `wordLength`, so the caller can fold a header at 78
    /// columns between words. A word never ends inside a UTF-8 sequence: RFC 2047 §5
    /// requires each word to hold whole characters, since decoders may decode each
    /// word on its own.
    public static func encode(_ text: String, firstWordLength: Int = maxWordLength,
                              wordLength: Int = maxWordLength) -> [String] {
        var words: [String] = []
        var chunk: [UInt8] = []
        var limit = byteCapacity(firstWordLength)
        for scalar in text.unicodeScalars {
            let encoded = Array(String(scalar).utf8)
            if !chunk.isEmpty && chunk.count + encoded.count > limit {
                words.append(prefix + Base64.encode(chunk) + "?=")
                chunk = []
                limit = byteCapacity(wordLength)
            }
            chunk += encoded
        }
        if !chunk.isEmpty || words.isEmpty { words.append(prefix + Base64.encode(chunk) + "?=") }
        return words
    }

    /// How many bytes fit a word of `length` characters: whole base64 quanta of 3 bytes,
    /// and never fewer than 4, the longest UTF-8 character.
    private static func byteCapacity(_ length: Int) -> Int {
        max(4, (min(length, maxWordLength) - overhead) / 4 * 3)
    }

    /// Decodes every encoded word in `text` (B or Q, any charset `MailCharset` knows,
    /// an RFC 2231 `*language` suffix ignored). Whitespace between two adjacent encoded
    /// words is dropped (RFC 2047 §6.2), and adjacent words in one charset are joined
    /// before decoding, because many mailers split a character across two words.
    /// Anything that is not a well-formed encoded word stays as written.
    public static func decode(_ text: String) -> String {
        ParseBudget.unbounded { _ throws(InboundMailError) in try decode(text, maxWords: .max) }
    }

    /// `decode(_:)` for inbound mail: more than `maxWords` encoded words refuse the
    /// message (`.tooManyEncodedWords`) rather than leaving some undecoded, since no
    /// mailer writes a thousand words in one field and half-decoded text misleads.
    /// Linear: a run of words is gathered in one buffer and decoded once.
    static func decode(_ text: String, maxWords: Int) throws(InboundMailError) -> String {
        guard text.contains("=?") else { return text }
        let tokens = tokenize(Array(text.utf8))
        var wordCount = 0
        var result = ""
        var runCharset: String?
        var runBytes: [UInt8] = []

        func flush() {
            if let charset = runCharset { result += MailCharset.decode(runBytes, charset: charset) }
            runCharset = nil
            runBytes.removeAll(keepingCapacity: true)
        }

        for (index, token) in tokens.enumerated() {
            switch token {
            case .word(let charset, let bytes):
                wordCount += 1
                guard wordCount <= maxWords else { throw .tooManyEncodedWords(limit: maxWords) }
                if let current = runCharset, MailCharset.normalizedName(current) == MailCharset.normalizedName(charset) {
                    runBytes += bytes
                } else {
                    flush()
                    runCharset = charset
                    runBytes += bytes
                }
            case .space(let space):
                if runCharset != nil, index + 1 < tokens.count, case .word = tokens[index + 1] { continue }
                flush()
                result += space
            case .text(let literal):
                flush()
                result += literal
            }
        }
        flush()
        return result
    }

    private enum Token {
        case word(charset: String, bytes: [UInt8])
        case space(String)
        case text(String)
    }

    private static func tokenize(_ utf8: [UInt8]) -> [Token] {
        var tokens: [Token] = []
        func addLiteral(_ bytes: ArraySlice<UInt8>) {
            var start = bytes.startIndex
            while start < bytes.endIndex {
                let isSpace = isWhitespace(bytes[start])
                var end = start + 1
                while end < bytes.endIndex && isWhitespace(bytes[end]) == isSpace { end += 1 }
                let piece = String(decoding: bytes[start..<end], as: UTF8.self)
                tokens.append(isSpace ? .space(piece) : .text(piece))
                start = end
            }
        }
        var runStart = 0
        var i = 0
        while i + 1 < utf8.count {
            if utf8[i] == UInt8(ascii: "="), utf8[i + 1] == UInt8(ascii: "?"), let word = parseWord(utf8, at: i) {
                addLiteral(utf8[runStart..<i])
                tokens.append(.word(charset: word.charset, bytes: word.bytes))
                i = word.end
                runStart = i
            } else {
                i += 1
            }
        }
        addLiteral(utf8[runStart...])
        return tokens
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool { byte == 32 || byte == 9 || byte == 13 || byte == 10 }

    private struct ParsedWord {
        var charset: String
        var bytes: [UInt8]
        var end: Int
    }

    /// `=?charset?encoding?text?=` starting at `start`; nil when malformed.
    private static func parseWord(_ utf8: [UInt8], at start: Int) -> ParsedWord? {
        let question = UInt8(ascii: "?")
        var i = start + 2
        let charsetStart = i
        while i < utf8.count && utf8[i] != question && utf8[i] > 32 && utf8[i] < 127 { i += 1 }
        guard i < utf8.count, utf8[i] == question, i > charsetStart, i - charsetStart <= 40 else { return nil }
        var charset = String(decoding: utf8[charsetStart..<i], as: UTF8.self)
        if let star = charset.firstIndex(of: "*") { charset = String(charset[..<star]) }
        i += 1
        guard i + 1 < utf8.count, utf8[i + 1] == question else { return nil }
        let encoding = utf8[i] | 0x20
        guard encoding == UInt8(ascii: "b") || encoding == UInt8(ascii: "q") else { return nil }
        i += 2
        let textStart = i
        // Encoded text has no "?" and no whitespace (RFC 2047 §2), so the word ends at
        // the first "?=" and a space before it means this was not an encoded word.
        while i + 1 < utf8.count && !(utf8[i] == question && utf8[i + 1] == UInt8(ascii: "=")) {
            if utf8[i] == 32 || utf8[i] == 9 || utf8[i] == 10 || utf8[i] == 13 || utf8[i] == question { return nil }
            i += 1
        }
        guard i + 1 < utf8.count else { return nil }
        let encodedText = utf8[textStart..<i]
        let bytes: [UInt8]
        if encoding == UInt8(ascii: "b") {
            guard let decoded = Base64.decode(String(decoding: encodedText, as: UTF8.self)) else { return nil }
            bytes = decoded
        } else {
            bytes = decodeQ(encodedText)
        }
        return ParsedWord(charset: charset, bytes: bytes, end: i + 2)
    }

    /// The Q encoding: QP where "_" is a space (RFC 2047 §4.2).
    private static func decodeQ(_ text: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        var i = text.startIndex
        while i < text.endIndex {
            let byte = text[i]
            if byte == UInt8(ascii: "_") {
                out.append(32)
            } else if byte == UInt8(ascii: "="), i + 2 < text.endIndex,
                      let high = QuotedPrintable.hexValue(text[i + 1]), let low = QuotedPrintable.hexValue(text[i + 2]) {
                out.append(high << 4 | low)
                i += 3
                continue
            } else {
                out.append(byte)
            }
            i += 1
        }
        return out
    }
}
