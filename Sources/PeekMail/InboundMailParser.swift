/// Raw RFC 5322 messages (what `POST /v1/inbound-email` receives) to `InboundMail`.
///
/// Not incremental: the HTTP layer already holds the whole body, bounded by its own
/// limit, and MIME needs the end of a part to find its boundary.
///
/// Every stage is linear in the message's size and bounded by `InboundMailLimits`;
/// each bound breached is a typed error whose sentence goes into the 422 body. The
/// parse also consults `isOverBudget` at each stage and every few thousand steps of
/// every loop that can run long (base64 and charset conversion, single tight passes
/// over at most `maxDecodedBytes`, are checked before and after), and stops with
/// `.overBudget` as soon as it answers true, so a caller can hold every message to a
/// wall-clock budget.
public struct InboundMailParser: Sendable {
    public let limits: InboundMailLimits
    private let budget: ParseBudget

    /// `isOverBudget` is called from the parsing thread, often (thousands of times for
    /// a large message), so it must be cheap: a clock read and a comparison.
    public init(limits: InboundMailLimits = .standard, isOverBudget: @escaping @Sendable () -> Bool = { false }) {
        self.limits = limits
        self.budget = ParseBudget(isOverBudget: isOverBudget)
    }

    public func parse(_ message: some Collection<UInt8>) throws(InboundMailError) -> InboundMail {
        guard message.count <= limits.maxMessageBytes else { throw .tooLarge(limitBytes: limits.maxMessageBytes) }
        try budget.check()
        let bytes = Array(message)
        guard bytes.contains(where: { $0 != 32 && $0 != 9 && $0 != 13 && $0 != 10 }) else { throw .empty }
        let (header, body) = try MIMEHeaderSection.split(bytes[...], limits: limits, strictness: .message)

        let sender = try addresses(header.values("sender").prefix(1)).first
        guard let from = try addresses(header.values("from").prefix(1)).first ?? sender else { throw .missingFrom }

        var walker = MIMEWalker(limits: limits, budget: budget)
        let text = try walker.body(of: header, body: body, depth: 0)
        let fullText = text?.text ?? ""
        try budget.check()

        return InboundMail(
            from: from,
            to: try addresses(header.values("to")),
            cc: try addresses(header.values("cc")),
            replyTo: try addresses(header.values("reply-to").prefix(1)),
            subject: try EncodedWord.decode(header.value("subject") ?? "", maxWords: limits.maxEncodedWordsPerField)
                .trimmingSpaces(),
            messageID: header.value("message-id").flatMap { Self.messageIDs(in: $0).first },
            inReplyTo: Array((header.value("in-reply-to").map(Self.messageIDs) ?? []).prefix(limits.maxReferences)),
            references: Self.trimmed(header.values("references").flatMap(Self.messageIDs), to: limits.maxReferences),
            dateText: header.value("date"),
            bodyText: try QuotedHistory.strip(fullText, budget: budget),
            fullBodyText: fullText,
            attachments: walker.attachments)
    }

    /// The mailboxes of `fields` in order, each field held to the address bound.
    private func addresses(_ fields: some Sequence<String>) throws(InboundMailError) -> [MailAddress] {
        var mailboxes: [MailAddress] = []
        for field in fields { mailboxes += try MailAddressParser.parseList(field, limits: limits) }
        return mailboxes
    }

    /// The first id (the thread's root) and the newest `count - 1`.
    static func trimmed(_ references: [String], to count: Int) -> [String] {
        guard references.count > count, count > 0 else { return references }
        return [references[0]] + references.suffix(count - 1)
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
