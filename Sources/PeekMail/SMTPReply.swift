/// One complete SMTP reply (RFC 5321 §4.2): a three-digit code and the text of each
/// line, without the code, the separator (`-` or space) and the CRLF.
public struct SMTPReply: Sendable, Equatable, CustomStringConvertible {
    public var code: Int
    /// The text of each line in order; `["mail.example.com", "PIPELINING", "STARTTLS"]`
    /// for a multi-line `250` answer to EHLO. A bare `250` line has the text `""`.
    public var lines: [String]

    public init(code: Int, lines: [String]) {
        self.code = code
        self.lines = lines.isEmpty ? [""] : lines
    }

    public var isMultiline: Bool { lines.count > 1 }

    /// 2yz: the requested action completed (RFC 5321 §4.2.1).
    public var isPositiveCompletion: Bool { (200..<300).contains(code) }
    /// 3yz: the server waits for more (354 after DATA, 334 during AUTH).
    public var isPositiveIntermediate: Bool { (300..<400).contains(code) }
    /// 4yz: try again later; 5yz: do not repeat as is.
    public var isTransientFailure: Bool { (400..<500).contains(code) }
    public var isPermanentFailure: Bool { (500..<600).contains(code) }

    /// The reply as a person reads it: `550 5.1.1 <x@y>: Recipient address rejected`.
    /// Multi-line replies are joined with spaces, so the text fits a log line or an
    /// error sentence.
    public var text: String {
        let joined = lines.filter { !$0.isEmpty }.joined(separator: " ")
        return joined.isEmpty ? String(code) : "\(code) \(joined)"
    }

    public var description: String { text }
}
