/// A response as a value: status, headers and the whole body.
///
/// `encode` owns the framing: it always writes `Content-Length` itself
/// (dropping any Content-Length or Transfer-Encoding in `headers`), so a
/// handler cannot desynchronize the connection. No body and no length are
/// written for 1xx, 204 and 304 (RFC 9110 §6.4.1, §8.6).
public struct HTTPResponse: Sendable, Equatable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Adds `Connection: close`; the caller closes after the bytes are flushed.
    public var closeConnection: Bool

    public init(status: Int, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = [], closeConnection: Bool = false) {
        self.status = status
        self.headers = headers
        self.body = body
        self.closeConnection = closeConnection
    }

    /// Whether this status carries neither body nor Content-Length.
    public static func isBodiless(_ status: Int) -> Bool {
        (100 ..< 200).contains(status) || status == 204 || status == 304
    }

    /// Appends the status line, headers and (unless `headRequest`) the body.
    ///
    /// - Parameters:
    ///   - headRequest: the answer to HEAD: same headers, including the
    ///     Content-Length a GET would get (RFC 9110 §9.3.2), and no body.
    ///   - date: a preformatted `HTTPDate` value; the caller formats it once a
    ///     second, since this module has no clock.
    ///   - keepAliveHTTP10: the request was HTTP/1.0 with `Connection: keep-alive`,
    ///     which stays open only if the response says so too.
    public func encode(into out: inout [UInt8], headRequest: Bool = false, date: String? = nil, keepAliveHTTP10: Bool = false) {
        let bodiless = Self.isBodiless(status)
        out.append(contentsOf: "HTTP/1.1 \(status) \(Self.reasonPhrase(for: status))\r\n".utf8)
        if let date {
            Self.appendField(name: "Date", value: date, into: &out)
        }
        for field in headers where !Self.isFramingHeader(field.name) {
            Self.appendField(name: field.name, value: field.value, into: &out)
        }
        if !bodiless {
            Self.appendField(name: "Content-Length", value: String(body.count), into: &out)
        }
        if closeConnection {
            if !headers.containsToken("close", in: "Connection") {
                Self.appendField(name: "Connection", value: "close", into: &out)
            }
        } else if keepAliveHTTP10 && !headers.contains("Connection") {
            Self.appendField(name: "Connection", value: "keep-alive", into: &out)
        }
        out.append(contentsOf: [ASCII.cr, ASCII.lf])
        if !bodiless && !headRequest {
            out.append(contentsOf: body)
        }
    }

    /// Encodes the response for `request`: no body for HEAD, and the
    /// persistence HTTP/1.0 needs spelled out. Returns whether the connection
    /// must close after these bytes (asked for by either side).
    @discardableResult
    public func encode(into out: inout [UInt8], for request: HTTPRequestHead, date: String? = nil) -> Bool {
        let close = closeConnection || !request.keepAlive
        var response = self
        response.closeConnection = close
        response.encode(into: &out, headRequest: request.method == "HEAD", date: date,
                        keepAliveHTTP10: !close && request.version == .http1_0)
        return close
    }

    /// The encoded bytes, for tests and one-off answers.
    public func encoded(headRequest: Bool = false, date: String? = nil) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128 + body.count)
        encode(into: &out, headRequest: headRequest, date: date)
        return out
    }

    /// `HTTP/1.1 100 Continue` for a request with `expectsContinue`, written
    /// before reading its body.
    public static let continueBytes: [UInt8] = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    private static func isFramingHeader(_ name: String) -> Bool {
        ASCII.equalsIgnoringCase(name, "Content-Length") || ASCII.equalsIgnoringCase(name, "Transfer-Encoding")
    }

    /// CR, LF and NUL are dropped from names and values: a value that holds
    /// peer data (a file name, an id) must never start a header of its own.
    private static func appendField(name: String, value: String, into out: inout [UInt8]) {
        for byte in name.utf8 where byte != ASCII.cr && byte != ASCII.lf && byte != 0 { out.append(byte) }
        out.append(contentsOf: [ASCII.colon, ASCII.space])
        for byte in value.utf8 where byte != ASCII.cr && byte != ASCII.lf && byte != 0 { out.append(byte) }
        out.append(contentsOf: [ASCII.cr, ASCII.lf])
    }
}
