/// SLA arithmetic, pure. Policy: clocks start at ticket creation; the first
/// response (`first_response_at`) stops the response clock; `resolved` and
/// `closed` stop the resolution clock; `waiting_on_customer` pauses the
/// resolution clock (its due time moves later by the paused span on resume).
/// The response clock never pauses: the customer is waiting for a first word.
public enum SLAClock {
    public struct Clock: Equatable, Sendable {
        public var dueAt: Int64
        public var remainingSeconds: Int
        public var breached: Bool
        public var paused: Bool
    }

    public static func evaluate(_ t: Ticket, nowMillis: Int64) -> (response: Clock?, resolution: Clock?) {
        var response: Clock?
        if let due = t.sla.responseDue, t.firstResponseAt == nil, !t.status.stopsResolutionClock {
            response = Clock(dueAt: due, remainingSeconds: seconds(due - nowMillis),
                             breached: t.sla.responseBreached || nowMillis >= due, paused: false)
        }
        var resolution: Clock?
        if let due = t.sla.resolutionDue, !t.status.stopsResolutionClock {
            if let since = t.sla.pausedSince {
                // Frozen: remaining is what was left when the pause began.
                resolution = Clock(dueAt: due, remainingSeconds: seconds(due - since),
                                   breached: t.sla.resolutionBreached, paused: true)
            } else {
                resolution = Clock(dueAt: due, remainingSeconds: seconds(due - nowMillis),
                                   breached: t.sla.resolutionBreached || nowMillis >= due, paused: false)
            }
        }
        return (response, resolution)
    }

    /// A target whatever its clock's state: when it was due, and whether it
    /// was missed. A stopped clock is null in `evaluate`, which cannot tell
    /// "answered in time" from "answered late"; this can.
    public struct Target: Equatable, Sendable {
        public var dueAt: Int64
        public var breached: Bool
    }

    public static func targets(_ t: Ticket, nowMillis: Int64) -> (response: Target?, resolution: Target?) {
        let clocks = evaluate(t, nowMillis: nowMillis)
        let response = t.sla.responseDue.map { due in
            // Stopped by the first response: late if it came after the due time.
            Target(dueAt: due, breached: clocks.response?.breached ?? (t.sla.responseBreached || (t.firstResponseAt ?? 0) > due))
        }
        // Stopped by resolution: only the recorded breach says it was missed
        // (the moment of resolution is not kept).
        let resolution = t.sla.resolutionDue.map { due in
            Target(dueAt: due, breached: clocks.resolution?.breached ?? t.sla.resolutionBreached)
        }
        return (response, resolution)
    }

    /// Whole seconds, rounded toward negative infinity so a clock reads -1
    /// as soon as it is late, never "0 remaining" while breached.
    static func seconds(_ millis: Int64) -> Int {
        Int(millis >= 0 ? millis / 1000 : -((-millis + 999) / 1000))
    }

    /// The next moment a breach can fall due for this ticket, if any.
    public static func nextDeadline(_ t: Ticket) -> (target: String, dueAt: Int64)? {
        var best: (String, Int64)?
        if let due = t.sla.responseDue, !t.sla.responseBreached, t.firstResponseAt == nil, !t.status.stopsResolutionClock {
            best = ("response", due)
        }
        if let due = t.sla.resolutionDue, !t.sla.resolutionBreached, t.sla.pausedSince == nil, !t.status.stopsResolutionClock {
            if best == nil || due < best!.1 { best = ("resolution", due) }
        }
        return best
    }
}
