/// Why an inbound message was refused. Every case answers 422 and stores nothing; the
/// error body's code is `too_large` when `isTooLarge` (the message is over a bound on
/// bytes: the whole message, a header, decoded content or text) and `invalid` for
/// everything else (malformed, or over a bound on a count, a depth or time).
public enum InboundMailError: Error, Sendable, Equatable, CustomStringConvertible {
    case empty
    case tooLarge(limitBytes: Int)
    case notAMessage
    case headerTooLarge(limitBytes: Int)
    case tooManyHeaderFields(limit: Int)
    case headerLineTooLong(limitBytes: Int)
    case headerFieldTooLong(limitBytes: Int)
    case missingFrom
    case tooManyAddresses(limit: Int)
    case tooManyEncodedWords(limit: Int)
    case tooDeep(limit: Int)
    case tooManyParts(limit: Int)
    case decodedTooLarge(limitBytes: Int)
    case textTooLarge(limitBytes: Int)
    /// The parse ran past its wall-clock budget (`InboundMailParser.isOverBudget`).
    case overBudget

    /// A sentence a person can act on.
    public var message: String {
        switch self {
        case .empty: "The message is empty."
        case .tooLarge(let limit): "The message is larger than the \(limit) bytes this server accepts."
        case .notAMessage: "The body is not an RFC 5322 email message: it does not start with header fields."
        case .headerTooLarge(let limit): "The message has a header section larger than \(limit) bytes."
        case .tooManyHeaderFields(let limit): "The message has a header section with more than \(limit) fields."
        case .headerLineTooLong(let limit):
            "The message has a header line longer than \(limit) bytes; fold long header fields over several lines."
        case .headerFieldTooLong(let limit): "The message has a header field longer than \(limit) bytes, even unfolded."
        case .missingFrom: "The message has no valid From address, so it cannot be added to a ticket."
        case .tooManyAddresses(let limit): "The message has an address field with more than \(limit) addresses."
        case .tooManyEncodedWords(let limit): "The message has a header field with more than \(limit) encoded words."
        case .tooDeep(let limit): "The message nests MIME parts more than \(limit) levels deep."
        case .tooManyParts(let limit): "The message has more than \(limit) MIME parts."
        case .decodedTooLarge(let limit): "The message's parts are larger than \(limit) bytes together once decoded."
        case .textTooLarge(let limit):
            "The message's text is longer than the \(limit) bytes a ticket message can hold; send the rest as an attachment."
        case .overBudget:
            "The message took too long to read and was refused; send it again with simpler formatting or fewer parts."
        }
    }

    /// True when the message is over a bound on bytes (answer `too_large`); false when
    /// it is malformed or over a bound on a count, a depth or time (answer `invalid`).
    public var isTooLarge: Bool {
        switch self {
        case .tooLarge, .headerTooLarge, .headerLineTooLong, .headerFieldTooLong, .decodedTooLarge, .textTooLarge:
            true
        case .empty, .notAMessage, .tooManyHeaderFields, .missingFrom, .tooManyAddresses, .tooManyEncodedWords,
             .tooDeep, .tooManyParts, .overBudget:
            false
        }
    }

    public var description: String { message }
}
