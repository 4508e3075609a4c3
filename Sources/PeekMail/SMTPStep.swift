/// Where in the SMTP conversation something went wrong.
public enum SMTPStep: String, Sendable, Equatable, CustomStringConvertible {
    case connect, greeting, ehlo, helo, startTLS, auth, mailFrom, rcptTo, data, message

    /// How a sentence names the step: "The mail server did not answer RCPT TO ...".
    public var description: String {
        switch self {
        case .connect: "the connection"
        case .greeting: "the greeting"
        case .ehlo: "EHLO"
        case .helo: "HELO"
        case .startTLS: "STARTTLS"
        case .auth: "AUTH"
        case .mailFrom: "MAIL FROM"
        case .rcptTo: "RCPT TO"
        case .data: "DATA"
        case .message: "the message data"
        }
    }
}
