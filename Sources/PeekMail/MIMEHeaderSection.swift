/// The header fields of a message or MIME part, unfolded (RFC 5322 §2.2.3).
struct MIMEHeaderSection: Sendable {
    /// Lowercased names with their unfolded values, in order. Values are the raw text:
    /// encoded words are decoded by whoever knows the field's syntax.
    var fields: [(name: String, value: String)] = []

    func value(_ name: String) -> String? { fields.first { $0.name == name }?.value }
    func values(_ name: String) -> [String] { fields.filter { $0.name == name }.map(\.value) }

    enum Strictness {
        /// The top-level message: the first line must be a header field.
        case message
        /// A MIME part: may have no header at all (then it is text/plain).
        case part
    }

    /// Splits `bytes` at the first empty line into the header section and the body.
    /// Lines may end in CRLF or bare LF. A header with no empty line after it is a
    /// message without a body.
    ///
    /// Bounds (`InboundMailLimits`), each checked before anything past it is kept: the
    /// section's bytes (`.headerTooLarge`), its field count (`.tooManyHeaderFields`), one
    /// line's bytes (`.headerLineTooLong`) and one unfolded field's (`.headerFieldTooLong`).
    /// Malformed lines after the first field (no colon, a space in the name) are
    /// skipped, since real mail carries such junk and losing one bad field beats
    /// refusing the customer's message.
    static func split(_ bytes: ArraySlice<UInt8>, limits: InboundMailLimits, strictness: Strictness)
        throws(InboundMailError) -> (header: MIMEHeaderSection, body: ArraySlice<UInt8>) {
        var section = MIMEHeaderSection()
        var position = bytes.startIndex
        var isFirstLine = true
        var rawFields: [(name: String, value: [UInt8])] = []
        // Only the section's bytes are searched for a line end: a body with no newline
        // in its first megabytes is refused at the limit, not scanned to its end.
        let searchEnd = bytes.startIndex + min(bytes.count, limits.maxHeaderBytes + 1)

        while position < bytes.endIndex {
            guard let newline = bytes[position..<searchEnd].firstIndex(of: 10) ?? (searchEnd == bytes.endIndex ? bytes.endIndex : nil)
            else { throw .headerTooLarge(limitBytes: limits.maxHeaderBytes) }
            if newline - bytes.startIndex > limits.maxHeaderBytes { throw .headerTooLarge(limitBytes: limits.maxHeaderBytes) }
            var lineEnd = newline
            if lineEnd > position && bytes[lineEnd - 1] == 13 { lineEnd -= 1 }
            let line = bytes[position..<lineEnd]
            let next = newline < bytes.endIndex ? newline + 1 : bytes.endIndex
            defer { isFirstLine = false }

            if line.isEmpty {
                section.fields = rawFields.map { ($0.name, headerText($0.value)) }
                return (section, bytes[next...])
            }
            if line.first == 32 || line.first == 9 {
                if !rawFields.isEmpty {
                    if line.count > limits.maxHeaderLineBytes { throw .headerLineTooLong(limitBytes: limits.maxHeaderLineBytes) }
                    rawFields[rawFields.count - 1].value += line
                    if rawFields[rawFields.count - 1].value.count > limits.maxHeaderFieldBytes {
                        throw .headerFieldTooLong(limitBytes: limits.maxHeaderFieldBytes)
                    }
                } else if strictness == .message {
                    throw .notAMessage
                }
                position = next
                continue
            }
            if let field = parseField(line) {
                // Checked once the line is known to be a field: a part without a header
                // may start with a long body line.
                if line.count > limits.maxHeaderLineBytes { throw .headerLineTooLong(limitBytes: limits.maxHeaderLineBytes) }
                guard rawFields.count < limits.maxHeaderFields else { throw .tooManyHeaderFields(limit: limits.maxHeaderFields) }
                rawFields.append(field)
            } else if isFirstLine && strictness == .message && line.starts(with: Array("From ".utf8)) {
                // An mbox envelope line ("From ana@x Sun Nov 29 ...") some gateways keep.
            } else if rawFields.isEmpty && strictness == .message {
                throw .notAMessage
            } else if rawFields.isEmpty {
                // A part whose first line is not a field has no header: it is all body.
                return (section, bytes)
            }
            position = next
        }
        section.fields = rawFields.map { ($0.name, headerText($0.value)) }
        if section.fields.isEmpty && strictness == .message { throw .notAMessage }
        return (section, bytes[bytes.endIndex...])
    }

    /// `name: value`; the obsolete "Name :" (RFC 5322 §4.5) is accepted. RFC 5322 lets a
    /// name be any printable ASCII, but every real field name is letters, digits and
    /// "-" (some "_" or "."), and holding to that is what tells a message from JSON or
    /// other text posted by mistake (`{"type": ...`).
    private static func parseField(_ line: ArraySlice<UInt8>) -> (name: String, value: [UInt8])? {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        var nameEnd = colon
        while nameEnd > line.startIndex && (line[nameEnd - 1] == 32 || line[nameEnd - 1] == 9) { nameEnd -= 1 }
        let name = line[line.startIndex..<nameEnd]
        guard !name.isEmpty, name.count <= 128, name.allSatisfy(isFieldNameByte) else { return nil }
        return (String(decoding: name, as: UTF8.self).lowercased(), Array(line[(colon + 1)...]))
    }

    private static func isFieldNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
            true
        default:
            false
        }
    }

    /// Header bytes as text: UTF-8 when valid (RFC 6532 allows it), else Windows-1252,
    /// the usual charset of raw 8-bit headers; surrounding whitespace trimmed.
    private static func headerText(_ bytes: [UInt8]) -> String {
        MailCharset.utf8OrWindows1252(bytes).trimmingSpaces()
    }
}
