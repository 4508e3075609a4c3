/// The request line and header fields of one request.
///
/// Built by `HTTPRequestParser`, which has already checked the syntax and
/// decided the body framing; the computed properties below only interpret
/// what was accepted.
public struct HTTPRequestHead: Sendable, Equatable {
    /// The method token exactly as sent; methods are case-sensitive (RFC 9110 §9.1).
    public var method: String
    /// The request-target as sent, percent-encoding intact.
    public var target: String
    /// The path part of the target, still percent-encoded (decode per segment:
    /// `Router` and `StaticFiles` do). For absolute-form targets
    /// (`http://host/p?q`) this is `/p`; for `OPTIONS *` it is `*`; for
    /// CONNECT's authority-form it is the authority.
    public var path: String
    /// What follows the first `?`, without it, still encoded; nil when the target has no `?`.
    public var query: String?
    public var version: HTTPVersion
    public var headers: HTTPHeaders
    public var framing: HTTPBodyFraming

    public init(method: String, target: String, version: HTTPVersion = .http1_1,
                headers: HTTPHeaders = HTTPHeaders(), framing: HTTPBodyFraming = .noBody) {
        self.method = method
        self.target = target
        let (path, query) = HTTPRequestHead.splitTarget(target)
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.framing = framing
    }

    /// The first value of a header, compared case-insensitively.
    public func header(_ name: String) -> String? { headers.first(name) }

    /// Every value of a header, in arrival order.
    public func headers(named name: String) -> [String] { headers.all(name) }

    /// The validated body length when the body is framed by Content-Length.
    public var contentLength: Int? {
        if case .contentLength(let n) = framing { return n }
        return nil
    }

    public var isChunked: Bool { framing == .chunked }

    /// Whether the connection stays open after the response (RFC 9112 §9.3):
    /// HTTP/1.1 persists unless `Connection: close`; HTTP/1.0 closes unless
    /// `Connection: keep-alive`.
    public var keepAlive: Bool {
        switch version {
        case .http1_1: return !headers.containsToken("close", in: "Connection")
        case .http1_0:
            return headers.containsToken("keep-alive", in: "Connection")
                && !headers.containsToken("close", in: "Connection")
        }
    }

    /// A protocol switch was asked for: `Connection` lists `upgrade` and an
    /// `Upgrade` header names the protocol (RFC 9110 §7.8). Whether it is
    /// accepted (e.g. only `websocket` on GET) is the caller's decision.
    public var isUpgrade: Bool {
        headers.containsToken("upgrade", in: "Connection") && headers.contains("Upgrade")
    }

    /// `Expect: 100-continue` on HTTP/1.1 (RFC 9110 §10.1.1): the client may
    /// wait for an interim `100 Continue` before sending the body.
    public var expectsContinue: Bool {
        version == .http1_1 && headers.all("Expect").contains { ASCII.equalsIgnoringCase(ASCII.trimmingWhitespace($0[...]), "100-continue") }
    }

    /// The query string split into decoded name/value pairs (`+` is a space).
    public var queryItems: [(name: String, value: String)] {
        QueryString.parse(query ?? "")
    }

    /// Splits origin-form and absolute-form targets into path and query.
    static func splitTarget(_ target: String) -> (path: String, query: String?) {
        var rest = Substring(target)
        // absolute-form (RFC 9112 §3.2.2): drop "scheme://authority"; servers must accept it.
        if !rest.hasPrefix("/"), let colon = rest.firstIndex(of: ":"),
           rest[colon...].hasPrefix("://"),
           rest[..<colon].utf8.allSatisfy({ ASCII.isSchemeByte($0) }) {
            let authorityStart = rest.index(colon, offsetBy: 3)
            let afterScheme = rest[authorityStart...]
            if let start = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" }) {
                rest = afterScheme[start...]
            } else {
                rest = ""
            }
            if !rest.hasPrefix("/") { rest = Substring("/" + String(rest)) }
        }
        guard let q = rest.firstIndex(of: "?") else { return (String(rest), nil) }
        return (String(rest[..<q]), String(rest[rest.index(after: q)...]))
    }
}
