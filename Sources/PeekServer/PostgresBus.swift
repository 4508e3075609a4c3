#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import PeekCore
import PeekEngine
import PeekNet
import PeekPostgres
import PeekStore

/// Cross-node fan-out on PostgreSQL (`--database postgres://...`): a
/// decorator around this process's `InProcessBus`. Several peekd nodes on
/// one database each run one; the engine does not know it is there.
///
/// Sending. After a batch commits, the engine hands its outputs here; the
/// durable deltas among them go to this node's loops at once and, on a
/// thread of their own (`peekd-notify`), to the other nodes as NOTIFY on
/// the `peek_deltas` channel: one notification per batch (several batches
/// that queued meanwhile share one), each line `ticket seq frame`, the
/// frame left out when it would pass PostgreSQL's 8000-byte payload limit.
/// The NOTIFY runs on its own connection, in a transaction of its own,
/// outside the writing transaction: the writer never holds the database-wide
/// lock PostgreSQL takes at the commit of a transaction that notifies
/// (which keeps the queue in commit order), so that lock is taken once per
/// batch by a transaction that holds no row lock.
///
/// Receiving. A thread (`peekd-follow`) LISTENs on a third connection and
/// keeps, per ticket, the last seq this node's loops were handed (its
/// cursor). A delta at cursor + 1 with its frame goes to the loops; one
/// further ahead (a notification lost, late, or without its frame) is read
/// from the delta log, every seq between, in order; one at or below the
/// cursor was delivered already and is dropped. So each viewer sees every
/// seq once, in order, whatever the notifications do. Every second the
/// cursors are compared with the tickets' committed seqs, so a lost
/// notification is made up within a second even when no later delta
/// follows it; after the connection breaks, at once on reconnecting.
///
/// Subscribing. A snapshot (or a resume) is read at some seq S while this
/// node's loops are at the cursor C for that ticket. If C < S, the loops'
/// viewers are first brought to S from the log; if C > S, the subscriber's
/// frames get S+1...C from the log after its snapshot. Either way the new
/// viewer and the old ones continue from the same point. All of this runs
/// under one lock, and the loops are handed their jobs under it, so the
/// order the loops see is the order the cursors describe.
///
/// Ephemeral deltas (protocol.md §3.7) travel on a second channel,
/// `peek_ephemeral`, best effort: a line `E ticket frame` per delta
/// (telemetry, session output, agent status; not `sla.tick`, which every
/// node sends its own viewers, and not `presence.updated`, which is a
/// union), handed to this node's loops as it comes; a line `P ticket
/// viewers` per presence change, this node's own viewers of the ticket,
/// which the engine keeps per node and merges (`applyRemotePresence`).
/// One lost is not made up: the next one replaces it, and presence is
/// re-announced every third of a heartbeat.
///
/// Node leases. Each node keeps a row in `peek_nodes` whose `expires_at`
/// it pushes one heartbeat ahead every third of a heartbeat; it reads the
/// nodes whose lease holds at the same time, and the engine drops the
/// presence of every other node. A node killed with SIGKILL stops renewing
/// and is gone from the others' lists within a heartbeat and a third; one
/// that stops cleanly deletes its row.
final class PostgresBus: DeltaBus, @unchecked Sendable {
    // @unchecked: the cursors and the follower connection are touched only
    // under `lock`; the notifier's connection only by its worker thread.
    static let channel = "peek_deltas"
    static let ephemeralChannel = "peek_ephemeral"

    let inner: InProcessBus
    /// Tells this node's notifications from the others' (each node also
    /// hears its own).
    let nodeID: String
    private let logger: ServerLog
    private let resyncMillis: Int64

    private let lock = NSLock()
    // Guarded by `lock`.
    private var cursors: [String: Int] = [:]
    private let follower: PostgresTicketStore
    private var followerBroken = false
    private var nextResyncMillis: Int64 = 0

    private let engine: Engine
    /// How long a lease lasts (one heartbeat) and how often it is renewed.
    private let leaseMillis: Int64
    private var nextLeaseMillis: Int64 = 0

    private let notifier: SerialWorker<Outgoing>
    private let stopping = Atomic<Bool>(false)
    private let followerDone = DispatchSemaphore(value: 0)
    private let started = Atomic<Bool>(false)

    /// What the bus counts, for tests and measurements.
    final class Counters: Sendable {
        /// NOTIFYs sent (one per batch, or per batches queued together).
        let notificationsSent = Atomic<Int>(0)
        /// Deltas read from the log to fill a gap.
        let deltasReadFromLog = Atomic<Int>(0)
        /// Deltas handed on straight from a notification.
        let deltasFromNotifications = Atomic<Int>(0)
    }
    let counters = Counters()

    struct PendingDelta: Sendable {
        var ticket: String
        var seq: Int
        var frame: [UInt8]
    }

    /// One batch's share of what goes to the other nodes.
    struct Outgoing: Sendable {
        var deltas: [PendingDelta] = []
        /// `E ticket frame` and `P ticket viewers` lines.
        var ephemeral: [String] = []
    }

    init(url: String, inner: InProcessBus, loopCount: Int, logger: ServerLog, engine: Engine, heartbeatSeconds: Int,
         resyncMillis: Int64 = 1000) throws(StoreError) {
        self.inner = inner
        self.engine = engine
        leaseMillis = Int64(max(1, heartbeatSeconds)) * 1000
        self.logger = logger
        self.resyncMillis = resyncMillis
        nodeID = String(UInt64.random(in: 1...UInt64.max), radix: 36)
        follower = try PostgresTicketStore(url: url)
        try follower.connection.execute("LISTEN \(Self.channel)")
        try follower.connection.execute("LISTEN \(Self.ephemeralChannel)")
        let notifyConnection = try PostgresConnection(url: url)
        let node = nodeID
        let counters = counters
        nonisolated(unsafe) let connection = notifyConnection
        notifier = SerialWorker(name: "peekd-notify", capacity: 4096, whenFull: .wait) { taken in
            for payload in Self.payloads(node: node, taken.lazy.flatMap(\.deltas)) {
                Self.send(payload, channel: Self.channel, on: connection, logger: logger)
                counters.notificationsSent.add(1, ordering: .relaxed)
            }
            for payload in Self.ephemeralPayloads(node: node, taken.lazy.flatMap(\.ephemeral)) {
                Self.send(payload, channel: Self.ephemeralChannel, on: connection, logger: logger)
            }
        }
        // The lease is taken before any presence of this node is announced.
        renewLease()
    }

    func start() {
        guard !started.exchange(true, ordering: .relaxed) else { return }
        notifier.start()
        let thread = Thread { [self] in follow() }
        thread.name = "peekd-follow"
        thread.start()
    }

    func stop() {
        guard started.load(ordering: .relaxed), !stopping.exchange(true, ordering: .relaxed) else { return }
        followerDone.wait()
        notifier.stop()
        // Stopped cleanly: the others drop this node's presence at once.
        lock.withLock {
            _ = try? follower.connection.query("DELETE FROM peek_nodes WHERE id = $1", .text(nodeID))
        }
    }

    // MARK: This node's batches

    func deliver(_ outputs: [EngineOutput]) {
        guard !outputs.isEmpty else { return }
        var sent = Outgoing()
        lock.lock()
        var out: [EngineOutput] = []
        out.reserveCapacity(outputs.count)
        for output in outputs {
            switch output {
            case .publish(let ticket, let seq?, let frame):
                if let cursor = cursors[ticket] {
                    // Already handed on from the log (a later seq of another
                    // node's came first and the gap was read).
                    if seq <= cursor { continue }
                    if seq > cursor + 1 { catchUp(ticket, after: cursor, through: seq - 1, into: &out) }
                }
                cursors[ticket] = seq
                out.append(output)
                sent.deltas.append(PendingDelta(ticket: ticket, seq: seq, frame: frame))
            case .publish(let ticket, nil, let frame):
                if Self.crossesNodes(frame) { sent.ephemeral.append("E \(ticket) " + String(decoding: frame, as: UTF8.self)) }
                out.append(output)
            case .clusterPresence(let ticket, let viewers):
                sent.ephemeral.append("P \(ticket) " + String(decoding: viewers, as: UTF8.self))
            case .subscribe(let peer, let id, let ticket, var frames):
                guard let last = frames.last, let seq = Self.seq(in: last) else { out.append(output); continue }
                if let cursor = cursors[ticket] {
                    if cursor < seq {
                        catchUp(ticket, after: cursor, through: seq, into: &out)
                    } else if cursor > seq {
                        for (_, frame) in logFrames(ticket, after: seq, through: cursor) { frames.append(frame) }
                    }
                } else {
                    cursors[ticket] = seq
                }
                out.append(.subscribe(peer, id: id, ticket: ticket, frames: frames))
            default:
                out.append(output)
            }
        }
        // Notifications that arrived while a read ran on the follower.
        receive(follower.connection.notifications(), into: &out)
        inner.deliver(out)
        lock.unlock()
        if !sent.deltas.isEmpty || !sent.ephemeral.isEmpty { notifier.submit(sent) }
    }

    // MARK: Other nodes' batches

    private func follow() {
        while !stopping.load(ordering: .relaxed) {
            var fd = pollfd(fd: lock.withLock { follower.connection.socket }, events: Int16(POLLIN), revents: 0)
            if fd.fd >= 0 { _ = poll(&fd, 1, 200) } else { usleep(200_000) }
            lock.lock()
            var out: [EngineOutput] = []
            pump(into: &out)
            inner.deliver(out)
            lock.unlock()
        }
        followerDone.signal()
    }

    /// Under `lock`.
    private func pump(into out: inout [EngineOutput]) {
        let connection = follower.connection
        if followerBroken || connection.isBroken {
            do throws(StoreError) {
                try connection.reconnect()
                try connection.execute("LISTEN \(Self.channel)")
                try connection.execute("LISTEN \(Self.ephemeralChannel)")
                followerBroken = false
                logger.log(.info, "cluster_follow_reconnected", "listening for other nodes' deltas again; catching up from the log")
            } catch {
                followerBroken = true
                return
            }
            // Whatever was notified while the connection was down is lost:
            // compare every cursor with the database now.
            nextResyncMillis = 0
        }
        if !connection.consumeInput() {
            followerBroken = true
            return
        }
        receive(connection.notifications(), into: &out)
        let now = monotonicMillis()
        if now >= nextResyncMillis {
            nextResyncMillis = now + resyncMillis
            resync(into: &out)
        }
        if now >= nextLeaseMillis {
            nextLeaseMillis = now + max(100, leaseMillis / 3)
            renewLease()
        }
    }

    /// Pushes this node's lease one heartbeat ahead, reads which nodes
    /// still hold one, and has the engine drop the others' presence and
    /// announce its own again. A failed renewal is tried again at the next
    /// turn (the others drop this node's viewers meanwhile, and take them
    /// back at its next announcement). Under `lock`, or before `start`.
    private func renewLease() {
        let connection = follower.connection
        let live = try? { () throws(StoreError) -> [[SQLValue]] in
            _ = try follower.connection.query(
                "INSERT INTO peek_nodes(id, expires_at) VALUES ($1, now() + $2 * interval '1 millisecond') "
                    + "ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at",
                .text(nodeID), .int(leaseMillis))
            _ = try follower.connection.query("DELETE FROM peek_nodes WHERE expires_at < now() - interval '1 hour'")
            return try follower.connection.query("SELECT id FROM peek_nodes WHERE expires_at > now()")
        }()
        guard let live else {
            if connection.isBroken { followerBroken = true }
            return
        }
        let nodes = Set(live.compactMap { $0.first?.text })
        let within = leaseMillis
        engine.submit(.run { engine in
            engine.keepRemotePresence(liveNodes: nodes, heardWithinMillis: within)
            engine.announcePresence()
        })
    }

    /// Under `lock`.
    private func receive(_ notifications: [PostgresConnection.Notification], into out: inout [EngineOutput]) {
        for n in notifications where n.channel == Self.ephemeralChannel {
            var lines = n.payload.split(separator: "\n", omittingEmptySubsequences: true)[...]
            guard let node = lines.popFirst(), node != nodeID else { continue }
            let from = String(node)
            for line in lines {
                let parts = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
                guard parts.count == 3 else { continue }
                let ticket = String(parts[1])
                let body = Array(parts[2].utf8)
                switch parts[0] {
                case "E": out.append(.publish(ticket: ticket, seq: nil, delta: body))
                case "P": engine.submit(.run { $0.applyRemotePresence(node: from, ticket: ticket, viewers: body) })
                default: continue
                }
            }
        }
        for n in notifications where n.channel == Self.channel {
            var lines = n.payload.split(separator: "\n", omittingEmptySubsequences: true)[...]
            guard let node = lines.popFirst(), node != nodeID else { continue }
            for line in lines {
                let parts = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
                guard parts.count >= 2, let seq = Int(parts[1]) else { continue }
                let ticket = String(parts[0])
                let frame = parts.count == 3 && !parts[2].isEmpty ? Array(parts[2].utf8) : nil
                guard let cursor = cursors[ticket] else {
                    // Nobody here has subscribed to it: remember where the
                    // ticket is, so a subscribe that read an older snapshot
                    // is brought up to it.
                    cursors[ticket] = seq
                    continue
                }
                if seq <= cursor { continue }
                if seq == cursor + 1, let frame {
                    cursors[ticket] = seq
                    out.append(.publish(ticket: ticket, seq: seq, delta: frame))
                    counters.deltasFromNotifications.add(1, ordering: .relaxed)
                } else {
                    catchUp(ticket, after: cursor, through: seq, into: &out)
                }
            }
        }
    }

    /// Compares every cursor with its ticket's committed seq and reads what
    /// a lost notification left out. Under `lock`.
    private func resync(into out: inout [EngineOutput]) {
        guard !cursors.isEmpty else { return }
        let ids = cursors.keys.map { "\"\($0)\"" }.joined(separator: ",")
        let rows: [[SQLValue]]
        do throws(StoreError) {
            rows = try follower.connection.query("SELECT id, seq FROM tickets WHERE id = ANY($1::text[])", .text("{\(ids)}"))
        } catch {
            if follower.connection.isBroken { followerBroken = true }
            return
        }
        for row in rows {
            guard let ticket = row[0].text, let seq = row[1].int.map(Int.init), let cursor = cursors[ticket], seq > cursor else { continue }
            catchUp(ticket, after: cursor, through: seq, into: &out)
        }
    }

    /// Hands the loops the deltas after `cursor` through `seq` from the log
    /// and moves the cursor past what was read. Under `lock`.
    private func catchUp(_ ticket: String, after cursor: Int, through seq: Int, into out: inout [EngineOutput]) {
        for (s, frame) in logFrames(ticket, after: cursor, through: seq) {
            out.append(.publish(ticket: ticket, seq: s, delta: frame))
            cursors[ticket] = s
        }
    }

    /// The logged deltas after `after` through `through`, as frames. A
    /// failed read answers none (the cursor stays; the next resync tries
    /// again). Under `lock`.
    private func logFrames(_ ticket: String, after: Int, through: Int) -> [(Int, [UInt8])] {
        guard through > after else { return [] }
        let rows: [(seq: Int, at: Int64, kind: String, data: [UInt8])]
        do throws(StoreError) {
            rows = try follower.deltas(ticket: ticket, after: after, limit: through - after)
        } catch {
            if follower.connection.isBroken { followerBroken = true }
            logger.log(.error, "cluster_log_read_failed", "another node's deltas could not be read from the log; trying again",
                       ticket: ticket, error: "\(error)")
            return []
        }
        if let first = rows.first?.seq, first != after + 1 {
            // Pruned past it (a node more than --retain deltas behind).
            logger.log(.warn, "cluster_log_gap", "deltas \(after + 1)...\(first - 1) are no longer in the log", ticket: ticket)
        }
        counters.deltasReadFromLog.add(rows.count, ordering: .relaxed)
        return rows.map { row in
            (row.seq, Wire.deltaFrame(ticket: ticket, seq: row.seq, at: row.at, kind: DeltaKind(rawValue: row.kind) ?? .messageCreated,
                                      data: row.data))
        }
    }

    // MARK: Notifications

    /// The lines of every batch queued, in as few payloads under the limit
    /// as they fit: `node` first, then `ticket seq frame` per delta, or
    /// `ticket seq` when the frame would not fit in a payload of its own.
    static func payloads(node: String, _ deltas: some Sequence<PendingDelta>) -> [String] {
        let header = node + "\n"
        let limit = PostgresConnection.maxNotifyPayloadBytes
        var payloads: [String] = []
        var current = header
        for d in deltas {
            var line = "\(d.ticket) \(d.seq) " + String(decoding: d.frame, as: UTF8.self) + "\n"
            if header.utf8.count + line.utf8.count > limit { line = "\(d.ticket) \(d.seq)\n" }
            if current.utf8.count + line.utf8.count > limit {
                payloads.append(current)
                current = header
            }
            current += line
        }
        if current.utf8.count > header.utf8.count { payloads.append(current) }
        return payloads
    }

    /// The ephemeral lines queued, in as few payloads under the limit as
    /// they fit, `node` first; a line too long for a payload of its own is
    /// dropped (ephemeral: the other nodes' viewers miss it).
    static func ephemeralPayloads(node: String, _ lines: some Sequence<String>) -> [String] {
        let header = node + "\n"
        let limit = PostgresConnection.maxNotifyPayloadBytes
        var payloads: [String] = []
        var current = header
        for line in lines {
            let size = line.utf8.count + 1
            if header.utf8.count + size > limit { continue }
            if current.utf8.count + size > limit {
                payloads.append(current)
                current = header
            }
            current += line + "\n"
        }
        if current.utf8.count > header.utf8.count { payloads.append(current) }
        return payloads
    }

    /// Whether an ephemeral frame goes to the other nodes: not
    /// `presence.updated` (each node sends its own union), not `sla.tick`
    /// (each node ticks for its own viewers), not `queue.*` (each node's
    /// queue index is its own). The first
    /// `"kind":"` of a frame peekd encoded is the delta's own (the ticket
    /// before it is a JSON string, whose quotes are escaped).
    static func crossesNodes(_ frame: [UInt8]) -> Bool {
        let key = Array("\"kind\":\"".utf8)
        guard let start = frame.firstRange(of: key)?.upperBound else { return true }
        let rest = frame[start...]
        return !rest.starts(with: "presence.updated\"".utf8) && !rest.starts(with: "sla.tick\"".utf8)
            && !rest.starts(with: "queue.".utf8)
    }

    /// One NOTIFY; after a broken connection, one reconnect and retry. A
    /// notification that still fails is left to the receivers' resync.
    private static func send(_ payload: String, channel: String, on connection: PostgresConnection, logger: ServerLog) {
        for attempt in 0..<2 {
            do throws(StoreError) {
                if connection.isBroken { try connection.reconnect() }
                try connection.notify(channel: channel, payload: payload)
                return
            } catch {
                if attempt == 1 || !connection.isBroken {
                    logger.log(.error, "cluster_notify_failed", "other nodes were not notified; they catch up from the log within a second",
                               error: "\(error)")
                    return
                }
            }
        }
    }

    /// The top-level `seq` of a frame peekd encoded (`delta`, `snapshot`,
    /// `subscribed`): the first `"seq":` in it, which comes before any
    /// nested object in each of them; a `"seq":` inside a string value is
    /// escaped (`\"seq\":`) and never matches.
    static func seq(in frame: [UInt8]) -> Int? {
        let key = Array("\"seq\":".utf8)
        guard frame.count > key.count else { return nil }
        var i = 0
        while i + key.count < frame.count {
            if frame[i] == key[0] && Array(frame[i..<i + key.count]) == key {
                var j = i + key.count
                var value = 0
                var digits = 0
                while j < frame.count, frame[j] >= 0x30, frame[j] <= 0x39, digits < 18 {
                    value = value * 10 + Int(frame[j] - 0x30)
                    j += 1
                    digits += 1
                }
                return digits > 0 ? value : nil
            }
            i += 1
        }
        return nil
    }
}
