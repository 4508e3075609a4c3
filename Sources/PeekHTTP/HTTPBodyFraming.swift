/// How the body of a request is delimited, decided once from the head
/// (RFC 9112 §6.3) so nothing downstream reinterprets the headers.
public enum HTTPBodyFraming: Sendable, Equatable {
    /// Neither Content-Length nor Transfer-Encoding: a request then has no body (RFC 9112 §6.3 rule 7).
    case noBody
    case contentLength(Int)
    case chunked
}
