/// The DATA payload of an SMTP transaction (RFC 5321 §4.5.2, §2.3.8).
public enum SMTPData {
    /// `message` with every line ending made CRLF, every line that starts with "."
    /// given a second ".", and the end-of-data marker appended, so the result always
    /// ends with "\r\n.\r\n".
    ///
    /// A bare LF or a bare CR becomes CRLF: RFC 5321 forbids sending either alone, and
    /// servers disagree on what they mean (the SMTP smuggling attacks of 2023 live in
    /// that disagreement). An empty message is sent as one empty line, so even then the
    /// marker is the CRLF.CRLF every server looks for.
    public static func encode(message: some Collection<UInt8>) -> [UInt8] {
        let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n"), dot = UInt8(ascii: ".")
        let input = Array(message)
        var out: [UInt8] = []
        out.reserveCapacity(input.count + input.count / 32 + 5)
        var atLineStart = true
        var i = 0
        while i < input.count {
            let byte = input[i]
            if byte == cr || byte == lf {
                if byte == cr && i + 1 < input.count && input[i + 1] == lf { i += 1 }
                out.append(cr)
                out.append(lf)
                atLineStart = true
            } else {
                if atLineStart && byte == dot { out.append(dot) }
                out.append(byte)
                atLineStart = false
            }
            i += 1
        }
        if !atLineStart || out.isEmpty {
            out.append(cr)
            out.append(lf)
        }
        out += [dot, cr, lf]
        return out
    }
}
