/// Why a request was refused before it reached a handler.
///
/// Every case is a peer error: answer with `status` (see
/// `HTTPResponse(parseError:)`), then close the connection, because after a
/// framing error the parser no longer knows where the next request starts.
/// `reason` is written for the person reading the client's logs.
public enum HTTPParseError: Error, Equatable, Sendable {
    /// 400: the request line passed `maxRequestLineBytes` and the target was
    /// not what made it long (the method or version part was).
    case requestLineTooLong(limit: Int)
    /// 414: the request target alone ran past `maxRequestLineBytes`.
    case uriTooLong(limit: Int)
    /// 431: the header section passed `maxHeaderBytes`.
    case headersTooLarge(limit: Int)
    /// 431: more than `maxHeaderCount` header lines.
    case tooManyHeaders(limit: Int)
    /// 413: the declared or decoded body is larger than the body limit.
    case bodyTooLarge(limit: Int)
    /// 400: the method is not a token (RFC 9110 §9.1).
    case invalidMethod
    /// 400: the request target is empty, has bytes outside visible ASCII, a
    /// fragment, or a form that does not fit the method.
    case invalidRequestTarget
    /// 400: the request line does not end in `HTTP/<digit>.<digit>`.
    case invalidVersion
    /// 505: a major version other than 1.
    case unsupportedVersion
    /// 400: a CR not followed by LF (RFC 9112 §2.2).
    case bareCarriageReturn
    /// 400: a header line starting with whitespace (obs-fold, RFC 9112 §5.2).
    case obsoleteLineFolding
    /// 400: whitespace between a header name and its colon (RFC 9112 §5.1 requires 400).
    case whitespaceBeforeColon
    /// 400: a header line without a colon.
    case missingColon
    /// 400: a header name that is empty or not a token.
    case invalidHeaderName
    /// 400: a header value holding a control character.
    case invalidHeaderValue
    /// 400: an HTTP/1.1 request without Host (RFC 9112 §3.2), when `requireHost` is on.
    case missingHost
    /// 400: more than one Host line (RFC 9112 §3.2).
    case multipleHost
    /// 400: Content-Length that is not a plain decimal number.
    case invalidContentLength
    /// 400: Content-Length lines or list elements that disagree (RFC 9110 §8.6).
    case conflictingContentLength
    /// 400: both Content-Length and Transfer-Encoding: the classic smuggling shape (RFC 9112 §6.3).
    case contentLengthWithTransferEncoding
    /// 400: Transfer-Encoding in an HTTP/1.0 request, whose framing is then untrustworthy (RFC 9112 §6.1).
    case transferEncodingInHTTP10
    /// 400: chunked missing, not last, or applied twice, so the body length cannot be known (RFC 9112 §6.3).
    case chunkedNotFinal
    /// 501: a transfer coding other than chunked (gzip, deflate, ...), which this server does not decode.
    case unsupportedTransferCoding
    /// 400: a chunk-size line that is not hex digits followed by optional extensions.
    case invalidChunkSize
    /// 400: a chunk-size line (with extensions) longer than `maxChunkLineBytes`.
    case chunkLineTooLong(limit: Int)
    /// 400: chunk data not followed by CRLF.
    case missingChunkTerminator
    /// 431: the trailer section passed `maxHeaderBytes` or `maxHeaderCount`.
    case trailersTooLarge(limit: Int)
    /// 400: a trailer line without a colon, or starting with whitespace.
    case invalidTrailer

    /// The response status for this error.
    public var status: Int {
        switch self {
        case .uriTooLong: return 414
        case .headersTooLarge, .tooManyHeaders, .trailersTooLarge: return 431
        case .bodyTooLarge: return 413
        case .unsupportedVersion: return 505
        case .unsupportedTransferCoding: return 501
        case .requestLineTooLong, .invalidMethod, .invalidRequestTarget, .invalidVersion,
             .bareCarriageReturn, .obsoleteLineFolding, .whitespaceBeforeColon, .missingColon,
             .invalidHeaderName, .invalidHeaderValue, .missingHost, .multipleHost,
             .invalidContentLength, .conflictingContentLength, .contentLengthWithTransferEncoding,
             .transferEncodingInHTTP10, .chunkedNotFinal, .invalidChunkSize, .chunkLineTooLong,
             .missingChunkTerminator, .invalidTrailer:
            return 400
        }
    }

    /// A short machine-readable code for the `{"error":{"code","message"}}` body.
    public var code: String {
        switch status {
        case 414: return "uri_too_long"
        case 431: return "headers_too_large"
        case 413: return "body_too_large"
        case 505: return "http_version_not_supported"
        case 501: return "not_implemented"
        default: return "bad_request"
        }
    }

    /// One or two sentences a person can act on.
    public var reason: String {
        switch self {
        case .requestLineTooLong(let limit):
            return "The request line exceeds \(limit) bytes; check that the method and protocol version are well formed."
        case .uriTooLong(let limit):
            return "The request target exceeds \(limit) bytes; shorten the URL or send the data in the request body."
        case .headersTooLarge(let limit):
            return "Request headers exceed \(limit) bytes; send fewer or smaller headers."
        case .tooManyHeaders(let limit):
            return "The request has more than \(limit) header lines; send fewer headers."
        case .bodyTooLarge(let limit):
            return "The request body exceeds \(limit) bytes; send a smaller body."
        case .invalidMethod:
            return "The request method is not a valid token; use a method such as GET or POST."
        case .invalidRequestTarget:
            return "The request target is malformed; send an absolute path such as /v1/tickets with only visible ASCII characters and no fragment."
        case .invalidVersion:
            return "The request line does not end with a protocol version such as HTTP/1.1; separate method, target and version by single spaces."
        case .unsupportedVersion:
            return "Only HTTP/1.0 and HTTP/1.1 are supported on this connection; retry with HTTP/1.1."
        case .bareCarriageReturn:
            return "The request contains a carriage return that is not followed by a line feed; end lines with CRLF."
        case .obsoleteLineFolding:
            return "A header line starts with whitespace (obsolete line folding); put each header on one line."
        case .whitespaceBeforeColon:
            return "A header name is followed by whitespace before its colon; remove the whitespace."
        case .missingColon:
            return "A header line has no colon; send headers as Name: value."
        case .invalidHeaderName:
            return "A header name is empty or contains characters not allowed in a token; use names such as Content-Type."
        case .invalidHeaderValue:
            return "A header value contains a control character; remove it or encode the value."
        case .missingHost:
            return "The HTTP/1.1 request has no Host header; add one."
        case .multipleHost:
            return "The request has more than one Host header; send exactly one."
        case .invalidContentLength:
            return "The Content-Length header is not a decimal number; send the body length in bytes."
        case .conflictingContentLength:
            return "The request has Content-Length values that disagree; send a single Content-Length."
        case .contentLengthWithTransferEncoding:
            return "The request has both Content-Length and Transfer-Encoding; send only one of them."
        case .transferEncodingInHTTP10:
            return "Transfer-Encoding is not allowed in an HTTP/1.0 request; use Content-Length or HTTP/1.1."
        case .chunkedNotFinal:
            return "Transfer-Encoding must end with chunked, applied once; otherwise the body length cannot be determined."
        case .unsupportedTransferCoding:
            return "Only the chunked transfer coding is supported; send the body uncompressed with chunked or Content-Length."
        case .invalidChunkSize:
            return "A chunk size is not a hexadecimal number; check the chunked encoding of the body."
        case .chunkLineTooLong(let limit):
            return "A chunk-size line exceeds \(limit) bytes; drop the chunk extensions."
        case .missingChunkTerminator:
            return "Chunk data is not followed by CRLF; check the chunk sizes of the body."
        case .trailersTooLarge(let limit):
            return "The chunked body's trailer section exceeds \(limit) bytes or lines; send fewer trailers."
        case .invalidTrailer:
            return "A trailer line of the chunked body is malformed; send trailers as Name: value."
        }
    }
}
