import PeekCrypto

extension SMTPDialogue {
    mutating func transition(_ event: Event) -> Action {
        switch event {
        case .connected:
            guard state == .awaitingConnection else {
                return fail(.protocol, "The mail client reported a second connection on one dialogue.")
            }
            isTLSActive = configuration.security == .implicitTLS
            state = .awaitingGreeting
            step = .greeting
            return .receive

        case .tlsEstablished:
            guard state == .awaitingTLSHandshake else {
                return fail(.protocol, "The mail client reported a TLS handshake nobody asked for.")
            }
            // RFC 3207 §4.2: forget everything learnt in plain text and ask again.
            isTLSActive = true
            capabilities = SMTPCapabilities()
            return sendEHLO()

        case .tlsFailed(let reason):
            let during = configuration.security == .implicitTLS && !isTLSActive ? "connecting" : "STARTTLS"
            return fail(.tls, "The TLS handshake with the mail server failed during \(during): \(reason).")

        case .unreadableReply(let error):
            return fail(.protocol, "The mail server's answer to \(step) could not be read. \(error.description)")

        case .connectionClosed:
            if state == .awaitingConnection || state == .awaitingGreeting {
                return fail(.refused, "The mail server closed the connection before greeting.")
            }
            return fail(.protocol, "The mail server closed the connection while waiting for the answer to \(step).")

        case .timedOut:
            switch state {
            case .awaitingConnection: return fail(.timeout, "Connecting to the mail server timed out.")
            case .awaitingTLSHandshake: return fail(.timeout, "The TLS handshake with the mail server timed out.")
            case .awaitingGreeting: return fail(.timeout, "The mail server accepted the connection but sent no greeting in time.")
            default: return fail(.timeout, "The mail server did not answer \(step) in time.")
            }

        case .reply(let reply):
            lastReply = reply
            return received(reply)
        }
    }

    private mutating func received(_ reply: SMTPReply) -> Action {
        // 421: the server is closing the session whatever we asked (RFC 5321 §3.8).
        if reply.code == 421 && state != .awaitingConnection && state != .awaitingTLSHandshake {
            let stop = reply.text.hasSuffix(".") ? "" : "."
            return fail(.refused, reply: reply,
                        "The mail server is not available and closed the session at \(step): \(reply.text)\(stop) Try again later.")
        }
        switch state {
        case .awaitingConnection:
            return fail(.protocol, reply: reply, "The mail client reported a reply before connecting.")

        case .awaitingGreeting:
            guard reply.code == 220 else {
                return fail(.refused, reply: reply, "The mail server refused the connection: \(reply.text)")
            }
            return sendEHLO()

        case .awaitingEHLO:
            if reply.code == 250 {
                capabilities = SMTPCapabilities(ehloReply: reply)
                return afterHello()
            }
            guard reply.isPermanentFailure else { return unexpected(reply, refusedKind: .refused) }
            // A server without ESMTP cannot offer STARTTLS or AUTH, so HELO is only a
            // fallback when neither is needed.
            if needsStartTLS {
                return fail(.tls, reply: reply,
                            "The mail server does not support EHLO (\(reply.text)), so it cannot offer STARTTLS, which the account requires. Nothing was sent.")
            }
            if configuration.credentials != nil {
                return fail(.auth, reply: reply,
                            "The mail server does not support EHLO (\(reply.text)), so it cannot accept the account's username and password.")
            }
            state = .awaitingHELO
            step = .helo
            return .send(Self.line("HELO \(Self.heloIdentity(configuration.clientHostname))"))

        case .awaitingHELO:
            guard reply.code == 250 else { return unexpected(reply, refusedKind: .refused) }
            capabilities = SMTPCapabilities()
            return afterHello()

        case .awaitingStartTLSReply:
            guard reply.code == 220 else {
                return fail(.tls, reply: reply, "The mail server refused STARTTLS: \(reply.text). Nothing was sent.")
            }
            state = .awaitingTLSHandshake
            return .startTLS

        case .awaitingTLSHandshake:
            return fail(.tls, reply: reply,
                        "The mail server sent \"\(reply.text)\" in plain text after agreeing to STARTTLS.")

        case .awaitingAuthPlain, .awaitingLoginResult:
            guard reply.code == 235 else { return authRefused(reply) }
            return sendMailFrom()

        case .awaitingLoginUsernamePrompt:
            guard reply.code == 334, let credentials = configuration.credentials else { return authRefused(reply) }
            state = .awaitingLoginPasswordPrompt
            return .sendSecret(Self.line(Base64.encode(Array(credentials.username.utf8))))

        case .awaitingLoginPasswordPrompt:
            guard reply.code == 334, let credentials = configuration.credentials else { return authRefused(reply) }
            state = .awaitingLoginResult
            return .sendSecret(Self.line(Base64.encode(Array(credentials.password.utf8))))

        case .awaitingMailFrom:
            guard reply.isPositiveCompletion else {
                return rejected(reply, "the sender address <\(configuration.envelopeFrom)> (MAIL FROM)")
            }
            return sendRcpt(0)

        case .awaitingRcpt(let index):
            guard reply.isPositiveCompletion else {
                return rejected(reply, "the recipient <\(configuration.recipients[index])> (RCPT TO)")
            }
            if index + 1 < configuration.recipients.count { return sendRcpt(index + 1) }
            state = .awaitingData
            step = .data
            return .send(Self.line("DATA"))

        case .awaitingData:
            guard reply.code == 354 else { return rejected(reply, "the message at DATA") }
            state = .awaitingMessageReply
            step = .message
            return .send(SMTPData.encode(message: configuration.message))

        case .awaitingMessageReply:
            guard reply.isPositiveCompletion else { return rejected(reply, "the message") }
            return .done(.sent(reply))

        case .finished(let action):
            return action
        }
    }

    private var needsStartTLS: Bool { configuration.security == .startTLS && !isTLSActive }

    private mutating func sendEHLO() -> Action {
        state = .awaitingEHLO
        step = .ehlo
        return .send(Self.line("EHLO \(Self.heloIdentity(configuration.clientHostname))"))
    }

    private mutating func afterHello() -> Action {
        if needsStartTLS {
            guard capabilities.supportsStartTLS else {
                return fail(.tls, reply: lastReply,
                            "The mail server does not offer STARTTLS, and the account requires it, so nothing was sent in plain text. Use security \"tls\" if the server listens for TLS on another port (usually 465).")
            }
            state = .awaitingStartTLSReply
            step = .startTLS
            return .send(Self.line("STARTTLS"))
        }
        guard let credentials = configuration.credentials else { return sendMailFrom() }
        step = .auth
        if capabilities.authMechanisms.contains("PLAIN") {
            // RFC 4616: authzid (empty) NUL authcid NUL passwd, sent as the initial response.
            let message = [0] + Array(credentials.username.utf8) + [0] + Array(credentials.password.utf8)
            state = .awaitingAuthPlain
            return .sendSecret(Self.line("AUTH PLAIN \(Base64.encode(message))"))
        }
        if capabilities.authMechanisms.contains("LOGIN") {
            state = .awaitingLoginUsernamePrompt
            return .sendSecret(Self.line("AUTH LOGIN"))
        }
        let offered = capabilities.authMechanisms.sorted().joined(separator: " ")
        var message = offered.isEmpty
            ? "The mail server does not offer login (no AUTH in its EHLO answer), but the account has a username and password."
            : "The mail server offers no login method this client supports (PLAIN or LOGIN); it offers \(offered)."
        if !isTLSActive { message += " Many servers offer login only over TLS: set the account's security to \"starttls\" or \"tls\"." }
        return fail(.auth, reply: lastReply, message)
    }

    private mutating func sendMailFrom() -> Action {
        step = .mailFrom
        let size = configuration.message.count
        if let limit = capabilities.maxMessageBytes, size > limit {
            return fail(.rejected, reply: lastReply,
                        "The message is \(size) bytes, more than the mail server accepts (\(limit) bytes). Remove or shrink attachments.")
        }
        state = .awaitingMailFrom
        return .send(Self.line("MAIL FROM:<\(configuration.envelopeFrom)>"))
    }

    private mutating func sendRcpt(_ index: Int) -> Action {
        state = .awaitingRcpt(index: index)
        step = .rcptTo
        return .send(Self.line("RCPT TO:<\(configuration.recipients[index])>"))
    }

    private mutating func authRefused(_ reply: SMTPReply) -> Action {
        let user = configuration.credentials?.username ?? ""
        if reply.isPositiveIntermediate || reply.isPositiveCompletion {
            return fail(.auth, reply: reply, "The mail server answered the login for \"\(user)\" unexpectedly: \(reply.text)")
        }
        return fail(.auth, reply: reply,
                    "The mail server refused the login for \"\(user)\"; check the account's username and password: \(reply.text)")
    }

    private mutating func rejected(_ reply: SMTPReply, _ what: String) -> Action {
        if reply.isTransientFailure {
            let stop = reply.text.hasSuffix(".") ? "" : "."
            return fail(.rejected, reply: reply,
                        "The mail server temporarily refused \(what): \(reply.text)\(stop) Try again later.")
        }
        if reply.isPermanentFailure {
            return fail(.rejected, reply: reply, "The mail server rejected \(what): \(reply.text)")
        }
        return fail(.protocol, reply: reply, "The mail server gave an unexpected answer to \(step): \(reply.text)")
    }

    private mutating func unexpected(_ reply: SMTPReply, refusedKind: SMTPFailure.Kind) -> Action {
        if reply.isTransientFailure || reply.isPermanentFailure {
            return fail(refusedKind, reply: reply, "The mail server refused \(step): \(reply.text)")
        }
        return fail(.protocol, reply: reply, "The mail server gave an unexpected answer to \(step): \(reply.text)")
    }

    private mutating func fail(_ kind: SMTPFailure.Kind, reply: SMTPReply? = nil, _ message: String) -> Action {
        .failed(SMTPFailure(kind: kind, step: step, reply: reply, message: message))
    }

    static func line(_ text: String) -> [UInt8] { Array(text.utf8) + [13, 10] }

    /// RFC 5321 §4.1.3: an address, not a name, goes in brackets.
    static func heloIdentity(_ host: String) -> String {
        if host.hasPrefix("[") { return host }
        if host.contains(":") { return "[IPv6:\(host)]" }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count == 4 && parts.allSatisfy({ !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isASCII) && UInt8($0) != nil }) {
            return "[\(host)]"
        }
        return host
    }

    static func validate(_ configuration: Configuration) throws(SMTPFailure) {
        func reject(_ message: String) -> SMTPFailure {
            SMTPFailure(kind: .configuration, step: .connect, message: message)
        }
        let host = configuration.clientHostname
        guard !host.isEmpty, host.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw reject("The host name \"\(host.debugDescription.dropFirst().dropLast())\" cannot be sent in EHLO.")
        }
        if !configuration.envelopeFrom.isEmpty {
            guard isSendableAddress(configuration.envelopeFrom) else {
                throw reject("The sender address \"\(configuration.envelopeFrom.debugDescription.dropFirst().dropLast())\" is not a valid email address.")
            }
        }
        guard !configuration.recipients.isEmpty else { throw reject("The message has no recipient.") }
        for recipient in configuration.recipients where !isSendableAddress(recipient) {
            throw reject("The recipient address \"\(recipient.debugDescription.dropFirst().dropLast())\" is not a valid email address.")
        }
        if let credentials = configuration.credentials {
            guard !credentials.username.utf8.contains(0), !credentials.password.utf8.contains(0) else {
                throw reject("The account's username or password contains a NUL character, which SMTP login cannot carry.")
            }
        }
    }

    /// local@domain in printable ASCII without space, angle brackets or control bytes;
    /// everything else is either an injection or needs SMTPUTF8.
    static func isSendableAddress(_ address: String) -> Bool {
        let bytes = Array(address.utf8)
        guard bytes.count <= 254,
              let at = bytes.lastIndex(of: UInt8(ascii: "@")), at > 0, at < bytes.count - 1 else { return false }
        return bytes.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "<") && $0 != UInt8(ascii: ">") }
    }
}
