extension HTTPResponse {
    /// A JSON body as given (already encoded), with its content type.
    public static func json(_ status: Int, _ body: [UInt8], closeConnection: Bool = false) -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": "application/json"], body: body,
                     closeConnection: closeConnection)
    }

    public static func text(_ status: Int, _ text: String) -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": "text/plain; charset=utf-8"], body: Array(text.utf8))
    }

    /// The contract's error body: `{"error":{"code":…,"message":…}}`.
    public static func error(_ status: Int, code: String, message: String, closeConnection: Bool = false) -> HTTPResponse {
        var body: [UInt8] = []
        body.append(contentsOf: #"{"error":{"code":"#.utf8)
        JSONText.appendString(code, to: &body)
        body.append(contentsOf: #","message":"#.utf8)
        JSONText.appendString(message, to: &body)
        body.append(contentsOf: "}}".utf8)
        return json(status, body, closeConnection: closeConnection)
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

/// The little JSON this module writes: error bodies with known keys.
enum JSONText {
    /// A JSON string literal with RFC 8259 §7 escapes.
    static func appendString(_ string: String, to out: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        out.append(ASCII.quote)
        for byte in string.utf8 {
            switch byte {
            case ASCII.quote: out.append(contentsOf: [ASCII.backslash, ASCII.quote])
            case ASCII.backslash: out.append(contentsOf: [ASCII.backslash, ASCII.backslash])
            case ASCII.lf: out.append(contentsOf: [ASCII.backslash, UInt8(ascii: "n")])
            case ASCII.cr: out.append(contentsOf: [ASCII.backslash, UInt8(ascii: "r")])
            case ASCII.tab: out.append(contentsOf: [ASCII.backslash, UInt8(ascii: "t")])
            case 0 ..< 0x20:
                out.append(contentsOf: Array(#"\u00"#.utf8))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xF)])
            default: out.append(byte)
            }
        }
        out.append(ASCII.quote)
    }
}
