import XCTest
@testable import PeekCore

/// The queue's pure core: SLA states and their thresholds, tiles kept by
/// each ticket's share (checked against a recount after every step),
/// membership, the local day, views, search and windows.
final class QueueIndexTests: XCTestCase {
    let t0: Int64 = 1_764_403_200_000   // 2025-11-29T08:00:00Z
    let policy: [Priority: SLATarget] = [.normal: SLATarget(response: 400, resolution: 4000), .urgent: SLATarget(response: 40, resolution: 400)]

    func ticket(_ number: Int, status: TicketStatus = .new, priority: Priority = .normal, assignee: String? = nil,
                created: Int64? = nil, subject: String? = nil) -> Ticket {
        let at = created ?? t0
        let target = policy[priority]
        return Ticket(id: "T-\(number)", tenant: "acme", number: number, subject: subject ?? "Ticket \(number)", status: status,
                      priority: priority, assignee: assignee.map { PersonRef(id: $0, name: $0.capitalized) },
                      contact: Contact(name: "Casey Customer", email: "casey@acme.example"), client: "ACME",
                      asset: nil, firstResponseAt: nil, createdAt: at, version: 1, seq: 0,
                      sla: SLAClocks(responseDue: target.map { at + Int64($0.response) * 1000 },
                                     resolutionDue: target.map { at + Int64($0.resolution) * 1000 }))
    }

    func entry(_ t: Ticket, updated: Int64? = nil) -> QueueIndex.Entry {
        QueueIndex.Entry(ticket: t, updatedAt: updated ?? t.createdAt, last: nil, lastCustomerSeq: nil)
    }

    /// The tiles, counted the slow way: what the incremental counts must equal.
    func recount(_ index: QueueIndex) -> QueueIndex.Tiles {
        var tiles = QueueIndex.Tiles()
        for e in index.entries.values {
            if e.isOpen {
                tiles.open += 1
                if e.sla == .breaching { tiles.breaching += 1 }
                if e.sla == .breached { tiles.breached += 1 }
            } else { tiles.resolvedToday += 1 }
        }
        return tiles
    }

    func testSLAState_quarterLeftIsBreaching_pastDueIsBreached_pausedIsNone() {
        let t = ticket(1)   // response 400 s: a quarter is 100 s, so breaching from due - 100 s
        let due = t.sla.responseDue!
        XCTAssertEqual(QueueIndex.slaState(t, targets: policy, now: t0), .ok)
        XCTAssertEqual(QueueIndex.slaState(t, targets: policy, now: due - 100_000), .ok, "exactly a quarter left is not less")
        XCTAssertEqual(QueueIndex.slaState(t, targets: policy, now: due - 99_999), .breaching)
        XCTAssertEqual(QueueIndex.slaState(t, targets: policy, now: due), .breached)
        var answered = t
        answered.firstResponseAt = t0 + 1000   // the response clock stops; resolution (4000 s) is far
        XCTAssertEqual(QueueIndex.slaState(answered, targets: policy, now: due), .ok)
        var waiting = answered
        waiting.status = .waitingOnCustomer
        waiting.sla.pausedSince = t0 + 2000
        XCTAssertEqual(QueueIndex.slaState(waiting, targets: policy, now: t0 + 3_999_000), .none, "a paused clock is not running")
        var resolved = t
        resolved.status = .resolved
        XCTAssertEqual(QueueIndex.slaState(resolved, targets: policy, now: due + 1), .none)
        // No policy any more: the target is the span from creation to due.
        XCTAssertEqual(QueueIndex.slaState(t, targets: [:], now: due - 99_999), .breaching)
    }

    func testNextChange_isTheFirstMillisecondUnderAQuarter_thenTheDueTime() {
        let t = ticket(1)
        let due = t.sla.responseDue!
        let first = QueueIndex.nextChange(t, targets: policy, now: t0)
        XCTAssertEqual(first, due - 100_000 + 1)
        XCTAssertEqual(QueueIndex.slaState(t, targets: policy, now: first! - 1), .ok)
        XCTAssertEqual(QueueIndex.slaState(t, targets: policy, now: first!), .breaching)
        XCTAssertEqual(QueueIndex.nextChange(t, targets: policy, now: first!), due)
        // Past due the response clock has nothing left to cross; resolution's quarter is next.
        XCTAssertEqual(QueueIndex.nextChange(t, targets: policy, now: due), t.sla.resolutionDue! - 1_000_000 + 1)
    }

    func testUpsert_tilesFollowEveryChange_andMatchARecount() {
        var index = QueueIndex(targets: policy, utcOffsetMinutes: 0, now: t0)
        for n in 1...5 { index.upsert(entry(ticket(n)), now: t0) }
        XCTAssertEqual(index.tiles, QueueIndex.Tiles(open: 5))
        // One gets close to its response due, one past it.
        let due = ticket(1).sla.responseDue!
        var late = ticket(2, created: t0 - 500_000)
        late.sla.responseBreached = true
        index.upsert(entry(late), now: due - 50_000)
        XCTAssertEqual(index.reclassify(id: "T-1", now: due - 50_000)?.new?.sla, .breaching)
        XCTAssertNil(index.reclassify(id: "T-1", now: due - 40_000), "no change, nothing reported")
        XCTAssertEqual(index.tiles, QueueIndex.Tiles(open: 5, breaching: 1, breached: 1))
        XCTAssertEqual(index.tiles, recount(index))
        // Resolving moves a ticket from open to resolved today; reopening moves it back.
        var resolved = ticket(1)
        resolved.status = .resolved
        let change = index.upsert(entry(resolved), now: due - 30_000)
        XCTAssertEqual(change?.old?.sla, .breaching)
        XCTAssertEqual(change?.new?.resolvedAt, due - 30_000)
        XCTAssertEqual(index.tiles, QueueIndex.Tiles(open: 4, breaching: 0, breached: 1, resolvedToday: 1))
        XCTAssertEqual(index.tiles, recount(index))
        index.upsert(entry(ticket(1)), now: due - 20_000)
        XCTAssertNil(index.entries["T-1"]?.resolvedAt)
        XCTAssertEqual(index.tiles, QueueIndex.Tiles(open: 5, breaching: 1, breached: 1))
        // A ticket resolved before it was ever seen open is not in the queue.
        var old = ticket(9)
        old.status = .closed
        XCTAssertNil(index.upsert(entry(old), now: t0))
        XCTAssertEqual(index.remove(id: "T-2")?.sla, .breached)
        XCTAssertEqual(index.tiles, recount(index))
    }

    func testRollDay_resolvedTodayLeavesAtLocalMidnight() {
        // UTC+2: local midnight of 2025-11-30 is 22:00Z on the 29th.
        var index = QueueIndex(targets: policy, utcOffsetMinutes: 120, now: t0)
        XCTAssertEqual(index.dayStart, t0 - 10 * 3_600_000)
        index.upsert(entry(ticket(1)), now: t0)
        var resolved = ticket(1)
        resolved.status = .resolved
        index.upsert(entry(resolved), now: t0 + 1000)
        XCTAssertEqual(index.tiles.resolvedToday, 1)
        XCTAssertEqual(index.rollDay(now: t0 + 13 * 3_600_000), [], "21:00Z is still the same local day")
        let gone = index.rollDay(now: t0 + 14 * 3_600_000)
        XCTAssertEqual(gone.map { $0.old?.ticket.id }, ["T-1"])
        XCTAssertEqual(index.tiles, QueueIndex.Tiles())
        XCTAssertEqual(index.nextDayStart, t0 + 38 * 3_600_000)
        XCTAssertEqual(QueueIndex.dayStart(of: -1, utcOffsetMinutes: 0), -86_400_000, "before 1970 too")
    }

    func testViewsSearchAndWindow() {
        var index = QueueIndex(targets: policy, utcOffsetMinutes: 0, now: t0)
        index.upsert(entry(ticket(1001, assignee: "ana", subject: "Printer jams"), updated: t0 + 5), now: t0)
        index.upsert(entry(ticket(1002, priority: .urgent), updated: t0 + 1), now: t0)
        index.upsert(entry(ticket(1003, assignee: "ben"), updated: t0 + 9), now: t0)
        index.upsert(entry(ticket(1004, priority: .low)), now: t0)   // no policy for low: no clock
        func ids(_ q: QueueQuery, _ tech: String = "ana") -> [String] { index.window(q, technician: tech).rows.map(\.ticket.id) }
        XCTAssertEqual(ids(QueueQuery(sort: .sla)), ["T-1002", "T-1001", "T-1003", "T-1004"])
        XCTAssertEqual(ids(QueueQuery(sort: .priority)), ["T-1002", "T-1001", "T-1003", "T-1004"])
        XCTAssertEqual(ids(QueueQuery(sort: .updated)), ["T-1003", "T-1001", "T-1002", "T-1004"])
        XCTAssertEqual(ids(QueueQuery(view: .mine)), ["T-1001"])
        XCTAssertEqual(ids(QueueQuery(view: .mine), "ben"), ["T-1003"])
        XCTAssertEqual(ids(QueueQuery(view: .unassigned)), ["T-1002", "T-1004"])
        for s in ["printer", "PRINTER", "#1001", "1001", "t-1001"] { XCTAssertEqual(ids(QueueQuery(search: s)), ["T-1001"], s) }
        XCTAssertEqual(ids(QueueQuery(search: "#100")), [], "a number matches whole")
        XCTAssertEqual(ids(QueueQuery(search: "casey")).count, 4)
        let page = index.window(QueueQuery(sort: .sla, offset: 1, limit: 2), technician: "ana")
        XCTAssertEqual(page.rows.map(\.ticket.id), ["T-1001", "T-1003"])
        XCTAssertEqual(page.total, 4)
        XCTAssertEqual(index.window(QueueQuery(offset: 10), technician: "ana").rows, [])
    }

    /// The window keeps only the first offset + limit as it scans: every
    /// page of a large view must equal the same slice of a full sort.
    func testWindow_pagesEqualSlicesOfAFullSort() {
        var index = QueueIndex(targets: policy, utcOffsetMinutes: 0, now: t0)
        var rng = SplitMix(seed: 42)
        let priorities: [Priority] = [.low, .normal, .high, .urgent]
        for n in 1...500 {
            let t = ticket(n, priority: priorities[Int(rng.next() % 4)], created: t0 - Int64(rng.next() % 3_600_000))
            index.upsert(entry(t, updated: t0 + Int64(rng.next() % 1000)), now: t0)
        }
        for sort in QueueQuery.Sort.allCases {
            let all = index.entries.values.sorted { sort.orders($0, before: $1) }.map(\.ticket.id)
            for (offset, limit) in [(0, 50), (50, 50), (480, 50), (0, 200), (499, 1), (500, 5)] {
                let page = index.window(QueueQuery(sort: sort, offset: offset, limit: limit), technician: "ana")
                XCTAssertEqual(page.total, 500)
                XCTAssertEqual(page.rows.map(\.ticket.id), Array(all.dropFirst(offset).prefix(limit)), "\(sort) \(offset) \(limit)")
            }
        }
    }

    func testLastMessage_previewIsOneBoundedLine() {
        let body = "  Hello\n\n  there \t" + String(repeating: "x", count: 300)
        let m = Message(id: "M-1-1", ticket: "T-1", seq: 1, channel: .customer, author: PersonRef(id: "c", name: "C"),
                        body: body, via: .email, at: t0)
        let p = QueueIndex.LastMessage(m).preview
        XCTAssert(p.hasPrefix("Hello there xxx"), p)
        XCTAssertEqual(p.count, QueueIndex.LastMessage.previewCharacters + 1)
        XCTAssert(p.hasSuffix("…"))
    }

    func testClientFrame_subscribeQueue_decodesAndRefuses() {
        func decode(_ s: String) -> Result<ClientFrame, ClientFrame.Refusal> { ClientFrame.decode(Array(s.utf8)) }
        XCTAssertEqual(try decode(#"{"type":"subscribe_queue","id":"q1"}"#).get(), .subscribeQueue(id: "q1", QueueQuery()))
        XCTAssertEqual(try decode(#"{"type":"subscribe_queue","filter":"mine","sort":"updated","offset":50,"limit":200}"#).get(),
                       .subscribeQueue(id: nil, QueueQuery(view: .mine, sort: .updated, offset: 50, limit: 200)))
        XCTAssertEqual(try decode(#"{"type":"subscribe_queue","filter":{"view":"breaching","search":"  Printer "}}"#).get(),
                       .subscribeQueue(id: nil, QueueQuery(view: .breaching, search: "printer")))
        XCTAssertEqual(try decode(#"{"type":"unsubscribe_queue"}"#).get(), .unsubscribeQueue)
        for bad in [#"{"type":"subscribe_queue","id":"q2","filter":"all"}"#, #"{"type":"subscribe_queue","id":"q2","filter":3}"#,
                    #"{"type":"subscribe_queue","id":"q2","limit":0}"#, #"{"type":"subscribe_queue","id":"q2","offset":100001}"#,
                    #"{"type":"subscribe_queue","id":"q2","sort":"sla desc"}"#,
                    "{\"type\":\"subscribe_queue\",\"id\":\"q2\",\"filter\":{\"search\":\"\(String(repeating: "a", count: 101))\"}}"] {
            guard case .failure(let r) = decode(bad) else { XCTFail(bad); continue }
            XCTAssertEqual(r.error.code, .invalid)
            XCTAssertEqual(r.id, "q2", "the refusal carries the id")
        }
    }
}

/// A small deterministic generator (SplitMix64) for the window test.
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
