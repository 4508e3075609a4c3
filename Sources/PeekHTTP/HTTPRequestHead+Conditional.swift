extension HTTPRequestHead {
    /// True when this is a GET or HEAD whose `If-None-Match` (all lines, as
    /// one list) matches `etag`: answer `HTTPResponse.notModified(etag:)`.
    /// Other methods get false, since for them a match means 412, which the
    /// static-file path never needs (RFC 9110 §13.1.2).
    public func isNotModified(etag: String) -> Bool {
        guard method == "GET" || method == "HEAD" else { return false }
        return headers(named: "If-None-Match").contains { ETag.ifNoneMatch($0, matches: etag) }
    }
}
