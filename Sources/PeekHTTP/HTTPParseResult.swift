/// What one call to `HTTPRequestParser.next()` produced.
///
/// A request is always `.head`, zero or more `.body`, then `.end`, even when
/// it has no body, so a caller can answer on `.end` alone.
public enum HTTPParseResult: Sendable, Equatable {
    /// Everything buffered has been used; append more bytes.
    case needMoreData
    case head(HTTPRequestHead)
    /// The next piece of the decoded body (chunk framing removed). Pieces are
    /// as large as the bytes buffered allow, so their sizes depend on how the
    /// input was split; only their concatenation is meaningful.
    case body([UInt8])
    /// The current request is complete; the next call starts the next request.
    case end
}
