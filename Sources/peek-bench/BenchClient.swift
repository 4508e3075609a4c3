#if canImport(Glibc)
import Glibc
#endif
import CSystem
import PeekCrypto
import PeekTLS

/// The load generator: one thread, one epoll set, every connection
/// non-blocking and edge-triggered (the shape of wsload.c, which it mirrors
/// so the two can be compared). One shared read buffer: a connection owns
/// input memory only while a frame is split across reads.
///
/// Not Sendable and never shared: the whole run happens on the main thread.
final class BenchClient {
    let options: BenchOptions
    let epollFD: Int32
    var connections: [BenchConnection] = []
    let readBuffer: UnsafeMutableRawPointer
    static let readBufferSize = 256 * 1024
    /// Where client frames are built (masked) before they are written.
    var scratch: UnsafeMutableRawPointer
    var scratchCapacity = 64 * 1024
    /// Note frames of one publisher pump, written with one send.
    var batch: UnsafeMutableRawPointer
    var batchCapacity = 256 * 1024
    var plaintext: [UInt8] = []
    /// Signed tokens by technician number (HMAC once per technician, not per connection).
    var tokens: [Int: String] = [:]
    var cipher: [UInt8] = []
    var random: FastRandom
    /// TLS client context for wss:// (nil for ws://); per-agent contexts carry client certificates.
    var tlsContext: TLSContext?
    var agentContexts: [TLSContext] = []
    /// Viewers and publishers go to the URL's port; agents to the mutual-TLS listener.
    let destinationPort: UInt16
    let agentPort: UInt16

    /// Ticket ids, and their UTF-8 for the delta check.
    var ticketNames: [String] = []
    var ticketBytes: [[UInt8]] = []
    /// Viewers per ticket (recounted from the ready set before publishing).
    var viewersPerTicket: [Int] = []
    var publishers: [Publisher] = []
    /// Per viewer x publisher slot: the last note counter seen (gap/duplicate check).
    var lastCounter: [UInt32] = []
    var slotsPerViewer = 1
    let runID: Int32

    var stats = BenchStats()
    var latency = Histogram()
    var ackLatency = Histogram()
    var setupLatency = Histogram()
    var publishing = false
    var measureStart: UInt64 = .max
    var measureEnd: UInt64 = .max
    /// Taken once per read: every frame in one read arrived at the same time.
    var now: UInt64 = 0

    var pendingSetup = 0
    var readyCount = 0
    var closingCount = 0
    var firstError: String?

    init(options: BenchOptions) {
        self.options = options
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        if epollFD < 0 { fatal("epoll_create1 failed: errno \(errno)") }
        readBuffer = .allocate(byteCount: Self.readBufferSize + 16, alignment: 16)
        scratch = .allocate(byteCount: scratchCapacity, alignment: 16)
        batch = .allocate(byteCount: batchCapacity, alignment: 16)
        random = FastRandom(seed: Crypto.randomBytes(8).reduce(0) { $0 << 8 | UInt64($1) })
        destinationPort = options.port
        agentPort = options.agentPort ?? options.port
        runID = getpid()
    }

    deinit {
        readBuffer.deallocate()
        scratch.deallocate()
        batch.deallocate()
        close(epollFD)
    }

    func ensureScratch(_ bytes: Int) {
        guard bytes > scratchCapacity else { return }
        var capacity = scratchCapacity
        while capacity < bytes { capacity *= 2 }
        scratch.deallocate()
        scratch = .allocate(byteCount: capacity, alignment: 16)
        scratchCapacity = capacity
    }

    func makeSlots(_ count: Int) {
        connections = (0..<count).map { BenchConnection(index: $0) }
    }

    // MARK: Opening

    /// Starts a non-blocking connect from 127.0.0.(1 + spread % K). With
    /// IP_BIND_ADDRESS_NO_PORT the port is chosen at connect time per
    /// (source, destination) pair, so K sources give K x 28k ports (LINUX-NOTES).
    @discardableResult
    func open(_ c: BenchConnection, role: BenchConnection.Role, ticket: Int, spread: Int) -> Bool {
        c.reset()
        c.role = role
        c.ticket = ticket
        c.startedNanos = monotonicNanos()
        stats.connectStarted += 1
        pendingSetup += 1
        func failed() -> Bool {
            stats.connectErrors += 1
            pendingSetup -= 1
            c.state = .dead
            return false
        }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return failed() }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(fd, Int32(IPPROTO_IP), CSystem_IP_BIND_ADDRESS_NO_PORT(), &one, socklen_t(MemoryLayout<Int32>.size))
        var source = sockaddr_in()
        source.sin_family = sa_family_t(AF_INET)
        source.sin_addr.s_addr = (UInt32(127) << 24 | UInt32(1 + spread % options.sourceAddresses)).bigEndian
        let bound = withUnsafePointer(to: &source) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { close(fd); return failed() }
        var destination = sockaddr_in()
        destination.sin_family = sa_family_t(AF_INET)
        destination.sin_port = (role == .agent ? agentPort : destinationPort).bigEndian
        inet_pton(AF_INET, options.host, &destination.sin_addr)
        let rc = withUnsafePointer(to: &destination) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if rc != 0 && errno != EINPROGRESS {
            if stats.connectErrors < 3 { printError("peek-bench: connect: errno \(errno)") }
            close(fd)
            return failed()
        }
        c.fd = fd
        c.state = .connecting
        var ev = epoll_event()
        ev.events = EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLET.rawValue | EPOLLRDHUP.rawValue
        ev.data.u64 = UInt64(c.index)
        if epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &ev) != 0 { fatal("epoll_ctl: errno \(errno)") }
        return true
    }

    /// `asError`: an unexpected end, counted as a setup failure if still in setup.
    func closeConnection(_ c: BenchConnection, asError: Bool, reset: Bool = false) {
        guard c.isAlive else { return }
        let wasInSetup = !c.counted && c.state != .closing
        if c.fd >= 0 {
            if reset {
                var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
                setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            }
            close(c.fd)   // also leaves the epoll set
        }
        if c.state == .closing && closingCount > 0 { closingCount -= 1 }
        if wasInSetup {
            if asError { stats.connectErrors += 1 }
            if pendingSetup > 0 { pendingSetup -= 1 }
        }
        if c.counted && c.state == .ready && readyCount > 0 { readyCount -= 1 }
        c.state = .dead
        c.fd = -1
        c.tls = nil
        c.carry = []
        c.out = []
        c.fragment = []
    }

    func markReady(_ c: BenchConnection) {
        c.state = .ready
        guard !c.counted else { return }
        c.counted = true
        readyCount += 1
        stats.connectOK += 1
        if pendingSetup > 0 { pendingSetup -= 1 }
        setupLatency.add(monotonicNanos() &- c.startedNanos)
    }

    // MARK: Events

    /// Waits up to `timeoutMillis` and dispatches what is ready.
    func poll(_ events: UnsafeMutablePointer<epoll_event>, max: Int32, timeoutMillis: Int32) {
        let n = epoll_wait(epollFD, events, max, timeoutMillis)
        guard n > 0 else { return }
        for i in 0..<Int(n) {
            let slot = Int(CSystem_epoll_event_data(events, Int32(i)))
            let flags = CSystem_epoll_event_flags(events, Int32(i))
            guard slot < connections.count else { continue }
            handleEvents(connections[slot], flags)
        }
    }

    private func handleEvents(_ c: BenchConnection, _ flags: UInt32) {
        guard c.isAlive else { return }
        if c.state == .connecting {
            if flags & (EPOLLOUT.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 { connected(c) }
            return
        }
        if flags & EPOLLOUT.rawValue != 0 && c.outOffset < c.out.count {
            flush(c)
            guard c.isAlive else { return }
        }
        if flags & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 {
            if c.tls != nil { readTLS(c) } else { readPlain(c) }
        }
    }

    private func connected(_ c: BenchConnection) {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &error, &length)
        if error != 0 {
            if stats.connectErrors < 3 { printError("peek-bench: connect failed: errno \(error)") }
            closeConnection(c, asError: true)
            return
        }
        if let context = c.role == .agent ? agentContexts[c.ticket % max(1, agentContexts.count)] : tlsContext {
            do {
                c.tls = try TLSSession(context: context, serverName: nil)
            } catch {
                closeConnection(c, asError: true)
                return
            }
            c.state = .tls
            stepHandshake(c)
        } else {
            sendUpgrade(c)
        }
    }

    private func stepHandshake(_ c: BenchConnection) {
        guard let tls = c.tls else { return }
        switch tls.handshake() {
        case .wantMore:
            sendTLSOutput(c)
        case .complete:
            sendTLSOutput(c)
            guard c.isAlive else { return }
            sendUpgrade(c)
        case .failed(let error):
            stats.handshakeErrors += 1
            if stats.handshakeErrors <= 3 { printError("peek-bench: TLS handshake failed: \(error)") }
            closeConnection(c, asError: true)
        }
    }

    // MARK: Reading

    private func readPlain(_ c: BenchConnection) {
        let size = Self.readBufferSize
        while c.isAlive {
            if c.need > size / 2 {
                // A frame larger than the shared buffer comfortably holds:
                // gather it in the connection's own buffer.
                let n = read(c.fd, readBuffer, size)
                if n < 0 { if errno == EAGAIN || errno == EINTR { return }; ioError(c); return }
                if n == 0 { peerClosed(c); return }
                now = monotonicNanos()
                stats.bytesIn += n
                c.carry.append(contentsOf: UnsafeRawBufferPointer(start: readBuffer, count: n))
                if c.carry.count >= c.need { processCarry(c) }
                if n < size { return }
                continue
            }
            let have = c.carry.count
            if have > 0 { c.carry.withUnsafeBytes { readBuffer.copyMemory(from: $0.baseAddress!, byteCount: have) } }
            let n = read(c.fd, readBuffer + have, size - have)
            if n < 0 { if errno == EAGAIN || errno == EINTR { return }; ioError(c); return }
            if n == 0 { peerClosed(c); return }
            now = monotonicNanos()
            stats.bytesIn += n
            let total = have + n
            c.carry.removeAll(keepingCapacity: true)
            let consumed = process(c, readBuffer.assumingMemoryBound(to: UInt8.self), total)
            guard c.isAlive else { return }
            if consumed < total { c.carry.append(contentsOf: UnsafeRawBufferPointer(start: readBuffer + consumed, count: total - consumed)) }
            else if c.carry.capacity > 4096 { c.carry = [] }
            if n < size - have { return }
        }
    }

    /// Parses what `carry` holds (a large frame, or TLS plaintext).
    private func processCarry(_ c: BenchConnection) {
        var data = c.carry
        c.carry = []
        let consumed = data.withUnsafeMutableBufferPointer { process(c, $0.baseAddress!, $0.count) }
        guard c.isAlive else { return }
        if consumed < data.count {
            data.removeSubrange(0..<consumed)
            c.carry = data
        }
    }

    private func readTLS(_ c: BenchConnection) {
        guard let tls = c.tls else { return }
        while c.isAlive {
            let n = read(c.fd, readBuffer, Self.readBufferSize)
            if n < 0 { if errno == EAGAIN || errno == EINTR { return }; ioError(c); return }
            if n == 0 { peerClosed(c); return }
            now = monotonicNanos()
            stats.bytesIn += n
            tls.feedNetwork(UnsafeRawBufferPointer(start: readBuffer, count: n))
            if c.state == .tls {
                stepHandshake(c)
                guard c.isAlive, c.state != .tls else { continue }
            }
            var ended = false
            while c.isAlive && !ended {
                plaintext.removeAll(keepingCapacity: true)
                switch tls.readPlaintext(into: &plaintext) {
                case .bytes(let k) where k > 0:
                    c.carry.append(contentsOf: plaintext)
                    processCarry(c)
                case .bytes, .wantMore:
                    ended = true
                case .closed:
                    peerClosed(c); return
                case .failed:
                    ioError(c); return
                }
            }
            if c.isAlive && tls.hasNetworkOutput { sendTLSOutput(c) }
            if n < Self.readBufferSize { return }
        }
    }

    private func peerClosed(_ c: BenchConnection) {
        if c.state == .closing { closeConnection(c, asError: false, reset: options.scenario == .connect); return }
        stats.closedByServer += 1
        closeConnection(c, asError: true)
    }

    private func ioError(_ c: BenchConnection) {
        if c.state == .closing { closeConnection(c, asError: false, reset: options.scenario == .connect); return }
        stats.ioErrors += 1
        closeConnection(c, asError: true)
    }

    // MARK: Writing

    /// Writes bytes (already a WebSocket frame or an HTTP request), through TLS when the connection has it.
    func write(_ c: BenchConnection, _ p: UnsafeRawPointer, _ n: Int) {
        guard c.isAlive, n > 0 else { return }
        if let tls = c.tls {
            guard case .success = tls.writePlaintext(UnsafeRawBufferPointer(start: p, count: n)) else { ioError(c); return }
            sendTLSOutput(c)
            return
        }
        writeRaw(c, p, n)
    }

    private func sendTLSOutput(_ c: BenchConnection) {
        guard let tls = c.tls, tls.hasNetworkOutput else { return }
        cipher.removeAll(keepingCapacity: true)
        tls.drainNetworkOutput(into: &cipher)
        let bytes = cipher
        bytes.withUnsafeBytes { writeRaw(c, $0.baseAddress!, $0.count) }
    }

    private func writeRaw(_ c: BenchConnection, _ p: UnsafeRawPointer, _ n: Int) {
        if c.outOffset < c.out.count {
            c.out.append(contentsOf: UnsafeRawBufferPointer(start: p, count: n))
            flush(c)
            return
        }
        let w = send(c.fd, p, n, Int32(MSG_NOSIGNAL))
        if w < 0 && errno != EAGAIN && errno != EINTR { ioError(c); return }
        let written = max(0, w)
        stats.bytesOut += written
        if written < n {
            c.out.removeAll(keepingCapacity: true)
            c.outOffset = 0
            c.out.append(contentsOf: UnsafeRawBufferPointer(start: p + written, count: n - written))
        }
    }

    private func flush(_ c: BenchConnection) {
        while c.outOffset < c.out.count {
            let w = c.out.withUnsafeBytes { send(c.fd, $0.baseAddress! + c.outOffset, $0.count - c.outOffset, Int32(MSG_NOSIGNAL)) }
            if w < 0 {
                if errno == EAGAIN || errno == EINTR { return }
                ioError(c)
                return
            }
            stats.bytesOut += w
            c.outOffset += w
        }
        c.out.removeAll(keepingCapacity: c.out.capacity <= 65536)
        c.outOffset = 0
    }
}

func fatal(_ message: String) -> Never {
    printError("peek-bench: \(message)")
    exit(2)
}
