#if canImport(Glibc)
import Glibc
#endif
import PeekCore

/// The end of a run: a summary for people, then one JSON object on the
/// last line for scripts (bench.sh builds its table from it).
struct BenchReport {
    let client: BenchClient
    let timeline: BenchClient.Timeline

    func print() {
        let o = client.options, s = client.stats, t = timeline
        let measured = max(1e-9, t.measuredSeconds)
        let ready = client.connections.filter { $0.counted }.count
        let stillOpen = client.connections.filter { $0.state == .ready }.count
        var perConnection = -1.0
        if o.serverPID > 0, ready > 0, t.serverRSSBefore >= 0 {
            let after = o.scenario == .idle ? t.serverRSSEnd : t.serverRSSReady
            if after >= 0 { perConnection = Double(after - t.serverRSSBefore) * 1024 / Double(ready) }
        }
        let deliveriesPerSecond = Double(s.deliveriesInWindow) / measured
        let notesPerSecond = Double(s.notesInWindow) / measured
        let acksPerSecond = Double(s.resultsInWindow) / measured
        let undelivered = max(0, s.expectedDeliveries - s.deliveriesTotal)
        let lost = t.drainEnd == "max" ? s.gaps : undelivered
        let us = { (h: Histogram, p: Double) in Double(h.percentile(p)) / 1e3 }
        var lines: [String] = []
        lines.append("== peek-bench \(o.scenario.rawValue): \(o.url)")
        if o.scenario == .connect {
            lines.append("handshakes: \(s.connectsInWindow) in \(format(measured, 1))s = \(format(Double(s.connectsInWindow) / measured, 0))/s\(o.connectHello ? " (with hello/welcome)" : ""); errors: connect=\(s.connectErrors) tls/upgrade=\(s.handshakeErrors) timeouts=\(s.setupTimeouts)")
            lines.append("setup latency ms: p50=\(format(Double(client.setupLatency.percentile(50)) / 1e6, 2)) p99=\(format(Double(client.setupLatency.percentile(99)) / 1e6, 2))")
        } else {
            lines.append("connections: \(o.conns) viewers + \(client.publishers.count) \(o.scenario == .agents ? "agents" : "publishers"), \(ready) ready in \(format(t.setupSeconds, 2))s, \(stillOpen) open at the end; errors: connect=\(s.connectErrors) handshake=\(s.handshakeErrors) auth=\(s.authErrors) subscribe=\(s.subscribeErrors) timeouts=\(s.setupTimeouts) closed_by_server=\(s.closedByServer)")
        }
        if o.serverPID > 0 {
            lines.append("server rss: before=\(t.serverRSSBefore)kB ready=\(t.serverRSSReady)kB end=\(t.serverRSSEnd)kB hwm=\(t.serverHWM)kB => \(format(perConnection, 0)) bytes/connection")
        }
        lines.append("cpu over \(format(measured, 1))s: server=\(format(t.cpu.serverPct, 0))% peek-bench=\(format(t.cpu.selfPct, 0))% other (incl. softirq)=\(format(t.cpu.otherPct, 0))% (100% = one core)")
        if o.scenario != .idle && o.scenario != .connect {
            lines.append("notes: \(s.notesSent) sent, \(format(notesPerSecond, 0))/s in window; results ok=\(s.results) failed=\(s.resultsFailed), acknowledged \(format(acksPerSecond, 0))/s in window; errors=\(s.errorsReceived)")
            lines.append("deliveries: \(format(deliveriesPerSecond, 0))/s in window (\(s.deliveriesInWindow)), total \(s.deliveriesTotal) of \(s.expectedDeliveries) expected; lost=\(lost) gaps=\(s.gaps) dups=\(s.duplicates) seq_gaps=\(s.seqGaps) seq_dups=\(s.seqDuplicates) unexpected=\(s.unexpected) window_timeouts=\(s.windowTimeouts)")
            lines.append("delivery latency us: p50=\(format(us(client.latency, 50), 0)) p99=\(format(us(client.latency, 99), 0)) p99.9=\(format(us(client.latency, 99.9), 0)) max=\(format(Double(client.latency.max) / 1e3, 0)) (n=\(client.latency.count))")
            lines.append("acknowledge latency us: p50=\(format(us(client.ackLatency, 50), 0)) p99=\(format(us(client.ackLatency, 99), 0)) p99.9=\(format(us(client.ackLatency, 99.9), 0)) (n=\(client.ackLatency.count))")
            if o.scenario == .agents { lines.append("telemetry: \(s.telemetrySent) samples sent, \(s.telemetryDeltas) asset.telemetry deltas received") }
            lines.append("drain: \(format(t.drainSeconds, 2))s, ended \(t.drainEnd); other deltas=\(s.otherDeltas) other frames=\(s.otherFrames) pings=\(s.pings)")
        }
        if let e = client.firstError { lines.append("first error frame: \(e)") }
        if t.cpu.selfPct > 85 { lines.append("WARNING: peek-bench used \(format(t.cpu.selfPct, 0))% of a core: the generator may be the limit") }
        if t.cpu.otherPct > 30 { lines.append("WARNING: other work used \(format(t.cpu.otherPct, 0))% of a core during the measurement") }

        var w = JSONWriter(capacity: 2048)
        w.beginObject()
        w.field("tool", "peek-bench")
        w.field("scenario", o.scenario.rawValue)
        w.field("url", o.url)
        w.field("tls", o.tls)
        w.field("conns", o.conns)
        w.field("tickets", client.ticketNames.count)
        w.field("publishers", client.publishers.count)
        w.key("rate"); w.double(o.scenario == .agents ? o.chatRate : o.rate)
        w.field("window", o.window)
        w.field("window_mode", o.windowMode.rawValue)
        w.field("body_size", o.bodySize)
        number(&w, "duration_s", measured, 2)
        w.field("ready", ready)
        w.field("still_open", stillOpen)
        number(&w, "setup_s", t.setupSeconds, 3)
        w.field("connect_errors", s.connectErrors)
        w.field("handshake_errors", s.handshakeErrors)
        w.field("auth_errors", s.authErrors)
        w.field("subscribe_errors", s.subscribeErrors)
        w.field("timeouts", s.setupTimeouts)
        w.field("closed_by_server", s.closedByServer)
        w.field("io_errors", s.ioErrors)
        w.field("protocol_errors", s.protocolErrors)
        number(&w, "setup_p50_ms", Double(client.setupLatency.percentile(50)) / 1e6, 3)
        number(&w, "setup_p99_ms", Double(client.setupLatency.percentile(99)) / 1e6, 3)
        w.field("server_pid", Int(o.serverPID))
        w.field("server_rss_before_kb", t.serverRSSBefore)
        w.field("server_rss_ready_kb", t.serverRSSReady)
        w.field("server_rss_end_kb", t.serverRSSEnd)
        w.field("server_hwm_kb", t.serverHWM)
        number(&w, "rss_per_conn_bytes", perConnection, 0)
        number(&w, "server_cpu_pct", t.cpu.serverPct, 1)
        number(&w, "bench_cpu_pct", t.cpu.selfPct, 1)
        number(&w, "other_cpu_pct", t.cpu.otherPct, 1)
        w.field("connects", s.connectsInWindow)
        number(&w, "connects_per_s", Double(s.connectsInWindow) / measured, 1)
        w.field("notes_sent", s.notesSent)
        number(&w, "notes_per_s", notesPerSecond, 1)
        w.field("results", s.results)
        w.field("results_failed", s.resultsFailed)
        number(&w, "acks_per_s", acksPerSecond, 1)
        number(&w, "ack_p50_us", us(client.ackLatency, 50), 1)
        number(&w, "ack_p99_us", us(client.ackLatency, 99), 1)
        number(&w, "ack_p999_us", us(client.ackLatency, 99.9), 1)
        w.field("deliveries", s.deliveriesInWindow)
        number(&w, "deliveries_per_s", deliveriesPerSecond, 1)
        w.field("deliveries_total", s.deliveriesTotal)
        w.field("expected_deliveries", s.expectedDeliveries)
        w.field("undelivered", undelivered)
        w.field("lost", lost)
        w.field("gaps", s.gaps)
        w.field("dups", s.duplicates)
        w.field("seq_gaps", s.seqGaps)
        w.field("seq_dups", s.seqDuplicates)
        w.field("unexpected", s.unexpected)
        w.field("errors_received", s.errorsReceived)
        w.field("window_timeouts", s.windowTimeouts)
        w.field("other_deltas", s.otherDeltas)
        w.field("telemetry_sent", s.telemetrySent)
        w.field("telemetry_deltas", s.telemetryDeltas)
        number(&w, "drain_s", t.drainSeconds, 2)
        w.field("drain_end", t.drainEnd)
        number(&w, "lat_p50_us", us(client.latency, 50), 1)
        number(&w, "lat_p90_us", us(client.latency, 90), 1)
        number(&w, "lat_p99_us", us(client.latency, 99), 1)
        number(&w, "lat_p999_us", us(client.latency, 99.9), 1)
        number(&w, "lat_max_us", Double(client.latency.max) / 1e3, 1)
        number(&w, "lat_mean_us", client.latency.mean / 1e3, 1)
        w.field("pings", s.pings)
        w.field("bytes_in", s.bytesIn)
        w.field("bytes_out", s.bytesOut)
        w.field("first_error", client.firstError)
        w.endObject()
        lines.append(String(decoding: w.bytes, as: UTF8.self))
        let text = lines.joined(separator: "\n") + "\n"
        _ = text.withCString { Glibc.write(1, $0, strlen($0)) }
    }

    private func number(_ w: inout JSONWriter, _ key: String, _ v: Double, _ decimals: Int) {
        w.key(key)
        if v.isFinite { w.raw(Array(format(v, decimals).utf8)) } else { w.null() }
    }
}
