import PeekCore

/// The live ticket queue (protocol.md §3.13): `subscribe_queue` answered by
/// a `queue` window, then `queue.row` and `queue.tiles` deltas.
///
/// Cost is per change, not per viewer or per tick. A tenant's `QueueIndex`
/// is built once, when its first queue viewer arrives, and dropped with its
/// last. Each batch marks the tickets it changed; just before the commit
/// they are read back (inside the transaction, so a savepoint that rolled
/// back is seen as such) and put into the index, which adjusts the tiles
/// by that ticket's share. Viewers are grouped by what they see (view and
/// search, and for "mine" who they are): a topic per group, routed by the
/// loops like a ticket's viewers. A changed row is encoded once and
/// published once per topic it is in, entered or left, whatever the number
/// of viewers. SLA thresholds are timers: a ticket crossing into
/// "breaching" is pushed when it happens. The window (sort, offset, limit)
/// is the client's to keep: rows of the whole view are pushed, and the
/// client places them by the sort it asked for.
extension Engine {
    // MARK: Frames

    func subscribeQueue(_ peer: Peer, _ tech: Technician, id: String?, _ query: QueueQuery) {
        // One view per connection: a new one (another filter, the next
        // page) replaces it. Dropped first, so a tenant whose only viewer
        // this is keeps its index rather than build it again.
        let previous = queue.views[peer]
        let tq: TenantQueue
        if let existing = queue.tenants[tech.tenant] {
            tq = existing
            if previous != nil { tq.viewers += 1 }   // held while the old view goes
            dropQueueView(peer)
            if previous != nil { tq.viewers -= 1 }
        } else {
            do {
                tq = try buildQueue(tenant: tech.tenant)
            } catch {
                log(.error, "read_failed", "the queue could not be read", tenant: tech.tenant, connection: peer, error: "\(error)")
                sendError(peer, id: id, PeekError(.internal, "The queue could not be read just now; subscribe again."))
                return
            }
            queue.tenants[tech.tenant] = tq
            queue.touchedTenants.insert(tech.tenant)
        }
        if let previous, previous.key != QueueTopic.key(tenant: tech.tenant, query: query, technician: tech.id) {
            outputs.append(.unsubscribe(peer, ticket: previous.key))
        }
        let key = QueueTopic.key(tenant: tech.tenant, query: query, technician: tech.id)
        let at = now
        let (rows, total) = tq.index.window(query, technician: tech.id)
        var topic = tq.topics[key] ?? QueueTopic(query: query, technician: tech.id)
        topic.connections += 1
        topic.total = total
        tq.topics[key] = topic
        tq.tilesConnections += 1
        tq.viewers += 1
        queue.views[peer] = QueueViewer(tenant: tech.tenant, technician: tech.id, key: key)
        queue.subscribedThisBatch.append(peer)

        var w = JSONWriter(capacity: 512 + rows.count * 600)
        w.beginObject()
        w.field("type", "queue")
        w.field("id", id)
        w.key("filter"); w.beginObject(); w.field("view", query.view.rawValue); w.field("search", query.search); w.endObject()
        w.field("sort", query.sort.rawValue)
        w.field("offset", query.offset)
        w.field("limit", query.limit)
        w.field("total", total)
        w.key("rows"); w.beginArray()
        for e in rows { queueRow(e, at: at, into: &w) }
        w.endArray()
        w.key("tiles"); Self.queueTiles(tq.index.tiles, into: &w)
        w.endObject()
        // The tiles topic first, then the view with its snapshot, in one
        // loop job each in order: the first delta after them is the first
        // change after the snapshot.
        outputs.append(.subscribe(peer, id: nil, ticket: tq.tilesKey, frames: []))
        outputs.append(.subscribe(peer, id: id, ticket: key, frames: [w.bytes]))
    }

    func unsubscribeQueue(_ peer: Peer) {
        guard let v = queue.views[peer] else { return }
        dropQueueView(peer)
        outputs.append(.unsubscribe(peer, ticket: v.key))
        if let tq = queue.tenants[v.tenant] { outputs.append(.unsubscribe(peer, ticket: tq.tilesKey)) }
    }

    /// Forgets a connection's view (the loop forgets its routing itself on
    /// a disconnect; `unsubscribeQueue` tells it otherwise).
    func dropQueueView(_ peer: Peer) {
        guard let v = queue.views.removeValue(forKey: peer), let tq = queue.tenants[v.tenant] else { return }
        if var topic = tq.topics[v.key] {
            topic.connections -= 1
            tq.topics[v.key] = topic.connections == 0 ? nil : topic
        }
        tq.tilesConnections -= 1
        tq.viewers -= 1
        if tq.viewers == 0 {
            // Nobody watches: the index costs a read per change, so it goes.
            for id in tq.index.entries.keys { queue.owner[id] = nil }
            queue.tenants[v.tenant] = nil
        }
    }

    // MARK: Building

    /// Reads a tenant's queue: its open tickets, those resolved today, and
    /// for each its last message and last customer message. A scan of the
    /// tenant, once per first viewer; every change after it is incremental.
    private func buildQueue(tenant: String) throws(StoreError) -> TenantQueue {
        let at = now
        var index = QueueIndex(targets: try queueTargets(tenant: tenant),
                               utcOffsetMinutes: try store.businessHours(tenant: tenant)?.utcOffsetMinutes ?? 0, now: at)
        for t in try store.tickets(tenant: tenant, limit: Int.max) where t.status != .closed {
            let recent = try store.recentMessages(ticket: t.id, limit: Self.queuePreviewLookback)
            var resolvedAt: Int64?
            if t.status == .resolved {
                // Resolving writes a system event: the newest message is
                // when it happened, or later. Before today: not in the queue.
                guard let newest = recent.last?.at, newest >= index.dayStart else { continue }
                resolvedAt = newest
            }
            let customer = try store.messages(ticket: t.id, after: 0, channels: [.customer], notBy: "", limit: 1).recent.last
            let e = QueueIndex.Entry(ticket: t, updatedAt: max(t.createdAt, recent.last?.at ?? 0),
                                     last: recent.last(where: { $0.channel != .system }).map(QueueIndex.LastMessage.init),
                                     lastCustomerSeq: customer?.seq, resolvedAt: resolvedAt)
            if index.upsert(e, now: at)?.new != nil {
                queue.owner[t.id] = tenant
                scheduleQueueTimer(t, index: index, at: at)
            }
        }
        timers.schedule(.queueDay(tenant: tenant), at: index.nextDayStart)
        return TenantQueue(tenant: tenant, index: index)
    }

    /// Messages read back to find a preview that is not a system event.
    static let queuePreviewLookback = 5

    private func queueTargets(tenant: String) throws(StoreError) -> [Priority: SLATarget] {
        var targets: [Priority: SLATarget] = [:]
        for p in Priority.allCases { targets[p] = try store.slaPolicy(tenant: tenant, priority: p) }
        return targets
    }

    // MARK: Changes (called where the engine changes tickets)

    /// A ticket was written in this batch (a delta, a message, created, its
    /// SLA remeasured). Free when nobody watches its tenant's queue.
    func queueTouched(_ ticketID: String, tenant: String, message: Message? = nil) {
        guard queue.tenants[tenant] != nil else { return }
        var d = queue.dirty[ticketID] ?? QueueHub.Dirty(tenant: tenant)
        d.stored = true
        if let message, message.channel != .system || d.message == nil { d.message = message }
        if let message, message.channel == .customer { d.customerSeq = message.seq }
        queue.dirty[ticketID] = d
    }

    /// Who views or writes on a ticket changed: its row shows it.
    func queuePresenceChanged(_ ticketID: String) {
        guard let tenant = queue.owner[ticketID] else { return }
        if queue.dirty[ticketID] == nil { queue.dirty[ticketID] = QueueHub.Dirty(tenant: tenant) }
    }

    /// The tenant's SLA policy or hours changed: every state may move.
    func queuePolicyChanged(tenant: String) {
        guard queue.tenants[tenant] != nil else { return }
        queue.policyChanged.insert(tenant)
    }

    /// Puts the batch's changes into the indexes and queues their rows and
    /// tiles; runs last in the batch, inside its transaction.
    func queueFlush() {
        guard !queue.dirty.isEmpty || !queue.policyChanged.isEmpty || !queue.touchedTenants.isEmpty else { return }
        let at = now
        for tenant in queue.policyChanged {
            guard let tq = queue.tenants[tenant] else { continue }
            do {
                let changes = tq.index.configure(targets: try queueTargets(tenant: tenant),
                                                 utcOffsetMinutes: try store.businessHours(tenant: tenant)?.utcOffsetMinutes ?? 0, now: at)
                for c in changes { publishQueueChange(c, in: tq, at: at) }
                for e in tq.index.entries.values { scheduleQueueTimer(e.ticket, index: tq.index, at: at) }
                queue.touchedTenants.insert(tenant)
            } catch {
                log(.error, "read_failed", "the SLA policy could not be read for the queue", tenant: tenant, error: "\(error)")
            }
        }
        queue.policyChanged.removeAll()
        let dirty = queue.dirty
        queue.dirty.removeAll(keepingCapacity: true)
        for (id, d) in dirty {
            guard let tq = queue.tenants[d.tenant] else { continue }
            var entry: QueueIndex.Entry
            if d.stored {
                do {
                    guard let e = try queueEntry(id, d, in: tq, at: at) else { continue }
                    entry = e
                } catch {
                    // The change is committed without its row: the queue
                    // would stay wrong, so its viewers start over.
                    log(.error, "read_failed", "a changed ticket could not be read for the queue", tenant: d.tenant, ticket: id, error: "\(error)")
                    queue.brokenTenants.insert(d.tenant)
                    continue
                }
            } else {
                guard let e = tq.index.entries[id] else { continue }
                entry = e
            }
            guard let change = tq.index.upsert(entry, now: at) else { continue }
            queue.owner[id] = change.new != nil ? d.tenant : nil
            queue.touchedTenants.insert(d.tenant)
            publishQueueChange(change, in: tq, at: at)
            if let new = change.new { scheduleQueueTimer(new.ticket, index: tq.index, at: at) }
        }
        for tenant in queue.touchedTenants { publishQueueTiles(tenant) }
    }

    /// The ticket as it is now in this transaction, with what the index
    /// knew of it (its last message, when it was resolved) carried on.
    private func queueEntry(_ id: String, _ d: QueueHub.Dirty, in tq: TenantQueue, at: Int64) throws(StoreError) -> QueueIndex.Entry? {
        guard let t = try store.ticket(id), t.tenant == d.tenant else { return nil }
        if var e = tq.index.entries[id] {
            e.ticket = t
            e.updatedAt = at
            // A message taken back by a savepoint has a seq past the ticket's.
            if let m = d.message, m.seq <= t.seq, m.channel != .system { e.last = QueueIndex.LastMessage(m) }
            if let seq = d.customerSeq, seq <= t.seq { e.lastCustomerSeq = seq }
            return e
        }
        // New to the queue (created, or reopened): read what a row shows.
        guard !t.status.stopsResolutionClock else { return nil }
        let recent = try store.recentMessages(ticket: id, limit: Self.queuePreviewLookback)
        let customer = try store.messages(ticket: id, after: 0, channels: [.customer], notBy: "", limit: 1).recent.last
        return QueueIndex.Entry(ticket: t, updatedAt: at, last: recent.last(where: { $0.channel != .system }).map(QueueIndex.LastMessage.init),
                                lastCustomerSeq: customer?.seq)
    }

    /// After the commit, or instead of it. A batch that did not commit took
    /// the index's changes with it only in the database: the tenants it
    /// touched are read again from scratch, and their viewers told to
    /// subscribe again (the rows they were sent never left).
    func queueAfterBatch(committed: Bool) {
        if !committed {
            for peer in queue.subscribedThisBatch { dropQueueView(peer) }
            queue.brokenTenants.formUnion(queue.touchedTenants)
        }
        queue.subscribedThisBatch.removeAll(keepingCapacity: true)
        queue.touchedTenants.removeAll(keepingCapacity: true)
        queue.dirty.removeAll(keepingCapacity: true)
        guard !queue.brokenTenants.isEmpty else { return }
        let error = PeekError(.internal, "The queue could not be kept up to date; subscribe to it again.")
        for tenant in queue.brokenTenants {
            guard let tq = queue.tenants[tenant] else { continue }
            for (peer, v) in queue.views where v.tenant == tenant {
                send(peer, Wire.errorFrame(id: nil, error))
                outputs.append(.unsubscribe(peer, ticket: v.key))
                outputs.append(.unsubscribe(peer, ticket: tq.tilesKey))
                dropQueueView(peer)
            }
        }
        queue.brokenTenants.removeAll()
    }

    // MARK: Timers

    private func scheduleQueueTimer(_ t: Ticket, index: QueueIndex, at: Int64) {
        if let next = QueueIndex.nextChange(t, targets: index.targets, now: at) {
            timers.schedule(.queueSLA(ticket: t.id), at: next)
        }
    }

    /// A ticket's SLA threshold came: re-derive its state; if it moved
    /// (into "breaching"), its row and the tiles go out now, not at a tick.
    func queueSLATimer(_ ticketID: String, at: Int64) {
        guard let tenant = queue.owner[ticketID], let tq = queue.tenants[tenant] else { return }
        if let change = tq.index.reclassify(id: ticketID, now: at) {
            publishQueueChange(change, in: tq, at: at)
            queue.touchedTenants.insert(tenant)
        }
        if let e = tq.index.entries[ticketID] { scheduleQueueTimer(e.ticket, index: tq.index, at: at) }
    }

    /// Local midnight: yesterday's resolved tickets leave "resolved today".
    func queueDayTimer(_ tenant: String, at: Int64) {
        guard let tq = queue.tenants[tenant] else { return }
        for c in tq.index.rollDay(now: at) {
            if let id = c.old?.ticket.id { queue.owner[id] = nil }
            publishQueueChange(c, in: tq, at: at)
        }
        queue.touchedTenants.insert(tenant)
        timers.schedule(.queueDay(tenant: tenant), at: tq.index.nextDayStart)
    }

    // MARK: Output

    /// One change to every topic whose view it is in, entered or left.
    /// The row (or its removal) is encoded once, whatever the topics; each
    /// topic's frame is that and its own `total`, kept by the same
    /// before/after test rather than by counting.
    private func publishQueueChange(_ change: QueueIndex.Change, in tq: TenantQueue, at: Int64) {
        var row: [UInt8]?
        var removed: [UInt8]?
        for key in tq.topics.keys {
            guard var topic = tq.topics[key] else { continue }
            let before = change.old.map { topic.query.matches($0, technician: topic.technician) } ?? false
            let after = change.new.map { topic.query.matches($0, technician: topic.technician) } ?? false
            guard before || after else { continue }
            topic.total += (after ? 1 : 0) - (before ? 1 : 0)
            tq.topics[key] = topic
            var data: [UInt8]
            if after, let e = change.new {
                if row == nil {
                    var w = JSONWriter(capacity: 700)
                    queueRow(e, at: at, into: &w)
                    row = w.bytes
                }
                data = Array(#"{"row":"#.utf8)
                data.append(contentsOf: row!)
            } else {
                if removed == nil {
                    var w = JSONWriter()
                    w.beginObject(); w.field("id", change.old!.ticket.id); w.field("removed", true); w.endObject()
                    removed = w.bytes.dropLast()   // the object stays open for `total`
                }
                data = removed!
            }
            data.append(contentsOf: #","total":"#.utf8)
            data.append(contentsOf: String(topic.total).utf8)
            data.append(UInt8(ascii: "}"))
            outputs.append(.publishTopic(topic: key, delta: Self.queueDelta(kind: "queue.row", at: at, data: data)))
        }
    }

    private func publishQueueTiles(_ tenant: String) {
        guard let tq = queue.tenants[tenant], tq.index.tiles != tq.sentTiles else { return }
        tq.sentTiles = tq.index.tiles
        var w = JSONWriter()
        Self.queueTiles(tq.index.tiles, into: &w)
        outputs.append(.publishTopic(topic: tq.tilesKey, delta: Self.queueDelta(kind: "queue.tiles", at: now, data: w.bytes)))
    }

    /// A queue delta: ephemeral (no `seq`) and of no one ticket (`ticket` null).
    static func queueDelta(kind: String, at: Int64, data: [UInt8]) -> [UInt8] {
        var w = JSONWriter(capacity: 80 + data.count)
        w.beginObject()
        w.field("type", "delta")
        w.nullField("ticket")
        w.key("at"); Wire.time(at, into: &w)
        w.field("kind", kind)
        w.key("data"); w.raw(data)
        w.endObject()
        return w.bytes
    }

    static func queueTiles(_ t: QueueIndex.Tiles, into w: inout JSONWriter) {
        w.beginObject()
        w.field("open", t.open); w.field("breaching", t.breaching); w.field("breached", t.breached)
        w.field("resolved_today", t.resolvedToday)
        w.endObject()
    }

    func queueRow(_ e: QueueIndex.Entry, at: Int64, into w: inout JSONWriter) {
        let t = e.ticket
        w.beginObject()
        w.field("id", t.id)
        w.field("number", t.number)
        w.field("subject", t.subject)
        w.field("status", t.status.rawValue)
        w.field("priority", t.priority.rawValue)
        w.key("assignee"); Wire.person(t.assignee, into: &w)
        w.field("client", t.client)
        w.key("contact"); w.beginObject(); w.field("name", t.contact.name); w.endObject()
        w.key("sla"); Wire.sla(t, nowMillis: at, into: &w)
        w.field("sla_state", e.sla.name)
        w.key("updated_at"); Wire.time(e.updatedAt, into: &w)
        w.key("last_message")
        if let m = e.last {
            w.beginObject()
            w.field("seq", m.seq); w.field("channel", m.channel.rawValue); w.field("preview", m.preview)
            w.key("at"); Wire.time(m.at, into: &w)
            w.endObject()
        } else { w.null() }
        w.field("last_customer_seq", e.lastCustomerSeq)
        w.field("seq", t.seq)
        w.field("version", t.version)
        w.key("resolved_at"); Wire.time(e.resolvedAt, into: &w)
        w.key("viewers"); Wire.viewers(viewers[t.id]?.list ?? [], into: &w)
        w.endObject()
    }
}

/// The engine's queue state (engine thread only).
final class QueueHub {
    struct Dirty {
        var tenant: String
        /// False when only presence changed: no read is needed.
        var stored = false
        /// The newest message this batch stored (not a system event, unless that is all).
        var message: Message?
        var customerSeq: Int?
    }

    /// Tenants with at least one queue viewer.
    var tenants: [String: TenantQueue] = [:]
    /// Each connection's one view.
    var views: [Peer: QueueViewer] = [:]
    /// Which tenant's index holds a ticket (for presence, which knows ids only).
    var owner: [String: String] = [:]
    /// Tickets changed in the batch being run.
    var dirty: [String: Dirty] = [:]
    var policyChanged: Set<String> = []
    /// Tenants whose index this batch built or changed.
    var touchedTenants: Set<String> = []
    /// Tenants whose index can no longer be trusted: their viewers start over.
    var brokenTenants: Set<String> = []
    var subscribedThisBatch: [Peer] = []
}

final class TenantQueue {
    let tenant: String
    var index: QueueIndex
    /// Viewers by what they see: topic key -> the view and how many connections see it.
    var topics: [String: QueueTopic] = [:]
    /// Every viewer of the tenant's queue gets the tiles.
    let tilesKey: String
    var tilesConnections = 0
    var viewers = 0
    var sentTiles: QueueIndex.Tiles

    init(tenant: String, index: QueueIndex) {
        self.tenant = tenant
        self.index = index
        tilesKey = "queue \(tenant)"
        sentTiles = index.tiles
    }
}

/// The viewers who see the same rows: the same view and search (and for
/// "mine", the same technician). Sort and window are the client's.
struct QueueTopic {
    var query: QueueQuery
    var technician: String
    var connections = 0
    /// Rows in the view, kept by each change's before/after test.
    var total = 0

    init(query: QueueQuery, technician: String) {
        self.query = QueueQuery(view: query.view, search: query.search)
        self.technician = query.view == .mine ? technician : ""
    }

    /// Routing keys share the loops' table with ticket ids, which never
    /// hold a space (Identifier), so they cannot collide; tenant and
    /// technician ids hold none either, and the search comes last.
    static func key(tenant: String, query: QueueQuery, technician: String) -> String {
        "queue \(tenant) \(query.view.rawValue) \(query.view == .mine ? technician : "-") \(query.search)"
    }
}

struct QueueViewer {
    var tenant: String
    var technician: String
    var key: String
}

