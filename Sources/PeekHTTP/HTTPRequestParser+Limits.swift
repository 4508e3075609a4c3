extension HTTPRequestParser {
    /// Every length a client controls, with what happens when it is passed.
    /// The defaults fit the back-end API and the browser; `maxBodyBytes` is
    /// the one a caller raises (attachment uploads), per parser or per request
    /// with `overrideBodyLimit(_:)`.
    public struct Limits: Sendable, Equatable {
        /// Request line without its CRLF. Over it: 414 when the target is what
        /// ran long (no space after it within the limit), otherwise 400.
        public var maxRequestLineBytes: Int
        /// Header section after the request line, CRLFs and the blank line
        /// included. Over it: 431. Also bounds a chunked body's trailers (431).
        public var maxHeaderBytes: Int
        /// Header lines. Over it: 431. Also bounds trailer lines (431).
        public var maxHeaderCount: Int
        /// Decoded body bytes, checked against Content-Length before any body
        /// byte is buffered, and against each chunk size before its data. Over it: 413.
        public var maxBodyBytes: Int
        /// One chunk-size line with its extensions. Over it: 400. Sizes need
        /// 16 hex digits at most; only extensions can make a line long.
        public var maxChunkLineBytes: Int
        /// Refuse HTTP/1.1 requests without Host with 400, as RFC 9112 §3.2
        /// requires. Off only for hand-written test clients.
        public var requireHost: Bool

        public init(maxRequestLineBytes: Int = 8 * 1024,
                    maxHeaderBytes: Int = 16 * 1024,
                    maxHeaderCount: Int = 100,
                    maxBodyBytes: Int = 1024 * 1024,
                    maxChunkLineBytes: Int = 1024,
                    requireHost: Bool = true) {
            self.maxRequestLineBytes = maxRequestLineBytes
            self.maxHeaderBytes = maxHeaderBytes
            self.maxHeaderCount = maxHeaderCount
            self.maxBodyBytes = maxBodyBytes
            self.maxChunkLineBytes = maxChunkLineBytes
            self.requireHost = requireHost
        }
    }
}
