/// The text a part contributes, already plain; `isHTML` says it came from HTML so
/// multipart/alternative can prefer a real text/plain sibling.
struct BodyText: Sendable {
    var text: String
    var isHTML: Bool
}

/// Walks the MIME tree once, choosing the text and collecting attachments, within
/// `InboundMailLimits`: depth and part count (checked while a body is split), decoded
/// bytes and text bytes (counted over the whole message).
struct MIMEWalker {
    let limits: InboundMailLimits
    let budget: ParseBudget
    var attachments: [InboundAttachment] = []
    /// What the whole message has used so far; a multipart/alternative branch walks
    /// with its own attachments but the message's tally.
    private var tally = Tally()

    private struct Tally {
        var parts = 0
        var decodedBytes = 0
        var textBytes = 0
    }

    init(limits: InboundMailLimits, budget: ParseBudget) {
        self.limits = limits
        self.budget = budget
    }

    mutating func body(of header: MIMEHeaderSection, body: ArraySlice<UInt8>, depth: Int) throws(InboundMailError) -> BodyText? {
        tally.parts += 1
        guard tally.parts <= limits.maxParts else { throw .tooManyParts(limit: limits.maxParts) }
        guard depth <= limits.maxDepth else { throw .tooDeep(limit: limits.maxDepth) }
        try budget.check()

        let contentType = MIMEHeaderValue(header.value("content-type") ?? "text/plain")
        let disposition = header.value("content-disposition").map(MIMEHeaderValue.init)
        let filename = disposition?.parameters["filename"] ?? contentType.parameters["name"]
        let mediaType = contentType.value.isEmpty || !contentType.value.contains("/") ? "text/plain" : contentType.value

        if contentType.type == "multipart", let boundary = contentType.parameters["boundary"], !boundary.isEmpty {
            let bodies = try Self.split(body, boundary: boundary, partsBefore: tally.parts, limits: limits, budget: budget)
            var parts: [(header: MIMEHeaderSection, body: ArraySlice<UInt8>)] = []
            for part in bodies { parts.append(try MIMEHeaderSection.split(part, limits: limits, strictness: .part)) }
            return try multipart(mediaType, parts: parts, start: contentType.parameters["start"], depth: depth)
        }

        let isText = mediaType == "text/plain" || mediaType == "text/html" || contentType.type == "multipart"
        let isAttachment = disposition?.value == "attachment" || filename != nil
        if isText && !isAttachment {
            let decoded = try transferDecoded(body, encoding: header.value("content-transfer-encoding"))
            // Plain text is at least half the bytes it is decoded from (charsets never
            // shrink it; CRLF becoming LF at most halves it), so a part far over the
            // limit is refused before it is converted. HTML is held to it as it converts.
            let allowance = limits.maxTextBytes - tally.textBytes
            guard mediaType == "text/html" || decoded.count / 2 <= allowance else { throw .textTooLarge(limitBytes: limits.maxTextBytes) }
            let text = try MailCharset.decode(decoded, charset: contentType.parameters["charset"], budget: budget)
            let plain: BodyText
            if mediaType == "text/html" {
                var htmlLimits = limits
                htmlLimits.maxTextBytes = allowance
                plain = BodyText(text: try HTMLText.plainText(fromHTML: text, limits: htmlLimits, budget: budget), isHTML: true)
            } else {
                plain = BodyText(text: try Self.plainText(text, contentType: contentType, budget: budget), isHTML: false)
            }
            tally.textBytes += plain.text.utf8.count
            guard tally.textBytes <= limits.maxTextBytes else { throw .textTooLarge(limitBytes: limits.maxTextBytes) }
            return plain
        }

        if Self.isSignature(mediaType) { return nil }
        let decoded = try transferDecoded(body, encoding: header.value("content-transfer-encoding"))
        let contentID = header.value("content-id").flatMap { InboundMailParser.messageIDs(in: $0).first }
        let sentName = try filename.map { name throws(InboundMailError) in
            try EncodedWord.decode(name, maxWords: limits.maxEncodedWordsPerField)
        }
        attachments.append(InboundAttachment(
            filename: Self.safeFilename(sentName,
                                        fallback: "attachment-\(attachments.count + 1)\(Self.fallbackExtension(mediaType))"),
            contentType: mediaType,
            contentID: contentID,
            isInline: disposition?.value == "inline" || (disposition == nil && contentID != nil),
            bytes: decoded))
        return nil
    }

    private mutating func multipart(_ mediaType: String, parts: [(header: MIMEHeaderSection, body: ArraySlice<UInt8>)],
                                    start: String?, depth: Int) throws(InboundMailError) -> BodyText? {
        switch mediaType {
        case "multipart/alternative":
            // Each branch collects its own attachments; only the chosen branch's count
            // (an HTML branch's inline images mean nothing next to text/plain).
            var best: (text: BodyText, attachments: [InboundAttachment])?
            for part in parts {
                var branch = MIMEWalker(limits: limits, budget: budget)
                branch.tally = tally
                let text = try branch.body(of: part.header, body: part.body, depth: depth + 1)
                tally = branch.tally
                guard let text, !text.text.trimmingSpaces().isEmpty else { continue }
                if best == nil || (best?.text.isHTML == true && !text.isHTML) {
                    best = (text, branch.attachments)
                }
            }
            guard let best else { return nil }
            attachments += best.attachments
            return best.text

        case "multipart/related":
            // The root (the `start` part, else the first) is the body; the rest are
            // resources it shows inline.
            let rootIndex = start.flatMap { id in
                parts.firstIndex { part in
                    part.header.value("content-id").flatMap { InboundMailParser.messageIDs(in: $0).first }
                        == InboundMailParser.messageIDs(in: id).first
                }
            } ?? 0
            var root: BodyText?
            for (index, part) in parts.enumerated() {
                let text = try body(of: part.header, body: part.body, depth: depth + 1)
                if index == rootIndex { root = text }
            }
            return root

        default:
            // mixed, signed, report, and any unknown multipart (RFC 2046 §5.1.7: treat
            // as mixed). Apple Mail splits one body around inline images, so every
            // inline text part counts, in order.
            var texts: [BodyText] = []
            for part in parts {
                if let text = try body(of: part.header, body: part.body, depth: depth + 1),
                   !text.text.trimmingSpaces().isEmpty {
                    texts.append(text)
                }
            }
            guard !texts.isEmpty else { return nil }
            return BodyText(text: texts.map(\.text).joined(separator: "\n\n"), isHTML: texts.allSatisfy(\.isHTML))
        }
    }

    /// The parts between `--boundary` lines (RFC 2046 §5.1.1). The CRLF before a
    /// delimiter belongs to it; the preamble and epilogue are dropped. A body with no
    /// closing delimiter ends its last part at the end of the message, as clients do.
    ///
    /// One pass over the lines. `partsBefore` parts of the message are counted already;
    /// the part that would pass `limits.maxParts` throws `.tooManyParts` at once, so a
    /// body of millions of delimiters costs no more than its first few hundred.
    static func split(_ body: ArraySlice<UInt8>, boundary: String, partsBefore: Int, limits: InboundMailLimits,
                      budget: ParseBudget) throws(InboundMailError) -> [ArraySlice<UInt8>] {
        let maxParts = limits.maxParts - partsBefore
        let delimiter = Array("--\(boundary)".utf8)
        var parts: [ArraySlice<UInt8>] = []
        var partStart: Int?
        var lineStart = body.startIndex
        var lineCount = 0
        while lineStart < body.endIndex {
            try budget.check(at: lineCount)
            lineCount += 1
            let newline = body[lineStart...].firstIndex(of: 10) ?? body.endIndex
            let next = newline < body.endIndex ? newline + 1 : body.endIndex
            let line = body[lineStart..<newline]
            if line.starts(with: delimiter) {
                let rest = line.dropFirst(delimiter.count)
                let isClose = rest.starts(with: [UInt8(ascii: "-"), UInt8(ascii: "-")])
                let isDelimiter = rest.allSatisfy { $0 == 32 || $0 == 9 || $0 == 13 }
                if isClose || isDelimiter {
                    if let start = partStart {
                        var end = lineStart
                        if end > start && body[end - 1] == 10 { end -= 1 }
                        if end > start && body[end - 1] == 13 { end -= 1 }
                        guard parts.count < maxParts else { throw .tooManyParts(limit: limits.maxParts) }
                        parts.append(body[start..<max(start, end)])
                    }
                    if isClose { return parts }
                    partStart = next
                }
            }
            lineStart = next
        }
        if let start = partStart, start < body.endIndex {
            guard parts.count < maxParts else { throw .tooManyParts(limit: limits.maxParts) }
            parts.append(body[start...])
        }
        return parts
    }

    /// `body` without its transfer encoding, counted against `maxDecodedBytes`.
    private mutating func transferDecoded(_ body: ArraySlice<UInt8>, encoding: String?) throws(InboundMailError) -> [UInt8] {
        let decoded = try Self.transferDecoded(body, encoding: encoding, budget: budget)
        tally.decodedBytes += decoded.count
        guard tally.decodedBytes <= limits.maxDecodedBytes else { throw .decodedTooLarge(limitBytes: limits.maxDecodedBytes) }
        try budget.check()
        return decoded
    }

    static func transferDecoded(_ body: ArraySlice<UInt8>, encoding: String?, budget: ParseBudget)
        throws(InboundMailError) -> [UInt8] {
        switch encoding?.trimmingSpaces().lowercased() {
        case "base64":
            return try Base64Body.decode(body, budget: budget)
        case "quoted-printable":
            return try QuotedPrintable.decode(body, budget: budget)
        default:
            return Array(body)
        }
    }

    /// "\n" line ends, format=flowed undone.
    static func plainText(_ text: String, contentType: MIMEHeaderValue, budget: ParseBudget) throws(InboundMailError) -> String {
        var lines = try text.lines(budget: budget, isBreak: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" })
        if lines.last?.isEmpty == true { lines.removeLast() }
        if contentType.parameters["format"]?.lowercased() == "flowed" {
            return try FlowedText.unflow(lines, deleteSpace: contentType.parameters["delsp"]?.lowercased() == "yes", budget: budget)
                .joined(separator: "\n")
        }
        return lines.joined(separator: "\n")
    }

    static func isSignature(_ mediaType: String) -> Bool {
        ["application/pgp-signature", "application/pkcs7-signature", "application/x-pkcs7-signature"].contains(mediaType)
    }

    static func fallbackExtension(_ mediaType: String) -> String {
        switch mediaType {
        case "message/rfc822": ".eml"
        case "text/plain": ".txt"
        case "text/html": ".html"
        case "text/calendar": ".ics"
        case "image/png": ".png"
        case "image/jpeg": ".jpg"
        case "image/gif": ".gif"
        case "application/pdf": ".pdf"
        default: ""
        }
    }

    /// The last path component, without control characters: a name like
    /// "../../etc/passwd" must not become a path when someone saves the file.
    static func safeFilename(_ name: String?, fallback: String) -> String {
        guard let name else { return fallback }
        let last = name.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? ""
        let clean = String(last.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }).trimmingSpaces()
        return clean.isEmpty || clean == "." || clean == ".." ? fallback : String(clean.prefix(255))
    }
}
