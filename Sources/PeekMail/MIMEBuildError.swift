/// Why `MIMEMessageBuilder.build()` refused its inputs; each is a caller bug or bad
/// stored data (an address with a CR in it), never a server answer.
public enum MIMEBuildError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidAddress(String)
    case invalidMessageID(String)
    case invalidBoundary(String)
    case boundaryInContent(String)

    public var description: String {
        switch self {
        case .invalidAddress(let address): "The address \"\(address)\" is not a valid email address."
        case .invalidMessageID(let id): "The message id \"\(id)\" is not of the form left@right."
        case .invalidBoundary(let boundary): "The MIME boundary \"\(boundary)\" is not 1-70 letters, digits or '()+_,-./:=?."
        case .boundaryInContent(let boundary): "The MIME boundary \"\(boundary)\" occurs in the message text; build again with another."
        }
    }
}
