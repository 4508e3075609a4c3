import COpenSSL
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The mutual-TLS listener's trust anchors and CRLs, in an `X509_STORE`
/// that a changed CRL file replaces whole. Every new session takes the
/// current store (a reference, `SSL_set0_verify_cert_store`), so a handshake
/// in progress keeps the store it started with while the next one uses the
/// new CRLs; no `SSL_CTX` is changed after start.
///
/// Checking: `X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL`, so every
/// certificate of the agent's chain, intermediates and the root included,
/// is looked up in the CRL of its issuer, and the file must hold a current
/// CRL for every CA in the chain (a missing or expired one refuses the
/// agent: failing closed).
///
/// Reloading: `storeForNewSession` compares the CRL file's inode, size and
/// modification time (one `stat`) with those it last loaded, and reloads
/// when they differ; `reload()` (SIGHUP) reloads unconditionally. A reload
/// reads the CA file again too, and runs on the thread that noticed (a
/// loop, for the first handshake after a change): a CRL file is read once
/// per change, not per handshake. A file that does not load keeps the
/// previous store and logs one line naming the file and OpenSSL's reason;
/// the next change is tried again.
final class ClientTrustStore: Sendable {
    private let caFile: String
    private let crlFile: String
    private let log: @Sendable (String) -> Void

    /// An `X509_STORE*` and the file state it was loaded from. @unchecked:
    /// only used under `current`'s lock; the store itself is internally
    /// locked and reference counted.
    private struct Loaded: @unchecked Sendable {
        var store: OpaquePointer
        var file: FileState?
    }
    private let current: Mutex<Loaded>

    /// What `stat` says about the CRL file; ctime is left out (a `touch`
    /// with a restored mtime is not a new CRL).
    struct FileState: Equatable, Sendable {
        var device: UInt64, inode: UInt64, size: Int64, modifiedSeconds: Int, modifiedNanoseconds: Int

        init?(path: String) {
            var info = stat()
            guard stat(path, &info) == 0 else { return nil }
            device = UInt64(info.st_dev)
            inode = UInt64(info.st_ino)
            size = Int64(info.st_size)
            modifiedSeconds = info.st_mtim.tv_sec
            modifiedNanoseconds = info.st_mtim.tv_nsec
        }
    }

    /// Loads both files; throws (refusing to start) if either does not load.
    init(caFile: String, crlFile: String, log: @escaping @Sendable (String) -> Void) throws(TLSError) {
        self.caFile = caFile
        self.crlFile = crlFile
        self.log = log
        let file = FileState(path: crlFile)
        current = Mutex(Loaded(store: try Self.makeStore(caFile: caFile, crlFile: crlFile), file: file))
    }

    deinit {
        current.withLock { X509_STORE_free($0.store) }
    }

    /// The store a new handshake verifies against, with a reference the
    /// caller owns (hand it to `SSL_set0_verify_cert_store`). Reloads first
    /// if the CRL file changed since it was last read.
    func storeForNewSession() -> OpaquePointer {
        let file = FileState(path: crlFile)
        return current.withLock { loaded -> OpaquePointer in
            if file != loaded.file {
                loaded.file = file
                replace(&loaded, reason: "changed")
            }
            X509_STORE_up_ref(loaded.store)
            return loaded.store
        }
    }

    /// Re-reads the CRL file now (SIGHUP). Returns whether it loaded.
    @discardableResult
    func reload() -> Bool {
        let file = FileState(path: crlFile)
        return current.withLock { loaded -> Bool in
            loaded.file = file
            return replace(&loaded, reason: "reload requested")
        }
    }

    @discardableResult
    private func replace(_ loaded: inout Loaded, reason: String) -> Bool {
        do {
            let store = try Self.makeStore(caFile: caFile, crlFile: crlFile)
            X509_STORE_free(loaded.store)  // sessions made earlier hold their own reference
            loaded.store = store
            log("agent CRL \(crlFile) reloaded (\(reason)); new agent handshakes use it")
            return true
        } catch {
            log("agent CRL \(crlFile) not reloaded (\(reason)): \(error); new agent handshakes keep using the previous CRL")
            return false
        }
    }

    private static func makeStore(caFile: String, crlFile: String) throws(TLSError) -> OpaquePointer {
        ERR_clear_error()
        guard let store = X509_STORE_new() else { throw .openSSL("X509_STORE_new") }
        guard X509_STORE_load_file(store, caFile) == 1 else {
            X509_STORE_free(store)
            throw .openSSL("X509_STORE_load_file", detail: caFile)
        }
        ERR_clear_error()
        guard let lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file()) else {
            X509_STORE_free(store)
            throw .openSSL("X509_STORE_add_lookup")
        }
        ERR_clear_error()
        guard X509_load_crl_file(lookup, crlFile, X509_FILETYPE_PEM) >= 1 else {
            X509_STORE_free(store)
            throw .openSSL("X509_load_crl_file", detail: crlFile)
        }
        X509_STORE_set_flags(store, UInt(X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL))
        return store
    }
}
