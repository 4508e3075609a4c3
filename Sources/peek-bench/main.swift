#if canImport(Glibc)
import Glibc
#endif
import PeekTLS

/// peek-bench: the project's own load generator for the wire contract.
/// It speaks to any server that implements CONTRACT.md (peekd, the peer
/// servers in ../shared/tools), loopback only, bounded in time and count.
/// See BenchOptions.usage and BENCHMARKS.md.

signal(SIGPIPE, SIG_IGN)
let options = BenchOptions.parse(Array(CommandLine.arguments.dropFirst()))

// A hard limit on top of every phase's own deadline.
let budget = options.setupTimeout + options.pause + options.warmup + options.duration + options.drain + 60
signal(SIGALRM) { _ in
    let m = "peek-bench: watchdog: hard time limit reached, exiting\n"
    _ = m.withCString { write(2, $0, strlen($0)) }
    _exit(3)
}
alarm(UInt32(budget))

let client = BenchClient(options: options)

// Tickets: seeded through the API, read from a file, or T-<base+i>.
let ticketCount = options.scenario == .connect || options.scenario == .idle && options.tickets < 1 ? 1 : options.tickets
var names: [String] = []
if options.seed || options.scenario == .seed {
    let apiPort = options.apiPort ?? (options.tls ? 0 : options.port)
    if apiPort == 0 { fatal("--seed over wss:// needs --api-port (the plain listener)") }
    let seeder = Seeder(port: apiPort, serviceToken: options.serviceToken, tenant: options.tenant)
    let started = monotonicNanos()
    do {
        names = try seeder.seed(technicians: max(1, options.techs), tickets: ticketCount,
                                agentAssets: options.scenario == .agents ? options.agents : 0)
    } catch {
        fatal("seeding failed: \(error)")
    }
    client.progress("seeded tenant \(options.tenant), \(max(1, options.techs)) technicians, \(names.count) tickets in \(format(seconds(since: started), 2))s")
    if let out = options.seedOut {
        let text = names.joined(separator: "\n") + "\n"
        let fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { fatal("cannot write \(out)") }
        _ = text.withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }
    if options.scenario == .seed {
        print("{\"tool\":\"peek-bench\",\"scenario\":\"seed\",\"tenant\":\(options.tenant.jsonQuoted),\"tickets\":\(names.count),\"technicians\":\(max(1, options.techs))}")
        exit(0)
    }
} else if let file = options.ticketFile {
    guard let text = ProcessSampler.readFile(file) else { fatal("cannot read \(file)") }
    names = text.split(separator: "\n").map { String($0).trimmingCharacters(in: " \r\t") }.filter { !$0.isEmpty }
    guard names.count >= ticketCount else { fatal("\(file) has \(names.count) ticket ids, \(ticketCount) are needed") }
    names = Array(names.prefix(ticketCount))
} else {
    names = (0..<ticketCount).map { "T-\(options.ticketBase + $0)" }
}
client.ticketNames = names
client.ticketBytes = names.map { Array($0.utf8) }

// TLS: wss:// verifies the server against --cafile; agents also present a
// client certificate each, issued here from the agent CA.
if options.tls || options.scenario == .agents {
    guard let ca = options.caFile else { fatal("TLS needs --cafile (peekd: --data DIR/certs/dev-ca.pem)") }
    do {
        if options.tls { client.tlsContext = try TLSContext.makeClient(caFile: ca, useSystemTrust: false) }
        if options.scenario == .agents {
            guard let agentCA = options.agentCA, let agentKey = options.agentCAKey else { fatal("agents need --agent-ca and --agent-ca-key") }
            let issuer = try Certificate.load(pemFile: agentCA)
            let issuerKey = try PrivateKey.load(pemFile: agentKey)
            var template = Array("/tmp/peek-bench-agents-XXXXXX".utf8CString)
            guard let dir = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }).map({ String(cString: $0) }) else { fatal("mkdtemp failed") }
            for i in 0..<options.agents {
                let key = try PrivateKey.generateP256()
                let cert = try CertificateBuilder(commonName: Seeder.agentName(i), organization: "peek-bench", usage: .client)
                    .signed(subjectKey: key, issuer: issuer, issuerKey: issuerKey)
                try key.write(to: "\(dir)/agent-\(i)-key.pem")
                try cert.write(to: "\(dir)/agent-\(i).pem")
                client.agentContexts.append(try TLSContext.makeClient(caFile: ca, useSystemTrust: false,
                                                                      certificateFile: "\(dir)/agent-\(i).pem", keyFile: "\(dir)/agent-\(i)-key.pem"))
            }
        }
    } catch {
        fatal("TLS set-up failed: \(error)")
    }
}

var timeline = BenchClient.Timeline()
timeline.serverRSSBefore = ProcessSampler.memoryKiB(options.serverPID)
switch options.scenario {
case .connect:
    client.runConnect(timeline: &timeline)
case .idle:
    client.layOut(viewers: options.conns, publisherCount: 0, role: .publisher)
    client.setUp(viewers: options.conns, publisherRole: .publisher, timeline: &timeline)
    timeline.serverRSSReady = ProcessSampler.memoryKiB(options.serverPID)
    client.run(timeline: &timeline)
case .fanout, .tickets, .ack:
    client.layOut(viewers: options.conns, publisherCount: options.publishers, role: .publisher)
    client.setUp(viewers: options.conns, publisherRole: .publisher, timeline: &timeline)
    timeline.serverRSSReady = ProcessSampler.memoryKiB(options.serverPID)
    client.run(timeline: &timeline)
case .agents:
    client.layOut(viewers: options.conns, publisherCount: options.agents, role: .agent)
    client.setUp(viewers: options.conns, publisherRole: .agent, timeline: &timeline)
    timeline.serverRSSReady = ProcessSampler.memoryKiB(options.serverPID)
    client.run(timeline: &timeline)
case .seed:
    break
}
timeline.serverRSSEnd = ProcessSampler.memoryKiB(options.serverPID)
timeline.serverHWM = ProcessSampler.memoryKiB(options.serverPID, field: "VmHWM")
BenchReport(client: client, timeline: timeline).print()
client.closeAll()
exit(0)
