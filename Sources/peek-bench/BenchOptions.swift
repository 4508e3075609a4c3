#if canImport(Glibc)
import Glibc
#endif

/// What a run is told on the command line. The defaults mirror wsload's
/// (../shared/tools/wsload) so the two generators measure the same thing
/// when given the same flags.
struct BenchOptions {
    enum Scenario: String { case idle, fanout, tickets, ack, connect, agents, seed }
    enum WindowMode: String { case delivered, ack }

    var scenario = Scenario.fanout
    var url = ""
    var host = "127.0.0.1"
    var port: UInt16 = 8080
    var path = "/v1/ws"
    var tls = false
    /// Plain HTTP port of the back-end API used by `--seed` (default: the URL's port
    /// when the URL is ws://).
    var apiPort: UInt16?

    var conns = 1000
    var tickets = 1
    var publishers = 1
    /// Notes per second per publisher; 0 = as fast as the window allows.
    var rate = 0.0
    var window = 16
    var windowMode = WindowMode.delivered
    var duration = 20.0
    var warmup = 2.0
    var drain = 30.0
    var drainIdle = 3.0
    var setupTimeout = 180.0
    var handshakeTimeout = 30.0
    var deliverTimeout = 30.0
    var concurrency = 256
    var sourceAddresses = 16
    var bodySize = 64
    var maxNotes = 50_000_000
    var maxConnects = 10_000_000
    var connectHello = false
    var serverPID: Int32 = 0
    /// peekd has no default secrets: the server's, from the flags or the
    /// same PEEK_* variables peekd reads.
    var secret = getenv("PEEK_JWT_SECRET").map { String(cString: $0) } ?? ""
    var serviceToken = getenv("PEEK_SERVICE_TOKEN").map { String(cString: $0) } ?? ""
    var tenant = "acme"
    /// Token subjects cycle over tech-1..tech-K (0: one per connection).
    var techs = 100
    var ticketFile: String?
    var ticketBase = 1001
    /// Create tenant, technicians and tickets through the back-end API first.
    var seed = false
    var seedOut: String?
    var caFile: String?
    /// Agents scenario: the agent CA (and its key) to issue agent certificates from.
    var agentCA: String?
    var agentCAKey: String?
    var agentPort: UInt16?
    var agents = 100
    /// Agents scenario: chat messages and telemetry samples per second per agent.
    var chatRate = 1.0
    var telemetryRate = 1.0
    var quiet = false
    /// Seconds to hold after set-up before publishing (lets a profiler zero its counters).
    var pause = 0.0

    static let usage = """
    usage: peek-bench --scenario S [options] ws://127.0.0.1:PORT/v1/ws
      --scenario idle|fanout|tickets|ack|connect|agents|seed   (default fanout)
         idle     hold -c signed-in, subscribed connections; server RSS per connection
         fanout   -c viewers over -t tickets, -p publishers posting notes; deliveries/s, latency, gaps, dups
         tickets  fanout with defaults -c 5000 -t 1000 -p 50 (1,000 tickets x 5 viewers x 50 publishers)
         ack      durable acknowledged notes/s: -p publishers (100), window counted in results, -c viewers (0)
         connect  handshakes/s (TCP [+TLS] + upgrade [+ hello with --connect-hello])
         agents   --agents mutual-TLS agents streaming chat and telemetry to viewers of their tickets
         seed     only create tenant/technicians/tickets and write the ticket ids (--seed-out)
      -c, --conns N        viewer connections (1000)        -t, --tickets T   tickets (1)
      -p, --publishers P   publisher connections (1)        --rate R          notes/s per publisher (0 = window-bound)
      --window W           notes in flight per publisher (16)
      --window-mode delivered|ack   in flight until every viewer has it (default) or until its result
      -d, --duration S     measured seconds (20)  --warmup S (2)  --drain S (30)  --drain-idle S (3)
      --setup-timeout S (180)  --hs-timeout S (30)  --deliver-timeout S (30)
      --concurrency C      connections in setup at once (256)
      --src-ips K          spread sources over 127.0.0.1..127.0.0.K with IP_BIND_ADDRESS_NO_PORT (16)
      --body-size B (64)   --max-notes N (per publisher)   --max-connects N   --connect-hello
      --server-pid PID     sample the server's RSS and CPU from /proc
      --secret S ($PEEK_JWT_SECRET: peekd's --jwt-secret)  --tenant T (acme)  --techs K (100; 0 = one per connection)
      --ticket-file F      ticket ids, one a line (else T-<base+i>, --ticket-base 1001)
      --seed               create tenant, technicians, tickets (and agents' assets) through the API first
      --service-token S ($PEEK_SERVICE_TOKEN)  --api-port P (default: the URL's port)  --seed-out F
      --cafile F           CA for wss:// (peekd's --data DIR/certs/dev-ca.pem)
      --agent-port P --agent-ca F --agent-ca-key F  --agents N (100) --chat-rate R (1) --telemetry-rate R (1)
      --pause S            hold S seconds after set-up before publishing (profilers zero counters then)
      -q, --quiet          no progress lines
    The last line of output is one JSON object with every figure.
    """

    static func parse(_ arguments: [String]) -> BenchOptions {
        var o = BenchOptions()
        var explicit: Set<String> = []
        var i = 0
        func fail(_ message: String) -> Never {
            printError("peek-bench: \(message)\n\(usage)")
            exit(2)
        }
        func value(_ name: String) -> String {
            i += 1
            guard i < arguments.count else { fail("\(name) needs a value") }
            return arguments[i]
        }
        func int(_ name: String, _ range: ClosedRange<Int>) -> Int {
            let s = value(name)
            guard let v = Int(s), range.contains(v) else { fail("\(name) must be a whole number in \(range), not \(s)") }
            return v
        }
        func double(_ name: String, _ range: ClosedRange<Double>) -> Double {
            let s = value(name)
            guard let v = Double(s), range.contains(v) else { fail("\(name) must be a number in \(range), not \(s)") }
            return v
        }
        var positional: [String] = []
        while i < arguments.count {
            let a = arguments[i]
            explicit.insert(a)
            switch a {
            case "--scenario":
                let s = value(a)
                guard let sc = Scenario(rawValue: s) else { fail("unknown scenario \(s)") }
                o.scenario = sc
            case "-c", "--conns": o.conns = int(a, 0...200_000); explicit.insert("-c")
            case "-t", "--tickets": o.tickets = int(a, 1...1_000_000); explicit.insert("-t")
            case "-p", "--publishers": o.publishers = int(a, 0...10_000); explicit.insert("-p")
            case "--rate": o.rate = double(a, 0...1_000_000)
            case "--window": o.window = int(a, 1...65_536)
            case "--window-mode":
                let s = value(a)
                guard let m = WindowMode(rawValue: s) else { fail("--window-mode is delivered or ack") }
                o.windowMode = m
            case "-d", "--duration": o.duration = double(a, 0.1...3600)
            case "--warmup": o.warmup = double(a, 0...600)
            case "--drain": o.drain = double(a, 0...600)
            case "--drain-idle": o.drainIdle = double(a, 0.1...600)
            case "--setup-timeout": o.setupTimeout = double(a, 1...3600)
            case "--hs-timeout": o.handshakeTimeout = double(a, 0.1...600)
            case "--deliver-timeout": o.deliverTimeout = double(a, 0.1...600)
            case "--concurrency": o.concurrency = int(a, 1...20_000)
            case "--src-ips": o.sourceAddresses = int(a, 1...254)
            case "--body-size": o.bodySize = int(a, 0...60_000)
            case "--max-notes": o.maxNotes = int(a, 1...Int.max)
            case "--max-connects": o.maxConnects = int(a, 1...Int.max)
            case "--connect-hello": o.connectHello = true
            case "--server-pid": o.serverPID = Int32(int(a, 0...Int(Int32.max)))
            case "--secret": o.secret = value(a)
            case "--service-token": o.serviceToken = value(a)
            case "--tenant": o.tenant = value(a)
            case "--techs": o.techs = int(a, 0...1_000_000)
            case "--ticket-file": o.ticketFile = value(a)
            case "--ticket-base": o.ticketBase = int(a, 0...1_000_000_000)
            case "--seed": o.seed = true
            case "--seed-out": o.seedOut = value(a)
            case "--api-port": o.apiPort = UInt16(int(a, 1...65535))
            case "--cafile": o.caFile = value(a)
            case "--agent-port": o.agentPort = UInt16(int(a, 1...65535))
            case "--agent-ca": o.agentCA = value(a)
            case "--agent-ca-key": o.agentCAKey = value(a)
            case "--agents": o.agents = int(a, 1...15_000)
            case "--chat-rate": o.chatRate = double(a, 0...10_000)
            case "--telemetry-rate": o.telemetryRate = double(a, 0...10_000)
            case "--pause": o.pause = double(a, 0...600)
            case "-q", "--quiet": o.quiet = true
            case "-h", "--help": print(usage); exit(0)
            default:
                if a.hasPrefix("-") { fail("unknown option \(a)") }
                positional.append(a)
            }
            i += 1
        }
        guard positional.count == 1 else { fail("give exactly one ws:// or wss:// URL") }
        o.setURL(positional[0], fail: fail)

        // Scenario defaults that differ from fanout's, unless given.
        switch o.scenario {
        case .tickets:
            if !explicit.contains("-c") { o.conns = 5000 }
            if !explicit.contains("-t") { o.tickets = 1000 }
            if !explicit.contains("-p") { o.publishers = 50 }
        case .ack:
            if !explicit.contains("-c") { o.conns = 0 }
            if !explicit.contains("-t") { o.tickets = 1000 }
            if !explicit.contains("-p") { o.publishers = 100 }
            if !explicit.contains("--window-mode") { o.windowMode = .ack }
        case .idle, .connect, .agents, .seed:
            o.publishers = 0
        case .fanout:
            break
        }
        if o.scenario == .agents && !explicit.contains("-t") { o.tickets = o.agents }
        if (o.scenario == .fanout || o.scenario == .tickets || o.scenario == .ack) && o.publishers < 1 {
            fail("\(o.scenario.rawValue) needs --publishers >= 1")
        }
        return o
    }

    private mutating func setURL(_ u: String, fail: (String) -> Never) {
        url = u
        var rest: Substring
        if u.hasPrefix("ws://") { tls = false; rest = u.dropFirst(5); port = 80 }
        else if u.hasPrefix("wss://") { tls = true; rest = u.dropFirst(6); port = 443 }
        else { fail("the URL must start with ws:// or wss://") }
        if let slash = rest.firstIndex(of: "/") {
            path = String(rest[slash...])
            rest = rest[..<slash]
        } else { path = "/" }
        if let colon = rest.lastIndex(of: ":") {
            guard let p = UInt16(rest[rest.index(after: colon)...]) else { fail("bad port in \(u)") }
            port = p
            host = String(rest[..<colon])
        } else { host = String(rest) }
        if host == "localhost" { host = "127.0.0.1" }
        // Loopback only: this tool opens thousands of connections.
        var address = in_addr()
        guard inet_pton(AF_INET, host, &address) == 1, UInt32(bigEndian: address.s_addr) >> 24 == 127 else {
            fail("refusing \(host): peek-bench targets 127.0.0.0/8 only")
        }
    }
}

func printError(_ s: String) {
    let line = s.hasSuffix("\n") ? s : s + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}
