/// A customer's email as the ticket needs it.
public struct InboundMail: Sendable, Equatable {
    public var from: MailAddress
    public var to: [MailAddress]
    public var cc: [MailAddress]
    public var replyTo: [MailAddress]
    /// Encoded words decoded, unfolded, trimmed.
    public var subject: String
    /// Message-IDs are bare: no angle brackets (`CAF=abc@mail.gmail.com`).
    public var messageID: String?
    public var inReplyTo: [String]
    public var references: [String]
    /// The Date header as written; the server stamps its own receive time.
    public var dateText: String?
    /// What the customer wrote now: the chosen text part (text/plain preferred, else
    /// HTML turned into text) with quoted history cut (`QuotedHistory`), "\n" line ends.
    public var bodyText: String
    /// The same text before the history was cut.
    public var fullBodyText: String
    public var attachments: [InboundAttachment]

    public init(from: MailAddress, to: [MailAddress] = [], cc: [MailAddress] = [], replyTo: [MailAddress] = [],
                subject: String, messageID: String? = nil, inReplyTo: [String] = [], references: [String] = [],
                dateText: String? = nil, bodyText: String, fullBodyText: String,
                attachments: [InboundAttachment] = []) {
        self.from = from
        self.to = to
        self.cc = cc
        self.replyTo = replyTo
        self.subject = subject
        self.messageID = messageID
        self.inReplyTo = inReplyTo
        self.references = references
        self.dateText = dateText
        self.bodyText = bodyText
        self.fullBodyText = fullBodyText
        self.attachments = attachments
    }

    /// The `[#1042]` tag of the subject: the first threading key.
    public var ticketNumber: Int? { MailThreading.ticketNumber(fromSubject: subject) }

    /// The second threading key, for mail whose subject lost its tag: the ids this
    /// message answers, most specific first (In-Reply-To, then References newest first),
    /// without repeats. Match them against the Message-IDs of sent replies.
    public var referencedMessageIDs: [String] {
        var seen = Set<String>()
        return (inReplyTo + references.reversed()).filter { seen.insert($0).inserted }
    }
}
