import Foundation
import PeekHTTP
import PeekNet
import Synchronization

/// What every loop shares: read-only configuration, the engine's inbox,
/// the static files, and counters each loop publishes once a second.
final class ServerShared: Sendable {
    let config: ServerConfig
    let engine: Engine
    let staticFiles: StaticFileCache
    let echoMode: Bool
    let startedAt = Date()
    /// Per loop: [connections, framesIn, deltasDelivered, ephemeralShed, slowConsumersClosed].
    let loopCounters: Mutex<[[Int]]>
    /// Parse inbound mail and write its attachments (`MailIntake`).
    let mailWorkers: WorkerPool
    /// Hash and write uploads, read downloads (`AttachmentFiles`).
    let fileWorkers: WorkerPool
    /// Request bodies over 1 MiB being read or worked on, process-wide.
    private let largeBodies = Atomic<Int>(0)

    init(config: ServerConfig, engine: Engine, staticFiles: StaticFileCache, echoMode: Bool, loopCount: Int) {
        self.config = config
        self.engine = engine
        self.staticFiles = staticFiles
        self.echoMode = echoMode
        loopCounters = Mutex(Array(repeating: [0, 0, 0, 0, 0], count: loopCount))
        mailWorkers = WorkerPool(name: "peekd-mail-intake", maxThreads: config.mailWorkerThreads, queueCapacity: config.mailQueueCapacity)
        fileWorkers = WorkerPool(name: "peekd-files", maxThreads: config.fileWorkerThreads, queueCapacity: config.fileQueueCapacity)
    }

    /// Takes one of `config.maxLargeBodies` slots; false when all are taken.
    func takeLargeBodySlot() -> Bool {
        if largeBodies.add(1, ordering: .relaxed).newValue <= config.maxLargeBodies { return true }
        largeBodies.subtract(1, ordering: .relaxed)
        return false
    }

    func releaseLargeBodySlot() { largeBodies.subtract(1, ordering: .relaxed) }

    func metricsText() -> String {
        let totals = loopCounters.withLock { perLoop in
            perLoop.reduce(into: [0, 0, 0, 0, 0]) { acc, c in for i in acc.indices { acc[i] += c[i] } }
        }
        return """
        # HELP peekd_connections Open connections (all listeners).
        # TYPE peekd_connections gauge
        peekd_connections \(totals[0])
        # HELP peekd_frames_received_total WebSocket messages received.
        # TYPE peekd_frames_received_total counter
        peekd_frames_received_total \(totals[1])
        # HELP peekd_deltas_delivered_total Deltas queued to viewers.
        # TYPE peekd_deltas_delivered_total counter
        peekd_deltas_delivered_total \(totals[2])
        # HELP peekd_ephemeral_shed_total Ephemeral deltas dropped for slow consumers.
        # TYPE peekd_ephemeral_shed_total counter
        peekd_ephemeral_shed_total \(totals[3])
        # HELP peekd_slow_consumers_closed_total Connections closed with 1013 for falling too far behind.
        # TYPE peekd_slow_consumers_closed_total counter
        peekd_slow_consumers_closed_total \(totals[4])
        # HELP peekd_uptime_seconds Seconds since start.
        # TYPE peekd_uptime_seconds gauge
        peekd_uptime_seconds \(Int(Date().timeIntervalSince(startedAt)))

        """
    }
}

/// `client/` read once at start: the files are small, and serving from
/// memory keeps disk reads off the event loops. `client/test/` (the test
/// pages and the mock server) is development material, never served.
struct StaticFileCache: Sendable {
    static let unservedDirectories: Set<Substring> = ["test"]
    struct File: Sendable { var bytes: [UInt8]; var etag: String; var contentType: String }
    private(set) var files: [String: File] = [:]

    init(directory configured: String) {
        let fm = FileManager.default
        // The enumerator does not descend into a symlink given as the root
        // (a deploy's `client -> releases/42/client`): resolve it first.
        let directory = URL(fileURLWithPath: configured).resolvingSymlinksInPath().path
        guard let walker = fm.enumerator(atPath: directory) else { return }
        while let relative = walker.nextObject() as? String {
            let full = directory + "/" + relative
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: full, isDirectory: &isDirectory), !isDirectory.boolValue,
                  !relative.split(separator: "/").contains(where: { $0.hasPrefix(".") }),
                  !Self.unservedDirectories.contains(relative.split(separator: "/").first ?? ""),
                  let data = fm.contents(atPath: full) else { continue }
            let bytes = [UInt8](data)
            files[relative] = File(bytes: bytes, etag: ETag.strong(for: bytes), contentType: ContentType.for(path: relative))
        }
    }

    func file(_ relativePath: String) -> File? { files[relativePath] }
}
