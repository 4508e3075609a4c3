import PeekCore

extension HTTPResponse {
    /// A JSON body as given (already encoded), with its content type.
    public static func json(_ status: Int, _ body: [UInt8], closeConnection: Bool = false) -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": "application/json"], body: body,
                     closeConnection: closeConnection)
    }

    public static func text(_ status: Int, _ text: String) -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": "text/plain; charset=utf-8"], body: Array(text.utf8))
    }

    /// The contract's error body: `{"error":{"code":…,"message":…}}`, written
    /// by the same encoder as the API's own errors.
    public static func error(_ status: Int, code: String, message: String, closeConnection: Bool = false) -> HTTPResponse {
        json(status, Wire.errorBody(code: code, message: message), closeConnection: closeConnection)
    }

    /// The answer to a request the parser refused. Always closes: the parser
    /// has stopped and the rest of the stream cannot be framed.
    public init(parseError: HTTPParseError) {
        self = .error(parseError.status, code: parseError.code, message: parseError.reason, closeConnection: true)
    }

    /// 405 with the `Allow` header RFC 9110 §15.5.6 requires.
    public static func methodNotAllowed(allowed: [String]) -> HTTPResponse {
        var response = error(405, code: "method_not_allowed",
                             message: "This path accepts \(allowed.joined(separator: ", ")) only.")
        response.headers.add(name: "Allow", value: allowed.joined(separator: ", "))
        return response
    }

    /// 304 for a matching `If-None-Match`: no body, but the validator again (RFC 9110 §15.4.5).
    public static func notModified(etag: String) -> HTTPResponse {
        HTTPResponse(status: 304, headers: ["ETag": etag])
    }
}
