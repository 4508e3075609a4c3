#if canImport(Glibc)
import Glibc
#endif
import Foundation
import PeekCore
import PeekTLS

/// A demo RMM agent: the end user's side of the agent socket, run by
/// `peekd --demo` for the demo asset and by tests against a real server.
///
/// It connects over mutual TLS with its client certificate, streams
/// telemetry, chats once in a while on the tickets it knows, accepts every
/// consent request (after `consentDelay`, so "awaiting consent" shows), answers
/// an active desktop session with a `session_join` link, and runs shell input
/// as real processes under a time limit, only from `DemoShellCommand`'s
/// allow-list. It reconnects when the connection goes, and waits longer when
/// another connection of the same agent replaced it (4409) or the server
/// does not know it (4403). One thread does all socket work; commands run on
/// their own threads and hand their output to it.
public final class DemoAgent: @unchecked Sendable {
    // @unchecked: `outbox`, `stopping` and `connectedFlag` are guarded by
    // `lock`; everything else is touched only by the agent's thread.
    public struct Configuration: Sendable {
        public var host: String
        public var port: UInt16
        /// The name the server's certificate must carry.
        public var serverName = "localhost"
        /// The CA that signed the server's certificate.
        public var serverCA: String
        public var certificateFile: String
        public var keyFile: String
        /// Seconds between telemetry samples.
        public var telemetryInterval = 2.0
        /// Seconds between chat messages (nil: never), the first after half of it.
        public var chatInterval: Double? = 120
        /// Tickets to chat on, besides those a consent request or reply names.
        public var chatTickets: [String] = []
        /// Seconds before a consent request is accepted.
        public var consentDelay = 1.0
        /// Seconds one shell command may run before it is killed.
        public var commandTimeLimit = 5.0
        /// Where a desktop session's join link points (`?session=<id>` is added); https.
        public var joinURL: String
        /// Seconds a join link is valid.
        public var joinLifetime = 600

        public init(host: String, port: UInt16, serverCA: String, certificateFile: String, keyFile: String, joinURL: String) {
            self.host = host
            self.port = port
            self.serverCA = serverCA
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.joinURL = joinURL
        }
    }

    public let configuration: Configuration
    private let log: @Sendable (String) -> Void
    private let lock = NSLock()
    private var outbox: [JSONValue] = []
    private var stopping = false
    private var connectedFlag = false
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)

    // The agent thread's own state.
    private var shells: [String: DemoShellSession] = [:]
    private var knownTickets: [String] = []
    private var scheduled: [(at: Double, action: (AgentConnection) throws(AgentConnectionError) -> Void)] = []
    private var cpu = 35.0, ram = 58.0, disk = 71.0
    private var chatIndex = 0

    public init(_ configuration: Configuration, log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.configuration = configuration
        self.log = log
        knownTickets = configuration.chatTickets
    }

    /// Whether the agent is connected and welcomed right now.
    public var isConnected: Bool { lock.withLock { connectedFlag } }

    public func start() {
        let t = Thread { [self] in
            run()
            finished.signal()
        }
        t.name = "demo-agent"
        thread = t
        t.start()
    }

    /// Stops the agent and waits (a few seconds at most) for it to close.
    public func stop() {
        let started = lock.withLock { () -> Bool in
            stopping = true
            return thread != nil
        }
        guard started else { return }
        _ = finished.wait(timeout: .now() + 5)
    }

    private var isStopping: Bool { lock.withLock { stopping } }

    // MARK: The connection loop

    private func run() {
        let tls: TLSContext
        do {
            tls = try TLSContext.makeClient(caFile: configuration.serverCA, useSystemTrust: false,
                                            certificateFile: configuration.certificateFile, keyFile: configuration.keyFile)
        } catch {
            log("demo agent not started: its certificate or the server's CA did not load: \(error)")
            return
        }
        var backoff = 1.0
        while !isStopping {
            do {
                let connection = try AgentConnection(host: configuration.host, port: configuration.port,
                                                     serverName: configuration.serverName, tls: tls, timeout: 10)
                backoff = 1
                try serve(connection)
                connection.sayGoodbye()
            } catch {
                lock.withLock { connectedFlag = false }
                endShells()
                if isStopping { break }
                let pause = error.closeCode == 4409 || error.closeCode == 4403 ? 60 : backoff
                log("demo agent: \(error.description); connecting again in \(Int(pause)) s")
                backoff = min(30, backoff * 2)
                sleep(seconds: pause)
            }
        }
        lock.withLock { connectedFlag = false }
        endShells()
    }

    private func sleep(seconds: Double) {
        let until = AgentConnection.now() + seconds
        while !isStopping && AgentConnection.now() < until { usleep(100_000) }
    }

    private func serve(_ connection: AgentConnection) throws(AgentConnectionError) {
        var nextTelemetry = AgentConnection.now()
        var nextChat = configuration.chatInterval.map { AgentConnection.now() + $0 / 2 }
        scheduled = []
        while !isStopping {
            for message in try connection.receive(timeout: 0.05) { try handle(message, connection) }
            let now = AgentConnection.now()
            guard isConnected else { continue }
            if now >= nextTelemetry {
                nextTelemetry = now + configuration.telemetryInterval
                try connection.send(telemetry())
            }
            if let at = nextChat, now >= at, let interval = configuration.chatInterval {
                nextChat = now + interval
                if let chat = nextChatMessage() { try connection.send(chat) }
            }
            let due = scheduled.filter { $0.at <= now }
            scheduled.removeAll { $0.at <= now }
            for item in due { try item.action(connection) }
            let pending = lock.withLock { () -> [JSONValue] in
                defer { outbox.removeAll() }
                return outbox
            }
            for frame in Self.coalesced(pending) { try connection.send(frame) }
        }
    }

    private func handle(_ message: JSONValue, _ connection: AgentConnection) throws(AgentConnectionError) {
        switch message["type"]?.stringValue {
        case "welcome":
            lock.withLock { connectedFlag = true }
            log("demo agent connected for \(message["asset"]?["name"]?.stringValue ?? "its asset")")
        case "consent_request":
            guard let session = message["session"]?.stringValue else { return }
            let kind = message["kind"]?.stringValue ?? "recording"
            if let ticket = message["ticket"]?.stringValue { learn(ticket) }
            scheduled.append((AgentConnection.now() + configuration.consentDelay, { [self] (c: AgentConnection) throws(AgentConnectionError) in
                try c.send(["type": "consent", "session": .string(session), "decision": "accept"])
                try accepted(session, kind: kind, c)
            }))
        case "session_input":
            guard let session = message["session"]?.stringValue, let data = message["data"]?.stringValue else { return }
            shells[session]?.input(data)
        case "session_ended":
            guard let session = message["session"]?.stringValue else { return }
            shells.removeValue(forKey: session)?.end()
        case "reply":
            if let ticket = message["ticket"]?.stringValue { learn(ticket) }
        case "error":
            log("demo agent: the server said \(message["code"]?.stringValue ?? "?"): \(message["message"]?.stringValue ?? "")")
        default:
            break
        }
    }

    private func accepted(_ session: String, kind: String, _ connection: AgentConnection) throws(AgentConnectionError) {
        switch kind {
        case "shell":
            let shell = DemoShellSession(id: session, timeLimit: configuration.commandTimeLimit) { [weak self] data in
                self?.queueOutput(session: session, data)
            }
            shells[session] = shell
            shell.start(banner: "Demo agent shell. Allowed: \(DemoShellCommand.allowList.joined(separator: ", ")); Ctrl-C stops a command.")
        case "desktop":
            let expires = Int64(Date().timeIntervalSince1970 * 1000) + Int64(configuration.joinLifetime) * 1000
            let separator = configuration.joinURL.contains("?") ? "&" : "?"
            try connection.send(["type": "session_join", "session": .string(session),
                                 "url": .string(configuration.joinURL + separator + "session=" + session),
                                 "expires_at": .string(Timestamp.format(millis: expires))])
        default:
            break
        }
    }

    /// Output from a command thread: sent by the agent thread, in chunks
    /// of at most 16 KiB (the frame's bound), on whole characters.
    private func queueOutput(session: String, _ data: String) {
        var rest = Substring(data)
        var frames: [JSONValue] = []
        while !rest.isEmpty {
            var end = rest.utf8.index(rest.startIndex, offsetBy: min(16 * 1024, rest.utf8.count))
            while end < rest.endIndex && !rest.unicodeScalars.indices.contains(end) { end = rest.utf8.index(before: end) }
            frames.append(["type": "session_output", "session": .string(session), "data": .string(String(rest[..<end]))])
            rest = rest[end...]
        }
        lock.withLock { outbox += frames }
    }

    /// Adjacent output chunks of one session in one frame (up to the 16 KiB
    /// bound): a command's echo, output and prompt cost one frame of the
    /// agent's frame rate (§5), not three.
    static func coalesced(_ frames: [JSONValue]) -> [JSONValue] {
        var out: [JSONValue] = []
        for frame in frames {
            if frame["type"]?.stringValue == "session_output", let last = out.last, last["type"]?.stringValue == "session_output",
               last["session"] == frame["session"], let a = last["data"]?.stringValue, let b = frame["data"]?.stringValue,
               a.utf8.count + b.utf8.count <= 16 * 1024 {
                out[out.count - 1] = ["type": "session_output", "session": frame["session"]!, "data": .string(a + b)]
            } else {
                out.append(frame)
            }
        }
        return out
    }

    private func endShells() {
        for shell in shells.values { shell.end() }
        shells = [:]
        lock.withLock { outbox.removeAll() }
    }

    private func learn(_ ticket: String) {
        if !knownTickets.contains(ticket) { knownTickets.append(ticket) }
    }

    // MARK: What the end user's machine says

    /// A slow random walk, so the tiles move like a busy laptop's.
    private func telemetry() -> JSONValue {
        func step(_ value: inout Double, by spread: Double, in range: ClosedRange<Double>) {
            value = min(range.upperBound, max(range.lowerBound, value + Double.random(in: -spread...spread)))
        }
        step(&cpu, by: 12, in: 8...97)
        step(&ram, by: 3, in: 40...88)
        step(&disk, by: 0.2, in: 60...80)
        func round1(_ v: Double) -> JSONValue { .double((v * 10).rounded() / 10) }
        return ["type": "telemetry", "cpu": round1(cpu), "ram": round1(ram), "disk": round1(disk)]
    }

    static let chatLines = [
        "The fan is still loud, is someone looking at it?",
        "I closed a few browser tabs, it seems a little better now.",
        "Is it OK if I restart the laptop later today?",
        "It got slow again while I was on a video call.",
    ]

    private func nextChatMessage() -> JSONValue? {
        guard let ticket = knownTickets.first else { return nil }
        defer { chatIndex += 1 }
        return ["type": "chat", "ticket": .string(ticket), "body": .string(Self.chatLines[chatIndex % Self.chatLines.count])]
    }
}
