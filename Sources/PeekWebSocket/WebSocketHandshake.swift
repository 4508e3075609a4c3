import PeekCrypto

/// The server side of the opening handshake (RFC 6455 §4.2). The HTTP parser hands over the
/// request line and headers; this decides between a 101 and an error status. Origin checking
/// belongs to the caller, which knows the allow-list: the value is passed through in
/// `Acceptance.origin` (§4.2.2 item 4 permits refusing with 403).
public enum WebSocketHandshake {
    /// §1.3: the GUID appended to the client's key before hashing.
    public static let keyGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key` (§4.2.2 item 5.4):
    /// base64(SHA-1(key + GUID)).
    public static func acceptKey(for key: String) -> String {
        Base64.encode(Crypto.sha1(Array((key + keyGUID).utf8)))
    }

    /// A valid upgrade request, ready to answer.
    public struct Acceptance: Equatable, Sendable {
        public var acceptKey: String
        /// Negotiated compression (nil: none offered, none acceptable, or disabled).
        public var deflate: PerMessageDeflateParameters?
        /// The `Origin` header, for the caller's allow-list check; nil when absent.
        public var origin: String?

        /// The 101 response (§4.2.2 item 5). `extraHeaders` are written as given.
        public func responseBytes(extraHeaders: [(name: String, value: String)] = []) -> [UInt8] {
            var text = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            text += "Sec-WebSocket-Accept: \(acceptKey)\r\n"
            if let deflate { text += "Sec-WebSocket-Extensions: \(deflate.responseHeaderValue)\r\n" }
            for header in extraHeaders { text += "\(header.name): \(header.value)\r\n" }
            text += "\r\n"
            return Array(text.utf8)
        }
    }

    /// Why the upgrade is refused: an HTTP status, the headers that status requires, and a
    /// sentence a person can act on.
    public struct Rejection: Error, Equatable, Sendable {
        public var status: Int
        public var reasonPhrase: String
        public var message: String
        public var headers: [(name: String, value: String)]

        public init(status: Int, reasonPhrase: String, message: String, headers: [(name: String, value: String)] = []) {
            self.status = status
            self.reasonPhrase = reasonPhrase
            self.message = message
            self.headers = headers
        }

        public static func == (a: Rejection, b: Rejection) -> Bool {
            a.status == b.status && a.reasonPhrase == b.reasonPhrase && a.message == b.message
                && a.headers.elementsEqual(b.headers) { $0.name == $1.name && $0.value == $1.value }
        }

        /// A minimal plain-text response that closes the connection; the HTTP layer may render
        /// its own instead from `status`, `headers` and `message`.
        public func responseBytes() -> [UInt8] {
            let body = message + "\n"
            var text = "HTTP/1.1 \(status) \(reasonPhrase)\r\n"
            for header in headers { text += "\(header.name): \(header.value)\r\n" }
            text += "Content-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
            text += body
            return Array(text.utf8)
        }
    }

    /// Validates an upgrade request (§4.2.1) given its headers as parsed, in order. Header names
    /// compare case-insensitively; repeated list headers (`Connection`, `Upgrade`,
    /// `Sec-WebSocket-Extensions`) are read as one comma-joined list.
    public static func validate(method: String, httpVersion: (major: Int, minor: Int),
                                headers: [(name: String, value: String)],
                                allowDeflate: Bool = true) throws(Rejection) -> Acceptance {
        try validate(method: method, httpVersion: httpVersion, allowDeflate: allowDeflate) { name in
            headers.compactMap { asciiLowercased($0.name) == name ? $0.value : nil }
        }
    }

    /// Same, with a lookup: `headerValues` receives a lowercase header name and returns every
    /// value of that header in order (empty when absent).
    public static func validate(method: String, httpVersion: (major: Int, minor: Int),
                                allowDeflate: Bool = true,
                                headerValues: (String) -> [String]) throws(Rejection) -> Acceptance {
        guard method == "GET" else {
            throw Rejection(status: 405, reasonPhrase: "Method Not Allowed",
                            message: "A WebSocket upgrade must be a GET request.", headers: [("Allow", "GET")])
        }
        guard httpVersion.major > 1 || (httpVersion.major == 1 && httpVersion.minor >= 1) else {
            throw Rejection(status: 400, reasonPhrase: "Bad Request",
                            message: "A WebSocket upgrade needs HTTP/1.1 or later.")
        }
        // RFC 9110 §15.5.22: a 426 must name the protocol to switch to.
        guard listTokens(headerValues("upgrade")).contains(where: { asciiLowercased($0) == "websocket" }) else {
            throw Rejection(status: 426, reasonPhrase: "Upgrade Required",
                            message: "This endpoint only speaks WebSocket: send Upgrade: websocket.",
                            headers: [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13")])
        }
        guard listTokens(headerValues("connection")).contains(where: { asciiLowercased($0) == "upgrade" }) else {
            throw Rejection(status: 400, reasonPhrase: "Bad Request",
                            message: "The Connection header must include \"Upgrade\".")
        }
        // §4.2.2: an unsupported version gets 426 listing the versions we speak.
        let versions = headerValues("sec-websocket-version")
        guard versions.count == 1, trimmed(versions[0]) == "13" else {
            throw Rejection(status: 426, reasonPhrase: "Upgrade Required",
                            message: "Only WebSocket version 13 is supported.",
                            headers: [("Sec-WebSocket-Version", "13")])
        }
        let keys = headerValues("sec-websocket-key")
        guard keys.count == 1, isValidKey(trimmed(keys[0])) else {
            throw Rejection(status: 400, reasonPhrase: "Bad Request",
                            message: "Sec-WebSocket-Key must be the base64 encoding of 16 bytes.")
        }
        guard headerValues("host").contains(where: { !trimmed($0).isEmpty }) else {
            throw Rejection(status: 400, reasonPhrase: "Bad Request", message: "The request has no Host header.")
        }
        let deflate = allowDeflate ? PerMessageDeflate.negotiate(offers: headerValues("sec-websocket-extensions")) : nil
        let origin = headerValues("origin").first.map(trimmed)
        return Acceptance(acceptKey: acceptKey(for: trimmed(keys[0])), deflate: deflate, origin: origin)
    }

    /// §4.1: "a randomly selected 16-byte value that has been base64-encoded", which is always 22
    /// base64 characters and "==". Stricter than `Base64.decode`, which also takes the URL-safe
    /// alphabet, whitespace and missing padding.
    static func isValidKey(_ key: String) -> Bool {
        let bytes = Array(key.utf8)
        guard bytes.count == 24, bytes[22] == UInt8(ascii: "="), bytes[23] == UInt8(ascii: "=") else { return false }
        for c in bytes[..<22] {
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "/"):
                continue
            default:
                return false
            }
        }
        return Base64.decode(key)?.count == 16
    }

    /// Elements of comma-separated header values, trimmed, empties dropped (RFC 9110 §5.6.1).
    static func listTokens(_ values: [String]) -> [String] {
        values.flatMap { $0.split(separator: ",").map { trimmed(String($0)) } }.filter { !$0.isEmpty }
    }

    static func trimmed(_ s: String) -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = s.firstIndex(where: { !isSpace($0) }), let last = s.lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(s[first...last])
    }

    /// Header names and tokens are ASCII-case-insensitive; `lowercased()` would also fold
    /// non-ASCII letters, which no HTTP token contains.
    static func asciiLowercased(_ s: String) -> String {
        String(decoding: s.utf8.map { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) ? $0 | 0x20 : $0 }, as: UTF8.self)
    }
}
