import XCTest
import Foundation
import PeekCore
import PeekTestSupport

/// The live queue end to end (protocol.md §4.8), on real sockets: rows
/// enter, change and leave as the back end and other technicians change
/// tickets; the tiles move with SLA thresholds and breaches when they
/// happen; presence shows on the row; views, search and paging; nothing
/// of another tenant.
final class QueueLiveTests: XCTestCase {
    private func makeServer(tickets: Int = 0, policy: (response: Int, resolution: Int)? = nil) throws -> (TestServer, [String]) {
        let server = try TestServer()
        if let policy {
            try server.seed(tenant: "acme", technicians: 2, tickets: 0)
            let r = try server.api("PUT", "/v1/tenants/acme/sla-policy",
                                   ["normal": ["response": .int(policy.response), "resolution": .int(policy.resolution)]])
            XCTAssertEqual(r.status, 200, r.text)
            return (server, [])
        }
        let ids = try server.seed(tenant: "acme", technicians: 2, tickets: tickets)
        return (server, ids)
    }

    /// Subscribes to the queue and answers the `queue` snapshot.
    @discardableResult
    private func subscribeQueue(_ c: TestWebSocketClient, id: String = "q1", _ extra: [String: JSONValue] = [:]) throws -> JSONValue {
        var frame: [String: JSONValue] = ["type": "subscribe_queue", "id": .string(id)]
        for (k, v) in extra { frame[k] = v }
        try c.send(.object(frame))
        return try c.next { $0["id"]?.stringValue == id && ($0["type"]?.stringValue == "queue" || $0["type"]?.stringValue == "error") }
    }

    /// The next `queue.row` whose row (or removal) is about `ticket` and satisfies `where`.
    @discardableResult
    private func nextRow(_ c: TestWebSocketClient, _ ticket: String, timeout: Double = 5,
                         where predicate: @escaping (JSONValue) -> Bool = { _ in true }) throws -> JSONValue {
        let frame = try c.next(timeout: timeout) {
            guard $0["type"]?.stringValue == "delta", $0["kind"]?.stringValue == "queue.row", let data = $0["data"] else { return false }
            let id = data["row"]?["id"]?.stringValue ?? data["id"]?.stringValue
            return id == ticket && predicate(data)
        }
        XCTAssertNil(frame["seq"], "queue deltas carry no seq")
        XCTAssertEqual(frame["ticket"], .null)
        return try XCTUnwrap(frame["data"])
    }

    private func nextTiles(_ c: TestWebSocketClient, timeout: Double = 5, where predicate: @escaping (JSONValue) -> Bool) throws -> JSONValue {
        let frame = try c.next(timeout: timeout) {
            $0["type"]?.stringValue == "delta" && $0["kind"]?.stringValue == "queue.tiles" && predicate($0["data"] ?? .null)
        }
        return try XCTUnwrap(frame["data"])
    }

    func testQueue_backEndCreatesTicket_rowAppearsWithTiles() throws {
        let (server, _) = try makeServer()
        defer { server.stop() }
        let tech = try server.technician()
        let snapshot = try subscribeQueue(tech)
        XCTAssertEqual(snapshot["type"]?.stringValue, "queue", "\(snapshot)")
        XCTAssertEqual(snapshot["rows"]?.arrayValue?.count, 0)
        XCTAssertEqual(snapshot["total"]?.intValue, 0)
        XCTAssertEqual(snapshot["tiles"]?["open"]?.intValue, 0)

        let ticket = try AgentFixture.createTicket(server, asset: nil, extra: ["body": "The fan is loud again"])
        let delta = try nextRow(tech, ticket)
        let row = try XCTUnwrap(delta["row"])
        for field in ["id", "number", "subject", "status", "priority", "assignee", "client", "sla", "updated_at", "viewers",
                      "contact", "sla_state", "last_message", "last_customer_seq"] {
            XCTAssertNotNil(row[field], "row has \(field): \(row)")
        }
        XCTAssertEqual(row["subject"]?.stringValue, "Laptop fan is loud")
        XCTAssertEqual(row["status"]?.stringValue, "new")
        XCTAssertEqual(row["last_message"]?["preview"]?.stringValue, "The fan is loud again")
        XCTAssertEqual(row["last_message"]?["channel"]?.stringValue, "customer")
        XCTAssertEqual(row["last_customer_seq"]?.intValue, 1)
        XCTAssertEqual(row["viewers"]?.arrayValue?.count, 0)
        XCTAssertEqual(try nextTiles(tech) { $0["open"]?.intValue == 1 }["breached"]?.intValue, 0)
    }

    func testQueue_otherTechnicianChangesStatus_rowChangesThenLeavesOnResolve() throws {
        let (server, ids) = try makeServer(tickets: 1)
        defer { server.stop() }
        let ticket = ids[0]
        let watcher = try server.technician("tech-1")
        let snapshot = try subscribeQueue(watcher)
        XCTAssertEqual(snapshot["rows"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, [ticket])
        XCTAssertEqual(snapshot["tiles"]?["open"]?.intValue, 1)

        let other = try server.technician("tech-2")
        XCTAssertEqual(try other.run("c1", ticket, "set_status", ["status": "in_progress"])["type"]?.stringValue, "result")
        let changed = try nextRow(watcher, ticket) { $0["row"]?["status"]?.stringValue == "in_progress" }
        XCTAssertEqual(changed["row"]?["version"]?.intValue, 2)

        XCTAssertEqual(try other.run("c2", ticket, "set_status", ["status": "resolved"])["type"]?.stringValue, "result")
        let gone = try nextRow(watcher, ticket) { $0["removed"]?.boolValue == true }
        XCTAssertEqual(gone["id"]?.stringValue, ticket)
        let tiles = try nextTiles(watcher) { $0["resolved_today"]?.intValue == 1 }
        XCTAssertEqual(tiles["open"]?.intValue, 0)

        // The "resolved today" view holds it; reopening brings it back to "open".
        let resolved = try subscribeQueue(watcher, id: "q2", ["filter": "resolved_today"])
        XCTAssertEqual(resolved["rows"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, [ticket])
        XCTAssertNotNil(resolved["rows"]?.arrayValue?.first?["resolved_at"]?.stringValue)
        XCTAssertEqual(try other.run("c3", ticket, "set_status", ["status": "open"])["type"]?.stringValue, "result")
        try nextRow(watcher, ticket) { $0["removed"]?.boolValue == true }
        XCTAssertEqual(try nextTiles(watcher) { $0["open"]?.intValue == 1 }["resolved_today"]?.intValue, 0)
    }

    func testQueue_mine_rowEntersOnAssignAndLeavesOnReassign() throws {
        let (server, ids) = try makeServer(tickets: 2)
        defer { server.stop() }
        let me = try server.technician("tech-1")
        let mine = try subscribeQueue(me, ["filter": ["view": "mine"]])
        XCTAssertEqual(mine["total"]?.intValue, 0)
        XCTAssertEqual(mine["filter"]?["view"]?.stringValue, "mine")

        let other = try server.technician("tech-2")
        XCTAssertEqual(try other.run("a1", ids[0], "assign", ["technician": "tech-1"])["type"]?.stringValue, "result")
        let entered = try nextRow(me, ids[0])
        XCTAssertEqual(entered["row"]?["assignee"]?["id"]?.stringValue, "tech-1")
        XCTAssertEqual(entered["total"]?.intValue, 1, "each view's own total")
        // A change to a ticket outside the view sends nothing.
        XCTAssertEqual(try other.run("a2", ids[1], "set_priority", ["priority": "high"])["type"]?.stringValue, "result")
        XCTAssertEqual(try other.run("a3", ids[0], "take_ownership")["type"]?.stringValue, "result")
        let left = try nextRow(me, ids[0]) { $0["removed"]?.boolValue == true }
        XCTAssertEqual(left["id"]?.stringValue, ids[0])
        XCTAssertEqual(left["total"]?.intValue, 0)
        let rest = me.drain(for: 0.5).filter { $0["kind"]?.stringValue == "queue.row" }
        XCTAssert(rest.allSatisfy { ($0["data"]?["row"]?["id"] ?? $0["data"]?["id"])?.stringValue != ids[1] }, "\(rest)")

        // tech-2's own "mine" now holds it; tech-1's does not.
        let theirs = try subscribeQueue(other, id: "q9", ["filter": "mine"])
        XCTAssertEqual(theirs["rows"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, [ids[0]])
        XCTAssertEqual(try subscribeQueue(me, id: "q10", ["filter": "mine"])["total"]?.intValue, 0)
    }

    /// Response target 4 s: a quarter is left at 3 s (breaching), none at
    /// 4 s (breached). Each is pushed when it happens, with no tick at all
    /// (`--sla-tick` is 15 s here).
    func testQueue_shortPolicy_tilesMoveAtQuarterLeftAndAtBreach() throws {
        let (server, _) = try makeServer(policy: (response: 4, resolution: 3600))
        defer { server.stop() }
        let tech = try server.technician()
        try subscribeQueue(tech)
        let created = Date()
        let ticket = try AgentFixture.createTicket(server, asset: nil)
        let first = try nextRow(tech, ticket)
        XCTAssertEqual(first["row"]?["sla_state"]?.stringValue, "ok")
        _ = try nextTiles(tech) { $0["open"]?.intValue == 1 && $0["breaching"]?.intValue == 0 }

        let breaching = try nextTiles(tech, timeout: 10) { $0["breaching"]?.intValue == 1 }
        let breachingAt = Date().timeIntervalSince(created)
        XCTAssertEqual(breaching["breached"]?.intValue, 0)
        XCTAssert(breachingAt >= 2.9 && breachingAt < 4.0, "breaching pushed at \(breachingAt) s, expected in [3, 4)")
        let row = try nextRow(tech, ticket) { $0["row"]?["sla_state"]?.stringValue == "breaching" }
        XCTAssert((row["row"]?["sla"]?["response"]?["remaining"]?.intValue ?? 99) <= 1, "\(row)")

        let breached = try nextTiles(tech, timeout: 10) { $0["breached"]?.intValue == 1 }
        XCTAssertEqual(breached["breaching"]?.intValue, 0)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(created), 3.9)
        try nextRow(tech, ticket) { $0["row"]?["sla_state"]?.stringValue == "breached" }

        // The breaching view is empty now; the breached view has it.
        XCTAssertEqual(try subscribeQueue(tech, id: "q2", ["filter": "breaching"])["total"]?.intValue, 0)
        XCTAssertEqual(try subscribeQueue(tech, id: "q3", ["filter": "breached"])["rows"]?.arrayValue?.first?["id"]?.stringValue, ticket)
    }

    func testQueue_presenceAndComposing_showOnTheRow() throws {
        let (server, ids) = try makeServer(tickets: 1)
        defer { server.stop() }
        let ticket = ids[0]
        let watcher = try server.technician("tech-1")
        try subscribeQueue(watcher)
        let other = try server.technician("tech-2")
        try other.subscribe(ticket)
        let viewed = try nextRow(watcher, ticket) { $0["row"]?["viewers"]?.arrayValue?.count == 1 }
        XCTAssertEqual(viewed["row"]?["viewers"]?.arrayValue?.first?["id"]?.stringValue, "tech-2")
        XCTAssertEqual(viewed["row"]?["viewers"]?.arrayValue?.first?["composing"], .null)

        try other.send(["type": "composing", "ticket": .string(ticket), "mode": "reply"])
        try nextRow(watcher, ticket) { $0["row"]?["viewers"]?.arrayValue?.first?["composing"]?.stringValue == "reply" }

        other.close()
        try nextRow(watcher, ticket, timeout: 10) { $0["row"]?["viewers"]?.arrayValue?.isEmpty == true }
    }

    func testQueue_viewsSearchAndPaging() throws {
        let (server, ids) = try makeServer(tickets: 5)
        defer { server.stop() }
        let tech = try server.technician()
        let other = try server.technician("tech-2")
        XCTAssertEqual(try other.run("p1", ids[3], "set_priority", ["priority": "urgent"])["type"]?.stringValue, "result")
        XCTAssertEqual(try other.run("p2", ids[2], "assign", ["technician": "tech-2"])["type"]?.stringValue, "result")

        // Pages of two, by priority: the urgent one first, no overlap, all five.
        var seen: [String] = []
        for (i, offset) in [0, 2, 4].enumerated() {
            let page = try subscribeQueue(tech, id: "page\(i)", ["sort": "priority", "offset": .int(offset), "limit": 2])
            XCTAssertEqual(page["total"]?.intValue, 5)
            XCTAssertEqual(page["offset"]?.intValue, offset)
            seen += page["rows"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
        }
        XCTAssertEqual(seen.count, 5)
        XCTAssertEqual(Set(seen), Set(ids))
        XCTAssertEqual(seen.first, ids[3])

        // Updated: the most recently changed first.
        let updated = try subscribeQueue(tech, id: "u", ["sort": "updated", "limit": 2])
        XCTAssertEqual(updated["rows"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, [ids[2], ids[3]])

        let unassigned = try subscribeQueue(tech, id: "un", ["filter": "unassigned"])
        XCTAssertEqual(unassigned["total"]?.intValue, 4)

        let number = String(ids[4].dropFirst(2))
        for (i, search) in ["Ticket 4", "ticket 4", "#\(number)", number, ids[4]].enumerated() {
            let found = try subscribeQueue(tech, id: "s\(i)", ["filter": ["search": .string(search)]])
            XCTAssertEqual(found["rows"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, [ids[4]], search)
        }
        XCTAssertEqual(try subscribeQueue(tech, id: "c", ["filter": ["search": "casey"]])["total"]?.intValue, 5)

        // A search view gets the rows that enter it, and no others.
        try subscribeQueue(tech, id: "watch", ["filter": ["search": "printer"]])
        let printer = try AgentFixture.createTicket(server, asset: nil, extra: ["subject": "Printer jams"])
        let fan = try AgentFixture.createTicket(server, asset: nil)
        try nextRow(tech, printer)
        let later = tech.drain(for: 0.5).filter { $0["kind"]?.stringValue == "queue.row" }
        XCTAssert(later.allSatisfy { $0["data"]?["row"]?["id"]?.stringValue != fan }, "\(later)")

        let refusals: [[String: JSONValue]] = [["filter": "everything"], ["sort": "name"], ["limit": 500], ["offset": -1],
                                               ["filter": ["search": .int(3)]]]
        for (i, bad) in refusals.enumerated() {
            let refused = try subscribeQueue(tech, id: "bad\(i)", bad)
            XCTAssertEqual(refused["type"]?.stringValue, "error", "\(bad)")
            XCTAssertEqual(refused["code"]?.stringValue, "invalid", "\(bad)")
        }
    }

    /// One view per connection: a second subscribe_queue replaces the
    /// first (a change arrives once), and unsubscribe_queue ends it.
    func testQueue_oneViewPerConnection_replacedAndUnsubscribed() throws {
        let (server, ids) = try makeServer(tickets: 1)
        defer { server.stop() }
        let tech = try server.technician()
        try subscribeQueue(tech, id: "a", ["filter": "open"])
        try subscribeQueue(tech, id: "b", ["filter": "unassigned"])
        let other = try server.technician("tech-2")
        XCTAssertEqual(try other.run("s1", ids[0], "set_status", ["status": "open"])["type"]?.stringValue, "result")
        try nextRow(tech, ids[0])
        let more = tech.drain(for: 0.5).filter { $0["kind"]?.stringValue == "queue.row" }
        XCTAssertEqual(more.count, 0, "the replaced view gets nothing: \(more)")

        try tech.send(["type": "unsubscribe_queue"])
        // Ordered behind the unsubscribe: once this answers, it has taken effect.
        try tech.subscribe(ids[0])
        XCTAssertEqual(try other.run("s2", ids[0], "set_status", ["status": "in_progress"])["type"]?.stringValue, "result")
        let after = tech.drain(for: 0.5).filter { ["queue.row", "queue.tiles"].contains($0["kind"]?.stringValue ?? "") }
        XCTAssertEqual(after.count, 0, "\(after)")
    }

    func testQueue_tenantIsolation_nothingOfAnotherTenant() throws {
        let (server, acmeIDs) = try makeServer(tickets: 2)
        defer { server.stop() }
        let globexIDs = try server.seed(tenant: "globex", technicians: 1, tickets: 1)
        let outsider = try server.technician("tech-1", tenant: "globex")
        let theirs = try subscribeQueue(outsider)
        XCTAssertEqual(theirs["rows"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, globexIDs)
        XCTAssertEqual(theirs["tiles"]?["open"]?.intValue, 1)

        let insider = try server.technician()
        try subscribeQueue(insider)
        let other = try server.technician("tech-2")
        XCTAssertEqual(try other.run("x", acmeIDs[0], "set_status", ["status": "resolved"])["type"]?.stringValue, "result")
        try other.subscribe(acmeIDs[1])
        let created = try AgentFixture.createTicket(server, asset: nil)
        try nextRow(insider, created)
        let leaked = outsider.drain(for: 0.5).filter { $0["type"]?.stringValue == "delta" }
        XCTAssertEqual(leaked.count, 0, "globex saw acme's queue: \(leaked)")
    }

    /// A batch that does not commit took its rows with it: the queue's
    /// viewers are told to subscribe again, and the fresh window shows what
    /// is on disk, not what the failed batch would have made.
    func testQueue_commitFails_viewersToldToSubscribeAgain_windowShowsWhatIsOnDisk() throws {
        let box = Unshared<FailingStore?>(nil)
        let server = try TestServer { c in
            c.wrapStore = { store in
                let failing = FailingStore(store)
                box.value = failing
                return failing
            }
        }
        defer { server.stop() }
        let store = try XCTUnwrap(box.value)
        let ticket = try server.seed()[0]
        let watcher = try server.technician("tech-1")
        try subscribeQueue(watcher)
        let other = try server.technician("tech-2")
        store.arm("commit()")
        let answer = try other.run("s1", ticket, "set_status", ["status": "in_progress"])
        XCTAssertEqual(answer["code"]?.stringValue, "internal", "\(answer)")
        let told = try watcher.next { $0["type"]?.stringValue == "error" && $0["id"] == nil }
        XCTAssertEqual(told["code"]?.stringValue, "internal")
        XCTAssert(told["message"]?.stringValue?.contains("subscribe to it again") == true, "\(told)")
        let stray = watcher.drain(for: 0.3).filter { $0["kind"]?.stringValue == "queue.row" }
        XCTAssertEqual(stray.count, 0, "no row of the failed batch: \(stray)")
        let again = try subscribeQueue(watcher, id: "q2")
        XCTAssertEqual(again["rows"]?.arrayValue?.first?["status"]?.stringValue, "new", "what is on disk")
        XCTAssertEqual(try other.run("s2", ticket, "set_status", ["status": "open"])["type"]?.stringValue, "result")
        try nextRow(watcher, ticket) { $0["row"]?["status"]?.stringValue == "open" }
    }
}
