#if canImport(Glibc)
import Glibc
#endif
import Foundation
import PeekCore
import Synchronization

/// The single owner of durable ticket state. One thread runs it: it is the
/// store's only writer, it assigns every `seq`, it knows who views what, and
/// it owns the timers (consent deadlines, SLA breaches, telemetry coalescing).
///
/// Group commit: the thread takes every queued job at once, runs them inside
/// one transaction (each command in its own savepoint, so one refusal undoes
/// only that command; a note, checked before it writes, has none, and a
/// failed write of one rolls back the batch, as does a transaction SQLite
/// rolled back by itself; a reply's outcome always runs alone), commits
/// once, and only then lets the outputs go:
/// deltas to the loops, then `result`s. A `result` therefore always means
/// "on disk and handed to every subscriber", and under load one fsync
/// serves hundreds of commands. With a store whose commit is not yet
/// durable (SQLite in WAL with synchronous=NORMAL) the outputs go through
/// the `CommitPipeline`, which syncs first: the same promise, with the
/// next batch's work overlapping this one's flush.
///
/// `@unchecked Sendable`: all state except `inbox`/`doorbell` is touched only
/// by the engine thread; other threads call `submit` only.
public final class Engine: @unchecked Sendable {
    package let config: EngineConfig
    let store: any TicketStore
    let bus: any DeltaBus
    let mailer: Mailer
    package let logger: ServerLog
    package let metrics = EngineMetrics()
    /// Attachment files written for requests the engine has not answered yet.
    package let attachmentClaims = AttachmentClaims()
    /// Commands answered `result` in the batch being run; counted as
    /// acknowledged only if it commits.
    var commandsThisBatch = 0
    private let inbox = Mutex(Inbox())
    /// Jobs submitted and not yet taken by the engine thread; read by the
    /// loops, without the lock, to refuse new work while the engine is
    /// `maxEngineBacklog` behind (a stale read moves the edge by a job).
    private let backlog = Atomic<Int>(0)

    /// Jobs waiting for the engine thread, and how many of them each tenant
    /// (with any waiting) submitted: its share of the backlog is judged by it.
    private struct Inbox {
        var jobs: [(job: EngineJob, tenant: String?)] = []
        var waitingByTenant: [String: Int] = [:]
    }
    let doorbell = Doorbell()
    let stopped = Atomic<Bool>(false)
    /// Set when `stop` begins: a reply whose record fails is then not tried
    /// again (its "about to send" row is durable), so the stop waits only
    /// for mail servers still answering.
    let stopping = Atomic<Bool>(false)
    private let finished = Atomic<Bool>(false)

    // Engine-thread state.
    var sessions: [Peer: TechnicianState] = [:]
    var tenantConnections: [String: Int] = [:]
    var viewers: [String: TicketViewers] = [:]
    /// Viewers on other nodes (PostgreSQL cluster), per ticket and node, as
    /// their node last announced them (Engine+ClusterPresence.swift).
    var remoteViewers: [String: [String: RemotePresence]] = [:]
    /// Set before `start` when other nodes share the database: presence
    /// changes are then also handed to the bus for them (`.clusterPresence`).
    package var clustered = false
    var agents: [String: Peer] = [:]          // agent CN -> its connection
    var agentPeers: [Peer: AgentState] = [:]
    var timers = TimerHeap()
    var telemetry: [TenantScopedID: TelemetryState] = [:]   // by asset
    var shells: [String: ShellRelay] = [:]   // active shell sessions by id (Engine+RemoteActions)
    /// Who calls the tenants' assistants and summarisers over HTTP
    /// (Engine+Assist; PeekServer's AssistantRelay), and when each ticket's
    /// summariser call falls due (debounced).
    let assistant: (any AssistantCaller)?
    var summaryDue: [String: Int64] = [:]
    /// Writes ended shells' transcripts, off the engine thread (Engine+RemoteActions).
    let transcriptWriter = WorkerPool(name: "peekd-transcripts", maxThreads: 1, queueCapacity: .max)
    var inFlightReplies: [CommandKey: [(peer: Peer, id: String)]] = [:]
    /// Distinct replies on their way per technician (resends of one are not
    /// counted); bounded by `maxRepliesInFlightPerTechnician`.
    var repliesPerTechnician: [TenantScopedID: Int] = [:]
    /// Replies in flight per tenant, for its fair share of `maxRepliesInFlight`.
    var repliesPerTenant: [String: Int] = [:]
    var nextSLATickMillis: Int64 = 0
    var outputs: [EngineOutput] = []
    var lastPruneMillis: Int64 = 0
    /// Set when a write failed where no savepoint could undo it alone (see
    /// `handleCommand`): the batch ends there, in a rollback, not a commit.
    var batchFailed = false
    /// Connections that began viewing a ticket in this batch: if the batch
    /// fails, their subscribe is answered with an error, so presence and
    /// routing must forget them too.
    var subscribedThisBatch: [(peer: Peer, technician: String, ticket: String)] = []
    /// Agent frames a command produced, released only if it succeeds.
    var pendingAgentMessages: [(Peer, [UInt8])] = []
    /// The live queues (Engine+Queue).
    let queue = QueueHub()
    /// What each agent frame of this batch is told if the batch does not
    /// commit (`refuseAgent`, `agentWrote`). An agent hears nothing when its
    /// write succeeds, and its refusals are agent frames, which a failed
    /// batch drops with the rest: silence would then mean "saved".
    var agentAnswersIfUncommitted: [(peer: Peer, refusal: PeekError)] = []

    /// Replies whose first answer is repeated for this long (CONTRACT: 10 minutes).
    static let idempotencyWindowMillis: Int64 = 10 * 60 * 1000
    /// Messages a snapshot carries.
    static let snapshotMessages = 50
    /// Unseen messages a `stale` answer carries (the most recent; `missed_total` counts them all).
    static let maxMissed = 50
    /// Time entries `time.updated` and a snapshot carry (the most recent; `entry_count` counts them all).
    static let recentTimeEntries = 50
    /// Requests (the reply and its repeats) that may wait for one reply in
    /// flight; a technician's tabs and reconnects need a handful.
    static let maxReplyRepeatsWaiting = 16
    /// Jobs taken per transaction; bounds a batch's latency under a flood.
    static let maxBatch = 2048

    /// The durability stage, when the store's commit is not durable by itself.
    let pipeline: CommitPipeline?

    package init(config: EngineConfig, store: any TicketStore, bus: any DeltaBus, mailer: Mailer, logger: ServerLog,
                 assistant: (any AssistantCaller)? = nil) {
        self.config = config
        self.logger = logger
        self.store = store
        self.bus = bus
        self.mailer = mailer
        self.assistant = assistant
        pipeline = store.durability.map { [metrics, logger] in
            CommitPipeline(durability: $0, bus: bus, metrics: metrics, logger: logger, clock: config.clock)
        }
    }

    // MARK: Thread

    /// Hands a job to the engine thread. Safe from any thread. `tenant`:
    /// whose share of the backlog the job counts against while it waits.
    package func submit(_ job: EngineJob, tenant: String? = nil) {
        backlog.add(1, ordering: .relaxed)
        let wasEmpty = inbox.withLock { inbox in
            let empty = inbox.jobs.isEmpty
            inbox.jobs.append((job, tenant))
            if let tenant { inbox.waitingByTenant[tenant, default: 0] += 1 }
            return empty
        }
        if wasEmpty { doorbell.ring() }
    }

    package func start() {
        pipeline?.start()
        let thread = Thread { [self] in run() }
        thread.name = "peekd-engine"
        thread.start()
    }

    /// True while the engine is `maxEngineBacklog` jobs behind: loops then
    /// answer new commands, subscribes and agent chat with `rate_limited`
    /// rather than queue them (what keeps a session going, sign-in,
    /// unsubscribe, disconnects, consent, is always queued).
    package var isOverloaded: Bool { queuedJobs >= config.maxEngineBacklog }

    /// The answer to work refused while `isOverloaded` (a frame or an API call).
    package static let busyError = PeekError(.rateLimited, "The server is busy and did not take this; nothing changed. Send it again in a moment.")
    /// The answer to a tenant's work refused because the tenant holds its share.
    package static let tenantBusyError = PeekError(.rateLimited, "The server is busy with your organisation's requests and did not take this; nothing changed. Send it again in a moment.")

    /// Why a new command or subscribe from `tenant` may not be queued now,
    /// or nil if it may. Fair shares: a tenant may hold at most
    /// `FairShare.limit` of the jobs waiting (the global `maxEngineBacklog`
    /// bounds the sum), so one tenant's flood is refused while another
    /// tenant's traffic is still taken.
    package func refusal(tenant: String?) -> PeekError? {
        let backlog = config.maxEngineBacklog
        let queued = queuedJobs
        if queued >= backlog { return Self.busyError }
        // No share is below this, so with fewer jobs waiting in all none can
        // be full: the common case takes no lock.
        guard let tenant, queued >= min(backlog, FairShare.minimum) else { return nil }
        let overShare = inbox.withLock { inbox in
            let mine = inbox.waitingByTenant[tenant] ?? 0
            let tenants = inbox.waitingByTenant.count + (mine == 0 ? 1 : 0)
            return mine >= FairShare.limit(capacity: backlog, tenants: tenants)
        }
        return overShare ? Self.tenantBusyError : nil
    }

    /// Jobs submitted and not yet taken (for the overload check and tests).
    package var queuedJobs: Int { backlog.load(ordering: .relaxed) }

    /// Stops after the current batch. Replies whose email is on its way are
    /// waited for (up to the SMTP timeout), so a sent email is never left
    /// unrecorded by a shutdown.
    /// Waits on `stopCondition`, which the engine thread signals, not by polling.
    package func stop() {
        stopping.store(true, ordering: .relaxed)
        let deadline = clock.monotonicMillis() + Int64(config.smtpTimeoutSeconds + 5) * 1000
        stopCondition.lock()
        while repliesInFlight.load(ordering: .relaxed) > 0 {
            let left = deadline - clock.monotonicMillis()
            if left <= 0 { break }
            // Foundation's wait takes a date; it is only the slice's length.
            _ = stopCondition.wait(until: Date(timeIntervalSinceNow: Double(min(left, 1000)) / 1000))
        }
        stopCondition.unlock()
        stopped.store(true, ordering: .relaxed)
        doorbell.ring()
        stopCondition.lock()
        while !finished.load(ordering: .relaxed) { stopCondition.wait() }
        stopCondition.unlock()
    }

    /// Mirrors `inFlightReplies.count` for `stop()`, which runs on another thread.
    let repliesInFlight = Atomic<Int>(0)
    /// Signalled by the engine thread when a reply's email is done and when
    /// it ends: what `stop` waits for.
    private let stopCondition = NSCondition()

    /// Tells a waiting `stop` that `repliesInFlight` or `finished` changed.
    func signalStop() {
        stopCondition.lock()
        stopCondition.broadcast()
        stopCondition.unlock()
    }

    private func run() {
        prepareToRun()
        while !stopped.load(ordering: .relaxed) {
            var wait = nextSLATickMillis - clock.monotonicMillis()
            if let next = timers.nextDue { wait = min(wait, next - now) }
            doorbell.wait(timeoutMillis: wait)
            runPass()
        }
        pipeline?.stop()
        finished.store(true, ordering: .relaxed)
        signalStop()
    }

    /// Before the first pass: the deadlines kept in the store are armed
    /// again, what a restart cut off is settled, and the first SLA tick is
    /// one interval away.
    func prepareToRun() {
        recoverTimers()
        endShellsCutByRestart()
        settleRepliesCutByRestart()
        nextSLATickMillis = clock.monotonicMillis() + Int64(config.slaTickSeconds) * 1000
    }

    /// One pass of the engine thread: every job queued, in batches, then the
    /// timers due by `clock`. The engine's rule tests call it on their own
    /// thread, the engine not started, after each step and `advance`.
    func runPass() {
        while true {
            let jobs = inbox.withLock { inbox -> [(job: EngineJob, tenant: String?)] in
                let taken: [(job: EngineJob, tenant: String?)]
                if inbox.jobs.count <= Self.maxBatch {
                    taken = inbox.jobs
                    inbox.jobs.removeAll(keepingCapacity: true)
                } else {
                    taken = Array(inbox.jobs.prefix(Self.maxBatch))
                    inbox.jobs.removeFirst(Self.maxBatch)
                }
                for case let (_, tenant?) in taken {
                    let left = inbox.waitingByTenant[tenant, default: 1] - 1
                    inbox.waitingByTenant[tenant] = left > 0 ? left : nil
                }
                return taken
            }
            backlog.subtract(jobs.count, ordering: .relaxed)
            if jobs.isEmpty { break }
            // A write that fails where only the batch can undo it ends
            // the batch there (rolled back, its commands told); the jobs
            // behind it get a transaction of their own rather than run
            // against a doomed one. A reply's outcome is never part of
            // a batch (see `finishReply`).
            var next = 0
            while next < jobs.count {
                if case .mailFinished(let job, let outcome) = jobs[next].job {
                    finishReply(job, outcome)
                    next += 1
                    continue
                }
                let first = next
                runBatch {
                    while next < jobs.count && !batchEnded && !jobs[next].job.isMailOutcome {
                        handle(jobs[next].job)
                        next += 1
                    }
                }
                metrics.add(metrics.batches)
                metrics.add(metrics.batchJobs, next - first)
            }
        }
        runDueTimers()
    }

    /// True once nothing more may join the batch: a write failed that only
    /// the whole batch can undo, or the database rolled the transaction
    /// back by itself (a full disk, an I/O error).
    var batchEnded: Bool { batchFailed || store.transactionLost }

    /// What becomes of a batch's outputs if it does not commit.
    enum UncommittedOutputs {
        /// Every command in it is told it failed (`failedCommit`).
        case answerFailure
        /// Nothing is sent: the caller runs the batch again later.
        case discard
    }

    /// Runs `body` in one transaction and releases its outputs after the
    /// commit; answers whether it committed.
    @discardableResult
    func runBatch(ifUncommitted: UncommittedOutputs = .answerFailure, _ body: () -> Void) -> Bool {
        outputs.removeAll(keepingCapacity: true)
        subscribedThisBatch.removeAll(keepingCapacity: true)
        agentAnswersIfUncommitted.removeAll(keepingCapacity: true)
        commandsThisBatch = 0
        var refused = false
        do {
            try store.begin()
        } catch {
            // No write lock (another writer held the database past the busy
            // timeout): the batch is refused whole. Its jobs run in a
            // read-only transaction, so every write fails and is answered
            // as failed, instead of each committing on its own outside any
            // transaction while the batch reports failure.
            log(.error, "batch_refused", "the database could not be locked for writing; refusing the batch", error: "\(error)")
            refused = true
            store.beginReadOnly()
        }
        body()
        queueFlush()
        var committed = false
        if refused {
            // Logged above; nothing of it was written.
        } else if store.transactionLost {
            log(.error, "batch_rolled_back", "the database rolled the batch back after an error; every command in it failed")
        } else if batchFailed {
            log(.error, "batch_rolled_back", "a write failed that only the whole batch can undo; rolling the batch back")
        } else {
            do {
                let started = clock.monotonicMicros()
                try store.commit()
                committed = true
                metrics.add(metrics.commits)
                metrics.add(metrics.commitMicros, clock.monotonicMicros() - started)
                metrics.add(metrics.commandsAcknowledged, commandsThisBatch)
            } catch {
                log(.error, "commit_failed", "committing the batch failed", error: "\(error)")
            }
        }
        if !committed {
            // Nothing of this batch is on disk: no delta may go out and every
            // command in it must learn that it failed.
            store.rollback()
            switch ifUncommitted {
            case .answerFailure: outputs = outputs.compactMap { $0.failedCommit() }
            case .discard: outputs.removeAll(keepingCapacity: true)
            }
            for s in subscribedThisBatch {
                sessions[s.peer]?.tickets.remove(s.ticket)
                leave(s.peer, techID: s.technician, ticketID: s.ticket)
            }
            if case .answerFailure = ifUncommitted {
                for a in agentAnswersIfUncommitted { outputs.append(.agentSend(a.peer, Wire.errorFrame(id: nil, a.refusal))) }
            }
        }
        queueAfterBatch(committed: committed)
        batchFailed = false
        if let pipeline {
            // Released by the pipeline once the WAL is synced; the array is
            // handed over, so the next batch starts a fresh one.
            pipeline.enqueue(outputs)
            outputs = []
        } else {
            bus.deliver(outputs)
            outputs.removeAll(keepingCapacity: true)
        }
        return committed
    }

    private func handle(_ job: EngineJob) {
        switch job {
        case .hello(let peer, let token): handleHello(peer, token: token)
        case .frame(let peer, let frame): handleFrame(peer, frame)
        case .disconnected(let peer): handleDisconnect(peer)
        case .api(let request, let reply): handleAPI(request, reply: reply)
        case .agentConnected(let peer, let cn): handleAgentConnected(peer, commonName: cn)
        case .agentFrame(let peer, let frame): handleAgentFrame(peer, frame)
        case .agentDisconnected(let peer): handleAgentDisconnected(peer)
        case .mailFinished: preconditionFailure("a reply's outcome runs in a transaction of its own (finishReply)")
        case .run(let body): body(self)
        }
    }

    // MARK: Clock

    /// Where the engine reads time: never this machine's clock directly.
    var clock: any TimeSource { config.clock }

    /// Wall-clock time for timestamps on the wire and due times in the store.
    var now: Int64 { clock.wallMillis() }

    /// The server's log (ServerLog): ids and sentences only, never a
    /// token, a password or a message body.
    func log(_ level: ServerLog.Level, _ event: String, _ message: String, tenant: String? = nil, ticket: String? = nil,
             connection: Peer? = nil, error: String? = nil) {
        logger.log(level, event, message, tenant: tenant, ticket: ticket, connection: connection, error: error)
    }

    // MARK: Output helpers

    func send(_ peer: Peer, _ bytes: [UInt8]) { outputs.append(.send(peer, bytes)) }

    func sendError(_ peer: Peer, id: String?, _ error: PeekError) {
        outputs.append(.send(peer, Wire.errorFrame(id: id, error)))
    }

    /// Appends a durable delta to the ticket's log inside the current
    /// transaction and queues it for every viewer after the commit.
    @discardableResult
    func appendDelta(_ ticket: inout Ticket, kind: DeltaKind, data: [UInt8], at: Int64) throws(StoreError) -> Int {
        ticket.seq += 1
        try store.appendDelta(ticket: ticket.id, seq: ticket.seq, at: at, kind: kind, data: data)
        queueTouched(ticket.id, tenant: ticket.tenant)
        return try publishLogged(&ticket, kind: kind, data: data, at: at)
    }

    /// Stores a new message (seq `ticket.seq + 1`) with its `message.created`
    /// delta in the same row, and queues the delta like `appendDelta`.
    @discardableResult
    func appendMessage(_ ticket: inout Ticket, _ m: Message, mailMessageID: String? = nil,
                       command: CommandKey? = nil) throws(StoreError) -> Int {
        assert(m.ticket == ticket.id && m.seq == ticket.seq + 1, "a message takes the ticket's next seq")
        ticket.seq += 1
        let data = Wire.messageBytes(m)
        try store.insertMessage(m, mailMessageID: mailMessageID, delta: data, command: command)
        if m.channel == .customer { noteCustomerMessage(ticket: ticket.id) }
        queueTouched(ticket.id, tenant: ticket.tenant, message: m)
        return try publishLogged(&ticket, kind: .messageCreated, data: data, at: m.at)
    }

    /// Queues a logged delta for the ticket's viewers and prunes the log.
    /// Every durable delta goes to the bus, viewed or not: which loop or
    /// node holds a viewer is the bus's to know, not the engine's.
    private func publishLogged(_ ticket: inout Ticket, kind: DeltaKind, data: [UInt8], at: Int64) throws(StoreError) -> Int {
        let delta = Wire.deltaFrame(ticket: ticket.id, seq: ticket.seq, at: at, kind: kind, data: data)
        outputs.append(.publish(ticket: ticket.id, seq: ticket.seq, delta: delta))
        if ticket.seq % 64 == 0, ticket.seq > config.retainDeltas {
            try store.pruneDeltas(ticket: ticket.id, keepingAfter: ticket.seq - config.retainDeltas)
        }
        return ticket.seq
    }

    /// Queues an ephemeral delta (no seq, not stored) for the ticket's viewers.
    func publishEphemeral(ticket: String, kind: DeltaKind, data: [UInt8]) {
        // Viewers on other nodes get it through the bus.
        guard hasViewers(ticket) else { return }
        outputs.append(.publish(ticket: ticket, seq: nil, delta: Wire.deltaFrame(ticket: ticket, seq: nil, at: now, kind: kind, data: data)))
    }

    /// Adds a system-event message (status changes, assignments, SLA, sessions).
    func appendSystemMessage(_ ticket: inout Ticket, _ text: String, at: Int64) throws(StoreError) {
        let seq = ticket.seq + 1
        let m = Message(id: "M-\(ticket.number)-\(seq)", ticket: ticket.id, seq: seq, channel: .system,
                        author: .system, body: text, via: .system, at: at)
        try appendMessage(&ticket, m)
    }
}

/// The fan-out seam. The engine hands every post-commit output here; the
/// embedded default delivers to this process's loops. A multi-process
/// deployment puts a shared bus (NATS, Redis, PostgreSQL LISTEN) behind the
/// same call and delivers to other processes' loops too; nothing in the
/// engine knows which.
package protocol DeltaBus: Sendable {
    func deliver(_ outputs: [EngineOutput])
}

/// What the engine releases after a commit, in order.
///
/// Plain values only: connections and API callers are named by opaque ids
/// (`Peer`, `APIReplyID`), so a bus may carry the outputs to another node.
package enum EngineOutput {
    /// A delta for everyone viewing `ticket`, wherever they are connected:
    /// `seq` for a logged one, nil for an ephemeral one (which a slow
    /// viewer may be spared). `delta` is the encoded `delta` message; the
    /// WebSocket frame around it is built by whoever sends it.
    case publish(ticket: String, seq: Int?, delta: [UInt8])
    /// A delta for every subscriber of a topic that is not a ticket (the
    /// live queue's views and tiles, protocol.md §3.13): no `seq`, yet never
    /// shed for a slow subscriber, whose view would otherwise stay wrong
    /// (such a subscriber is closed at the output bound instead).
    case publishTopic(topic: String, delta: [UInt8])
    case send(Peer, [UInt8])
    /// A command's answer: sent, or replaced by an `internal` error if the commit failed.
    case result(Peer, id: String, frame: [UInt8])
    /// `id`: the subscribe frame's, for the error if the batch fails.
    case subscribe(Peer, id: String?, ticket: String, frames: [[UInt8]])
    /// The loop drops the subscription too: it already did when the frame
    /// arrived, but a `subscribe` just before it may have come back since.
    case unsubscribe(Peer, ticket: String)
    case close(Peer, code: UInt16, reason: String)
    case welcome(Peer, frame: [UInt8], signIn: SignIn)
    /// The answer to an API request.
    case http(APIReplyID, APIResponse)
    case agentSend(Peer, [UInt8])
    /// This node's own viewers of `ticket` (a JSON array, as in
    /// `presence.updated`) for the other nodes of a cluster; a bus with no
    /// other nodes drops it.
    case clusterPresence(ticket: String, viewers: [UInt8])
    /// Work that may start only once the batch is durable (a reply's email,
    /// after its "about to send" row), run by the bus after the batch's
    /// other outputs; if the batch does not commit, `ifLost` runs instead.
    case afterDurable(@Sendable () -> Void, ifLost: @Sendable () -> Void)

    package func failedCommit() -> EngineOutput? {
        switch self {
        case .afterDurable(_, let lost): return .afterDurable(lost, ifLost: {})
        case .publish, .publishTopic, .agentSend: return nil
        case .subscribe(let peer, let id, let ticket, _):
            // The snapshot was read inside the failed transaction: say so.
            return .send(peer, Wire.errorFrame(id: id, PeekError(.internal, "Subscribing to \(ticket) failed; subscribe again.")))
        case .result(let peer, let id, _):
            return .send(peer, Wire.errorFrame(id: id, PeekError(.internal, "The change could not be saved; nothing changed. Try again.")))
        case .http(let reply, _):
            return .http(reply, .error(PeekError(.internal, "The change could not be saved; nothing changed. Try again.")))
        default: return self
        }
    }
}

/// What the engine knows of a technician connection.
struct TechnicianState {
    var technician: Technician?
    var tickets: Set<String> = []
}

/// Who views a ticket, for presence. (Routing its deltas to the
/// connections is the bus's: the loops keep their own subscriptions.)
///
/// Presence is derived per technician (one entry however many tabs), so a
/// change to one technician's connections can change only that
/// technician's line: the mutators below say whether it did by looking at
/// that entry alone. Comparing whole lists instead cost every leave a walk
/// over every connection viewing the ticket, quadratic when thousands go
/// at once.
struct TicketViewers {
    struct Entry {
        var name: String
        var peers: [Peer: ComposingMode?]
        /// A technician is composing if any of their tabs is.
        var composing: ComposingMode? { peers.values.lazy.compactMap { $0 }.first }
    }
    private(set) var byTechnician: [String: Entry] = [:]
    private(set) var order: [String] = []

    var isEmpty: Bool { byTechnician.isEmpty }

    /// Adds a connection: whether the technician was not viewing before,
    /// and whether this connection was not. (Entries are taken out of the
    /// dictionary while changed, so that the peers dictionary inside is not
    /// copied.)
    mutating func add(_ peer: Peer, technician id: String, name: String) -> (newViewer: Bool, newConnection: Bool) {
        var entry = byTechnician.removeValue(forKey: id) ?? Entry(name: name, peers: [:])
        defer { byTechnician[id] = entry }
        let newViewer = entry.peers.isEmpty
        if newViewer { order.append(id) }
        guard entry.peers[peer] == nil else { return (newViewer, false) }
        entry.peers[peer] = .some(nil)
        return (newViewer, true)
    }

    /// Removes a connection; true if presence changed (the technician's last
    /// tab went, or the one that was composing).
    mutating func remove(_ peer: Peer, technician id: String) -> Bool {
        guard var entry = byTechnician.removeValue(forKey: id) else { return false }
        let before = entry.composing
        guard entry.peers.removeValue(forKey: peer) != nil else {
            byTechnician[id] = entry
            return false
        }
        if entry.peers.isEmpty {
            order.removeAll { $0 == id }
            return true
        }
        let changed = entry.composing != before
        byTechnician[id] = entry
        return changed
    }

    /// Records what one connection is composing; true if presence changed.
    mutating func setComposing(_ mode: ComposingMode?, peer: Peer, technician id: String) -> Bool {
        guard var entry = byTechnician.removeValue(forKey: id) else { return false }
        defer { byTechnician[id] = entry }
        guard let current = entry.peers[peer], current != mode else { return false }
        let before = entry.composing
        // updateValue, not subscript assignment: assigning a nil mode
        // through `[Peer: ComposingMode?]` would remove the connection.
        entry.peers.updateValue(mode, forKey: peer)
        return entry.composing != before
    }

    var list: [Viewer] {
        order.compactMap { id in
            guard let e = byTechnician[id] else { return nil }
            return Viewer(id: id, name: e.name, composing: e.composing)
        }
    }
}

struct AgentState {
    var commonName: String
    var asset: Asset
}

/// An id that is unique only within its tenant (a technician, an asset).
/// A struct key, not a joined string: "a/b" + "c" and "a" + "b/c" would
/// join alike, and tenant ids come from the back end unrestricted.
package struct TenantScopedID: Hashable, Sendable {
    package let tenant: String
    package let id: String
    package init(tenant: String, id: String) { self.tenant = tenant; self.id = id }
}

struct TelemetryState {
    /// The asset as its agent signed in, so a held reading is flushed with its name.
    var asset: Asset
    var latest: Telemetry
    var lastSentMonotonic: Int64
    var pending: Bool
}
