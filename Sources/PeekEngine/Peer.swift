/// A connection as the engine knows it: an id chosen by whoever holds the
/// connection (a loop of this process, or another node through its bus).
/// The engine hashes it, compares it and hands it back in its outputs; it
/// never looks inside. Which loop or node holds the connection is the
/// bus's business (`InProcessBus` packs the loop into the id), so nothing
/// in the engine changes when connections live elsewhere.
public struct Peer: Hashable, Sendable, CustomStringConvertible {
    public let raw: UInt64
    public init(raw: UInt64) { self.raw = raw }
    public var description: String { String(raw) }
}

/// An API request waiting for the engine's answer, named by whoever holds
/// the way back to its caller (the server keeps the HTTP connection's
/// callback under this id). Like `Peer`, opaque to the engine: an output
/// carries the id, never a closure.
package struct APIReplyID: Hashable, Sendable {
    package let raw: UInt64
    package init(raw: UInt64) { self.raw = raw }
}
