/// The live ticket queue of one tenant, pure: which tickets are in it, how
/// each stands against its SLA, and the four tile counts, kept by adding
/// and subtracting one ticket's share at each change, never by a scan.
///
/// The engine owns one per tenant while someone watches that tenant's
/// queue; it feeds every committed change of a ticket through `upsert`,
/// SLA thresholds through `reclassify`, and local midnight through
/// `rollDay`. Each returns what changed, so the caller can tell which
/// views the row enters, changes in or leaves. The socket side (who
/// watches which view, the encoded frames) lives in the engine.
///
/// Membership: every ticket that is not `resolved` or `closed`, plus the
/// ones resolved since the tenant's local midnight (for the "resolved
/// today" view); the rest of a tenant's history is never held.
public struct QueueIndex: Sendable {
    /// How a ticket stands against its SLA: ordered, worst last.
    public enum SLAState: Int, Sendable, Comparable {
        /// No clock is running (none set, paused, or stopped).
        case none
        /// A clock is running with at least a quarter of its target left.
        case ok
        /// A clock is running with less than a quarter of its target left.
        case breaching
        /// A running clock is past due.
        case breached

        public static func < (a: SLAState, b: SLAState) -> Bool { a.rawValue < b.rawValue }

        public var name: String {
            switch self {
            case .none: "none"
            case .ok: "ok"
            case .breaching: "breaching"
            case .breached: "breached"
            }
        }
    }

    /// The most recent message of a ticket, as the row previews it.
    public struct LastMessage: Equatable, Sendable {
        public var seq: Int
        public var channel: Channel
        public var preview: String
        public var at: Int64
        public init(seq: Int, channel: Channel, preview: String, at: Int64) {
            self.seq = seq; self.channel = channel; self.preview = preview; self.at = at
        }

        /// Characters of a body a row shows; the Peek has the rest.
        public static let previewCharacters = 140

        public init(_ m: Message) {
            // Whitespace runs collapse to one space: a preview is one line.
            var out = ""
            var count = 0
            var space = false
            for ch in m.body {
                if ch.isWhitespace { space = !out.isEmpty; continue }
                if space { out.append(" "); count += 1; space = false }
                if count >= Self.previewCharacters { out.append("…"); break }
                out.append(ch)
                count += 1
            }
            self.init(seq: m.seq, channel: m.channel, preview: out, at: m.at)
        }
    }

    public struct Entry: Equatable, Sendable {
        public var ticket: Ticket
        /// When anything about the ticket last changed (its last durable delta).
        public var updatedAt: Int64
        public var last: LastMessage?
        /// The seq of the most recent customer message: the page marks the
        /// row unread when it is past what the technician last opened.
        public var lastCustomerSeq: Int?
        /// When it was resolved, while that was today (local): it then
        /// stays in the "resolved today" view until midnight.
        public var resolvedAt: Int64?
        /// Derived by the index from `ticket` and the policy.
        public internal(set) var sla: SLAState = .none

        public init(ticket: Ticket, updatedAt: Int64, last: LastMessage?, lastCustomerSeq: Int?, resolvedAt: Int64? = nil) {
            self.ticket = ticket; self.updatedAt = updatedAt; self.last = last
            self.lastCustomerSeq = lastCustomerSeq; self.resolvedAt = resolvedAt
        }

        public var isOpen: Bool { !ticket.status.stopsResolutionClock }
    }

    public struct Tiles: Equatable, Sendable {
        public var open = 0
        public var breaching = 0
        public var breached = 0
        public var resolvedToday = 0
        public init(open: Int = 0, breaching: Int = 0, breached: Int = 0, resolvedToday: Int = 0) {
            self.open = open; self.breaching = breaching; self.breached = breached; self.resolvedToday = resolvedToday
        }
    }

    /// One ticket's change: what it was and what it is in the index (nil: not in it).
    public struct Change: Equatable, Sendable {
        public var old: Entry?
        public var new: Entry?
    }

    public private(set) var entries: [String: Entry] = [:]
    public private(set) var tiles = Tiles()
    /// SLA targets per priority, for the quarter-left threshold.
    public private(set) var targets: [Priority: SLATarget]
    /// The tenant's offset from UTC (its business hours'), for "today".
    public private(set) var utcOffsetMinutes: Int
    /// The start of the tenant's current day, Unix milliseconds.
    public private(set) var dayStart: Int64

    public init(targets: [Priority: SLATarget], utcOffsetMinutes: Int, now: Int64) {
        self.targets = targets
        self.utcOffsetMinutes = utcOffsetMinutes
        dayStart = Self.dayStart(of: now, utcOffsetMinutes: utcOffsetMinutes)
    }

    public var count: Int { entries.count }

    public static let dayMillis: Int64 = 86_400_000

    /// The start of the local day holding `millis`, in Unix milliseconds.
    public static func dayStart(of millis: Int64, utcOffsetMinutes: Int) -> Int64 {
        let offset = Int64(utcOffsetMinutes) * 60_000
        let local = millis + offset
        let floor = local >= 0 ? local / dayMillis : -((-local + dayMillis - 1) / dayMillis)
        return floor * dayMillis - offset
    }

    /// The start of the next local day: when `rollDay` must run.
    public var nextDayStart: Int64 { dayStart + Self.dayMillis }

    // MARK: SLA

    /// How `t` stands at `now`. A clock's target is its policy target;
    /// without a policy (removed since), the span from creation to due.
    /// Remaining time is wall-clock, as `sla.tick` shows it.
    public static func slaState(_ t: Ticket, targets: [Priority: SLATarget], now: Int64) -> SLAState {
        var worst = SLAState.none
        for (clock, seconds) in runningClocks(t, targets: targets, now: now) {
            if clock.breached { return .breached }
            let left = clock.dueAt - now
            worst = max(worst, left * 4 < seconds * 1000 ? .breaching : .ok)
        }
        return worst
    }

    /// When `t`'s state can next change by the clock alone (a running clock
    /// reaching its quarter-left mark or its due time), after `now`.
    public static func nextChange(_ t: Ticket, targets: [Priority: SLATarget], now: Int64) -> Int64? {
        var next: Int64?
        for (clock, seconds) in runningClocks(t, targets: targets, now: now) where !clock.breached {
            // The first millisecond with less than a quarter left
            // (left * 4 < seconds * 1000), then the due time.
            let threshold = clock.dueAt - seconds * 250 + 1
            let at = threshold > now ? threshold : clock.dueAt
            guard at > now else { continue }
            next = min(next ?? at, at)
        }
        return next
    }

    private static func runningClocks(_ t: Ticket, targets: [Priority: SLATarget], now: Int64) -> [(SLAClock.Clock, Int64)] {
        let clocks = SLAClock.evaluate(t, nowMillis: now)
        var out: [(SLAClock.Clock, Int64)] = []
        let target = targets[t.priority]
        if let c = clocks.response, !c.paused {
            out.append((c, Int64(target?.response ?? Int(max(0, c.dueAt - t.createdAt) / 1000))))
        }
        if let c = clocks.resolution, !c.paused {
            out.append((c, Int64(target?.resolution ?? Int(max(0, c.dueAt - t.createdAt) / 1000))))
        }
        return out
    }

    /// The due time the "SLA due" order sorts by: the earliest running clock.
    public static func dueKey(_ t: Ticket) -> Int64 {
        var key = Int64.max
        if let due = t.sla.responseDue, t.firstResponseAt == nil, !t.status.stopsResolutionClock { key = min(key, due) }
        if let due = t.sla.resolutionDue, t.sla.pausedSince == nil, !t.status.stopsResolutionClock { key = min(key, due) }
        return key
    }

    // MARK: Changes

    /// Puts a ticket's new state in. `now`: when the change happened
    /// (a ticket resolved now is resolved today). Returns nil if the ticket
    /// neither was nor is in the queue.
    @discardableResult
    public mutating func upsert(_ entry: Entry, now: Int64) -> Change? {
        var e = entry
        let old = entries[e.ticket.id]
        if e.isOpen {
            e.resolvedAt = nil
        } else if let old {
            e.resolvedAt = old.isOpen ? now : old.resolvedAt
        }
        // Resolved before today (or never seen open): not in the queue.
        if !e.isOpen && (e.resolvedAt ?? .min) < dayStart {
            guard let old else { return nil }
            remove(old)
            return Change(old: old, new: nil)
        }
        e.sla = Self.slaState(e.ticket, targets: targets, now: now)
        if let old { count(old, -1) }
        count(e, 1)
        entries[e.ticket.id] = e
        return Change(old: old, new: e)
    }

    /// Drops a ticket (its tenant's index is being rebuilt, or it is gone).
    @discardableResult
    public mutating func remove(id: String) -> Entry? {
        guard let old = entries[id] else { return nil }
        remove(old)
        return old
    }

    private mutating func remove(_ e: Entry) {
        count(e, -1)
        entries[e.ticket.id] = nil
    }

    /// Re-derives a ticket's SLA state at `now` (a threshold timer fired).
    /// Nil when it is not in the index or its state did not change.
    public mutating func reclassify(id: String, now: Int64) -> Change? {
        guard let old = entries[id] else { return nil }
        let state = Self.slaState(old.ticket, targets: targets, now: now)
        guard state != old.sla else { return nil }
        var e = old
        e.sla = state
        count(old, -1)
        count(e, 1)
        entries[id] = e
        return Change(old: old, new: e)
    }

    /// Starts a new local day if `now` is in it: the tickets resolved on
    /// the day before leave. Returns them.
    public mutating func rollDay(now: Int64) -> [Change] {
        let start = Self.dayStart(of: now, utcOffsetMinutes: utcOffsetMinutes)
        guard start > dayStart else { return [] }
        dayStart = start
        var gone: [Change] = []
        for (_, e) in entries where !e.isOpen && (e.resolvedAt ?? .min) < start {
            gone.append(Change(old: e, new: nil))
        }
        for c in gone { remove(c.old!) }
        return gone
    }

    /// A new policy or offset. Counts are re-derived for every entry: a
    /// policy changes seldom, and every state may move with it.
    public mutating func configure(targets: [Priority: SLATarget], utcOffsetMinutes: Int, now: Int64) -> [Change] {
        self.targets = targets
        self.utcOffsetMinutes = utcOffsetMinutes
        dayStart = Self.dayStart(of: now, utcOffsetMinutes: utcOffsetMinutes)
        var changes: [Change] = []
        for id in Array(entries.keys) {
            if let c = reclassify(id: id, now: now) { changes.append(c) }
        }
        return changes
    }

    private mutating func count(_ e: Entry, _ sign: Int) {
        if e.isOpen {
            tiles.open += sign
            if e.sla == .breaching { tiles.breaching += sign }
            if e.sla == .breached { tiles.breached += sign }
        } else {
            tiles.resolvedToday += sign
        }
    }

    // MARK: Views

    /// Sorted, windowed rows of one view, and how many the view holds.
    /// The view is a window: `offset` rows are skipped and at most `limit`
    /// returned; the sort is total (ties by number), so pages do not overlap.
    ///
    /// Only the first `offset + limit` are ordered: a subscribe to the first
    /// page of a 10,000-ticket view keeps the best 50 as it scans (a binary
    /// search each, an insertion only when one beats the 50th), rather than
    /// sort all 10,000 on the engine thread for every viewer that arrives.
    public func window(_ q: QueueQuery, technician: String) -> (rows: [Entry], total: Int) {
        let keep = q.offset + q.limit
        var best: [Entry] = []
        best.reserveCapacity(min(keep, entries.count) + 1)
        var total = 0
        for e in entries.values where q.matches(e, technician: technician) {
            total += 1
            if best.count == keep, let last = best.last, !q.sort.orders(e, before: last) { continue }
            var lo = 0, hi = best.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if q.sort.orders(best[mid], before: e) { lo = mid + 1 } else { hi = mid }
            }
            best.insert(e, at: lo)
            if best.count > keep { best.removeLast() }
        }
        guard q.offset < best.count else { return ([], total) }
        return (Array(best[q.offset...]), total)
    }
}

/// What a `subscribe_queue` asks for: a view (which tickets), an optional
/// search within it, an order and a window.
public struct QueueQuery: Equatable, Hashable, Sendable {
    public enum View: String, Sendable, CaseIterable {
        /// Every ticket that is not resolved or closed (the default).
        case open
        /// Open tickets assigned to the technician asking.
        case mine
        /// Open tickets assigned to nobody.
        case unassigned
        /// Open tickets with a running clock under a quarter of its target.
        case breaching
        /// Open tickets with a running clock past due.
        case breached
        /// Tickets resolved since the tenant's local midnight.
        case resolvedToday = "resolved_today"
    }

    public enum Sort: String, Sendable, CaseIterable {
        /// The earliest running SLA clock first; none running last.
        case sla
        /// Urgent first, then by SLA due.
        case priority
        /// Most recently changed first.
        case updated

        func orders(_ a: QueueIndex.Entry, before b: QueueIndex.Entry) -> Bool {
            switch self {
            case .sla:
                let (da, db) = (QueueIndex.dueKey(a.ticket), QueueIndex.dueKey(b.ticket))
                if da != db { return da < db }
                return a.ticket.number < b.ticket.number
            case .priority:
                let (pa, pb) = (a.ticket.priority.rank, b.ticket.priority.rank)
                if pa != pb { return pa < pb }
                return Sort.sla.orders(a, before: b)
            case .updated:
                if a.updatedAt != b.updatedAt { return a.updatedAt > b.updatedAt }
                return a.ticket.number > b.ticket.number
            }
        }
    }

    public var view: View
    /// Lowercased; empty for none.
    public var search: String
    public var sort: Sort
    public var offset: Int
    public var limit: Int

    public static let defaultLimit = 50
    public static let maxLimit = 200
    public static let maxOffset = 100_000
    public static let maxSearchBytes = 100

    public init(view: View = .open, search: String = "", sort: Sort = .sla, offset: Int = 0, limit: Int = QueueQuery.defaultLimit) {
        self.view = view
        self.search = search.lowercased()
        self.sort = sort
        self.offset = offset
        self.limit = limit
    }

    /// Whether a ticket is in this view (the window aside).
    public func matches(_ e: QueueIndex.Entry, technician: String) -> Bool {
        let t = e.ticket
        switch view {
        case .open: guard e.isOpen else { return false }
        case .mine: guard e.isOpen, t.assignee?.id == technician else { return false }
        case .unassigned: guard e.isOpen, t.assignee == nil else { return false }
        case .breaching: guard e.isOpen, e.sla == .breaching else { return false }
        case .breached: guard e.isOpen, e.sla == .breached else { return false }
        case .resolvedToday: guard !e.isOpen else { return false }
        }
        return search.isEmpty || Self.searchMatches(t, search)
    }

    /// A number ("1042", "#1042", "T-1042": the whole number), or a piece
    /// of the subject or the contact's name or email, without case.
    static func searchMatches(_ t: Ticket, _ s: String) -> Bool {
        var digits = Substring(s)
        if digits.hasPrefix("#") { digits = digits.dropFirst() } else if digits.hasPrefix("t-") { digits = digits.dropFirst(2) }
        if let n = Int(digits), n == t.number { return true }
        return t.subject.lowercased().contains(s) || t.contact.name.lowercased().contains(s)
            || (t.contact.email?.lowercased().contains(s) ?? false)
    }

    /// Reads the optional `filter` and the window fields of a
    /// `subscribe_queue` frame. `filter` is a view name, or an object
    /// {`view`, `search`}; `sort`, `offset` and `limit` sit beside it.
    public static func decode(_ v: JSONValue) -> Result<QueueQuery, DecodeMessage> {
        var q = QueueQuery()
        if let f = v["filter"], !f.isNull {
            var viewName: String?
            if let s = f.stringValue {
                viewName = s
            } else if case .object = f {
                if let x = f["view"], !x.isNull {
                    guard let s = x.stringValue else { return .failure(DecodeMessage("\"filter.view\" must be a string.")) }
                    viewName = s
                }
                if let x = f["search"], !x.isNull {
                    guard let s = x.stringValue, s.utf8.count <= maxSearchBytes else {
                        return .failure(DecodeMessage("\"filter.search\" must be a string of at most \(maxSearchBytes) bytes."))
                    }
                    q.search = String(s.trimmingWhitespace).lowercased()
                }
            } else {
                return .failure(DecodeMessage("\"filter\" must be a view name or an object {\"view\", \"search\"}."))
            }
            if let viewName {
                guard let view = View(rawValue: viewName) else {
                    return .failure(DecodeMessage("\"filter.view\" must be one of \(View.allCases.map(\.rawValue).joined(separator: ", "))."))
                }
                q.view = view
            }
        }
        if let x = v["sort"], !x.isNull {
            guard let s = x.stringValue, let sort = Sort(rawValue: s) else {
                return .failure(DecodeMessage("\"sort\" must be one of \(Sort.allCases.map(\.rawValue).joined(separator: ", "))."))
            }
            q.sort = sort
        }
        if let x = v["offset"], !x.isNull {
            guard let n = x.intValue, (0...maxOffset).contains(n) else {
                return .failure(DecodeMessage("\"offset\" must be an integer from 0 to \(maxOffset)."))
            }
            q.offset = n
        }
        if let x = v["limit"], !x.isNull {
            guard let n = x.intValue, (1...maxLimit).contains(n) else {
                return .failure(DecodeMessage("\"limit\" must be an integer from 1 to \(maxLimit)."))
            }
            q.limit = n
        }
        return .success(q)
    }
}

extension Priority {
    /// Urgent first.
    public var rank: Int {
        switch self {
        case .urgent: 0
        case .high: 1
        case .normal: 2
        case .low: 3
        }
    }
}
