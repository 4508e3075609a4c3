import PeekCore

/// SLA clocks and the engine's timers.
extension Engine {
    /// On start: re-arm every pending deadline from the store. Anything that
    /// fell due while the server was down is due now, so it fires on the
    /// first pass and is pushed like any other breach.
    /// A failed read is tried again every second, before any job runs:
    /// deadlines that never fire would be worse than a late start.
    func recoverTimers() {
        while !stopped.load(ordering: .relaxed) {
            var failure: (any Error)?
            runBatch(ifUncommitted: .discard) {
                do {
                    let sessions = try store.pendingSessions()
                    let tickets = try store.ticketsWithOpenSLA()
                    for s in sessions { timers.schedule(.consentExpiry(session: s.id), at: s.expiresAt) }
                    for t in tickets {
                        if let next = SLAClock.nextDeadline(t) { timers.schedule(.slaDeadline(ticket: t.id), at: next.dueAt) }
                    }
                } catch { failure = error }
            }
            guard let failure else { return }
            log(.error, "read_failed", "the pending deadlines could not be read; trying again in a second", error: "\(failure)")
            doorbell.wait(timeoutMillis: 1000)
            doorbell.ring()   // what rang meanwhile is taken by the main loop at once
        }
    }

    func runDueTimers() {
        let at = now
        var due: [TimerHeap.Entry] = []
        while let e = timers.popDue(now: at) { due.append(e) }
        let tick = clock.monotonicMillis() >= nextSLATickMillis
        guard !due.isEmpty || tick else { return }
        let committed = runBatch {
            for e in due {
                switch e.kind {
                case .consentExpiry(let id): expireSession(id)
                case .slaDeadline(let id): checkBreaches(id, at: at)
                case .telemetryFlush(let asset): flushTelemetry(asset)
                case .shellCheck(let id): checkShell(id)
                case .summaryDue(let id): summaryTimerFired(id)
                case .queueSLA(let id): queueSLATimer(id, at: at)
                case .queueDay(let tenant): queueDayTimer(tenant, at: at)
                }
            }
            if tick {
                nextSLATickMillis = clock.monotonicMillis() + Int64(config.slaTickSeconds) * 1000
                publishSLATicks(at: at)
                pruneIdempotency(at: at)
            }
        }
        // A batch that did not commit (the database refused or rolled it
        // back) took its timers with it: a breach or consent expiry popped
        // here would otherwise never fire. Each handler checks the state
        // again, so a second run is harmless.
        if !committed {
            for e in due { timers.schedule(e.kind, at: at + 1000) }
        }
    }

    /// `sla.tick` goes only to watched tickets: the cost is per viewer-ed
    /// ticket per tick, never a scan of every ticket.
    private func publishSLATicks(at: Int64) {
        for ticketID in viewers.keys {
            // Best effort: a tick is a display refresh; the next one comes
            // within `slaTickSeconds`, and breaches are recorded by timers.
            guard let t = store.bestEffort({ () throws(StoreError) in try store.ticket(ticketID) }) ?? nil else { continue }
            var w = JSONWriter()
            Wire.sla(t, nowMillis: at, into: &w)
            publishEphemeral(ticket: ticketID, kind: .slaTick, data: w.bytes)
        }
    }

    private func pruneIdempotency(at: Int64) {
        guard at - lastPruneMillis > 60_000 else { return }
        lastPruneMillis = at
        // Best effort: answers past the window are never read (every read
        // passes `notBefore`); a failed prune only keeps rows a minute longer.
        _ = store.bestEffort { () throws(StoreError) in try store.pruneCommandAnswers(before: at - Self.idempotencyWindowMillis) }
    }

    /// When a clock of `seconds` started at `from` falls due: wall-clock
    /// seconds, or working seconds when the tenant has business hours.
    func dueTime(tenant: String, from: Int64, seconds: Int) throws(StoreError) -> Int64 {
        if let hours = try store.businessHours(tenant: tenant) { return hours.adding(seconds: seconds, to: from) }
        return from + Int64(seconds) * 1000
    }

    /// Moves a ticket's running clocks from one target to another (a
    /// priority change, a new policy). A clock that ran keeps the pauses it
    /// already had: its due time shifts by the change of target; without an
    /// old target it is measured from creation. Breached targets and a
    /// response clock stopped by the first response stay as they are.
    func retarget(_ t: inout Ticket, from old: SLATarget?, to new: SLATarget) throws(StoreError) {
        if !t.sla.responseBreached && t.firstResponseAt == nil {
            if let due = t.sla.responseDue, let old {
                t.sla.responseDue = try shiftedDue(tenant: t.tenant, due: due, createdAt: t.createdAt, newTarget: new.response, delta: new.response - old.response)
            } else { t.sla.responseDue = try dueTime(tenant: t.tenant, from: t.createdAt, seconds: new.response) }
        }
        if !t.sla.resolutionBreached {
            if let due = t.sla.resolutionDue, let old {
                t.sla.resolutionDue = try shiftedDue(tenant: t.tenant, due: due, createdAt: t.createdAt, newTarget: new.resolution, delta: new.resolution - old.resolution)
            } else { t.sla.resolutionDue = try dueTime(tenant: t.tenant, from: t.createdAt, seconds: new.resolution) }
        }
    }

    /// A due time moved by a change of target (`delta` seconds, either way).
    func shiftedDue(tenant: String, due: Int64, createdAt: Int64, newTarget: Int, delta: Int) throws(StoreError) -> Int64 {
        guard let hours = try store.businessHours(tenant: tenant) else { return due + Int64(delta) * 1000 }
        // Working time cannot be walked backwards cheaply: re-measure from
        // creation when the target shrinks.
        return delta >= 0 ? hours.adding(seconds: delta, to: due) : hours.adding(seconds: newTarget, to: createdAt)
    }

    /// Records each target's breach exactly once: the flag is stored with
    /// the delta, so neither a second timer nor a restart repeats it.
    func checkBreaches(_ ticketID: String, at: Int64) {
        let found: Ticket?
        do { found = try store.ticket(ticketID) } catch {
            // Dropping the timer would leave the breach unrecorded for good.
            log(.error, "read_failed", "the ticket could not be read for its SLA check; trying again in a second", ticket: ticketID, error: "\(error)")
            timers.schedule(.slaDeadline(ticket: ticketID), at: at + 1000)
            return
        }
        guard var t = found else { return }
        let mark = outputs.count
        do {
            try store.savepoint()
            var changed = false
            if let due = t.sla.responseDue, !t.sla.responseBreached, t.firstResponseAt == nil, !t.status.stopsResolutionClock, due <= at {
                t.sla.responseBreached = true
                try recordBreach(&t, target: "response", due: due, at: at)
                changed = true
            }
            if let due = t.sla.resolutionDue, !t.sla.resolutionBreached, t.sla.pausedSince == nil, !t.status.stopsResolutionClock, due <= at {
                t.sla.resolutionBreached = true
                try recordBreach(&t, target: "resolution", due: due, at: at)
                changed = true
            }
            if changed { try store.updateTicket(t) }
            try store.releaseSavepoint()
        } catch {
            rollbackCommandOutputs(to: mark)
            log(.error, "sla_check_failed", "SLA check of \(ticketID) failed; trying again in a second", ticket: ticketID, error: "\(error)")
            // `t` already says breached; the store does not. Check again.
            timers.schedule(.slaDeadline(ticket: ticketID), at: at + 1000)
            return
        }
        if let next = SLAClock.nextDeadline(t) { timers.schedule(.slaDeadline(ticket: t.id), at: max(next.dueAt, at + 1)) }
    }

    private func recordBreach(_ t: inout Ticket, target: String, due: Int64, at: Int64) throws(StoreError) {
        var w = JSONWriter()
        w.beginObject(); w.field("target", target); w.key("due_at"); Wire.time(due, into: &w); w.endObject()
        try appendDelta(&t, kind: .slaBreached, data: w.bytes, at: at)
        try appendSystemMessage(&t, "The \(target) SLA was breached (due \(Timestamp.format(millis: due))).", at: at)
    }
}
