#if canImport(Glibc)
import Glibc
#endif
import Foundation
import PeekCore
import PeekDemoAgent
import PeekEngine
import PeekNet
import PeekPostgres
import PeekStore
import PeekTLS

/// The running server: loops, listeners, the engine. `start` returns once
/// every listener is bound; `readyLine` is what `peekd` prints.
public final class Server: @unchecked Sendable {
    // @unchecked: fields are set once in start() before any other thread sees them.
    public let config: ServerConfig
    public private(set) var plainPort: UInt16 = 0
    public private(set) var tlsPort: UInt16?
    public private(set) var agentPort: UInt16?
    private var loops: LoopGroup?
    /// The cross-node bus, on PostgreSQL only.
    private var clusterBus: PostgresBus?
    private var clusterRescan: ClusterTimerRescan?
    /// What the TLS listeners make new sessions from; replaced by `reloadTLS`.
    private var tlsSlot: TLSContextSlot?
    private var agentSlot: TLSContextSlot?
    /// `config` with the development certificate paths filled in, for reloads.
    private var tlsConfig: ServerConfig?
    private(set) var engine: Engine?
    /// The demo asset's agent (`--demo`, unless `demoAgent` is off).
    public private(set) var demoAgent: DemoAgent?
    let echoMode: Bool
    /// The log on stderr, in `config.logFormat`.
    public let logger: ServerLog

    public init(config: ServerConfig, echoMode: Bool = false) {
        self.config = config
        self.echoMode = echoMode
        logger = ServerLog(format: config.logFormat, fd: config.logFileDescriptor)
    }

    public func start() throws {
        signal(SIGPIPE, SIG_IGN)
        var config = self.config
        // Echo mode signs nobody in; everything else needs real secrets.
        if !echoMode, let problem = ServerSecrets.problem(jwtSecret: config.jwtSecret, serviceToken: config.serviceToken) {
            throw SecretsError(problem)
        }
        try FileManager.default.createDirectory(atPath: config.dataDirectory, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: config.attachmentsDirectory, withIntermediateDirectories: true)

        // Development certificates when TLS listeners are asked for without files.
        let needsServerCert = (config.tlsPort != nil || config.agentPort != nil) && (config.tlsCert == nil || config.tlsKey == nil)
            && (config.tlsPort != nil || config.agentCert == nil || config.agentKey == nil)
        var devPKI: DevCertificatePaths?
        if needsServerCert || (config.agentPort != nil && config.agentCA == nil) {
            let dev = try DevCertificates.ensure(in: config.dataDirectory + "/certs")
            devPKI = dev
            if config.tlsCert == nil || config.tlsKey == nil { config.tlsCert = dev.serverCert; config.tlsKey = dev.serverKey }
            if config.agentCA == nil { config.agentCA = dev.agentCAFile }
        }
        tlsSlot = try config.tlsPort.map { _ in TLSContextSlot(try makeServerContext(config)) }
        agentSlot = try config.agentPort.map { _ in TLSContextSlot(try makeAgentContext(config)) }
        tlsConfig = config

        let opened: any TicketStore = if let url = config.databaseURL, !echoMode {
            try PostgresTicketStore(url: url)
        } else {
            try SQLiteTicketStore(path: echoMode ? ":memory:" : config.databasePath)
        }
        let store = config.wrapStore?(opened) ?? opened
        let threads = config.threads > 0 ? config.threads
            : Self.defaultLoopCount(cores: ProcessInfo.processInfo.activeProcessorCount, echoMode: echoMode)
        let bus = BusProxy()
        // A wrong --smtp-ca must stop the start, not every later reply.
        let mailTLS = try TLSContext.makeClient(caFile: config.smtpCA, useSystemTrust: true)
        let mailer = SMTPMailer(tls: mailTLS, timeoutSeconds: Double(config.smtpTimeoutSeconds))
        let assistant = AssistantRelay(timeoutSeconds: Double(config.assistTimeoutSeconds), smtpCA: config.smtpCA)
        let engine = Engine(config: config.engine, store: store, bus: bus, mailer: mailer, logger: logger, assistant: assistant)
        let shared = ServerShared(config: config, engine: engine, staticFiles: StaticFileCache(directory: config.clientDirectory),
                                  echoMode: echoMode, loopCount: threads)
        let group = try LoopGroup(count: threads) { loop in
            let hub = LoopHub(loop: loop, server: shared)
            loop.sweepIntervalMillis = min(1000, max(100, Int64(shared.config.heartbeatSeconds) * 250))
            // Every byte queued for a connection counts against one bound
            // (protocol.md §3.11): past it the peer is not read until it drains.
            loop.pauseInputAboveBytes = shared.config.hardOutputLimit
            loop.context = hub
            loop.addSweepTask { _ in
                let counters = [loop.connectionCount, hub.framesIn, hub.deltasDelivered, hub.ephemeralShed, hub.slowConsumersClosed,
                                hub.refusedBusy, hub.refusedRateLimited]
                shared.loopCounters.withLock { $0[loop.index] = counters }
            }
            // The first loop times the sweep of temporary attachment files
            // (at start-up, then every interval); a file worker does it, so
            // no loop waits on the disk.
            if loop.index == 0 {
                var nextSweepMillis = Int64.min
                loop.addSweepTask { nowMillis in
                    guard nowMillis >= nextSweepMillis else { return }
                    nextSweepMillis = nowMillis + shared.config.attachmentSweepIntervalMillis
                    let config = shared.config
                    _ = shared.fileWorkers.submit {
                        AttachmentFiles.sweepTemporaryFiles(in: config.attachmentsDirectory, maxAgeMillis: config.attachmentTemporaryMaxAgeMillis,
                                                            nowMillis: wallClockMillis(), logger: shared.engine.logger)
                    }
                }
            }
        }
        let inProcess = InProcessBus(loops: group.loops, replies: shared.replies)
        if let url = config.databaseURL, !echoMode {
            // Several nodes may share the database: their deltas reach this
            // node's viewers, and this node's reach theirs.
            let cluster = try PostgresBus(url: url, inner: inProcess, loopCount: threads, logger: logger, engine: engine,
                                          heartbeatSeconds: config.heartbeatSeconds)
            engine.clustered = true
            cluster.start()
            clusterBus = cluster
            clusterRescan = ClusterTimerRescan(engine: engine, seconds: config.clusterRescanSeconds)
            bus.target = cluster
        } else {
            bus.target = inProcess
        }
        if config.demo && !echoMode { DemoData.seed(engine) }
        let demoTickets = config.demo && config.demoAgent && !echoMode ? DemoData.agentTickets(engine) : []
        engine.start()
        self.engine = engine
        self.loops = group

        let perLoop = max(1, config.maxConnections / threads)
        let factory: HandlerFactory = { connection in HTTPConnectionHandler(hub: LoopHub.of(connection.loop)) }
        plainPort = try group.listen(host: config.host, port: config.port, kind: .plain, tls: nil, maxConnectionsPerLoop: perLoop, makeHandler: factory)
        if let port = config.tlsPort {
            tlsPort = try group.listen(host: config.host, port: port, kind: .tls, tls: tlsSlot, maxConnectionsPerLoop: perLoop, makeHandler: factory)
        }
        if let port = config.agentPort {
            agentPort = try group.listen(host: config.host, port: port, kind: .mutualTLS, tls: agentSlot, maxConnectionsPerLoop: perLoop,
                                         maxOwnConnectionsPerLoop: max(1, config.maxAgentConnections / threads), makeHandler: factory)
        }
        if config.demo && config.demoAgent && !echoMode { startDemoAgent(devPKI, tickets: demoTickets) }
    }

    /// `--demo`'s agent for the demo asset, over real mutual TLS with the
    /// certificate the development agent CA issued (`agent-demo-1`). Only
    /// on the development PKI: with your own `--agent-ca` or agent listener
    /// certificate it has no certificate that would do, and says so.
    private func startDemoAgent(_ dev: DevCertificatePaths?, tickets: [String]) {
        guard let agentPort else { return }
        guard let dev, self.config.agentCA == nil, self.config.agentCert == nil, self.config.tlsCert == nil else {
            logger.log(.info, "demo_agent_off", "the demo agent runs only on the generated development certificates; not started")
            return
        }
        let host = ["0.0.0.0", "::", "localhost", ""].contains(config.host) ? "127.0.0.1" : config.host
        let joinPort = tlsPort ?? plainPort
        var c = DemoAgent.Configuration(host: host, port: agentPort, serverCA: dev.caFile, certificateFile: dev.demoAgentCert,
                                        keyFile: dev.demoAgentKey, joinURL: "https://localhost:\(joinPort)/demo-desktop.html")
        c.chatTickets = tickets
        let agent = DemoAgent(c) { [logger] in logger.log(.info, "demo_agent", $0) }
        agent.start()
        demoAgent = agent
    }

    /// Re-reads `--agent-crl` now (peekd calls this on SIGHUP): new agent
    /// handshakes use the new CRLs; if the file does not load, the previous
    /// ones stay and a line on stderr says why. Returns whether it loaded.
    @discardableResult
    public func reloadAgentCRL() -> Bool {
        agentSlot?.context.reloadRevocationList() ?? true
    }

    /// SIGHUP: re-reads the agent CRL in place, then loads every TLS
    /// listener's files again (`--tls-cert`/`--tls-key`, the agent
    /// listener's certificate, `--agent-ca`, `--agent-crl`) into new
    /// contexts. New handshakes use them; open connections keep the context
    /// they were made from. A listener whose files do not load keeps its
    /// current context, and the log says which and why. Returns whether
    /// everything loaded.
    @discardableResult
    public func reloadTLS() -> Bool {
        guard let config = tlsConfig else { return true }
        var loaded = reloadAgentCRL()
        func reload(_ slot: TLSContextSlot?, _ what: String, _ make: () throws -> TLSContext) {
            guard let slot else { return }
            do {
                slot.replace(with: try make())
                logger.log(.info, "tls_reloaded", "\(what) reloaded; new handshakes use it")
            } catch {
                loaded = false
                logger.log(.warn, "tls_reload_failed", "\(what) not reloaded; new handshakes keep using the previous one", error: "\(error)")
            }
        }
        reload(tlsSlot, "TLS certificate \(config.tlsCert ?? "") and key \(config.tlsKey ?? "")") { try makeServerContext(config) }
        reload(agentSlot, "agent listener certificate \(config.agentCert ?? config.tlsCert ?? ""), --agent-ca \(config.agentCA ?? "")"
               + (config.agentCRL.map { " and --agent-crl \($0)" } ?? "")) { try makeAgentContext(config) }
        return loaded
    }

    private func makeServerContext(_ config: ServerConfig) throws -> TLSContext {
        try TLSContext.makeServer(certificateChainFile: config.tlsCert!, privateKeyFile: config.tlsKey!,
                                  recordLayer: config.tlsRecordLayer, recordsPerKey: config.tlsRecordsPerKey)
    }

    private func makeAgentContext(_ config: ServerConfig) throws -> TLSContext {
        try TLSContext.makeMutualServer(certificateChainFile: config.agentCert ?? config.tlsCert!, privateKeyFile: config.agentKey ?? config.tlsKey!,
                                        clientCAFile: config.agentCA!, crlFile: config.agentCRL, recordLayer: config.tlsRecordLayer,
                                        log: { [logger] in logger.log($0.contains(" not reloaded") ? .warn : .info, "agent_crl_reload", $0) })
    }

    public var readyLine: String {
        let host = config.host.contains(":") ? "[\(config.host)]" : config.host
        var line = "peekd ready plain=\(host):\(plainPort)"
        if let tlsPort { line += " tls=\(host):\(tlsPort)" }
        if let agentPort { line += " agent=\(host):\(agentPort)" }
        let browseHost = config.host == "0.0.0.0" || config.host == "::" ? "127.0.0.1" : host
        line += " url=http://\(browseHost):\(plainPort)/"
        return line
    }

    /// One event loop per core but one: the engine thread (every durable
    /// change, in order) and its commit pipeline need a core of their own,
    /// and loops that outnumber the free cores only take turns with them.
    /// On the 2-core benchmark machine one loop measured better than two for
    /// fan-out (1 x 10,000: +13% deliveries/s; one note at a time to 1,000
    /// viewers: p99 8.7 ms against 12.1 ms) and the same for durable notes;
    /// plain handshakes/s were 15% lower (BENCHMARKS.md). Echo mode has no
    /// engine work, so it keeps every core.
    static func defaultLoopCount(cores: Int, echoMode: Bool) -> Int {
        echoMode ? max(1, cores) : max(1, cores - 1)
    }

    /// Graceful stop: no new connections, every WebSocket closed with 1001,
    /// output flushed, then the engine finishes its last batch.
    public func stop(drainSeconds: Double = 5) {
        demoAgent?.stop()
        demoAgent = nil
        clusterRescan?.stop()
        clusterRescan = nil
        loops?.shutdown(drainSeconds: drainSeconds)
        loops = nil
        engine?.stop()
        engine = nil
        clusterBus?.stop()
        clusterBus = nil
        logger.flush()
    }
}

/// Lets the engine be built before the loops exist (the loops' set-up needs
/// the engine); set once before the engine starts.
final class BusProxy: DeltaBus, @unchecked Sendable {
    // @unchecked: `target` is written once before the engine thread starts.
    var target: (any DeltaBus)?
    func deliver(_ outputs: [EngineOutput]) { target?.deliver(outputs) }
}
