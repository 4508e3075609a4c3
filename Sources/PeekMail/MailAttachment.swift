/// A file to attach to an outgoing message.
public struct MailAttachment: Sendable, Equatable {
    public var filename: String
    /// `type/subtype`, e.g. `application/pdf`; anything else is sent as
    /// `application/octet-stream`.
    public var contentType: String
    public var bytes: [UInt8]

    public init(filename: String, contentType: String, bytes: [UInt8]) {
        self.filename = filename
        self.contentType = contentType
        self.bytes = bytes
    }
}
