/// Percent-decoding (RFC 3986 §2.1) in its two flavours: strict for paths,
/// where a malformed escape means a malformed request, and lenient with `+`
/// for query strings, where browsers (WHATWG URL, application/x-www-form-urlencoded)
/// pass a stray `%` through unchanged.
public enum PercentEncoding {
    /// Decodes `%XX` escapes; nil when a `%` is not followed by two hex digits.
    /// Decodes exactly once: `%252e` becomes `%2e`, never `.`.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == ASCII.percent else {
                out.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(ASCII.hexValue),
                  let low = iterator.next().flatMap(ASCII.hexValue) else { return nil }
            out.append(high << 4 | low)
        }
        return out
    }

    /// Strict decoding that must also yield valid UTF-8.
    public static func decodeString(_ text: some StringProtocol) -> String? {
        decode(text).flatMap { String(validating: $0, as: UTF8.self) }
    }

    /// Form decoding: `+` is a space, a malformed `%` escape stays as written,
    /// and invalid UTF-8 becomes U+FFFD, so a query never fails to parse.
    public static func decodeFormComponent(_ text: some StringProtocol) -> String {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == ASCII.plus {
                out.append(ASCII.space)
            } else if byte == ASCII.percent, index + 2 < bytes.count,
                      let high = ASCII.hexValue(bytes[index + 1]), let low = ASCII.hexValue(bytes[index + 2]) {
                out.append(high << 4 | low)
                index += 2
            } else {
                out.append(byte)
            }
            index += 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}
