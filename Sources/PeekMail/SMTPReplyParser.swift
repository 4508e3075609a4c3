/// Incremental SMTP reply parser: bytes from the socket in, complete replies out.
///
/// Input may be split at any byte, including between the CR and the LF. A multi-line
/// reply (`250-first`, `250-second`, `250 last`) comes out only once its last line is in.
///
/// Bounds, all on what the server controls:
/// - a line longer than `maxLineBytes` (4 KiB; RFC 5321 §4.5.3.1.5 allows 512) throws
///   `.lineTooLong` as soon as the buffered, unterminated line passes the limit, so a
///   server that never sends LF cannot grow the buffer;
/// - a reply of more than `maxLines` lines (100) throws `.tooManyLines`.
///
/// Errors are sticky: after one, every `next()` throws it again, because the byte
/// stream can no longer be framed and the caller must drop the connection.
public struct SMTPReplyParser: Sendable {
    public struct Limits: Sendable, Equatable {
        public var maxLineBytes: Int
        public var maxLines: Int
        public init(maxLineBytes: Int = 4096, maxLines: Int = 100) {
            self.maxLineBytes = maxLineBytes
            self.maxLines = maxLines
        }
    }

    public let limits: Limits
    private var buffer: [UInt8] = []
    private var readIndex = 0
    private var pendingCode: Int?
    private var pendingLines: [String] = []
    private var failure: SMTPReplyError?

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// True when bytes were received that no returned reply accounts for. After the `220`
    /// answer to STARTTLS this must be false: anything else was sent in plain text before
    /// the handshake and would be read as if it came over TLS (the CVE-2011-0411 injection),
    /// so the caller fails the send instead.
    public var hasUnconsumedInput: Bool { readIndex < buffer.count || pendingCode != nil }

    public mutating func append(_ bytes: some Sequence<UInt8>) {
        buffer.append(contentsOf: bytes)
    }

    /// The next complete reply, or nil when more bytes are needed.
    public mutating func next() throws(SMTPReplyError) -> SMTPReply? {
        if let failure { throw failure }
        do {
            return try parseNext()
        } catch {
            failure = error
            throw error
        }
    }

    /// Appends `bytes` and returns every reply they complete.
    public mutating func replies(after bytes: some Sequence<UInt8>) throws(SMTPReplyError) -> [SMTPReply] {
        append(bytes)
        var out: [SMTPReply] = []
        while let reply = try next() { out.append(reply) }
        return out
    }

    private mutating func parseNext() throws(SMTPReplyError) -> SMTPReply? {
        while true {
            guard let newline = buffer[readIndex...].firstIndex(of: UInt8(ascii: "\n")) else {
                if buffer.count - readIndex > limits.maxLineBytes { throw .lineTooLong(limit: limits.maxLineBytes) }
                compact()
                return nil
            }
            // Servers are meant to end lines with CRLF; a bare LF is accepted because
            // nothing is lost by it and some appliances send one.
            var end = newline
            if end > readIndex && buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            guard end - readIndex <= limits.maxLineBytes else { throw .lineTooLong(limit: limits.maxLineBytes) }
            let line = Array(buffer[readIndex..<end])
            readIndex = newline + 1

            let (code, isLast, text) = try Self.split(line)
            if let pendingCode, pendingCode != code {
                throw .malformed(line: Self.printable(line), reason: "the code changed within a multi-line reply")
            }
            pendingCode = code
            pendingLines.append(text)
            if isLast {
                let reply = SMTPReply(code: code, lines: pendingLines)
                pendingCode = nil
                pendingLines = []
                compact()
                return reply
            }
            guard pendingLines.count < limits.maxLines else { throw .tooManyLines(limit: limits.maxLines) }
        }
    }

    /// `Reply-code [ SP / "-" textstring ]` (RFC 5321 §4.2). The first digit must be 2-5;
    /// nothing else is a reply a client can act on.
    private static func split(_ line: [UInt8]) throws(SMTPReplyError) -> (code: Int, isLast: Bool, text: String) {
        guard line.count >= 3,
              (UInt8(ascii: "2")...UInt8(ascii: "5")).contains(line[0]),
              (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(line[1]),
              (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(line[2]) else {
            throw .malformed(line: printable(line), reason: "it does not start with a reply code")
        }
        let code = Int(line[0] - 48) * 100 + Int(line[1] - 48) * 10 + Int(line[2] - 48)
        if line.count == 3 { return (code, true, "") }
        switch line[3] {
        case UInt8(ascii: " "): return (code, true, String(decoding: line[4...], as: UTF8.self))
        case UInt8(ascii: "-"): return (code, false, String(decoding: line[4...], as: UTF8.self))
        default: throw .malformed(line: printable(line), reason: "the code is not followed by a space or '-'")
        }
    }

    private mutating func compact() {
        if readIndex > 0 && (readIndex == buffer.count || readIndex >= 4096) {
            buffer.removeFirst(readIndex)
            readIndex = 0
        }
    }

    /// Error text quotes at most 120 bytes of the line, control bytes made visible.
    static func printable(_ line: [UInt8]) -> String {
        let text = String(decoding: line.prefix(120), as: UTF8.self)
        return String(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "?" : Character($0) })
    }
}
