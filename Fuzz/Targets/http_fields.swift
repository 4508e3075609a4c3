// The small parsers of request fields, one target (a dispatcher: the first
// byte picks the parser, the rest is its input), since each is a few lines
// and separate binaries would cost a link and a CI slot apiece:
//   0 query string            4 route matching (the API's patterns)
//   1 percent-decoding        5 static file paths: never escape the root
//   2 HTTP dates: round trip  6 WebSocket upgrade headers and deflate offers
//   3 If-None-Match lists     7 the Host header in the security headers
import PeekHTTP
import PeekWebSocket

private let router: Router<Int> = {
    var r = Router<Int>()
    for (index, pattern) in ["/v1/tenants", "/v1/tenants/{tenant}/technicians", "/v1/tickets/{id}",
                             "/v1/tickets/{id}/attachments", "/v1/attachments/{id}", "/v1/me/tickets"].enumerated() {
        r.add("GET", pattern, index)
        r.add("POST", pattern, index)
    }
    return r
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let choice = input.byte() % 8
    let bytes = input.rest()
    let text = String(decoding: bytes, as: UTF8.self)
    switch choice {
    case 0:
        _ = QueryString.parse(text)
    case 1:
        if let decoded = PercentEncoding.decode(text) { require(decoded.count <= text.utf8.count, "decoding grew the text") }
        _ = PercentEncoding.decodeString(text)
        _ = PercentEncoding.decodeFormComponent(text)
    case 2:
        if let seconds = HTTPDate.parse(text) {
            let formatted = HTTPDate.format(unixSeconds: seconds)
            require(HTTPDate.parse(formatted) == seconds, "\(text.debugDescription) -> \(seconds) -> \(formatted)")
        }
    case 3:
        _ = ETag.ifNoneMatch(text, matches: ETag.strong(for: Array("body".utf8)))
    case 4:
        _ = router.match(method: "GET", path: text)
    case 5:
        if let path = try? StaticFiles.relativePath(for: text) {
            let segments = path.split(separator: "/", omittingEmptySubsequences: false)
            require(!path.hasPrefix("/") && !segments.contains { $0.isEmpty || $0.hasPrefix(".") }
                    && !path.utf8.contains(0) && !path.contains("\\"),
                    "\(text.debugDescription) escapes the root as \(path.debugDescription)")
        }
    case 7:
        // The Host header goes into Content-Security-Policy: it must not end or add a directive.
        for (name, value) in StaticFiles.securityHeaders(host: text) {
            require(!value.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" }), "\(name) carries a line break for \(text.debugDescription)")
            if name == "Content-Security-Policy" {
                require(value.split(separator: ";").count == 8, "Host \(text.debugDescription) changed the directives: \(value)")
            }
        }
    default:
        // Header lines "name: value"; the upgrade is checked as the HTTP handler passes them.
        let headers: [(name: String, value: String)] = text.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else { return nil }
            return (String(parts[0]), String(parts[1]).trimmingCharacters(in: " "))
        }
        if let accepted = try? WebSocketHandshake.validate(method: "GET", httpVersion: (1, 1), headers: headers) {
            require(accepted.acceptKey.utf8.count == 28, "accept key \(accepted.acceptKey)")
            _ = accepted.responseBytes()
        }
        _ = PerMessageDeflate.negotiate(offers: headers.map { $0.value })
    }
    return 0
}

private extension String {
    func trimmingCharacters(in set: Character) -> String {
        String(drop(while: { $0 == set }).reversed().drop(while: { $0 == set }).reversed())
    }
}
