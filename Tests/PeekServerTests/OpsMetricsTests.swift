import Foundation
import XCTest
import PeekCore
import PeekTestSupport

/// deploy/grafana-dashboard.json queries only metrics a running server
/// serves on /metrics, so the dashboard and the server cannot drift apart.
final class OpsMetricsTests: XCTestCase {
    /// Every `peekd_*` name in a PromQL expression.
    static func metricNames(in expr: String) -> Set<String> {
        var names: Set<String> = []
        var rest = Substring(expr)
        while let start = rest.range(of: "peekd_") {
            let name = rest[start.lowerBound...].prefix { $0.isLetter || $0.isNumber || $0 == "_" }
            names.insert(String(name))
            rest = rest[start.upperBound...]
        }
        return names
    }

    /// Every `expr` (and templating query) in the dashboard, walked as JSON.
    static func queries(in value: JSONValue) -> [String] {
        switch value {
        case .object(let fields):
            return fields.flatMap { key, v -> [String] in
                if (key == "expr" || key == "definition"), let s = v.stringValue { return [s] }
                return queries(in: v)
            }
        case .array(let items): return items.flatMap { queries(in: $0) }
        default: return []
        }
    }

    /// Names and label sets served: `name` or `name{labels}` per sample line.
    static func served(_ text: String) -> (names: Set<String>, samples: Set<String>) {
        var names: Set<String> = [], samples: Set<String> = []
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let sample = line.split(separator: " ").first else { continue }
            samples.insert(String(sample))
            names.insert(String(sample.prefix { $0 != "{" }))
        }
        return (names, samples)
    }

    func testDashboard_everyQueriedMetricIsServed() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: TestServer.repositoryRoot + "/deploy/grafana-dashboard.json"))
        let dashboard = try JSONParser.parse(Array(data))
        let queries = Self.queries(in: dashboard)
        XCTAssertGreaterThan(queries.count, 10)
        let queried = queries.reduce(into: Set<String>()) { $0.formUnion(Self.metricNames(in: $1)) }

        let server = try TestServer()
        defer { server.stop() }
        let r = try server.request("GET", "/metrics", service: false)
        XCTAssertEqual(r.status, 200)
        let served = Self.served(r.text)
        XCTAssertEqual(queried.subtracting(served.names), [], "queried by the dashboard but not served:\n\(r.text)")

        // What the issue asks the dashboard to show.
        for name in ["peekd_connections", "peekd_deltas_delivered_total", "peekd_engine_batch_jobs_total", "peekd_engine_batches_total",
                     "peekd_engine_commit_seconds_total", "peekd_engine_commits_total", "peekd_commands_acknowledged_total",
                     "peekd_refused_total", "peekd_agents_online", "peekd_smtp_sends_total"] {
            XCTAssertTrue(queried.contains(name), "the dashboard does not show \(name)")
        }
        for sample in [#"peekd_refused_total{reason="busy"}"#, #"peekd_refused_total{reason="rate_limited"}"#,
                       #"peekd_refused_total{reason="slow_consumer"}"#, #"peekd_smtp_sends_total{outcome="sent"}"#,
                       #"peekd_smtp_sends_total{outcome="failed"}"#] {
            XCTAssertTrue(served.samples.contains(sample), "\(sample) is not served")
        }
    }

    /// The new counters count: a note is one acknowledged command, one
    /// committed batch, one WAL sync; a frame over the rate is one refusal.
    func testMetrics_countAcknowledgedCommandsCommitsAndRefusals() throws {
        let server = try TestServer { $0.framesPerSecond = 1 }
        defer { server.stop() }
        let ticket = try XCTUnwrap(try server.seed(tickets: 1).first)
        let tech = try server.technician()
        defer { tech.close() }
        XCTAssertEqual(try tech.run("n-1", ticket, "note", ["body": "counted"])["type"]?.stringValue, "result")
        // A burst over 1 frame/s (burst 2, which hello and the note used):
        // most of these are refused; whichever got a refilled token is stored.
        let burst = (2...7).map { "n-\($0)" }
        for id in burst { try tech.command(id, ticket, "note", ["body": .string("burst \(id)")]) }
        let answers = try burst.map { try tech.answer($0) }
        let stored = answers.filter { $0["type"]?.stringValue == "result" }.count
        let refused = answers.filter { $0["code"]?.stringValue == "rate_limited" }.count
        XCTAssertEqual(stored + refused, burst.count, "\(answers)")
        XCTAssertGreaterThanOrEqual(refused, 1)

        func value(_ sample: String, _ text: String) -> Double? {
            text.split(separator: "\n").first { $0.hasPrefix(sample + " ") }.flatMap { Double($0.split(separator: " ")[1]) }
        }
        var text = ""
        let deadline = Date().addingTimeInterval(10)
        repeat {
            usleep(200_000)   // loops publish their counters about once a second
            text = try server.request("GET", "/metrics", service: false).text
        } while (value(#"peekd_refused_total{reason="rate_limited"}"#, text) ?? 0) < Double(refused) && Date() < deadline
        XCTAssertEqual(value("peekd_commands_acknowledged_total", text), Double(1 + stored), text)
        XCTAssertGreaterThanOrEqual(value("peekd_engine_commits_total", text) ?? 0, 1, text)
        XCTAssertGreaterThanOrEqual(value("peekd_engine_batch_jobs_total", text) ?? 0, value("peekd_engine_batches_total", text) ?? 1, text)
        XCTAssertGreaterThanOrEqual(value("peekd_wal_syncs_total", text) ?? 0, 1, text)
        XCTAssertEqual(value(#"peekd_refused_total{reason="rate_limited"}"#, text), Double(refused), text)
        XCTAssertEqual(value("peekd_agents_online", text), 0, text)
    }
}
