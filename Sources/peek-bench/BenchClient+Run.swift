#if canImport(Glibc)
import Glibc
#endif
import CSystem

/// The phases of a run: open every connection, then hold (idle) or publish
/// for warm-up + the measured window, then drain what is still in flight.
/// Every phase has a deadline, so a run always ends.
extension BenchClient {
    struct Timeline {
        var setupSeconds = 0.0
        var drainSeconds = 0.0
        var drainEnd = "none"
        var serverRSSBefore = -1, serverRSSReady = -1, serverRSSEnd = -1, serverHWM = -1
        var cpu = CPUWindow(serverPID: 0)
        var measuredSeconds = 0.0
    }

    /// Lays out viewers over tickets and publishers over tickets (as wsload does):
    /// with at least as many tickets as publishers, publisher p posts to every
    /// ticket t with t % P == p; otherwise publisher p posts to ticket p % T.
    func layOut(viewers: Int, publisherCount: Int, role: BenchConnection.Role) {
        let tickets = ticketNames.count
        makeSlots(viewers + publisherCount)
        viewersPerTicket = [Int](repeating: 0, count: tickets)
        for i in 0..<viewers { viewersPerTicket[i % tickets] += 1 }
        slotsPerViewer = tickets >= max(1, publisherCount) ? 1 : (publisherCount + tickets - 1) / tickets
        lastCounter = [UInt32](repeating: 0, count: max(1, viewers * slotsPerViewer))
        publishers = (0..<publisherCount).map { p in
            let mine = tickets >= publisherCount ? Array(stride(from: p, to: tickets, by: publisherCount)) : [p % tickets]
            let pb = Publisher(index: p, connection: viewers + p, tickets: mine, window: options.window,
                               rate: role == .agent ? options.chatRate : options.rate)
            if role == .agent && options.telemetryRate > 0 { pb.telemetryInterval = UInt64(1e9 / options.telemetryRate) }
            return pb
        }
    }

    /// Opens viewers then publishers, `--concurrency` at a time.
    func setUp(viewers: Int, publisherRole: BenchConnection.Role, timeline: inout Timeline) {
        let total = connections.count
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: 4096)
        defer { events.deallocate() }
        let start = monotonicNanos()
        let deadline = start + UInt64(options.setupTimeout * 1e9)
        var nextToOpen = 0
        var lastTick = start, lastScan = start
        while true {
            while nextToOpen < total && pendingSetup < options.concurrency {
                let i = nextToOpen
                nextToOpen += 1
                if i < viewers { open(connections[i], role: .viewer, ticket: i % ticketNames.count, spread: i) }
                else { open(connections[i], role: publisherRole, ticket: i - viewers, spread: i) }
            }
            if nextToOpen >= total && pendingSetup == 0 { break }
            let t = monotonicNanos()
            if t > deadline {
                printError("peek-bench: setup timeout: \(readyCount) of \(total) ready")
                break
            }
            poll(events, max: 4096, timeoutMillis: 50)
            let after = monotonicNanos()
            if after - lastScan > 500_000_000 {
                lastScan = after
                let limit = UInt64(options.handshakeTimeout * 1e9)
                for c in connections[0..<nextToOpen] where c.isAlive && c.state != .ready && after - c.startedNanos > limit {
                    stats.setupTimeouts += 1
                    closeConnection(c, asError: true)
                }
            }
            if after - lastTick >= 1_000_000_000 {
                lastTick = after
                progress("[setup \(format(seconds(since: start), 1))s] ready=\(readyCount)/\(total) pending=\(pendingSetup) errors=\(stats.connectErrors) server_rss=\(ProcessSampler.memoryKiB(options.serverPID))kB")
            }
        }
        timeline.setupSeconds = seconds(since: start)
        // Expected deliveries count only viewers that are really there.
        viewersPerTicket = [Int](repeating: 0, count: ticketNames.count)
        for c in connections[0..<viewers] where c.state == .ready { viewersPerTicket[c.ticket] += 1 }
        progress("setup done in \(format(timeline.setupSeconds, 2))s: \(readyCount)/\(total) ready, errors=\(stats.connectErrors)")
    }

    /// Publishes (or, with no publishers, holds) for warm-up + duration, then drains.
    func run(timeline: inout Timeline) {
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: 4096)
        defer { events.deallocate() }
        let holding = publishers.isEmpty
        if options.pause > 0 {
            progress("pausing \(format(options.pause, 1))s before publishing")
            let until = monotonicNanos() + UInt64(options.pause * 1e9)
            while monotonicNanos() < until { poll(events, max: 4096, timeoutMillis: 50) }
        }
        let start = monotonicNanos()
        measureStart = start + (holding ? 0 : UInt64(options.warmup * 1e9))
        measureEnd = measureStart + UInt64(options.duration * 1e9)
        let drainDeadline = measureEnd + UInt64(options.drain * 1e9)
        let ackMode = options.windowMode == .ack
        timeline.cpu = CPUWindow(serverPID: options.serverPID)
        var phase = 0
        publishing = !holding
        for (p, pb) in publishers.enumerated() {
            pb.nextDue = start + (pb.interval > 0 ? pb.interval * UInt64(p) / UInt64(publishers.count) : 0)
            pb.nextTelemetryDue = start + (pb.telemetryInterval > 0 ? pb.telemetryInterval * UInt64(p) / UInt64(publishers.count) : 0)
            pb.dirty = true
        }
        var lastTick = start, lastWindowCheck = start, lastDeliveries = 0, lastNotes = 0
        var lastServerCPU = ProcessSampler.cpuSeconds(options.serverPID), lastSelfCPU = ProcessSampler.selfCPUSeconds()
        var drainSeen = 0, drainProgress: UInt64 = 0
        while true {
            var t = monotonicNanos()
            if phase == 0 && t >= measureStart { phase = 1; timeline.cpu.start() }
            if phase == 1 && t >= measureEnd {
                phase = 2
                timeline.cpu.stop()
                publishing = false
                drainProgress = t
            }
            if phase == 2 {
                if holding { break }
                let answered = publishers.reduce(UInt64(0)) { $0 + $1.acked }
                // Agents get no result for chat: only deliveries count there.
                let answersDue = publishers.first.map { connections[$0.connection].role == .agent } == true ? 0 : UInt64(stats.notesSent)
                if stats.deliveriesTotal + stats.gaps >= stats.expectedDeliveries && answered >= answersDue {
                    timeline.drainEnd = "complete"
                    break
                }
                let mark = stats.deliveriesTotal + Int(answered)
                if mark != drainSeen { drainSeen = mark; drainProgress = t }
                if t - drainProgress > UInt64(options.drainIdle * 1e9) { timeline.drainEnd = "idle"; break }
                if t >= drainDeadline { timeline.drainEnd = "max"; break }
            }
            var timeout: Int32 = 100
            if publishing {
                for pb in publishers {
                    if pb.dirty || (pb.interval > 0 && pb.nextDue <= t) { pump(pb, t) }
                    if pb.telemetryInterval > 0 { pumpTelemetry(pb, t) }
                    if pb.interval > 0 || pb.telemetryInterval > 0 { timeout = 1 }
                }
            }
            let until = phase == 2 ? drainDeadline : (phase == 1 ? measureEnd : measureStart)
            if until > t && (until - t) / 1_000_000 < UInt64(timeout) { timeout = Int32((until - t) / 1_000_000) + 1 }
            poll(events, max: 4096, timeoutMillis: timeout)
            t = monotonicNanos()
            if publishing { for pb in publishers where pb.dirty { pump(pb, t) } }
            if !ackMode && !holding && t - lastWindowCheck > 100_000_000 {
                lastWindowCheck = t
                let limit = UInt64(options.deliverTimeout * 1e9)
                for pb in publishers {
                    var moved = false
                    let w = UInt64(pb.remaining.count)
                    while pb.base <= pb.sent && t > pb.sentAt[Int(pb.base % w)] && t - pb.sentAt[Int(pb.base % w)] > limit {
                        stats.windowTimeouts += 1
                        pb.remaining[Int(pb.base % w)] = 0
                        pb.base += 1
                        moved = true
                    }
                    if moved { pb.advance(); pb.dirty = true }
                }
            }
            if t - lastTick >= 1_000_000_000 {
                let dt = Double(t - lastTick) / 1e9
                let serverCPU = ProcessSampler.cpuSeconds(options.serverPID), selfCPU = ProcessSampler.selfCPUSeconds()
                let scpu = options.serverPID > 0 ? "\(Int(100 * (serverCPU - lastServerCPU) / dt))%" : "-"
                if holding {
                    progress("[\(format(seconds(since: start), 1))s] holding \(readyCount) connections server_cpu=\(scpu) rss=\(ProcessSampler.memoryKiB(options.serverPID))kB pings=\(stats.pings)")
                } else {
                    progress("[\(format(seconds(since: start), 1))s] deliveries/s=\(Int(Double(stats.deliveriesTotal - lastDeliveries) / dt)) notes/s=\(Int(Double(stats.notesSent - lastNotes) / dt)) cpu: server=\(scpu) bench=\(Int(100 * (selfCPU - lastSelfCPU) / dt))% gaps=\(stats.gaps) errors=\(stats.errorsReceived) conns=\(readyCount)")
                }
                lastTick = t
                lastDeliveries = stats.deliveriesTotal
                lastNotes = stats.notesSent
                lastServerCPU = serverCPU
                lastSelfCPU = selfCPU
            }
        }
        if phase < 2 { timeline.cpu.stop(); measureEnd = monotonicNanos() }
        timeline.measuredSeconds = Double(measureEnd - measureStart) / 1e9
        timeline.drainSeconds = holding ? 0 : max(0, Double(monotonicNanos() - measureEnd) / 1e9)
    }

    /// Connections with a full handshake per second: each probe connects,
    /// (TLS,) upgrades (and signs in with --connect-hello), says close, and
    /// is reset once the server answers, so no TIME_WAIT piles up.
    func runConnect(timeline: inout Timeline) {
        let slots = options.concurrency * 4 + 64
        makeSlots(slots)
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: 4096)
        defer { events.deallocate() }
        let start = monotonicNanos()
        measureStart = start
        measureEnd = start + UInt64(options.duration * 1e9)
        timeline.cpu = CPUWindow(serverPID: options.serverPID)
        timeline.cpu.start()
        var spread = 0
        var lastTick = start, lastCount = 0
        var stopped = false
        while true {
            let t = monotonicNanos()
            let opening = t < measureEnd && stats.connectStarted < options.maxConnects
            if !opening && !stopped { stopped = true; timeline.cpu.stop() }
            var inFlight = 0
            for c in connections {
                switch c.state {
                case .ready:
                    stats.connectsInWindow += 1
                    sendClose(c)
                    if c.state == .ready { c.state = .closing; c.startedNanos = t; closingCount += 1 }
                case .closing:
                    if t - c.startedNanos > 2_000_000_000 { closeConnection(c, asError: false, reset: true) }
                case .dead:
                    c.state = .free
                case .free:
                    break
                default:
                    if t - c.startedNanos > UInt64(options.handshakeTimeout * 1e9) {
                        stats.setupTimeouts += 1
                        closeConnection(c, asError: true, reset: true)
                        c.state = .free
                    } else {
                        inFlight += 1
                    }
                }
            }
            if opening {
                for c in connections where c.state == .free && inFlight < options.concurrency && stats.connectStarted < options.maxConnects {
                    if open(c, role: .probe, ticket: 0, spread: spread) { inFlight += 1 } else { c.state = .free }
                    spread += 1
                }
            } else if inFlight == 0 && closingCount == 0 {
                break
            }
            if !opening && t > measureEnd + UInt64(options.handshakeTimeout * 1e9) { break }
            poll(events, max: 4096, timeoutMillis: 5)
            let after = monotonicNanos()
            if after - lastTick >= 1_000_000_000 {
                progress("[\(format(seconds(since: start), 1))s] connects/s=\(Int(Double(stats.connectsInWindow - lastCount) * 1e9 / Double(after - lastTick))) in_flight=\(inFlight) errors=\(stats.connectErrors + stats.handshakeErrors)")
                lastTick = after
                lastCount = stats.connectsInWindow
            }
        }
        if !stopped { timeline.cpu.stop() }
        timeline.measuredSeconds = Double(measureEnd - measureStart) / 1e9
    }

    func closeAll() {
        for c in connections where c.isAlive { closeConnection(c, asError: false) }
    }

    func progress(_ line: String) {
        if !options.quiet { printError(line) }
    }
}

func format(_ v: Double, _ decimals: Int) -> String {
    guard v.isFinite else { return "null" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let r = (abs(v) * scale).rounded() / scale
    var s = String(Int(r))
    if decimals > 0 {
        var frac = Int(((r - Double(Int(r))) * scale).rounded())
        if frac >= Int(scale) { frac = 0; s = String(Int(r) + 1) }
        var f = String(frac)
        while f.count < decimals { f = "0" + f }
        s += "." + f
    }
    return v < 0 && r != 0 ? "-" + s : s
}
