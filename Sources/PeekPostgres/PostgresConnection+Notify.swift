import CPostgres
import PeekCore
import PeekStore

/// LISTEN/NOTIFY on a connection: what the cluster bus (`PostgresBus`)
/// uses to tell other nodes that deltas were committed.
extension PostgresConnection {
    /// One notification: the channel, the text sent, and the backend that sent it.
    public struct Notification: Sendable {
        public var channel: String
        public var payload: String
        public var senderPID: Int32
    }

    /// PostgreSQL refuses a NOTIFY payload of 8000 bytes or more
    /// (the default build's page size less a header).
    public static let maxNotifyPayloadBytes = 7999

    /// The connection's socket, to wait on for notifications with poll(2).
    public var socket: Int32 { PQsocket(handle) }

    /// This connection's server process (pg_backend_pid()).
    public var backendPID: Int32 { PQbackendPID(handle) }

    /// Reads what the server sent without blocking, so `notifications()`
    /// sees it. False when the connection failed.
    @discardableResult
    public func consumeInput() -> Bool { PQconsumeInput(handle) == 1 }

    /// The notifications received so far, oldest first (also those that
    /// arrived while another statement ran on this connection).
    public func notifications() -> [Notification] {
        var out: [Notification] = []
        while let n = PQnotifies(handle) {
            out.append(Notification(channel: String(cString: n.pointee.relname), payload: String(cString: n.pointee.extra),
                                    senderPID: n.pointee.be_pid))
            PQfreemem(n)
        }
        return out
    }

    /// Sends one notification in a transaction of its own (the connection
    /// is in autocommit): delivered to every listener once this returns.
    public func notify(channel: String, payload: String) throws(StoreError) {
        try run("SELECT pg_notify($1, $2)", .text(channel), .text(payload))
    }
}
