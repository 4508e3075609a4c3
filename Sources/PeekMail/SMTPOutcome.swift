/// How a send that got through ended: the server took responsibility for the message.
public enum SMTPOutcome: Sendable, Equatable {
    /// The reply to the end of the message data, e.g. `250 2.0.0 Ok: queued as 4F1A2B`.
    case sent(SMTPReply)

    public var reply: SMTPReply {
        switch self { case .sent(let reply): reply }
    }
}
