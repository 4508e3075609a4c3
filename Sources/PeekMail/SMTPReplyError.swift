/// Why the byte stream from a mail server cannot be read as SMTP replies. The caller
/// drops the connection and reports the send as failed (kind `.protocol`).
public enum SMTPReplyError: Error, Sendable, Equatable, CustomStringConvertible {
    case lineTooLong(limit: Int)
    case tooManyLines(limit: Int)
    case malformed(line: String, reason: String)

    public var description: String {
        switch self {
        case .lineTooLong(let limit): "The mail server sent a reply line longer than \(limit) bytes."
        case .tooManyLines(let limit): "The mail server sent a reply of more than \(limit) lines."
        case .malformed(let line, let reason): "The mail server sent a reply that is not SMTP (\(reason)): \"\(line)\"."
        }
    }
}
