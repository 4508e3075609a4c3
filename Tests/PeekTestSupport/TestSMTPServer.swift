#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import PeekTLS

/// A small SMTP server (RFC 5321 + STARTTLS + AUTH PLAIN/LOGIN) for tests
/// that send real mail: it listens on 127.0.0.1:0, serves each connection on
/// its own thread, records every envelope with the exact message bytes
/// (dot-stuffing undone), and can be told to fail in the ways mail servers
/// fail.
///
///     let pki = try CertFactory()
///     let smtp = try TestSMTPServer(options: .init(security: .startTLS, credentials: .init(username: "u", password: "p")), pki: pki)
///     defer { smtp.stop() }
///     // point the tenant's account at 127.0.0.1:smtp.port, smtpCA = pki.caFile
///     let mail = try smtp.waitForEnvelopes(1)[0]
///
/// TLS (STARTTLS or implicit) uses the `CertFactory` server certificate, so a
/// client trusts it with `pki.caFile`. A test server, not a mail server: it
/// keeps everything in memory and trusts its client to be well-behaved
/// except where a test asks otherwise.
public final class TestSMTPServer: @unchecked Sendable {
    // @unchecked: `port`, `options` and `tls` are set in init and never
    // change; everything that does change is inside `state`.

    public enum Security: Sendable { case plain, startTLS, implicitTLS }

    public struct Reply: Sendable, Equatable {
        public var code: Int
        public var text: String
        public init(_ code: Int, _ text: String) {
            self.code = code
            self.text = text
        }
    }

    public struct Credentials: Sendable, Equatable {
        public var username: String
        public var password: String
        public init(username: String, password: String) {
            self.username = username
            self.password = password
        }
    }

    public struct Options: Sendable {
        public var security: Security
        /// Whether EHLO advertises STARTTLS (before TLS is on); nil means
        /// "when `security` is `.startTLS`". `false` with `.startTLS` makes a
        /// server that a STARTTLS-only client must refuse.
        public var offerStartTLS: Bool?
        /// When set, AUTH is advertised and required before MAIL FROM; other
        /// credentials get 535.
        public var credentials: Credentials?
        public var authMechanisms: [String]
        /// Every RCPT TO gets this answer (e.g. 550 "5.1.1 <x>: User unknown").
        public var rejectRecipient: Reply?
        /// The DATA command gets this answer instead of 354 (e.g. 451).
        public var dataReply: Reply?
        /// The answer to the end of the message data.
        public var messageReply: Reply
        /// Accept connections and never write a byte (for client timeouts).
        public var silent: Bool
        /// Record the message, then wait for `releaseMessageReplies()` before
        /// answering it (keeps a send in flight for as long as a test needs).
        public var holdMessageReply: Bool
        /// Advertised as `SIZE n` in EHLO (RFC 1870); nil advertises 25 MiB.
        public var maxMessageBytes: Int?
        /// Sent verbatim (plus CRLF) in place of the 220 greeting, after which
        /// the server only waits for the client to hang up: a server that is
        /// not SMTP at all (an HTTP port, a banner from something else).
        public var rawGreeting: String?
        /// Written in the same packet right after "220 Ready to start TLS", in
        /// plain text: a man in the middle injecting replies the client would
        /// read as if they came over TLS (the STARTTLS injection flaw).
        public var injectAfterStartTLSReply: String?

        public init(security: Security = .plain, offerStartTLS: Bool? = nil, credentials: Credentials? = nil,
                    authMechanisms: [String] = ["PLAIN", "LOGIN"], rejectRecipient: Reply? = nil, dataReply: Reply? = nil,
                    messageReply: Reply = Reply(250, "2.0.0 Ok: queued as TEST"), silent: Bool = false,
                    holdMessageReply: Bool = false, maxMessageBytes: Int? = nil, rawGreeting: String? = nil,
                    injectAfterStartTLSReply: String? = nil) {
            self.security = security
            self.offerStartTLS = offerStartTLS
            self.credentials = credentials
            self.authMechanisms = authMechanisms
            self.rejectRecipient = rejectRecipient
            self.dataReply = dataReply
            self.messageReply = messageReply
            self.silent = silent
            self.holdMessageReply = holdMessageReply
            self.maxMessageBytes = maxMessageBytes
            self.rawGreeting = rawGreeting
            self.injectAfterStartTLSReply = injectAfterStartTLSReply
        }
    }

    /// One complete message transfer (the end-of-data dot arrived).
    public struct Envelope: Sendable {
        public var mailFrom: String
        public var recipients: [String]
        /// The message exactly as the client meant it: CRLF lines, dot-stuffing
        /// removed, without the terminating ".".
        public var data: [UInt8]
        /// The bytes between 354 and the end marker as they came over the wire
        /// (still dot-stuffed), for asserting the stuffing itself.
        public var rawData: [UInt8]
        public var authenticatedUser: String?
        public var overTLS: Bool
        public var text: String { String(decoding: data, as: UTF8.self) }
    }

    private struct State {
        var envelopes: [Envelope] = []
        /// Every command line received, in order, as "[tls] LINE" or "LINE".
        var commands: [String] = []
        var connections = 0
        var openFDs: Set<Int32> = []
        var holding = false
        var stopped = false
    }

    public let port: UInt16
    public let options: Options
    private let listenFD: Int32
    private let tls: TLSContext?
    private let state = Mutex(State())

    public static let hostname = "smtp.test"

    /// `host`: the loopback address to listen on (127.0.0.2 makes a server
    /// whose address the CertFactory certificate does not name).
    public init(options: Options = Options(), pki: CertFactory? = nil, host: String = "127.0.0.1") throws {
        self.options = options
        let needsTLS = options.security != .plain || options.offerStartTLS == true
        if needsTLS {
            guard let pki else { throw TestWebSocketClient.Failure("TestSMTPServer: TLS needs a CertFactory") }
            tls = try pki.makeServerContext()
        } else {
            tls = nil
        }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestSocketError.system(call: "socket", errno: errno) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = TestSMTPServer.bindLoopback(fd, host: host)
        guard let bound, listen(fd, 64) == 0 else {
            let code = errno
            Glibc.close(fd)
            throw TestSocketError.system(call: "bind/listen", errno: code)
        }
        listenFD = fd
        port = bound
        state.withLock { $0.holding = options.holdMessageReply }
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "test-smtp-accept"
        thread.start()
    }

    /// The accept thread holds the server until `stop()`; tests call it (in a `defer`).
    deinit { stop() }

    // MARK: What a test reads

    /// Messages received so far, oldest first.
    public var envelopes: [Envelope] { state.withLock { $0.envelopes } }
    /// Every command line received so far (AUTH payloads included: this is a test server).
    public var commands: [String] { state.withLock { $0.commands } }
    /// Connections accepted so far.
    public var connectionCount: Int { state.withLock { $0.connections } }

    /// Waits until at least `count` messages arrived; answers all of them.
    @discardableResult
    public func waitForEnvelopes(_ count: Int, timeout: Double = 10) throws -> [Envelope] {
        try waitFor(timeout: timeout, "\(count) message(s)") { $0.envelopes.count >= count ? $0.envelopes : nil }
    }

    /// Waits until at least `count` connections were accepted.
    public func waitForConnections(_ count: Int, timeout: Double = 10) throws {
        _ = try waitFor(timeout: timeout, "\(count) connection(s)") { $0.connections >= count ? true : nil }
    }

    /// Lets every held message reply (and any later one) go out.
    public func releaseMessageReplies() { state.withLock { $0.holding = false } }

    /// Stops accepting and cuts every open connection. Idempotent.
    public func stop() {
        // The accept loop sees `stopped` within its 100 ms poll and closes the
        // listening socket itself, so no fd number is touched after its close.
        state.withLock { s in
            guard !s.stopped else { return }
            s.stopped = true
            // Wakes every connection thread blocked in a read; each closes its own fd.
            for fd in s.openFDs { Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    private func waitFor<T>(timeout: Double, _ what: String, _ check: (State) -> T?) throws -> T {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let value = state.withLock({ check($0) }) { return value }
            guard Date() < deadline else {
                throw TestWebSocketClient.Failure("TestSMTPServer: no \(what) within \(timeout)s; commands: \(commands)")
            }
            usleep(5_000)
        }
    }

    // MARK: Accepting

    private static func bindLoopback(_ fd: Int32, host: String) -> UInt16? {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr(host)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { return nil }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { return nil }
        return UInt16(bigEndian: address.sin_port)
    }

    private func acceptLoop() {
        defer { Glibc.close(listenFD) }
        while !state.withLock({ $0.stopped }) {
            var descriptor = pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 100) > 0 else { continue }
            let fd = accept(listenFD, nil, nil)
            guard fd >= 0 else { continue }
            let admitted = state.withLock { s -> Bool in
                guard !s.stopped else { return false }
                s.connections += 1
                s.openFDs.insert(fd)
                return true
            }
            guard admitted else { Glibc.close(fd); break }
            let thread = Thread { [self] in serve(fd) }
            thread.name = "test-smtp-conn"
            thread.start()
        }
    }

    // MARK: One connection

    private final class Conversation {
        let socket: TestSocket
        var inbox: [UInt8] = []
        var overTLS = false
        var user: String?
        var mailFrom: String?
        var recipients: [String] = []
        init(socket: TestSocket) { self.socket = socket }
    }

    private struct Hangup: Error {}

    private func serve(_ fd: Int32) {
        var adopted: TestSocket?
        defer {
            // The fd leaves the set under the lock before it is closed, so
            // `stop()` never shuts down a number the kernel has reused.
            state.withLock { _ = $0.openFDs.remove(fd) }
            if let adopted { adopted.close() } else { Glibc.close(fd) }
        }
        do {
            if options.silent || options.rawGreeting != nil {
                let socket = try TestSocket.adopt(fd: fd)
                adopted = socket
                if let greeting = options.rawGreeting { try socket.write(Array((greeting + "\r\n").utf8)) }
                // Say nothing (more); return when the client gives up or the server stops.
                while let chunk = try? socket.read(timeout: 60), !chunk.isEmpty {
                    let text = String(decoding: chunk, as: UTF8.self)
                    state.withLock { $0.commands.append(text.trimmingCharacters(in: .newlines)) }
                }
                return
            }
            let socket = try TestSocket.adopt(fd: fd, tls: options.security == .implicitTLS ? tls : nil)
            adopted = socket
            let c = Conversation(socket: socket)
            c.overTLS = options.security == .implicitTLS
            try reply(c, 220, ["\(Self.hostname) ESMTP peek test server"])
            try converse(c)
        } catch {
            // The client went away or broke the protocol; a test asserts on what was recorded.
        }
    }

    private func converse(_ c: Conversation) throws {
        while true {
            let line = try readLine(c)
            state.withLock { $0.commands.append((c.overTLS ? "[tls] " : "") + line) }
            let verb = line.split(separator: " ", maxSplits: 1).first.map { $0.uppercased() } ?? ""
            let argument = line.count > verb.count ? String(line.dropFirst(verb.count + 1)) : ""
            switch verb {
            case "EHLO":
                c.user = nil
                c.mailFrom = nil
                c.recipients = []
                var lines = ["\(Self.hostname) greets \(argument)", "SIZE \(options.maxMessageBytes ?? 26_214_400)", "8BITMIME"]
                if !c.overTLS && (options.offerStartTLS ?? (options.security == .startTLS)) { lines.append("STARTTLS") }
                if options.credentials != nil && !options.authMechanisms.isEmpty {
                    lines.append("AUTH " + options.authMechanisms.joined(separator: " "))
                }
                lines.append("HELP")
                try reply(c, 250, lines)
            case "HELO":
                try reply(c, 250, [Self.hostname])
            case "STARTTLS":
                let offered = !c.overTLS && (options.offerStartTLS ?? (options.security == .startTLS))
                guard offered, let tls else { try reply(c, 502, ["5.5.1 STARTTLS not available"]); continue }
                guard c.inbox.isEmpty else {
                    // Plain text pipelined after STARTTLS is an injection attempt (CVE-2011-0411).
                    try reply(c, 501, ["5.5.2 data after STARTTLS"])
                    throw Hangup()
                }
                if let injected = options.injectAfterStartTLSReply {
                    try c.socket.write(Array("220 2.0.0 Ready to start TLS\r\n\(injected)\r\n".utf8))
                } else {
                    try reply(c, 220, ["2.0.0 Ready to start TLS"])
                }
                try c.socket.startTLS(tls)
                c.overTLS = true
                c.user = nil
                c.mailFrom = nil
                c.recipients = []
            case "AUTH":
                try authenticate(c, argument)
            case "MAIL":
                if options.credentials != nil && c.user == nil {
                    try reply(c, 530, ["5.7.0 Authentication required"])
                    continue
                }
                c.mailFrom = Self.path(argument, after: "FROM:")
                c.recipients = []
                try reply(c, 250, ["2.1.0 Ok"])
            case "RCPT":
                guard c.mailFrom != nil else { try reply(c, 503, ["5.5.1 Error: need MAIL command"]); continue }
                if let rejection = options.rejectRecipient {
                    try reply(c, rejection.code, [rejection.text])
                    continue
                }
                c.recipients.append(Self.path(argument, after: "TO:"))
                try reply(c, 250, ["2.1.5 Ok"])
            case "DATA":
                if let refusal = options.dataReply {
                    try reply(c, refusal.code, [refusal.text])
                    continue
                }
                guard let from = c.mailFrom, !c.recipients.isEmpty else {
                    try reply(c, 503, ["5.5.1 Error: need RCPT command"])
                    continue
                }
                try reply(c, 354, ["End data with <CR><LF>.<CR><LF>"])
                let (data, raw) = try readData(c)
                let envelope = Envelope(mailFrom: from, recipients: c.recipients, data: data, rawData: raw,
                                        authenticatedUser: c.user, overTLS: c.overTLS)
                state.withLock { $0.envelopes.append(envelope) }
                while state.withLock({ $0.holding && !$0.stopped }) { usleep(5_000) }
                c.mailFrom = nil
                c.recipients = []
                try reply(c, options.messageReply.code, [options.messageReply.text])
            case "RSET", "NOOP":
                c.mailFrom = nil
                c.recipients = []
                try reply(c, 250, ["2.0.0 Ok"])
            case "QUIT":
                try reply(c, 221, ["2.0.0 Bye"])
                return
            default:
                try reply(c, 502, ["5.5.2 Error: command not recognized"])
            }
        }
    }

    private func authenticate(_ c: Conversation, _ argument: String) throws {
        guard let expected = options.credentials else { try reply(c, 503, ["5.5.1 AUTH not offered"]); return }
        let parts = argument.split(separator: " ", maxSplits: 1).map(String.init)
        let mechanism = parts.first?.uppercased() ?? ""
        guard options.authMechanisms.contains(mechanism) else { try reply(c, 504, ["5.5.4 Unrecognized authentication type"]); return }
        var username = ""
        var password = ""
        if mechanism == "PLAIN" {
            var response = parts.count > 1 ? parts[1] : ""
            if response.isEmpty {
                try reply(c, 334, [""])
                response = try readLine(c)
            }
            // RFC 4616: authzid NUL authcid NUL passwd.
            let fields = Self.base64(response).split(separator: 0, omittingEmptySubsequences: false)
            if fields.count == 3 {
                username = String(decoding: fields[1], as: UTF8.self)
                password = String(decoding: fields[2], as: UTF8.self)
            }
        } else {
            var first = parts.count > 1 ? parts[1] : ""
            if first.isEmpty {
                try reply(c, 334, ["VXNlcm5hbWU6"])  // "Username:"
                first = try readLine(c)
            }
            username = String(decoding: Self.base64(first), as: UTF8.self)
            try reply(c, 334, ["UGFzc3dvcmQ6"])  // "Password:"
            password = String(decoding: Self.base64(try readLine(c)), as: UTF8.self)
        }
        if username == expected.username && password == expected.password {
            c.user = username
            try reply(c, 235, ["2.7.0 Authentication successful"])
        } else {
            try reply(c, 535, ["5.7.8 Error: authentication failed: authentication failure"])
        }
    }

    // MARK: Wire helpers

    private func reply(_ c: Conversation, _ code: Int, _ lines: [String]) throws {
        var text = ""
        for (index, line) in lines.enumerated() {
            let separator = index == lines.count - 1 ? " " : "-"
            text += "\(code)\(separator)\(line)\r\n"
        }
        try c.socket.write(Array(text.utf8))
    }

    /// One CRLF-terminated line without its CRLF.
    private func readLine(_ c: Conversation) throws -> String {
        while true {
            if let end = Self.crlf(in: c.inbox) {
                let line = String(decoding: c.inbox[..<end], as: UTF8.self)
                c.inbox.removeFirst(end + 2)
                return line
            }
            guard c.inbox.count < 1 << 20 else { throw Hangup() }
            let chunk = try c.socket.read(timeout: 30)
            guard !chunk.isEmpty else { throw Hangup() }
            c.inbox += chunk
        }
    }

    /// The message after 354: lines up to the lone ".", dot-stuffing undone.
    private func readData(_ c: Conversation) throws -> (data: [UInt8], raw: [UInt8]) {
        var data: [UInt8] = []
        var raw: [UInt8] = []
        while true {
            // A cursor, not removeFirst per line: messages of megabytes arrive here.
            var start = 0
            while let end = Self.crlf(in: c.inbox, from: start) {
                let line = c.inbox[start..<end]
                start = end + 2
                if line.count == 1 && line.first == UInt8(ascii: ".") {
                    c.inbox.removeFirst(start)
                    return (data, raw)
                }
                raw += line
                raw += [13, 10]
                data += line.first == UInt8(ascii: ".") ? line.dropFirst() : line
                data += [13, 10]
            }
            c.inbox.removeFirst(start)
            guard data.count + c.inbox.count < 64 << 20 else { throw Hangup() }
            let chunk = try c.socket.read(timeout: 30)
            guard !chunk.isEmpty else { throw Hangup() }
            c.inbox += chunk
        }
    }

    private static func crlf(in bytes: [UInt8], from start: Int = 0) -> Int? {
        guard bytes.count - start >= 2 else { return nil }
        for i in start..<(bytes.count - 1) where bytes[i] == 13 && bytes[i + 1] == 10 { return i }
        return nil
    }

    /// The address in `FROM:<a@b> SIZE=1` / `TO:<a@b>`.
    private static func path(_ argument: String, after keyword: String) -> String {
        var rest = Substring(argument)
        if rest.uppercased().hasPrefix(keyword) { rest = rest.dropFirst(keyword.count) }
        rest = rest.drop(while: { $0 == " " })
        if rest.first == "<", let close = rest.firstIndex(of: ">") { return String(rest[rest.index(after: rest.startIndex)..<close]) }
        return String(rest.prefix(while: { $0 != " " }))
    }

    private static func base64(_ text: String) -> [UInt8] {
        Data(base64Encoded: text.trimmingCharacters(in: .whitespaces)).map { Array($0) } ?? []
    }
}

/// A loopback port that refuses connections: bound, never listening, held
/// until this goes away so no other test can take it meanwhile.
public final class RefusingPort {
    public let port: UInt16
    private let fd: Int32

    public init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestSocketError.system(call: "socket", errno: errno) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard rc == 0, named == 0 else {
            let code = errno
            Glibc.close(fd)
            throw TestSocketError.system(call: "bind", errno: code)
        }
        self.fd = fd
        port = UInt16(bigEndian: address.sin_port)
    }

    deinit { Glibc.close(fd) }
}
