/// A file found in an inbound message.
public struct InboundAttachment: Sendable, Equatable {
    /// The name the sender gave, reduced to its last path component; `attachment-<n>`
    /// when it gave none.
    public var filename: String
    /// Lowercased `type/subtype`.
    public var contentType: String
    /// The Content-ID without angle brackets, for images an HTML body shows inline.
    public var contentID: String?
    public var isInline: Bool
    public var bytes: [UInt8]

    public init(filename: String, contentType: String, contentID: String? = nil, isInline: Bool = false, bytes: [UInt8]) {
        self.filename = filename
        self.contentType = contentType
        self.contentID = contentID
        self.isInline = isInline
        self.bytes = bytes
    }
}
