
/// Why a send failed, in words the technician can act on. `message` carries the mail
/// server's real answer (code and text), never credentials.
public struct SMTPFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable {
        /// The server could not be reached, or refused the session (greeting, 421).
        case refused
        /// STARTTLS missing or refused, or the TLS handshake failed.
        case tls
        /// No usable AUTH mechanism, or the credentials were refused.
        case auth
        /// The server refused the sender, a recipient or the message.
        case rejected
        /// The server broke the protocol (unexpected code, closed mid-step).
        case `protocol`
        /// The caller's clock ran out waiting for the server.
        case timeout
        /// The send could not start: an address or host name that cannot be sent as SMTP.
        case configuration
    }

    public var kind: Kind
    public var step: SMTPStep
    /// The server's answer that caused the failure, when there was one.
    public var reply: SMTPReply?
    public var message: String

    public init(kind: Kind, step: SMTPStep, reply: SMTPReply? = nil, message: String) {
        self.kind = kind
        self.step = step
        self.reply = reply
        self.message = message
    }

    public var description: String { message }

    /// For the caller whose TCP connect failed (refused, unreachable, DNS).
    public static func connectionFailed(host: String, port: Int, reason: String) -> SMTPFailure {
        SMTPFailure(kind: .refused, step: .connect,
                    message: "Could not connect to the mail server \(host):\(port): \(reason).")
    }

    /// For the caller whose deadline passed before the TCP connect completed.
    public static func connectTimedOut(host: String, port: Int) -> SMTPFailure {
        SMTPFailure(kind: .timeout, step: .connect,
                    message: "Connecting to the mail server \(host):\(port) timed out.")
    }
}
