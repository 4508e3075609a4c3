/// The engine's deadlines in one binary min-heap: consent expiries, SLA
/// breaches, coalesced telemetry. One entry per pending thing, never a scan
/// of every ticket.
///
/// At most one entry per `Kind` (one per ticket for SLA deadlines, whichever
/// of its targets falls due first): every command on a ticket with a running
/// clock schedules its next deadline again, and without this the heap grew by
/// an entry per command. Scheduling a kind that is already there keeps the
/// earlier of the two due times. Entries are not removed when their reason
/// goes away (a consent answered, a ticket resolved) or moves later: the
/// handler re-checks the state when the entry comes due and schedules the
/// real next deadline, which is cheaper than removing from the middle.
struct TimerHeap {
    enum Kind: Hashable {
        case slaDeadline(ticket: String)
        case consentExpiry(session: String)
        case telemetryFlush(asset: TenantScopedID)
        case shellCheck(session: String)
        case summaryDue(ticket: String)
        /// A ticket's SLA reaching a quarter left or its due time (Engine+Queue).
        case queueSLA(ticket: String)
        /// A tenant's local midnight: "resolved today" starts over.
        case queueDay(tenant: String)
    }

    struct Entry { var due: Int64; var kind: Kind }

    private var heap: [Entry] = []
    /// Where each kind's one entry sits in `heap`.
    private var slots: [Kind: Int] = [:]

    var count: Int { heap.count }
    var nextDue: Int64? { heap.first?.due }

    mutating func schedule(_ kind: Kind, at due: Int64) {
        if let slot = slots[kind] {
            guard due < heap[slot].due else { return }  // the earlier entry fires first and re-checks
            heap[slot].due = due
            siftUp(slot)
            return
        }
        heap.append(Entry(due: due, kind: kind))
        slots[kind] = heap.count - 1
        siftUp(heap.count - 1)
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    mutating func popDue(now: Int64) -> Entry? {
        guard let first = heap.first, first.due <= now else { return nil }
        slots[first.kind] = nil
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            slots[last.kind] = 0
            siftDown(0)
        }
        return first
    }

    private mutating func siftUp(_ start: Int) {
        var i = start
        while i > 0 {
            let parent = (i - 1) / 2
            guard heap[i].due < heap[parent].due else { break }
            swapEntries(i, parent)
            i = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var i = start
        while true {
            let l = 2 * i + 1, r = l + 1
            var smallest = i
            if l < heap.count, heap[l].due < heap[smallest].due { smallest = l }
            if r < heap.count, heap[r].due < heap[smallest].due { smallest = r }
            if smallest == i { return }
            swapEntries(i, smallest)
            i = smallest
        }
    }

    private mutating func swapEntries(_ a: Int, _ b: Int) {
        heap.swapAt(a, b)
        slots[heap[a].kind] = a
        slots[heap[b].kind] = b
    }
}
