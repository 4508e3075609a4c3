import PeekCore
import PeekEngine
import PeekNet
import PeekStore
import PeekTLS

/// Everything `peekd` can be told, with the defaults protocol.md states.
/// Flags and `PEEK_<FLAG>` variables are parsed into this in `peekd/main.swift`.
public struct ServerConfig: Sendable {
    public var host = "127.0.0.1"
    public var port: UInt16 = 8080
    public var tlsPort: UInt16?
    public var tlsCert: String?
    public var tlsKey: String?
    public var agentPort: UInt16?
    public var agentCA: String?
    public var agentCert: String?
    public var agentKey: String?
    /// PEM CRLs for every CA of an agent's chain; re-read when the file
    /// changes and on SIGHUP (`Server.reloadAgentCRL`).
    public var agentCRL: String?
    /// Who protects TLS 1.3 application data after the handshake on both
    /// TLS listeners: our record layer (default) or OpenSSL's.
    public var tlsRecordLayer = TLSContext.RecordLayer.peek
    /// Tests only (no flag): records per key before our record layer moves
    /// to the next key; nil is 2^24.
    public var tlsRecordsPerKey: UInt64?
    public var dataDirectory = "./peek-data"
    /// `--database postgres://user@host:port/db`: the tickets live in
    /// PostgreSQL instead of SQLite in `dataDirectory` (attachments and
    /// certificates stay there). One node per database for now: nodes do
    /// not yet fan deltas out to each other (README, "PostgreSQL").
    public var databaseURL: String?
    /// Technician token key and the back-end bearer token. No defaults:
    /// `Server.start` refuses to serve without both (and a key shorter than
    /// `ServerSecrets.minimumJWTSecretBytes`); `peekd --demo` generates them.
    public var jwtSecret = ""
    public var serviceToken = ""
    public var allowedOrigins: [String] = []
    /// Seconds between server pings; a peer silent for two heartbeats is dead.
    public var heartbeatSeconds = 30
    public var helloTimeoutSeconds = 10
    /// Largest WebSocket message accepted (bytes); larger closes with 1009.
    public var maxMessageBytes = 1 << 20
    public var consentTimeoutSeconds = 120
    public var slaTickSeconds = 15
    /// On PostgreSQL: seconds between re-reads of the pending SLA and
    /// consent deadlines, so a deadline armed by a node that died fires on
    /// another (`ClusterTimerRescan`).
    public var clusterRescanSeconds = 5
    /// Durable deltas kept per ticket for resume; older `since` get a snapshot.
    public var retainDeltas = 1000
    public var smtpCA: String?
    /// Seconds each SMTP step may take before the send fails.
    public var smtpTimeoutSeconds = 30
    /// Seconds a call to a tenant's assistant or summariser may take in all
    /// (connect, send, and the whole streamed answer) before it fails.
    public var assistTimeoutSeconds = 30
    /// Quiet time after a customer message before the tenant's summariser
    /// is called (each new customer message of the ticket starts it again).
    public var summaryDebounceMillis: Int64 = 10_000
    public var demo = false
    /// With `demo`: run the demo asset's RMM agent (`PeekDemoAgent`) against
    /// the agent listener, on the generated development PKI (`--demo-agent off` turns it off).
    public var demoAgent = true
    /// How stderr lines look: `text` for people, `json` for log collectors.
    public var logFormat: ServerLog.Format = .text
    /// Where the log is written: stderr (tests point it at a pipe).
    public var logFileDescriptor: Int32 = 2
    public var threads = 0
    /// Per-process cap; the machine allows ~19,990 descriptors (LINUX-NOTES).
    public var maxConnections = 19_900
    /// Technician connections one tenant may hold at once (across loops).
    /// Half the process cap (`peekd` derives it from `--max-connections`
    /// unless given): no one tenant can take every connection the process
    /// has, so another tenant can always sign in.
    public var maxConnectionsPerTenant = 9_950
    /// Connections the agent (mutual-TLS) listener may hold, divided across
    /// loops like `maxConnections` and counted at accept: a fleet of agents
    /// (or a flood of handshakes) cannot take the technicians' connections.
    public var maxAgentConnections = 5_000
    /// Output a connection may have queued before it counts as slow (bytes).
    /// Ephemeral deltas are shed above `softOutputLimit`; a connection whose
    /// queue passes `hardOutputLimit` is closed with 1013 and must resume.
    public var softOutputLimit = 256 * 1024
    public var hardOutputLimit = 4 * 1024 * 1024
    /// Messages a technician connection may send per second (burst
    /// = 2x); over it, the message is dropped and answered `rate_limited`.
    public var framesPerSecond = 200
    /// Messages an agent connection may send per second (burst = 2x). An
    /// agent sends a telemetry sample a second and relays chat as people
    /// write, so 20 is far above real use, while a compromised fleet of
    /// thousands cannot offer the engine technicians' rates of durable chat.
    public var agentFramesPerSecond = 20
    /// Shell output one session may push to the ticket's viewers (bytes per
    /// second, burst = 2x). Over it, output is dropped for viewers (it is
    /// ephemeral) but kept for the transcript.
    public var shellOutputBytesPerSecond = 64 * 1024
    /// A shell with no input or output for this long ends (`ended`).
    public var shellIdleSeconds = 15 * 60
    /// Tickets one technician connection may view at once. A Peek tab views
    /// one ticket and a queue page a screenful, so 100 is far above real use,
    /// while it bounds what one connection costs every loop and the engine
    /// (viewer entries, presence fan-out). Over it, `rate_limited`.
    public var maxSubscriptionsPerConnection = 100
    public var maxAttachmentBytes = 10 * 1024 * 1024
    /// How long a signed attachment link (`POST .../attachments/{id}/link`)
    /// stays valid: long enough to follow it or load a preview, short
    /// enough that a copied link is soon worthless. Seconds.
    public var attachmentLinkSeconds = 300
    /// The attachments of one reply together. The message carries them all,
    /// base64 and all, and is built in memory by a mail worker: 25 MiB is
    /// what common mail providers accept (and what we accept inbound), so a
    /// larger reply would only be refused by the recipient's server, and the
    /// 16 workers' messages stay under about 550 MiB at worst. Over it,
    /// `too_large`.
    public var maxReplyAttachmentBytes = 25 * 1024 * 1024
    /// Replies one technician may have on their way at once (waiting for a
    /// mail worker or talking to the mail server); more get `rate_limited`.
    /// A person sends replies one at a time and a send takes about a second,
    /// so 4 leaves room to keep writing while a slow server answers, and it
    /// keeps one technician (or one stolen token) to a quarter of the 16
    /// conversations every tenant shares.
    public var maxRepliesInFlightPerTechnician = 4
    /// Replies on their way for the whole process. A waiting reply holds its
    /// body (at most 64 KiB) and attachment references, never file bytes, so
    /// 256 keeps the queue to a few MiB and its wait to about 16 rounds of
    /// the 16 conversations; more get `rate_limited`.
    public var maxRepliesInFlight = 256
    /// Attempts, a second apart, to record a reply's outcome before its
    /// requests are told what is known and its slot is freed (the "about to
    /// send" row keeps it from being emailed twice). A database locked or
    /// full for 10 s is not a blip; holding the slot longer would let a
    /// failing disk fill every reply slot.
    public var replyRecordAttempts = 10
    /// Jobs waiting for the engine thread past which the loops refuse new
    /// commands, subscribes and agent chat with `rate_limited` instead of
    /// queueing them. Offered work beyond what the engine commits would
    /// otherwise grow its inbox, and the server's memory, without limit.
    /// 10,000 is about a fifth of a second of durable notes on this
    /// machine's kind, far above what closed-loop clients keep in flight,
    /// and at most about 650 MiB even if every job were a 64 KiB note.
    public var maxEngineBacklog = 10_000
    /// The clocks: timestamps, SLA due times, token expiry and the engine's
    /// timers all read time here, so a test can move it (`ManualTimeSource`).
    public var clock: any TimeSource = SystemTimeSource()
    /// Tests only (no flag): wraps the store the server opens, e.g. in one
    /// that fails a chosen call, to show what the engine answers then.
    public var wrapStore: (@Sendable (any TicketStore) -> any TicketStore)?
    /// Wall-clock time one inbound message may take to parse (ms). A
    /// message past it is refused with 422 and logged; it holds one mail
    /// worker at most this long, and the other workers go on meanwhile.
    /// Real mail, 25 MiB with attachments, parses in well under a tenth of it.
    public var inboundMailBudgetMillis = 2000
    /// Threads that parse inbound mail and write its attachments. Parsing is
    /// CPU work: one per core (2 here) keeps it from starving the loops.
    public var mailWorkerThreads = 2
    /// Inbound messages that may wait for a mail worker; past it 429
    /// `rate_limited` with Retry-After. Bodies over 1 MiB are bounded apart
    /// (`maxLargeBodies`), so waiting messages hold at most ~32 MiB.
    public var mailQueueCapacity = 32
    /// Threads that hash and write uploads and read downloads.
    public var fileWorkerThreads = 2
    /// Uploads and downloads that may wait for a file worker; past it 429.
    public var fileQueueCapacity = 64
    /// Request bodies over 1 MiB (uploads, inbound mail) read or being
    /// worked on at once, process-wide. Each may be 25 MiB, so 8 keep them
    /// to 200 MiB; one more gets 429 `rate_limited` with Retry-After from
    /// its head, before a byte of its body is read. A request holds its
    /// slot until it is answered or its worker is done with the body, even
    /// if the client has gone.
    public var maxLargeBodies = 8
    /// How often (and once at start-up) a file worker removes temporary
    /// attachment files (`<sha>.tmp-<hex>`) older than
    /// `attachmentTemporaryMaxAgeMillis`: what a crash mid-write left.
    public var attachmentSweepIntervalMillis: Int64 = 3_600_000
    public var attachmentTemporaryMaxAgeMillis: Int64 = 3_600_000
    /// How inbound mail is parsed (tests replace it; see `InboundMailParsing`).
    public var inboundMailParsing = InboundMailParsing.standard
    /// Where `client/` is, for `GET /` and static files.
    public var clientDirectory = "client"

    public init() {}

    public var databasePath: String { dataDirectory + "/peek.sqlite" }
    public var attachmentsDirectory: String { dataDirectory + "/attachments" }
}

extension ServerConfig {
    /// The engine's part of the configuration.
    var engine: EngineConfig {
        var e = EngineConfig()
        e.jwtSecret = jwtSecret
        e.serviceToken = serviceToken
        e.heartbeatSeconds = heartbeatSeconds
        e.consentTimeoutSeconds = consentTimeoutSeconds
        e.slaTickSeconds = slaTickSeconds
        e.retainDeltas = retainDeltas
        e.smtpTimeoutSeconds = smtpTimeoutSeconds
        e.summaryDebounceMillis = summaryDebounceMillis
        e.demo = demo
        e.maxConnectionsPerTenant = maxConnectionsPerTenant
        e.shellOutputBytesPerSecond = shellOutputBytesPerSecond
        e.shellIdleSeconds = shellIdleSeconds
        e.maxSubscriptionsPerConnection = maxSubscriptionsPerConnection
        e.maxAttachmentBytes = maxAttachmentBytes
        e.attachmentLinkSeconds = attachmentLinkSeconds
        e.maxReplyAttachmentBytes = maxReplyAttachmentBytes
        e.maxRepliesInFlightPerTechnician = maxRepliesInFlightPerTechnician
        e.maxRepliesInFlight = maxRepliesInFlight
        e.replyRecordAttempts = replyRecordAttempts
        e.maxEngineBacklog = maxEngineBacklog
        e.clock = clock
        e.attachmentsDirectory = attachmentsDirectory
        return e
    }
}
