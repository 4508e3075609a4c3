/// An HTTP/1.1 response as a client reads it (RFC 9112), incrementally and
/// pure: bytes in, events out, no socket. peekd's outbound HTTP (the
/// tenant's assistant and summariser, `HTTPClient` in PeekServer) reads
/// every answer through this, so a hostile or broken endpoint can cost at
/// most the limits below.
///
/// Feed what arrives with `append`, say the peer closed with `finish`, and
/// take events with `next()` until it answers nil (more bytes needed) or
/// `.end`. The body is handed out as it arrives, not collected: a streamed
/// answer reaches its reader piece by piece.
///
/// Interim (1xx) heads are skipped. A body is delimited by
/// `Transfer-Encoding: chunked`, by `Content-Length`, or by the close of the
/// connection (RFC 9112 §6.3); 204 and 304 have none. Both headers at once,
/// two different lengths, or a coding other than `chunked` alone are
/// refused: a client that guessed would read a different body than a proxy
/// in between.
public struct HTTPResponseParser: Sendable {
    public struct Limits: Sendable, Equatable {
        /// The status line and the header fields together (and, apart, a
        /// chunked body's trailer fields).
        public var maxHeadBytes: Int
        public var maxHeaderCount: Int
        /// The body after decoding: the sum of the chunks, or the length.
        public var maxBodyBytes: Int

        public init(maxHeadBytes: Int = 16 * 1024, maxHeaderCount: Int = 100, maxBodyBytes: Int = 1 << 20) {
            self.maxHeadBytes = maxHeadBytes
            self.maxHeaderCount = maxHeaderCount
            self.maxBodyBytes = maxBodyBytes
        }
    }

    public enum Event: Sendable, Equatable {
        case head(HTTPResponseHead)
        /// The next bytes of the body (never empty).
        case body([UInt8])
        /// The response is complete.
        case end
    }

    public enum Error: Swift.Error, Sendable, Equatable {
        case malformedStatusLine
        case malformedHeader
        case headTooLarge
        case tooManyHeaders
        case badContentLength
        case unsupportedTransferCoding
        case badChunk
        case bodyTooLarge
        /// The connection closed before the response was complete.
        case truncated

        /// A sentence for a person (an `error` frame's message ends with it).
        public var text: String {
            switch self {
            case .malformedStatusLine: "the answer is not an HTTP/1.x response"
            case .malformedHeader: "the answer has a malformed header field"
            case .headTooLarge: "the answer's header is too large"
            case .tooManyHeaders: "the answer has too many header fields"
            case .badContentLength: "the answer has an invalid Content-Length"
            case .unsupportedTransferCoding: "the answer uses a transfer coding other than chunked"
            case .badChunk: "the answer's chunked body is malformed"
            case .bodyTooLarge: "the answer is too large"
            case .truncated: "the connection closed before the answer was complete"
            }
        }
    }

    private enum State: Equatable {
        case head
        case fixed(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkEnd
        case trailers(bytes: Int)
        case untilClose
        /// Complete: `.end` is the next event.
        case ending
        case done
        case failed(Error)
    }

    public let limits: Limits
    private var buffer: [UInt8] = []
    private var start = 0
    private var state = State.head
    private var closed = false
    private var bodyBytes = 0
    /// Bytes of the head read so far (interim heads included).
    private var headBytes = 0
    private var headLines: [ArraySlice<UInt8>] = []

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    public mutating func append(_ bytes: [UInt8]) {
        if start > 0 && start * 2 >= buffer.count {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The peer closed its side: a body delimited by the close ends here;
    /// any other unfinished response is `truncated`.
    public mutating func finish() { closed = true }

    /// True once `.end` was returned.
    public var isComplete: Bool { state == .done }

    /// Bytes after the end of the response (a server may not send any).
    public var hasUnconsumedInput: Bool { start < buffer.count }

    public mutating func next() throws(Error) -> Event? {
        if case .failed(let e) = state { throw e }
        do {
            return try step()
        } catch {
            state = .failed(error)
            throw error
        }
    }

    private mutating func step() throws(Error) -> Event? {
        while true {
            switch state {
            case .failed(let e): throw e
            case .done: return nil
            case .ending:
                state = .done
                return .end
            case .head:
                var counted = headBytes
                let read = try readLine(counting: &counted, limit: limits.maxHeadBytes, tooLarge: .headTooLarge)
                headBytes = counted
                guard let line = read else {
                    if closed { throw .truncated }
                    return nil
                }
                if !line.isEmpty {
                    guard headLines.count <= limits.maxHeaderCount else { throw .tooManyHeaders }
                    headLines.append(line)
                    continue
                }
                if headLines.isEmpty { throw .malformedStatusLine }   // an empty first line
                let head = try Self.parseHead(headLines)
                headLines = []
                if (100...199).contains(head.status) {
                    // 101 would hand the connection to another protocol: not an answer we asked for.
                    if head.status == 101 { throw .malformedStatusLine }
                    continue
                }
                let framing = try Self.framing(of: head)
                switch framing {
                case .none: state = .ending
                case .contentLength(let n):
                    guard n <= limits.maxBodyBytes else { throw .bodyTooLarge }
                    if n == 0 { state = .ending } else { state = .fixed(remaining: n) }
                case .chunked: state = .chunkSize
                case .untilClose: state = .untilClose
                }
                return .head(HTTPResponseHead(status: head.status, reason: head.reason, headers: head.headers))
            case .fixed(let remaining):
                guard let piece = try takeBody(upTo: remaining) else { return nil }
                state = piece.count == remaining ? .ending : .fixed(remaining: remaining - piece.count)
                return .body(piece)
            case .untilClose:
                if start < buffer.count {
                    // Up to the bound and no further, then the error: the
                    // same bytes come out however the input was split.
                    let room = limits.maxBodyBytes - bodyBytes
                    guard room > 0 else { throw .bodyTooLarge }
                    guard let piece = try takeBody(upTo: room) else { return nil }
                    return .body(piece)
                }
                if closed { state = .done; return .end }
                return nil
            case .chunkSize:
                var lineBytes = 0
                guard let line = try readLine(counting: &lineBytes, limit: 1024, tooLarge: .badChunk) else {
                    if closed { throw .truncated }
                    return nil
                }
                let size = try Self.chunkSize(line)
                if size == 0 {
                    state = .trailers(bytes: 0)
                    continue
                }
                guard size <= limits.maxBodyBytes - bodyBytes else { throw .bodyTooLarge }
                state = .chunkData(remaining: size)
            case .chunkData(let remaining):
                guard let piece = try takeBody(upTo: remaining) else { return nil }
                state = piece.count == remaining ? .chunkEnd : .chunkData(remaining: remaining - piece.count)
                return .body(piece)
            case .chunkEnd:
                var lineBytes = 0
                guard let line = try readLine(counting: &lineBytes, limit: 2, tooLarge: .badChunk) else {
                    if closed { throw .truncated }
                    return nil
                }
                guard line.isEmpty else { throw .badChunk }
                state = .chunkSize
            case .trailers(var bytes):
                let line = try readLine(counting: &bytes, limit: limits.maxHeadBytes, tooLarge: .headTooLarge)
                state = .trailers(bytes: bytes)
                guard let line else {
                    if closed { throw .truncated }
                    return nil
                }
                if line.isEmpty { state = .done; return .end }
                // Trailer fields are read for their syntax and dropped.
                _ = try Self.field(line)
            }
        }
    }

    /// The next line without its LF (and a CR before it), or nil when no
    /// whole line is buffered yet. `count` adds the line's bytes; past
    /// `limit` it throws `tooLarge`, also for a line still incomplete.
    /// Up to `remaining` body bytes of what has arrived; nil while none
    /// has, and a truncation once the peer closed before they came.
    private mutating func takeBody(upTo remaining: Int) throws(Error) -> [UInt8]? {
        guard start < buffer.count else {
            if closed { throw .truncated }
            return nil
        }
        let n = min(remaining, buffer.count - start)
        let piece = Array(buffer[start..<start + n])
        start += n
        bodyBytes += n
        return piece
    }

    private mutating func readLine(counting count: inout Int, limit: Int, tooLarge: Error) throws(Error) -> ArraySlice<UInt8>? {
        var i = start
        while i < buffer.count && buffer[i] != ASCII.lf { i += 1 }
        guard i < buffer.count else {
            if count + (buffer.count - start) > limit { throw tooLarge }
            return nil
        }
        count += i + 1 - start
        if count > limit { throw tooLarge }
        var end = i
        if end > start && buffer[end - 1] == ASCII.cr { end -= 1 }
        let line = buffer[start..<end]
        start = i + 1
        return line
    }

    private struct ParsedHead {
        var status: Int
        var reason: String
        var headers: HTTPHeaders
    }

    private static func parseHead(_ lines: [ArraySlice<UInt8>]) throws(Error) -> ParsedHead {
        let statusLine = lines[0]
        // "HTTP/1.1 200 OK": version, space, three digits, then a space and a reason or nothing.
        let prefix: [UInt8] = Array("HTTP/1.".utf8)
        guard statusLine.count >= 12, statusLine.prefix(7).elementsEqual(prefix) else { throw .malformedStatusLine }
        let b = Array(statusLine)
        guard b[7] == UInt8(ascii: "0") || b[7] == UInt8(ascii: "1"), b[8] == ASCII.space else { throw .malformedStatusLine }
        var status = 0
        for d in b[9..<12] {
            guard d >= UInt8(ascii: "0") && d <= UInt8(ascii: "9") else { throw .malformedStatusLine }
            status = status * 10 + Int(d - UInt8(ascii: "0"))
        }
        guard (100...599).contains(status) else { throw .malformedStatusLine }
        var reason = ""
        if b.count > 12 {
            guard b[12] == ASCII.space else { throw .malformedStatusLine }
            let text = b[13...]
            guard text.allSatisfy({ $0 == ASCII.tab || ($0 >= 0x20 && $0 != 0x7F) }) else { throw .malformedStatusLine }
            reason = String(decoding: text, as: UTF8.self)
        }
        var fields: [HTTPHeaders.Field] = []
        for line in lines.dropFirst() { fields.append(try field(line)) }
        return ParsedHead(status: status, reason: reason, headers: HTTPHeaders(fields))
    }

    private static func field(_ line: ArraySlice<UInt8>) throws(Error) -> HTTPHeaders.Field {
        guard let colon = line.firstIndex(of: ASCII.colon), colon > line.startIndex else { throw .malformedHeader }
        let name = line[line.startIndex..<colon]
        // A space before the colon, or a line folded onto the previous one, is refused (RFC 9112 §5.1, §5.2).
        guard name.allSatisfy(ASCII.isTokenByte) else { throw .malformedHeader }
        let value = ASCII.trimmingWhitespace(line[(colon + 1)...])
        guard value.allSatisfy({ $0 == ASCII.tab || ($0 >= 0x20 && $0 != 0x7F) }) else { throw .malformedHeader }
        return (name: String(decoding: name, as: UTF8.self), value: String(decoding: value, as: UTF8.self))
    }

    private enum Framing { case none, contentLength(Int), chunked, untilClose }

    private static func framing(of head: ParsedHead) throws(Error) -> Framing {
        if head.status == 204 || head.status == 304 { return .none }
        let codings = head.headers.listElements("transfer-encoding")
        let lengths = head.headers.all("content-length")
        if !codings.isEmpty || head.headers.contains("transfer-encoding") {
            guard lengths.isEmpty else { throw .badContentLength }
            guard codings.count == 1, ASCII.equalsIgnoringCase(codings[0], "chunked") else { throw .unsupportedTransferCoding }
            return .chunked
        }
        guard !lengths.isEmpty else { return .untilClose }
        var length: Int?
        for value in lengths {
            for element in value.split(separator: ",", omittingEmptySubsequences: false) {
                let digits = ASCII.trimmingWhitespace(element)
                guard !digits.isEmpty, digits.utf8.count <= 15,
                      digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                      let n = Int(digits) else { throw .badContentLength }
                if let length, length != n { throw .badContentLength }
                length = n
            }
        }
        return .contentLength(length!)
    }

    private static func chunkSize(_ line: ArraySlice<UInt8>) throws(Error) -> Int {
        var size = 0
        var digits = 0
        var i = line.startIndex
        while i < line.endIndex, let v = ASCII.hexValue(line[i]) {
            digits += 1
            guard digits <= 15 else { throw .badChunk }
            size = size << 4 | Int(v)
            i += 1
        }
        guard digits > 0 else { throw .badChunk }
        // Whitespace, then extensions after ';', are allowed and ignored.
        while i < line.endIndex && ASCII.isWhitespace(line[i]) { i += 1 }
        guard i == line.endIndex || line[i] == ASCII.semicolon else { throw .badChunk }
        guard line[i...].allSatisfy({ $0 == ASCII.tab || ($0 >= 0x20 && $0 != 0x7F) }) else { throw .badChunk }
        return size
    }
}

public struct HTTPResponseHead: Sendable, Equatable {
    public var status: Int
    public var reason: String
    public var headers: HTTPHeaders

    public init(status: Int, reason: String, headers: HTTPHeaders) {
        self.status = status
        self.reason = reason
        self.headers = headers
    }
}
