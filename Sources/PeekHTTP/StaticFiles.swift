/// Turns a request path into a file path relative to the static root, or
/// refuses it. Pure: the caller joins the result to the root and opens it.
///
/// The path is percent-decoded exactly once and then checked, so encoded
/// tricks (`%2e%2e`, `%2f`, `%00`, `%5c`) meet the same checks as literal
/// ones, and a double-encoded `%252e` stays the harmless name `%2e`.
/// Refused: NUL, backslash and other control bytes; empty segments (`//`,
/// which would make the rest absolute); every segment starting with `.`
/// (`.` and `..`, and hidden files such as `.git` or `.env`, which are never
/// part of the client). `/` and a trailing `/` map to `index.html`.
///
/// Answer every refusal with 404, not 400: whether a name is refused or
/// missing is none of the client's business.
public enum StaticFiles {
    /// Headers every page and static file carries (protocol.md §9.5): a
    /// Content-Security-Policy allowing only what the Peek page uses (its
    /// own scripts and styles, a `data:` favicon, fetches to itself and its
    /// WebSocket), no framing, and no content sniffing. `'self'` does not
    /// cover `ws:`/`wss:` in every browser (CSP2 browsers), so the socket's
    /// origins are listed from the request's `Host` when it is a plain
    /// host[:port]; otherwise only `'self'` remains.
    public static func securityHeaders(host: String?) -> [(String, String)] {
        var connect = "'self'"
        if let host, !host.isEmpty, host.utf8.count <= 255, host.utf8.allSatisfy(isHostByte) {
            connect += " ws://\(host) wss://\(host)"
        }
        let policy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src \(connect); "
            + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        return [("Content-Security-Policy", policy), ("X-Content-Type-Options", "nosniff")]
    }

    /// Letters, digits and `.-:[]`: what a host name, IPv4 or bracketed IPv6
    /// address and port are made of, and nothing that could end a CSP source.
    private static func isHostByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: ":"), UInt8(ascii: "["), UInt8(ascii: "]"): true
        default: false
        }
    }

    public static func relativePath(for requestPath: String) throws(StaticPathError) -> String {
        guard requestPath.hasPrefix("/") else { throw .notAbsolute }
        if requestPath.utf8.contains(ASCII.backslash) { throw .backslash }
        guard let decoded = PercentEncoding.decode(requestPath) else { throw .malformedEscape }
        for byte in decoded {
            if byte == 0 { throw .nulByte }
            if byte == ASCII.backslash { throw .backslash }
            if byte < 0x20 || byte == 0x7F { throw .controlCharacter }
        }
        guard String(validating: decoded, as: UTF8.self) != nil else { throw .invalidUTF8 }

        var segments = decoded.dropFirst().split(separator: ASCII.slash, omittingEmptySubsequences: false)
        // "/" and "/dir/" name the directory's index page.
        if segments.last?.isEmpty ?? true {
            if !segments.isEmpty { segments.removeLast() }
            segments.append(ArraySlice("index.html".utf8))
        }
        for segment in segments {
            guard let first = segment.first else { throw .emptySegment }
            if first == ASCII.dot {
                throw segment.allSatisfy({ $0 == ASCII.dot }) && segment.count <= 2 ? .dotSegment : .hiddenName
            }
        }
        return segments.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "/")
    }
}

/// Why `StaticFiles.relativePath(for:)` refused a path.
public enum StaticPathError: Error, Equatable, Sendable {
    case notAbsolute
    case malformedEscape
    case nulByte
    case backslash
    case controlCharacter
    case invalidUTF8
    /// `//` somewhere in the decoded path.
    case emptySegment
    /// A `.` or `..` segment after decoding.
    case dotSegment
    /// A segment starting with `.`, such as `.git`.
    case hiddenName

    public var reason: String {
        switch self {
        case .notAbsolute: return "The path does not start with a slash."
        case .malformedEscape: return "The path has a % not followed by two hexadecimal digits."
        case .nulByte: return "The path contains a NUL byte."
        case .backslash: return "The path contains a backslash."
        case .controlCharacter: return "The path contains a control character."
        case .invalidUTF8: return "The decoded path is not valid UTF-8."
        case .emptySegment: return "The path contains an empty segment (//)."
        case .dotSegment: return "The path contains a . or .. segment."
        case .hiddenName: return "The path names a hidden file."
        }
    }
}
