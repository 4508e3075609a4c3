/// The bounds one inbound message is read within. Each is named with its unit; each
/// one breached refuses the whole message with its own `InboundMailError` (nothing is
/// stored), except `maxQuoteDepth`, which only flattens how deep quotes are shown, and
/// `maxReferences`, which only drops middle ids of a long thread.
///
/// Together they make the work of `InboundMailParser` linear in the message's size
/// and its memory a small multiple of it, whatever the sender wrote.
public struct InboundMailLimits: Sendable, Equatable {
    /// Bytes of the raw message. Over it: `.tooLarge`.
    public var maxMessageBytes: Int
    /// Bytes of one header section (the message's or a MIME part's), folding included.
    /// Over it: `.headerTooLarge`.
    public var maxHeaderBytes: Int
    /// Fields in one header section. Over it: `.tooManyHeaderFields`.
    public var maxHeaderFields: Int
    /// Bytes of one physical header line, without its line end (RFC 5322 §2.1.1 says
    /// 998; real mail is sloppier). Over it: `.headerLineTooLong`.
    public var maxHeaderLineBytes: Int
    /// Bytes of one header field once its folded lines are joined. Over it:
    /// `.headerFieldTooLong`.
    public var maxHeaderFieldBytes: Int
    /// Mailboxes in one address field (From, Sender, To, Cc, Reply-To). Over it:
    /// `.tooManyAddresses`.
    public var maxAddressesPerField: Int
    /// RFC 2047 encoded words in one header field or parameter. Over it:
    /// `.tooManyEncodedWords`.
    public var maxEncodedWordsPerField: Int
    /// Message-IDs kept from the In-Reply-To fields, and from the References fields,
    /// each. A longer References keeps its first id (the thread's root) and its newest
    /// (RFC 5322 §3.6.4 lets a client trim the same way): our own replies carry every
    /// id of the ticket (protocol.md §8.2), so a long ticket's thread is not refused.
    public var maxReferences: Int
    /// Levels of multipart nesting below the message. Over it: `.tooDeep`.
    public var maxDepth: Int
    /// MIME parts, the message itself included; counted while the body is split, so a
    /// message with millions of parts is refused after the first few hundred. Over it:
    /// `.tooManyParts`.
    public var maxParts: Int
    /// `<blockquote>` levels shown as "> " prefixes in text made from HTML; deeper
    /// quotes are shown at this depth. Never refuses a message.
    public var maxQuoteDepth: Int
    /// Bytes of all parts after transfer decoding (base64, quoted-printable), together.
    /// Over it: `.decodedTooLarge`.
    public var maxDecodedBytes: Int
    /// Bytes (UTF-8) of the body text, all text parts together, after charset, HTML and
    /// format=flowed conversion: what a ticket message can hold. Over it: `.textTooLarge`.
    public var maxTextBytes: Int

    public init(maxMessageBytes: Int = 25 * 1024 * 1024, maxHeaderBytes: Int = 256 * 1024,
                maxHeaderFields: Int = 1_000, maxHeaderLineBytes: Int = 16 * 1024,
                maxHeaderFieldBytes: Int = 64 * 1024, maxAddressesPerField: Int = 1_000,
                maxEncodedWordsPerField: Int = 1_000, maxReferences: Int = 1_000,
                maxDepth: Int = 10, maxParts: Int = 500, maxQuoteDepth: Int = 32,
                maxDecodedBytes: Int = 25 * 1024 * 1024, maxTextBytes: Int = 8 * 1024 * 1024) {
        self.maxMessageBytes = maxMessageBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderFields = maxHeaderFields
        self.maxHeaderLineBytes = maxHeaderLineBytes
        self.maxHeaderFieldBytes = maxHeaderFieldBytes
        self.maxAddressesPerField = maxAddressesPerField
        self.maxEncodedWordsPerField = maxEncodedWordsPerField
        self.maxReferences = maxReferences
        self.maxDepth = maxDepth
        self.maxParts = maxParts
        self.maxQuoteDepth = maxQuoteDepth
        self.maxDecodedBytes = maxDecodedBytes
        self.maxTextBytes = maxTextBytes
    }

    /// What `POST /v1/inbound-email` applies (protocol.md §8.3).
    public static let standard = InboundMailLimits()
}

/// The wall-clock budget of one parse, consulted cooperatively: at stage boundaries,
/// and every `stride` iterations of a loop that can run long, so a pathological
/// message stops within a few thousand cheap steps of the budget running out.
struct ParseBudget: Sendable {
    static let unlimited = ParseBudget(isOverBudget: { false })
    /// A power of two, so the test is a mask.
    static let stride = 4_096

    let isOverBudget: @Sendable () -> Bool

    func check() throws(InboundMailError) {
        if isOverBudget() { throw .overBudget }
    }

    /// `check()` on every `stride`-th value of a loop counter that goes up by one.
    func check(at iteration: Int) throws(InboundMailError) {
        if iteration & (Self.stride - 1) == 0 { try check() }
    }

    /// For the public conveniences that read trusted or already bounded text: with no
    /// budget and no limit a work function cannot fail.
    static func unbounded<T>(_ work: (ParseBudget) throws(InboundMailError) -> T) -> T {
        do {
            return try work(.unlimited)
        } catch {
            preconditionFailure("work without a budget or limit failed: \(error)")
        }
    }
}
