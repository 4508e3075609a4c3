// SMTPDialogue driven by whatever a mail server answers: the payload goes
// through SMTPReplyParser (cut at input-chosen points) and every reply,
// parse error, STARTTLS handshake outcome and the final EOF into the
// dialogue. One byte picks security, credentials and the TLS outcome.
// Checked: a final action stays final, the dialogue ends at EOF, and every
// command sent is one line (the server's text never splits or extends one);
// only the message data after 354 has more.
import PeekMail

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let choice = input.byte()
    let security: SMTPDialogue.Configuration.Security = [.none, .startTLS, .implicitTLS][Int(choice % 3)]
    let credentials = choice & 4 != 0 ? SMTPDialogue.Credentials(username: "agent", password: "s3cret") : nil
    let tlsFails = choice & 8 != 0
    let configuration = SMTPDialogue.Configuration(
        clientHostname: "peek.example.com", security: security, credentials: credentials,
        envelopeFrom: "support@peek.example.com", recipients: ["ana@client.example", "ben@client.example"],
        message: Array("Subject: hi\r\n\r\nhello\r\n.\r\n".utf8))
    guard var dialogue = try? SMTPDialogue(configuration: configuration) else {
        fatalError("the fixed configuration is refused")
    }
    let messageData = SMTPData.encode(message: configuration.message)
    var parser = SMTPReplyParser()
    var final: SMTPDialogue.Action?

    func handle(_ event: SMTPDialogue.Event) {
        let action = dialogue.handle(event)
        if let final {
            require(action == final, "a finished dialogue answered \(action) after \(final)")
            return
        }
        if action.isFinal { final = action }
        switch action {
        case .send(let bytes) where bytes == messageData: break
        case .send(let bytes), .sendSecret(let bytes):
            let lineEnds = zip(bytes, bytes.dropFirst()).filter { $0 == (13, 10) }.count
            require(lineEnds == 1 && bytes.suffix(2) == [13, 10] && !bytes.dropLast(2).contains(10) && !bytes.dropLast(2).contains(13),
                    "a command that is not one line: \(describe(bytes))")
        default: break
        }
        if case .startTLS = action {
            parser = SMTPReplyParser()
            handle(tlsFails ? .tlsFailed(reason: "fuzz") : .tlsEstablished)
        }
    }

    handle(.connected)
    for piece in input.splitPayload() where final == nil {
        do {
            for reply in try parser.replies(after: piece) { handle(.reply(reply)) }
        } catch {
            handle(.unreadableReply(error))
        }
    }
    handle(.connectionClosed)
    require(final != nil, "the dialogue did not end at EOF")
    return 0
}
