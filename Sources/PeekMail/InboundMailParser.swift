/// Raw RFC 5322 messages (what `POST /v1/inbound-email` receives) to `InboundMail`.
///
/// Not incremental: the HTTP layer already holds the whole body, bounded by its own
/// limit, and MIME needs the end of a part to find its boundary.
///
/// Bounds (each refusal is a typed error whose sentence goes into the 422 body):
/// - `maxMessageBytes`: a larger message is refused before any parsing;
/// - `maxHeaderBytes`: per header section (the message's and each part's);
/// - `maxDepth`: multipart nesting; a deeper message is refused rather than truncated,
///   so nothing the customer wrote is silently lost;
/// - `maxParts`: MIME parts in total, which also bounds the attachment list.
/// Decoding never grows text much past the raw size (base64 and QP shrink; charsets at
/// most triple), so those bounds also bound memory.
public struct InboundMailParser: Sendable {
    public struct Limits: Sendable, Equatable {
        public var maxMessageBytes: Int
        public var maxHeaderBytes: Int
        public var maxDepth: Int
        public var maxParts: Int

        public init(maxMessageBytes: Int = 25 * 1024 * 1024, maxHeaderBytes: Int = 256 * 1024,
                    maxDepth: Int = 10, maxParts: Int = 500) {
            self.maxMessageBytes = maxMessageBytes
            self.maxHeaderBytes = maxHeaderBytes
            self.maxDepth = maxDepth
            self.maxParts = maxParts
        }
    }

    public let limits: Limits

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    public func parse(_ message: some Collection<UInt8>) throws(InboundMailError) -> InboundMail {
        guard message.count <= limits.maxMessageBytes else { throw .tooLarge(limitBytes: limits.maxMessageBytes) }
        let bytes = Array(message)
        guard bytes.contains(where: { $0 != 32 && $0 != 9 && $0 != 13 && $0 != 10 }) else { throw .empty }
        let (header, body) = try MIMEHeaderSection.split(bytes[...], maxBytes: limits.maxHeaderBytes, strictness: .message)

        let from = (header.value("from").map(MailAddressParser.parseList) ?? []).first
            ?? (header.value("sender").map(MailAddressParser.parseList) ?? []).first
        guard let from else { throw .missingFrom }

        var walker = MIMEWalker(limits: limits)
        let text = try walker.body(of: header, body: body, depth: 0)
        let fullText = text?.text ?? ""

        return InboundMail(
            from: from,
            to: header.values("to").flatMap(MailAddressParser.parseList),
            cc: header.values("cc").flatMap(MailAddressParser.parseList),
            replyTo: header.value("reply-to").map(MailAddressParser.parseList) ?? [],
            subject: EncodedWord.decode(header.value("subject") ?? "").trimmingSpaces(),
            messageID: header.value("message-id").flatMap { Self.messageIDs(in: $0).first },
            inReplyTo: header.value("in-reply-to").map(Self.messageIDs) ?? [],
            references: header.values("references").flatMap(Self.messageIDs),
            dateText: header.value("date"),
            bodyText: QuotedHistory.strip(fullText),
            fullBodyText: fullText,
            attachments: walker.attachments)
    }

    /// The `<id>`s of a Message-ID, In-Reply-To or References field, bare. A field with
    /// no brackets at all holds one id as written (some mailers forget them).
    static func messageIDs(in text: String) -> [String] {
        var ids: [String] = []
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "<") {
            guard let close = rest[open...].firstIndex(of: ">") else { break }
            let id = String(rest[rest.index(after: open)..<close]).trimmingSpaces()
            if !id.isEmpty && !id.contains(" ") { ids.append(id) }
            rest = rest[rest.index(after: close)...]
        }
        if ids.isEmpty {
            let bare = text.trimmingSpaces()
            if !bare.isEmpty && !bare.contains(where: { $0 == " " || $0 == "<" || $0 == ">" }) { ids.append(bare) }
        }
        return ids
    }
}
