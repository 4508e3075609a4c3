import PeekCrypto

/// Builds an RFC 5322 + MIME message (a technician's reply) as the bytes to hand to
/// `SMTPDialogue`. Everything random or clock-derived (Message-ID, boundary, date) is an
/// input, so the same inputs always give the same bytes.
///
/// Output: 7-bit only (headers as ASCII or RFC 2047 encoded words, the body
/// quoted-printable or base64, attachments base64), CRLF line endings, header lines
/// folded at 78 columns. Without attachments the message is a single `text/plain;
/// charset=utf-8` part; with them, `multipart/mixed` with the text first.
public struct MIMEMessageBuilder: Sendable {
    public enum BodyEncoding: Sendable, Equatable {
        /// Readable in the raw message; lines of at most 76 characters.
        case quotedPrintable
        /// Shorter for text that is mostly non-Latin.
        case base64
    }

    public var from: MailAddress
    public var to: MailAddress
    public var subject: String
    public var bodyText: String
    /// Without angle brackets (`abc123@peek.example.com`); brackets are accepted too.
    public var messageID: String
    public var inReplyTo: String?
    /// The thread's ids, oldest first. `inReplyTo` is appended when missing, so the
    /// References field always ends with the parent (RFC 5322 §3.6.4).
    public var references: [String]
    /// Unix seconds; written in UTC.
    public var date: Int64
    public var attachments: [MailAttachment]
    /// 1-70 characters of RFC 2046 `bcharsnospace`; random, so it cannot occur in the content.
    public var boundary: String
    public var bodyEncoding: BodyEncoding

    public init(from: MailAddress, to: MailAddress, subject: String, bodyText: String, messageID: String,
                inReplyTo: String? = nil, references: [String] = [], date: Int64,
                attachments: [MailAttachment] = [], boundary: String,
                bodyEncoding: BodyEncoding = .quotedPrintable) {
        self.from = from
        self.to = to
        self.subject = subject
        self.bodyText = bodyText
        self.messageID = messageID
        self.inReplyTo = inReplyTo
        self.references = references
        self.date = date
        self.attachments = attachments
        self.boundary = boundary
        self.bodyEncoding = bodyEncoding
    }

    public func build() throws(MIMEBuildError) -> [UInt8] {
        for mailbox in [from, to] where !Self.isValidAddress(mailbox.address) {
            throw .invalidAddress(mailbox.address)
        }
        func bare(_ id: String) throws(MIMEBuildError) -> String {
            guard let bare = MailThreading.bareMessageID(id) else { throw .invalidMessageID(id) }
            return bare
        }
        let ownID = try bare(messageID)
        let parentID = try inReplyTo.map { id throws(MIMEBuildError) in try bare(id) }
        var referenceIDs: [String] = []
        for id in references { referenceIDs.append(try bare(id)) }
        if let parentID, referenceIDs.last != parentID {
            referenceIDs.removeAll { $0 == parentID }
            referenceIDs.append(parentID)
        }

        var head = ""
        head += "Date: \(RFC5322Date.format(unixSeconds: date))\r\n"
        head += HeaderFolding.field("From", HeaderFolding.mailboxTokens(from, headerName: "From"))
        head += HeaderFolding.field("To", HeaderFolding.mailboxTokens(to, headerName: "To"))
        head += HeaderFolding.unstructured("Subject", subject)
        head += HeaderFolding.field("Message-ID", ["<\(ownID)>"])
        if let parentID { head += HeaderFolding.field("In-Reply-To", ["<\(parentID)>"]) }
        if !referenceIDs.isEmpty { head += HeaderFolding.field("References", referenceIDs.map { "<\($0)>" }) }
        head += "MIME-Version: 1.0\r\n"

        let text = encodedText()
        if attachments.isEmpty {
            return Array(head.utf8) + text.headers + [13, 10] + text.body
        }

        guard Self.isValidBoundary(boundary) else { throw .invalidBoundary(boundary) }
        let delimiter = Array("--\(boundary)".utf8)
        if text.body.firstRange(of: delimiter) != nil { throw .boundaryInContent(boundary) }

        var out = Array(head.utf8)
        out += Array(HeaderFolding.field("Content-Type", ["multipart/mixed", "boundary=\"\(boundary)\""], punctuation: ";").utf8)
        out += [13, 10]
        out += delimiter + [13, 10] + text.headers + [13, 10] + text.body
        for attachment in attachments {
            out += [13, 10] + delimiter + [13, 10]
            out += Self.attachmentPart(attachment)
        }
        out += [13, 10] + delimiter + Array("--\r\n".utf8)
        return out
    }

    private func encodedText() -> (headers: [UInt8], body: [UInt8]) {
        let normalized = Self.crlfNormalized(Array(bodyText.utf8))
        let headers = "Content-Type: text/plain; charset=utf-8\r\n"
        switch bodyEncoding {
        case .quotedPrintable:
            return (Array((headers + "Content-Transfer-Encoding: quoted-printable\r\n").utf8),
                    QuotedPrintable.encode(normalized))
        case .base64:
            return (Array((headers + "Content-Transfer-Encoding: base64\r\n").utf8), Self.base64Lines(normalized))
        }
    }

    private static func attachmentPart(_ attachment: MailAttachment) -> [UInt8] {
        let type = isValidContentType(attachment.contentType) ? attachment.contentType.lowercased() : "application/octet-stream"
        let filename = HeaderFolding.singleLine(attachment.filename)
        var headers = HeaderFolding.field("Content-Type", [type] + HeaderFolding.parameterTokens("name", filename),
                                          punctuation: ";")
        headers += HeaderFolding.field("Content-Disposition", ["attachment"] + HeaderFolding.parameterTokens("filename", filename),
                                       punctuation: ";")
        headers += "Content-Transfer-Encoding: base64\r\n\r\n"
        return Array(headers.utf8) + base64Lines(attachment.bytes)
    }

    /// Base64 in lines of 76 characters (RFC 2045 §6.8), each ended by CRLF.
    static func base64Lines(_ bytes: [UInt8]) -> [UInt8] {
        let encoded = Array(Base64.encode(bytes).utf8)
        var out: [UInt8] = []
        out.reserveCapacity(encoded.count + encoded.count / 76 * 2 + 2)
        var start = 0
        while start < encoded.count {
            let end = min(start + 76, encoded.count)
            out += encoded[start..<end]
            out += [13, 10]
            start = end
        }
        return out
    }

    static func crlfNormalized(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + bytes.count / 32)
        var i = 0
        while i < bytes.count {
            if bytes[i] == 13 || bytes[i] == 10 {
                if bytes[i] == 13 && i + 1 < bytes.count && bytes[i + 1] == 10 { i += 1 }
                out += [13, 10]
            } else {
                out.append(bytes[i])
            }
            i += 1
        }
        return out
    }

    static func isValidAddress(_ address: String) -> Bool { SMTPDialogue.isSendableAddress(address) }

    static func isValidBoundary(_ boundary: String) -> Bool {
        (1...70).contains(boundary.utf8.count) && boundary.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"):
                return true
            default:
                return "'()+_,-./:=?".utf8.contains(byte)
            }
        }
    }

    /// `type/subtype` of RFC 2045 tokens.
    static func isValidContentType(_ type: String) -> Bool {
        let parts = type.split(separator: "/", omittingEmptySubsequences: false)
        return parts.count == 2 && parts.allSatisfy { part in
            !part.isEmpty && part.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && !"()<>@,;:\\\"/[]?=".utf8.contains($0) }
        }
    }
}
