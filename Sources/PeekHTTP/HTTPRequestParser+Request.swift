extension HTTPRequestParser {
    /// The next complete request, or nil when more bytes are needed.
    ///
    /// Assembles the events of `next()`; use one style per parser. The body
    /// is held here until the request completes (at most the body limit) and
    /// handed over, so nothing stays behind between requests.
    ///
    /// - Parameter maxBodyBytes: asked once per request with its head, before
    ///   any body byte is read; a non-nil answer replaces `limits.maxBodyBytes`
    ///   for that request (e.g. a larger limit for attachment uploads).
    public mutating func nextRequest(
        maxBodyBytes: (HTTPRequestHead) -> Int? = { _ in nil }
    ) throws(HTTPParseError) -> HTTPRequest? {
        while true {
            switch try next() {
            case .needMoreData:
                return nil
            case .head(let head):
                assembledHead = head
                if let limit = maxBodyBytes(head) { overrideBodyLimit(limit) }
            case .body(let piece):
                assembledBody.append(contentsOf: piece)
            case .end:
                guard let head = assembledHead else {
                    // `.end` without `.head` means events were taken with `next()` in between.
                    assertionFailure("nextRequest() mixed with next() on one parser")
                    return nil
                }
                let request = HTTPRequest(head: head, body: assembledBody)
                assembledHead = nil
                assembledBody = []
                return request
            }
        }
    }
}
