import Foundation
import XCTest
import PeekCore
import PeekTestSupport

/// Several technicians issue random commands at once, from their own
/// threads. Whatever interleaving the engine picks, every client must end
/// with the database's state: seq without gaps or duplicates, each result
/// after its delta, and the same fields, message list and time log.
final class LivePropertyTests: XCTestCase {
    /// What one client saw, in arrival order.
    private struct Observed {
        var snapshots: [String: JSONValue] = [:]
        var logs: [String: [JSONValue]] = [:]
        var sent = 0
        var answered = 0
        var errors = 0
        var failures: [String] = []
    }

    private static let statuses: [JSONValue] = ["new", "open", "in_progress", "waiting_on_customer", "resolved", "closed"]
    private static let priorities: [JSONValue] = ["low", "normal", "high", "urgent"]

    /// A random command for `ticket`; `seen` is the client's latest seq there.
    private static func randomCommand(_ rng: inout SplitMix64, ticket: String, seen: Int?) -> (op: String, args: JSONValue, seen: Int?) {
        switch Int.random(in: 0..<10, using: &rng) {
        case 0, 1, 2: return ("note", ["body": .string("note \(rng.next() % 10_000)")], Bool.random(using: &rng) ? seen : nil)
        case 3: return ("set_status", ["status": statuses.randomElement(using: &rng)!], nil)
        case 4: return ("set_priority", ["priority": priorities.randomElement(using: &rng)!], nil)
        case 5: return ("assign", ["technician": .string("tech-\(Int.random(in: 1...5, using: &rng))")], nil)   // tech-5 does not exist
        case 6: return ("take_ownership", [:], nil)
        case 7: return ("timer_start", [:], nil)
        case 8: return ("timer_stop", ["note": "work"], nil)
        default: return ("note", ["body": "plain"], nil)
        }
    }

    /// Errors a random command may legitimately get; anything else is a failure.
    private static func isExpectedError(op: String, code: String?) -> Bool {
        switch (op, code) {
        case ("timer_start", "conflict"), ("timer_stop", "invalid"), ("assign", "invalid"): return true
        default: return false
        }
    }

    /// Takes the next frame in arrival order and files it.
    private static func take(_ c: TestWebSocketClient, into seen: inout Observed) throws -> JSONValue {
        let m = try c.next(timeout: 20)
        if m["type"]?.stringValue == "delta", m["seq"]?.intValue != nil, let t = m["ticket"]?.stringValue {
            let expected = (seen.logs[t]?.last?["seq"]?.intValue ?? seen.snapshots[t]?["seq"]?.intValue ?? -1) + 1
            if m["seq"]?.intValue != expected { seen.failures.append("\(t): got seq \(m["seq"]!) after \(expected - 1)") }
            seen.logs[t, default: []].append(m)
        }
        return m
    }

    private static func lastSeq(_ seen: Observed, _ ticket: String) -> Int? {
        seen.logs[ticket]?.last?["seq"]?.intValue ?? seen.snapshots[ticket]?["seq"]?.intValue
    }

    /// One technician's run: `bursts` rounds of 1-3 pipelined commands.
    private static func work(_ c: TestWebSocketClient, name: String, tickets: [String], bursts: Int, seed: UInt64, seen: inout Observed) {
        var rng = SplitMix64(seed: seed)
        do {
            for round in 0..<bursts {
                var pending: [String: (ticket: String, op: String)] = [:]
                for k in 0..<Int.random(in: 1...3, using: &rng) {
                    let ticket = tickets.randomElement(using: &rng)!
                    let command = randomCommand(&rng, ticket: ticket, seen: lastSeq(seen, ticket))
                    let id = "\(name)-\(round)-\(k)"
                    try c.command(id, ticket, command.op, command.args, seen: command.seen)
                    pending[id] = (ticket, command.op)
                    seen.sent += 1
                }
                while !pending.isEmpty {
                    let m = try take(c, into: &seen)
                    guard let id = m["id"]?.stringValue, let p = pending[id],
                          m["type"]?.stringValue == "result" || m["type"]?.stringValue == "error" else { continue }
                    pending[id] = nil
                    seen.answered += 1
                    if m["type"]?.stringValue == "result" {
                        // The result follows its deltas on the sender's socket.
                        let seq = m["seq"]?.intValue ?? -1
                        let delivered = seq == seen.snapshots[p.ticket]?["seq"]?.intValue
                            || seen.logs[p.ticket]?.contains { $0["seq"]?.intValue == seq } == true
                        if !delivered { seen.failures.append("\(id) (\(p.op)): result seq \(seq) before its delta") }
                        continue
                    }
                    seen.errors += 1
                    if !isExpectedError(op: p.op, code: m["code"]?.stringValue) {
                        seen.failures.append("\(id) (\(p.op)): unexpected \(m)")
                    }
                }
            }
        } catch {
            seen.failures.append("\(name): \(error)")
        }
    }

    /// The client's view of a ticket: its snapshot with every delta applied in seq order.
    private struct View: Equatable {
        var status: JSONValue?
        var priority: JSONValue?
        var assignee: JSONValue?
        var version: JSONValue?
        var messages: [String]
        var time: JSONValue?

        init(snapshot state: JSONValue?) {
            let t = state?["ticket"]
            status = t?["status"]; priority = t?["priority"]; version = t?["version"]
            assignee = t?["assignee"]?["id"] ?? .null
            messages = messageIDs(state)
            time = state?["time"]
        }

        mutating func apply(_ delta: JSONValue) {
            let data = delta["data"]
            switch delta["kind"]?.stringValue {
            case "ticket.updated":
                if let v = data?["status"] { status = v }
                if let v = data?["priority"] { priority = v }
                if let v = data?["assignee"] { assignee = v["id"] ?? .null }
                if let v = data?["version"] { version = v }
            case "message.created":
                if let id = data?["id"]?.stringValue { messages.append(id) }
            case "time.updated":
                time = data
            default:
                break
            }
        }
    }

    func testConcurrentRandomCommands_everyClientViewEndsEqualToDatabase() throws {
        let server = try TestServer()
        defer { server.stop() }
        let tickets = try server.seed(technicians: 4, tickets: 2)
        let names = ["tech-1", "tech-2", "tech-3", "tech-4"]
        var clients: [TestWebSocketClient] = []
        var observed: [Observed] = []
        for name in names {
            let c = try server.technician(name)
            var o = Observed()
            for t in tickets {
                let snap = try c.subscribe(t)
                XCTAssertEqual(snap["type"]?.stringValue, "snapshot")
                o.snapshots[t] = snap
            }
            clients.append(c)
            observed.append(o)
        }

        let baseSeed = UInt64(Date().timeIntervalSince1970 * 1000)
        let bursts = 25
        let boxes = zip(clients, observed).map { Unshared(($0, $1)) }
        let done = DispatchGroup()
        for (i, box) in boxes.enumerated() {
            done.enter()
            let name = names[i]
            let seed = baseSeed &+ UInt64(i)
            let thread = Thread {
                Self.work(box.value.0, name: name, tickets: tickets, bursts: bursts, seed: seed, seen: &box.value.1)
                done.leave()
            }
            thread.start()
        }
        XCTAssertEqual(done.wait(timeout: .now() + 120), .success, "clients finished")
        observed = boxes.map { $0.value.1 }

        // The database after every command has been answered.
        var database: [String: JSONValue] = [:]
        for t in tickets { database[t] = try server.ticketState(t) }

        for (i, c) in clients.enumerated() {
            var o = observed[i]
            XCTAssertEqual(o.failures, [], "\(names[i]) (seed \(baseSeed &+ UInt64(i)))")
            XCTAssertEqual(o.answered, o.sent, "\(names[i]): every command answered once")
            XCTAssertGreaterThanOrEqual(o.sent, bursts)
            print("property: \(names[i]) sent \(o.sent) commands, \(o.errors) refused as expected")
            // Catch up with deltas still on the way from other clients' commands.
            for t in tickets {
                let final = database[t]?["seq"]?.intValue ?? -1
                while (Self.lastSeq(o, t) ?? -1) < final { _ = try Self.take(c, into: &o) }
            }
            XCTAssertEqual(o.failures, [], names[i])
            for t in tickets {
                let db = try XCTUnwrap(database[t])
                let snapSeq = o.snapshots[t]?["seq"]?.intValue ?? -1
                let log = o.logs[t] ?? []
                let final = db["seq"]?.intValue ?? -1
                XCTAssertEqual(log.compactMap { $0["seq"]?.intValue }, Array((snapSeq + 1)..<(final + 1)), "\(names[i]) \(t): every seq exactly once")

                var view = View(snapshot: o.snapshots[t]?["state"])
                for d in log { view.apply(d) }
                var expected = View(snapshot: db["state"])
                // The database answers the latest 50 messages; the client saw them all.
                XCTAssertEqual(Array(view.messages.suffix(expected.messages.count)), expected.messages, "\(names[i]) \(t) messages")
                XCTAssertTrue(expected.messages.count == 50 || view.messages.count == expected.messages.count)
                expected.messages = view.messages
                XCTAssertEqual(view, expected, "\(names[i]) \(t)")
            }
            observed[i] = o
        }
        // Everyone saw the very same frames.
        for t in tickets {
            let reference = observed[0].logs[t] ?? []
            XCTAssertGreaterThan(reference.count, 0, "\(t) changed at all")
            for o in observed.dropFirst() { XCTAssertEqual(o.logs[t] ?? [], reference, t) }
        }
    }
}
