/// The engine's deadlines in one binary min-heap: consent expiries, SLA
/// breaches, coalesced telemetry. One entry per pending thing, never a scan
/// of every ticket. Entries are not removed when their reason goes away (a
/// consent answered, a ticket resolved): the handler re-checks the state
/// when the entry comes due, which is cheaper than a removable heap.
struct TimerHeap {
    enum Kind: Equatable {
        case slaDeadline(ticket: String)
        case consentExpiry(session: String)
        case telemetryFlush(asset: TenantScopedID)
    }

    struct Entry { var due: Int64; var kind: Kind }

    private var heap: [Entry] = []

    var count: Int { heap.count }
    var nextDue: Int64? { heap.first?.due }

    mutating func schedule(_ kind: Kind, at due: Int64) {
        heap.append(Entry(due: due, kind: kind))
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard heap[i].due < heap[parent].due else { break }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    mutating func popDue(now: Int64) -> Entry? {
        guard let first = heap.first, first.due <= now else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var smallest = i
                if l < heap.count, heap[l].due < heap[smallest].due { smallest = l }
                if r < heap.count, heap[r].due < heap[smallest].due { smallest = r }
                if smallest == i { break }
                heap.swapAt(i, smallest)
                i = smallest
            }
        }
        return first
    }
}
