import Foundation
import PeekCore
import PeekEngine
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
    /// Per loop, in `LoopCounter` order; each loop publishes its own row
    /// about once a second.
    let loopCounters: Mutex<[[Int]]>
    /// Parse inbound mail and write its attachments (`MailIntake`).
    let mailWorkers: WorkerPool
    /// Hash and write uploads, read downloads (`AttachmentFiles`).
    let fileWorkers: WorkerPool
    /// API requests queued to the engine, by the id their answer comes back under.
    let replies = PendingReplies()
    /// Request bodies over 1 MiB being read or worked on, process-wide.
    private let largeBodies = Atomic<Int>(0)

    enum LoopCounter: Int, CaseIterable {
        case connections, framesIn, deltasDelivered, ephemeralShed, slowConsumersClosed, refusedBusy, refusedRateLimited
    }

    init(config: ServerConfig, engine: Engine, staticFiles: StaticFileCache, echoMode: Bool, loopCount: Int) {
        self.config = config
        self.engine = engine
        self.staticFiles = staticFiles
        self.echoMode = echoMode
        loopCounters = Mutex(Array(repeating: Array(repeating: 0, count: LoopCounter.allCases.count), count: loopCount))
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

    /// The Prometheus text format (protocol.md §9.5; deploy/grafana-dashboard.json
    /// queries these names, and OpsMetricsTests keeps the two in step).
    func metricsText() -> String {
        let totals = loopCounters.withLock { perLoop in
            perLoop.reduce(into: Array(repeating: 0, count: LoopCounter.allCases.count)) { acc, c in
                for i in acc.indices where i < c.count { acc[i] += c[i] }
            }
        }
        func loop(_ c: LoopCounter) -> Int { totals[c.rawValue] }
        let m = engine.metrics
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: String)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for s in samples { out += "\(name)\(s.labels) \(s.value)\n" }
        }
        func one(_ name: String, _ type: String, _ help: String, _ value: Int) { metric(name, type, help, [("", String(value))]) }
        func seconds(_ micros: Int) -> String { String(Double(micros) / 1_000_000) }
        one("peekd_connections", "gauge", "Open connections (all listeners).", loop(.connections))
        one("peekd_frames_received_total", "counter", "WebSocket messages received.", loop(.framesIn))
        one("peekd_deltas_delivered_total", "counter", "Deltas queued to viewers.", loop(.deltasDelivered))
        one("peekd_ephemeral_shed_total", "counter", "Ephemeral deltas dropped for slow consumers.", loop(.ephemeralShed))
        one("peekd_slow_consumers_closed_total", "counter", "Connections closed with 1013 for falling too far behind.", loop(.slowConsumersClosed))
        metric("peekd_refused_total", "counter", "Work refused, by reason: busy (engine backlog), rate_limited (frames per second), slow_consumer (closed with 1013).",
               [("{reason=\"busy\"}", String(loop(.refusedBusy))), ("{reason=\"rate_limited\"}", String(loop(.refusedRateLimited))),
                ("{reason=\"slow_consumer\"}", String(loop(.slowConsumersClosed)))])
        one("peekd_engine_batches_total", "counter", "Transactions the engine ran.", m.value(m.batches))
        one("peekd_engine_batch_jobs_total", "counter", "Jobs run in those transactions (batch size = rate of this / rate of batches).", m.value(m.batchJobs))
        one("peekd_engine_commits_total", "counter", "Transactions committed.", m.value(m.commits))
        metric("peekd_engine_commit_seconds_total", "counter", "Time spent committing (commit latency = rate of this / rate of commits).",
               [("", seconds(m.value(m.commitMicros)))])
        one("peekd_wal_syncs_total", "counter", "fdatasyncs of the write-ahead log before outputs are released.", m.value(m.walSyncs))
        metric("peekd_wal_sync_seconds_total", "counter", "Time spent in those syncs.", [("", seconds(m.value(m.walSyncMicros)))])
        one("peekd_commands_acknowledged_total", "counter", "Technician commands answered with a result in a committed batch.", m.value(m.commandsAcknowledged))
        one("peekd_engine_backlog", "gauge", "Jobs waiting for the engine.", engine.queuedJobs)
        one("peekd_agents_online", "gauge", "Agents connected.", m.value(m.agentsOnline))
        metric("peekd_smtp_sends_total", "counter", "Replies handed to a mail server, by outcome.",
               [("{outcome=\"sent\"}", String(m.value(m.mailSent))), ("{outcome=\"failed\"}", String(m.value(m.mailFailed)))])
        one("peekd_uptime_seconds", "gauge", "Seconds since start.", Int(Date().timeIntervalSince(startedAt)))
        return out
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

/// A large-body slot handed from the connection to the request once its
/// body is read: the worker job and the answer hold it, not the
/// connection, so a client that hangs up does not free a slot whose body
/// still waits in a queue. Given back once, by whichever comes first: the
/// worker done with the body, the answer, or (a job dropped unrun) the
/// last reference going away.
final class LargeBodySlot: Sendable {
    private let server: ServerShared
    private let held = Atomic<Bool>(true)

    init(_ server: ServerShared) { self.server = server }

    func release() {
        if held.exchange(false, ordering: .relaxed) { server.releaseLargeBodySlot() }
    }

    deinit { release() }
}

/// The way back to each API caller the engine has not answered yet. The
/// engine sees only the id (`APIReplyID`); the bus hands the answer here,
/// which runs the caller's callback (it hops to the caller's loop itself).
final class PendingReplies: Sendable {
    private struct Table {
        var next: UInt64 = 1
        var waiting: [UInt64: @Sendable (APIResponse) -> Void] = [:]
    }
    private let table = Mutex(Table())

    func register(_ reply: @escaping @Sendable (APIResponse) -> Void) -> APIReplyID {
        table.withLock { t in
            let id = t.next
            t.next += 1
            t.waiting[id] = reply
            return APIReplyID(raw: id)
        }
    }

    /// Runs the callback registered under `id`, once.
    func answer(_ id: APIReplyID, _ response: APIResponse) {
        let reply = table.withLock { $0.waiting.removeValue(forKey: id.raw) }
        reply?(response)
    }
}
