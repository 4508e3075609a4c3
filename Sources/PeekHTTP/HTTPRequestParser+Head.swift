/// Syntax of a complete head: request line (RFC 9112 §3), field lines (§5)
/// and body framing (§6). Runs once per request on bytes the scanner has
/// already bounded, so it can afford to split lines into slices.
extension HTTPRequestParser {
    /// `bytes` runs from the request line through the LF of the blank line.
    static func parseHead(_ bytes: ArraySlice<UInt8>, limits: Limits) throws(HTTPParseError) -> HTTPRequestHead {
        let lines = try splitLines(bytes)
        // The scanner only calls us with a request line and a closing blank line.
        guard lines.count >= 2 else { throw .invalidVersion }
        let (method, target, version) = try parseRequestLine(lines[0])

        var headers = HTTPHeaders()
        for line in lines[1 ..< lines.count - 1] {
            let (name, value) = try parseFieldLine(line)
            headers.add(name: name, value: value)
        }

        let hosts = headers.all("Host").count
        if hosts > 1 { throw .multipleHost }
        if hosts == 0 && version == .http1_1 && limits.requireHost { throw .missingHost }

        let framing = try bodyFraming(headers, version: version)
        return HTTPRequestHead(method: method, target: target, version: version, headers: headers, framing: framing)
    }

    /// Lines without their terminator. LF alone is accepted as a terminator
    /// and one CR before it dropped (RFC 9112 §2.2 allows this); a CR anywhere
    /// else is refused, because some intermediaries treat it as a line end
    /// and would see different headers than we do.
    static func splitLines(_ bytes: ArraySlice<UInt8>) throws(HTTPParseError) -> [ArraySlice<UInt8>] {
        var lines: [ArraySlice<UInt8>] = []
        var start = bytes.startIndex
        var index = bytes.startIndex
        while index < bytes.endIndex {
            if bytes[index] == ASCII.lf {
                var line = bytes[start ..< index]
                if line.last == ASCII.cr { line = line.dropLast() }
                if line.contains(ASCII.cr) { throw .bareCarriageReturn }
                lines.append(line)
                start = index + 1
            }
            index += 1
        }
        return lines
    }

    /// `method SP request-target SP HTTP-version`, single spaces only: lenient
    /// whitespace splitting is how request smuggling between servers starts.
    static func parseRequestLine(_ line: ArraySlice<UInt8>) throws(HTTPParseError) -> (String, String, HTTPVersion) {
        guard let firstSpace = line.firstIndex(of: ASCII.space) else {
            throw line.allSatisfy(ASCII.isTokenByte) ? .invalidVersion : .invalidMethod
        }
        let method = line[..<firstSpace]
        guard !method.isEmpty, method.allSatisfy(ASCII.isTokenByte) else { throw .invalidMethod }

        let afterMethod = line[(firstSpace + 1)...]
        guard let secondSpace = afterMethod.firstIndex(of: ASCII.space) else {
            // "GET /" is HTTP/0.9, which has no headers and no status line to answer with.
            throw .invalidVersion
        }
        let target = line[(firstSpace + 1) ..< secondSpace]
        // Visible ASCII only (RFC 3986 has no raw spaces, controls or non-ASCII);
        // '#' starts a fragment, which a client must not send (RFC 9112 §3.2).
        guard !target.isEmpty, target.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != ASCII.hash }) else {
            throw .invalidRequestTarget
        }
        let version = try parseVersion(line[(secondSpace + 1)...])
        let methodString = String(decoding: method, as: UTF8.self)
        let targetString = String(decoding: target, as: UTF8.self)
        guard targetFormFits(targetString, method: methodString) else { throw .invalidRequestTarget }
        return (methodString, targetString, version)
    }

    /// RFC 9112 §3.2: origin-form for everything, absolute-form accepted from
    /// anyone, asterisk-form only for OPTIONS, authority-form only for CONNECT.
    static func targetFormFits(_ target: String, method: String) -> Bool {
        if target.hasPrefix("/") { return true }
        if target == "*" { return method == "OPTIONS" }
        if method == "CONNECT" { return true }
        guard let colon = target.firstIndex(of: ":"), target[colon...].hasPrefix("://"),
              target.startIndex < colon, target[..<colon].utf8.allSatisfy(ASCII.isSchemeByte) else {
            return false
        }
        return true
    }

    /// `HTTP/<digit>.<digit>`, case-sensitive (RFC 9112 §2.3).
    static func parseVersion(_ bytes: ArraySlice<UInt8>) throws(HTTPParseError) -> HTTPVersion {
        let prefix: [UInt8] = Array("HTTP/".utf8)
        guard bytes.count == 8, bytes.starts(with: prefix) else { throw .invalidVersion }
        let major = bytes[bytes.startIndex + 5], dot = bytes[bytes.startIndex + 6], minor = bytes[bytes.startIndex + 7]
        let digits = UInt8(ascii: "0") ... UInt8(ascii: "9")
        guard digits.contains(major), dot == ASCII.dot, digits.contains(minor) else { throw .invalidVersion }
        guard major == UInt8(ascii: "1") else { throw .unsupportedVersion }
        return minor == UInt8(ascii: "0") ? .http1_0 : .http1_1
    }

    /// `field-name ":" OWS field-value OWS` (RFC 9112 §5).
    static func parseFieldLine(_ line: ArraySlice<UInt8>) throws(HTTPParseError) -> (String, String) {
        guard let first = line.first, !ASCII.isWhitespace(first) else { throw .obsoleteLineFolding }
        guard let colon = line.firstIndex(of: ASCII.colon) else { throw .missingColon }
        let name = line[..<colon]
        guard let last = name.last else { throw .invalidHeaderName }
        if ASCII.isWhitespace(last) { throw .whitespaceBeforeColon }
        guard name.allSatisfy(ASCII.isTokenByte) else { throw .invalidHeaderName }
        let value = ASCII.trimmingWhitespace(line[(colon + 1)...])
        // VCHAR, SP, HTAB and obs-text; NUL and other controls are refused
        // (RFC 9110 §5.5) since they end strings in C code and logs downstream.
        guard value.allSatisfy({ $0 == ASCII.tab || ($0 >= 0x20 && $0 != 0x7F) }) else {
            throw .invalidHeaderValue
        }
        return (String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self))
    }

    /// RFC 9112 §6.3, in its order, with the ambiguous cases refused rather
    /// than resolved: any disagreement between two parsers' views of where a
    /// body ends is a request-smuggling vector.
    static func bodyFraming(_ headers: HTTPHeaders, version: HTTPVersion) throws(HTTPParseError) -> HTTPBodyFraming {
        let contentLengths = headers.all("Content-Length")

        if headers.contains("Transfer-Encoding") {
            if version == .http1_0 { throw .transferEncodingInHTTP10 }
            if !contentLengths.isEmpty { throw .contentLengthWithTransferEncoding }
            let codings = headers.listElements("Transfer-Encoding").map { element in
                ASCII.trimmingWhitespace(element.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false)[0])
            }
            guard let last = codings.last, ASCII.equalsIgnoringCase(last, "chunked") else {
                throw .chunkedNotFinal
            }
            let chunkedCount = codings.filter { ASCII.equalsIgnoringCase($0, "chunked") }.count
            if chunkedCount > 1 { throw .chunkedNotFinal }
            if chunkedCount != codings.count { throw .unsupportedTransferCoding }
            return .chunked
        }

        guard !contentLengths.isEmpty else { return .noBody }
        var length: Int?
        for value in contentLengths {
            // "5, 5" is a list a proxy may have folded; every element must agree (RFC 9110 §8.6).
            for element in value.split(separator: ",", omittingEmptySubsequences: false) {
                let digits = ASCII.trimmingWhitespace(element).utf8
                guard !digits.isEmpty, digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
                    throw .invalidContentLength
                }
                var n = 0
                for digit in digits {
                    // Saturate: a length past Int.max is past every body limit, so it ends as 413.
                    let (shifted, overflowA) = n.multipliedReportingOverflow(by: 10)
                    let (sum, overflowB) = shifted.addingReportingOverflow(Int(digit - UInt8(ascii: "0")))
                    n = (overflowA || overflowB) ? Int.max : sum
                }
                if let previous = length, previous != n { throw .conflictingContentLength }
                length = n
            }
        }
        return .contentLength(length ?? 0)
    }
}
