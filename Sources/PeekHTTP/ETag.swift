import PeekCrypto

/// Entity tags for static files and `If-None-Match` (RFC 9110 §8.8.3, §13.1.2).
public enum ETag {
    /// A strong validator from the content: the first 16 hex digits (64 bits)
    /// of its SHA-256, quoted. Content-derived, so it survives restarts and is
    /// the same on every server without coordination.
    public static func strong(for content: some Collection<UInt8>) -> String {
        "\"" + String(Crypto.hex(Crypto.sha256(content)).prefix(16)) + "\""
    }

    /// Whether an `If-None-Match` value matches `etag`, in which case a GET or
    /// HEAD is answered 304. `*` matches any current representation. Tags are
    /// compared weakly (RFC 9110 §13.1.2 requires it here): `W/"x"` matches `"x"`.
    /// Tags are parsed as quoted strings, since a comma may appear inside one;
    /// a malformed list stops matching at the defect, which errs towards
    /// sending the full response.
    public static func ifNoneMatch(_ header: String, matches etag: String) -> Bool {
        let bytes = Array(header.utf8)
        let wanted = opaque(Array(etag.utf8)[...])
        let trimmed = ASCII.trimmingWhitespace(bytes[...])
        if trimmed.elementsEqual("*".utf8) { return true }

        var index = 0
        while index < bytes.count {
            while index < bytes.count && (ASCII.isWhitespace(bytes[index]) || bytes[index] == ASCII.comma) { index += 1 }
            guard index < bytes.count else { break }
            let start = index
            if bytes[index...].starts(with: "W/".utf8) { index += 2 }
            guard index < bytes.count, bytes[index] == ASCII.quote,
                  let close = bytes[(index + 1)...].firstIndex(of: ASCII.quote) else { return false }
            if opaque(bytes[start ... close]) == wanted { return true }
            index = close + 1
            while index < bytes.count && ASCII.isWhitespace(bytes[index]) { index += 1 }
            guard index == bytes.count || bytes[index] == ASCII.comma else { return false }
        }
        return false
    }

    /// The quoted opaque-tag without a `W/` prefix: what weak comparison compares.
    static func opaque(_ tag: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        tag.starts(with: "W/".utf8) ? tag.dropFirst(2) : tag
    }
}
