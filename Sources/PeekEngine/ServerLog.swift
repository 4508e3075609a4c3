#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import PeekCore
import Synchronization

/// The server's log on stderr: readable text by default (`peekd: message`),
/// or one JSON object per line for a log collector (`--log-format json`):
///
///     {"time":"2026-12-06T18:30:00.123Z","level":"warn","event":"sign_in_refused",
///      "connection":"0/17","message":"...","error":"..."}
///
/// with `tenant`, `ticket`, `connection` and `error` where the event has
/// them. What goes in is chosen at each call site: ids, codes and sentences
/// the server wrote, never a token, a password or a message body.
///
/// Lines are written by a queue of their own, so a slow reader of stderr
/// (a full pipe to journald) never stalls the engine or a loop; past
/// `maxPendingLines` waiting, lines are dropped and the count said later.
public final class ServerLog: Sendable {
    public enum Format: String, Sendable { case text, json }
    public enum Level: String, Sendable { case info, warn, error }

    public let format: Format
    private let fd: Int32
    private let queue = DispatchQueue(label: "peekd-log")
    private let pending = Atomic<Int>(0)
    private let dropped = Atomic<Int>(0)
    static let maxPendingLines = 10_000

    public init(format: Format, fd: Int32 = 2) {
        self.format = format
        self.fd = fd
    }

    public func log(_ level: Level, _ event: String, _ message: String, tenant: String? = nil, ticket: String? = nil,
                    connection: Peer? = nil, error: String? = nil) {
        guard pending.add(1, ordering: .relaxed).newValue <= Self.maxPendingLines else {
            pending.subtract(1, ordering: .relaxed)
            dropped.add(1, ordering: .relaxed)
            return
        }
        let line = encode(level, event, message, tenant: tenant, ticket: ticket, connection: connection, error: error,
                          millis: wallClockMillis())
        queue.async { [self] in
            let lost = dropped.exchange(0, ordering: .relaxed)
            if lost > 0 {
                write(encode(.warn, "log_dropped", "\(lost) log lines were dropped: stderr was not read fast enough",
                             tenant: nil, ticket: nil, connection: nil, error: nil, millis: wallClockMillis()))
            }
            write(line)
            pending.subtract(1, ordering: .relaxed)
        }
    }

    /// Waits until every line logged so far is written (before exit).
    public func flush() { queue.sync {} }

    func encode(_ level: Level, _ event: String, _ message: String, tenant: String?, ticket: String?, connection: Peer?,
                error: String?, millis: Int64) -> [UInt8] {
        switch format {
        case .text:
            var text = "peekd: " + message
            if let error { text += ": " + error }
            return Array((text.replacingOccurrences(of: "\n", with: " ") + "\n").utf8)
        case .json:
            var w = JSONWriter()
            w.beginObject()
            w.field("time", Timestamp.format(millis: millis))
            w.field("level", level.rawValue)
            w.field("event", event)
            if let tenant { w.field("tenant", tenant) }
            if let ticket { w.field("ticket", ticket) }
            if let connection { w.field("connection", connection.description) }
            w.field("message", message)
            if let error { w.field("error", error) }
            w.endObject()
            return w.bytes + [10]
        }
    }

    private func write(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }   // stderr closed: nothing to tell anyone
            offset += n
        }
    }
}
