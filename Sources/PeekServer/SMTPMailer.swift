#if canImport(Glibc)
import Glibc
#endif
import Foundation
import PeekEngine
import PeekCore
import PeekMail
import PeekNet
import PeekTLS

/// Sends replies over SMTP on worker threads, never on an event loop: a
/// slow or dead mail server delays only its own reply. Each send builds the
/// message from the engine's draft, then drives `SMTPDialogue` (which
/// decides) over a blocking socket with a deadline on every step (which
/// this does).
final class SMTPMailer: Mailer {
    /// Conversations at once. Each is a thread blocked on a socket, so this
    /// also bounds the threads: a reply over it waits in the pool's queue as
    /// a job, holding no thread. The engine bounds how many are handed over
    /// (`ServerConfig.maxRepliesInFlight`), so the queue needs no bound of
    /// its own and a send is never refused here.
    static let maxConversations = 16
    private let workers = WorkerPool(name: "peekd-mail", maxThreads: maxConversations, queueCapacity: .max)
    let timeoutSeconds: Double
    let tls: TLSContext
    let clientHostname: String

    init(tls: TLSContext, timeoutSeconds: Double, clientHostname: String = "peekd.localhost") {
        self.timeoutSeconds = timeoutSeconds
        self.clientHostname = clientHostname
        self.tls = tls
    }

    func send(_ job: MailJob, completion: @escaping @Sendable (MailOutcome) -> Void) {
        _ = workers.submit { [self] in completion(deliver(job)) }
    }

    func deliver(_ job: MailJob) -> MailOutcome {
        let message: [UInt8]
        switch job.draft.build() {
        case .success(let bytes): message = bytes
        case .failure(let error): return .refused(error)
        }
        let a = job.account
        let security: SMTPDialogue.Configuration.Security = switch a.security {
        case .none: .none
        case .startTLS: .startTLS
        case .tls: .implicitTLS
        }
        let credentials = a.username.map { SMTPDialogue.Credentials(username: $0, password: a.password ?? "") }
        var dialogue: SMTPDialogue
        do {
            dialogue = try SMTPDialogue(configuration: .init(clientHostname: clientHostname, security: security, credentials: credentials,
                                                            envelopeFrom: a.from, recipients: [job.recipient], message: message))
        } catch {
            return .failed(message: error.message, reply: error.message)
        }
        let stream: SMTPStream
        do {
            stream = try SMTPStream.connect(host: a.host, port: a.port, timeout: timeoutSeconds)
        } catch {
            let text = "Could not connect to the mail server \(a.host):\(a.port): \(error.text)."
            return .failed(message: text, reply: error.text)
        }
        defer { stream.close() }
        var parser = SMTPReplyParser()
        var event: SMTPDialogue.Event = .connected
        if security == .implicitTLS {
            if let failure = stream.startTLS(tls, serverName: a.host, timeout: timeoutSeconds) {
                event = .tlsFailed(reason: failure)
            }
        }
        while true {
            let action = dialogue.handle(event)
            switch action {
            case .done(let outcome):
                stream.writeQuietly(SMTPDialogue.quitCommand)
                return .sent(reply: outcome.reply.text)
            case .failed(let failure):
                stream.writeQuietly(SMTPDialogue.quitCommand)
                return .failed(message: failure.message, reply: failure.reply?.text ?? failure.message)
            case .startTLS:
                guard !parser.hasUnconsumedInput else {
                    event = .tlsFailed(reason: "the server sent data before the TLS handshake")
                    continue
                }
                event = stream.startTLS(tls, serverName: a.host, timeout: timeoutSeconds).map { .tlsFailed(reason: $0) } ?? .tlsEstablished
                parser = SMTPReplyParser()
                continue
            case .send(let bytes), .sendSecret(let bytes):
                if !stream.write(bytes, timeout: timeoutSeconds) { event = .connectionClosed; continue }
            case .receive:
                break
            }
            event = readReply(stream, &parser)
        }
    }

    private func readReply(_ stream: SMTPStream, _ parser: inout SMTPReplyParser) -> SMTPDialogue.Event {
        let deadline = monotonicMillis() + Int64(timeoutSeconds * 1000)
        while true {
            do {
                if let reply = try parser.next() { return .reply(reply) }
            } catch {
                // Not "closed": the technician must learn the port speaks something else.
                return .unreadableReply(error)
            }
            let left = deadline - monotonicMillis()
            if left <= 0 { return .timedOut }
            switch stream.read(timeoutMillis: left) {
            case .bytes(let b): parser.append(b)
            case .timedOut: return .timedOut
            case .closed: return .connectionClosed
            }
        }
    }
}

/// A blocking client byte stream with deadlines, optionally through TLS.
final class SMTPStream {
    struct Failure: Error { var text: String }
    enum ReadResult { case bytes([UInt8]), timedOut, closed }

    let fd: Int32
    private var tls: TLSSession?

    private init(fd: Int32) { self.fd = fd }

    static func connect(host: String, port: Int, timeout: Double) throws(Failure) -> SMTPStream {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let first = result else {
            throw Failure(text: "cannot resolve \(host)")
        }
        defer { freeaddrinfo(result) }
        var lastError = "no address"
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let info = cursor {
            cursor = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { continue }
            let rc = Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen)
            if rc == 0 || errno == EINPROGRESS {
                var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let ready = poll(&pfd, 1, Int32(timeout * 1000))
                var soError: Int32 = 0
                var len = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len)
                if ready > 0 && soError == 0 { return SMTPStream(fd: fd) }
                lastError = ready == 0 ? "connection timed out" : String(cString: strerror(soError))
            } else {
                lastError = String(cString: strerror(errno))
            }
            Glibc.close(fd)
        }
        throw Failure(text: lastError)
    }

    /// Runs the client handshake; nil on success, else the reason.
    func startTLS(_ context: TLSContext, serverName: String, timeout: Double) -> String? {
        let session: TLSSession
        do { session = try TLSSession(context: context, serverName: serverName) } catch { return error.description }
        tls = session
        let deadline = monotonicMillis() + Int64(timeout * 1000)
        while true {
            switch session.handshake() {
            case .complete:
                flushTLS()
                return nil
            case .failed(let e):
                flushTLS()
                tls = nil
                return "TLS handshake with the mail server failed: \(e.description)"
            case .wantMore:
                flushTLS()
                let left = deadline - monotonicMillis()
                guard left > 0, case .bytes(let b) = rawRead(timeoutMillis: left) else {
                    tls = nil
                    return "TLS handshake with the mail server timed out or was cut off"
                }
                b.withUnsafeBytes { session.feedNetwork($0) }
            }
        }
    }

    private func flushTLS() {
        guard let tls else { return }
        var out: [UInt8] = []
        tls.drainNetworkOutput(into: &out)
        if !out.isEmpty { _ = rawWrite(out, timeoutMillis: 5000) }
    }

    func write(_ bytes: [UInt8], timeout: Double) -> Bool {
        if let tls {
            guard case .success = bytes.withUnsafeBytes({ tls.writePlaintext($0) }) else { return false }
            var out: [UInt8] = []
            tls.drainNetworkOutput(into: &out)
            return rawWrite(out, timeoutMillis: Int64(timeout * 1000))
        }
        return rawWrite(bytes, timeoutMillis: Int64(timeout * 1000))
    }

    func writeQuietly(_ bytes: [UInt8]) { _ = write(bytes, timeout: 2) }

    func read(timeoutMillis: Int64) -> ReadResult {
        guard let tls else { return rawRead(timeoutMillis: timeoutMillis) }
        let deadline = monotonicMillis() + timeoutMillis
        while true {
            var plain: [UInt8] = []
            switch tls.readPlaintext(into: &plain) {
            case .bytes(let n) where n > 0: return .bytes(plain)
            case .closed, .failed: return .closed
            case .bytes, .wantMore: break
            }
            flushTLS()
            let left = deadline - monotonicMillis()
            guard left > 0 else { return .timedOut }
            switch rawRead(timeoutMillis: left) {
            case .bytes(let b): b.withUnsafeBytes { tls.feedNetwork($0) }
            case let other: return other
            }
        }
    }

    private func rawRead(timeoutMillis: Int64) -> ReadResult {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&pfd, 1, Int32(clamping: timeoutMillis))
        if ready == 0 { return .timedOut }
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        let n = Glibc.read(fd, &buffer, buffer.count)
        if n <= 0 { return .closed }
        return .bytes(Array(buffer.prefix(n)))
    }

    private func rawWrite(_ bytes: [UInt8], timeoutMillis: Int64) -> Bool {
        var offset = 0
        let deadline = monotonicMillis() + timeoutMillis
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if n > 0 { offset += n; continue }
            if n < 0 && (errno == EAGAIN || errno == EINTR) {
                var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let left = deadline - monotonicMillis()
                if left <= 0 || poll(&pfd, 1, Int32(clamping: left)) <= 0 { return false }
                continue
            }
            return false
        }
        return true
    }

    func close() { Glibc.close(fd) }
}
