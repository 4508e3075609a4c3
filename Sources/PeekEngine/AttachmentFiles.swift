#if canImport(Glibc)
import Glibc
#endif
import Foundation
import PeekCore
import PeekCrypto
import Synchronization

/// Attachments on disk, content-addressed by SHA-256: the same file
/// uploaded twice is stored once, and a name can never escape the folder
/// because it is a hex digest, never the uploader's file name.
package enum AttachmentFiles {
    package static let allowedPrefixes = ["image/", "text/"]
    package static let allowedTypes: Set<String> = [
        "application/pdf", "application/zip", "application/json", "application/xml", "application/octet-stream",
        "application/msword", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.ms-excel", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "message/rfc822",
    ]

    package static func isAllowed(contentType: String) -> Bool {
        // Types a browser would run or render as a page (HTML, scripts, SVG
        // with its scripts) are refused: attachments are downloads, not pages.
        guard !contentType.isEmpty, !contentType.contains("html"), !contentType.contains("javascript"), !contentType.contains("svg") else { return false }
        return allowedTypes.contains(contentType) || allowedPrefixes.contains { contentType.hasPrefix($0) }
    }

    package static func path(sha256: String, in directory: String) -> String {
        directory + "/" + sha256.prefix(2) + "/" + sha256
    }

    /// A file worker's part of an upload: checks the body, then hashes,
    /// writes and syncs the file. The engine then checks the ticket and
    /// inserts the row (`Engine.uploadAttachment`).
    package static func prepareUpload(_ r: APIRequest, config: EngineConfig, claims: AttachmentClaims, logger: ServerLog) -> Result<APIRequest, APIResponse> {
        guard !r.body.isEmpty else { return .failure(.error(PeekError(.invalid, "The upload is empty; send the file's bytes as the body."))) }
        guard r.body.count <= config.maxAttachmentBytes else {
            return .failure(.error(PeekError(.tooLarge, "Attachments may be at most \(config.maxAttachmentBytes / (1024 * 1024)) MiB.")))
        }
        let contentType = (r.contentType ?? "").split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        guard isAllowed(contentType: contentType) else {
            return .failure(.error(PeekError(.invalid, "Content type \"\(contentType)\" is not accepted; send images, PDFs, text, logs, office documents or zip files.")))
        }
        let filename = r.query.first { $0.0 == "filename" }?.1 ?? "attachment"
        return store(r.body, filename: filename, contentType: contentType, in: config.attachmentsDirectory, claims: claims, logger: logger).map { file in
            var prepared = r
            prepared.body = []
            prepared.prepared = .upload(file)
            return prepared
        }.mapError { APIResponse.error($0) }
    }

    /// Hashes, writes and syncs `bytes` as an attachment file: the work a
    /// worker does before the engine inserts the row that names the file.
    /// The digest stays claimed (`AttachmentClaims`) until the engine has
    /// answered the request that carries the file. The failure is the
    /// answer to give (500, nothing stored).
    package static func store(_ bytes: [UInt8], filename: String, contentType: String, in directory: String,
                      claims: AttachmentClaims, logger: ServerLog) -> Result<StoredFile, PeekError> {
        let digest = Crypto.hex(Crypto.sha256(bytes))
        claims.claim(digest)
        do {
            try write(bytes, sha256: digest, in: directory)
        } catch {
            _ = claims.release(digest, unreferenced: false)
            logger.log(.error, "attachment_write_failed", "writing attachment \(digest) failed", error: "\(error)")
            return .failure(PeekError(.internal, "The file could not be stored; nothing was saved. Try again."))
        }
        return .success(StoredFile(sha256: digest, size: bytes.count, filename: sanitize(filename: filename), contentType: contentType))
    }

    package struct WriteError: Error, CustomStringConvertible {
        var call: String
        var errno: Int32
        package var description: String { "\(call): \(String(cString: strerror(errno)))" }
    }

    /// Writes the file under its digest, durably: the bytes go to a
    /// temporary name, are fsynced, renamed into place, and the folder is
    /// fsynced, so once this returns a crash can lose neither the bytes nor
    /// the name, and the row the engine commits next never names a file
    /// that a crash could take away. A file already there is kept (same
    /// digest, same bytes), but its folder is synced again: a writer of the
    /// same digest may have renamed it an instant ago and not synced yet.
    package static func write(_ bytes: [UInt8], sha256: String, in directory: String) throws {
        let folder = directory + "/" + sha256.prefix(2)
        let target = folder + "/" + sha256
        if access(target, F_OK) == 0 {
            try syncDirectory(folder)
            return
        }
        if mkdir(folder, 0o755) == 0 {
            try syncDirectory(directory)
        } else if errno != EEXIST {
            throw WriteError(call: "mkdir(\(folder))", errno: errno)
        }
        // A name of its own per writer: two uploads of the same file may race.
        let temp = target + ".tmp-" + Crypto.hex(Crypto.randomBytes(6))
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw WriteError(call: "open(\(temp))", errno: errno) }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let e = errno
                close(fd); unlink(temp)
                throw WriteError(call: "write(\(temp))", errno: e)
            }
            written += n
        }
        guard fsync(fd) == 0 else {
            let e = errno
            close(fd); unlink(temp)
            throw WriteError(call: "fsync(\(temp))", errno: e)
        }
        close(fd)
        guard rename(temp, target) == 0 else {
            let e = errno
            unlink(temp)
            throw WriteError(call: "rename(\(temp))", errno: e)
        }
        try syncDirectory(folder)
    }

    private static func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw WriteError(call: "open(\(path))", errno: errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw WriteError(call: "fsync(\(path))", errno: errno) }
    }

    /// The file's bytes; called on a worker, never on the engine or a loop.
    package static func read(sha256: String, in directory: String) -> [UInt8]? {
        guard sha256.allSatisfy(\.isHexDigit) else { return nil }
        return FileManager.default.contents(atPath: path(sha256: sha256, in: directory)).map { [UInt8]($0) }
    }

    /// The refusal for an attachment id that is not one of the ticket's.
    package static func notUploaded(_ id: String, to ticket: String) -> PeekError {
        PeekError(.invalid, "Attachment \(id) was not uploaded to \(ticket); upload it first.")
    }

    /// A display name safe for headers and downloads: no path, no control
    /// characters, at most 120 characters.
    package static func sanitize(filename: String) -> String {
        let base = filename.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? ""
        let clean = String(base.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F && $0 != "\"" }.prefix(120))
        return clean.isEmpty || clean.hasPrefix(".") ? "attachment" + clean : clean
    }
}

/// Which attachment files a request in flight has written (or found
/// already there) and not yet had named by a row, so that the files of a
/// refused upload or mail are deleted without racing another request
/// for the same bytes. Files are content-addressed: a refused request's
/// file may be one a row already names, or one another request is about
/// to name. A writer claims the digest before it looks at the disk; the
/// engine releases the claim once it has answered, and when the answer
/// stored nothing and no row names the digest, the last claim dooms the
/// file; a file worker then unlinks it unless a new writer claimed the
/// digest meanwhile (which lifts the doom: that writer may have found
/// the file there and will not write it again).
package final class AttachmentClaims: Sendable {
    private struct Entry { var claims = 0; var doomed = false }
    private let entries = Mutex<[String: Entry]>([:])

    /// Called by a writer before it checks for and writes the file.
    package func claim(_ sha256: String) {
        entries.withLock { $0[sha256, default: Entry()].claims += 1; $0[sha256]!.doomed = false }
    }

    /// Gives a claim back. `unreferenced`: the request stored nothing and
    /// no row names the digest (the engine's store lookup). True when the
    /// file is now doomed and a file worker must call `unlinkIfDoomed`.
    package func release(_ sha256: String, unreferenced: Bool) -> Bool {
        entries.withLock { entries in
            guard var entry = entries[sha256] else { return false }
            entry.claims -= 1
            if entry.claims > 0 { entries[sha256] = entry; return false }
            guard unreferenced else { entries[sha256] = nil; return false }
            entry.doomed = true
            entries[sha256] = entry
            return true
        }
    }

    /// The file worker's part: unlinks the file if it is still doomed,
    /// under the same lock a writer claims with, so no writer can find the
    /// file there and then lose it. `unlinkFile` false: the doom is only
    /// forgotten (no worker could take the job; the file stays).
    package func unlinkIfDoomed(_ sha256: String, in directory: String, unlinkFile: Bool = true) {
        entries.withLock { entries in
            guard entries[sha256]?.doomed == true else { return }
            entries[sha256] = nil
            if unlinkFile { unlink(AttachmentFiles.path(sha256: sha256, in: directory)) }
        }
    }
}

extension AttachmentFiles {
    /// Removes temporary files (`<sha>.tmp-<hex>`) older than `maxAgeMillis`:
    /// what a crash in the middle of `write` left. Runs on a file worker.
    package static func sweepTemporaryFiles(in directory: String, maxAgeMillis: Int64, nowMillis: Int64, logger: ServerLog) {
        let fm = FileManager.default
        guard let folders = try? fm.contentsOfDirectory(atPath: directory) else { return }
        var removed = 0
        for folder in folders {
            guard let names = try? fm.contentsOfDirectory(atPath: directory + "/" + folder) else { continue }
            for name in names where isTemporary(name) {
                let path = directory + "/" + folder + "/" + name
                var info = stat()
                guard stat(path, &info) == 0 else { continue }
                let modifiedMillis = Int64(info.st_mtim.tv_sec) * 1000 + Int64(info.st_mtim.tv_nsec) / 1_000_000
                if nowMillis - modifiedMillis > maxAgeMillis && unlink(path) == 0 { removed += 1 }
            }
        }
        if removed > 0 { logger.log(.info, "attachment_temporaries_removed", "removed \(removed) temporary attachment files left by an interrupted write") }
    }

    /// A name `write` gives a file before its rename.
    package static func isTemporary(_ name: String) -> Bool { name.contains(".tmp-") }
}
