/// Why an inbound message was refused (the HTTP layer answers 422 with `message`).
public enum InboundMailError: Error, Sendable, Equatable, CustomStringConvertible {
    case empty
    case tooLarge(limitBytes: Int)
    case notAMessage
    case headerTooLarge(limitBytes: Int)
    case missingFrom
    case tooDeep(limit: Int)
    case tooManyParts(limit: Int)

    /// A sentence a person can act on.
    public var message: String {
        switch self {
        case .empty: "The message is empty."
        case .tooLarge(let limit): "The message is larger than the \(limit) bytes this server accepts."
        case .notAMessage: "The body is not an RFC 5322 email message: it does not start with header fields."
        case .headerTooLarge(let limit): "The message has a header section larger than \(limit) bytes."
        case .missingFrom: "The message has no valid From address, so it cannot be added to a ticket."
        case .tooDeep(let limit): "The message nests MIME parts more than \(limit) levels deep."
        case .tooManyParts(let limit): "The message has more than \(limit) MIME parts."
        }
    }

    public var description: String { message }
}
