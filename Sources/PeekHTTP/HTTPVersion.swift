/// The two protocol versions this server speaks. A request for HTTP/1.2 or
/// later 1.x is read as HTTP/1.1 (RFC 9110 §2.5: a recipient of a higher minor
/// version processes the message as the highest minor it implements); any
/// other major version is refused with 505.
public enum HTTPVersion: String, Sendable, Equatable {
    case http1_0 = "HTTP/1.0"
    case http1_1 = "HTTP/1.1"
}
