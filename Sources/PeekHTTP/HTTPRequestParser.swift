/// Incremental HTTP/1.1 request parser: bytes in, heads and body pieces out.
///
/// The connection appends what it read and drains events until
/// `.needMoreData`; input may be split at any byte and may hold several
/// pipelined requests:
///
/// ```swift
/// parser.append(chunk)
/// drain: while true {
///     switch try parser.next() {
///     case .needMoreData:    break drain
///     case .head(let head):  route(head)                // body not read yet: 100-continue, overrideBodyLimit
///     case .body(let piece): body.append(contentsOf: piece)
///     case .end:             respond()                  // responses go out in request order
///     }
/// }
/// ```
///
/// Or, for whole requests, `nextRequest()` (HTTPRequestParser+Request.swift).
///
/// Bounds (see `Limits`) are enforced as bytes arrive, not when a line ends,
/// so a peer cannot make the parser buffer more than about
/// `maxRequestLineBytes + maxHeaderBytes` plus one read of head bytes, and a
/// body is refused from its Content-Length or chunk size before its bytes are
/// buffered. Call `next()` after every `append`: `append` itself never refuses.
///
/// Memory: the parser owns only bytes not yet handed out. When a request ends
/// and nothing follows it, the buffer is freed (not just emptied), so an idle
/// keep-alive connection holds no receive storage here. Body pieces are copies;
/// the parser keeps none of them.
///
/// Errors: the first error is final. `next()` throws it again on every later
/// call and buffered bytes are dropped, since after a framing error nobody
/// knows where the next request would start; answer `error.status` and close.
public struct HTTPRequestParser: Sendable {
    public var limits: Limits

    private var buffer: [UInt8] = []
    /// Bytes before this index are consumed. Every offset kept in `state` is
    /// relative to it, so compaction never has to fix them up.
    private var readIndex = 0
    private var state: State = .head(HeadScan())
    /// The body limit of the current request: `limits.maxBodyBytes` unless overridden after `.head`.
    private var bodyLimit: Int
    private var bodyReceived = 0

    // Used only by `nextRequest()`; empty between requests.
    var assembledHead: HTTPRequestHead?
    var assembledBody: [UInt8] = []

    struct HeadScan: Sendable {
        /// Bytes after `readIndex` already searched for LF, so a head that
        /// arrives a byte at a time is scanned once, not quadratically.
        var scanned = 0
        var lineStart = 0
        /// Offset just past the request line's LF, once it has been seen.
        var requestLineEnd: Int?
        var fieldLines = 0
    }

    struct TrailerScan: Sendable {
        var scanned = 0
        var bytes = 0
        var lines = 0
    }

    enum State: Sendable {
        case head(HeadScan)
        /// `.head` was returned; the body limit is checked on the next call so
        /// the caller can raise it for this request in between.
        case bodyStart(HTTPBodyFraming)
        case fixedBody(remaining: Int)
        case chunkSizeLine(scanned: Int)
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers(TrailerScan)
        case complete
        case failed(HTTPParseError)
    }

    public init(limits: Limits = Limits()) {
        self.limits = limits
        self.bodyLimit = limits.maxBodyBytes
    }

    /// Bytes appended but not yet consumed.
    public var bufferedByteCount: Int { buffer.count - readIndex }

    /// True once any byte of a request has arrived and until its `.end`:
    /// the connection is then mid-request (request timeout), not idle
    /// (keep-alive timeout).
    public var isMidRequest: Bool {
        if case .head(let scan) = state {
            return scan.scanned > 0 || bufferedByteCount > 0
        }
        if case .failed = state { return false }
        return true
    }

    /// Capacity of the receive buffer, for tests of idle-connection memory.
    var bufferCapacity: Int { buffer.capacity }

    /// Adds bytes read from the peer. Consumed bytes are dropped first when
    /// they make up at least half the buffer, which keeps compaction
    /// amortized O(1) per byte even with many small pipelined requests.
    /// After an error the bytes are ignored.
    public mutating func append(_ bytes: some Sequence<UInt8>) {
        if case .failed = state { return }
        if readIndex > 0 && readIndex >= buffer.count - readIndex {
            if readIndex == buffer.count {
                buffer.removeAll(keepingCapacity: true)
            } else {
                buffer.removeFirst(readIndex)
            }
            readIndex = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// Raises (or lowers) the body limit for the current request only; call it
    /// after `.head` and before the next `next()`. The next request starts
    /// again from `limits.maxBodyBytes`.
    public mutating func overrideBodyLimit(_ maxBodyBytes: Int) {
        bodyLimit = maxBodyBytes
    }

    /// The refusal the next `next()` will throw for the current request's
    /// declared Content-Length, under the limit in force now (call it after
    /// `.head` and any `overrideBodyLimit`). A server answering
    /// `Expect: 100-continue` asks this first: `100 Continue` would invite
    /// the client to send a body that is then refused unread (RFC 9110
    /// §10.1.1 lets the server answer the final status instead).
    public var declaredBodyRefusal: HTTPParseError? {
        guard case .bodyStart(.contentLength(let length)) = state, length > bodyLimit else { return nil }
        return .bodyTooLarge(limit: bodyLimit)
    }

    /// Hands over everything not yet parsed and resets the parser. For a
    /// protocol switch: after `.end` of an upgrade request the server accepts,
    /// these bytes (frames the client sent early) belong to the new protocol.
    public mutating func takeUnconsumedBytes() -> [UInt8] {
        let rest = Array(buffer[readIndex...])
        buffer = []
        readIndex = 0
        state = .head(HeadScan())
        bodyLimit = limits.maxBodyBytes
        bodyReceived = 0
        return rest
    }

    /// The next event, or `.needMoreData` once the buffer is used up.
    public mutating func next() throws(HTTPParseError) -> HTTPParseResult {
        do throws(HTTPParseError) {
            return try step()
        } catch {
            state = .failed(error)
            buffer = []
            readIndex = 0
            assembledHead = nil
            assembledBody = []
            throw error
        }
    }

    private mutating func step() throws(HTTPParseError) -> HTTPParseResult {
        while true {
            switch state {
            case .failed(let error):
                throw error

            case .head(var scan):
                guard let head = try scanHead(&scan) else {
                    state = .head(scan)
                    return .needMoreData
                }
                bodyLimit = limits.maxBodyBytes
                bodyReceived = 0
                switch head.framing {
                case .noBody, .contentLength(0): state = .complete
                default: state = .bodyStart(head.framing)
                }
                return .head(head)

            case .bodyStart(let framing):
                switch framing {
                case .contentLength(let length):
                    // Refuse from the header alone, before a byte of the body is buffered.
                    guard length <= bodyLimit else { throw .bodyTooLarge(limit: bodyLimit) }
                    state = .fixedBody(remaining: length)
                case .chunked:
                    state = .chunkSizeLine(scanned: 0)
                case .noBody:
                    state = .complete
                }

            case .fixedBody(let remaining):
                guard let piece = takeBody(upTo: remaining) else { return .needMoreData }
                state = piece.count == remaining ? .complete : .fixedBody(remaining: remaining - piece.count)
                return .body(piece)

            case .chunkSizeLine(let scanned):
                guard let size = try scanChunkSizeLine(scanned: scanned) else { return .needMoreData }
                if size == 0 {
                    state = .trailers(TrailerScan())
                } else {
                    // Checked per chunk, before its data, so the sum of many chunks is bounded too.
                    guard size <= bodyLimit - bodyReceived else { throw .bodyTooLarge(limit: bodyLimit) }
                    state = .chunkData(remaining: size)
                }

            case .chunkData(let remaining):
                guard let piece = takeBody(upTo: remaining) else { return .needMoreData }
                bodyReceived += piece.count
                state = piece.count == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - piece.count)
                return .body(piece)

            case .chunkDataEnd:
                let available = buffer.count - readIndex
                guard available > 0 else { return .needMoreData }
                if buffer[readIndex] == ASCII.lf {
                    readIndex += 1
                } else if buffer[readIndex] == ASCII.cr {
                    guard available >= 2 else { return .needMoreData }
                    guard buffer[readIndex + 1] == ASCII.lf else { throw .missingChunkTerminator }
                    readIndex += 2
                } else {
                    throw .missingChunkTerminator
                }
                state = .chunkSizeLine(scanned: 0)

            case .trailers(var scan):
                guard try scanTrailerLine(&scan) else {
                    state = .trailers(scan)
                    return .needMoreData
                }

            case .complete:
                state = .head(HeadScan())
                bodyLimit = limits.maxBodyBytes
                bodyReceived = 0
                releaseConsumedBytes()
                return .end
            }
        }
    }

    /// Copies out up to `limit` buffered body bytes; nil when none are buffered.
    private mutating func takeBody(upTo limit: Int) -> [UInt8]? {
        let count = min(buffer.count - readIndex, limit)
        guard count > 0 else { return nil }
        let piece = Array(buffer[readIndex ..< readIndex + count])
        readIndex += count
        return piece
    }

    /// Frees the buffer between requests when nothing follows, and shrinks it
    /// when a large consumed prefix (a body) sits in front of a small pipelined
    /// remainder, so a connection going idle keeps no large allocation.
    private mutating func releaseConsumedBytes() {
        if readIndex == buffer.count {
            buffer = []
            readIndex = 0
        } else if readIndex >= buffer.count - readIndex {
            buffer = Array(buffer[readIndex...])
            readIndex = 0
        }
    }

    // MARK: Head

    /// Finds the end of the head line by line, checking each bound as soon as
    /// it can be passed. Returns nil when more bytes are needed.
    ///
    /// The checks run in the same order whatever the input split: a line is
    /// checked when its LF arrives, and a partial line only for the bound it
    /// has already passed, so split and whole input give the same error.
    private mutating func scanHead(_ scan: inout HeadScan) throws(HTTPParseError) -> HTTPRequestHead? {
        while true {
            let available = buffer.count - readIndex
            guard let lf = buffer[(readIndex + scan.scanned)...].firstIndex(of: ASCII.lf) else {
                scan.scanned = available
                try checkPartialHead(scan, available: available)
                return nil
            }
            let lfOffset = lf - readIndex
            var lineEnd = lfOffset
            if lineEnd > scan.lineStart && buffer[lf - 1] == ASCII.cr { lineEnd -= 1 }
            let lineLength = lineEnd - scan.lineStart
            scan.scanned = lfOffset + 1

            guard let requestLineEnd = scan.requestLineEnd else {
                if lineLength == 0 {
                    // RFC 9112 §2.2: ignore empty lines before the request line
                    // (some clients send CRLF after a POST body). Consumed at
                    // once, so they cost no memory.
                    readIndex = lf + 1
                    scan = HeadScan()
                    continue
                }
                if lineLength > limits.maxRequestLineBytes {
                    throw requestLineOverflowError(lineStart: readIndex)
                }
                scan.requestLineEnd = lfOffset + 1
                scan.lineStart = lfOffset + 1
                continue
            }

            if lfOffset + 1 - requestLineEnd > limits.maxHeaderBytes {
                throw .headersTooLarge(limit: limits.maxHeaderBytes)
            }
            if lineLength == 0 {
                let head = try Self.parseHead(buffer[readIndex ... lf], limits: limits)
                readIndex = lf + 1
                return head
            }
            scan.fieldLines += 1
            if scan.fieldLines > limits.maxHeaderCount {
                throw .tooManyHeaders(limit: limits.maxHeaderCount)
            }
            scan.lineStart = lfOffset + 1
        }
    }

    private func checkPartialHead(_ scan: HeadScan, available: Int) throws(HTTPParseError) {
        if let requestLineEnd = scan.requestLineEnd {
            if available - requestLineEnd > limits.maxHeaderBytes {
                throw .headersTooLarge(limit: limits.maxHeaderBytes)
            }
        } else {
            var partial = available - scan.lineStart
            // A trailing CR may be the first half of CRLF, which does not count.
            if partial > 0 && buffer[buffer.count - 1] == ASCII.cr { partial -= 1 }
            if partial > limits.maxRequestLineBytes {
                throw requestLineOverflowError(lineStart: readIndex + scan.lineStart)
            }
        }
    }

    /// 414 only when the target is what made the line long. Judged on the
    /// first `maxRequestLineBytes + 1` bytes, which are all a partial line is
    /// sure to have, so the answer does not depend on the input split: 400
    /// when no space ends the method within them, or when what follows the
    /// target is already longer than a version (`HTTP/1.1`, 8 bytes); 414
    /// otherwise.
    private func requestLineOverflowError(lineStart: Int) -> HTTPParseError {
        let limit = limits.maxRequestLineBytes
        let prefix = buffer[lineStart ..< min(buffer.count, lineStart + limit + 1)]
        guard let methodEnd = prefix.firstIndex(of: ASCII.space) else {
            return .requestLineTooLong(limit: limit)
        }
        if let targetEnd = prefix[(methodEnd + 1)...].firstIndex(of: ASCII.space),
           prefix.endIndex - (targetEnd + 1) > 8 {
            return .requestLineTooLong(limit: limit)
        }
        return .uriTooLong(limit: limit)
    }

    // MARK: Chunked body

    /// Parses `chunk-size [ chunk-ext ] CRLF` (RFC 9112 §7.1); nil when the
    /// line is incomplete. Extensions are checked for control bytes and
    /// otherwise ignored: no extension is defined that a server must act on.
    private mutating func scanChunkSizeLine(scanned: Int) throws(HTTPParseError) -> Int? {
        let limit = limits.maxChunkLineBytes
        guard let lf = buffer[(readIndex + scanned)...].firstIndex(of: ASCII.lf) else {
            var partial = buffer.count - readIndex
            if partial > 0 && buffer[buffer.count - 1] == ASCII.cr { partial -= 1 }
            if partial > limit { throw .chunkLineTooLong(limit: limit) }
            state = .chunkSizeLine(scanned: buffer.count - readIndex)
            return nil
        }
        var line = buffer[readIndex ..< lf]
        if line.last == ASCII.cr { line = line.dropLast() }
        if line.count > limit { throw .chunkLineTooLong(limit: limit) }
        if line.contains(ASCII.cr) { throw .bareCarriageReturn }

        var size = 0
        var digits = 0
        var index = line.startIndex
        while index < line.endIndex, let digit = ASCII.hexValue(line[index]) {
            // Saturate: any size past Int.max is past every body limit as well.
            let (shifted, overflowA) = size.multipliedReportingOverflow(by: 16)
            let (sum, overflowB) = shifted.addingReportingOverflow(Int(digit))
            size = (overflowA || overflowB) ? Int.max : sum
            digits += 1
            index += 1
        }
        guard digits > 0 else { throw .invalidChunkSize }
        var rest = line[index...]
        if !rest.isEmpty {
            rest = ASCII.trimmingWhitespace(rest)
            guard rest.first == ASCII.semicolon,
                  rest.allSatisfy({ $0 == ASCII.tab || ($0 >= 0x20 && $0 != 0x7F) }) else {
                throw .invalidChunkSize
            }
        }
        readIndex = lf + 1
        return size
    }

    /// Consumes one trailer line; false when it is incomplete. Trailers are
    /// dropped (RFC 9112 §7.1.2 lets a recipient discard them) but bounded by
    /// the header limits, and a blank line ends the message.
    private mutating func scanTrailerLine(_ scan: inout TrailerScan) throws(HTTPParseError) -> Bool {
        guard let lf = buffer[(readIndex + scan.scanned)...].firstIndex(of: ASCII.lf) else {
            let available = buffer.count - readIndex
            if scan.bytes + available > limits.maxHeaderBytes {
                throw .trailersTooLarge(limit: limits.maxHeaderBytes)
            }
            scan.scanned = available
            return false
        }
        scan.bytes += lf + 1 - readIndex
        if scan.bytes > limits.maxHeaderBytes { throw .trailersTooLarge(limit: limits.maxHeaderBytes) }
        var line = buffer[readIndex ..< lf]
        if line.last == ASCII.cr { line = line.dropLast() }
        readIndex = lf + 1
        scan.scanned = 0
        if line.isEmpty {
            state = .complete
            return true
        }
        scan.lines += 1
        if scan.lines > limits.maxHeaderCount { throw .trailersTooLarge(limit: limits.maxHeaderCount) }
        if line.contains(ASCII.cr) { throw .bareCarriageReturn }
        guard let first = line.first, !ASCII.isWhitespace(first), line.contains(ASCII.colon) else {
            throw .invalidTrailer
        }
        state = .trailers(scan)
        return true
    }
}
