#if canImport(Glibc)
import Glibc
#endif
import Foundation
import PeekCore
import PeekEngine
import PeekPostgres
import PeekServer
import PeekStore
import PeekTLS

/// The command line: flags (and `PEEK_<FLAG>` variables) into a
/// `ServerConfig`, the `token` and `echo` subcommands, signals, and the
/// `ready` line tests and scripts wait for.

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("peekd: \(message)\n".utf8))
    exit(2)
}

/// One line on stdout. write(2), not FileHandle: Foundation's write traps
/// when the reader has gone (`peekd --demo | head`, then SIGTERM), and a
/// server must not die for its ready line; a line nobody reads is dropped.
func say(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    var offset = 0
    while offset < bytes.count {
        let n = bytes[offset...].withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
        if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { return }
    }
}

/// A one-shot subcommand (backup, restore, migrate): its summary line on
/// stdout and status 0, or `<name> failed: <reason>` on stderr and status 2.
func runOnce(_ name: String, _ body: () throws -> String) -> Never {
    do { say(try body()) } catch { fail("\(name) failed: \(error)") }
    exit(0)
}

let usage = """
usage: peekd [flags]                          run the server
       peekd token --tenant T --user U [--name N] [--role R] [--ttl SECONDS]
                   signed with --jwt-secret, else with the secret --demo generated in --data
       peekd echo --port P [--host H]        WebSocket echo endpoint (conformance suites)
       peekd check [flags]                   load every file the flags name and open the database; exit 0 if all is well
       peekd backup --data DIR --to FILE     copy a (running) server's data into one file
       peekd restore --from FILE --data DIR  put a backup into an empty or new directory
       peekd migrate --data DIR --database postgres://...
                   copy a stopped SQLite server's database into an empty PostgreSQL database
                   (attachments stay in DIR: start the PostgreSQL node with the same --data)

flags (each also PEEK_<FLAG>, e.g. PEEK_JWT_SECRET; repeatable flags take a comma list):
  --host H               listen address (127.0.0.1)
  --port P               plain HTTP/WebSocket port (8080; 0 picks a free one)
  --tls-port P           HTTPS/wss port (off); --tls-cert FILE --tls-key FILE (default: generated dev certs);
                         SIGHUP reloads every certificate, key, CA and CRL
  --agent-port P         mutual-TLS agent port (off); --agent-ca FILE (default: generated dev agent CA)
  --agent-cert FILE --agent-key FILE   certificate the agent listener presents (default: --tls-cert/--tls-key)
  --agent-crl FILE       PEM CRLs of every CA in an agent's chain; re-read when it changes and on SIGHUP
  --tls-record-layer L   who protects TLS 1.3 data after the handshake: peek (ours, ~15 KiB less per idle connection) or openssl (peek)
  --data DIR             database, attachments and generated certificates (./peek-data)
  --database URL         keep the tickets in PostgreSQL, postgres://USER@HOST:PORT/DB, instead of SQLite
                         in --data; one node per database (nodes do not yet share deltas)
  --jwt-secret S         technician token secret, at least 32 bytes (required; --demo generates one)
  --service-token S      back-end API bearer token (required; --demo generates one)
  --allowed-origin O     browser origin allowed to open /v1/ws (repeatable; default: same host only)
  --heartbeat S          seconds between server pings (30)
  --hello-timeout S      seconds to wait for hello (10)
  --max-message B        largest WebSocket message in bytes (1048576)
  --consent-timeout S    seconds before an unanswered consent expires (120)
  --sla-tick S           seconds between sla.tick deltas (15)
  --retain N             durable deltas kept per ticket for resume (1000)
  --smtp-ca FILE         extra CA trusted for outbound mail servers
  --smtp-timeout S       seconds each SMTP step may take (30)
  --assist-timeout S     seconds a call to a tenant's assistant or summariser may take in all (30)
  --summary-debounce S   quiet seconds after a customer message before the summariser is called (10)
  --threads N            event-loop threads (one per core but one)
  --max-connections N    connections per process (19900)
  --max-tenant-connections N   technician connections per tenant (half of --max-connections: 9950)
  --max-agent-connections N    connections on the agent listener (5000)
  --frames-per-second N  messages one technician connection may send per second, burst twice that (200)
  --agent-frames-per-second N  messages one agent connection may send per second, burst twice that (20)
  --max-subscriptions N  tickets one connection may view at once (100)
  --max-replies N        replies being emailed at once, whole server (256); --max-replies-per-technician N (4)
  --max-reply-attachments B    bytes of attachments one reply may carry together (26214400)
  --max-engine-backlog N jobs waiting for the engine past which new commands are refused as busy (10000);
                         one tenant may hold at most an even share of it (half while it floods alone)
  --client DIR           where the browser files are (client)
  --log-format F         stderr log: text (readable) or json (one object per line) (text)
  --demo                 seed a demo tenant on first start, allow demo sign-in, and open
                         --tls-port 8443 and --agent-port 8444 unless given
  --demo-agent on|off    with --demo: run the demo asset's RMM agent (telemetry, chat, consent, a shell of
                         harmless commands) over mutual TLS on the generated certificates (on)
"""

/// Flags from argv, then PEEK_* variables for those not given.
struct Arguments {
    var values: [String: [String]] = [:]
    var switches: Set<String> = []
    static let booleanFlags: Set<String> = ["demo", "help"]
    static let repeatableFlags: Set<String> = ["allowed-origin"]

    init(_ args: ArraySlice<String>, environment: [String: String]) {
        var i = args.startIndex
        while i < args.endIndex {
            var arg = args[i]
            guard arg.hasPrefix("--") else { fail("unexpected argument \(arg)\n\(usage)") }
            arg.removeFirst(2)
            var value: String?
            if let eq = arg.firstIndex(of: "=") {
                value = String(arg[arg.index(after: eq)...])
                arg = String(arg[..<eq])
            }
            if Self.booleanFlags.contains(arg) && value == nil {
                switches.insert(arg)
            } else {
                if value == nil {
                    i += 1
                    guard i < args.endIndex else { fail("--\(arg) needs a value") }
                    value = args[i]
                }
                values[arg, default: []].append(value!)
            }
            i += 1
        }
        for (key, value) in environment where key.hasPrefix("PEEK_") {
            let flag = key.dropFirst(5).lowercased().replacingOccurrences(of: "_", with: "-")
            if Self.booleanFlags.contains(flag) {
                if ["1", "true", "yes"].contains(value.lowercased()) { switches.insert(flag) }
            } else if values[flag] == nil {
                // Only repeatable flags take a comma list; a secret or a path
                // may itself contain commas.
                values[flag] = Self.repeatableFlags.contains(flag)
                    ? value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } : [value]
            }
        }
    }

    func string(_ name: String) -> String? { values[name]?.last }
    func list(_ name: String) -> [String] { values[name] ?? [] }

    func int(_ name: String, min: Int = 0, max: Int = Int.max) -> Int? {
        guard let s = string(name) else { return nil }
        guard let v = Int(s), v >= min, v <= max else { fail("--\(name) must be a whole number from \(min) to \(max), not \(s)") }
        return v
    }

    func port(_ name: String) -> UInt16? { int(name, max: 65535).map { UInt16($0) } }
}

let argv = CommandLine.arguments
var mode = "serve"
var rest = argv.dropFirst()
if let first = rest.first, !first.hasPrefix("-") {
    mode = first
    rest = rest.dropFirst()
}
let args = Arguments(rest, environment: ProcessInfo.processInfo.environment)
if args.switches.contains("help") { say(usage); exit(0) }

let known: Set<String> = ["host", "port", "tls-port", "tls-cert", "tls-key", "agent-port", "agent-ca", "agent-cert", "agent-key",
                          "agent-crl", "data", "database", "jwt-secret", "service-token", "allowed-origin", "heartbeat", "hello-timeout",
                          "max-message", "consent-timeout", "sla-tick", "retain", "smtp-ca", "smtp-timeout", "assist-timeout", "summary-debounce", "threads",
                          "max-connections", "max-tenant-connections", "max-agent-connections", "frames-per-second", "agent-frames-per-second", "max-subscriptions",
                          "max-replies", "max-replies-per-technician", "max-reply-attachments", "max-engine-backlog", "tls-record-layer", "client", "log-format", "to", "from",
                          "tenant", "user", "name", "role", "ttl", "demo-agent"]
for name in args.values.keys where !known.contains(name) && argv.contains(where: { $0.hasPrefix("--" + name) }) {
    fail("unknown flag --\(name)\n\(usage)")
}

var config = ServerConfig()
config.host = args.string("host") ?? config.host
config.port = args.port("port") ?? config.port
config.tlsPort = args.port("tls-port")
config.tlsCert = args.string("tls-cert")
config.tlsKey = args.string("tls-key")
config.agentPort = args.port("agent-port")
config.agentCA = args.string("agent-ca")
config.agentCert = args.string("agent-cert")
config.agentKey = args.string("agent-key")
config.agentCRL = args.string("agent-crl")
if let layer = args.string("tls-record-layer") {
    guard let choice = TLSContext.RecordLayer(rawValue: layer) else {
        fail("--tls-record-layer must be peek (our TLS 1.3 record layer) or openssl (OpenSSL's), not \(layer)")
    }
    config.tlsRecordLayer = choice
}
config.dataDirectory = args.string("data") ?? config.dataDirectory
if let url = args.string("database") {
    guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
        fail("--database takes a PostgreSQL URL, postgres://USER@HOST:PORT/DB, not \(url); without it the tickets are in SQLite in --data")
    }
    config.databaseURL = url
}
config.allowedOrigins = args.list("allowed-origin")
config.heartbeatSeconds = args.int("heartbeat", min: 1, max: 3600) ?? config.heartbeatSeconds
config.helloTimeoutSeconds = args.int("hello-timeout", min: 1, max: 3600) ?? config.helloTimeoutSeconds
config.maxMessageBytes = args.int("max-message", min: 1024, max: 64 << 20) ?? config.maxMessageBytes
config.consentTimeoutSeconds = args.int("consent-timeout", min: 1, max: 86400) ?? config.consentTimeoutSeconds
config.slaTickSeconds = args.int("sla-tick", min: 1, max: 3600) ?? config.slaTickSeconds
config.retainDeltas = args.int("retain", min: 1, max: 1_000_000) ?? config.retainDeltas
config.smtpCA = args.string("smtp-ca")
config.smtpTimeoutSeconds = args.int("smtp-timeout", min: 1, max: 600) ?? config.smtpTimeoutSeconds
config.assistTimeoutSeconds = args.int("assist-timeout", min: 1, max: 600) ?? config.assistTimeoutSeconds
config.summaryDebounceMillis = Int64(args.int("summary-debounce", min: 0, max: 3600) ?? Int(config.summaryDebounceMillis / 1000)) * 1000
config.threads = args.int("threads", min: 1, max: 64) ?? 0
config.maxConnections = args.int("max-connections", min: 1) ?? config.maxConnections
// Half the process, wherever --max-connections puts it: no one tenant takes every connection.
config.maxConnectionsPerTenant = args.int("max-tenant-connections", min: 1) ?? max(1, config.maxConnections / 2)
config.maxAgentConnections = args.int("max-agent-connections", min: 1) ?? config.maxAgentConnections
config.framesPerSecond = args.int("frames-per-second", min: 1, max: 10_000_000) ?? config.framesPerSecond
config.agentFramesPerSecond = args.int("agent-frames-per-second", min: 1, max: 10_000_000) ?? config.agentFramesPerSecond
config.maxSubscriptionsPerConnection = args.int("max-subscriptions", min: 1, max: 100_000) ?? config.maxSubscriptionsPerConnection
config.maxRepliesInFlight = args.int("max-replies", min: 1, max: 100_000) ?? config.maxRepliesInFlight
config.maxRepliesInFlightPerTechnician = args.int("max-replies-per-technician", min: 1, max: 1000) ?? config.maxRepliesInFlightPerTechnician
config.maxReplyAttachmentBytes = args.int("max-reply-attachments", min: 1, max: 1 << 30) ?? config.maxReplyAttachmentBytes
config.maxEngineBacklog = args.int("max-engine-backlog", min: 1, max: 10_000_000) ?? config.maxEngineBacklog
config.clientDirectory = args.string("client") ?? config.clientDirectory
if let format = args.string("log-format") {
    guard let choice = ServerLog.Format(rawValue: format) else { fail("--log-format must be text or json, not \(format)") }
    config.logFormat = choice
}
config.demo = args.switches.contains("demo")
if let choice = args.string("demo-agent") {
    guard choice == "on" || choice == "off" else { fail("--demo-agent must be on or off, not \(choice)") }
    config.demoAgent = choice == "on"
}
if config.demo && mode == "serve" {
    // The newcomer's one command shows every listener: wss and the agent
    // socket on development certificates generated into --data.
    if args.string("tls-port") == nil { config.tlsPort = 8443 }
    if args.string("agent-port") == nil { config.agentPort = 8444 }
}

/// The secrets, resolved once: given ones win; `--demo` fills the rest from
/// (or into) `<data>/demo-secrets`; outside demo both must be given.
func resolveSecrets(signingOnly: Bool, demo: Bool, data: String, given: (jwt: String?, service: String?)) -> ServerSecrets {
    if signingOnly {
        // Signing needs only the key: the flag, else what --demo generated.
        if let jwt = given.jwt { return ServerSecrets(jwtSecret: jwt, serviceToken: "") }
        let stored = (try? ServerSecrets.loadDemo(in: data)).flatMap { $0 }
        guard let stored else {
            fail("No --jwt-secret is set and \(data) has no demo secrets: set --jwt-secret (or PEEK_JWT_SECRET) to the server's, or give the --data of a server started with --demo.")
        }
        return stored
    }
    if demo {
        do { return try ServerSecrets.demo(in: data, jwtSecret: given.jwt, serviceToken: given.service) } catch {
            fail("\(error)")
        }
    }
    if let problem = ServerSecrets.problem(jwtSecret: given.jwt, serviceToken: given.service) { fail(problem) }
    return ServerSecrets(jwtSecret: given.jwt!, serviceToken: given.service!)
}

if mode == "serve" || mode == "token" {
    let secrets = resolveSecrets(signingOnly: mode == "token", demo: config.demo, data: config.dataDirectory,
                                 given: (args.string("jwt-secret"), args.string("service-token")))
    config.jwtSecret = secrets.jwtSecret
    config.serviceToken = secrets.serviceToken
}

switch mode {
case "token":
    guard let tenant = args.string("tenant"), let user = args.string("user") else { fail("token needs --tenant and --user") }
    // A sign-in is for a working day; a year is the most `--ttl` takes (an
    // absurd value once overflowed the expiry instead of being refused).
    let ttl = args.int("ttl", min: 1, max: 365 * 24 * 3600) ?? 12 * 3600
    let claims = TechnicianClaims(subject: user, tenant: tenant, name: args.string("name") ?? user,
                                  role: args.string("role") ?? "technician", expiresAt: Int64(Date().timeIntervalSince1970) + Int64(ttl))
    say(JWT.sign(claims, secret: Array(config.jwtSecret.utf8)))
    exit(0)
case "backup" where config.databaseURL != nil, "restore" where config.databaseURL != nil:
    // They copy peek.sqlite; a PostgreSQL database is not in --data.
    // (A `where` guards only the pattern it follows: each needs its own.)
    fail("peekd \(mode) copies the SQLite database in --data; with --database the tickets are in PostgreSQL: use pg_dump / pg_restore for them (attachments stay in --data)")
case "backup":
    guard let archive = args.string("to") else { fail("backup needs --to FILE (a new file)") }
    runOnce("backup") {
        let summary = try DataBackup.backup(dataDirectory: config.dataDirectory, to: archive)
        return "peekd backup: wrote \(archive) (the database and \(summary.files - 1) other files, \(summary.bytes) bytes)"
    }
case "restore":
    guard let archive = args.string("from") else { fail("restore needs --from FILE (a file peekd backup wrote)") }
    runOnce("restore") {
        let summary = try DataBackup.restore(from: archive, dataDirectory: config.dataDirectory)
        return "peekd restore: \(config.dataDirectory) holds the backup (the database and \(summary.files - 1) other files); start peekd with --data \(config.dataDirectory)"
    }
case "migrate":
    guard let url = config.databaseURL else { fail("migrate needs --database postgres://USER@HOST:PORT/DB (an empty database) to copy --data \(config.dataDirectory) into") }
    runOnce("migrate") {
        let summary = try SQLiteToPostgres.migrate(sqlitePath: config.databasePath, to: url)
        return "peekd migrate: copied \(summary.line); attachments stay in \(config.attachmentsDirectory): start the PostgreSQL node with --data \(config.dataDirectory)"
    }
case "echo", "serve", "check":
    break
default:
    fail("unknown command \(mode)\n\(usage)")
}

let echo = mode == "echo"
if echo {
    // Conformance suites send 16 MiB messages (Autobahn 9.*).
    config.maxMessageBytes = max(config.maxMessageBytes, 16 << 20)
    config.heartbeatSeconds = 3600
}
if !echo && !FileManager.default.fileExists(atPath: config.clientDirectory + "/index.html") {
    // Run from elsewhere (an installed binary): look beside the package.
    let candidate = URL(fileURLWithPath: argv[0]).deletingLastPathComponent().appendingPathComponent("../../client").standardized.path
    if FileManager.default.fileExists(atPath: candidate + "/index.html") { config.clientDirectory = candidate }
}

if mode == "check" {
    // The secrets rule of a start outside demo mode (a demo start makes its own).
    if !config.demo, let problem = ServerSecrets.problem(jwtSecret: args.string("jwt-secret"), serviceToken: args.string("service-token")) {
        fail("check failed: \(problem)")
    }
    do {
        say(try Server.check(config))
        exit(0)
    } catch {
        fail("check failed: \(error)")
    }
}

// SIGHUP's default action ends the process: ignored from here, before the
// listeners start, so a reload sent while peekd starts (a deploy tool, log
// rotation) cannot kill it; the handler below takes it once ready.
signal(SIGHUP, SIG_IGN)
let server = Server(config: config, echoMode: echo)
do {
    try server.start()
} catch {
    server.logger.log(.error, "start_failed", "cannot start", error: "\(error)")
    server.logger.flush()
    exit(2)
}

// Signals are turned into a drain on a normal thread: close every socket
// with 1001, flush, exit 0.
signal(SIGTERM, SIG_IGN)
signal(SIGINT, SIG_IGN)
let signals = [SIGTERM, SIGINT].map { sig -> DispatchSourceSignal in
    let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
    source.setEventHandler {
        server.logger.log(.info, "stopping", "signal \(sig): closing every connection and finishing the last batch")
        server.stop()
        say("peekd stopped")
        exit(0)
    }
    source.resume()
    return source
}
if config.demo && !echo {
    // Printed, not only stored: the newcomer's curl needs the service token.
    say("peekd demo secrets (kept in \(config.dataDirectory)/\(ServerSecrets.demoFileName)): jwt-secret=\(config.jwtSecret) service-token=\(config.serviceToken)")
}
say(server.readyLine)
if config.demo && !echo {
    say("peekd demo: open \(server.readyLine.split(separator: " ").last.map { String($0.dropFirst(4)) } ?? "") and sign in as a demo technician")
}
// SIGHUP (whose default action ends the process) reloads every TLS file:
// certificates, keys, --agent-ca and --agent-crl (Server.reloadTLS).
// Dispatch only notes the signal; the reload runs on a normal thread.
let hangup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
hangup.setEventHandler { server.reloadTLS() }
hangup.resume()
withExtendedLifetime((signals, hangup)) { dispatchMain() }
