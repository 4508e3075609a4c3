#if canImport(Glibc)
import Glibc
#endif
import CSQLite
import PeekCore
import Foundation
import Synchronization

/// `fdatasync` of the write-ahead log, through a descriptor of our own.
///
/// Why a second descriptor works: fsync flushes the file (the inode), not
/// the descriptor, so it covers every byte SQLite's connection wrote to the
/// WAL before the call began. Why this is safe with `synchronous=NORMAL`:
/// in WAL mode NORMAL never corrupts the database, it only skips the sync
/// at commit; the checkpointer still syncs the WAL before copying pages
/// into the database and syncs the database after. What NORMAL alone would
/// lose on power failure is the last commits, and those are exactly the
/// ones whose outputs wait for this sync.
public final class WALSync: Durability {
    private let walPath: String
    /// The WAL exists from the first write transaction until the last
    /// connection closes, so it is opened lazily.
    private let descriptor = Mutex<Int32>(-1)

    init(databasePath: String) { walPath = databasePath + "-wal" }

    deinit { descriptor.withLock { if $0 >= 0 { close($0) } } }

    public func sync() throws(StoreError) {
        let failure: StoreError? = descriptor.withLock { fd -> StoreError? in
            // A WAL deleted and re-created (every connection closed and one
            // reopened) is a new inode; our old descriptor would sync nothing.
            var onDisk = stat()
            if stat(walPath, &onDisk) != 0 {
                return errno == ENOENT ? nil : Self.failure("stat", walPath)
            }
            if fd >= 0 {
                var held = stat()
                if fstat(fd, &held) != 0 || held.st_ino != onDisk.st_ino || held.st_dev != onDisk.st_dev {
                    close(fd)
                    fd = -1
                }
            }
            if fd < 0 {
                fd = open(walPath, O_RDONLY | O_CLOEXEC)
                if fd < 0 { return Self.failure("open", walPath) }
            }
            return fdatasync(fd) == 0 ? nil : Self.failure("fdatasync", walPath)
        }
        if let failure { throw failure }
    }

    private static func failure(_ call: String, _ path: String) -> StoreError {
        StoreError(sqlite: SQLITE_IOERR, message: "\(call) \(path): \(String(cString: strerror(errno)))")
    }
}

/// Copies the WAL back into the database on a thread of its own, through a
/// connection of its own, so the engine never stalls on a checkpoint (it
/// took 15-20% of the engine thread when SQLite ran it at commit).
///
/// SQLite calls `walGrew` after each commit with the WAL's size in pages.
/// Past `threshold` the checkpointer is woken for a PASSIVE checkpoint,
/// which never blocks the writer. Under a write load the checkpointer can
/// never catch up with, the WAL would grow without end; past
/// `inlineLimit` the writer's own connection checkpoints inline instead,
/// trading a stall for a bounded file.
final class WALCheckpointer: @unchecked Sendable {
    let threshold: Int32
    let inlineLimit: Int32
    private let path: String
    /// Capacity 1, coalescing: a wake-up already queued covers every commit
    /// until the pass starts, and the writer never blocks on it.
    private var worker: SerialWorker<Void>!
    /// Set in `start` before the thread starts; then only its thread uses it.
    nonisolated(unsafe) private var connection: Database?

    init(path: String, threshold: Int32 = 8192) {
        self.path = path
        self.threshold = threshold
        self.inlineLimit = threshold * 8
        worker = SerialWorker(name: "peekd-checkpoint", capacity: 1, whenFull: .coalesce) { [weak self] _ in self?.checkpoint() }
    }

    func start() throws(StoreError) {
        // Opened here so a failure is the store's failure, not a silent thread.
        let connection = try Database(path: path)
        try connection.execute("PRAGMA synchronous=NORMAL;")
        self.connection = connection
        worker.start()
    }

    /// Called on the writer's thread from SQLite's WAL hook.
    func walGrew(pages: Int32) {
        guard pages >= threshold else { return }
        worker.submit(())
    }

    func stop() { worker.stop() }

    private func checkpoint() {
        guard let connection else { return }
        // SQLite can start the WAL over only when a checkpoint has copied
        // all of it, and new commits keep landing while a pass runs. So
        // pass again at once while frames remain: each pass has less to
        // copy, until one finishes between two commits and the writer's
        // next transaction restarts the file. Waiting for the next
        // wake-up instead left the WAL growing to the inline limit. A
        // failed pass (busy, I/O) waits for the next commit's wake-up
        // rather than spinning.
        while connection.checkpointPassive() == .partial && !worker.isStopping {}
    }
}
