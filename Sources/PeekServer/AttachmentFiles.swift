import Foundation
import PeekCore

/// Attachments on disk, content-addressed by SHA-256: the same file
/// uploaded twice is stored once, and a name can never escape the folder
/// because it is a hex digest, never the uploader's file name.
enum AttachmentFiles {
    static let allowedPrefixes = ["image/", "text/"]
    static let allowedTypes: Set<String> = [
        "application/pdf", "application/zip", "application/json", "application/xml", "application/octet-stream",
        "application/msword", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.ms-excel", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "message/rfc822",
    ]

    static func isAllowed(contentType: String) -> Bool {
        // Types a browser would run or render as a page (HTML, scripts, SVG
        // with its scripts) are refused: attachments are downloads, not pages.
        guard !contentType.isEmpty, !contentType.contains("html"), !contentType.contains("javascript"), !contentType.contains("svg") else { return false }
        return allowedTypes.contains(contentType) || allowedPrefixes.contains { contentType.hasPrefix($0) }
    }

    static func path(sha256: String, in directory: String) -> String {
        directory + "/" + sha256.prefix(2) + "/" + sha256
    }

    static func write(_ bytes: [UInt8], sha256: String, in directory: String) throws {
        let target = path(sha256: sha256, in: directory)
        if FileManager.default.fileExists(atPath: target) { return }
        try FileManager.default.createDirectory(atPath: directory + "/" + sha256.prefix(2), withIntermediateDirectories: true)
        // Written to a temporary name and renamed, so a crash never leaves a
        // half file under the digest's name.
        let temp = target + ".tmp"
        try Data(bytes).write(to: URL(fileURLWithPath: temp), options: .atomic)
        try FileManager.default.moveItem(atPath: temp, toPath: target)
    }

    static func read(sha256: String, in directory: String) -> [UInt8]? {
        guard sha256.allSatisfy(\.isHexDigit) else { return nil }
        return FileManager.default.contents(atPath: path(sha256: sha256, in: directory)).map { [UInt8]($0) }
    }

    /// The refusal for an attachment id that is not one of the ticket's.
    static func notUploaded(_ id: String, to ticket: String) -> PeekError {
        PeekError(.invalid, "Attachment \(id) was not uploaded to \(ticket); upload it first.")
    }

    /// A display name safe for headers and downloads: no path, no control
    /// characters, at most 120 characters.
    static func sanitize(filename: String) -> String {
        let base = filename.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? ""
        let clean = String(base.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F && $0 != "\"" }.prefix(120))
        return clean.isEmpty || clean.hasPrefix(".") ? "attachment" + clean : clean
    }
}
