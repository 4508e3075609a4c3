/// The client side of one SMTP submission (RFC 5321, STARTTLS RFC 3207, AUTH RFC 4954)
/// as a state machine: it decides what to send, the caller does the I/O.
///
/// ```
/// var dialogue = try SMTPDialogue(configuration: config)
/// var action = dialogue.handle(.connected)          // implicit TLS: after the handshake
/// loop: while true {
///     switch action {
///     case .send(let bytes), .sendSecret(let bytes):
///         write(bytes); action = dialogue.handle(.reply(readReply()))
///     case .receive:  action = dialogue.handle(.reply(readReply()))
///     case .startTLS: handshake(); action = dialogue.handle(.tlsEstablished)
///     case .done, .failed: break loop              // then QUIT, best effort
///     }
/// }
/// ```
///
/// Flow: greeting 220, EHLO (HELO when EHLO gets a 5xx and neither STARTTLS nor AUTH is
/// needed), STARTTLS and EHLO again when the account asks for it, AUTH PLAIN or LOGIN
/// when credentials are given, MAIL FROM, RCPT TO for each recipient, DATA, the
/// message. The outcome is decided by the answer to the message data; after `.done`
/// or `.failed` the caller may write `SMTPDialogue.quitCommand` and close without
/// waiting, because no answer can change the outcome.
///
/// Security is never downgraded: with `.startTLS` a server that does not advertise
/// STARTTLS, refuses it, or does not speak EHLO fails the send before the envelope or
/// the credentials are written.
public struct SMTPDialogue: Sendable {
    public struct Credentials: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible,
        CustomReflectable {
        public var username: String
        public var password: String

        public init(username: String, password: String) {
            self.username = username
            self.password = password
        }

        // The password must not reach a log through string interpolation, `debugPrint` or `dump`.
        public var description: String { "Credentials(username: \(username), password: <redacted>)" }
        public var debugDescription: String { description }
        public var customMirror: Mirror { Mirror(self, children: ["username": username], displayStyle: .struct) }
    }

    public struct Configuration: Sendable {
        public enum Security: String, Sendable, Equatable {
            /// Plain text for the whole session.
            case none
            /// Plain text until STARTTLS, which the server must offer.
            case startTLS
            /// TLS from the first byte (port 465); `.connected` is fed after the handshake.
            case implicitTLS
        }

        /// The name this client gives in EHLO/HELO. An IP address is sent as an address
        /// literal (`[192.0.2.1]`, `[IPv6:...]`) as RFC 5321 §4.1.3 requires.
        public var clientHostname: String
        public var security: Security
        public var credentials: Credentials?
        /// The envelope sender (MAIL FROM); "" sends the null reverse-path `<>`.
        public var envelopeFrom: String
        public var recipients: [String]
        /// The RFC 5322 message as built (any line endings); dot-stuffed at DATA time.
        public var message: [UInt8]

        public init(clientHostname: String, security: Security, credentials: Credentials? = nil,
                    envelopeFrom: String, recipients: [String], message: [UInt8]) {
            self.clientHostname = clientHostname
            self.security = security
            self.credentials = credentials
            self.envelopeFrom = envelopeFrom
            self.recipients = recipients
            self.message = message
        }
    }

    public enum Event: Sendable, Equatable {
        /// The byte stream is open: after the TCP connect, or after the TLS handshake
        /// for `.implicitTLS`.
        case connected
        case reply(SMTPReply)
        /// The handshake asked for by `.startTLS` completed.
        case tlsEstablished
        /// A TLS handshake failed; `reason` is the TLS library's error text.
        case tlsFailed(reason: String)
        /// `SMTPReplyParser` threw: the server's bytes are not SMTP.
        case unreadableReply(SMTPReplyError)
        /// The server closed the connection (EOF) before the dialogue finished.
        case connectionClosed
        /// The caller's deadline for the current step passed.
        case timedOut
    }

    public enum Action: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible,
        CustomReflectable {
        /// Write these bytes, then read the next reply.
        case send([UInt8])
        /// Like `.send`, but the bytes carry credentials (AUTH): never log them.
        case sendSecret([UInt8])
        /// Nothing to write; read the next reply.
        case receive
        /// Run the TLS client handshake on this connection, then feed `.tlsEstablished`
        /// (or `.tlsFailed`). Drop any bytes read before it (`SMTPReplyParser.hasUnconsumedInput`
        /// true means the server sent plain text after its 220: fail the send).
        case startTLS
        /// The server accepted the message. Final.
        case done(SMTPOutcome)
        /// The send failed. Final.
        case failed(SMTPFailure)

        /// What a log may show: command lines verbatim, message data as a byte count,
        /// AUTH as its mechanism only.
        public var redactedDescription: String {
            switch self {
            case .send(let bytes):
                let crlfCount = zip(bytes, bytes.dropFirst()).lazy.filter { $0 == (13, 10) }.count
                if crlfCount > 1 || bytes.first == UInt8(ascii: ".") {
                    return "send message data (\(bytes.count) bytes)"
                }
                return "send \"\(String(decoding: bytes.prefix(200), as: UTF8.self).trimmingLineEnd())\""
            case .sendSecret(let bytes):
                let words = String(decoding: bytes.prefix(20), as: UTF8.self).split(separator: " ")
                if words.count >= 2 && words[0] == "AUTH" {
                    return "send \"AUTH \(words[1].trimmingLineEnd()) <redacted>\""
                }
                return "send <redacted credentials>"
            case .receive: return "receive"
            case .startTLS: return "start TLS"
            case .done(let outcome): return "done: \(outcome.reply.text)"
            case .failed(let failure): return "failed (\(failure.kind.rawValue), \(failure.step)): \(failure.message)"
            }
        }

        public var description: String { redactedDescription }
        public var debugDescription: String { redactedDescription }
        public var customMirror: Mirror { Mirror(self, children: [:]) }

        public var isFinal: Bool {
            switch self {
            case .done, .failed: true
            default: false
            }
        }
    }

    /// What to write after `.done` or `.failed` on a connection that is still open.
    public static let quitCommand: [UInt8] = Array("QUIT\r\n".utf8)

    enum State: Sendable, Equatable {
        case awaitingConnection
        case awaitingGreeting
        case awaitingEHLO
        case awaitingHELO
        case awaitingStartTLSReply
        case awaitingTLSHandshake
        case awaitingAuthPlain
        case awaitingLoginUsernamePrompt
        case awaitingLoginPasswordPrompt
        case awaitingLoginResult
        case awaitingMailFrom
        case awaitingRcpt(index: Int)
        case awaitingData
        case awaitingMessageReply
        case finished(Action)
    }

    public let configuration: Configuration
    var state: State = .awaitingConnection
    public internal(set) var isTLSActive = false
    /// What the latest EHLO advertised; empty after HELO or a fresh TLS session.
    public internal(set) var capabilities = SMTPCapabilities()
    public internal(set) var lastReply: SMTPReply?
    /// The step the dialogue is in, or where it ended.
    public internal(set) var step: SMTPStep = .connect

    /// Fails with kind `.configuration` on anything that cannot be written as an SMTP
    /// command line: a CR or LF (command injection), a space or angle bracket, a
    /// non-ASCII address (that needs SMTPUTF8, which this client does not speak), no
    /// recipients, or a NUL in the credentials (AUTH PLAIN separates fields with NUL).
    public init(configuration: Configuration) throws(SMTPFailure) {
        try Self.validate(configuration)
        self.configuration = configuration
    }

    public mutating func handle(_ event: Event) -> Action {
        if case .finished(let action) = state { return action }
        let action = transition(event)
        if action.isFinal { state = .finished(action) }
        return action
    }
}
