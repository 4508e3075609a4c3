#if canImport(Glibc)
import Glibc
#endif
import Foundation
import PeekCore

/// `peekd backup` and `peekd restore`: a data directory in one file.
///
/// The archive is ustar (`TarFormat`): first `peekd-backup.json` (what this
/// is), then `peek.sqlite`, a copy made with SQLite's online backup API
/// while the server keeps writing, then every file under `attachments/` and
/// `certs/`. The database is copied first: an attachment's file is written
/// before the row naming it commits, so every attachment the copy refers to
/// is on disk by the time the files are read.
public enum DataBackup {
    public static let databaseFile = "peek.sqlite"
    public static let manifestFile = "peekd-backup.json"
    static let copiedDirectories = ["attachments", "certs"]
    static let format = 1

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    public struct Summary: Sendable {
        public var files = 0
        public var bytes: Int64 = 0
    }

    // MARK: Backup

    public static func backup(dataDirectory: String, to archive: String) throws -> Summary {
        let fm = FileManager.default
        let database = dataDirectory + "/" + databaseFile
        guard fm.fileExists(atPath: database) else {
            throw Failure("no database at \(database): is --data the server's data directory?")
        }
        guard !fm.fileExists(atPath: archive) else { throw Failure("\(archive) already exists; back up to a new file") }
        // Written under a temporary name and renamed when complete, so a
        // backup cut short never looks like a finished one.
        let partial = archive + ".partial"
        let snapshot = archive + ".sqlite.partial"
        unlink(partial)
        unlink(snapshot)
        defer { unlink(snapshot) }
        do {
            try Database(path: database).backup(to: snapshot)
        } catch {
            throw Failure("copying the database failed: \(error)")
        }

        let fd = open(partial, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure("cannot create \(partial): \(String(cString: strerror(errno)))") }
        var summary = Summary()
        do {
            defer { close(fd) }
            let now = Int64(Date().timeIntervalSince1970)
            var manifest = JSONWriter()
            manifest.beginObject()
            manifest.field("format", format)
            manifest.field("created", Timestamp.format(millis: now * 1000))
            manifest.field("database", databaseFile)
            manifest.endObject()
            try writeEntry(to: fd, name: manifestFile, bytes: manifest.bytes + [10], modified: now)
            try copyFile(snapshot, as: databaseFile, to: fd, summary: &summary)
            for directory in copiedDirectories {
                let root = dataDirectory + "/" + directory
                guard let walker = fm.enumerator(atPath: root) else { continue }
                var names: [String] = []
                while let relative = walker.nextObject() as? String { names.append(relative) }
                // Files being written (`x.tmp`, and attachments' `<sha>.tmp-<hex>`)
                // are not data yet: a backup skips them.
                for relative in names.sorted() where !relative.hasSuffix(".tmp") && !relative.contains(".tmp-") {
                    var isDirectory: ObjCBool = false
                    guard fm.fileExists(atPath: root + "/" + relative, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
                    try copyFile(root + "/" + relative, as: directory + "/" + relative, to: fd, summary: &summary)
                }
            }
            try writeAll(fd, [UInt8](repeating: 0, count: TarFormat.blockSize * 2))
            guard fsync(fd) == 0 else { throw Failure("cannot flush \(partial): \(String(cString: strerror(errno)))") }
        } catch {
            unlink(partial)
            throw error
        }
        guard rename(partial, archive) == 0 else {
            unlink(partial)
            throw Failure("cannot rename \(partial) to \(archive): \(String(cString: strerror(errno)))")
        }
        syncDirectory(of: archive)
        return summary
    }

    private static func writeEntry(to fd: Int32, name: String, bytes: [UInt8], modified: Int64) throws {
        try writeAll(fd, TarFormat.encode(.init(name: name, size: Int64(bytes.count), mode: 0o600, modifiedSeconds: modified)))
        try writeAll(fd, bytes + [UInt8](repeating: 0, count: TarFormat.padding(after: Int64(bytes.count))))
    }

    /// Streams one file into the archive; a file that vanished since the
    /// listing (an attachment's temporary name) is skipped.
    private static func copyFile(_ path: String, as name: String, to out: Int32, summary: inout Summary) throws {
        let input = open(path, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else {
            if errno == ENOENT { return }
            throw Failure("cannot read \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(input) }
        var info = stat()
        guard fstat(input, &info) == 0 else { throw Failure("cannot stat \(path): \(String(cString: strerror(errno)))") }
        let size = Int64(info.st_size)
        try writeAll(out, TarFormat.encode(.init(name: name, size: size, mode: 0o600, modifiedSeconds: Int64(info.st_mtim.tv_sec))))
        var left = size
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while left > 0 {
            let want = Int(min(left, Int64(buffer.count)))
            let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, want) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw Failure("\(path) shrank while it was being copied") }
            try writeAll(out, Array(buffer[..<n]))
            left -= Int64(n)
        }
        try writeAll(out, [UInt8](repeating: 0, count: TarFormat.padding(after: size)))
        summary.files += 1
        summary.bytes += size
    }

    // MARK: Restore

    public static func restore(from archive: String, dataDirectory: String) throws -> Summary {
        let fm = FileManager.default
        // Opened first: a missing archive leaves no directory behind.
        let fd = open(archive, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure("cannot read \(archive): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var isDirectory: ObjCBool = false
        let existed = fm.fileExists(atPath: dataDirectory, isDirectory: &isDirectory)
        if existed {
            guard isDirectory.boolValue else { throw Failure("\(dataDirectory) is not a directory") }
            guard (try? fm.contentsOfDirectory(atPath: dataDirectory))?.isEmpty ?? false else {
                throw Failure("\(dataDirectory) is not empty; restore only into an empty or new directory, so nothing is overwritten")
            }
        } else {
            do {
                try fm.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw Failure("cannot create \(dataDirectory): \(error.localizedDescription)")
            }
        }
        do {
            let summary = try extract(fd, into: dataDirectory)
            try check(dataDirectory + "/" + databaseFile)
            return summary
        } catch {
            // Leave the directory as it was found: empty, or absent.
            for entry in (try? fm.contentsOfDirectory(atPath: dataDirectory)) ?? [] {
                try? fm.removeItem(atPath: dataDirectory + "/" + entry)
            }
            if !existed { try? fm.removeItem(atPath: dataDirectory) }
            if let tar = error as? TarFormat.Failure { throw Failure("\(archive): \(tar)") }
            throw error
        }
    }

    private static func extract(_ fd: Int32, into directory: String) throws -> Summary {
        var summary = Summary()
        var seen: Set<String> = []
        var block = [UInt8](repeating: 0, count: TarFormat.blockSize)
        var first = true
        while true {
            try readExactly(fd, &block)
            guard let header = try TarFormat.decode(block) else { break }
            if first {
                guard header.name == manifestFile else { throw Failure("the archive does not start with \(manifestFile): it is not a peekd backup") }
                guard header.size <= 4096 else { throw Failure("\(manifestFile) is too large to be a peekd manifest") }
                var bytes = [UInt8](repeating: 0, count: Int(header.size) + TarFormat.padding(after: header.size))
                try readExactly(fd, &bytes)
                let manifest = try? JSONParser.parse(Array(bytes.prefix(Int(header.size))))
                guard manifest?["format"]?.intValue == format else {
                    throw Failure("this backup's format is \(manifest?["format"].map { "\($0)" } ?? "unknown"); this peekd restores format \(format)")
                }
                first = false
                continue
            }
            guard isRestorable(header.name) else { throw Failure("the archive holds \(header.name), which is not part of a data directory") }
            guard seen.insert(header.name).inserted else { throw Failure("the archive holds \(header.name) twice") }
            let path = directory + "/" + header.name
            let parent = (path as NSString).deletingLastPathComponent
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard out >= 0 else { throw Failure("cannot create \(path): \(String(cString: strerror(errno)))") }
            defer { close(out) }
            var left = header.size
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            while left > 0 {
                if left < Int64(chunk.count) { chunk = [UInt8](repeating: 0, count: Int(left)) }
                try readExactly(fd, &chunk)
                try writeAll(out, chunk)
                left -= Int64(chunk.count)
            }
            var padding = [UInt8](repeating: 0, count: TarFormat.padding(after: header.size))
            try readExactly(fd, &padding)
            guard fsync(out) == 0 else { throw Failure("cannot flush \(path): \(String(cString: strerror(errno)))") }
            summary.files += 1
            summary.bytes += header.size
        }
        guard !first else { throw Failure("the archive is empty: it is not a peekd backup") }
        guard seen.contains(databaseFile) else { throw Failure("the archive holds no \(databaseFile)") }
        syncDirectory(of: directory + "/" + databaseFile)
        return summary
    }

    /// Only what a backup writes: the database and files under the copied
    /// directories, with no empty, `.` or `..` component (nothing can land
    /// outside the data directory).
    static func isRestorable(_ name: String) -> Bool {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        guard !name.hasPrefix("/"), parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else { return false }
        if name == databaseFile { return true }
        return parts.count >= 2 && copiedDirectories.contains(String(parts[0]))
    }

    /// The restored database opens and SQLite finds it sound.
    static func check(_ path: String) throws {
        do {
            let db = try Database(path: path)
            let result = try db.queryOne("PRAGMA quick_check")?.first?.text
            guard result == "ok" else { throw Failure("the restored database is damaged: \(result ?? "no answer")") }
        } catch let error as StoreError {
            throw Failure("the restored database does not open: \(error)")
        }
    }

    // MARK: Bytes

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw Failure("write failed: \(String(cString: strerror(errno)))") }
            offset += n
        }
    }

    private static func readExactly(_ fd: Int32, _ buffer: inout [UInt8]) throws {
        var offset = 0
        while offset < buffer.count {
            let n = buffer[offset...].withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw TarFormat.Failure.truncated }
            offset += n
        }
    }

    private static func syncDirectory(of path: String) {
        let fd = open((path as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
    }
}
