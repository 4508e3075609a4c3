#if canImport(Glibc)
import Glibc
#endif

/// Whole-file writes for keys and certificates: to a temporary name, then
/// `rename`, so a crash leaves the old file or the new one, never half a key.
/// The mode is set at creation (`O_EXCL` on the temporary name), so a private
/// key is never readable by others, not even for a moment.
public enum SecureFile {
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t) throws(TLSError) {
        let temporary = "\(path).tmp-\(getpid())"
        _ = unlink(temporary)  // a leftover from a crashed run of this pid
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw systemError("open", path: temporary) }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return Glibc.write(fd, base + offset, raw.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                let error = systemError("write", path: temporary)
                _ = close(fd)
                _ = unlink(temporary)
                throw error
            }
            offset += written
        }
        // fchmod: the umask may have cleared bits we asked for (0644 under 077).
        guard fchmod(fd, mode) == 0, fsync(fd) == 0 else {
            let error = systemError("fsync", path: temporary)
            _ = close(fd)
            _ = unlink(temporary)
            throw error
        }
        _ = close(fd)
        guard rename(temporary, path) == 0 else {
            let error = systemError("rename", path: path)
            _ = unlink(temporary)
            throw error
        }
    }

    public static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    /// Creates `path` (one level) with mode 0700 unless it exists.
    public static func makeDirectory(_ path: String) throws(TLSError) {
        if mkdir(path, 0o700) == 0 || errno == EEXIST { return }
        throw systemError("mkdir", path: path)
    }

    static func systemError(_ call: String, path: String) -> TLSError {
        let code = errno
        return TLSError(call: call, detail: "\(path): \(String(cString: strerror(code)))")
    }
}
