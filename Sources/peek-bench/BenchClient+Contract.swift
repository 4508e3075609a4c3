#if canImport(Glibc)
import Glibc
#endif
import PeekCore

/// The contract as a client speaks it: hello -> welcome, subscribe ->
/// snapshot, command(note) -> delta to every viewer + result to the sender.
/// Every delivery is checked: the viewer's ticket, the durable `seq`
/// (exactly +1 each time), and the note counter per publisher (gaps, duplicates).
extension BenchClient {
    /// tech-1..tech-K: the technicians `--seed` creates.
    func technicianNumber(_ k: Int) -> Int {
        options.techs > 0 ? k % options.techs + 1 : k + 1
    }

    func token(forTechnician n: Int) -> String {
        if let t = tokens[n] { return t }
        let expires = Int64(time(nil)) + 6 * 3600
        let t = JWT.sign(TechnicianClaims(subject: "tech-\(n)", tenant: options.tenant, name: "Tech \(n)", expiresAt: expires),
                         secret: Array(options.secret.utf8))
        tokens[n] = t
        return t
    }

    func afterUpgrade(_ c: BenchConnection) {
        if options.scenario == .connect && !options.connectHello {
            markReady(c)
            return
        }
        c.state = .hello
        switch c.role {
        case .agent:
            return   // the server speaks first: welcome with the agent's asset
        case .publisher:
            sendText(c, "{\"type\":\"hello\",\"token\":\"\(token(forTechnician: technicianNumber(c.ticket + 7)))\"}")
        case .viewer, .probe:
            sendText(c, "{\"type\":\"hello\",\"token\":\"\(token(forTechnician: technicianNumber(c.index)))\"}")
        }
    }

    func handleMessage(_ c: BenchConnection, _ p: UnsafePointer<UInt8>, _ n: Int) {
        guard let t = JSONScan.scan(p, n) else {
            stats.protocolErrors += 1
            return
        }
        switch c.state {
        case .hello:
            if JSONScan.is(p, t.type, "welcome") {
                if options.scenario == .connect || c.role != .viewer {
                    markReady(c)
                } else {
                    c.state = .subscribing
                    sendText(c, "{\"type\":\"subscribe\",\"id\":\"s1\",\"ticket\":\"\(ticketNames[c.ticket])\"}")
                }
            } else if JSONScan.is(p, t.type, "error") {
                stats.authErrors += 1
                noteError(p, n)
                closeConnection(c, asError: true)
            } else {
                stats.otherFrames += 1
            }
        case .subscribing:
            if (JSONScan.is(p, t.type, "snapshot") || JSONScan.is(p, t.type, "subscribed")) && JSONScan.is(p, t.id, "s1") {
                if t.seq.0 >= 0 { c.lastSeq = Int(JSONScan.number(p, t.seq.0, t.seq.0 + t.seq.1).0) }
                markReady(c)
            } else if JSONScan.is(p, t.type, "error") {
                stats.subscribeErrors += 1
                noteError(p, n)
                closeConnection(c, asError: true)
            } else if JSONScan.is(p, t.type, "delta") {
                stats.otherDeltas += 1
            } else {
                stats.otherFrames += 1
            }
        case .ready, .closing:
            if JSONScan.is(p, t.type, "delta") {
                delta(c, p, n, t)
            } else if JSONScan.is(p, t.type, "result") {
                result(c, p, t, ok: JSONScan.is(p, t.ok, "true"))
            } else if JSONScan.is(p, t.type, "error") {
                stats.errorsReceived += 1
                noteError(p, n)
                if t.id.0 >= 0 { result(c, p, t, ok: false) }
            } else {
                stats.otherFrames += 1
            }
        default:
            stats.otherFrames += 1
        }
    }

    private func noteError(_ p: UnsafePointer<UInt8>, _ n: Int) {
        guard firstError == nil else { return }
        firstError = String(decoding: UnsafeBufferPointer(start: p, count: min(n, 300)), as: UTF8.self)
    }

    private func delta(_ c: BenchConnection, _ p: UnsafePointer<UInt8>, _ n: Int, _ t: JSONScan) {
        guard c.role == .viewer else {
            stats.unexpected += 1
            return
        }
        let name = ticketBytes[c.ticket]
        guard t.ticket.0 >= 0, t.ticket.1 == name.count,
              name.withUnsafeBufferPointer({ memcmp(p + t.ticket.0, $0.baseAddress!, name.count) == 0 }) else {
            stats.unexpected += 1
            return
        }
        guard t.seq.0 >= 0 else {
            // Ephemeral: presence, telemetry, SLA ticks.
            if options.scenario == .agents, Self.find(p, n, "\"asset.telemetry\"") != nil { stats.telemetryDeltas += 1 } else { stats.otherDeltas += 1 }
            return
        }
        let seq = Int(JSONScan.number(p, t.seq.0, t.seq.0 + t.seq.1).0)
        if c.lastSeq >= 0 {
            if seq <= c.lastSeq {
                stats.seqDuplicates += 1
                return
            }
            if seq > c.lastSeq + 1 { stats.seqGaps += seq - c.lastSeq - 1 }
        }
        c.lastSeq = seq
        guard let m = JSONScan.marker(p, t.stop, n) ?? JSONScan.marker(p, 0, t.stop) else {
            stats.otherDeltas += 1
            return
        }
        // pkb:<publisher>:<note>:<counter>:<sent ns>:
        var (publisher, i) = JSONScan.number(p, m + 4, n)
        guard i < n, p[i] == UInt8(ascii: ":") else { stats.unexpected += 1; return }
        let g: UInt64
        (g, i) = JSONScan.number(p, i + 1, n)
        guard i < n, p[i] == UInt8(ascii: ":") else { stats.unexpected += 1; return }
        let counter: UInt64
        (counter, i) = JSONScan.number(p, i + 1, n)
        guard i < n, p[i] == UInt8(ascii: ":") else { stats.unexpected += 1; return }
        let sentAt: UInt64
        (sentAt, i) = JSONScan.number(p, i + 1, n)
        let pubs = publishers.count
        guard Int(publisher) < pubs else { stats.unexpected += 1; return }
        let slot: Int
        if ticketNames.count >= pubs {
            guard c.ticket % pubs == Int(publisher) else { stats.unexpected += 1; return }
            slot = 0
        } else {
            guard Int(publisher) % ticketNames.count == c.ticket else { stats.unexpected += 1; return }
            slot = Int(publisher) / ticketNames.count
        }
        let k = c.index * slotsPerViewer + slot
        let last = UInt64(lastCounter[k])
        if counter <= last {
            stats.duplicates += 1
            return
        }
        if counter > last + 1 { stats.gaps += Int(counter - last - 1) }
        lastCounter[k] = UInt32(truncatingIfNeeded: counter)
        stats.deliveriesTotal += 1
        if now >= measureStart && now < measureEnd {
            stats.deliveriesInWindow += 1
            latency.add(now > sentAt ? now - sentAt : 0)
        }
        let pb = publishers[Int(publisher)]
        if options.windowMode == .delivered && g >= pb.base && g <= pb.sent {
            let w = Int(g % UInt64(pb.remaining.count))
            pb.remaining[w] -= 1
            if pb.remaining[w] <= 0 && g == pb.base {
                pb.advance()
                pb.dirty = true
            }
        }
    }

    /// A `result` or an `error` answering a publisher's command id `c<run>.<publisher>.<note>`.
    private func result(_ c: BenchConnection, _ p: UnsafePointer<UInt8>, _ t: JSONScan, ok: Bool) {
        if ok { stats.results += 1 } else { stats.resultsFailed += 1 }
        guard c.role == .publisher, c.ticket < publishers.count else { return }
        let pb = publishers[c.ticket]
        pb.acked += 1
        if !ok { pb.failed += 1 }
        // The note number is the id's last dot-separated part.
        var dot = t.id.0 + t.id.1 - 1
        while dot > t.id.0, p[dot] != UInt8(ascii: ".") { dot -= 1 }
        let g = JSONScan.number(p, dot + 1, t.id.0 + t.id.1).0
        guard g >= 1, g <= pb.sent, pb.sent - g < UInt64(pb.sentAt.count) else { return }
        let w = Int(g % UInt64(pb.sentAt.count))
        if ok && now >= measureStart && now < measureEnd {
            stats.resultsInWindow += 1
            ackLatency.add(now > pb.sentAt[w] ? now - pb.sentAt[w] : 0)
        }
        if options.windowMode == .ack {
            pb.dirty = true
        } else if !ok && g >= pb.base {
            // A refused note reaches nobody: free its slot now rather than at the deliver timeout.
            stats.expectedDeliveries -= Int(max(0, pb.remaining[w]))
            pb.remaining[w] = 0
            pb.advance()
            pb.dirty = true
        }
    }

    // MARK: Publishing

    /// Sends as many notes as the window and the rate allow, as one write.
    func pump(_ pb: Publisher, _ now: UInt64) {
        pb.dirty = false
        let c = connections[pb.connection]
        guard publishing, c.state == .ready else { return }
        let ackMode = options.windowMode == .ack
        let window = UInt64(options.window)
        let rate = pb.interval > 0
        if rate && now > pb.nextDue + 1_000_000_000 {
            // Hopelessly behind (the server pushed back): restart the schedule rather than burst.
            stats.rateResets += 1
            pb.nextDue = now
        }
        let frameRoom = 256 + options.bodySize + 14
        var used = 0
        var k = 0
        while k < 256 && pb.outstanding(ackMode: ackMode) < window {
            if pb.sent >= UInt64(options.maxNotes) { break }
            if rate && pb.nextDue > now { break }
            if used + frameRoom > batchCapacity { break }
            let ti = pb.next % pb.tickets.count
            let ticket = pb.tickets[ti]
            pb.next += 1
            pb.counters[ti] &+= 1
            pb.sent += 1
            let g = pb.sent
            let sentAt = monotonicNanos()
            ensureScratch(frameRoom)
            var w = ByteWriter(scratch)
            if c.role == .agent {
                w.append("{\"type\":\"chat\",\"ticket\":\"")
                w.append(ticketBytes[ticket])
                w.append("\",\"body\":\"")
            } else {
                w.append("{\"type\":\"command\",\"id\":\"c")
                w.append(decimal: UInt64(runID))
                w.append(".")
                w.append(decimal: UInt64(pb.index))
                w.append(".")
                w.append(decimal: g)
                w.append("\",\"ticket\":\"")
                w.append(ticketBytes[ticket])
                w.append("\",\"op\":\"note\",\"args\":{\"body\":\"")
            }
            let bodyStart = w.count
            w.append("pkb:")
            w.append(decimal: UInt64(pb.index))
            w.append(":")
            w.append(decimal: g)
            w.append(":")
            w.append(decimal: UInt64(pb.counters[ti]))
            w.append(":")
            w.append(decimal: sentAt)
            w.append(":")
            w.append(byte: UInt8(ascii: "x"), repeating: options.bodySize - (w.count - bodyStart))
            w.append(c.role == .agent ? "\"}" : "\"}}")
            used += encodeFrame(into: batch + used, opcode: 0x1, scratch, w.count)
            let slot = Int(g % window)
            let viewers = viewersPerTicket[ticket]
            pb.remaining[slot] = Int32(viewers)
            pb.sentAt[slot] = sentAt
            stats.expectedDeliveries += viewers
            stats.notesSent += 1
            if sentAt >= measureStart && sentAt < measureEnd { stats.notesInWindow += 1 }
            if rate { pb.nextDue += pb.interval }
            k += 1
        }
        if !ackMode { pb.advance() }
        if used > 0 { write(c, batch, used) }
    }

    /// An agent's telemetry sample, when due.
    func pumpTelemetry(_ pb: Publisher, _ now: UInt64) {
        guard publishing, pb.telemetryInterval > 0, pb.nextTelemetryDue <= now else { return }
        let c = connections[pb.connection]
        guard c.state == .ready else { return }
        if now > pb.nextTelemetryDue + 1_000_000_000 { pb.nextTelemetryDue = now }
        pb.nextTelemetryDue += pb.telemetryInterval
        let cpu = Int(random.next() % 100)
        sendText(c, "{\"type\":\"telemetry\",\"cpu\":\(cpu),\"ram\":\(40 + cpu / 4),\"disk\":71}")
        stats.telemetrySent += 1
    }
}
